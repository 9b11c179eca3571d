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
