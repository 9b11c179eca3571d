"""The project's checkpoint format and ``load_detector``.

One file (``torch.save``) holding a dictionary::

    {
      "format": "xai-study-detector",
      "version": 1,
      "config": {"arch", "backbone", "input_size", "mean", "std", ...},
      "state_dict": {name: tensor},          # float16 or float32 storage
      "meta": {"training_data", "command", "metrics", "history",
               "threshold", "calibration", ...},
    }

``meta["threshold"]`` (``evaluate-detector --save-threshold``) holds ``p_fake`` on the
calibrated scale and ``p_fake_raw`` on the model's raw scale; ``meta["calibration"]``
(``xai-study calibrate``, :mod:`xai_study.detectors.calibration`) the temperature or
Platt parameters and how they were fitted. Without a calibration both scales are one.

Loading uses ``torch.load(weights_only=True)`` (no code execution from the file) and
validates every part, raising :class:`CheckpointError` with a one-line reason. A file
that is not in this format but looks like a polimi-ispl/icpr2020dfdc state dict is
handed to :mod:`xai_study.detectors.icpr`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from xai_study.detectors.calibration import Calibration
from xai_study.errors import CheckpointError, XaiStudyError
from xai_study.resources import models_dir

if TYPE_CHECKING:
    from xai_study.detectors.models import Detector

FORMAT = "xai-study-detector"
VERSION = 1
# the checkout's models/ or the installed copy (xai_study.resources)
MODELS_DIR = models_dir()
DEMO_MODELS = ("plain", "bonettini", "ltpa")
MAX_BYTES = 2 * 1024**3


def save_checkpoint(
    detector: Detector,
    path: str | os.PathLike,
    meta: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write ``detector`` (weights + config + ``meta``) to ``path``; ``half=True`` stores
    floating-point tensors as float16 (half the size; loaded back as float32)."""
    state = {}
    for k, v in detector.state_dict().items():
        v = v.detach().cpu()
        if half and v.is_floating_point():
            v = v.half()
        state[k] = v.clone()
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": _plain(dict(detector.config)),
        "state_dict": state,
        "meta": _plain(dict(meta or {})),
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, p)
    return p


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _plain(obj: Any) -> Any:
    """Only JSON-like values in config/meta, so ``weights_only`` loading accepts them."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if obj is None:
        return None
    for kind in (bool, int, float, str):  # exact builtins (not TorchVersion, np.float64)
        if isinstance(obj, kind):
            return kind(obj)
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    s = str(name_or_path)
    if s in DEMO_MODELS:
        p = MODELS_DIR / f"{s}.pt"
        if not p.exists():
            raise CheckpointError(f"demo checkpoint {s!r} is missing ({p})")
        return p
    p = Path(s)
    if not p.exists():
        raise CheckpointError(
            f"{s}: no such checkpoint (use a path or one of {', '.join(DEMO_MODELS)})"
        )
    if not p.is_file():
        raise CheckpointError(f"{s}: not a file")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{s}: the checkpoint file is empty")
    if p.stat().st_size > MAX_BYTES:
        raise CheckpointError(f"{s}: the file is over {MAX_BYTES / 1e9:.0f} GB")
    return p


def read_checkpoint(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """The raw checkpoint dictionary (validated only as a readable torch file)."""
    p = resolve_model(name_or_path)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors, unsafe globals, truncated files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{p}: not a readable PyTorch checkpoint ({msg[:200]})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{p}: a checkpoint must be a dictionary, got {type(obj).__name__}")
    return obj


def checkpoint_info(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """``config`` and ``meta`` of a project checkpoint (no model is built)."""
    obj = read_checkpoint(name_or_path)
    if obj.get("format") != FORMAT:
        raise CheckpointError(f"{name_or_path}: not an xai-study detector checkpoint")
    return {"config": obj.get("config", {}), "meta": obj.get("meta", {})}


def load_detector(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> Detector:
    """Load a detector: ``plain``/``bonettini``/``ltpa`` (the demo checkpoints in
    ``models/``), a project checkpoint file, or an icpr2020dfdc state dict."""
    from xai_study.detectors.models import create_detector, list_detectors

    p = resolve_model(name_or_path)
    obj = read_checkpoint(p)
    if obj.get("format") != FORMAT:
        from xai_study.detectors.icpr import is_icpr_state, load_icpr_state

        if is_icpr_state(obj):
            return load_icpr_state(obj, source=str(p)).to(device).eval()
        raise CheckpointError(
            f"{p}: not an xai-study detector checkpoint nor an icpr2020dfdc state dict"
        )
    if obj.get("version") != VERSION:
        raise CheckpointError(f"{p}: checkpoint version {obj.get('version')!r} is not supported")
    config, state = obj.get("config"), obj.get("state_dict")
    if not isinstance(config, dict) or not isinstance(state, dict) or not state:
        raise CheckpointError(f"{p}: the checkpoint has no config or no weights")
    for key in ("arch", "backbone", "input_size", "mean", "std"):
        if key not in config:
            raise CheckpointError(f"{p}: the checkpoint config lacks {key!r}")
    if config["arch"] not in list_detectors():
        raise CheckpointError(f"{p}: unknown architecture {config['arch']!r}")
    options = {
        k: v for k, v in config.items() if k not in ("arch", "backbone", "input_size", "pretrained")
    }
    try:
        model: Detector = create_detector(
            config["arch"], config["backbone"], int(config["input_size"]), **options
        )
    except XaiStudyError as exc:
        raise CheckpointError(f"{p}: {exc}") from None
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise CheckpointError(
            f"{p}: weights do not match the {config['arch']}/{config['backbone']} model "
            f"({len(missing)} missing, {len(unexpected)} unexpected, e.g. {first!r})"
        )
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{p}: weight {k!r} is not a tensor")
        if tuple(v.shape) != tuple(target[k].shape):
            raise CheckpointError(
                f"{p}: weight {k!r} has shape {tuple(v.shape)}, expected {tuple(target[k].shape)}"
            )
    state = {k: v.to(target[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    for k, v in model.state_dict().items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{p}: weight {k!r} contains NaN or infinity")
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        raise CheckpointError(f"{p}: the checkpoint meta must be a dictionary")
    Calibration.from_meta(meta.get("calibration"), str(p))  # a one-line error if malformed
    model.meta = meta
    model.source = str(p)
    return model.to(device).eval()


def write_checkpoint_dict(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a raw checkpoint dictionary (as :func:`read_checkpoint` returned it, with
    its metadata changed) back to ``path``, atomically (a temporary file, then rename)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, p)
    return p


def warm_start(model: Detector, name_or_path: str | os.PathLike) -> dict[str, Any]:
    """Initialise ``model`` from another detector's weights, as ``--init`` of
    icpr2020dfdc's ``train_binclass.py`` does: every tensor whose name and shape match
    is copied, the rest (an attention module, a differently shaped classifier) keeps its
    fresh initialisation. The source is a demo name, a project checkpoint or an
    icpr2020dfdc state dict; it must share the backbone and the input normalisation.
    Returns what was done, for the new checkpoint's metadata."""
    src = load_detector(name_or_path)
    s_cfg, t_cfg = src.config, model.config
    for key in ("backbone", "mean", "std"):
        a, b = s_cfg.get(key), t_cfg.get(key)
        if key == "backbone":
            same = a == b
        else:
            x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            same = bool(np.allclose(x, y, rtol=0, atol=1e-6))
        if not same:
            raise XaiStudyError(
                f"--init {name_or_path}: its {key} is {s_cfg.get(key)!r}, "
                f"the new model's is {t_cfg.get(key)!r}"
            )
    pad = s_cfg.get("same_padding_size")
    backbone = getattr(model, "backbone", None)  # the EfficientNet family has one
    if pad and t_cfg.get("same_padding_size") != pad and isinstance(backbone, torch.nn.Module):
        from xai_study.detectors.padding import freeze_same_padding

        freeze_same_padding(backbone, int(pad))
        model.config["same_padding_size"] = int(pad)
    source = src.state_dict()
    target = model.state_dict()
    take = {
        k: v.to(target[k].dtype)
        for k, v in source.items()
        if k in target and tuple(v.shape) == tuple(target[k].shape)
    }
    if not any(k.startswith("backbone.") for k in take):
        raise XaiStudyError(f"--init {name_or_path}: no backbone weights fit the new model")
    model.load_state_dict(take, strict=False)
    new = sorted({k.split(".")[0] for k in target if k not in take})
    return {
        "source": str(name_or_path),
        "sha256": file_sha256(resolve_model(name_or_path)),
        "arch": s_cfg.get("arch"),
        "copied": len(take),
        "total": len(target),
        "new": new,
    }
