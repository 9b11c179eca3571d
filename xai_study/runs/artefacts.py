"""The one writer of an analysis' files.

For each explanation ``<name>.npz`` (raw ``maps`` with ``signed``, ``score``,
``frame_indices`` and ``target``), and, when rendering, ``<name>.mp4`` (heat-map overlay
with a colour bar; ``<name>.gif`` and ``<name>_full.mp4`` pasted into the full frames on
request) and ``grid.mp4`` (the face and every explanation side by side, in sync); then
``summary.json`` (:meth:`Analysis.summary`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xai_study.errors import XaiStudyError
from xai_study.runs.analysis import Analysis


@dataclass
class RenderOptions:
    """How explanations are drawn."""

    cmap: str = "jet"
    alpha: float = 0.5
    gif: bool = False
    full_frames: np.ndarray | None = None  # source frames, for <name>_full.mp4


def write_arrays(analysis: Analysis, out: Path) -> dict[str, Path]:
    """``<name>.npz`` per explanation; returns their paths."""
    paths = {}
    for name, expl in analysis.explanations.items():
        path = out / f"{name}.npz"
        np.savez_compressed(
            path,
            maps=expl.maps.astype(np.float32),
            signed=np.bool_(expl.signed),
            score=np.float64(expl.score),
            frame_indices=np.asarray(analysis.clip.frame_indices),
            target=np.str_(analysis.target),
        )
        paths[name] = path
    return paths


def _with_bar(frames: np.ndarray, cmap: str) -> np.ndarray:
    from xai_study.render import colour_bar

    bar = colour_bar(frames.shape[1], cmap)
    return np.concatenate([frames, np.broadcast_to(bar, (len(frames), *bar.shape))], axis=2)


def render_analysis(
    analysis: Analysis,
    out_dir: str | os.PathLike,
    options: RenderOptions | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[dict[str, Path], Path]:
    """Write ``<name>.mp4`` per explanation and ``grid.mp4``; returns their paths."""
    from xai_study.explainers import explainer_label
    from xai_study.render import paste_back, render_grid, render_overlay, save_animation

    opts = options or RenderOptions()
    out = Path(out_dir)
    crops = analysis.clip.frames
    fps = float(analysis.clip.fps) or 25.0
    files: dict[str, Path] = {}
    panels = [("face", crops)]
    n = len(analysis.explanations)
    for k, (name, expl) in enumerate(analysis.explanations.items()):
        overlay = render_overlay(
            crops, expl.normalised, cmap=opts.cmap, alpha=opts.alpha, legend=False
        )
        with_bar = _with_bar(overlay, opts.cmap)
        files[name] = save_animation(with_bar, out / f"{name}.mp4", fps)
        if opts.gif:
            save_animation(with_bar, out / f"{name}.gif", fps)
        if opts.full_frames is not None:
            full = paste_back(opts.full_frames, overlay, analysis.clip.crop_boxes)
            save_animation(full, out / f"{name}_full.mp4", fps)
        panels.append((explainer_label(name), overlay))
        if progress is not None:
            progress((k + 1) / (n + 1))
    grid = _with_bar(render_grid(panels), opts.cmap)
    return files, save_animation(grid, out / "grid.mp4", fps)


def write_summary(analysis: Analysis, out: Path) -> Path:
    analysis.summary_path = out / "summary.json"
    analysis.summary_path.write_text(json.dumps(analysis.summary(), indent=2) + "\n")
    return analysis.summary_path


def write_artefacts(
    analysis: Analysis,
    out_dir: str | os.PathLike,
    render: bool = True,
    options: RenderOptions | None = None,
    progress=None,
) -> Analysis:
    """Write every file of ``analysis`` into ``out_dir`` (see the module docstring) and
    record their paths on it. ``progress`` is a :class:`~xai_study.runs.Progress`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    analysis.arrays = write_arrays(analysis, out)
    if render:
        if progress is not None:
            progress.report("rendering")
        t0 = time.perf_counter()
        analysis.files, analysis.grid = render_analysis(
            analysis, out, options, progress.within("rendering") if progress else None
        )
        analysis.seconds["rendering"] = time.perf_counter() - t0
        if progress is not None:
            progress.finish("rendering")
    write_summary(analysis, out)
    return analysis


def full_frames(video, clip) -> np.ndarray:
    """The full source frames of the clip's crops (in clip order), for paste-back."""
    where = {int(i): k for k, i in enumerate(video.indices)}
    if any(int(i) not in where for i in clip.frame_indices):
        raise XaiStudyError("cannot paste back: the clip's frames are not in the decoded video")
    return video.frames[[where[int(i)] for i in clip.frame_indices]]
