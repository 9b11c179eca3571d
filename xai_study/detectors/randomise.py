"""Randomised copies of a detector, for sanity checks (Adebayo et al. 2018) and the
``null_random_model`` explainer.

The parameterised layers are ordered by **execution**: forward hooks record the order in
which modules that own parameters run on one forward pass, so "from the output
backwards" means the classifier first, whatever order the modules were registered in
(bonettini's attention conv is registered before the trunk blocks it runs after).
"""

from __future__ import annotations

import copy

import numpy as np

from xai_study.errors import XaiStudyError


def _owns_parameters(module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def example_input(model, frames: int = 2):
    """A grey batch for one forward pass: ``model.preprocess`` of uint8 frames of the
    model's ``config["input_size"]`` (32 without one), or a zero tensor."""
    import torch

    config = getattr(model, "config", None)
    size = int((config or {}).get("input_size") or 32) if isinstance(config, dict) else 32
    if hasattr(model, "preprocess"):
        grey = np.full((frames, size, size, 3), 128, dtype=np.uint8)
        x = model.preprocess(grey)
    else:
        x = torch.zeros(frames, 3, size, size)
    try:
        return x.to(next(model.parameters()).device)
    except StopIteration:
        return x


def execution_order(model, example=None) -> list[str]:
    """Names of the modules owning parameters, in the order their forward hooks fire on
    one forward pass (each module at its first call); modules never run are left out."""
    import torch

    names = [name for name, module in model.named_modules() if _owns_parameters(module)]
    modules = dict(model.named_modules())
    seen: list[str] = []
    handles = [
        modules[name].register_forward_hook(
            lambda _m, _i, _o, name=name: seen.append(name) if name not in seen else None
        )
        for name in names
    ]
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        x = example_input(model) if example is None else example
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        if was_training:
            model.train()
    return seen


def parameterised_layers(model, example=None) -> list[tuple[str, object]]:
    """``(name, module)`` of every module that owns parameters directly, input to
    output in execution order (:func:`execution_order`); modules that the forward pass
    does not run come first, in module order."""
    named = [(name, m) for name, m in model.named_modules() if _owns_parameters(m)]
    try:
        order = {name: i for i, name in enumerate(execution_order(model, example))}
    except Exception as exc:  # a model that cannot run the example: say so, keep going
        import warnings

        warnings.warn(
            f"could not run a forward pass to order the layers ({exc}); using module order",
            stacklevel=2,
        )
        return named
    unused = [(n, m) for n, m in named if n not in order]
    used = sorted(((n, m) for n, m in named if n in order), key=lambda nm: order[nm[0]])
    return unused + used


def _reinitialise(module) -> None:
    import torch

    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
        return
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            torch.nn.init.normal_(p, mean=0.0, std=0.02)


def randomise_model(
    model, layers: int | str = "all", mode: str = "cascading", seed: int = 0, example=None
):
    """A deep copy of ``model`` with layers re-initialised (see the module docstring).

    ``layers`` is ``"all"`` or ``k >= 1``: with ``mode="cascading"`` the top ``k`` layers
    (in execution order, counted from the output) are randomised, with
    ``mode="independent"`` only the ``k``-th from the top. ``example`` is the input of
    the forward pass that orders the layers (default :func:`example_input`).
    """
    import torch

    if mode not in ("cascading", "independent"):
        raise XaiStudyError(f"unknown randomisation mode {mode!r} (cascading or independent)")
    clone = copy.deepcopy(model)
    if layers == "all" and mode == "cascading":
        named = _all_layers(clone)
    else:
        named = parameterised_layers(clone, example)
    if not named:
        raise XaiStudyError("the model has no parameters to randomise")
    k = len(named) if layers == "all" else int(layers)
    if not 1 <= k <= len(named):
        raise XaiStudyError(f"layers must be between 1 and {len(named)}, got {layers}")
    chosen = named[len(named) - k :] if mode == "cascading" else [named[len(named) - k]]
    devices = {p.device for p in clone.parameters()}
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        for _, module in chosen:
            _reinitialise(module)
    finally:
        torch.random.set_rng_state(state)
    if len(devices) == 1:
        clone.to(next(iter(devices)))
    clone.eval()
    return clone


def _all_layers(model) -> list[tuple[str, object]]:
    # every layer is randomised: the order does not matter, no forward pass needed
    return [(name, m) for name, m in model.named_modules() if _owns_parameters(m)]
