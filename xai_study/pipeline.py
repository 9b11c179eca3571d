"""Whole-video analysis: face clip -> verdict -> explanations -> animations.

:func:`analyse_video` is what ``xai-study explain``, the live demo, ``build-study`` and
``evaluate`` share. It extracts the face clip, scores it with the plain detector (the
verdict: video P(fake) and per-frame scores), runs each requested explainer on the
detector it needs (``plain`` for the model-agnostic ones, ``ltpa``/``bonettini`` for the
attention maps), and, with ``out_dir``, writes ``<name>.npz`` (raw ``maps`` + metadata),
``<name>.mp4`` (heatmap overlay), ``grid.mp4`` (face + every explanation, in sync) and
``summary.json``.

``progress(stage, fraction)`` is called with a stage label and the *overall* fraction
done in [0, 1]; setting the ``cancel`` :class:`threading.Event` stops the analysis at the
next check (between stages and inside the explainers' batches) with
:class:`AnalysisCancelled`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xai_study.errors import XaiStudyError

PAPER_EXPLAINERS = ("gradcam", "shap3d", "ltpa", "bonettini")

#: Presets: ``fast`` for a CPU demo, ``paper`` for publication-quality runs on a GPU.
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {
        "frames": 16,
        "size": 224,
        "explainer_params": {
            # compactness 3: supervoxels follow eyes, mouth, cheeks and hair (about 13 per
            # frame, each lasting about 5 of the 16 frames) instead of square blocks
            "shap3d": {
                "n_segments": 48,
                "compactness": 3.0,
                "temporal_spacing": 64.0,
                "nsamples": 128,
            },
            "lime3d": {
                "n_segments": 48,
                "compactness": 3.0,
                "temporal_spacing": 64.0,
                "num_samples": 64,
            },
            "integrated_gradients": {"n_steps": 16},
            "ltpa": {"level": 2},
        },
    },
    "paper": {
        "frames": 32,
        "size": 224,
        "explainer_params": {
            "shap3d": {"n_segments": 128, "temporal_spacing": 4.0, "nsamples": 4096},
            "lime3d": {"n_segments": 128, "temporal_spacing": 4.0, "num_samples": 2048},
            "integrated_gradients": {"n_steps": 64},
            "ltpa": {"level": 2, "all_levels": True},
        },
    },
}

# Relative cost of each explainer, for the overall progress fraction.
_WEIGHTS = {"shap3d": 8.0, "lime3d": 8.0, "integrated_gradients": 4.0, "gradcam": 1.5}

LABELS = {
    "gradcam": "Grad-CAM",
    "shap3d": "SHAP-3D",
    "ltpa": "LTPA",
    "bonettini": "Bonettini",
    "lime3d": "LIME-3D",
    "saliency": "Saliency",
    "integrated_gradients": "Integrated Gradients",
}


class AnalysisCancelled(XaiStudyError):
    """The analysis was cancelled by the user."""


@dataclass
class Analysis:
    """Everything :func:`analyse_video` found about one video."""

    source: str
    clip: Any  # xai_study.video.FaceClip
    p_fake: float  # video-level P(fake) of the plain detector (the verdict)
    frame_logits: np.ndarray  # (T,) plain detector logits
    frame_scores: np.ndarray  # (T,) per-frame P(fake)
    explanations: dict[str, Any]  # name -> Explanation
    preset: str
    target: str
    detectors: dict[str, str]  # explainer -> detector description
    files: dict[str, Path] = field(default_factory=dict)  # name -> rendered animation
    arrays: dict[str, Path] = field(default_factory=dict)  # name -> .npz
    grid: Path | None = None
    summary_path: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.5  # the plain detector's decision threshold

    @property
    def verdict(self) -> str:
        return "fake" if self.p_fake >= self.threshold else "real"

    def summary(self) -> dict[str, Any]:
        clip = self.clip
        return {
            "source": self.source,
            "verdict": self.verdict,
            "p_fake": round(float(self.p_fake), 6),
            "threshold": round(float(self.threshold), 6),
            "frame_scores": [round(float(s), 6) for s in self.frame_scores],
            "frame_indices": [int(i) for i in clip.frame_indices],
            "timestamps": [round(float(t), 4) for t in clip.timestamps],
            "frames": int(len(clip.frames)),
            "coverage": round(float(clip.coverage), 4),
            "fps": float(clip.fps),
            "preset": self.preset,
            "target": self.target,
            "detectors": self.detectors,
            "explainers": {n: e.summary() for n, e in self.explanations.items()},
            "files": {n: p.name for n, p in self.files.items()},
            "grid": self.grid.name if self.grid else None,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "warnings": list(getattr(clip, "warnings", [])),
        }


_DETECTOR_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LOCK = threading.Lock()


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def get_detector(name_or_path: str | os.PathLike, device: str | None = None):
    """Load a detector once per process and device (the demo reuses them across requests).

    ``device`` ``None`` picks the GPU when there is one."""
    import torch

    device = device or default_device()
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise XaiStudyError(f"unknown torch device {device!r} (try cpu or cuda)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise XaiStudyError(f"device {device!r} asked for, but no CUDA GPU is available")
    key = (str(name_or_path), device)
    with _CACHE_LOCK:
        if key not in _DETECTOR_CACHE:
            from xai_study.detectors import load_detector

            _DETECTOR_CACHE[key] = load_detector(name_or_path, device=device)
        return _DETECTOR_CACHE[key]


def explainer_params(preset: str, name: str, **overrides) -> dict[str, Any]:
    """The parameters preset ``preset`` uses for explainer ``name`` (plus overrides)."""
    if preset not in PRESETS:
        raise XaiStudyError(f"unknown preset {preset!r} (choose from: {', '.join(PRESETS)})")
    return {**PRESETS[preset]["explainer_params"].get(name, {}), **overrides}


def _describe(det, fallback: str) -> str:
    cfg = getattr(det, "config", {}) or {}
    parts = [str(cfg.get("arch", fallback))]
    if cfg.get("backbone"):
        parts.append(str(cfg["backbone"]))
    if cfg.get("input_size"):
        parts.append(f"{cfg['input_size']}px")
    return " ".join(parts)


def analyse_video(
    path: str | os.PathLike | Any,
    explainers: Sequence[str] = PAPER_EXPLAINERS,
    preset: str = "fast",
    num_frames: int | None = None,
    target: str = "fake",
    detectors: dict[str, Any] | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: Callable[[str, float], None] | None = None,
    cancel: threading.Event | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    render: bool = True,
    paste_back: bool = False,
    cmap: str = "jet",
    alpha: float = 0.5,
    gif: bool = False,
    device: str | None = None,
) -> Analysis:
    """Analyse one video (a path, or a ready :class:`FaceClip`); see the module docstring.

    ``detectors`` maps ``plain``/``bonettini``/``ltpa`` to detector objects or to names /
    checkpoint paths for :func:`~xai_study.detectors.load_detector` (default: the demo
    checkpoints of the same names). ``params`` overrides explainer parameters per name.
    ``paste_back`` also writes ``<name>_full.mp4`` with the overlay pasted into the full
    frames; ``gif`` also writes ``<name>.gif``. ``device`` places the detectors loaded by
    name (default: the GPU when there is one, else the CPU).
    """
    from xai_study.explainers import create_explainer, explainer_class
    from xai_study.explainers.base import detector_lock

    if preset not in PRESETS:
        raise XaiStudyError(f"unknown preset {preset!r} (choose from: {', '.join(PRESETS)})")
    if target not in ("fake", "real"):
        raise XaiStudyError(f"target must be 'fake' or 'real', got {target!r}")
    explainers = list(dict.fromkeys(explainers))
    if not explainers:
        raise XaiStudyError("no explainers requested")
    classes = {name: explainer_class(name) for name in explainers}
    explainers = [cls.name for cls in classes.values()]  # resolve aliases
    classes = {cls.name: cls for cls in classes.values()}
    frames_wanted = num_frames if num_frames is not None else PRESETS[preset]["frames"]
    if frames_wanted is not None and int(frames_wanted) < 1:
        raise XaiStudyError(f"the number of frames must be at least 1, got {frames_wanted}")
    params = {explainer_class(k).name: dict(v) for k, v in (params or {}).items()}
    unknown = set(params) - set(explainers)
    if unknown:
        raise XaiStudyError(
            f"parameters given for explainers not run: {', '.join(sorted(unknown))}"
        )

    weights = {"faces": 2.0, "detection": 0.5}
    weights.update({n: _WEIGHTS.get(n, 0.5) for n in explainers})
    weights["rendering"] = 1.0 if (render and out_dir is not None) else 0.0
    total = sum(weights.values())
    done = {"sum": 0.0, "shown": 0.0}

    def report(stage: str, within: float = 0.0) -> None:
        if cancel is not None and cancel.is_set():
            raise AnalysisCancelled("the analysis was cancelled")
        if progress is not None:
            frac = (done["sum"] + weights.get(stage, 0.0) * min(max(within, 0.0), 1.0)) / total
            done["shown"] = max(done["shown"], min(1.0, frac))  # never goes backwards
            progress(stage, done["shown"])

    def finish(stage: str) -> None:
        done["sum"] += weights.get(stage, 0.0)
        report(stage, 0.0)

    seconds: dict[str, float] = {}
    given = dict(detectors or {})
    loaded: dict[str, Any] = {}

    def detector_for(arch: str):
        if arch not in loaded:
            spec = given.get(arch, arch)
            if isinstance(spec, str | os.PathLike):
                loaded[arch] = get_detector(spec, device)
            else:
                loaded[arch] = spec
        return loaded[arch]

    # 0. the input file and the models first, so mistakes fail before any slow work
    report("faces")
    is_clip = hasattr(path, "frames") and hasattr(path, "crop_boxes")
    if is_clip and paste_back:
        raise XaiStudyError("paste-back needs the video file, not a ready face clip")
    if not is_clip:
        from xai_study.video import check_file

        check_file(path)
    for arch in dict.fromkeys(["plain"] + [classes[n].requires or "plain" for n in explainers]):
        detector_for(arch)

    # 1. faces
    report("faces")
    t0 = time.perf_counter()
    video = None
    if is_clip:
        clip = path
        source = str(getattr(clip, "source", ""))
    else:
        from xai_study.video import extract_face_clip, read_video

        source = str(path)
        size = PRESETS[preset]["size"]
        if paste_back:
            video = read_video(path, num_frames=frames_wanted)
            clip = extract_face_clip(video, size=size)
        else:
            clip = extract_face_clip(path, num_frames=frames_wanted, size=size)
    seconds["faces"] = time.perf_counter() - t0
    finish("faces")

    # 2. detectors and the verdict
    report("detection")
    t0 = time.perf_counter()
    plain = detector_for("plain")
    with detector_lock(plain):
        logits = np.asarray(plain.frame_logits(clip.frames), dtype=np.float64).reshape(-1)
    if hasattr(plain, "aggregate"):
        p_fake = float(plain.aggregate(logits))  # the detector's own video aggregation
    else:
        p_fake = float(1 / (1 + np.exp(-logits.mean())))
    frame_scores = 1.0 / (1.0 + np.exp(-logits))
    seconds["detection"] = time.perf_counter() - t0
    finish("detection")

    # 3. explanations
    results: dict[str, Any] = {}
    used: dict[str, str] = {}
    for name in explainers:
        cls = classes[name]
        arch = cls.requires or "plain"
        det = detector_for(arch)
        used[name] = _describe(det, arch)
        preset_kw = explainer_params(preset, name)
        kw = {k: v for k, v in preset_kw.items() if k in cls.defaults}
        kw.update(params.get(name, {}))
        explainer = create_explainer(name, det, **kw)
        report(name)
        results[name] = explainer.explain(
            clip, target=target, progress=lambda f, name=name: report(name, f)
        )
        seconds[name] = results[name].seconds
        finish(name)

    analysis = Analysis(
        source=source,
        clip=clip,
        p_fake=p_fake,
        frame_logits=logits,
        frame_scores=frame_scores,
        explanations=results,
        preset=preset,
        target=target,
        detectors=used,
        seconds=seconds,
        threshold=float(getattr(plain, "threshold", 0.5)),
    )

    # 4. files
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, expl in results.items():
            npz = out / f"{name}.npz"
            np.savez_compressed(
                npz,
                maps=expl.maps.astype(np.float32),
                signed=np.bool_(expl.signed),
                score=np.float64(expl.score),
                frame_indices=np.asarray(clip.frame_indices),
                target=np.str_(target),
            )
            analysis.arrays[name] = npz
        if render:
            report("rendering")
            t0 = time.perf_counter()
            analysis.files, analysis.grid = render_analysis(
                analysis,
                out,
                cmap=cmap,
                alpha=alpha,
                gif=gif,
                full_frames=_full_frames(video, clip) if paste_back else None,
                progress=lambda f: report("rendering", f),
            )
            seconds["rendering"] = time.perf_counter() - t0
            finish("rendering")
        analysis.summary_path = out / "summary.json"
        analysis.summary_path.write_text(json.dumps(analysis.summary(), indent=2) + "\n")
    if progress is not None:
        progress("done", 1.0)
    return analysis


def _full_frames(video, clip) -> np.ndarray:
    """The full source frames of the clip's crops (in clip order)."""
    where = {int(i): k for k, i in enumerate(video.indices)}
    missing = [int(i) for i in clip.frame_indices if int(i) not in where]
    if missing:
        raise XaiStudyError("cannot paste back: the clip's frames are not in the decoded video")
    return video.frames[[where[int(i)] for i in clip.frame_indices]]


def render_analysis(
    analysis: Analysis,
    out_dir: str | os.PathLike,
    cmap: str = "jet",
    alpha: float = 0.5,
    gif: bool = False,
    full_frames: np.ndarray | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[dict[str, Path], Path]:
    """Write ``<name>.mp4`` per explanation and ``grid.mp4``; returns their paths."""
    from xai_study.render import colour_bar, paste_back, render_grid, render_overlay, save_animation

    out = Path(out_dir)
    crops = analysis.clip.frames
    fps = float(analysis.clip.fps) or 25.0
    files: dict[str, Path] = {}
    panels = [("face", crops)]
    n = len(analysis.explanations)
    for k, (name, expl) in enumerate(analysis.explanations.items()):
        label = LABELS.get(name, name)
        overlay = render_overlay(crops, expl.normalised, cmap=cmap, alpha=alpha, legend=False)
        bar = colour_bar(overlay.shape[1], cmap)
        with_bar = np.concatenate([overlay, np.broadcast_to(bar, (len(overlay), *bar.shape))], 2)
        files[name] = save_animation(with_bar, out / f"{name}.mp4", fps)
        if gif:
            save_animation(with_bar, out / f"{name}.gif", fps)
        if full_frames is not None:
            full = paste_back(full_frames, overlay, analysis.clip.crop_boxes)
            save_animation(full, out / f"{name}_full.mp4", fps)
        panels.append((label, overlay))
        if progress is not None:
            progress((k + 1) / (n + 1))
    grid = render_grid(panels)
    bar = colour_bar(grid.shape[1], cmap)
    grid = np.concatenate([grid, np.broadcast_to(bar, (len(grid), *bar.shape))], axis=2)
    grid_path = save_animation(grid, out / "grid.mp4", fps)
    return files, grid_path
