"""The live demo's jobs: input checks, result cache, analysis, captions and the
confidence-weighted view.

:func:`run_demo` is what the ``/demo`` page calls (no Gradio here). It checks the input
(size, duration, decodability), looks the result up in a :class:`ResultCache` keyed by the
file's SHA-256 and the settings, and otherwise runs :func:`xai_study.runs.analyse_video`
and adds, per explanation, the paper's four metrics and a one-line caption naming the face
regions it highlights (paper's future work 1), plus a consensus view weighted by the
detector's per-frame confidence (future work 2).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xai_study.detectors.checkpoint import DEMO_MODELS, MODELS_DIR, file_sha256
from xai_study.errors import VideoError, XaiStudyError
from xai_study.explainers import paper_explainers

CACHE_VERSION = 2  # 2: per-frame SHAP-3D, I, convergence warnings
DEFAULT_MAX_SECONDS = 60.0
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class DemoSettings:
    """What a demo result depends on besides the video itself."""

    explainers: tuple[str, ...] = field(default_factory=lambda: tuple(paper_explainers()))
    preset: str = "fast"
    frames: int = 16
    target: str = "fake"
    detectors: str = "default"  # description of the detectors (part of the cache key)

    def key(self) -> str:
        d = asdict(self)
        d["explainers"] = sorted(d["explainers"])
        d["version"] = CACHE_VERSION
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@functools.cache
def demo_checkpoints_id() -> str:
    """Identifies the demo checkpoints in ``models/`` by content, so that cached demo
    results are not reused after a checkpoint (or its threshold) changes."""
    parts = []
    for name in DEMO_MODELS:
        p = MODELS_DIR / f"{name}.pt"
        parts.append(file_sha256(p)[:12] if p.exists() else "missing")
    return "demo-checkpoints:" + "-".join(parts)


def check_input(
    path: str | os.PathLike | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> Path:
    """Fail early, with one line, on a missing, too large, too long or unreadable file."""
    import av

    from xai_study.video import check_file
    from xai_study.video.io import check_pixels

    if path is None or str(path) == "":
        raise VideoError("no video given: upload a video or pick a demo video")
    p = check_file(path, max_bytes)
    name = p.name
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise VideoError(f"{name}: the file has no video stream")
            stream = container.streams.video[0]
            seconds = None
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / 1_000_000
            # the pixel budget before decoding anything: a tiny file can declare frames
            # of hundreds of megapixels, and the first frame alone would cost that much
            ctx = stream.codec_context
            check_pixels(Path(name), ctx.width or 0, ctx.height or 0, 1)
            frame = next(container.decode(stream), None)
            if frame is None:
                raise VideoError(f"{name}: the video has no decodable frames")
    except VideoError:
        raise
    except Exception as exc:  # FFmpeg errors, bad bytes
        raise VideoError(f"{name}: not a readable video ({type(exc).__name__})") from None
    if seconds is not None and seconds > max_seconds:
        raise VideoError(
            f"{name}: the video lasts {seconds:.1f} s, over the limit of {max_seconds:.0f} s"
        )
    return p


# ---------------------------------------------------------------- confidence weighting


def confidence_weights(frame_scores: np.ndarray, target: str = "fake") -> np.ndarray:
    """Per-frame confidence of the detector in the explained class, in [0, 1]."""
    p = np.clip(np.asarray(frame_scores, dtype=np.float64), 0.0, 1.0)
    return p if target == "fake" else 1.0 - p


def weighted_consensus(normalised: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Mean of the explainers' normalised maps, each frame scaled by the detector's
    confidence in that frame relative to its most confident frame: frames the detector
    hardly believes fade out. Returns (T, H, W) in [0, 1]."""
    stack = np.stack([np.asarray(n, dtype=np.float64) for n in normalised])
    mean = stack.mean(axis=0)
    w = np.asarray(weights, dtype=np.float64)
    if len(w) != len(mean):
        raise ValueError(f"{len(w)} weights for {len(mean)} frames")
    top = w.max() if len(w) else 0.0
    scale = w / top if top > 0 else np.zeros_like(w)
    return mean * scale[:, None, None]


# ---------------------------------------------------------------- result cache


@dataclass
class DemoResult:
    """What the page shows. Paths are absolute; everything else is JSON-friendly."""

    key: str
    folder: Path
    verdict: str
    p_fake: float
    frame_scores: list[float]
    timestamps: list[float]
    animations: dict[str, str]  # explainer -> mp4 path
    labels: dict[str, str]
    captions: dict[str, str]
    metrics: dict[str, dict[str, float | None]]
    regions: dict[str, dict]
    face_track: str | None
    weighted: str | None
    weighted_caption: str
    settings: dict
    grid: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cached: bool = False
    threshold: float = 0.5

    def to_json(self) -> dict:
        d = asdict(self)
        d["folder"] = str(self.folder)
        for k in ("animations",):
            d[k] = {n: Path(p).name for n, p in self.animations.items()}
        d["face_track"] = Path(self.face_track).name if self.face_track else None
        d["weighted"] = Path(self.weighted).name if self.weighted else None
        d["grid"] = Path(self.grid).name if self.grid else None
        d.pop("cached")
        return d

    @classmethod
    def from_json(cls, folder: Path, d: dict) -> DemoResult:
        d = dict(d)
        d["folder"] = folder
        d["animations"] = {n: str(folder / f) for n, f in d["animations"].items()}
        d["face_track"] = str(folder / d["face_track"]) if d.get("face_track") else None
        d["weighted"] = str(folder / d["weighted"]) if d.get("weighted") else None
        d["grid"] = str(folder / d["grid"]) if d.get("grid") else None
        return cls(**d, cached=True)


class ResultCache:
    """Finished results on disk, one folder per (file hash, settings) key.

    A folder becomes visible only once complete (written under a temporary name, then
    renamed), so a crashed or cancelled job never leaves a half result behind. A lock per
    key makes two users who submit the same video and settings share one computation.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def folder(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> DemoResult | None:
        folder = self.folder(key)
        meta = folder / "result.json"
        if not meta.is_file():
            return None
        try:
            result = DemoResult.from_json(folder, json.loads(meta.read_text()))
        except (ValueError, TypeError, KeyError):
            return None
        files = [*result.animations.values(), result.face_track, result.weighted, result.grid]
        if any(f and not Path(f).is_file() for f in files):
            return None
        return result

    def put(self, tmp_folder: Path, result: DemoResult) -> DemoResult:
        folder = self.folder(result.key)
        (tmp_folder / "result.json").write_text(json.dumps(result.to_json(), indent=1))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp_folder, folder)
        return DemoResult.from_json(folder, json.loads((folder / "result.json").read_text()))


# ---------------------------------------------------------------- the job


def run_demo(
    path: str | os.PathLike | None,
    settings: DemoSettings,
    cache: ResultCache,
    *,
    detectors: Any = None,
    progress: Callable[[str, float], None] | None = None,
    cancel: threading.Event | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> DemoResult:
    """Check the input, then return the cached result or compute and cache it.

    ``detectors``: a :class:`~xai_study.runs.DetectorSet` (``serve --model``, with its
    device and batch size), a mapping of architecture to spec or object, or None (the
    demo checkpoints); ``settings.detectors`` must identify them for the cache."""
    p = check_input(path, max_bytes=max_bytes, max_seconds=max_seconds)
    if not settings.explainers:
        raise XaiStudyError("choose at least one explainer")
    if not 1 <= int(settings.frames) <= 64:
        raise XaiStudyError(f"the number of frames must be 1-64, got {settings.frames}")
    key = f"{file_sha256(p)[:24]}-{settings.key()}"
    hit = cache.get(key)
    if hit is not None:
        return hit
    with cache.lock(key):
        hit = cache.get(key)  # someone else may have finished it meanwhile
        if hit is not None:
            return hit
        tmp = cache.root / f".tmp-{key}-{os.getpid()}-{threading.get_ident()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            result = _compute(p, settings, key, tmp, detectors, progress, cancel)
            stored = cache.put(tmp, result)
            stored.cached = False  # computed by this call
            return stored
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _convergence_warnings(analysis) -> list[str]:
    """One line per explanation whose convergence figure is poor (SHAP-3D, LIME-3D)."""
    from xai_study.explainers import explainer_label
    from xai_study.explainers.convergence import convergence_warning

    out = []
    for name, expl in analysis.explanations.items():
        warning = convergence_warning(expl.extra.get("convergence"))
        if warning:
            out.append(f"{explainer_label(name)}: {warning}")
    return out


def _compute(p, settings, key, tmp, detectors, progress, cancel) -> DemoResult:
    from xai_study.demo.regions import caption, region_shares, scale_landmarks
    from xai_study.explainers import explainer_label
    from xai_study.metrics import paper_metrics
    from xai_study.render import render_overlay, save_animation
    from xai_study.runs import analyse_video

    t0 = time.perf_counter()
    analysis = analyse_video(
        p,
        explainers=list(settings.explainers),
        preset=settings.preset,
        num_frames=int(settings.frames),
        target=settings.target,
        detectors=detectors,
        out_dir=tmp,
        progress=progress,
        cancel=cancel,
    )
    if progress is not None:
        progress("captions", 1.0)
    clip = analysis.clip
    crops = np.asarray(clip.frames)
    fps = float(clip.fps) if getattr(clip, "fps", 0) else 8.0
    fps = max(2.0, min(fps, 12.0))
    animations, labels, captions, metrics, regions = {}, {}, {}, {}, {}
    normals = []
    for name, expl in analysis.explanations.items():
        n = np.asarray(expl.normalised, dtype=np.float64)
        normals.append(n)
        lms = scale_landmarks(clip.crop_landmarks, crops.shape[1:3], n.shape[1:3])
        shares = region_shares(n, lms)
        label = explainer_label(name)
        labels[name] = label
        captions[name] = caption(shares, label)
        regions[name] = shares.as_dict()
        metrics[name] = {
            k: (None if not np.isfinite(v) else float(v))
            for k, v in paper_metrics(expl.maps, signed=expl.signed).items()
        }
        animations[name] = str(analysis.files[name])
    weights = confidence_weights(analysis.frame_scores, settings.target)
    weighted = weighted_consensus(normals, weights)
    w_lms = scale_landmarks(clip.crop_landmarks, crops.shape[1:3], weighted.shape[1:3])
    w_shares = region_shares(weighted, w_lms)
    w_path = save_animation(
        render_overlay(crops, weighted, legend=True), tmp / "confidence_weighted.mp4", fps
    )
    face_path = save_animation(crops, tmp / "faces.mp4", fps)
    seconds = {k: float(v) for k, v in analysis.seconds.items()}
    seconds["total"] = time.perf_counter() - t0
    return DemoResult(
        key=key,
        folder=tmp,
        verdict=analysis.verdict,
        p_fake=float(analysis.p_fake),
        threshold=float(analysis.threshold),
        frame_scores=[float(s) for s in analysis.frame_scores],
        timestamps=[float(t) for t in clip.timestamps],
        animations=animations,
        labels=labels,
        captions=captions,
        metrics=metrics,
        regions=regions,
        face_track=str(face_path),
        weighted=str(w_path),
        weighted_caption=caption(w_shares, "Confidence-weighted consensus"),
        settings=asdict(settings),
        grid=str(analysis.grid) if analysis.grid else None,
        seconds=seconds,
        warnings=[*getattr(clip, "warnings", []), *_convergence_warnings(analysis)],
    )
