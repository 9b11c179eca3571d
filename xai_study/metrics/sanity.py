"""Sanity check: model-parameter randomisation (Adebayo et al. 2018).

An explanation that does not change when the detector's learned weights are replaced
by random ones cannot be explaining what the detector learned. The score is the
Spearman rank correlation between the normalised explanation (design §2 steps 1–2,
flattened over the whole clip) of the trained detector and that of a copy whose weights
were re-initialised. Low correlation means the explainer passes; a correlation near 1
means it fails.

**Which randomisation.** We implement Adebayo's *cascading* randomisation: the
detector's parameterised layers are listed in **execution order** (input to output:
the order in which forward hooks see them finish on one forward pass of a grey frame,
:func:`execution_order`; layers that the pass never runs come first, so they are
randomised last), and the top ``k`` layers, counted from the output, are re-initialised with their own
initialisers (``reset_parameters()``, which for batch-norm layers also resets the running
statistics; layers without one get N(0, 0.02²) weights). The default ``layers="all"``
is the final step of the cascade, every layer random, which is what
``xai-study evaluate`` reports; :meth:`ModelParameterRandomisation.cascade` returns
the whole curve. ``mode="independent"`` re-initialises only the single ``k``-th layer
from the top instead (Adebayo's independent randomisation).

Constant explanations have no ranks: the correlation is then ``nan``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

from xai_study.errors import XaiStudyError
from xai_study.maps import normalise
from xai_study.metrics.base import NAN, Metric

ADEBAYO_REFERENCE = (
    "Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), Sanity checks for "
    "saliency maps, NeurIPS"
)


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


def spearman(a, b) -> float:
    """Spearman rank correlation of two equally shaped arrays; ``nan`` if either is constant."""
    from scipy.stats import spearmanr

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise XaiStudyError(f"cannot correlate maps of sizes {a.size} and {b.size}")
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return NAN
    return float(spearmanr(a, b).statistic)


class ModelParameterRandomisation(Metric):
    """Spearman correlation between explanations of the trained and a randomised detector.

    ``score = spearman(N_trained.ravel(), N_random.ravel())`` where both are the
    normalised explanations of the same clip and the randomised detector has its top
    ``layers`` layers re-initialised (``"all"``: fully random; cascading by default).
    Lower is better (an explainer sensitive to the model's weights); range [-1, 1].
    """

    name = "randomisation_spearman"
    reference = ADEBAYO_REFERENCE
    higher_is_better = False
    value_range = (-1.0, 1.0)

    def __init__(
        self,
        layers: int | str = "all",
        mode: str = "cascading",
        seed: int = 0,
        signed: bool = False,
    ):
        self.layers = layers
        self.mode = mode
        self.seed = seed
        self.signed = signed

    def __repr__(self) -> str:
        return f"ModelParameterRandomisation(layers={self.layers!r}, mode={self.mode!r})"

    def __call__(
        self,
        explain: Callable[[object], np.ndarray],
        detector,
        maps=None,
        signed: bool | None = None,
    ) -> float:
        """``explain(detector) -> maps`` is run on the randomised copy (and on ``detector``
        itself unless its ``maps`` are given)."""
        signed = self.signed if signed is None else signed
        trained = explain(detector) if maps is None else maps
        random = explain(randomise_model(detector, self.layers, self.mode, self.seed))
        return spearman(normalise(trained, signed), normalise(random, signed))

    def cascade(self, explain, detector, stages=None, maps=None, signed: bool | None = None):
        """``[(k, spearman)]`` for cascading randomisation of the top ``k`` layers."""
        signed = self.signed if signed is None else signed
        total = len(parameterised_layers(detector))
        stages = stages or sorted({1, max(1, total // 4), max(1, total // 2), total})
        trained = normalise(explain(detector) if maps is None else maps, signed)
        out = []
        for k in stages:
            random = explain(randomise_model(detector, k, "cascading", self.seed))
            out.append((k, spearman(trained, normalise(random, signed))))
        return out
