"""Writing animations and pasting overlays back onto the full video frames."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xai_study.errors import XaiStudyError


def save_animation(frames: np.ndarray, path: str | os.PathLike, fps: float = 25.0) -> Path:
    """Write frames as H.264 ``yuv420p`` MP4 (browser-playable); ``.gif``/``.webm`` by suffix."""
    from xai_study.video import write_video

    suffix = Path(path).suffix.lower()
    if suffix not in {".mp4", ".gif", ".webm"}:
        raise XaiStudyError(f"{path}: animations are written as .mp4, .gif or .webm")
    if not fps or fps <= 0 or not np.isfinite(fps):
        fps = 25.0
    return write_video(np.asarray(frames), path, fps=float(fps))


def paste_back(full_frames: np.ndarray, crops: np.ndarray, crop_boxes: np.ndarray) -> np.ndarray:
    """Paste ``crops`` (T, S, S, 3) into copies of ``full_frames`` (T, H, W, 3) at
    ``crop_boxes`` (T x [x1, y1, x2, y2] in source pixels), resizing each crop to its box.
    Parts of a box outside the frame are cut off."""
    import cv2

    full = np.array(full_frames, dtype=np.uint8, copy=True)
    crops = np.asarray(crops)
    boxes = np.asarray(crop_boxes, dtype=np.float64)
    if not (len(full) == len(crops) == len(boxes)):
        raise XaiStudyError(
            f"paste-back needs as many frames ({len(full)}), crops ({len(crops)}) and boxes ({len(boxes)})"
        )
    H, W = full.shape[1:3]
    for f, crop, box in zip(full, crops, boxes, strict=True):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        bw, bh = x2 - x1, y2 - y1
        if bw <= 0 or bh <= 0:
            continue
        resized = cv2.resize(crop, (bw, bh), interpolation=cv2.INTER_LINEAR)
        fx1, fy1, fx2, fy2 = max(x1, 0), max(y1, 0), min(x2, W), min(y2, H)
        if fx2 <= fx1 or fy2 <= fy1:
            continue
        f[fy1:fy2, fx1:fx2] = resized[fy1 - y1 : fy2 - y1, fx1 - x1 : fx2 - x1]
    return full
