"""Contact sheet of a generated data set: target (real) / fake / mask triplets."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def contact_sheet(
    data_dir: str | Path, out_png: str | Path, rows: int = 10, frame: int = 10, tile: int = 160
) -> Path:
    """Write a PNG with ``rows`` fakes — face swaps onto different target identities, then
    two self-blends — each as real | fake | mask at frame ``frame``, two per line."""
    import cv2
    from PIL import Image

    from xai_study.data.masks import load_masks
    from xai_study.video import read_video

    d = Path(data_dir)
    with open(d / "labels.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    by_id = {r["video_id"]: r for r in table}
    fakes = [r for r in table if r["method"] == "faceswap"]
    seen, picked = set(), []
    for r in fakes:
        if r["target_identity"] not in seen:
            seen.add(r["target_identity"])
            picked.append(r)
    sbi = [r for r in table if r["method"] == "selfblend"][:2]
    picked = picked[: rows - len(sbi)] + sbi
    tiles = []
    for r in picked:
        fake = read_video(d / r["path"], num_frames=None).frames
        real = read_video(d / by_id[r["target_video_id"]]["path"], num_frames=None).frames
        t = min(frame, len(fake) - 1)
        m = load_masks(d / r["mask_path"])[t]
        mask = (np.stack([m] * 3, -1) * 255).astype(np.uint8)
        trip = [
            cv2.resize(x, (tile, tile), interpolation=cv2.INTER_AREA)
            for x in (real[t], fake[t], mask)
        ]
        tiles.append(np.concatenate(trip, 1))
    # two triplets per sheet row
    if len(tiles) % 2:
        tiles.append(np.zeros_like(tiles[0]))
    gap = np.full((tile, 8, 3), 255, np.uint8)
    lines = [np.concatenate([tiles[i], gap, tiles[i + 1]], 1) for i in range(0, len(tiles), 2)]
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(lines, 0)).save(out, optimize=True)
    return out
