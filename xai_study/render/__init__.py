"""Rendering explanations: heatmap overlays, labelled grids, animations, paste-back.

``render_overlay`` blends a colour-mapped normalised map over the face crops (with a
colour-bar legend), ``render_grid`` tiles several labelled animations frame by frame,
``paste_back`` puts overlays back into the full video frames at the crop boxes, and
``save_animation`` writes browser-playable H.264 ``yuv420p`` MP4 (GIF/WebM by suffix).
"""

from xai_study.render.animation import paste_back, save_animation
from xai_study.render.grid import render_grid
from xai_study.render.overlay import colorize, colour_bar, render_overlay

__all__ = [
    "colorize",
    "colour_bar",
    "paste_back",
    "render_grid",
    "render_overlay",
    "save_animation",
]
