"""Acceptance checks of the committed demo data set (study_data/demo_data)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from xai_study.data import load_masks
from xai_study.data.checks import check_dataset
from xai_study.video import detect_faces, read_video

DATA = Path(__file__).resolve().parents[1] / "study_data" / "demo_data"
FIELDS = [
    "video_id", "path", "label", "method", "source_identity", "target_identity", "split",
    "mask_path", "target_video_id", "fps", "frames",
]  # fmt: skip


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    with open(DATA / "labels.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == FIELDS
        return list(reader)


@pytest.fixture(scope="module")
def checks() -> list[dict]:
    return check_dataset(DATA)


def test_labels_counts_and_files(rows):
    by_method = {
        m: [r for r in rows if r["method"] == m] for m in ("real", "faceswap", "selfblend")
    }
    assert len(by_method["real"]) >= 24 and len(by_method["faceswap"]) >= 24
    assert len(by_method["selfblend"]) > 0
    assert len({r["video_id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["label"] == ("real" if r["method"] == "real" else "fake")
        assert r["split"] in {"train", "val", "test"}
        assert (DATA / r["path"]).is_file()
        assert float(r["fps"]) > 0 and int(r["frames"]) > 0
        if r["label"] == "fake":
            assert (DATA / r["mask_path"]).is_file()
        else:
            assert r["mask_path"] == "" and r["source_identity"] == r["target_identity"]
    total = sum(f.stat().st_size for f in DATA.rglob("*") if f.is_file())
    assert total <= 30 * 2**20


def test_splits_are_identity_disjoint(rows):
    split_of: dict[str, str] = {}
    for r in rows:
        for ident in (r["source_identity"], r["target_identity"]):
            assert split_of.setdefault(ident, r["split"]) == r["split"], ident
    assert set(split_of.values()) == {"train", "val", "test"}
    by_id = {r["video_id"]: r for r in rows}
    for r in rows:
        if r["label"] == "fake":
            target = by_id[r["target_video_id"]]
            assert target["label"] == "real" and target["split"] == r["split"]
            assert target["target_identity"] == r["target_identity"]
        if r["method"] == "faceswap":
            assert r["source_identity"] != r["target_identity"]


@pytest.mark.slow  # 112 video decodes + MTCNN (40-120 s on 2 cores)
def test_videos_and_masks_have_the_stated_frames(rows, checks):
    by_id = {r["video_id"]: r for r in rows}
    for c in checks:
        n = int(by_id[c["video_id"]]["frames"])
        assert c["frames"] == c["target_frames"] == c["mask_frames"] == n


@pytest.mark.slow  # 112 video decodes + MTCNN (40-120 s on 2 cores)
def test_difference_is_inside_the_mask(checks):
    """>= 90 % of the fake-vs-target difference above codec noise lies inside the mask for
    every face swap; outside the masks the videos differ by codec noise only."""
    for c in checks:
        assert c["outside_noisy"] <= 0.05, c  # pixels outside the mask above the floor
        if c["method"] == "faceswap":
            assert c["inside_above_noise"] >= 0.9, c
        else:
            # self-blends with ratio 0.25 change the face by little more than the codec
            # noise, so a weaker bound holds for each and 90 % for the median
            assert c["inside_above_noise"] >= 0.75, c
    sbi = [c["inside_above_noise"] for c in checks if c["method"] == "selfblend"]
    assert np.median(sbi) >= 0.9
    swaps = [c["inside"] for c in checks if c["method"] == "faceswap"]
    # without the floor, codec noise spread over the whole frame counts too
    assert np.median(swaps) > 0.7


@pytest.mark.slow  # 112 video decodes + MTCNN (40-120 s on 2 cores)
def test_fakes_do_not_flicker_more_than_their_targets(checks):
    ratios = np.array([c["flicker"] for c in checks if c["method"] == "faceswap"])
    assert np.median(ratios) <= 1.3 and ratios.max() <= 2.0, ratios


@pytest.mark.slow  # 112 video decodes + MTCNN (40-120 s on 2 cores)
def test_every_frame_with_a_face_has_a_mask(rows):
    """MTCNN on the target (real) video: wherever it finds a face, the fake's mask is
    not empty (every 5th frame, to keep the test fast)."""
    by_id = {r["video_id"]: r for r in rows}
    fakes = [r for r in rows if r["label"] == "fake"]
    for r in fakes:
        target = read_video(DATA / by_id[r["target_video_id"]]["path"], num_frames=None).frames
        masks = load_masks(DATA / r["mask_path"])
        idx = np.arange(0, len(target), 5)
        faces = detect_faces(target[idx])
        for i, f in zip(idx, faces, strict=True):
            if f:
                assert masks[i].max() > 0, (r["video_id"], int(i))
