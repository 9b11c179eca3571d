"""Faithfulness: deletion and insertion AUC (Petsiuk, Das & Saenko 2018, RISE).

Pixels of the whole clip are ranked by the normalised explanation ``N`` (design §2
steps 1–2; the map is resized bilinearly to the frame size when the grids differ), most
relevant first, ties broken by a seeded random order. Maps that paint one *total* value
per supervoxel (SHAP-3D, LIME-3D and ``null_supervoxels`` with ``paint="total"``, the
default) are ranked by what a pixel is worth instead: pass their ``segments``
(:func:`density_segments` of the explanation) and pixels are ranked by the non-negative
value divided by their supervoxel's size in pixels, so a large supervoxel whose total
is high but whose pixels each carry little does not go first. For ``k = 0..steps`` the first
``k/steps`` of the ranked pixels are

- **deleted**: replaced by the baseline (deletion curve, starts at the real video), or
- **inserted**: copied from the real video onto the baseline (insertion curve, starts at
  the baseline video),

and the detector's video-level P(fake) is recorded. The score is the area under that
curve over the fraction changed (trapezoid rule, x in [0, 1]). A faithful explanation
makes P(fake) fall fast when its pixels are deleted (low deletion AUC) and rise fast
when they are inserted (high insertion AUC). All perturbed clips of one curve are scored
in batches of ``batch_size`` clips.

Baselines: ``black`` (zeros, Petsiuk's deletion default), ``grey`` (128), ``mean``
(the clip's mean colour) and ``blur`` (Gaussian blur with σ = 5 % of the frame side,
Petsiuk's insertion default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from xai_study.errors import XaiStudyError
from xai_study.maps import normalise, resize_maps
from xai_study.metrics.base import Metric

if TYPE_CHECKING:
    from xai_study.detectors.contract import VideoDetector

PETSIUK_REFERENCE = (
    "Petsiuk, Das & Saenko (2018), RISE: Randomized input sampling for explanation of "
    "black-box models, BMVC"
)
BASELINES = ("black", "grey", "mean", "blur")

ScoreFn = Callable[[np.ndarray], np.ndarray]


def baseline_frames(frames: np.ndarray, baseline: str) -> np.ndarray:
    """The (T, H, W, 3) uint8 baseline video for ``frames`` (blur: σ = 5 % of the frame
    side, at least 1 pixel; :mod:`xai_study.detectors.baselines`)."""
    from xai_study.detectors.baselines import make_baseline, metric_blur_sigma

    frames = np.asarray(frames)
    return make_baseline(frames, baseline, metric_blur_sigma(frames), choices=BASELINES)


def density_segments(explanation) -> np.ndarray | None:
    """The supervoxel labels to rank ``explanation``'s pixels by density, or ``None``:
    an :class:`~xai_study.explainers.base.Explanation` whose ``extra["paint"]`` is
    ``"total"`` (one value per supervoxel, painted on all of its pixels) gives its
    ``extra["segments"]``; any other map is already per pixel."""
    extra = getattr(explanation, "extra", None) or {}
    if extra.get("paint") == "total" and extra.get("segments") is not None:
        return np.asarray(extra["segments"])
    return None


def density_key(maps, segments, signed: bool) -> np.ndarray:
    """Per-pixel ranking key of a map painting supervoxel totals: ``max(M, 0)`` (signed)
    or ``M`` divided by the size (pixels over the clip) of the pixel's supervoxel."""
    from xai_study.maps import non_negative

    x = non_negative(maps, signed)
    seg = np.asarray(segments)
    if seg.shape != x.shape:
        raise XaiStudyError(f"segments have shape {seg.shape}, the maps {x.shape}")
    if seg.min(initial=0) < 0:
        raise XaiStudyError("segment labels must be non-negative integers")
    sizes = np.bincount(seg.astype(np.int64).ravel())
    return x / sizes[seg]


def detector_scorer(detector: VideoDetector, max_batch_frames: int = 64) -> ScoreFn:
    """Wrap a detector (:class:`~xai_study.detectors.contract.VideoDetector`) as a batched
    video scorer.

    The returned function takes (B, T, H, W, 3) uint8 clips and returns B values of the
    detector's video-level P(fake), ``detector.aggregate(frame_logits)`` (its
    ``config["aggregation"]``). All B·T frames are preprocessed together and evaluated
    at most ``max_batch_frames`` per forward pass.
    """
    from xai_study.detectors.contract import batched_logits

    def score(batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        b, t = batch.shape[:2]
        x = detector.preprocess(batch.reshape((b * t,) + batch.shape[2:]))
        logits = batched_logits(detector, x, max_batch_frames)
        per_frame = logits.reshape(b, t).astype(np.float64)
        return np.array([float(detector.aggregate(row)) for row in per_frame])

    return score


def as_scorer(model: VideoDetector | ScoreFn) -> ScoreFn:
    """A detector becomes a :func:`detector_scorer`; a plain callable is used as is."""
    from xai_study.detectors.contract import FrameClassifier, VideoDetector, check_detector

    if isinstance(model, VideoDetector):
        return detector_scorer(model)
    if isinstance(model, FrameClassifier):  # a frame classifier short of the contract
        check_detector(model, "the model")
    if callable(model):
        return model
    raise TypeError("expected a detector or a callable scoring (B, T, H, W, 3) uint8 clips")


class _PerturbationCurve(Metric):
    value_range = (0.0, 1.0)
    reference = PETSIUK_REFERENCE
    mode = ""
    default_baseline = "black"

    def __init__(
        self,
        steps: int = 10,
        baseline: str | None = None,
        batch_size: int = 4,
        signed: bool = False,
        seed: int = 0,
    ):
        if steps < 1:
            raise XaiStudyError("steps must be at least 1")
        baseline = baseline or self.default_baseline
        if baseline not in BASELINES:
            raise XaiStudyError(
                f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}"
            )
        self.steps = steps
        self.baseline = baseline
        self.batch_size = max(1, batch_size)
        self.signed = signed
        self.seed = seed

    def __repr__(self) -> str:
        return f"{type(self).__name__}(steps={self.steps}, baseline={self.baseline!r})"

    def order(
        self, maps, frame_size: tuple[int, int], signed: bool | None = None, segments=None
    ) -> np.ndarray:
        """Flat pixel indices (over T·H·W) from most to least relevant (by density within
        ``segments`` when given; see the module docstring)."""
        signed = self.signed if signed is None else signed
        key = normalise(maps, signed) if segments is None else density_key(maps, segments, signed)
        n = resize_maps(key, frame_size, engine="opencv")
        values = n.ravel()
        tie_break = np.random.default_rng(self.seed).random(values.size)
        return np.lexsort((tie_break, -values))

    def curve(
        self,
        frames,
        maps,
        model,
        signed: bool | None = None,
        endpoints: tuple[float, float] | None = None,
        segments=None,
    ):
        """``(fractions, scores)``: P(fake) after changing each fraction of the pixels.

        ``segments``: the supervoxel labels of a map that paints supervoxel totals
        (:func:`density_segments`); pixels are then ranked by density.

        ``endpoints = (P(fake | real clip), P(fake | baseline clip))``, when known (they
        do not depend on the explanation), are used instead of re-scoring those two
        clips, so ``steps - 1`` clips are scored instead of ``steps + 1``.
        """
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise XaiStudyError(f"frames must be (T, H, W, 3), got shape {frames.shape}")
        maps = np.asarray(maps)
        if maps.ndim == 2:
            maps = maps[None]
        if maps.shape[0] != frames.shape[0]:
            raise XaiStudyError(
                f"the explanation has {maps.shape[0]} maps but the clip has {frames.shape[0]} frames"
            )
        score_fn = as_scorer(model)
        t, h, w = frames.shape[:3]
        order = self.order(maps, (h, w), signed, segments)
        base = baseline_frames(frames, self.baseline).reshape(t * h * w, 3)
        real = frames.reshape(t * h * w, 3)
        counts = np.round(np.linspace(0, t * h * w, self.steps + 1)).astype(int)
        scores = np.full(len(counts), np.nan)
        todo = list(range(len(counts)))
        if endpoints is not None:
            start_end = endpoints if self.mode == "deletion" else endpoints[::-1]
            scores[0], scores[-1] = start_end
            todo = todo[1:-1]
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            batch = []
            for k in chunk:
                changed = order[: counts[k]]
                if self.mode == "deletion":
                    clip = real.copy()
                    clip[changed] = base[changed]
                else:
                    clip = base.copy()
                    clip[changed] = real[changed]
                batch.append(clip.reshape(t, h, w, 3))
            scores[chunk] = np.asarray(score_fn(np.stack(batch)), dtype=np.float64).ravel()
        return counts / float(t * h * w), scores

    def endpoints(self, frames, model) -> tuple[float, float]:
        """``(P(fake | real clip), P(fake | baseline clip))``, shared by every explanation."""
        frames = np.asarray(frames)
        both = np.stack([frames, baseline_frames(frames, self.baseline)])
        a, b = np.asarray(as_scorer(model)(both), dtype=np.float64).ravel()
        return float(a), float(b)

    def __call__(
        self,
        frames,
        maps,
        model,
        signed: bool | None = None,
        endpoints: tuple[float, float] | None = None,
        segments=None,
    ) -> float:
        fractions, scores = self.curve(frames, maps, model, signed, endpoints, segments)
        return float(np.trapezoid(scores, fractions))


class DeletionAUC(_PerturbationCurve):
    """Deletion AUC: area under P(fake) while the most relevant pixels are deleted.

    ``AUC = ∫_0^1 P(fake | top-f pixels replaced by the baseline) df`` (trapezoid rule
    over ``steps + 1`` equally spaced fractions; default baseline ``black``). Lower is
    better: a faithful explanation removes the evidence first. Range [0, 1].
    """

    name = "deletion_auc"
    higher_is_better = False
    mode = "deletion"
    default_baseline = "black"


class InsertionAUC(_PerturbationCurve):
    """Insertion AUC: area under P(fake) while the most relevant pixels are revealed.

    ``AUC = ∫_0^1 P(fake | top-f pixels of the real clip on the baseline) df``
    (trapezoid rule over ``steps + 1`` fractions; default baseline ``blur``). Higher is
    better: a faithful explanation restores the evidence first. Range [0, 1].
    """

    name = "insertion_auc"
    higher_is_better = True
    mode = "insertion"
    default_baseline = "blur"
