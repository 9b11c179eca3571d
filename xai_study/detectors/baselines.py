"""Reference ("baseline") clips: what a pixel shows when an explainer or a metric hides it.

The one implementation, used by the supervoxel explainers (SHAP-3D, LIME-3D), integrated
gradients and the deletion / insertion metrics. Each caller passes its own blur σ
explicitly, because they differ on purpose: the explainers blur with σ = 1/10 of the crop
side (:func:`explainer_blur_sigma`), the faithfulness metrics with σ = 5 % of the frame
side, at least 1 pixel (Petsiuk et al.'s insertion baseline, :func:`metric_blur_sigma`).
"""

from __future__ import annotations

import numpy as np

from xai_study.errors import XaiStudyError

#: Every baseline kind :func:`make_baseline` knows.
BASELINE_KINDS = ("black", "grey", "mean", "blur")


def explainer_blur_sigma(frames: np.ndarray) -> float:
    """The explainers' default blur σ in pixels: 1/10 of the longer crop side."""
    return max(frames.shape[1:3]) / 10.0


def metric_blur_sigma(frames: np.ndarray) -> float:
    """The faithfulness metrics' blur σ in pixels: 5 % of the longer side, at least 1."""
    return max(1.0, 0.05 * max(frames.shape[1:3]))


def make_baseline(
    frames: np.ndarray,
    kind: str,
    blur_sigma: float,
    choices: tuple[str, ...] = BASELINE_KINDS,
) -> np.ndarray:
    """The ``(T, H, W, 3)`` baseline clip of ``frames`` (same dtype).

    ``black``: zeros; ``grey``: 128 everywhere; ``mean``: the clip's mean colour
    (rounded); ``blur``: every frame blurred with a Gaussian of σ = ``blur_sigma`` pixels
    (OpenCV, kernel size from σ). ``choices`` restricts the kinds a caller offers (an
    unknown kind is a one-line user error naming them).
    """
    frames = np.asarray(frames)
    if kind not in choices:
        raise XaiStudyError(f"unknown baseline {kind!r}; choose one of {', '.join(choices)}")
    if kind == "black":
        return np.zeros_like(frames)
    if kind == "grey":
        return np.full_like(frames, 128)
    if kind == "mean":
        colour = frames.reshape(-1, frames.shape[-1]).mean(axis=0)
        return np.broadcast_to(np.round(colour).astype(frames.dtype), frames.shape).copy()
    import cv2

    return np.stack([cv2.GaussianBlur(f, (0, 0), sigmaX=float(blur_sigma)) for f in frames])
