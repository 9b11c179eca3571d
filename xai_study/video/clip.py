"""Face clips: a tracked, square face crop per sampled frame of a video.

``extract_face_clip`` samples frames (``read_video``), detects faces (MTCNN), keeps one
identity (``track_faces``), lightly smooths the crop box over time to reduce jitter, and
cuts a square of side ``margin × max(box width, box height)`` centred on the face box
from the full-resolution frame. Parts of the square outside the frame are padded with
black (constant 0) — black carries no face texture a detector or explainer could pick up,
unlike edge replication or mirroring. The square is then resized to ``size × size``
(area interpolation when shrinking, bilinear when enlarging).
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xai_study.errors import NoFaceError, XaiStudyError
from xai_study.video.faces import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_SIDE,
    DEFAULT_MIN_PROB,
    DEFAULT_THREADS,
    Face,
    detect_faces,
    get_mtcnn,
    track_faces,
)
from xai_study.video.io import DEFAULT_MAX_BYTES, VideoFrames, read_video

NPZ_VERSION = 1

# Per-frame detections of recently seen files, so that cutting a second clip of the same
# video (another crop size or margin, as study building does) skips MTCNN. Keyed by the
# file's identity (path, size, modification time) and the sampling/detection settings.
_DETECTIONS: OrderedDict[tuple, list[list[Face]]] = OrderedDict()
_DETECTIONS_LOCK = threading.Lock()
_DETECTIONS_MAX = 32


def _detections_key(video: VideoFrames, max_side, min_prob, device: str) -> tuple | None:
    if not video.path:
        return None
    try:
        st = os.stat(video.path)
    except OSError:
        return None
    return (
        os.path.realpath(video.path),
        st.st_size,
        st.st_mtime_ns,
        tuple(int(i) for i in video.indices),
        video.frames.shape,
        max_side,
        float(min_prob),
        device,
    )


@dataclass
class FaceClip:
    """Square face crops of one tracked face, with where they came from."""

    frames: np.ndarray  # (T, S, S, 3) uint8 crops, only sampled frames with a face
    boxes: np.ndarray  # (T, 4) float32 face boxes x1, y1, x2, y2 in source pixels
    crop_boxes: np.ndarray  # (T, 4) float32 square crop regions in source pixels
    landmarks: np.ndarray  # (T, 5, 2) float32 source pixels
    crop_landmarks: np.ndarray  # (T, 5, 2) float32 crop pixels
    probs: np.ndarray  # (T,) float32 MTCNN face probability
    frame_indices: np.ndarray  # (T,) int64 source frame index of each crop
    timestamps: np.ndarray  # (T,) float64 seconds from the start of the video
    fps: float  # effective frame rate of the sampled frames (for animations)
    source_fps: float  # frame rate of the source video (1.0 for a still image)
    frames_sampled: int  # frames sampled from the video (with or without a face)
    coverage: float  # frames with a face / frames sampled
    source: str = ""
    size: int = 224
    margin: float = 1.3
    source_size: tuple[int, int] = (0, 0)  # (height, width) of the source frames
    sampled_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sampled_timestamps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    faces_per_frame: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(len(self.frames))

    @property
    def frames_with_face(self) -> int:
        return int(len(self.frames))

    # ----------------------------------------------------------------- serialisation
    def summary(self) -> dict:
        """JSON-ready description (everything but the pixels)."""
        has_face = set(int(i) for i in self.frame_indices)
        per_frame = [
            {
                "crop": f"face_{k:03d}.png",
                "frame_index": int(self.frame_indices[k]),
                "timestamp": round(float(self.timestamps[k]), 4),
                "box": [round(float(v), 2) for v in self.boxes[k]],
                "crop_box": [round(float(v), 2) for v in self.crop_boxes[k]],
                "prob": round(float(self.probs[k]), 5),
                "landmarks": [
                    [round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks[k]
                ],
                "crop_landmarks": [
                    [round(float(x), 2), round(float(y), 2)] for x, y in self.crop_landmarks[k]
                ],
            }
            for k in range(len(self))
        ]
        sampled = [
            {
                "frame_index": int(i),
                "timestamp": round(float(t), 4),
                "faces_detected": int(n),
                "tracked_face": int(i) in has_face,
            }
            for i, t, n in zip(
                self.sampled_indices, self.sampled_timestamps, self.faces_per_frame, strict=False
            )
        ]
        return {
            "source": self.source,
            "source_size": {"height": int(self.source_size[0]), "width": int(self.source_size[1])},
            "source_fps": round(float(self.source_fps), 4),
            "fps": round(float(self.fps), 4),
            "size": int(self.size),
            "margin": float(self.margin),
            "padding": "constant black (0) outside the source frame",
            "frames_sampled": int(self.frames_sampled),
            "frames_with_face": self.frames_with_face,
            "coverage": round(float(self.coverage), 4),
            "warnings": list(self.warnings),
            "frames": per_frame,
            "sampled": sampled,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the crops as ``face_000.png``... and ``faces.json`` into ``directory``.

        Crops named ``face_NNN.png`` beyond this clip's length (from an earlier run into the
        same folder) are removed.
        """
        from PIL import Image

        out = Path(directory)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise XaiStudyError(f"{out}: cannot create the output folder ({exc})") from None
        for k, crop in enumerate(self.frames):
            Image.fromarray(crop).save(out / f"face_{k:03d}.png")
        # Crops left over from an earlier, longer clip in the same folder would be mistaken
        # for this one's: remove them (only files named like ours).
        for old in out.glob("face_[0-9][0-9][0-9].png"):
            if int(old.stem[5:]) >= len(self):
                old.unlink()
        path = out / "faces.json"
        path.write_text(json.dumps(self.summary(), indent=2) + "\n")
        return path

    def to_npz(self, path: str | os.PathLike) -> Path:
        """Save everything (pixels included) to a compressed ``.npz`` cache file."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "version": NPZ_VERSION,
            "fps": float(self.fps),
            "source_fps": float(self.source_fps),
            "frames_sampled": int(self.frames_sampled),
            "coverage": float(self.coverage),
            "source": self.source,
            "size": int(self.size),
            "margin": float(self.margin),
            "source_size": [int(v) for v in self.source_size],
            "warnings": list(self.warnings),
        }
        with open(p, "wb") as fh:
            np.savez_compressed(
                fh,
                frames=self.frames,
                boxes=self.boxes,
                crop_boxes=self.crop_boxes,
                landmarks=self.landmarks,
                crop_landmarks=self.crop_landmarks,
                probs=self.probs,
                frame_indices=self.frame_indices,
                timestamps=self.timestamps,
                sampled_indices=self.sampled_indices,
                sampled_timestamps=self.sampled_timestamps,
                faces_per_frame=self.faces_per_frame,
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            )
        return p

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> FaceClip:
        """Load a clip saved by :meth:`to_npz`."""
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode())
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise XaiStudyError(f"{p}: not a face-clip cache file ({exc})") from None
        if meta.get("version") != NPZ_VERSION:
            raise XaiStudyError(f"{p}: unsupported face-clip cache version {meta.get('version')}")
        try:
            return cls(
                frames=arrays["frames"],
                boxes=arrays["boxes"],
                crop_boxes=arrays["crop_boxes"],
                landmarks=arrays["landmarks"],
                crop_landmarks=arrays["crop_landmarks"],
                probs=arrays["probs"],
                frame_indices=arrays["frame_indices"],
                timestamps=arrays["timestamps"],
                sampled_indices=arrays["sampled_indices"],
                sampled_timestamps=arrays["sampled_timestamps"],
                faces_per_frame=arrays["faces_per_frame"],
                fps=meta["fps"],
                source_fps=meta["source_fps"],
                frames_sampled=meta["frames_sampled"],
                coverage=meta["coverage"],
                source=meta["source"],
                size=meta["size"],
                margin=meta["margin"],
                source_size=tuple(meta["source_size"]),
                warnings=list(meta["warnings"]),
            )
        except KeyError as exc:
            raise XaiStudyError(f"{p}: face-clip cache file lacks {exc}") from None


# --------------------------------------------------------------------- geometry
def square_crop_box(box: np.ndarray, margin: float) -> np.ndarray:
    """Square x1, y1, x2, y2 of side ``margin × max(w, h)`` centred on ``box``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = margin * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)


def crop_square(frame: np.ndarray, crop_box: np.ndarray, size: int) -> np.ndarray:
    """Cut ``crop_box`` (square, may extend outside) from ``frame`` — an (H, W, 3) image or
    any (H, W[, C]) array such as a mask — pad with zeros (black), resize (area
    interpolation when shrinking, bilinear when enlarging). Keeps the dtype."""
    import cv2

    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in crop_box)
    side = max(1, round(x2 - x1))
    ox, oy = round(x1), round(y1)
    canvas = np.zeros((side, side, *frame.shape[2:]), dtype=frame.dtype)
    sx1, sy1 = max(0, ox), max(0, oy)
    sx2, sy2 = min(w, ox + side), min(h, oy + side)
    if sx2 > sx1 and sy2 > sy1:
        canvas[sy1 - oy : sy2 - oy, sx1 - ox : sx2 - ox] = frame[sy1:sy2, sx1:sx2]
    if side == size:
        return canvas
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(canvas, (size, size), interpolation=interp)


def smooth_boxes(boxes: np.ndarray, max_jitter: float = 0.25) -> np.ndarray:
    """Lightly smooth a sequence of face boxes (1-2-1 weights on centre and size).

    A neighbour only takes part when its centre is within ``max_jitter`` face sizes of
    the box being smoothed, so real motion between sparse samples is not blurred away —
    only small detector jitter is.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if len(boxes) < 3:
        return boxes.astype(np.float32)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    wh = boxes[:, 2:] - boxes[:, :2]
    size = wh.max(axis=1)
    out_c, out_wh = centre.copy(), wh.copy()
    for t in range(len(boxes)):
        wsum = 2.0
        c_acc, wh_acc = 2.0 * centre[t], 2.0 * wh[t]
        for u in (t - 1, t + 1):
            near = 0 <= u < len(boxes) and (
                np.linalg.norm(centre[u] - centre[t]) <= max_jitter * size[t]
            )
            if near:
                wsum += 1.0
                c_acc += centre[u]
                wh_acc += wh[u]
        out_c[t] = c_acc / wsum
        out_wh[t] = wh_acc / wsum
    return np.concatenate([out_c - out_wh / 2, out_c + out_wh / 2], axis=1).astype(np.float32)


def _effective_fps(timestamps: np.ndarray, source_fps: float, is_image: bool) -> float:
    if is_image or len(timestamps) < 2:
        return 1.0
    span = float(timestamps[-1] - timestamps[0])
    if span <= 0:
        return float(source_fps or 1.0)
    fps = (len(timestamps) - 1) / span
    if source_fps:
        fps = min(fps, float(source_fps))
    return float(fps)


# --------------------------------------------------------------------- main entry
def extract_face_clip(
    source: str | os.PathLike | VideoFrames,
    num_frames: int | None = 32,
    size: int = 224,
    margin: float = 1.3,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_side: int | None = DEFAULT_MAX_SIDE,
    min_prob: float = DEFAULT_MIN_PROB,
    smooth: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
    detections: Sequence[Sequence[Face]] | None = None,
    threads: int | None = DEFAULT_THREADS,
    device: str | None = None,
) -> FaceClip:
    """Turn a video (path or :class:`VideoFrames`) into a :class:`FaceClip`.

    ``num_frames`` frames are sampled evenly (ignored for ``VideoFrames``, whose frames
    are all used); ``size`` is the side of the square crops; ``margin`` scales the face
    box (1.3 = crop side 1.3 × the longer box side). ``max_bytes`` limits the file size
    (``None``: no limit). ``max_side`` bounds the detection resolution. ``progress`` shows
    a tqdm bar on stderr. ``detections`` (per-frame faces from :func:`detect_faces`) skips
    detection. For a path, the detections of the last 32 files seen are reused when the
    same file (same size and modification time) is sampled the same way again (never for
    ``VideoFrames``, whose pixels may have been edited). ``threads``: torch threads for
    detection (1 is fastest for MTCNN). ``device``: where MTCNN runs (``None``/``auto``:
    the GPU when present, else the CPU). Raises :class:`NoFaceError` when no sampled
    frame has a face.
    """
    if size < 8:
        raise XaiStudyError(f"the crop size must be at least 8 pixels, got {size}")
    if not margin or margin < 1.0 or margin > 4.0:
        raise XaiStudyError(f"the margin must be between 1.0 and 4.0, got {margin}")
    from xai_study.devices import resolve_device

    device = resolve_device(device)
    from_file = not isinstance(source, VideoFrames)
    if not from_file:
        video = source
    else:
        if num_frames is not None and num_frames < 1:
            raise XaiStudyError(f"the number of frames must be at least 1, got {num_frames}")
        video = read_video(source, num_frames=num_frames, max_bytes=max_bytes)
    frames = video.frames
    n = len(frames)
    key = None
    if from_file and detections is None:
        key = _detections_key(video, max_side, min_prob, device)
    if key is not None:
        with _DETECTIONS_LOCK:
            if key in _DETECTIONS:
                _DETECTIONS.move_to_end(key)
                detections = _DETECTIONS[key]
    if detections is None:
        bar = None
        if progress:
            from tqdm import tqdm

            get_mtcnn(device)  # load the model first, so the bar shows detection speed only

            bar = tqdm(total=n, desc="detecting faces", unit="frame", leave=False)
        try:
            detections = detect_faces(
                frames,
                max_side=max_side,
                min_prob=min_prob,
                batch_size=batch_size,
                progress=bar.update if bar is not None else None,
                threads=threads,
                device=device,
            )
        finally:
            if bar is not None:
                bar.close()
        if key is not None:
            with _DETECTIONS_LOCK:
                _DETECTIONS[key] = detections
                while len(_DETECTIONS) > _DETECTIONS_MAX:
                    _DETECTIONS.popitem(last=False)
    elif len(detections) != n:
        raise ValueError(f"{len(detections)} detections for {n} frames")
    track = track_faces(detections)
    keep = [t for t, f in enumerate(track) if f is not None]
    name = video.path or "the frames"
    if not keep:
        what = "the image" if video.is_image else f"any of the {n} sampled frames"
        raise NoFaceError(f"no face found in {what} of {name}")
    faces = [track[t] for t in keep]
    boxes = np.stack([f.box for f in faces]).astype(np.float32)
    lms = np.stack([f.landmarks for f in faces]).astype(np.float32)
    probs = np.asarray([f.prob for f in faces], dtype=np.float32)
    ref = smooth_boxes(boxes) if smooth else boxes
    crop_boxes = np.stack([square_crop_box(b, margin) for b in ref]).astype(np.float32)
    crops = np.stack(
        [crop_square(frames[t], cb, size) for t, cb in zip(keep, crop_boxes, strict=True)]
    )
    sides = (crop_boxes[:, 2] - crop_boxes[:, 0]).astype(np.float32)
    crop_lms = (lms - crop_boxes[:, None, :2]) * (size / sides)[:, None, None]
    ts_all = np.asarray(video.timestamps, dtype=np.float64)
    warnings = list(video.warnings)
    coverage = len(keep) / n
    if len(keep) < n:
        warnings.append(
            f"a face was found in {len(keep)} of {n} sampled frames (coverage {coverage:.2f}); "
            "only those frames are used"
        )
    if any(len(d) > 1 for d in detections):
        most = max(len(d) for d in detections)
        warnings.append(
            f"up to {most} faces in a frame: the clip follows one person "
            "(the face tracked with the highest total confidence)"
        )
    return FaceClip(
        frames=crops,
        boxes=boxes,
        crop_boxes=crop_boxes,
        landmarks=lms,
        crop_landmarks=crop_lms.astype(np.float32),
        probs=probs,
        frame_indices=np.asarray(video.indices, dtype=np.int64)[keep],
        timestamps=ts_all[keep],
        fps=_effective_fps(ts_all, video.fps, video.is_image),
        source_fps=float(video.fps),
        frames_sampled=n,
        coverage=float(coverage),
        source=str(video.path),
        size=int(size),
        margin=float(margin),
        source_size=(int(frames.shape[1]), int(frames.shape[2])),
        sampled_indices=np.asarray(video.indices, dtype=np.int64),
        sampled_timestamps=ts_all,
        faces_per_frame=np.asarray([len(d) for d in detections], dtype=np.int64),
        warnings=warnings,
    )
