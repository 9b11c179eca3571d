"""Localisation: does the explanation point at the manipulated region?

Both metrics compare the normalised explanation ``N`` (design §2 steps 1–2) with a
ground-truth manipulation mask ``G[t, y, x]`` (the swapped / blended face region of a
fake video, on the same face-crop grid). Masks may be soft (blending weights); they
are binarised at ``threshold`` (default 0.5) so that both metrics and their chance level
refer to the same region. A mask of a different size is resized to the map grid with
nearest-neighbour sampling.

Frames whose mask is empty are skipped (there is nothing to point at), as are frames
whose map is empty (mass accuracy) or constant (pointing game). Each metric has a
``chance`` level: the expected score of an explanation that carries no information
about the mask, which for both is the mask's area share (a uniform map puts that share
of its mass inside the mask; a uniformly random point falls inside with that
probability). An explainer localises the manipulation when its score exceeds chance.
"""

from __future__ import annotations

import numpy as np

from xai_study.errors import XaiStudyError
from xai_study.maps import normalise
from xai_study.metrics.base import NAN, Metric, nanmean_or_nan


def prepare_mask(mask, shape: tuple[int, int, int], threshold: float = 0.5) -> np.ndarray:
    """Binarise ``mask`` (T×h×w or h×w, bool/uint8/float) and fit it to ``shape`` (T, H, W).

    uint8 masks in 0..255 are scaled to [0, 1] first. A single (h, w) mask applies to
    every frame. Raises :class:`XaiStudyError` when the frame counts disagree.
    """
    m = np.asarray(mask)
    if m.dtype == np.uint8 and m.max(initial=0) > 1:
        m = m.astype(np.float64) / 255.0
    m = m.astype(np.float64)
    if m.ndim == 2:
        m = np.broadcast_to(m, (shape[0],) + m.shape)
    if m.ndim != 3:
        raise XaiStudyError(f"a mask must be (T, H, W) or (H, W), got shape {m.shape}")
    if m.shape[0] != shape[0]:
        raise XaiStudyError(f"mask has {m.shape[0]} frames but the explanation has {shape[0]}")
    h, w = shape[1:]
    if m.shape[1:] != (h, w):
        rows = np.minimum((np.arange(h) + 0.5) * m.shape[1] / h, m.shape[1] - 1).astype(int)
        cols = np.minimum((np.arange(w) + 0.5) * m.shape[2] / w, m.shape[2] - 1).astype(int)
        m = m[:, rows][:, :, cols]
    return m >= threshold


class _MaskMetric(Metric):
    higher_is_better = True
    value_range = (0.0, 1.0)

    def __init__(self, signed: bool = False, threshold: float = 0.5):
        self.signed = signed
        self.threshold = threshold

    def _inputs(self, maps, mask, signed):
        n = normalise(maps, self.signed if signed is None else signed)
        g = prepare_mask(mask, n.shape, self.threshold)
        return n, g

    def __call__(self, maps, mask, signed: bool | None = None) -> float:
        n, g = self._inputs(maps, mask, signed)
        return self.score(n, g)

    def chance(self, maps, mask, signed: bool | None = None) -> float:
        """The mask's area share, averaged over the frames this metric scores."""
        n, g = self._inputs(maps, mask, signed)
        keep = self._frames(n, g)
        if not keep.any():
            return NAN
        return float(g[keep].reshape(int(keep.sum()), -1).mean(axis=1).mean())

    def _frames(self, n: np.ndarray, g: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def score(self, n: np.ndarray, g: np.ndarray) -> float:  # pragma: no cover
        raise NotImplementedError


class RelevanceMassAccuracy(_MaskMetric):
    """Relevance mass accuracy ``mean_t Σ N[t]·G[t] / Σ N[t]``.

    The share of the (non-negative, clip-normalised) relevance that falls inside the
    binarised mask, per frame, averaged over frames with a non-empty mask and a non-zero
    map. 1 when all relevance is inside the mask (e.g. the map equals the mask); chance
    level is the mask's area share. Range [0, 1], higher is better.
    """

    name = "mass_accuracy"
    reference = (
        "Arras, Osman & Samek (2022), CLEVR-XAI: a benchmark dataset for the ground truth "
        "evaluation of neural network explanations, Information Fusion 81"
    )

    def _frames(self, n, g):
        return g.any(axis=(1, 2)) & (n.sum(axis=(1, 2)) > 0)

    def score(self, n, g):
        keep = self._frames(n, g)
        if not keep.any():
            return NAN
        inside = (n * g).sum(axis=(1, 2))[keep]
        return float(np.mean(inside / n.sum(axis=(1, 2))[keep]))


class PointingGame(_MaskMetric):
    """Pointing game: the fraction of frames whose maximum lies inside the mask.

    For each frame with a non-empty mask and a non-constant map, a hit is scored when
    the arg-max pixel lies inside the binarised mask. When several pixels tie for the
    maximum (saturated maps), the frame scores the fraction of tied pixels inside the
    mask, which equals the hit probability of breaking the tie at random. Chance level
    is the mask's area share. Range [0, 1], higher is better.
    """

    name = "pointing_game"
    reference = (
        "Zhang, Bargal, Lin, Brandt, Shen & Sclaroff (2018), Top-down neural attention "
        "by excitation backprop, IJCV 126"
    )

    def _frames(self, n, g):
        flat = n.reshape(n.shape[0], -1)
        return g.any(axis=(1, 2)) & (flat.max(axis=1) > flat.min(axis=1))

    def score(self, n, g):
        keep = self._frames(n, g)
        if not keep.any():
            return NAN
        hits = []
        for t in np.flatnonzero(keep):
            peak = n[t] == n[t].max()
            hits.append(float(g[t][peak].mean()))
        return nanmean_or_nan(hits)


def localisation_metrics(maps, mask, signed: bool = False, threshold: float = 0.5) -> dict:
    """Mass accuracy and pointing game with their chance levels (keys ``*_chance``)."""
    out = {}
    for cls in (RelevanceMassAccuracy, PointingGame):
        metric = cls(signed=signed, threshold=threshold)
        out[cls.name] = metric(maps, mask)
        out[f"{cls.name}_chance"] = metric.chance(maps, mask)
    return out
