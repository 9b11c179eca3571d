"""Masks and geometry of the demo data set (xai_study.data.masks / geometry)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from xai_study.data import crop_masks, load_masks, save_masks
from xai_study.data.geometry import apply_affine, ellipse_mask, face_ellipse, umeyama, yaw_ratio
from xai_study.errors import XaiStudyError
from xai_study.video.clip import crop_square

LM = np.array([[130, 140], [190, 140], [160, 175], [138, 205], [182, 205]], float)


def test_umeyama_recovers_a_similarity_transform():
    a = np.array([[0, 0], [10, 0], [5, 5], [2, 9], [8, 9]], float)
    ang, s = 0.3, 1.7
    m = np.array(
        [[s * np.cos(ang), -s * np.sin(ang), 5.0], [s * np.sin(ang), s * np.cos(ang), -3.0]]
    )
    est = umeyama(a, apply_affine(m, a))
    np.testing.assert_allclose(est, m, atol=1e-9)


def test_ellipse_mask_covers_the_face_and_stays_bounded():
    m = ellipse_mask((320, 320), LM)
    assert m.dtype == np.float32 and m.shape == (320, 320)
    # eyes, nose and mouth corners are (almost) fully replaced
    for x, y in LM.astype(int):
        assert m[y, x] > 0.99
    # bounded by the ellipse (0.95 eye distances sideways, 1.2 eye-mouth heights up and
    # down) plus the feathered tail (below 1/255 beyond 2 sigma = 2 × 0.1 × 60 px)
    centre, axes, angle = face_ellipse(LM)
    assert angle == pytest.approx(0.0)
    assert centre == pytest.approx((160, 140 + 0.45 * 65))
    assert axes == pytest.approx((0.95 * 60, 1.2 * 65))
    ys, xs = np.nonzero(m)
    tail = 2 * 6 + 1
    assert xs.min() >= centre[0] - axes[0] - tail and xs.max() <= centre[0] + axes[0] + tail
    assert ys.min() >= centre[1] - axes[1] - tail and ys.max() <= centre[1] + axes[1] + tail
    assert m[5, 5] == 0 and m[315, 160] == 0
    # feathered: soft values exist between 0 and 1
    assert ((m > 0.05) & (m < 0.95)).sum() > 100


def test_yaw_ratio_frontal_and_turned():
    assert yaw_ratio(LM) == pytest.approx(0.0)
    turned = LM.copy()
    turned[2, 0] += 30  # nose half an eye distance to the side
    assert yaw_ratio(turned) == pytest.approx(0.5)


def test_masks_round_trip_and_reproducible_bytes(tmp_path):
    rng = np.random.default_rng(0)
    m = rng.random((4, 20, 30)).astype(np.float32)
    p1 = save_masks(m, tmp_path / "a.npz")
    p2 = save_masks(m, tmp_path / "b.npz")
    assert p1.read_bytes() == p2.read_bytes()
    back = load_masks(p1)
    assert back.shape == (4, 20, 30) and back.dtype == np.float32
    np.testing.assert_allclose(back, m, atol=0.5 / 255 + 1e-7)


def test_load_masks_errors(tmp_path):
    with pytest.raises(XaiStudyError, match="no such mask file"):
        load_masks(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(XaiStudyError, match="not a mask file"):
        load_masks(bad)
    flat = tmp_path / "flat.npz"
    np.savez_compressed(flat, masks=np.zeros((5, 5), np.uint8))
    with pytest.raises(XaiStudyError, match=r"\(N, H, W\)"):
        load_masks(flat)


def test_crop_masks_known_answer():
    masks = np.zeros((3, 100, 100), np.float32)
    masks[1, 40:60, 40:60] = 1.0
    masks[2, 0:10, 0:10] = 1.0
    clip = SimpleNamespace(
        frames=np.zeros((2, 40, 40, 3), np.uint8),
        frame_indices=np.array([1, 2]),
        crop_boxes=np.array([[30, 30, 70, 70], [-20, -20, 20, 20]], np.float32),
    )
    out = crop_masks(masks, clip)
    assert out.shape == (2, 40, 40) and out.dtype == np.float32
    want0 = np.zeros((40, 40), np.float32)
    want0[10:30, 10:30] = 1
    np.testing.assert_array_equal(out[0], want0)
    # the crop leaves the frame: padded with zeros, the corner square lands at 20..30
    want1 = np.zeros((40, 40), np.float32)
    want1[20:30, 20:30] = 1
    np.testing.assert_array_equal(out[1], want1)


def test_crop_masks_matches_crop_square_on_resize():
    rng = np.random.default_rng(1)
    masks = (rng.random((1, 120, 160)) > 0.5).astype(np.float32)
    box = np.array([10.4, 5.6, 110.4, 105.6], np.float32)
    clip = SimpleNamespace(
        frames=np.zeros((1, 64, 64, 3), np.uint8), frame_indices=[0], crop_boxes=[box]
    )
    got = crop_masks(masks, clip)[0]
    frame = np.repeat((masks[0] * 255).astype(np.uint8)[..., None], 3, axis=2)
    ref = crop_square(frame, box, 64)[..., 0].astype(np.float32) / 255
    np.testing.assert_allclose(got, ref, atol=1 / 255 + 1e-6)


def test_crop_masks_refuses_masks_of_another_video():
    clip = SimpleNamespace(
        frames=np.zeros((1, 8, 8, 3), np.uint8), frame_indices=[5], crop_boxes=[[0, 0, 8, 8]]
    )
    with pytest.raises(XaiStudyError, match="masks of another video"):
        crop_masks(np.zeros((3, 8, 8), np.float32), clip)
