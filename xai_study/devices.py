"""The one reading of a ``--device`` value, for detectors, training and face detection.

``auto`` (or ``None``) is the GPU when torch sees one, else the CPU; ``cpu``, ``cuda`` and
``cuda:N`` are checked here, so that every command fails with the same one-line message
on a device that is not there.
"""

from __future__ import annotations

from xai_study.errors import XaiStudyError

#: What ``--device`` accepts, for help texts.
DEVICE_HELP = "auto (the GPU when present, else the CPU), cpu, cuda or cuda:N (default auto)"


def resolve_device(device: object = None) -> str:
    """The torch device name for ``device`` (``None``/``"auto"``: ``cuda`` when a GPU is
    visible, else ``cpu``), with a one-line :class:`XaiStudyError` for an unknown device,
    a CUDA device on a machine without one, or a GPU index that does not exist."""
    import torch

    text = "auto" if device is None else str(device).strip()
    if text in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        raise XaiStudyError(
            f"unknown torch device {text!r} (use auto, cpu, cuda or cuda:N)"
        ) from None
    if parsed.type not in ("cpu", "cuda"):
        raise XaiStudyError(f"unsupported device {text!r} (use auto, cpu, cuda or cuda:N)")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise XaiStudyError(f"device {text!r} asked for, but no CUDA GPU is available")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise XaiStudyError(
                f"device {text!r} asked for, but there {'is' if count == 1 else 'are'} "
                f"only {count} GPU{'' if count == 1 else 's'} (cuda:0"
                f"{f' to cuda:{count - 1}' if count > 1 else ''})"
            )
    return text
