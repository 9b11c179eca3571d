"""The run layer: from a labels file or a video to analyses, metric tables and files.

Small pieces that ``explain``, ``evaluate``, ``build-study`` and the live demo compose:

- :mod:`~xai_study.runs.presets` — the ``fast`` / ``paper`` settings;
- :mod:`~xai_study.runs.detectors` — :class:`DetectorSet` and the one resolver of
  detector specs (demo name, checkpoint, icpr2020dfdc file, object);
- :mod:`~xai_study.runs.progress` — :class:`Progress` over weighted stages, cancellation;
- :mod:`~xai_study.runs.analysis` — :func:`analyse_clip`, a pure function from a face
  clip, detectors and explainers to an :class:`Analysis`;
- :mod:`~xai_study.runs.artefacts` — the one writer of ``.npz``, MP4s, grid and
  ``summary.json``;
- :mod:`~xai_study.runs.video` — :func:`analyse_video`, a video file to an analysis and
  its files;
- :mod:`~xai_study.runs.measure` and :mod:`~xai_study.runs.evaluate` — the metric rows
  of an analysis and the resumable data-set evaluation.
"""

from xai_study.runs.analysis import Analysis, Verdict, analyse_clip, check_request, score_clip
from xai_study.runs.artefacts import RenderOptions, render_analysis, write_artefacts
from xai_study.runs.detectors import DetectorSet, default_device, describe, resolve_detector
from xai_study.runs.presets import PRESETS, explainer_params, params_for
from xai_study.runs.progress import AnalysisCancelled, Progress
from xai_study.runs.video import analyse_video

__all__ = [
    "PRESETS",
    "Analysis",
    "AnalysisCancelled",
    "DetectorSet",
    "Progress",
    "RenderOptions",
    "Verdict",
    "analyse_clip",
    "analyse_video",
    "check_request",
    "default_device",
    "describe",
    "explainer_params",
    "params_for",
    "render_analysis",
    "resolve_detector",
    "score_clip",
    "write_artefacts",
]
