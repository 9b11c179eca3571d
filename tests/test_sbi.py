"""Self-blended training crops: the blend stays inside its mask and is reproducible."""

from __future__ import annotations

import numpy as np

from xai_study.detectors.sbi import blend_mask, self_blend_crop


def _face_crop(size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx * 2, yy * 2, (xx + yy)], -1) % 256
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def test_blend_mask_covers_the_centre_not_the_corners() -> None:
    for seed in range(10):
        m = blend_mask(128, np.random.default_rng(seed))
        assert m.shape == (128, 128) and m.dtype == np.float32
        assert m.min() >= 0.0 and m.max() == 1.0
        assert m[64, 64] > 0.9  # the face centre is blended
        assert max(m[0, 0], m[0, -1], m[-1, 0], m[-1, -1]) < 0.01  # background is not
        assert 0.15 < m.mean() < 0.6


def test_self_blend_changes_pixels_only_inside_the_mask() -> None:
    img = _face_crop()
    for seed in range(10):
        out, mask = self_blend_crop(img, np.random.default_rng(seed))
        assert out.shape == img.shape and out.dtype == np.uint8
        diff = np.abs(out.astype(int) - img.astype(int)).max(-1)
        assert diff[mask < 1e-3].max() <= 1
        assert diff[mask > 0.9].mean() > 1.0  # the blended face really differs


def test_self_blend_is_reproducible() -> None:
    img = _face_crop()
    a, ma = self_blend_crop(img, np.random.default_rng(7))
    b, mb = self_blend_crop(img, np.random.default_rng(7))
    c, _ = self_blend_crop(img, np.random.default_rng(8))
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert not np.array_equal(a, c)
