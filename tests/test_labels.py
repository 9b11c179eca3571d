"""The one labels reader (xai_study.labels), and that every command reads the same file."""

from __future__ import annotations

import pytest

from xai_study.errors import XaiStudyError
from xai_study.labels import interleave, parse_label, read_labels


def _csv(tmp_path, text: str):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "raw, label",
    [
        ("fake", "fake"),
        ("FAKE", "fake"),
        ("1", "fake"),
        ("true", "fake"),
        ("manipulated", "fake"),
        ("deepfake", "fake"),
        ("real", "real"),
        ("0", "real"),
        ("false", "real"),
        ("original", "real"),
        ("pristine", "real"),
        ("maybe", None),
        ("", None),
    ],
)
def test_label_vocabulary(raw, label):
    assert parse_label(raw) == label


def test_records_paths_ids_and_optional_columns(tmp_path):
    path = _csv(
        tmp_path,
        "video_id,path,label,split,method,source_identity,target_video_id,mask_path\n"
        "f1,v/f1.mp4,deepfake,Validation,swap,ann,r1,m/f1.npz\n"
        "r1,/abs/r1.mp4,real,eval,,ann,,\n",
    )
    f1, r1 = read_labels(path)
    assert (f1.video_id, f1.label, f1.split, f1.method) == ("f1", "fake", "val", "swap")
    assert f1.path == tmp_path / "v/f1.mp4" and f1.path_text == "v/f1.mp4"
    assert f1.identity == "ann" and f1.source == "r1" and f1.mask == tmp_path / "m/f1.npz"
    assert (r1.split, str(r1.path), r1.mask) == ("test", "/abs/r1.mp4", None)


def test_default_id_is_the_path_so_same_file_names_do_not_collide(tmp_path):
    path = _csv(tmp_path, "file,label\nfake/001.mp4,fake\nreal/001.mp4,real\n")
    assert [r.video_id for r in read_labels(path)] == ["fake/001.mp4", "real/001.mp4"]


def test_split_limit_and_interleave(tmp_path):
    path = _csv(tmp_path, "path,label,split\nf.mp4,fake,test\nr.mp4,0,train\ng.mp4,1,test\n")
    rows = read_labels(path)
    assert [r.label for r in rows] == ["fake", "real", "fake"]
    assert [r.video_id for r in read_labels(path, split="test")] == ["f.mp4", "g.mp4"]
    assert [r.video_id for r in read_labels(path, limit=1)] == ["f.mp4", "r.mp4"]
    assert [r.video_id for r in interleave(rows)] == ["f.mp4", "r.mp4", "g.mp4"]


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("path,label\nf.mp4,maybe\n", {}, "line 2: label must be fake/real"),
        ("name,label\nf.mp4,fake\n", {}, "needs the columns 'path'"),
        ("path,label\n", {}, "has no rows"),
        ("path,label\n,fake\n", {}, "line 2: empty 'path'"),
        ("video_id,path,label\na,x.mp4,fake\na,y.mp4,real\n", {}, "'a' is listed twice"),
        ("path,label,split\nf.mp4,fake,train\n", {"split": "test"}, "splits: train"),
        ("path,label\nf.mp4,fake\n", {"split": "test"}, "no 'split' column"),
        ("path,label\nf.mp4,fake\n", {"limit": 0}, "--limit must be at least 1"),
        (b"\xff\xfe\x00bad", {}, "not a readable CSV"),
    ],
    ids=[
        "bad-label",
        "no-path-column",
        "no-rows",
        "empty-path",
        "duplicate-id",
        "empty-split",
        "split-without-column",
        "zero-limit",
        "not-text",
    ],
)
def test_errors_are_one_line(tmp_path, text, kwargs, message):
    path = tmp_path / "labels.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(XaiStudyError, match=message) as info:
        read_labels(path, **kwargs)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(XaiStudyError, match="no such labels file"):
        read_labels(tmp_path / "nope.csv")


def test_split_if_present_keeps_every_row_of_a_file_without_splits(tmp_path):
    path = _csv(tmp_path, "path,label\nf.mp4,fake\nr.mp4,real\n")
    assert len(read_labels(path, split="test", split_if_present=True)) == 2
    # ... but an empty split of a file that has the column is still an error
    path = _csv(tmp_path, "path,label,split\nf.mp4,fake,train\n")
    with pytest.raises(XaiStudyError, match="no videos in split 'test'"):
        read_labels(path, split="test", split_if_present=True)


def test_every_command_accepts_the_same_vocabulary(tmp_path):
    """train's, evaluate's and build-study's readers are one reader: 'deepfake' and
    'validation' mean the same everywhere."""
    from xai_study.detectors.data import read_labels as train_labels
    from xai_study.study.build import read_pool

    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "b.mp4").write_bytes(b"x")
    path = _csv(tmp_path, "path,label,split\na.mp4,deepfake,eval\nb.mp4,pristine,test\n")
    fakes, reals = read_pool(path, "test")
    assert [f["id"] for f in fakes] == ["a.mp4"] and [r["id"] for r in reals] == ["b.mp4"]
    items = train_labels(path)
    assert [(i.label, i.split) for i in items] == [(1, "test"), (0, "test")]
    assert [r.label for r in read_labels(path, split="test")] == ["fake", "real"]
