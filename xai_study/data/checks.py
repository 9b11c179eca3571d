"""Acceptance checks of a generated data set (used by the tests and the docs)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

# Separately encoded H.264 videos differ by quantisation noise even where their frames
# were identical: the encoder's decisions diverge after the first changed macroblock. On
# the committed set, between a fake and its target outside the mask, the mean of these
# differences is 1.5 levels and 99.6 % of them are at most CODEC_NOISE levels.
CODEC_NOISE = 8.0


def diff_inside_mask(
    fake: np.ndarray, target: np.ndarray, masks: np.ndarray, floor: float = 0.0
) -> float:
    """Share of the total absolute pixel difference (mean over RGB) fake vs. target that
    lies where the mask is non-zero (1.0 = every changed pixel is inside the mask).
    Pixels whose difference is at most ``floor`` are left out (codec noise)."""
    diff = np.abs(fake.astype(np.float64) - target.astype(np.float64)).mean(-1)
    if floor > 0:
        diff = np.where(diff > floor, diff, 0.0)
    total = float(diff.sum())
    if total == 0:
        return 1.0
    return float(diff[masks > 0].sum()) / total


def flicker_ratio(fake: np.ndarray, target: np.ndarray, masks: np.ndarray) -> float:
    """Frame-to-frame change inside the mask (pixels with weight > 0.9 in both frames) of
    the fake, divided by the same for its target: about 1 when the swapped face is as
    stable as the real video, above 1 when it flickers."""
    core = (masks[1:] > 0.9) & (masks[:-1] > 0.9)
    if not core.any():
        return 1.0
    df = np.abs(np.diff(fake.astype(np.float32).mean(-1), axis=0))[core].mean()
    dt = np.abs(np.diff(target.astype(np.float32).mean(-1), axis=0))[core].mean()
    return float(df / max(dt, 1e-6))


def check_dataset(data_dir: str | Path) -> list[dict]:
    """For every fake in ``labels.csv``: frames, frames with a face in the target (by the
    mask of the fake: frames where the generator found landmarks), empty-mask frames and
    the share of the difference inside the mask (decoded videos)."""
    from xai_study.data.masks import load_masks
    from xai_study.video import read_video

    d = Path(data_dir)
    with open(d / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_id = {r["video_id"]: r for r in rows}
    out = []
    for r in rows:
        if r["label"] != "fake":
            continue
        fake = read_video(d / r["path"], num_frames=None).frames
        target = read_video(d / by_id[r["target_video_id"]]["path"], num_frames=None).frames
        masks = load_masks(d / r["mask_path"])
        out.append(
            {
                "video_id": r["video_id"],
                "method": r["method"],
                "frames": len(fake),
                "target_frames": len(target),
                "mask_frames": len(masks),
                "empty_mask_frames": int(sum(m.max() == 0 for m in masks)),
                "inside": diff_inside_mask(fake, target, masks),
                "flicker": flicker_ratio(fake, target, masks),
                "inside_above_noise": diff_inside_mask(fake, target, masks, CODEC_NOISE),
                "outside_noisy": float(
                    (
                        np.abs(fake.astype(float) - target.astype(float)).mean(-1)[masks == 0]
                        > CODEC_NOISE
                    ).mean()
                ),
            }
        )
    return out
