"""The metrics of Pino, Carman & Bestagini (2021), exactly as fixed in design §2.

V, τ, ρ and μ are the paper's four; I (mean intensity) is our reading of the fifth
column of the poster's first table. All five are computed on the normalised view ``N`` of the explanation (non-negative
view, then min–max over the whole clip, :func:`xai_study.maps.normalise`). A frame is
"constant" when all its values are equal; such frames carry no spatial information and
are skipped by τ and ρ (and by μ when they are all zero). A metric whose every frame or
pair is skipped is ``nan``.
"""

from __future__ import annotations

import math

import numpy as np

from xai_study.metrics.base import NAN, MapMetric

PAPER_REFERENCE = (
    "Pino, Carman & Bestagini (2021), What's wrong with this video? Comparing "
    "explainers for deepfake detection, arXiv:2105.05902"
)

#: The paper's Table (means over 58 fake DFDC videos, EfficientNet-B4 detectors), for
#: side-by-side comparison in ``evaluate`` summaries.
PAPER_RESULTS = {
    "bonettini": {"V": 0.0951, "tau": 0.7390, "rho": 0.1262, "mu": 0.5286, "I": 0.4821},
    "gradcam": {"V": 0.0135, "tau": 0.8756, "rho": 0.7489, "mu": 0.8666, "I": 0.0689},
    "ltpa": {"V": 0.0108, "tau": 0.7991, "rho": 0.3333, "mu": 0.6386, "I": 0.0616},
    "shap3d": {"V": 0.0302, "tau": 0.4496, "rho": 0.2326, "mu": 0.7348, "I": 0.0563},
}

#: Direction vectors (s_y, s_x) of the intra-frame autocorrelation shifts.
RHO_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _constant_frames(n: np.ndarray) -> np.ndarray:
    """Boolean (T,) mask of frames whose values are all equal."""
    flat = n.reshape(n.shape[0], -1)
    return flat.max(axis=1) == flat.min(axis=1)


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def shift_step(height: int, width: int) -> tuple[int, int]:
    """``(dy, dx) = (round(0.1·H), round(0.1·W))`` (halves round up)."""
    return _round_half_up(0.1 * height), _round_half_up(0.1 * width)


def autocorrelation(x: np.ndarray, u: int, v: int) -> np.ndarray:
    """``a(u, v) = Σ x[.., y, x] · x[.., y+u, x+v]`` over overlapping positions.

    ``x`` is (..., H, W); ``u >= 0``; ``v`` may be negative. Returns one value per
    leading index. Shifts at least as large as the frame give 0 (no overlap).
    """
    h, w = x.shape[-2:]
    if u < 0:
        raise ValueError("u must be >= 0")
    if u >= h or abs(v) >= w:
        return np.zeros(x.shape[:-2])
    if v >= 0:
        a = x[..., : h - u, : w - v]
        b = x[..., u:, v:]
    else:
        a = x[..., : h - u, -v:]
        b = x[..., u:, : w + v]
    return np.einsum("...ij,...ij->...", a, b)


class Variance(MapMetric):
    """Variance ``V = mean_t var(N[t])``.

    ``var`` is the population variance of the H·W values of frame ``t`` of the
    normalised clip ``N``. A constant clip normalises to zeros and gives V = 0. The
    paper reports V descriptively (lower means flatter maps); it has no "better"
    direction. Range [0, 0.25].
    """

    name = "V"
    reference = PAPER_REFERENCE
    higher_is_better = None
    value_range = (0.0, 0.25)

    def score(self, n: np.ndarray) -> float:
        return float(n.reshape(n.shape[0], -1).var(axis=1).mean())


class InterFrameConsistency(MapMetric):
    """Inter-frame consistency ``τ = mean_{t=0..T-2} pearson(N[t], N[t+1])``.

    Pearson correlation of the flattened consecutive frames of ``N``; pairs in which
    either frame is constant are skipped; ``nan`` when no pair is left (including T = 1).
    Higher means the explanation is more stable over time. Range [-1, 1].
    """

    name = "tau"
    reference = PAPER_REFERENCE
    higher_is_better = True
    value_range = (-1.0, 1.0)

    def score(self, n: np.ndarray) -> float:
        if n.shape[0] < 2:
            return NAN
        const = _constant_frames(n)
        flat = n.reshape(n.shape[0], -1)
        centred = flat - flat.mean(axis=1, keepdims=True)
        norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
        keep = ~(const[:-1] | const[1:])  # pairs where neither frame is constant
        if not keep.any():
            return NAN
        dots = np.einsum("ij,ij->i", centred[:-1], centred[1:])
        r = dots[keep] / (norms[:-1][keep] * norms[1:][keep])
        return float(np.mean(np.clip(r, -1.0, 1.0)))


class IntraFrameConsistency(MapMetric):
    """Intra-frame consistency ``ρ = mean_t mean_{s∈S} a_t(dy·s_y, dx·s_x) / a_t(0,0)``.

    ``x_t = N[t] - mean(N[t])``; ``a_t(u, v) = Σ_{y,x} x_t[y,x] · x_t[y+u, x+v]`` over the
    positions where both indices are inside the frame; ``dy = round(0.1·H)``,
    ``dx = round(0.1·W)``; ``S = {(0,1), (1,0), (1,1), (1,-1)}``. Frames with
    ``a_t(0,0) = 0`` (constant frames) are skipped; ``nan`` if all are. Higher means
    smoother, more spatially coherent maps (a single bright pixel gives ≈ 0, a broad
    blob ≈ 1). Each shifted sum is bounded by ``a_t(0,0)`` (Cauchy–Schwarz), so the range
    is [-1, 1].
    """

    name = "rho"
    reference = PAPER_REFERENCE
    higher_is_better = True
    value_range = (-1.0, 1.0)

    def score(self, n: np.ndarray) -> float:
        keep = ~_constant_frames(n)
        if not keep.any():
            return NAN
        frames = n[keep]
        x = frames - frames.mean(axis=(1, 2), keepdims=True)
        dy, dx = shift_step(*n.shape[1:])
        a0 = autocorrelation(x, 0, 0)
        shifted = np.stack(
            [autocorrelation(x, dy * sy, dx * sx) for sy, sx in RHO_DIRECTIONS], axis=0
        ).mean(axis=0)
        return float(np.mean(shifted / a0))


def inner_slices(height: int, width: int) -> tuple[slice, slice]:
    """Rows ``H//4 .. H//4 + H//2 - 1`` and columns ``W//4 .. W//4 + W//2 - 1``."""
    return (
        slice(height // 4, height // 4 + height // 2),
        slice(width // 4, width // 4 + width // 2),
    )


class Centredness(MapMetric):
    """Centredness ``μ = mean_t Σ N[t][inner] / Σ N[t]``.

    ``inner`` is the central rectangle spanning the middle 50 % of each side (rows
    ``H//4 .. H//4+H//2-1``, columns ``W//4 .. W//4+W//2-1``), a quarter of the area: a
    uniform non-zero frame gives 0.25. Frames whose sum is 0 are skipped; ``nan`` if all
    are. Higher means the relevance sits on the centre of the face crop. Range [0, 1].
    """

    name = "mu"
    reference = PAPER_REFERENCE
    higher_is_better = True
    value_range = (0.0, 1.0)

    def score(self, n: np.ndarray) -> float:
        rows, cols = inner_slices(*n.shape[1:])
        total = n.sum(axis=(1, 2))
        inner = n[:, rows, cols].sum(axis=(1, 2))
        keep = total > 0
        if not keep.any():
            return NAN
        return float(np.mean(inner[keep] / total[keep]))


class Intensity(MapMetric):
    """Intensity ``I = mean_t mean(N[t])``: the mean value of the normalised clip.

    Our reading of the column "I [0,1]" of the poster's first metrics table (the paper
    does not define it; design §2 item 8). A constant clip normalises to zeros and
    gives I = 0; a map that is bright everywhere gives values near 1. Descriptive, like
    V: lower means sparser maps, with no "better" direction. Range [0, 1].
    """

    name = "I"
    reference = PAPER_REFERENCE
    higher_is_better = None
    value_range = (0.0, 1.0)

    def score(self, n: np.ndarray) -> float:
        return float(n.reshape(n.shape[0], -1).mean(axis=1).mean())


PAPER_METRICS = (Variance, InterFrameConsistency, IntraFrameConsistency, Centredness, Intensity)


def paper_metrics(maps, signed: bool = False) -> dict[str, float]:
    """``{"V", "tau", "rho", "mu", "I"}`` of one explanation (design §2), ``nan`` if
    undefined."""
    from xai_study.maps import normalise

    n = normalise(maps, signed)
    return {cls.name: cls().score(n) for cls in PAPER_METRICS}
