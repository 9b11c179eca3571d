"""One video's analysis, computed from a face clip with no I/O.

:func:`analyse_clip` scores the clip with the verdict detector (per-frame logits and
scores, the video P(fake) and its decision threshold) and runs each requested explainer
on the detector it needs. It reads and writes no files: the caller extracts the clip
(:func:`xai_study.video.extract_face_clip`) and writes what it wants
(:mod:`xai_study.runs.artefacts`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xai_study.errors import XaiStudyError
from xai_study.runs.detectors import DetectorSet, arch_for
from xai_study.runs.presets import params_for, preset
from xai_study.runs.progress import Progress

TARGETS = ("fake", "real")


@dataclass
class Verdict:
    """The verdict detector's scores of one clip."""

    frame_logits: np.ndarray  # (T,) float64, the model's raw logits
    frame_scores: np.ndarray  # (T,) per-frame P(fake), calibrated
    p_fake: float  # video P(fake) (the detector's own aggregation), calibrated
    threshold: float  # the detector's decision threshold on p_fake
    p_fake_raw: float | None = None  # the same before calibration (sigmoid of the logit)

    @property
    def label(self) -> str:
        return "fake" if self.p_fake >= self.threshold else "real"


@dataclass
class Analysis:
    """Everything known about one analysed video; files are filled in by the writer."""

    source: str
    clip: Any  # xai_study.video.FaceClip
    p_fake: float  # video-level P(fake) of the verdict detector
    frame_logits: np.ndarray  # (T,) verdict detector logits (raw)
    frame_scores: np.ndarray  # (T,) per-frame P(fake), calibrated
    explanations: dict[str, Any]  # name -> Explanation
    preset: str
    target: str
    detectors: dict[str, str]  # explainer -> detector description
    files: dict[str, Path] = field(default_factory=dict)  # name -> rendered animation
    arrays: dict[str, Path] = field(default_factory=dict)  # name -> .npz
    grid: Path | None = None
    summary_path: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.5  # the verdict detector's decision threshold
    p_fake_raw: float | None = None  # p_fake before the checkpoint's calibration

    @property
    def verdict(self) -> str:
        return "fake" if self.p_fake >= self.threshold else "real"

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description (what ``summary.json`` holds)."""
        clip = self.clip
        return {
            "source": self.source,
            "verdict": self.verdict,
            "p_fake": round(float(self.p_fake), 6),
            "threshold": round(float(self.threshold), 6),
            "p_fake_raw": None if self.p_fake_raw is None else round(float(self.p_fake_raw), 6),
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


def score_clip(detector, frames: np.ndarray) -> Verdict:
    """The detector's frame logits, frame P(fake), video P(fake) and threshold; the
    probabilities are calibrated by the checkpoint's calibration (identity without one),
    ``p_fake_raw`` is the model's own."""
    from xai_study.detectors.calibration import calibration_of
    from xai_study.detectors.contract import check_detector
    from xai_study.explainers.base import detector_lock

    detector = check_detector(detector, "the verdict detector")
    with detector_lock(detector):
        logits = np.asarray(detector.frame_logits(frames), dtype=np.float64).reshape(-1)
    calibration = calibration_of(detector)
    how = detector.config.get("aggregation", "mean_logit")
    return Verdict(
        frame_logits=logits,
        frame_scores=calibration.frame_p(logits),
        p_fake=calibration.video_p(logits, how),
        threshold=float(detector.threshold),
        p_fake_raw=float(detector.aggregate(logits)),
    )


def check_request(
    explainers: Sequence[str],
    preset_name: str,
    target: str,
    params: dict[str, dict[str, Any]] | None = None,
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Registry names of ``explainers`` (aliases resolved, duplicates dropped) and the
    parameter overrides keyed by registry name; clear errors for a bad request."""
    from xai_study.explainers import canonical_name

    preset(preset_name)
    if target not in TARGETS:
        raise XaiStudyError(f"target must be 'fake' or 'real', got {target!r}")
    names = list(dict.fromkeys(canonical_name(e) for e in dict.fromkeys(explainers)))
    if not names:
        raise XaiStudyError("no explainers requested")
    overrides = {canonical_name(k): dict(v) for k, v in (params or {}).items()}
    unknown = set(overrides) - set(names)
    if unknown:
        raise XaiStudyError(
            f"parameters given for explainers not run: {', '.join(sorted(unknown))}"
        )
    return names, overrides


def stages(explainers: Sequence[str], render: bool) -> list[str]:
    """The progress stages of one video's analysis."""
    return ["faces", "detection", *explainers, *(["rendering"] if render else [])]


def analyse_clip(
    clip,
    detectors: DetectorSet,
    explainers: Sequence[str],
    preset_name: str = "fast",
    target: str = "fake",
    params: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
    source: str | None = None,
) -> Analysis:
    """Score ``clip`` and explain it with each of ``explainers`` (registry names, checked
    by :func:`check_request`); see the module docstring."""
    from xai_study.explainers import create_explainer

    progress = progress or Progress(stages(explainers, render=False))
    progress.report("detection")
    t0 = time.perf_counter()
    verdict = score_clip(detectors.verdict, clip.frames)
    seconds = {"detection": time.perf_counter() - t0}
    progress.finish("detection")

    results: dict[str, Any] = {}
    used: dict[str, str] = {}
    for name in explainers:
        arch = arch_for(name)
        used[name] = detectors.describe(arch)
        kw = params_for(preset_name, name, (params or {}).get(name))
        explainer = create_explainer(name, detectors.get(arch), **kw)
        progress.report(name)
        results[name] = explainer.explain(clip, target=target, progress=progress.within(name))
        seconds[name] = results[name].seconds
        progress.finish(name)
    return Analysis(
        source=str(getattr(clip, "source", "")) if source is None else source,
        clip=clip,
        p_fake=verdict.p_fake,
        frame_logits=verdict.frame_logits,
        frame_scores=verdict.frame_scores,
        explanations=results,
        preset=preset_name,
        target=target,
        detectors=used,
        seconds=seconds,
        threshold=verdict.threshold,
        p_fake_raw=verdict.p_fake_raw,
    )
