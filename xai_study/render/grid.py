"""Side-by-side grids of several labelled animations of one clip, frames in sync."""

from __future__ import annotations

import math

import numpy as np

from xai_study.errors import XaiStudyError


def render_grid(
    items,
    ncols: int | None = None,
    pad: int = 4,
    label_height: int | None = None,
    background: int = 16,
) -> np.ndarray:
    """Tile ``items`` = [(label, frames (T, H, W, 3)), ...] into one animation.

    Every panel is resized to the height of the first (keeping its aspect ratio) and
    gets its label in a bar above it; all panels must have the same number of frames.
    ``ncols`` defaults to one row for up to 5 panels, else two rows.
    """
    import cv2

    from xai_study.render.overlay import put_text

    items = list(items)
    if not items:
        raise XaiStudyError("nothing to put in the grid")
    lengths = {len(f) for _, f in items}
    if len(lengths) != 1:
        raise XaiStudyError(f"grid panels have different numbers of frames: {sorted(lengths)}")
    T = lengths.pop()
    height = int(items[0][1].shape[1])
    panels = []
    for label, frames in items:
        frames = np.asarray(frames, dtype=np.uint8)
        h, w = frames.shape[1:3]
        if h != height:
            nw = max(1, round(w * height / h))
            frames = np.stack(
                [cv2.resize(f, (nw, height), interpolation=cv2.INTER_AREA) for f in frames]
            )
        panels.append((str(label), frames))
    ncols = ncols or (len(panels) if len(panels) <= 5 else math.ceil(len(panels) / 2))
    nrows = math.ceil(len(panels) / ncols)
    cell_w = max(f.shape[2] for _, f in panels)
    lh = label_height or max(18, height // 8)
    cell_h = lh + height
    H = nrows * cell_h + (nrows + 1) * pad
    W = ncols * cell_w + (ncols + 1) * pad
    out = np.full((T, H, W, 3), background, dtype=np.uint8)
    scale = max(0.3, lh / 30)
    for k, (label, frames) in enumerate(panels):
        r, c = divmod(k, ncols)
        y = pad + r * (cell_h + pad)
        x = pad + c * (cell_w + pad)
        w = frames.shape[2]
        out[:, y + lh : y + lh + height, x : x + w] = frames
        title = np.full((lh, cell_w, 3), background, dtype=np.uint8)
        put_text(title, label, (2, int(lh * 0.75)), scale)
        out[:, y : y + lh, x : x + cell_w] = title
    return out
