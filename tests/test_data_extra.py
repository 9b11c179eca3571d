"""Extra training clips (``make-train-extra``): training people only, labelled fakes with
masks, a combined labels file that ``train`` reads, deterministic output."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from xai_study.cli import main
from xai_study.data import load_masks
from xai_study.data.extra import EXTRA_PHOTOS, extra_photo, generate_extra
from xai_study.detectors.data import read_labels
from xai_study.errors import XaiStudyError
from xai_study.video import read_video

FIELDS = ["video_id", "path", "label", "method", "source_identity", "target_identity",
          "split", "mask_path", "target_video_id", "fps", "frames"]  # fmt: skip


def _demo(tmp_path: Path, splits: dict[str, str], name: str = "demo") -> Path:
    """A stand-in demo data set: one real clip per identity (paths need not exist)."""
    demo = tmp_path / name
    demo.mkdir()
    with open(demo / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for ident, split in splits.items():
            w.writerow(dict(video_id=f"real_{ident}", path=f"videos/real_{ident}.mp4",
                            label="real", method="real", source_identity=ident,
                            target_identity=ident, split=split, mask_path="",
                            target_video_id="", fps="12", frames="30"))  # fmt: skip
    return demo


@pytest.fixture(scope="module")
def extra(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("extra")
    # jin (single_face.jpg) and multi0 (multi_face.jpg) train; multi1, multi2 held out
    demo = _demo(tmp, {"jin": "train", "multi0": "train", "multi1": "val", "multi2": "test"})
    out = tmp / "out"
    rows = generate_extra(demo, out, data_dir, clips=1, swaps=1, seed=3,
                          people=("hopper", "astronaut"))  # fmt: skip
    return demo, out, rows


def test_only_training_and_extra_people_are_used(extra):
    _, _, rows = extra
    assert len(rows) == 4 * 2  # 4 people x 1 clip x (1 real + 1 swap)
    people = {r["source_identity"] for r in rows} | {r["target_identity"] for r in rows}
    assert people <= {"jin", "multi0", "hopper", "astronaut"}
    assert {r["target_identity"] for r in rows} == {"jin", "multi0", "hopper", "astronaut"}
    assert {r["split"] for r in rows} == {"train"}
    for r in rows:
        if r["label"] == "fake":
            assert r["source_identity"] != r["target_identity"]
            assert r["target_video_id"] in {x["video_id"] for x in rows if x["label"] == "real"}


def test_fakes_differ_from_their_real_clip_inside_the_mask(extra):
    _, out, rows = extra
    by_id = {r["video_id"]: r for r in rows}
    for r in rows:
        if r["label"] != "fake":
            continue
        fake = read_video(out / r["path"], max_bytes=None).frames.astype(np.float32)
        real = read_video(out / by_id[r["target_video_id"]]["path"], max_bytes=None).frames
        masks = load_masks(out / r["mask_path"])
        assert masks.shape == fake.shape[:3] and fake.shape[1:3] == (320, 320)
        diff = np.abs(fake - real.astype(np.float32)).mean(axis=-1)
        inside, outside = diff[masks > 0.9].mean(), diff[masks == 0].mean()
        assert (masks > 0.9).mean() > 0.05  # a face-sized region was replaced
        assert inside > 8 and inside > 5 * outside, (inside, outside)


def test_combined_labels_keep_the_demo_rows_and_train_reads_them(extra):
    demo, out, rows = extra
    items = read_labels(out / "labels.csv")
    assert len(items) == len(rows) + 4
    assert [it.video_id for it in items[: len(rows)]] == [r["video_id"] for r in rows]
    held = {it.video_id: it for it in items[len(rows) :]}
    assert held["real_multi1"].split == "val" and held["real_multi2"].split == "test"
    # demo paths point at the demo folder, extra paths at the new one
    assert held["real_jin"].path.resolve() == (demo / "videos/real_jin.mp4").resolve()
    assert all(it.path.is_file() for it in items[: len(rows)])


def test_same_seed_same_files(extra, tmp_path, data_dir):
    demo, out, rows = extra
    again = tmp_path / "again"
    rows2 = generate_extra(demo, again, data_dir, clips=1, swaps=1, seed=3,
                           people=("hopper", "astronaut"))  # fmt: skip
    assert rows2 == rows
    for r in rows:
        assert (again / r["path"]).read_bytes() == (out / r["path"]).read_bytes()


def test_val_clips_film_validation_people_among_themselves(tmp_path, data_dir):
    splits = {"jin": "train", "multi0": "val", "multi3": "val", "multi2": "test"}
    demo = _demo(tmp_path, splits)
    rows = generate_extra(demo, tmp_path / "o", data_dir, clips=1, swaps=1, seed=3,
                          people=("hopper",), val_clips=1)  # fmt: skip
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    assert len(train) == 2 * 2 and len(val) == 2 * 2  # 2 people x 1 clip x (real + swap)
    val_people = {r[k] for r in val for k in ("source_identity", "target_identity")}
    train_people = {r[k] for r in train for k in ("source_identity", "target_identity")}
    assert val_people == {"multi0", "multi3"} and train_people == {"jin", "hopper"}
    # the training clips are the same as without --val-clips
    plain = generate_extra(demo, tmp_path / "p", data_dir, clips=1, swaps=1, seed=3,
                           people=("hopper",))  # fmt: skip
    assert plain == train
    items = read_labels(tmp_path / "o" / "labels.csv")
    assert sum(it.split == "val" for it in items) == len(val) + 2
    one_val = _demo(tmp_path, {"jin": "train", "multi0": "val"}, "one")
    with pytest.raises(XaiStudyError, match="two frontal validation people"):
        generate_extra(one_val, tmp_path / "q", data_dir, swaps=1, people=("hopper",),
                       val_clips=1)  # fmt: skip


def test_extra_people_photos_ship_with_installed_packages():
    for ident in ("hopper", "astronaut"):
        assert extra_photo(ident, Path("/nonexistent")).is_file()
    assert set(EXTRA_PHOTOS) == {"hopper", "astronaut", "beard"}


def test_bad_inputs_give_clear_errors(tmp_path, data_dir):
    with pytest.raises(XaiStudyError, match="no labels.csv"):
        generate_extra(tmp_path, tmp_path / "o", data_dir)
    only_test = _demo(tmp_path, {"multi2": "test"}, "a")
    with pytest.raises(XaiStudyError, match="no training identities"):
        generate_extra(only_test, tmp_path / "o", data_dir)
    video_person = _demo(tmp_path, {"wolfgang": "train"}, "b")
    with pytest.raises(XaiStudyError, match="no photo"):
        generate_extra(video_person, tmp_path / "o", data_dir, people=())
    jin = _demo(tmp_path, {"jin": "train"}, "c")
    with pytest.raises(XaiStudyError, match="unknown extra person"):
        generate_extra(jin, tmp_path / "o", data_dir, people=("nobody",))
    with pytest.raises(XaiStudyError, match="needs more than"):
        generate_extra(jin, tmp_path / "o", data_dir, swaps=1, people=())


def test_cli_rejects_the_demo_folder_as_output(tmp_path, capsys):
    demo = _demo(tmp_path, {"jin": "train"})
    assert main(["make-train-extra", "--demo", str(demo), "--out", str(demo)]) != 0
    assert "must not be the demo data set folder" in capsys.readouterr().err


def test_cli_writes_clips_and_labels(tmp_path, data_dir, capsys):
    demo = _demo(tmp_path, {"jin": "train", "multi0": "train", "multi1": "test"})
    out = tmp_path / "extra"
    args = ["make-train-extra", "--demo", str(demo), "--out", str(out), "--sources",
            str(data_dir), "--clips", "1", "--swaps", "1", "--no-new-people", "--quiet"]  # fmt: skip
    assert main(args) == 0
    items = read_labels(out / "labels.csv")
    assert len(items) == 4 + 3 and sum(it.label for it in items) == 2
    assert all(it.path.is_file() for it in items[:4])
    assert main([*args[:-1]]) == 0  # again, with a summary line
    assert "4 extra clips (2 real, 2 face swap; 4 train, 0 val)" in capsys.readouterr().out
