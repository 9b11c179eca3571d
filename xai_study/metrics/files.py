"""Metrics of explanation maps saved as ``.npz`` files (``xai-study metrics``).

A file holds an array ``maps`` (T×H×W, or H×W for one frame), optionally a boolean
``signed`` (keep only the positive part, design §2 step 1) and a ground-truth ``mask``
(T×H×W or H×W), which adds the localisation metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xai_study.errors import XaiStudyError


def load_maps_file(
    path: Path, force_signed: bool = False
) -> tuple[np.ndarray, bool, np.ndarray | None]:
    """``(maps, signed, mask)`` of one ``.npz`` file, checked (clear one-line errors)."""
    if not path.is_file():
        raise XaiStudyError(f"{path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception:
        raise XaiStudyError(f"{path}: not a readable .npz file") from None
    if not hasattr(data, "files"):  # np.load returned a plain .npy array
        raise XaiStudyError(f"{path}: a .npy array, not an .npz file with an array 'maps'")
    with data:
        if "maps" not in data.files:
            raise XaiStudyError(
                f"{path}: no array 'maps' (found: {', '.join(data.files) or 'none'})"
            )
        maps = np.asarray(data["maps"])
        signed = force_signed or (
            bool(np.asarray(data["signed"]).item()) if "signed" in data.files else False
        )
        mask = np.asarray(data["mask"]) if "mask" in data.files else None
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3 or 0 in maps.shape:
        raise XaiStudyError(f"{path}: 'maps' must be T x H x W, got shape {maps.shape}")
    if not np.issubdtype(maps.dtype, np.number) or maps.dtype == np.bool_:
        maps = maps.astype(np.float64)
    if not np.all(np.isfinite(maps)):
        raise XaiStudyError(f"{path}: 'maps' contains NaN or infinite values")
    return maps, signed, mask


def file_metrics(path: Path, force_signed: bool = False) -> dict[str, Any]:
    """``{"file": ..., V, tau, rho, mu[, localisation metrics]}`` of one file."""
    from xai_study.metrics.localisation import localisation_metrics
    from xai_study.metrics.paper import paper_metrics

    maps, signed, mask = load_maps_file(path, force_signed)
    row: dict[str, Any] = {"file": str(path), **paper_metrics(maps, signed=signed)}
    if mask is not None:
        row.update(localisation_metrics(maps, mask, signed=signed))
    return row
