"""Face detection (MTCNN, batched; on the GPU when present) and single-identity
tracking.

``detect_faces`` runs MTCNN on a batch of RGB frames. Frames whose longest side is above
``max_side`` are downscaled (area interpolation) for detection only, and the boxes and
landmarks are mapped back to source pixels, so crops can be cut from the full-resolution
frame. MTCNN is this project's own implementation (``xai_study.video.mtcnn``) with the
pretrained weights shipped as package data; the networks are loaded once per process and
device (guarded by a lock, since the web app calls this from threads). ``device`` is read
by :func:`xai_study.devices.resolve_device` (``None`` or ``auto``: the GPU when torch sees
one, else the CPU).

``track_faces`` keeps one identity over the sampled frames: tracks start from the most
confident face (ties broken by size) and link frames forwards and backwards by box
overlap (IoU) or, failing that, by centre distance relative to the face size; the track
with the largest total confidence is kept, so that a second person entering some frames
cannot take over the clip.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_MAX_SIDE = 640
DEFAULT_MIN_PROB = 0.9
DEFAULT_MIN_FACE_SIZE = 20
DEFAULT_THRESHOLDS = (0.6, 0.7, 0.7)
DEFAULT_BATCH_SIZE = 16
# MTCNN is many small tensor operations (a Python loop resizes every candidate box):
# with several intra-op threads the synchronisation costs more than it saves. Measured on
# 2 shared cores (benchmarks/bench_faces.py): 32 frames in ~2-3 s with 1 thread against
# 5-30 s with 2. So detection runs single-threaded by default.
DEFAULT_THREADS = 1

_MODEL_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}  # device -> MTCNN


@dataclass
class Face:
    """One detected face, in source-frame pixels."""

    box: np.ndarray  # (4,) float32 x1, y1, x2, y2
    prob: float
    landmarks: np.ndarray  # (5, 2) float32 x, y: left eye, right eye, nose, mouth L, mouth R

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def size(self) -> float:
        """max(width, height) of the box."""
        return max(self.width, self.height)

    @property
    def centre(self) -> np.ndarray:
        return np.array(
            [(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], dtype=np.float64
        )

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "prob": round(float(self.prob), 5),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
        }


def get_mtcnn(device: str | None = None):
    """The process-wide MTCNN (P/R/O-nets with the weights in ``mtcnn_weights.npz``) on
    ``device`` (default: the GPU when present), one per device."""
    from xai_study.devices import resolve_device

    name = resolve_device(device)
    model = _MODELS.get(name)
    if model is None:
        with _MODEL_LOCK:
            model = _MODELS.get(name)
            if model is None:
                from xai_study.video.mtcnn import MTCNN

                model = MTCNN().to(name).eval()
                _MODELS[name] = model
    return model


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: leave as is).

    torch's thread count is an OpenMP setting of the calling thread (plus the default
    for threads started later), so each caller saves and restores its own value and
    concurrent callers in other threads do not disturb one another.
    """
    if n is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _resize(frame: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    return cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)


def _detect_batch(
    batch: np.ndarray,
    min_face_size: int,
    thresholds: Sequence[float],
    device: str | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Raw MTCNN on equally sized uint8 frames: per frame (n, 5) boxes+prob, (n, 5, 2)."""
    model = get_mtcnn(device)
    return model.detect(batch, min_face_size=min_face_size, thresholds=thresholds)


def detect_faces(
    frames: np.ndarray | Sequence[np.ndarray],
    max_side: int | None = DEFAULT_MAX_SIDE,
    min_prob: float = DEFAULT_MIN_PROB,
    min_face_size: int = DEFAULT_MIN_FACE_SIZE,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    threads: int | None = DEFAULT_THREADS,
    device: str | None = None,
) -> list[list[Face]]:
    """Detect faces in RGB uint8 frames (T×H×W×3 array, or a list of H×W×3 arrays).

    Returns, per frame, the faces with ``prob >= min_prob`` sorted by decreasing
    probability. ``max_side`` bounds the longest side of the image MTCNN sees (``None``:
    full resolution); ``min_face_size`` is in detection pixels. ``progress`` is called
    with the number of frames done after each batch. ``threads`` is the number of torch
    threads used while detecting (``None``: torch's current setting).
    """
    if isinstance(frames, np.ndarray):
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
        frame_list = list(frames)
    else:
        frame_list = [np.asarray(f) for f in frames]
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    results: list[list[Face]] = [[] for _ in frame_list]
    # Group frames by size: MTCNN batches need equally sized images.
    groups: dict[tuple[int, int], list[int]] = {}
    for i, f in enumerate(frame_list):
        if f.ndim != 3 or f.shape[-1] != 3:
            raise ValueError(f"expected H×W×3 frames, got {f.shape}")
        groups.setdefault(f.shape[:2], []).append(i)
    for (h, w), idx in groups.items():
        scale = 1.0
        if max_side is not None and max(h, w) > max_side:
            scale = max_side / max(h, w)
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            imgs = [frame_list[i] for i in chunk]
            if scale != 1.0:
                imgs = [_resize(f, scale) for f in imgs]
            batch = np.ascontiguousarray(np.stack(imgs).astype(np.uint8, copy=False))
            with torch_threads(threads):
                boxes, points = _detect_batch(batch, min_face_size, thresholds, device)
            for i, b, p in zip(chunk, boxes, points, strict=True):
                faces = [
                    Face(
                        box=(b[k, :4] / scale).astype(np.float32),
                        prob=float(b[k, 4]),
                        landmarks=(p[k] / scale).astype(np.float32),
                    )
                    for k in range(len(b))
                    if b[k, 4] >= min_prob
                ]
                faces.sort(key=lambda f: -f.prob)
                results[i] = faces
            if progress is not None:
                progress(len(chunk))
    return results


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return float(inter / union) if union > 0 else 0.0


def _link_cost(last: Face, cand: Face, gap: int, iou_min: float, max_shift: float) -> float | None:
    """Cost of linking ``cand`` to the track's ``last`` face ``gap`` samples back, or None.

    A link needs a plausible size change (within 2×) and either box overlap of at least
    ``iou_min`` or a centre shift of at most ``max_shift`` face sizes (growing a little
    with the gap, as a face may move more over a longer time).
    """
    ratio = cand.size / max(last.size, 1e-6)
    if not 0.5 <= ratio <= 2.0:
        return None
    iou = box_iou(last.box, cand.box)
    shift = float(np.linalg.norm(cand.centre - last.centre)) / max(last.size, 1e-6)
    allowed = max_shift * (1.0 + 0.25 * (gap - 1))
    if iou < iou_min and shift > min(allowed, 2 * max_shift):
        return None
    return shift - iou


def build_tracks(
    detections: Sequence[Sequence[Face]],
    iou_min: float = 0.3,
    max_shift: float = 0.75,
) -> list[list[Face | None]]:
    """Split per-frame detections into identity tracks (each face in at most one track).

    Tracks are seeded greedily: the most confident face not yet in a track (ties within
    1e-3 broken by the larger box) starts a track, which grows forwards and backwards;
    in each frame the free candidate with the lowest link cost to the last tracked face
    is taken, and frames with no acceptable candidate get ``None`` (the track continues
    from the last face it had). The first track is seeded by the most confident face.
    """
    n = len(detections)
    used = [[False] * len(faces) for faces in detections]
    tracks: list[list[Face | None]] = []
    while True:
        best: tuple | None = None
        for t, faces in enumerate(detections):
            for k, f in enumerate(faces):
                if used[t][k]:
                    continue
                key = (round(f.prob, 3), f.width * f.height, -t, -k)
                if best is None or key > best:
                    best = key
        if best is None:
            return tracks
        t0, k0 = -best[2], -best[3]
        track: list[Face | None] = [None] * n
        track[t0] = detections[t0][k0]
        used[t0][k0] = True
        for direction in (1, -1):
            last, last_t = track[t0], t0
            t = t0 + direction
            while 0 <= t < n:
                scored = []
                for k, f in enumerate(detections[t]):
                    if used[t][k]:
                        continue
                    cost = _link_cost(last, f, abs(t - last_t), iou_min, max_shift)
                    if cost is not None:
                        scored.append((cost, k))
                if scored:
                    k = min(scored)[1]
                    used[t][k] = True
                    track[t] = last = detections[t][k]
                    last_t = t
                t += direction
        tracks.append(track)


def track_faces(
    detections: Sequence[Sequence[Face]],
    iou_min: float = 0.3,
    max_shift: float = 0.75,
) -> list[Face | None]:
    """Follow one identity through per-frame detections; ``None`` where it is absent.

    Of the tracks of :func:`build_tracks`, the one with the largest total confidence
    (sum of face probabilities, so mostly the face seen in the most frames) is kept, ties
    broken by the larger mean box. A second person who appears in some frames therefore
    never takes over the clip, even when their face is bigger or more confident there.
    """
    tracks = build_tracks(detections, iou_min=iou_min, max_shift=max_shift)
    if not tracks:
        return [None] * len(detections)

    def key(track: list[Face | None]) -> tuple[float, float]:
        faces = [f for f in track if f is not None]
        total = sum(f.prob for f in faces)
        area = float(np.mean([f.width * f.height for f in faces]))
        return (round(total, 3), area)

    return max(tracks, key=key)
