"""Face regions from the five MTCNN landmarks, and one-line captions of explanation maps.

The paper's first item of future work is to caption explanation maps. We do it the
simple, checkable way: build a partition of the face crop into named regions from the
five landmarks (two eyes, nose tip, two mouth corners) of each frame, measure how much of
the explanation's mass falls in each region, and name the regions that hold clearly more
than their share of the area.

Geometry (all lengths in units of the inter-ocular distance ``d``, in a frame aligned with
the eye line so that head roll is followed):

* ``eyes``: an ellipse around each eye (0.32 d wide, 0.22 d high half-axes), shifted up a
  little to take in the lower brow;
* ``nose``: an ellipse from just below the eye line down to the nose tip;
* ``mouth``: an ellipse around the mouth corners (half the mouth width + 0.18 d wide);
* ``face``: an ellipse centred below the eyes (1.05 d wide half-axis, 1.35 h high half-axis,
  ``h`` = eye-to-mouth height), which stands for the face outline;
* ``jaw/boundary``: the band around that outline (normalised radius 0.82–1.12), where
  blending seams of face swaps usually are;
* ``forehead``: the rest of the face above the eye line;
* ``cheeks``: the rest of the face below it;
* ``background``: everything else.

Every pixel belongs to exactly one region (the order above is the priority order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REGIONS: tuple[str, ...] = (
    "eyes",
    "nose",
    "mouth",
    "cheeks",
    "forehead",
    "jaw/boundary",
    "background",
)

# Readable names for captions.
_PHRASE = {
    "eyes": "the eyes",
    "nose": "the nose",
    "mouth": "the mouth",
    "cheeks": "the cheeks",
    "forehead": "the forehead",
    "jaw/boundary": "the jaw line and face boundary",
    "background": "the background",
}


def _frame_geometry(lm: np.ndarray):
    """Origin, unit vectors and scales of the face frame for one (5, 2) landmark set."""
    lm = np.asarray(lm, dtype=np.float64)
    eyes = lm[:2][np.argsort(lm[:2, 0])]  # image-left eye first
    mouth = lm[3:5][np.argsort(lm[3:5, 0])]
    nose = lm[2]
    eye_mid = eyes.mean(axis=0)
    mouth_mid = mouth.mean(axis=0)
    ex = eyes[1] - eyes[0]
    d = float(np.hypot(*ex))
    if not np.isfinite(d) or d < 1e-6:
        raise ValueError("degenerate landmarks: the two eyes coincide")
    ux = ex / d
    uy = np.array([-ux[1], ux[0]])  # perpendicular, pointing down the face
    if np.dot(mouth_mid - eye_mid, uy) < 0:
        uy = -uy
    h = float(np.dot(mouth_mid - eye_mid, uy))
    h = max(h, 0.6 * d)  # keep the face ellipse sane for odd landmarks
    return eye_mid, ux, uy, d, h, eyes, nose, mouth


def region_masks(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Integer label map (H, W) for one frame; label ``i`` is ``REGIONS[i]``.

    ``landmarks`` are the five (x, y) landmarks in pixels of this grid.
    """
    eye_mid, ux, uy, d, h, eyes, nose, mouth = _frame_geometry(landmarks)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    px = np.stack([xx + 0.5, yy + 0.5], axis=-1)  # pixel centres

    def local(origin):
        rel = px - origin
        return rel @ ux, rel @ uy  # (along eye line, down the face)

    def ellipse(origin, ax, ay):
        a, b = local(origin)
        return (a / ax) ** 2 + (b / ay) ** 2

    labels = np.full((height, width), REGIONS.index("background"), dtype=np.int8)
    assigned = np.zeros((height, width), dtype=bool)

    def put(name, mask):
        nonlocal assigned
        m = mask & ~assigned
        labels[m] = REGIONS.index(name)
        assigned |= m

    # Face outline and the boundary band around it.
    face_centre = eye_mid + uy * (0.45 * h)
    r_face = np.sqrt(ellipse(face_centre, 1.05 * d, 1.35 * h))
    # Inner features first (they win over the outline).
    up = -uy * (0.06 * d)
    eye_mask = (ellipse(eyes[0] + up, 0.32 * d, 0.22 * d) <= 1) | (
        ellipse(eyes[1] + up, 0.32 * d, 0.22 * d) <= 1
    )
    put("eyes", eye_mask)
    nose_top = eye_mid + uy * (0.10 * d)
    nose_len = max(float(np.dot(nose - nose_top, uy)), 0.2 * d)
    nose_centre = nose_top + uy * (nose_len / 2) + ux * float(np.dot(nose - nose_top, ux)) / 2
    put("nose", ellipse(nose_centre, 0.25 * d, nose_len / 2 + 0.12 * d) <= 1)
    mouth_w = float(np.hypot(*(mouth[1] - mouth[0])))
    put("mouth", ellipse(mouth.mean(axis=0), mouth_w / 2 + 0.18 * d, 0.22 * d) <= 1)
    put("jaw/boundary", (r_face >= 0.82) & (r_face <= 1.12))
    inside = r_face < 0.82
    a_eye, b_eye = local(eye_mid)
    put("forehead", inside & (b_eye < -0.12 * d))
    put("cheeks", inside)
    return labels


def scale_landmarks(landmarks: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]):
    """Rescale (…, 5, 2) landmarks from a (H, W) grid to another (H, W) grid."""
    lm = np.asarray(landmarks, dtype=np.float64).copy()
    lm[..., 0] *= to_size[1] / from_size[1]
    lm[..., 1] *= to_size[0] / from_size[0]
    return lm


@dataclass
class RegionShares:
    """Where the mass of an explanation lies, by face region (averaged over frames)."""

    mass: dict[str, float]  # fraction of the map's mass in each region (sums to 1)
    area: dict[str, float]  # fraction of the crop's area in each region (sums to 1)
    frames: int  # frames that had mass

    @property
    def lift(self) -> dict[str, float]:
        """Mass share over area share (1 = as much as a uniform map would give)."""
        return {r: (self.mass[r] / self.area[r] if self.area[r] > 0 else 0.0) for r in REGIONS}

    def top(self, k: int = 2, min_mass: float = 0.10, min_lift: float = 1.25) -> list[str]:
        """Regions that stand out: enough mass and clearly more than their area's share,
        ordered by mass."""
        lift = self.lift
        keep = [r for r in REGIONS if self.mass[r] >= min_mass and lift[r] >= min_lift]
        keep.sort(key=lambda r: (-self.mass[r], r))
        return keep[:k]

    def as_dict(self) -> dict:
        return {"mass": self.mass, "area": self.area, "lift": self.lift, "frames": self.frames}


def region_shares(
    normalised: np.ndarray,
    landmarks: np.ndarray,
    weights: np.ndarray | None = None,
) -> RegionShares:
    """Share of explanation mass per region.

    ``normalised``: (T, H, W) non-negative maps on the crop grid; ``landmarks``: (T, 5, 2)
    landmarks in pixels of that grid; ``weights``: optional (T,) frame weights (e.g. the
    detector's confidence). Frames whose map sums to zero are skipped.
    """
    maps = np.asarray(normalised, dtype=np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    lms = np.asarray(landmarks, dtype=np.float64)
    if lms.ndim == 2:
        lms = lms[None]
    if maps.ndim != 3 or lms.shape[1:] != (5, 2) or len(lms) != len(maps):
        raise ValueError(
            f"need maps (T, H, W) and landmarks (T, 5, 2), got {maps.shape} and {lms.shape}"
        )
    if np.any(maps < 0):
        raise ValueError("region shares need a non-negative view of the maps")
    t, hgt, wid = maps.shape
    w = np.ones(t) if weights is None else np.asarray(weights, dtype=np.float64)
    mass = np.zeros(len(REGIONS))
    area = np.zeros(len(REGIONS))
    used = 0
    total_w = 0.0
    for i in range(t):
        labels = region_masks(lms[i], hgt, wid)
        counts = np.bincount(labels.ravel(), minlength=len(REGIONS)).astype(np.float64)
        area += counts / counts.sum()
        s = maps[i].sum()
        if s <= 0 or w[i] <= 0:
            continue
        per = np.bincount(labels.ravel(), weights=maps[i].ravel(), minlength=len(REGIONS))
        mass += w[i] * per / s
        total_w += w[i]
        used += 1
    area /= max(t, 1)
    if total_w > 0:
        mass /= total_w
    return RegionShares(
        mass={r: float(mass[k]) for k, r in enumerate(REGIONS)},
        area={r: float(area[k]) for k, r in enumerate(REGIONS)},
        frames=used,
    )


def caption(shares: RegionShares, name: str | None = None) -> str:
    """One line naming the regions the explanation highlights most."""
    who = f"{name}: " if name else ""
    if shares.frames == 0:
        return f"{who}the map is empty (no region highlighted)."
    top = shares.top()
    if not top:
        best = max(REGIONS, key=lambda r: shares.mass[r])
        return (
            f"{who}spread over the crop; no region stands out "
            f"(largest share: {_PHRASE[best]}, {shares.mass[best]:.0%})."
        )
    parts = [
        f"{_PHRASE[r]} ({shares.mass[r]:.0%} of the map on {shares.area[r]:.0%} of the crop)"
        for r in top
    ]
    return f"{who}highlights mostly " + " and ".join(parts) + "."
