"""Face geometry from the five MTCNN landmarks: similarity transforms and face masks."""

from __future__ import annotations

import numpy as np


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping
    ``src`` (K, 2) points onto ``dst`` (K, 2); returns the 2×3 matrix (Umeyama 1991)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s0, d0 = src - ms, dst - md
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1
    r = u @ np.diag(d) @ vt
    var = (s0**2).sum() / len(src)
    scale = (sig * d).sum() / var
    t = md - scale * r @ ms
    return np.hstack([scale * r, t[:, None]])


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def face_ellipse(landmarks: np.ndarray, scale: float = 1.0) -> tuple:
    """Ellipse covering eyebrows to chin and cheek to cheek, from 5 landmarks.

    Returns ``(centre (x, y), (semi-axis x, semi-axis y), angle in degrees)``. Axes are
    along the eye line and perpendicular to it; ``scale`` enlarges both.
    """
    lm = np.asarray(landmarks, np.float64)
    le, re, _nose, lmo, rmo = lm
    eyes = (le + re) / 2
    mouth = (lmo + rmo) / 2
    d = np.linalg.norm(re - le)
    ex = (re - le) / max(d, 1e-6)
    ey = np.array([-ex[1], ex[0]])
    h = max(abs(float(np.dot(mouth - eyes, ey))), 0.5 * d)
    centre = eyes + ey * 0.45 * h
    axes = (0.95 * d * scale, 1.2 * h * scale)
    angle = float(np.degrees(np.arctan2(ex[1], ex[0])))
    return centre, axes, angle


def ellipse_mask(
    shape: tuple[int, int],
    landmarks: np.ndarray,
    scale: float = 1.0,
    feather: float = 0.1,
    levels: int | None = 32,
) -> np.ndarray:
    """Soft (H, W) float32 face mask in [0, 1]: the landmark ellipse, shrunk so that the
    feathered edge (Gaussian, sigma = ``feather`` × eye distance) is centred one sigma inside
    the ellipse. Weights are rounded up to multiples of ``1 / levels``."""
    import cv2

    lm = np.asarray(landmarks, np.float64)
    d = float(np.linalg.norm(lm[1] - lm[0]))
    sigma = max(feather * d, 0.5)
    centre, axes, angle = face_ellipse(lm, scale)
    inner = (max(axes[0] - sigma, 1.0), max(axes[1] - sigma, 1.0))
    m = np.zeros(shape, np.float32)
    sh = 4  # sub-pixel precision
    cv2.ellipse(
        m,
        (int(round(centre[0] * 16)), int(round(centre[1] * 16))),
        (int(round(inner[0] * 16)), int(round(inner[1] * 16))),
        angle,
        0,
        360,
        1.0,
        -1,
        cv2.LINE_AA,
        sh,
    )
    k = int(2 * round(3 * sigma) + 1)
    m = cv2.GaussianBlur(m, (k, k), sigma, borderType=cv2.BORDER_CONSTANT)
    m[m < 1.0 / 255] = 0.0
    if levels:
        # a few weight levels (rounded up, so the support is kept) make the stored masks
        # compress 3-4x better; the fakes are blended with these very weights
        m = np.ceil(m * levels) / levels
    return np.clip(m, 0.0, 1.0).astype(np.float32)


def yaw_ratio(landmarks: np.ndarray) -> float:
    """Horizontal offset of the nose from the eye midpoint, along the eye line, in eye
    distances: about 0 for a frontal face, 0.3 and more for a turned head."""
    lm = np.asarray(landmarks, np.float64)
    d = np.linalg.norm(lm[1] - lm[0])
    ex = (lm[1] - lm[0]) / max(d, 1e-6)
    return float(abs(np.dot(lm[2] - (lm[0] + lm[1]) / 2, ex)) / max(d, 1e-6))
