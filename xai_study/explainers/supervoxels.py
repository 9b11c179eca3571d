"""Supervoxels over a whole clip and the masking game shared by SHAP-3D and LIME-3D.

SLIC runs on the ``(T, H, W, 3)`` stack at once (``channel_axis=-1``, labels from 0,
``spacing`` per axis so the temporal extent of a segment is tunable), optionally on a
down-scaled copy for speed with the labels scaled back by nearest neighbour.

:class:`CoalitionGame` maps coalitions (binary vectors over the supervoxels) to the
video-level logit of the clip in which the coalition's supervoxels keep their pixels and
every other supervoxel shows the baseline. A masked frame depends only on which of the
segments *present in that frame* are kept, so frame logits are cached under that key:
exact, and it removes most evaluations of the small and large coalitions that Kernel
SHAP enumerates first. Uncached frames are evaluated in bounded batches, so memory never
grows with the number of coalitions.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from xai_study.detectors.contract import PRECISIONS, detector_device, resolve_precision
from xai_study.errors import XaiStudyError
from xai_study.explainers.base import (
    BASELINES,
    Explainer,
    batch_size_of,
    check_choice,
    check_positive_int,
    make_baseline,
)

if TYPE_CHECKING:
    from xai_study.detectors.contract import VideoDetector


def supervoxels(
    frames: np.ndarray,
    n_segments: int = 64,
    compactness: float = 10.0,
    temporal_spacing: float = 4.0,
    scale: float = 0.5,
) -> np.ndarray:
    """SLIC supervoxels of a clip: ``(T, H, W)`` int32 labels ``0..K-1`` (all used)."""
    import cv2
    from skimage.segmentation import slic

    T, H, W = frames.shape[:3]
    small = frames
    if 0 < scale < 1:
        h, w = max(8, round(H * scale)), max(8, round(W * scale))
        small = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
    if T == 1:
        labels = slic(
            small[0],
            n_segments=n_segments,
            compactness=compactness,
            channel_axis=-1,
            start_label=0,
        )[None]
    else:
        labels = slic(
            small,
            n_segments=n_segments,
            compactness=compactness,
            channel_axis=-1,
            start_label=0,
            spacing=(float(temporal_spacing), 1.0, 1.0),
        )
    if labels.shape[1:] != (H, W):
        labels = np.stack(
            [
                cv2.resize(lab.astype(np.int32), (W, H), interpolation=cv2.INTER_NEAREST)
                for lab in labels
            ]
        )
    # Relabel to 0..K-1 (SLIC may leave gaps; resizing may drop tiny segments).
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape).astype(np.int32)


class CoalitionGame:
    """Video logit of masked clips, with per-frame caching and bounded batches."""

    def __init__(
        self,
        detector: VideoDetector,
        frames: np.ndarray,
        segments: np.ndarray,
        baseline: np.ndarray,
        sign: float = 1.0,
        batch_size: int = 16,
        progress=None,
        input_size: int = 0,
        precision: str = "float32",
    ):
        if segments.shape != frames.shape[:3] or baseline.shape != frames.shape:
            raise ValueError("frames, segments and baseline do not match")
        self.detector = detector
        self.frames = frames
        self.baseline = baseline
        self.segments = segments
        self.sign = float(sign)
        self.batch_size = max(1, int(batch_size))
        # input size of the masked evaluations (0: the detector's own); every value of
        # the game, the end points included, is then of the detector at this size
        self.input_size = int(input_size or 0)
        # "float32", or "bfloat16" autocast in batched_logits ("auto": by the hardware)
        self.precision = resolve_precision(precision, detector_device(detector))
        self.progress = progress
        self.progress_at = 0.0  # fraction reported by frame_values' batches (caller's)
        self.n_segments = int(segments.max()) + 1
        self.present = [np.unique(s) for s in segments]  # segment ids in each frame
        self.cache: dict[tuple[int, bytes], float] = {}
        self.frames_evaluated = 0  # model evaluations (frames through the detector)
        self.batches = 0
        self.batch_sizes: list[int] = []
        self.model_seconds = 0.0  # time spent in the detector (preprocess + forward)
        self.coalitions = 0  # whole-clip coalitions asked for
        self.frame_coalitions = 0  # coalitions of single-frame games asked for
        self.sizes = np.bincount(segments.ravel(), minlength=self.n_segments)  # pixels

    def _key(self, t: int, coalition: np.ndarray) -> tuple[int, bytes]:
        return t, np.packbits(coalition[self.present[t]]).tobytes()

    def masked_frame(self, t: int, coalition: np.ndarray) -> np.ndarray:
        keep = coalition[self.segments[t]]
        return np.where(keep[..., None], self.frames[t], self.baseline[t])

    def masked_clip(self, coalition: np.ndarray) -> np.ndarray:
        keep = np.asarray(coalition, dtype=bool)
        return np.stack([self.masked_frame(t, keep) for t in range(len(self.frames))])

    def _evaluate(self, jobs: list[tuple[tuple[int, bytes], int, np.ndarray]]) -> None:
        from xai_study.detectors.contract import batched_logits

        batch = np.stack([self.masked_frame(t, c) for _, t, c in jobs])
        start = time.perf_counter()
        inputs: Any = batch  # uint8 frames, or a tensor already at input_size
        if self.input_size and self.input_size != self.detector.input_size:
            from xai_study.detectors.contract import preprocess_frames

            det = self.detector
            inputs = preprocess_frames(
                batch, self.input_size, det.mean, det.std, detector_device(det)
            )
        logits = batched_logits(
            self.detector, inputs, batch_size=len(batch), precision=self.precision
        )
        self.model_seconds += time.perf_counter() - start
        for (key, _, _), value in zip(jobs, logits, strict=True):
            self.cache[key] = float(value)
        self.frames_evaluated += len(jobs)
        self.batches += 1
        self.batch_sizes.append(len(jobs))

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        """Values (signed video logits) of the rows of ``coalitions`` (n, K) in {0, 1}."""
        z = np.atleast_2d(np.asarray(coalitions)) > 0.5
        if z.shape[1] != self.n_segments:
            raise ValueError(f"coalitions have {z.shape[1]} columns, expected {self.n_segments}")
        T = len(self.frames)
        keys = [[self._key(t, row) for t in range(T)] for row in z]
        pending: list = []
        queued: set = set()
        total = len(z)
        for i, row in enumerate(z):
            for t in range(T):
                key = keys[i][t]
                if key not in self.cache and key not in queued:
                    queued.add(key)
                    pending.append((key, t, row))
                    if len(pending) == self.batch_size:
                        self._evaluate(pending)
                        pending, queued = [], set()
            if self.progress is not None and (i % 8 == 0 or i == total - 1):
                self.progress((i + 1) / total)
        if pending:
            self._evaluate(pending)
        self.coalitions += total
        values = np.array([[self.cache[k] for k in row_keys] for row_keys in keys])
        return self.sign * values.mean(axis=1)

    def frame_values(self, t: int, local: np.ndarray) -> np.ndarray:
        """Values (signed logits of frame ``t``) of coalitions over the frame's own players.

        ``local`` is ``(n, K_t)`` in {0, 1}, column ``j`` standing for the supervoxel
        ``present[t][j]``; every other supervoxel is absent from the frame and cannot
        change it. One coalition costs at most one frame evaluation (shared cache).
        """
        z = np.atleast_2d(np.asarray(local)) > 0.5
        present = self.present[t]
        if z.shape[1] != len(present):
            raise ValueError(f"coalitions have {z.shape[1]} columns, frame {t} has {len(present)}")
        keys = [(t, np.packbits(row).tobytes()) for row in z]
        pending: list = []
        queued: set = set()
        for key, row in zip(keys, z, strict=True):
            if key in self.cache or key in queued:
                continue
            full = np.zeros(self.n_segments, dtype=bool)
            full[present] = row
            queued.add(key)
            pending.append((key, t, full))
            if len(pending) == self.batch_size:
                self._evaluate(pending)
                pending, queued = [], set()
                if self.progress is not None:  # also the caller's chance to cancel
                    self.progress(self.progress_at)
        if pending:
            self._evaluate(pending)
        self.frame_coalitions += len(z)
        return self.sign * np.array([self.cache[k] for k in keys])

    def clip_logits(self) -> np.ndarray:
        """Per-frame logits of the unmasked clip (from the cache when already evaluated)."""
        full = np.ones(self.n_segments, dtype=bool)
        if any(self._key(t, full) not in self.cache for t in range(len(self.frames))):
            self(full[None])
            self.coalitions -= 1
        return np.array([self.cache[self._key(t, full)] for t in range(len(self.frames))])

    def video_score(self) -> float:
        """Video P(fake) of the unmasked clip with the detector's own aggregation: the
        verdict's score, so always the detector at its own size in float32 (computed
        afresh when the game evaluates at another ``input_size`` or in bfloat16)."""
        own_size = not self.input_size or self.input_size == self.detector.input_size
        if self.precision != "float32" or not own_size:
            return float(self.detector.video_score(self.frames))
        return float(self.detector.aggregate(self.clip_logits()))

    def paint(self, values: np.ndarray, paint: str = "total") -> np.ndarray:
        """``(T, H, W)`` float32 maps of one value per supervoxel: every pixel carries its
        supervoxel's value (``paint="total"``) or that value divided by the supervoxel's
        size in pixels over the clip (``"density"``: the map then sums to the values'
        sum)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        if len(values) != self.n_segments:
            raise XaiStudyError("one value per supervoxel is needed")
        if paint == "density":
            values = values / np.maximum(self.sizes, 1)
        elif paint != "total":
            raise XaiStudyError(f"paint must be 'total' or 'density', got {paint!r}")
        return values.astype(np.float32)[self.segments]

    def stats(self) -> dict:
        return {
            "supervoxels": self.n_segments,
            "coalitions": self.coalitions,
            "frames_evaluated": self.frames_evaluated,
            "frame_coalitions": self.frame_coalitions,
            "frames_without_cache": self.coalitions * len(self.frames) + self.frame_coalitions,
            "batches": self.batches,
            "batch_sizes": list(self.batch_sizes),
            "model_seconds": self.model_seconds,
            "precision": self.precision,
        }


# Parameters shared by every explainer that plays the coalition game over supervoxels.
SUPERVOXEL_DEFAULTS = {
    "n_segments": 64,
    "compactness": 10.0,
    "temporal_spacing": 4.0,
    "slic_scale": 0.5,
    "baseline": "blur",
    "blur_sigma": 0.0,
    "batch_size": 0,
    "input_size": 0,
    "precision": "float32",
    "paint": "total",
    "seed": 0,
}

#: How a supervoxel's value becomes pixels (see :meth:`CoalitionGame.paint`).
PAINTS = ("total", "density")


class SupervoxelExplainer(Explainer):
    """Base of the black-box explainers over 3D supervoxels (SHAP-3D, LIME-3D).

    Subclasses extend ``defaults`` with their sampling parameters and build the game with
    :meth:`game`; the supervoxels, baseline and batching are the same for all of them.
    """

    signed = True
    requires = None
    defaults = SUPERVOXEL_DEFAULTS

    def check_params(self) -> None:
        p = self.params
        check_positive_int("n_segments", p["n_segments"], 2)
        check_choice("baseline", p["baseline"], BASELINES)
        check_positive_int("batch_size", p["batch_size"], 0)
        if 0 < check_positive_int("input_size", p["input_size"], 0) < 32:
            raise XaiStudyError(
                f"input_size must be 0 (the detector's own) or at least 32, got {p['input_size']}"
            )
        check_choice("paint", p["paint"], PAINTS)
        check_choice("precision", p["precision"], (*PRECISIONS, "auto"))

    def game(self, frames: np.ndarray, sign: float = 1.0, progress=None) -> CoalitionGame:
        p = self.params
        segments = supervoxels(
            frames,
            n_segments=int(p["n_segments"]),
            compactness=float(p["compactness"]),
            temporal_spacing=float(p["temporal_spacing"]),
            scale=float(p["slic_scale"]),
        )
        baseline = make_baseline(frames, p["baseline"], float(p["blur_sigma"]))
        game = CoalitionGame(
            self.detector,
            frames,
            segments,
            baseline,
            sign=sign,
            batch_size=int(p["batch_size"]) or batch_size_of(self.detector),
            progress=progress,
            input_size=int(p["input_size"]),
            precision=str(p["precision"]),
        )
        if game.n_segments < 2:
            raise XaiStudyError("the clip has fewer than 2 supervoxels: nothing to explain")
        return game
