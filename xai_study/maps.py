"""The view of explanation maps that metrics and rendering use.

Design §2, steps 1–2: keep only evidence for the explained class (``max(M, 0)`` for
signed methods), then min–max normalise over the whole clip so relative intensity
between frames is kept. A constant clip becomes all zeros.
"""

from __future__ import annotations

import numpy as np


def as_maps(maps) -> np.ndarray:
    """Validate and return a (T, H, W) float64 array (a single (H, W) map becomes T=1)."""
    arr = np.asarray(maps, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"explanation maps must be (T, H, W), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("explanation maps contain NaN or infinite values")
    return arr


def non_negative(maps, signed: bool) -> np.ndarray:
    """Step 1: ``max(M, 0)`` for signed explainers; unchanged otherwise."""
    arr = as_maps(maps)
    return np.maximum(arr, 0.0) if signed else arr


def normalise(maps, signed: bool = False) -> np.ndarray:
    """Steps 1–2: non-negative view, min–max normalised over the whole clip (float64)."""
    arr = non_negative(maps, signed)
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo <= 0:
        return np.zeros_like(arr)
    return (arr - lo) / (hi - lo)


def resize_maps(
    maps: np.ndarray, size: tuple[int, int], mode: str = "bilinear", engine: str = "torch"
) -> np.ndarray:
    """Resize ``(T, h, w)`` maps to ``size`` = ``(H, W)``, the one resizing of maps.

    ``engine="torch"`` (the explainers: maps to the crop grid): float32,
    ``torch.nn.functional.interpolate`` with ``mode`` ``bilinear`` (``align_corners=False``)
    or ``nearest``. ``engine="opencv"`` (the faithfulness metric: normalised maps to the
    frame grid): ``cv2.resize`` with linear interpolation, in the maps' own precision
    (float64 there). Both sample at pixel centres, so they agree to round-off; each caller
    keeps the one it was measured with. Maps already of that size are returned as they
    are (converted to float32 for ``torch``).
    """
    size = (int(size[0]), int(size[1]))
    if engine == "opencv":
        if mode != "bilinear":
            raise ValueError("the opencv engine resizes bilinearly only")
        arr = np.asarray(maps)
        if arr.shape[1:] == size:
            return arr
        import cv2

        h, w = size
        return np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) for m in arr])
    if engine != "torch":
        raise ValueError(f"unknown resize engine {engine!r} (torch or opencv)")
    import torch
    import torch.nn.functional as F

    arr = np.asarray(maps, dtype=np.float32)
    if arr.shape[1:] == size:
        return arr
    t = torch.from_numpy(np.ascontiguousarray(arr))[:, None]
    if mode == "bilinear":
        out = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    elif mode == "nearest":
        out = F.interpolate(t, size=size, mode="nearest")
    else:
        raise ValueError(f"unknown resize mode {mode!r} (bilinear or nearest)")
    return out[:, 0].numpy()
