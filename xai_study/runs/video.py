"""Whole-video analysis: a video file (or a ready face clip) to an analysis and its files.

:func:`analyse_video` is what ``xai-study explain`` and the live demo run: it checks the
input and loads the detectors first (so mistakes fail before any slow work), extracts the
face clip with the preset's frames and crop size, runs :func:`analyse_clip` and, with
``out_dir``, writes the files (:mod:`xai_study.runs.artefacts`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from xai_study.errors import XaiStudyError
from xai_study.runs.analysis import Analysis, analyse_clip, check_request, stages
from xai_study.runs.artefacts import RenderOptions, full_frames, write_artefacts
from xai_study.runs.detectors import DetectorSet, detector_set
from xai_study.runs.presets import preset as preset_config
from xai_study.runs.progress import Progress


def is_face_clip(obj: Any) -> bool:
    return hasattr(obj, "frames") and hasattr(obj, "crop_boxes")


def face_clip(
    path,
    preset_name: str,
    num_frames: int | None = None,
    keep_video: bool = False,
    device: str | None = None,
):
    """``(clip, video)``: the face clip of ``path`` with the preset's frame count (or
    ``num_frames``) and crop size, faces detected on ``device``; ``video`` (the decoded
    frames) only with ``keep_video``."""
    from xai_study.video import extract_face_clip, read_video

    config = preset_config(preset_name)
    frames = num_frames if num_frames is not None else config["frames"]
    if keep_video:
        video = read_video(path, num_frames=frames)
        return extract_face_clip(video, size=config["size"], device=device), video
    clip = extract_face_clip(path, num_frames=frames, size=config["size"], device=device)
    return clip, None


def analyse_video(
    path: str | os.PathLike | Any,
    explainers: Sequence[str] | None = None,
    preset: str = "fast",
    num_frames: int | None = None,
    target: str = "fake",
    detectors: DetectorSet | Mapping[str, Any] | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: Callable[[str, float], None] | None = None,
    cancel: threading.Event | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    render: bool = True,
    paste_back: bool = False,
    render_options: RenderOptions | None = None,
    device: str | None = None,
    batch_size: int | None = None,
) -> Analysis:
    """Analyse one video (a path, or a ready :class:`FaceClip`); see the module docstring.

    ``detectors`` maps architectures to specs or detector objects (default: the demo
    checkpoints); ``params`` overrides explainer parameters per name; ``paste_back`` also
    writes ``<name>_full.mp4``; ``progress(stage, overall_fraction)`` and ``cancel`` as in
    :class:`~xai_study.runs.Progress`. ``device`` places detectors loaded by name and the
    face detector (default: the GPU when present; a :class:`DetectorSet` brings its own);
    ``batch_size``: frames per detector forward pass (default: the detector's own).
    """
    from xai_study.explainers import paper_explainers

    names, overrides = check_request(explainers or paper_explainers(), preset, target, params)
    frames_wanted = num_frames if num_frames is not None else preset_config(preset)["frames"]
    if frames_wanted is not None and int(frames_wanted) < 1:
        raise XaiStudyError(f"the number of frames must be at least 1, got {frames_wanted}")
    writing = render and out_dir is not None
    prog = Progress(stages(names, writing), progress, cancel)
    prog.report("faces")
    clip_given = is_face_clip(path)
    if clip_given and paste_back:
        raise XaiStudyError("paste-back needs the video file, not a ready face clip")
    if not clip_given:
        from xai_study.video import check_file

        check_file(path)
    dets = detector_set(detectors, device, batch_size).for_explainers(names)

    t0 = time.perf_counter()
    if clip_given:
        clip, video, source = path, None, str(getattr(path, "source", ""))
    else:
        clip, video = face_clip(
            path, preset, frames_wanted, keep_video=paste_back, device=dets.device
        )
        source = str(path)
    faces_seconds = time.perf_counter() - t0
    prog.finish("faces")

    analysis = analyse_clip(clip, dets, names, preset, target, overrides, prog, source)
    analysis.seconds = {"faces": faces_seconds, **analysis.seconds}
    if out_dir is not None:
        options = render_options or RenderOptions()
        if paste_back:
            options.full_frames = full_frames(video, clip)
        write_artefacts(analysis, out_dir, render=render, options=options, progress=prog)
    prog.done()
    return analysis
