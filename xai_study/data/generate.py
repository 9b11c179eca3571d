"""Generator of the demo deepfake data set (real clips, face swaps, self-blended fakes).

Everything is deterministic for a given ``seed``: the random camera motion of the photo
clips, the split assignment, the choice of swap sources and the self-blend jitter all
come from ``numpy.random.default_rng(seed)`` streams derived per clip.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xai_study.data.geometry import apply_affine, ellipse_mask, umeyama, yaw_ratio
from xai_study.data.masks import save_masks
from xai_study.errors import XaiStudyError

SIZE = 320  # output frames are SIZE × SIZE
FPS = 12.0
FRAMES = 30  # 2.5 s clips
CRF = 23
MAX_SOURCE_YAW = 0.25  # see geometry.yaw_ratio

# (file, face index after sorting detections left to right, identity)
PHOTO_FACES = [
    ("0-f1-su-ph.jpg", 0, "su"),
    ("0-f15-hao-ph.jpg", 0, "hao"),
    ("15-f13-anc-ph.jpg", 0, "anc"),
    ("45-m7-di-ph.jpg", 0, "di"),
    ("single_face.jpg", 0, "jin"),
    *[("multi_face.jpg", i, f"multi{i}") for i in range(5)],
    *[("t1.jpg", i, f"group{i}") for i in range(6)],
]
# (file, start second, identity)
VIDEO_CLIPS = [
    ("WolfgangLanger_Pexels.mp4", 0.0, "wolfgang"),
    ("WolfgangLanger_Pexels.mp4", 5.0, "wolfgang"),
    ("WolfgangLanger_Pexels.mp4", 10.0, "wolfgang"),
    ("WolfgangLanger_Pexels.mp4", 15.0, "wolfgang"),
    ("single_face.mp4", 0.0, "jin"),
    ("face_noface.mov", 0.0, "jin"),
    ("noface_face.mov", 3.6, "jin"),
]
PHOTO_CLIPS_PER_FACE = 2
# Fixed placements: the test split holds the identities whose media are also in the
# repository's tests/data (WolfgangLanger_Pexels.mp4, multi_face.jpg), so the
# reproduction test can regenerate test-split clips offline. The seed shuffles the rest.
FIXED_SPLITS = {"jin": "train", "wolfgang": "test", **{f"multi{i}": "test" for i in range(5)}}
SPLIT_COUNTS = {"val": 3}  # further identities per split, the rest train


@dataclass
class RealClip:
    video_id: str
    identity: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    landmarks: list  # per frame (5, 2) float64 or None (no face)
    origin: str
    split: str = ""
    extra: dict = field(default_factory=dict)


def _rng(seed: int, *keys) -> np.random.Generator:
    h = hashlib.sha256(repr((seed, *keys)).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


# ----------------------------------------------------------------- real clips
def photo_clip(
    image: np.ndarray,
    lm: np.ndarray,
    rng: np.random.Generator,
    n: int = FRAMES,
    framing: tuple[float, float] = (1.7, 2.2),
    noise: tuple[float, float] = (0.6, 1.4),
):
    """Virtual camera over a still photo: smooth pan, zoom and slight rotation, brightness
    drift and sensor noise. Returns frames (n, SIZE, SIZE, 3) and landmarks per frame
    (transformed exactly, so they do not jitter)."""
    import cv2

    lm = np.asarray(lm, np.float64)
    eyes = (lm[0] + lm[1]) / 2
    mouth = (lm[3] + lm[4]) / 2
    centre = (eyes + mouth) / 2
    face = max(np.linalg.norm(lm[1] - lm[0]) * 2.2, np.linalg.norm(mouth - eyes) * 2.6)
    side0 = face * rng.uniform(*framing)  # source pixels seen by the camera
    img_h, img_w = image.shape[:2]
    # the window must stay inside the photo (no mirrored borders) at the widest zoom and
    # largest rotation
    side0 = min(side0, 0.98 * min(img_h, img_w) / (1.12 * (np.cos(0.07) + np.sin(0.07))))
    pan = rng.uniform(-0.08, 0.08, size=(2, 2)) * face  # amplitude x/y, two harmonics
    phase = rng.uniform(0, 2 * np.pi, size=4)
    zoom = rng.uniform(-0.12, 0.12)
    rot = rng.uniform(-4.0, 4.0)
    bright = rng.uniform(-0.06, 0.06)
    noise_sigma = rng.uniform(*noise)
    frames, lms = [], []
    for i in range(n):
        t = i / max(n - 1, 1)
        c = centre + np.array(
            [
                pan[0, 0] * np.sin(np.pi * t + phase[0])
                + pan[1, 0] * np.sin(2 * np.pi * t + phase[1]),
                pan[0, 1] * np.sin(np.pi * t + phase[2])
                + pan[1, 1] * np.sin(2 * np.pi * t + phase[3]),
            ]
        )
        side = side0 * (1 + zoom * (0.5 - 0.5 * np.cos(np.pi * t)))
        ang = np.radians(rot * np.sin(np.pi * t))
        half = side / 2 * (abs(np.cos(ang)) + abs(np.sin(ang)))
        c = np.clip(c, [half, half], [max(half, img_w - half), max(half, img_h - half)])
        s = SIZE / side
        r = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]]) * s
        m = np.hstack([r, (np.array([SIZE / 2, SIZE / 2]) - r @ c)[:, None]])
        f = cv2.warpAffine(
            image, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        ).astype(np.float32)
        f *= 1 + bright * np.sin(np.pi * t)
        f += rng.normal(0, noise_sigma, f.shape).astype(np.float32)
        frames.append(np.clip(np.rint(f), 0, 255).astype(np.uint8))
        lms.append(apply_affine(m, lm))
    return np.stack(frames), lms


def smooth_landmarks(lms: list, sigma: float = 1.2) -> list:
    """Gaussian smoothing of per-frame landmarks over time within runs of detected
    frames; single missing frames are filled by interpolation."""
    lms = list(lms)
    n = len(lms)
    for i in range(1, n - 1):  # fill isolated gaps
        if lms[i] is None and lms[i - 1] is not None and lms[i + 1] is not None:
            lms[i] = (lms[i - 1] + lms[i + 1]) / 2
    out: list = [None] * n
    i = 0
    while i < n:
        if lms[i] is None:
            i += 1
            continue
        j = i
        while j < n and lms[j] is not None:
            j += 1
        run = np.stack(lms[i:j])
        k = np.arange(-3, 4)
        for t in range(i, j):
            w = np.exp(-0.5 * (k / sigma) ** 2)
            idx = t + k
            ok = (idx >= i) & (idx < j)
            out[t] = (run[idx[ok] - i] * w[ok, None, None]).sum(0) / w[ok].sum()
        i = j
    return out


def video_clip(path: Path, start: float, detect) -> tuple[np.ndarray, list]:
    """Cut FRAMES frames at FPS from ``start`` seconds, crop a fixed square around the
    mean face position (real camera motion kept), resize to SIZE, detect landmarks."""
    import cv2

    from xai_study.video import read_video

    if not path.is_file():
        raise XaiStudyError(f"source media {path.name} is missing from the sources")
    v = read_video(path, num_frames=None, max_bytes=None)
    ts = np.asarray(v.timestamps, np.float64)
    want = start + np.arange(FRAMES) / FPS
    idx = [int(np.argmin(np.abs(ts - w))) for w in want if w <= ts[-1] + 0.5 / FPS]
    frames = v.frames[idx]
    h, w = frames.shape[1:3]
    det = detect(frames)
    cx = [f[0].centre[0] for f in det if f]
    if not cx:
        raise XaiStudyError(f"{path.name}: no face between {start} s and {want[-1]:.1f} s")
    side = min(h, w)
    x0 = int(np.clip(round(float(np.mean(cx)) - side / 2), 0, w - side))
    y0 = (h - side) // 2
    s = SIZE / side
    out = np.stack(
        [
            cv2.resize(
                f[y0 : y0 + side, x0 : x0 + side], (SIZE, SIZE), interpolation=cv2.INTER_AREA
            )
            for f in frames
        ]
    )
    lms = [((f[0].landmarks.astype(np.float64) - [x0, y0]) * s) if f else None for f in det]
    return out, smooth_landmarks(lms)


# ------------------------------------------------------------------ manipulations
def _lab_stats(img: np.ndarray, sel: np.ndarray):
    import cv2

    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    px = lab[sel]
    return lab, px.mean(0), px.std(0) + 1e-3


def face_swap(
    target: RealClip, src_img: np.ndarray, src_lm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Swap the face of ``src_img`` (landmarks ``src_lm``) onto every frame of ``target``.

    Per frame: similarity transform from the 5 source landmarks to the (temporally
    smoothed) target landmarks, LAB mean/std colour transfer inside the mask (statistics
    smoothed over time), alpha blend inside the feathered landmark ellipse. Returns fake
    frames and masks (T, H, W) float32."""
    import cv2

    t_n, h, w = target.frames.shape[:3]
    warped, masks, stats = [], [], []
    for t in range(t_n):
        lm = target.landmarks[t]
        if lm is None:
            warped.append(None)
            masks.append(np.zeros((h, w), np.float32))
            stats.append(None)
            continue
        m = umeyama(src_lm, lm)
        wimg = cv2.warpAffine(
            src_img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        )
        mask = ellipse_mask((h, w), lm)
        sel = mask > 0.5
        _, ms, ss = _lab_stats(wimg, sel)
        _, mt, st = _lab_stats(target.frames[t], sel)
        warped.append(wimg)
        masks.append(mask)
        stats.append((ms, ss, mt, st))
    # smooth colour statistics over time (no flicker)
    valid = [i for i, s in enumerate(stats) if s is not None]
    fakes = target.frames.copy()
    for t in valid:
        near = [u for u in valid if abs(u - t) <= 3]
        wts = np.array([np.exp(-0.5 * ((u - t) / 1.5) ** 2) for u in near])
        agg = [
            sum(wt * stats[u][k] for wt, u in zip(wts, near, strict=True)) / wts.sum()
            for k in range(4)
        ]
        ms, ss, mt, st = agg
        lab = cv2.cvtColor(warped[t].astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
        lab = (lab - ms) * (st / ss) + mt
        lab[..., 0] = np.clip(lab[..., 0], 0, 100)
        rgb = np.clip(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB) * 255.0, 0, 255)
        a = masks[t][..., None]
        out = a * rgb + (1 - a) * target.frames[t].astype(np.float32)
        fakes[t] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return fakes, np.stack(masks)


def self_blend(target: RealClip, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Self-blended pseudo-fake (Shiohara & Yamasaki 2022): a colour-, scale- and
    shift-jittered copy of each frame blended into itself inside a blurred, randomly
    deformed landmark ellipse, with a blend ratio from {0.25, 0.5, 0.75, 1, 1, 1}.
    The jitter is drawn once per clip (no flicker). Masks hold the blend weight / ratio
    (where the face was altered)."""
    import cv2

    ratio = float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0]))
    hue = rng.uniform(-8, 8)
    sat = rng.uniform(0.85, 1.2)
    val = rng.uniform(0.85, 1.15)
    scale = rng.uniform(1.02, 1.08)
    shift = rng.uniform(-0.03, 0.03, size=2)
    mscale = rng.uniform(0.9, 1.08)
    feather = rng.uniform(0.08, 0.2)
    sharpen = rng.random() < 0.5
    t_n, h, w = target.frames.shape[:3]
    fakes = target.frames.copy()
    masks = np.zeros((t_n, h, w), np.float32)
    for t in range(t_n):
        lm = target.landmarks[t]
        if lm is None:
            continue
        f = target.frames[t]
        hsv = cv2.cvtColor(f, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + hue) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] * val, 0, 255)
        src = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
        if sharpen:
            blur = cv2.GaussianBlur(src, (0, 0), 1.5)
            src = cv2.addWeighted(src, 1.6, blur, -0.6, 0)
        else:
            src = cv2.GaussianBlur(src, (0, 0), 1.0)
        d = float(np.linalg.norm(lm[1] - lm[0]))
        c = lm.mean(0)
        m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), 0.0, scale)
        m[:, 2] += shift * d * 2
        src = cv2.warpAffine(
            src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        )
        mask = ellipse_mask((h, w), lm, scale=mscale, feather=feather)
        a = (mask * ratio)[..., None]
        out = a * src.astype(np.float32) + (1 - a) * f.astype(np.float32)
        fakes[t] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        masks[t] = mask
    return fakes, masks


# ---------------------------------------------------------------------- the plan
class PhotoFaces:
    """Photo faces by identity, loaded (and detected) on first use: image, landmarks."""

    def __init__(self, media: Path, detect):
        self.media, self.detect = media, detect
        self._images: dict = {}

    def __contains__(self, ident: str) -> bool:
        return any(i == ident for _, _, i in PHOTO_FACES)

    def __getitem__(self, ident: str) -> tuple[np.ndarray, np.ndarray]:
        from xai_study.video import read_video

        fname, k = next((f, k) for f, k, i in PHOTO_FACES if i == ident)
        if fname not in self._images:
            p = self.media / fname
            if not p.is_file():
                raise XaiStudyError(f"source media {fname} is missing from the sources")
            img = read_video(p, max_bytes=None).frames[0]
            det = sorted(self.detect(img[None], max_side=None)[0], key=lambda f: f.box[0])
            self._images[fname] = (img, det)
        img, det = self._images[fname]
        if k >= len(det):
            raise XaiStudyError(f"{fname}: expected at least {k + 1} faces, found {len(det)}")
        return img, det[k].landmarks.astype(np.float64)


def assign_splits(identities: list[str], seed: int) -> dict[str, str]:
    free = sorted(i for i in identities if i not in FIXED_SPLITS)
    order = _rng(seed, "splits").permutation(len(free))
    free = [free[i] for i in order]
    out = dict(FIXED_SPLITS)
    pos = 0
    for split, n in SPLIT_COUNTS.items():
        for ident in free[pos : pos + n]:
            out[ident] = split
        pos += n
    for ident in free[pos:]:
        out[ident] = "train"
    return out


def build_plan(seed: int, limit: int | None = None) -> tuple[list[tuple], dict[str, str]]:
    """The real clips to make, in a fixed order, and the split of every identity."""
    plan: list[tuple] = [("video", f, start, ident) for f, start, ident in VIDEO_CLIPS]
    for _, _, ident in PHOTO_FACES:
        n = 1 if ident == "jin" else PHOTO_CLIPS_PER_FACE
        for j in range(n):
            plan.append(("photo", ident, j, ident))
    splits = assign_splits(sorted({p[3] for p in plan}), seed)
    if limit is not None:
        plan = plan[:limit]
    return plan, splits


def planned_count(seed: int = 0, limit: int | None = None, selfblend: bool = True) -> int:
    """Number of clips :func:`generate` makes (for a progress bar)."""
    plan, splits = build_plan(seed, limit)
    n_train = sum(splits[p[3]] == "train" for p in plan)
    return 2 * len(plan) + (n_train if selfblend else 0)


FIELDS = [
    "video_id", "path", "label", "method", "source_identity", "target_identity", "split",
    "mask_path", "target_video_id", "fps", "frames",
]  # fmt: skip


def generate(
    out: Path,
    media: Path,
    seed: int = 0,
    limit: int | None = None,
    selfblend: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Build the data set in ``out`` from the media folder; returns the label rows.

    ``limit`` keeps only the first ``limit`` real clips (and the fakes made from them),
    for quick checks; the clips that are made are identical to those of a full run.
    """
    from xai_study.video import detect_faces

    def detect(frames, max_side=640):
        return detect_faces(frames, max_side=max_side)

    out = Path(out)
    faces = PhotoFaces(media, detect)
    plan, splits = build_plan(seed, limit)
    reals: list[RealClip] = []
    for kind, a, b, ident in plan:
        if progress:
            progress(f"real {ident}")
        if kind == "video":
            frames, lms = video_clip(media / a, b, detect)
            vid = f"real_{ident}_{Path(a).stem.lower()[:12]}_{int(b):02d}"
            origin = f"{a} from {b:.1f} s"
        else:
            img, lm = faces[ident]
            frames, lms = photo_clip(img, lm, _rng(seed, "photo", ident, b))
            vid = f"real_{ident}_photo{b}"
            origin = (
                f"camera motion over the photo {next(f for f, _, i in PHOTO_FACES if i == ident)}"
            )
        reals.append(RealClip(vid, ident, frames, lms, origin, splits[ident]))
    rows = []
    for rc in reals:
        rows.append(write_clip(out, rc.video_id, rc.frames, "real", "real", rc.identity,
                               rc.identity, rc.split))  # fmt: skip

    def write_fake(vid, method, src, rc, fake, masks) -> None:
        rows.append(write_clip(out, vid, fake, "fake", method, src, rc.identity, rc.split,
                               masks, rc.video_id))  # fmt: skip

    # face swaps: source = another identity of the same split (its photo, or for the
    # video-only identity a frame of its video)
    by_split: dict[str, list[str]] = {}
    for ident, sp in sorted(splits.items()):
        by_split.setdefault(sp, []).append(ident)
    for rc in reals:
        cands = [i for i in by_split[rc.split] if i != rc.identity]
        # turned heads make poor sources (half a face would be pasted): frontal only
        frontal = [
            i for i in cands if _source_yaw(i, faces, reals, media, detect) <= MAX_SOURCE_YAW
        ]
        cands = frontal or cands
        rng = _rng(seed, "swap", rc.video_id)
        src = cands[int(rng.integers(len(cands)))]
        if progress:
            progress(f"faceswap {src}->{rc.identity}")
        src_img, src_lm = _source_face(src, faces, reals, media, detect)
        fake, masks = face_swap(rc, src_img, src_lm)
        write_fake(f"fake_faceswap_{src}_to_{rc.video_id[5:]}", "faceswap", src, rc, fake, masks)
    if selfblend:
        for rc in reals:
            if rc.split != "train":
                continue
            if progress:
                progress(f"selfblend {rc.identity}")
            fake, masks = self_blend(rc, _rng(seed, "sbi", rc.video_id))
            write_fake(
                f"fake_selfblend_{rc.video_id[5:]}", "selfblend", rc.identity, rc, fake, masks
            )
    with open(out / "labels.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        wr.writeheader()
        wr.writerows(rows)
    return rows


_VIDEO_SOURCES: dict = {}


def _source_face(ident: str, faces, reals: list[RealClip], media: Path, detect):
    """The still face pasted when ``ident`` is a swap source: its photo, or for an
    identity seen only in a video the most frontal frame of a clip from 2 s on."""
    if ident in faces:
        return faces[ident]
    if ident == "wolfgang":
        key = (str(media), ident)
        if key not in _VIDEO_SOURCES:
            frames, lms = video_clip(media / "WolfgangLanger_Pexels.mp4", 2.0, detect)
            ok = [i for i, lm in enumerate(lms) if lm is not None]
            t = min(ok, key=lambda i: (yaw_ratio(lms[i]), i))
            _VIDEO_SOURCES[key] = (frames[t], lms[t])
        return _VIDEO_SOURCES[key]
    raise XaiStudyError(f"no source face for identity {ident}")


def _source_yaw(ident: str, faces, reals, media, detect) -> float:
    return yaw_ratio(_source_face(ident, faces, reals, media, detect)[1])


def write_clip(
    out: Path, vid, frames, label, method, src, tgt, split, masks=None, target_vid=""
) -> dict:
    """Write ``out/videos/<vid>.mp4`` (and ``out/masks/<vid>.npz`` for a fake) and return
    its labels.csv row."""
    from xai_study.data.encode import write_mp4

    path = write_mp4(frames, Path(out) / "videos" / f"{vid}.mp4", fps=FPS, crf=CRF)
    mask_path = save_masks(masks, Path(out) / "masks" / f"{vid}.npz") if masks is not None else ""
    return {
        "video_id": vid,
        "path": Path(path).relative_to(out).as_posix(),
        "label": label,
        "method": method,
        "source_identity": src,
        "target_identity": tgt,
        "split": split,
        "mask_path": Path(mask_path).relative_to(out).as_posix() if mask_path else "",
        "target_video_id": target_vid,
        "fps": f"{FPS:g}",
        "frames": len(frames),
    }
