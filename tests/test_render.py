"""Rendering: overlays, colour bars, grids, animations and paste-back."""

from __future__ import annotations

import numpy as np
import pytest

from xai_study.errors import XaiStudyError
from xai_study.render import (
    colorize,
    colour_bar,
    paste_back,
    render_grid,
    render_overlay,
    save_animation,
)
from xai_study.video import probe_codec, read_video


def frames_of(t=4, h=40, w=48, value=100):
    return np.full((t, h, w, 3), value, dtype=np.uint8)


def test_colorize_uses_the_colormap_ends():
    out = colorize(np.array([0.0, 1.0, 2.0, -1.0]), "gray")
    np.testing.assert_array_equal(out, [[0, 0, 0], [255, 255, 255], [255, 255, 255], [0, 0, 0]])
    jet = colorize(np.array([0.0, 1.0]), "jet")
    assert jet[0, 2] > 100 and jet[0, 0] == 0  # dark blue at 0
    assert jet[1, 0] > 100 and jet[1, 2] == 0  # dark red at 1
    with pytest.raises(XaiStudyError, match="colormap"):
        colorize(np.zeros(2), "no-such-map")


def test_overlay_blends_by_value_and_alpha():
    frames = frames_of()
    maps = np.zeros((4, 40, 48), np.float32)
    maps[:, 10:20, 30:40] = 1.0
    out = render_overlay(frames, maps, cmap="gray", alpha=0.5, legend=False)
    assert out.shape == frames.shape and out.dtype == np.uint8
    # zero relevance leaves the face unchanged; full relevance is a 50/50 blend with white
    np.testing.assert_array_equal(out[:, 0:10], frames[:, 0:10])
    np.testing.assert_array_equal(out[:, 10:20, 30:40], np.full((4, 10, 10, 3), 178))
    none = render_overlay(frames, maps, alpha=0.0, legend=False)
    np.testing.assert_array_equal(none, frames)


def test_overlay_resizes_maps_and_adds_a_legend_and_label():
    frames = frames_of(2, 64, 64)
    maps = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4).repeat(2, 0)
    out = render_overlay(frames, maps, legend=True, label="gradcam")
    bar = colour_bar(64)
    assert out.shape == (2, 64, 64 + bar.shape[1], 3)
    np.testing.assert_array_equal(out[0, :, 64:], bar)
    plain = render_overlay(frames, maps, legend=False)
    assert not np.array_equal(out[:, :20, :64], plain[:, :20])  # the label was drawn


def test_colour_bar_runs_from_high_at_the_top_to_low():
    bar = colour_bar(200, "gray")
    column = bar[20:-20, 4, 0].astype(int)
    assert column[0] > 240 and column[-1] < 15
    assert (np.diff(column) <= 0).all()


def test_overlay_rejects_mismatched_inputs():
    with pytest.raises(XaiStudyError, match="do not match"):
        render_overlay(frames_of(3), np.zeros((2, 40, 48)))
    with pytest.raises(XaiStudyError, match="alpha"):
        render_overlay(frames_of(2), np.zeros((2, 40, 48)), alpha=2)


def test_grid_tiles_labelled_panels_in_sync():
    a = frames_of(3, 40, 40, 50)
    b = frames_of(3, 80, 80, 200)  # resized to the first panel's height
    for t in range(3):
        a[t, 0, 0] = t  # a per-frame marker
    grid = render_grid([("one", a), ("two", b)], pad=4, label_height=20)
    assert grid.shape == (3, 4 + 20 + 40 + 4, 4 + 40 + 4 + 40 + 4, 3)
    np.testing.assert_array_equal(grid[:, 24 + 1 : 24 + 40, 4 + 1 : 44], a[:, 1:, 1:])
    np.testing.assert_array_equal(grid[:, 24:64, 48:88], np.full((3, 40, 40, 3), 200))
    assert [grid[t, 24, 4, 0] for t in range(3)] == [0, 1, 2]  # frames stay in sync
    assert (grid[:, 4:24, 4:44] != 16).any()  # label text drawn in the title bar
    two_rows = render_grid([(str(i), a) for i in range(6)])
    assert two_rows.shape[1] > 2 * 40 and two_rows.shape[2] < 6 * 40
    with pytest.raises(XaiStudyError, match="numbers of frames"):
        render_grid([("a", a), ("b", frames_of(2))])
    with pytest.raises(XaiStudyError, match="nothing"):
        render_grid([])


def test_save_animation_writes_browser_playable_mp4_and_gif(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (6, 33, 47, 3), dtype=np.uint8)  # odd sizes
    mp4 = save_animation(frames, tmp_path / "a.mp4", fps=7.5)
    info = probe_codec(mp4)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["frames"] == 6 and info["fps"] == pytest.approx(7.5)
    assert (info["width"], info["height"]) == (48, 34)
    gif = save_animation(frames, tmp_path / "a.gif", fps=5)
    back = read_video(gif, num_frames=None)
    assert len(back.frames) == 6
    with pytest.raises(XaiStudyError, match=r"\.mp4"):
        save_animation(frames, tmp_path / "a.avi")


def test_paste_back_puts_crops_at_their_boxes():
    full = np.zeros((2, 100, 120, 3), np.uint8)
    crops = np.full((2, 10, 10, 3), 255, np.uint8)
    boxes = np.array([[20, 30, 40, 50], [-10, 90, 10, 110]], dtype=np.float32)  # 2nd off-frame
    out = paste_back(full, crops, boxes)
    assert full.max() == 0  # input untouched
    assert (out[0, 30:50, 20:40] == 255).all() and out[0].sum() == 20 * 20 * 3 * 255
    assert (out[1, 90:100, 0:10] == 255).all() and out[1].sum() == 10 * 10 * 3 * 255
    with pytest.raises(XaiStudyError, match="as many"):
        paste_back(full, crops[:1], boxes)
