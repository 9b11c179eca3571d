"""Self-blended pseudo-fakes made on the fly from real face crops, for training.

Shiohara & Yamasaki (CVPR 2022, "Detecting Deepfakes with Self-Blended Images") train a
detector on real faces only: each fake is the face blended into a slightly altered copy
of itself, so the only cue left is the blending itself (boundary, colour and sharpness
mismatch), not who the person is. The data set generator makes such clips from whole
frames and landmarks (``xai_study.data.generate.self_blend``); here the same idea works on
the aligned MTCNN crops the trainer already has. MTCNN crops are centred on the face box
(margin 1.3), so the blend region is a randomly deformed ellipse around the crop centre
rather than a landmark hull.

Pairs of a real crop and its self-blend carry the same identity, pose and light, which
is what keeps a detector trained on a handful of people from scoring identities.
"""

from __future__ import annotations

import numpy as np


def blend_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """float32 ``(size, size)`` soft mask in [0, 1]: a randomly shaped, rotated and
    deformed ellipse over the face region of a centred face crop, blurred at the edge."""
    import cv2

    s = size
    cx = s * (0.5 + rng.uniform(-0.03, 0.03))
    cy = s * (0.53 + rng.uniform(-0.03, 0.05))
    ax = s * rng.uniform(0.24, 0.34)
    ay = s * rng.uniform(0.30, 0.42)
    angle = rng.uniform(-12, 12)
    m = np.zeros((s, s), np.uint8)
    cv2.ellipse(m, ((cx, cy), (2 * ax, 2 * ay), angle), 255, -1)
    # low-frequency deformation of the outline
    grid = max(4, s // 32)
    dx = cv2.resize(rng.normal(0, s * 0.02, (grid, grid)).astype(np.float32), (s, s))
    dy = cv2.resize(rng.normal(0, s * 0.02, (grid, grid)).astype(np.float32), (s, s))
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    m = cv2.remap(m, xx + dx, yy + dy, cv2.INTER_LINEAR, borderValue=0)
    # random erosion/dilation, then a feathered edge
    k = int(rng.integers(1, max(2, s // 28)))
    kernel = np.ones((k, k), np.uint8)
    m = cv2.erode(m, kernel) if rng.random() < 0.5 else cv2.dilate(m, kernel)
    sigma = s * rng.uniform(0.015, 0.05)
    f = cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), sigma)
    peak = float(f.max())
    return f / peak if peak > 0 else f


def self_blend_crop(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A self-blended copy of a uint8 ``(S, S, 3)`` face crop and its blend mask.

    The source is the crop with its colour jittered (hue, saturation, value), sharpened or
    blurred, and slightly enlarged and shifted; it is blended into the original inside
    :func:`blend_mask` with a ratio from {0.25, 0.5, 0.75, 1, 1, 1}."""
    import cv2

    s = img.shape[0]
    hsv = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.8, 1.25), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(0.85, 1.15), 0, 255)
    src = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    r = rng.random()
    if r < 0.4:
        blur = cv2.GaussianBlur(src, (0, 0), rng.uniform(0.8, 1.8))
        src = cv2.addWeighted(src, 1.6, blur, -0.6, 0)
    elif r < 0.8:
        src = cv2.GaussianBlur(src, (0, 0), rng.uniform(0.6, 1.6))
    else:  # down- and up-sampling: a resolution mismatch
        small = max(8, int(s * rng.uniform(0.35, 0.7)))
        src = cv2.resize(cv2.resize(src, (small, small), interpolation=cv2.INTER_AREA), (s, s))
    scale = rng.uniform(1.0, 1.08)
    m = cv2.getRotationMatrix2D((s / 2, s / 2), rng.uniform(-2, 2), scale)
    m[:, 2] += rng.uniform(-0.03, 0.03, size=2) * s
    src = cv2.warpAffine(src, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    mask = blend_mask(s, rng)
    ratio = float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0]))
    a = (mask * ratio)[..., None]
    out = a * src.astype(np.float32) + (1 - a) * img.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask
