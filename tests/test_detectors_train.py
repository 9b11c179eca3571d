"""Training, evaluation and detection on a tiny real-video data set.

Real videos are the committed test clips; their "fakes" have the face region's red and
blue channels swapped (a visible, local manipulation that MTCNN still detects).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from xai_study.cli import main
from xai_study.detectors import load_detector
from xai_study.detectors.data import read_labels
from xai_study.detectors.models import create_detector
from xai_study.detectors.train import TrainConfig, augment, train_detector
from xai_study.errors import XaiStudyError


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, short_face_video, face_video, data_dir) -> Path:
    from xai_study.video import read_video, write_video
    from xai_study.video.clip import extract_face_clip

    out = tmp_path_factory.mktemp("tiny")
    sources = [
        (short_face_video, "train"),
        (data_dir / "single_face.webm", "train"),
        (face_video, "val"),
    ]
    rows = []
    for k, (src, split) in enumerate(sources):
        video = read_video(src, num_frames=6)
        clip = extract_face_clip(video, size=64)
        frames = video.frames.copy()
        write_video(frames, out / f"real{k}.mp4", fps=5)
        for t, idx in enumerate(clip.frame_indices):
            i = int(np.flatnonzero(video.indices == idx)[0])
            x1, y1, x2, y2 = np.clip(clip.boxes[t], 0, None).astype(int)
            frames[i, y1:y2, x1:x2] = frames[i, y1:y2, x1:x2][..., ::-1]
        write_video(frames, out / f"fake{k}.mp4", fps=5)
        for label in ("real", "fake"):
            rows.append(
                {
                    "video_id": f"{label}{k}",
                    "path": f"{label}{k}.mp4",
                    "label": label,
                    "split": split,
                    "source_identity": f"id{k}",
                }
            )
    with (out / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out / "labels.csv"


def test_augment_keeps_shape_and_changes_pixels() -> None:
    rng = np.random.default_rng(0)
    img = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    outs = [augment(img, rng) for _ in range(8)]
    assert all(o.shape == img.shape and o.dtype == np.uint8 for o in outs)
    assert any(not np.array_equal(o, img) for o in outs)


def test_read_labels_errors(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\na.mp4,maybe\n")
    with pytest.raises(XaiStudyError, match="fake/real"):
        read_labels(bad)
    bad.write_text("name,label\na.mp4,fake\n")
    with pytest.raises(XaiStudyError, match="needs the columns 'path'"):
        read_labels(bad)
    with pytest.raises(XaiStudyError, match="no such labels file"):
        read_labels(tmp_path / "none.csv")
    ok = tmp_path / "ok.csv"
    ok.write_text("path,label,split\nsub/a.mp4,FAKE,validation\n/abs/b.mp4,0,train\n")
    items = read_labels(ok)
    assert [(i.label, i.split) for i in items] == [(1, "val"), (0, "train")]
    assert items[0].path == tmp_path / "sub" / "a.mp4"


@pytest.mark.parametrize("freeze", [3, pytest.param(0, marks=pytest.mark.slow)])
def test_train_evaluate_detect(tiny_data: Path, tmp_path, freeze: int, capsys) -> None:
    cache = tmp_path.parent / "face_cache"  # shared by both parametrisations
    out = tmp_path / "m.pt"
    cfg = TrainConfig(
        arch="ltpa" if freeze else "plain",
        data=str(tiny_data),
        out=str(out),
        epochs=2,
        batch_size=8,
        size=64,
        frames_per_video=6,
        val_frames_per_video=6,
        freeze_stages=freeze,
        sbi_copies=1 if freeze else 0,
        cache_dir=str(cache),
        command="test",
    )
    summary = train_detector(cfg, progress=False)
    assert [r["epoch"] for r in summary["history"]] == [1, 2]
    for row in summary["history"]:
        assert np.isfinite(row["train_loss"]) and np.isfinite(row["val_loss"])
        assert 0.0 <= row["val_frame_auc"] <= 1.0
    for suffix in (".history.csv", ".history.json", ".val.roc.png", ".val.det.png"):
        assert (tmp_path / f"m{suffix}").stat().st_size > 0
    det = load_detector(out)
    assert det.config["arch"] == cfg.arch and det.config["input_size"] == 64
    assert det.meta["command"] == "test"
    assert det.meta["training_data"]["train_videos"] == 4
    # one self-blended copy of each of the 2 real training videos' 6 crops
    assert det.meta["training_data"]["self_blended_frames"] == (12 if freeze else 0)
    td = det.meta["training_data"]
    assert td["train_frames"] - td["self_blended_frames"] >= 20  # the 4 videos' own crops
    assert len(det.meta["history"]) == 2

    # evaluate-detector on the val split reproduces the validation AUC of the best epoch
    # (cached-trunk validation == full forward pass)
    best = summary["history"][summary["best_epoch"] - 1]
    ev = tmp_path / "eval"
    rc = main(
        [
            "evaluate-detector",
            "--model",
            str(out),
            "--data",
            str(tiny_data),
            "--split",
            "val",
            "--frames",
            "6",
            "--cache-dir",
            str(cache),
            "--out",
            str(ev),
            "--quiet",
            "--json",
            "--save-to-checkpoint",
            "--save-threshold",
        ]
    )
    assert rc == 0
    metrics = json.loads(capsys.readouterr().out)
    saved = load_detector(out)
    chosen = saved.meta["threshold"]
    assert chosen["split"] == "val" and chosen["n_videos"] == 2 and 0 < chosen["p_fake"] < 1
    assert saved.threshold == chosen["p_fake"]
    assert metrics["at_threshold"]["threshold"] == chosen["p_fake"]
    assert metrics["at_threshold"]["video_balanced_accuracy"] == chosen["balanced_accuracy"]
    assert metrics["frame"]["n"] == 12 and metrics["video"]["n"] == 2
    assert metrics["frame"]["auc"] == pytest.approx(best["val_frame_auc"], abs=0.03)
    assert metrics["video"]["auc"] == pytest.approx(best["val_video_auc"], abs=1e-9)
    assert (ev / "metrics.json").exists() and (ev / "per_video.csv").exists()
    assert load_detector(out).meta["metrics"]["val"]["video"]["n"] == 2

    rc = main(
        [
            "detect",
            str(tiny_data.parent / "fake2.mp4"),
            "--model",
            str(out),
            "--frames",
            "4",
            "--json",
        ]
    )
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) >= {"p_fake", "frame_scores", "model"}
    assert res["threshold"] == chosen["p_fake"]
    assert res["label"] == ("fake" if res["p_fake"] >= chosen["p_fake"] else "real")
    assert len(res["frame_scores"]) == 4
    logits = np.array(res["frame_logits"])
    assert res["p_fake"] == pytest.approx(float(torch.sigmoid(torch.tensor(logits.mean()))))


def test_train_command_errors(tiny_data: Path, tmp_path, capsys) -> None:
    assert main(["train", "--data", str(tiny_data), "--out", str(tmp_path / "x.bin")]) == 2
    assert "must end in .pt" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "no.csv"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "no such labels file" in capsys.readouterr().err
    assert (
        main(["train", "--data", str(tiny_data), "--out", str(tmp_path / "x.pt"), "--epochs", "0"])
        == 2
    )
    assert main(["detect", str(tmp_path / "none.mp4")]) == 2
    assert "error:" in capsys.readouterr().err


def test_training_does_not_depend_on_the_face_cache(tiny_data: Path, tmp_path, monkeypatch) -> None:
    """The same command gives the same weights whether face crops are extracted (MTCNN
    built, drawing from torch's generator) or read from the cache."""
    import xai_study.video.faces as faces

    cache = tmp_path / "cache"
    states = []
    monkeypatch.setattr(faces, "_MODELS", {})  # as in a fresh process: MTCNN not built
    for run in ("extract", "cached"):
        cfg = TrainConfig(
            arch="plain", data=str(tiny_data), out=str(tmp_path / f"{run}.pt"), epochs=1,
            batch_size=8, size=64, frames_per_video=6, val_frames_per_video=6,
            freeze_stages=3, aug_copies=1, cache_dir=str(cache), command="test",
        )  # fmt: skip
        if run == "cached":
            assert any(cache.glob("*.npz"))  # the first run filled the face cache
        train_detector(cfg, progress=False)
        states.append(load_detector(tmp_path / f"{run}.pt").state_dict())
    for k, v in states[0].items():
        assert torch.equal(v, states[1][k]), k


def test_train_init_from_a_trained_detector(tiny_data: Path, tmp_path, capsys) -> None:
    """``--init plain``: the new bonettini starts from the demo plain detector (with a
    learning rate too small to move the weights, its last stage is the plain one, not
    ImageNet's) and the checkpoint records where it started from."""
    out = tmp_path / "b.pt"
    args = ["train", "--arch", "bonettini", "--data", str(tiny_data), "--out", str(out)]
    args += ["--size", "64", "--frames", "6", "--epochs", "1", "--batch-size", "8"]
    args += ["--freeze-stages", "3", "--aug-copies", "1", "--lr", "1e-9", "--quiet"]
    args += ["--cache-dir", str(tmp_path.parent / "face_cache"), "--init", "plain"]
    assert main(args) == 0
    assert "initialised 296 of 298 weight tensors from plain; new: attconv" in (
        capsys.readouterr().err
    )
    det = load_detector(out)
    assert det.meta["init"]["source"] == "plain" and det.meta["init"]["new"] == ["attconv"]
    plain = load_detector("plain").state_dict()
    imagenet = create_detector("plain", "efficientnet_lite0", 64).state_dict()
    key = "backbone.blocks.6.0.conv_pw.weight"
    assert torch.allclose(det.state_dict()[key], plain[key].float(), atol=1e-4)
    assert not torch.allclose(plain[key].float(), imagenet[key], atol=1e-2)
    assert main(args[:-1] + ["efficientnet_b0"]) == 2  # not a checkpoint: one-line error
    assert "no such checkpoint" in capsys.readouterr().err
