"""Reproducible H.264 writing for the generated data set.

``xai_study.video.write_video`` uses x264's defaults, and x264 is not bit-exact from run
to run here: the same 30 frames encoded in separate processes gave different files, and
because encoder decisions cascade, 29 % of the decoded values of a regenerated data set
differed (by up to 57 levels). Measured on the 2-core machine, three processes each:
one encoder thread alone still varied, as did ``aq-mode=0`` or ``psy=0``; turning off
macroblock-tree rate control (``mbtree=0``) made the output identical. So the data set is
written with ``write_video``'s settings (libx264, yuv420p, crf, preset medium,
``+faststart``, browser-playable) plus ``threads=1:mbtree=0`` (about 0.2 s per clip).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_mp4(frames: np.ndarray, path: str | os.PathLike, fps: float, crf: int = 23) -> Path:
    """Write RGB uint8 frames (T, H, W, 3), even H and W, as single-threaded H.264 MP4."""
    from xai_study.video.io import write_video

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"expected uint8 frames of shape (T, H, W, 3), got {frames.shape}")
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {w}x{h}")
    if Path(path).suffix.lower() != ".mp4":
        raise ValueError(f"expected an .mp4 path, got {path}")
    return write_video(frames, path, fps, crf, x264_params="threads=1:mbtree=0", threads=1)
