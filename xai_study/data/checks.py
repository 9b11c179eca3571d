"""Acceptance checks of a generated data set (used by the tests and the docs)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def diff_inside_mask(fake: np.ndarray, target: np.ndarray, masks: np.ndarray) -> float:
    """Share of the total absolute pixel difference fake vs. target that lies where the
    mask is non-zero (1.0 = every changed pixel is inside the mask)."""
    diff = np.abs(fake.astype(np.float32) - target.astype(np.float32)).mean(-1)
    total = float(diff.sum())
    if total == 0:
        return 1.0
    return float(diff[masks > 0].sum()) / total


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
            }
        )
    return out
