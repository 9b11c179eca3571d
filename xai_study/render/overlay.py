"""Heatmap overlays of normalised explanation maps on face crops."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from xai_study.errors import XaiStudyError


@lru_cache(maxsize=16)
def _lut(cmap: str) -> np.ndarray:
    """(256, 3) uint8 colour table of a matplotlib colormap."""
    import matplotlib

    try:
        cm = matplotlib.colormaps[cmap]
    except KeyError:
        raise XaiStudyError(f"unknown colormap {cmap!r} (try jet, inferno, viridis)") from None
    return np.round(cm(np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


def colorize(values: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """Colour-map values in [0, 1] (any shape) to uint8 RGB (shape + (3,))."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0)
    return _lut(cmap)[np.round(v * 255).astype(np.uint8)]


def put_text(
    img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour=(255, 255, 255)
):
    """Draw ``text`` in place with a dark outline so it reads on any background."""
    import cv2

    thick = max(1, round(scale * 2))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)


def colour_bar(
    height: int, cmap: str = "jet", width: int | None = None, labels=("high", "low")
) -> np.ndarray:
    """A vertical colour-bar legend (high at the top) of ``height`` pixels, uint8 RGB."""
    width = width or max(24, height // 6)
    bar_w = max(6, width // 3)
    out = np.full((height, width, 3), 32, dtype=np.uint8)
    margin = max(10, height // 12)
    ramp = np.linspace(1.0, 0.0, max(1, height - 2 * margin))
    out[margin : height - margin, 2 : 2 + bar_w] = colorize(ramp, cmap)[:, None, :]
    scale = max(0.25, height / 700)
    put_text(out, labels[0], (1, margin - 2), scale)
    put_text(out, labels[1], (1, height - 3), scale)
    return out


def render_overlay(
    frames: np.ndarray,
    normalised: np.ndarray,
    cmap: str = "jet",
    alpha: float = 0.5,
    legend: bool = True,
    label: str | None = None,
) -> np.ndarray:
    """Blend colour-mapped ``normalised`` maps (T, h, w in [0, 1]) over ``frames``.

    The maps are resized bilinearly to the frames when their grid differs. The blend
    weight grows with the value (``alpha * value``), so irrelevant pixels show the face
    unchanged. ``legend`` appends a colour bar on the right; ``label`` writes a title in
    the top-left corner. Returns uint8 RGB frames (T, H, W [+ bar], 3).
    """
    import cv2

    frames = np.asarray(frames)
    maps = np.asarray(normalised, dtype=np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise XaiStudyError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    if maps.ndim != 3 or len(maps) != len(frames):
        raise XaiStudyError(f"maps {maps.shape} do not match frames {frames.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise XaiStudyError(f"alpha must be in [0, 1], got {alpha}")
    h, w = frames.shape[1:3]
    if maps.shape[1:] != (h, w):
        maps = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) for m in maps])
    maps = np.clip(np.nan_to_num(maps), 0.0, 1.0)
    colours = colorize(maps, cmap).astype(np.float32)
    weight = (alpha * maps)[..., None]
    out = np.round(frames.astype(np.float32) * (1 - weight) + colours * weight).astype(np.uint8)
    if label:
        scale = max(0.3, w / 400)
        for f in out:
            put_text(f, label, (4, int(22 * scale + 4)), scale)
    if legend:
        bar = colour_bar(h, cmap)
        out = np.concatenate([out, np.broadcast_to(bar, (len(out), *bar.shape))], axis=2)
    return out
