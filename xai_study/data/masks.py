"""Ground-truth manipulation masks of the demo data set.

A mask file is a compressed ``.npz`` holding ``masks``: (N, H, W) uint8, one full-frame
mask per frame of the fake video (255 = fully replaced, 0 = untouched, soft values at the
feathered edge). :func:`load_masks` returns them as float32 in [0, 1];
:func:`crop_masks` maps them onto a :class:`~xai_study.video.FaceClip`'s crop grid.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xai_study.errors import XaiStudyError


def save_masks(masks: np.ndarray, path: str | os.PathLike) -> Path:
    """Write (N, H, W) masks (float in [0, 1] or uint8) as a compressed npz."""
    m = np.asarray(masks)
    if m.dtype != np.uint8:
        m = np.clip(np.rint(m * 255.0), 0, 255).astype(np.uint8)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # Fixed member timestamps keep the file bit for bit reproducible.
    import zipfile

    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("masks.npy", date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        import io

        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.ascontiguousarray(m), allow_pickle=False)
        zf.writestr(info, buf.getvalue())
    return p


def load_masks(path: str | os.PathLike) -> np.ndarray:
    """Load a mask file: (N, H, W) float32 in [0, 1], one mask per video frame."""
    p = Path(path)
    if not p.is_file():
        raise XaiStudyError(f"{p}: no such mask file")
    try:
        with np.load(p, allow_pickle=False) as z:
            m = z["masks"]
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise XaiStudyError(f"{p}: not a mask file ({type(exc).__name__})") from None
    if m.ndim != 3:
        raise XaiStudyError(f"{p}: masks must be (N, H, W), got shape {m.shape}")
    if m.dtype == np.uint8:
        return m.astype(np.float32) / 255.0
    return m.astype(np.float32)


def crop_mask(mask: np.ndarray, crop_box, size: int) -> np.ndarray:
    """Cut a square ``crop_box`` (x1, y1, x2, y2, may leave the frame) from one (H, W)
    mask with :func:`xai_study.video.clip.crop_square`, the function that cuts the face
    crops (zero padding, area interpolation when shrinking, bilinear when enlarging)."""
    from xai_study.video.clip import crop_square

    return crop_square(np.asarray(mask, dtype=np.float32), crop_box, size)


def crop_masks(masks: np.ndarray, clip) -> np.ndarray:
    """Map full-frame masks (N, H, W) onto a FaceClip's crop grid: (T, S, S) float32.

    Frame ``t`` of the clip uses ``masks[clip.frame_indices[t]]`` cut along
    ``clip.crop_boxes[t]``. Raises :class:`XaiStudyError` when the clip refers to a frame
    the masks do not have (the masks belong to another video).
    """
    masks = np.asarray(masks, dtype=np.float32)
    size = int(clip.frames.shape[1])
    idx = np.asarray(clip.frame_indices, dtype=int)
    if len(idx) and (idx.max() >= len(masks) or idx.min() < 0):
        raise XaiStudyError(
            f"the clip uses frame {int(idx.max())} but the masks have {len(masks)} frames "
            "(masks of another video?)"
        )
    out = np.zeros((len(idx), size, size), dtype=np.float32)
    for t, (fi, box) in enumerate(zip(idx, clip.crop_boxes, strict=True)):
        out[t] = crop_mask(masks[fi], box, size)
    return np.clip(out, 0.0, 1.0)
