"""Labelled video lists and cached face crops for training and evaluating detectors.

Labels files are read by :mod:`xai_study.labels` (the one reader every command uses);
here a row becomes a :class:`VideoItem` with an integer label, and a row without a split
is a training video.

Face crops come from :func:`xai_study.video.extract_face_clip` and are cached on disk
(``.xai_study_cache/faces`` by default, ignored by git) keyed by the file's content
(SHA-1) and the crop settings, so the three demo detectors share one
extraction pass.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xai_study.errors import NoFaceError, XaiStudyError

DEFAULT_CACHE = Path(".xai_study_cache") / "faces"


@dataclass
class VideoItem:
    video_id: str
    path: Path
    label: int  # 1 = fake, 0 = real
    split: str
    identity: str = ""


def read_labels(csv_path: str | os.PathLike) -> list[VideoItem]:
    """The videos of a labels CSV (:func:`xai_study.labels.read_labels`) as training
    items; a row without a split is a training video."""
    from xai_study.labels import read_labels as read_records

    return [
        VideoItem(
            video_id=r.video_id,
            path=r.path,
            label=int(r.is_fake),
            split=r.split or "train",
            identity=r.identity,
        )
        for r in read_records(csv_path)
    ]


def select_split(items: list[VideoItem], split: str, csv_path: str = "") -> list[VideoItem]:
    from xai_study.labels import canonical_split

    wanted = canonical_split(split)
    chosen = [it for it in items if it.split == wanted]
    if not chosen:
        have = sorted({it.split for it in items})
        raise XaiStudyError(
            f"{csv_path or 'labels'}: no videos in split {split!r} (splits: {', '.join(have)})"
        )
    return chosen


def _cache_key(path: Path, num_frames: int, size: int, margin: float) -> str:
    """Content-addressed: the file's SHA-1 plus the crop settings (a copied or moved
    video still hits the cache; an edited one does not)."""
    h = hashlib.sha1()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    h.update(f"|{num_frames}|{size}|{margin}|v2".encode())
    return h.hexdigest()[:24]


def load_faces(
    path: str | os.PathLike,
    num_frames: int,
    size: int,
    margin: float = 1.3,
    cache_dir: str | os.PathLike | None = DEFAULT_CACHE,
    device: str | None = None,
) -> np.ndarray:
    """Face crops ``(T, size, size, 3)`` uint8 of one video, from the cache when possible
    (faces detected on ``device``, default: the GPU when present).

    Raises :class:`NoFaceError` (no face) or ``VideoError`` (unreadable file)."""
    from xai_study.video.clip import FaceClip, extract_face_clip

    p = Path(path)
    if not p.is_file():
        raise XaiStudyError(f"{p}: no such video")
    target = None
    if cache_dir is not None:
        target = Path(cache_dir) / f"{_cache_key(p, num_frames, size, margin)}.npz"
        if target.exists():
            try:
                return FaceClip.from_npz(target).frames
            except Exception:  # a corrupt cache entry: extract again
                target.unlink(missing_ok=True)
    clip = extract_face_clip(p, num_frames=num_frames, size=size, margin=margin, device=device)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.stem + f".{os.getpid()}.tmp.npz")
        clip.to_npz(tmp)
        os.replace(tmp, target)
    return clip.frames


@dataclass
class FaceSet:
    """Face crops of a list of videos, flattened to frames with a video index."""

    frames: np.ndarray  # (N, S, S, 3) uint8
    video: np.ndarray  # (N,) index into ``items``
    labels: np.ndarray  # (N,) 0/1 per frame
    items: list[VideoItem]
    skipped: list[str]

    def video_labels(self) -> np.ndarray:
        return np.array([it.label for it in self.items], dtype=np.int64)


def build_faceset(
    items: list[VideoItem],
    num_frames: int,
    size: int,
    margin: float = 1.3,
    cache_dir: str | os.PathLike | None = DEFAULT_CACHE,
    progress: bool = True,
    desc: str = "faces",
    device: str | None = None,
) -> FaceSet:
    """Load (and cache) the face crops of every video (faces detected on ``device``);
    videos without a face or that cannot be read are skipped and listed in ``skipped``."""
    from tqdm import tqdm

    from xai_study.errors import VideoError

    frames, video, labels, kept, skipped = [], [], [], [], []
    for it in tqdm(items, desc=desc, unit="video", disable=not progress):
        try:
            crops = load_faces(it.path, num_frames, size, margin, cache_dir, device)
        except (NoFaceError, VideoError) as exc:
            skipped.append(f"{it.video_id}: {exc}")
            continue
        if len(crops) == 0:
            skipped.append(f"{it.video_id}: no face")
            continue
        frames.append(crops)
        video.append(np.full(len(crops), len(kept), dtype=np.int64))
        labels.append(np.full(len(crops), it.label, dtype=np.int64))
        kept.append(it)
    if not kept:
        raise XaiStudyError(f"no usable video ({len(skipped)} skipped: {skipped[:1]})")
    return FaceSet(
        frames=np.concatenate(frames),
        video=np.concatenate(video),
        labels=np.concatenate(labels),
        items=kept,
        skipped=skipped,
    )
