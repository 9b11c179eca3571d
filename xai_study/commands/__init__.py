"""Sub-commands of ``xai-study``.

Each module in this package defines ``register(subparsers)``, which adds one or more
sub-commands with ``subparsers.add_parser(...)`` and sets ``func=`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit status) via ``set_defaults``. The
CLI discovers the modules automatically, so adding a command never touches ``cli.py``.
Modules must import heavy libraries (torch, gradio, ...) inside ``func``, not at module
level, so that ``xai-study --help`` stays fast.
"""

import argparse


def positive_int(text: str) -> int:
    """argparse ``type=`` for a whole number of at least 1, with a one-line message."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


# ------------------------------------------------------------ detectors and devices
MODEL_METAVAR = "ARCH=NAME|PATH"


def model_help(many: bool = True) -> str:
    """The help text of ``--model`` (one wording for every command)."""
    what = (
        "a detector: ARCH is plain (the verdict and the model-agnostic explainers), "
        "bonettini or ltpa (their explainers); NAME is a demo checkpoint (plain, "
        "bonettini, ltpa), PATH a project checkpoint or an icpr2020dfdc state dict; a "
        "bare NAME|PATH is the plain detector"
    )
    if many:
        return what + "; repeatable, one per ARCH (default: the demo checkpoints)"
    return what + " (default: the demo plain)"


def add_detector_options(
    parser: argparse.ArgumentParser, *, many: bool = True, model: bool = True
) -> None:
    """``--model`` (repeatable), ``--device`` and ``--batch-size``, the same in every
    command that runs a detector."""
    from xai_study.devices import DEVICE_HELP

    if model:
        parser.add_argument(
            "--model",
            action="append",
            default=[],
            metavar=MODEL_METAVAR,
            help=model_help(many),
        )
    parser.add_argument("--device", default="auto", metavar="DEV", help=DEVICE_HELP)
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="frames per detector forward pass (default: the detector's own, 32)",
    )


def deprecated(old: str, new: str) -> None:
    """One warning line on stderr for an old spelling that still works (for one release)."""
    import sys

    sys.stderr.write(f"warning: {old} is deprecated and will be removed; use {new}\n")


def detector_specs(args: argparse.Namespace, *legacy: tuple[str, list[str]]) -> dict[str, str]:
    """``{arch: spec}`` from ``--model`` plus deprecated spellings (``(flag, items)``
    pairs: each non-empty one warns), with one-line errors for an unknown ARCH, a spec
    without a detector, or two detectors for one ARCH."""
    from xai_study.runs.detectors import parse_detector_specs

    items = list(getattr(args, "model", None) or [])
    for flag, values in legacy:
        values = [v for v in values if v]
        if values:
            deprecated(flag, f"--model {MODEL_METAVAR} (repeatable)")
            items += values
    return parse_detector_specs(items, option="--model")


def one_detector(specs: dict[str, str], command: str) -> tuple[str, str]:
    """``(arch, spec)`` of the one detector a command scores (default: the demo plain)."""
    from xai_study.errors import XaiStudyError
    from xai_study.runs.detectors import VERDICT_ARCH

    if len(specs) > 1:
        raise XaiStudyError(
            f"{command} scores one detector; give one --model (got {', '.join(specs)})"
        )
    return next(iter(specs.items()), (VERDICT_ARCH, VERDICT_ARCH))


def detector_set(args: argparse.Namespace, specs: dict[str, str], load: bool = True):
    """The :class:`~xai_study.runs.DetectorSet` of ``specs`` on ``--device`` with
    ``--batch-size``; with ``load``, the detectors named are loaded now, so that a
    missing or wrong file fails before any slow work."""
    from xai_study.devices import resolve_device
    from xai_study.runs.detectors import DetectorSet

    device = resolve_device(getattr(args, "device", None))
    dets = DetectorSet(specs, device, getattr(args, "batch_size", None))
    return dets.load(specs) if load else dets
