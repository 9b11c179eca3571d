"""The ``metrics`` and ``evaluate`` commands (toy detectors with a known answer)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import xai_study.labels as labels
import xai_study.runs.evaluate as cm
from xai_study.cli import main
from xai_study.errors import XaiStudyError
from xai_study.runs import presets


def run_cli(*args):
    proc = subprocess.run(
        [sys.executable, "-m", "xai_study", *map(str, args)], capture_output=True, text=True
    )
    return proc.returncode, proc.stdout, proc.stderr


# --- metrics ---------------------------------------------------------------------------


def test_metrics_json_known_values(tmp_path, capsys):
    const = tmp_path / "const.npz"
    np.savez(const, maps=np.full((3, 16, 16), 2.0))
    uniform = tmp_path / "uniform.npz"
    np.savez(uniform, maps=np.stack([np.full((16, 16), v) for v in (1.0, 2.0, 3.0)]))
    assert main(["metrics", str(const), str(uniform), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0] == {
        "file": str(const),
        "V": 0.0,
        "tau": None,
        "rho": None,
        "mu": None,
        "I": 0.0,
    }
    assert out[1]["mu"] == pytest.approx(0.25) and out[1]["V"] == 0.0
    # frames 1, 2, 3 normalise to 0, 0.5, 1: intensity 0.5
    assert out[1]["I"] == pytest.approx(0.5)


def test_metrics_signed_flag_in_file_or_option(tmp_path, capsys):
    maps = np.zeros((1, 20, 20))
    maps[0, 8:12, 8:12] = 1.0
    maps[0, :2, :2] = -5.0
    plain, flagged = tmp_path / "plain.npz", tmp_path / "flagged.npz"
    np.savez(plain, maps=maps)
    np.savez(flagged, maps=maps, signed=True)
    main(["metrics", str(plain), str(flagged), "--json"])
    a, b = json.loads(capsys.readouterr().out)
    assert b["mu"] == pytest.approx(1.0) and a["mu"] < 0.5
    main(["metrics", str(plain), "--signed", "--json"])
    assert json.loads(capsys.readouterr().out)[0]["mu"] == pytest.approx(1.0)


def test_metrics_table_with_mask(tmp_path, capsys):
    mask = np.zeros((2, 20, 20), bool)
    mask[:, 5:15, 5:15] = True
    f = tmp_path / "m.npz"
    np.savez(f, maps=mask.astype(np.float32), mask=mask)
    assert main(["metrics", str(f)]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split()[:6] == ["file", "V", "tau", "rho", "mu", "I"]
    assert "mass_accuracy" in header and "pointing_game_chance" in header
    values = dict(zip(header.split()[1:], map(float, row.split()[1:]), strict=True))
    assert values["mass_accuracy"] == 1.0 and values["mass_accuracy_chance"] == 0.25


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"not a zip", "not a readable .npz"),
        ({"other": np.zeros((2, 4, 4))}, "no array 'maps'"),
        ({"maps": np.zeros((2, 2, 4, 4))}, "T x H x W"),
        ({"maps": np.full((1, 4, 4), np.nan)}, "NaN"),
    ],
)
def test_metrics_bad_input_is_one_line_error(tmp_path, content, message):
    f = tmp_path / "bad.npz"
    if isinstance(content, bytes):
        f.write_bytes(content)
    elif isinstance(content, dict):
        np.savez(f, **content)
    rc, out, err = run_cli("metrics", f)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_evaluate_rejects_unknown_explainer(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\nf.mp4,fake\n")
    rc, _, err = run_cli(
        "evaluate", "--data", csv, "--explainers", "gradcam,nope", "--out", tmp_path / "o"
    )
    assert rc == 2 and "unknown explainer(s) nope" in err


# --- evaluate end to end (toy region detectors) ----------------------------------------


REGION = (0.15, 0.55, 0.45, 0.9)


@pytest.fixture
def toy_setup(tmp_path, monkeypatch, short_face_video, no_face_video):
    from xai_study.explainers.toys import make_region_detector, region_mask

    detectors = {
        a: make_region_detector(a, input_size=64, region=REGION) for a in ("plain", "bonettini")
    }

    def masks(record, clip):  # the toy detector's region is the "swap"
        m = region_mask(clip.frames.shape[1], REGION)
        return np.broadcast_to(m, clip.frames.shape[:3]).copy()

    monkeypatch.setattr(cm, "clip_masks", masks)
    monkeypatch.setitem(
        presets.PRESETS, "fast", {**presets.PRESETS["fast"], "frames": 4, "size": 64}
    )
    csv = tmp_path / "labels.csv"
    csv.write_text(
        f"id,path,label\nfake1,{short_face_video},fake\nreal1,{short_face_video},real\n"
        f"noface,{no_face_video},fake\n"
    )
    return csv, detectors


def test_evaluate_end_to_end_and_resume(tmp_path, toy_setup, monkeypatch):
    csv, detectors = toy_setup
    out = tmp_path / "out"
    kwargs = dict(steps=4, n_boot=100, progress=False, detectors=detectors, sanity=True)
    paths = cm.evaluate(csv, ["gradcam", "bonettini"], out, **kwargs)
    df = pd.read_csv(paths["per_video"])
    assert len(df) == 6 and list(df.columns) == cm.CSV_COLUMNS
    assert df.loc[df.video == "noface", "error"].str.contains("no face").all()
    ok = df[df.video == "fake1"].set_index("explainer")
    # the toy detector looks only at the region: both explainers localise it
    for e in ("gradcam", "bonettini"):
        assert ok.loc[e, "mass_accuracy"] > 0.6 > ok.loc[e, "mass_accuracy_chance"]
        assert ok.loc[e, "pointing_game"] == 1.0
        assert 0 <= ok.loc[e, "deletion_auc"] < ok.loc[e, "insertion_auc"] <= 1
    assert df[df.video == "real1"]["mass_accuracy"].isna().all()
    assert ok["randomisation_spearman"].between(-1, 1).all()
    summary = pd.read_csv(paths["summary_csv"])
    assert {"mass_accuracy_excess", "tau", "deletion_auc"} <= set(summary.metric)
    assert set(summary.group) == {"fake", "real"}
    md = paths["summary_md"].read_text()
    assert "Localisation on fake videos" in md and "| gradcam | 1 |" in md
    assert paths["plot"].stat().st_size > 10_000

    # resuming recomputes nothing
    calls = []
    import xai_study.explainers as ex

    original = ex.create_explainer
    monkeypatch.setattr(
        ex, "create_explainer", lambda *a, **k: calls.append(a) or original(*a, **k)
    )
    cm.evaluate(csv, ["gradcam", "bonettini"], out, **kwargs)
    assert calls == [] and len(pd.read_csv(paths["per_video"])) == 6
    # --summary-only computes nothing new and summarises what is there
    cm.evaluate(csv, ["gradcam", "saliency"], out, **kwargs, summary_only=True)
    assert calls == [] and len(pd.read_csv(paths["per_video"])) == 6
    assert set(pd.read_csv(paths["summary_csv"]).explainer) == {"gradcam"}
    # other settings in the same folder are refused
    with pytest.raises(XaiStudyError, match="other settings"):
        cm.evaluate(csv, ["gradcam"], out, **{**kwargs, "steps": 2})


@pytest.mark.slow
def test_evaluate_with_real_architectures(tmp_path, monkeypatch, short_face_video):
    """The paper's four explainers on the real EfficientNet detectors (random heads)."""
    from xai_study.detectors import create_detector

    monkeypatch.setitem(
        presets.PRESETS,
        "fast",
        {
            **presets.PRESETS["fast"],
            "frames": 3,
            "size": 64,
            "explainer_params": {"shap3d": {"n_segments": 8, "nsamples": 24}},
        },
    )
    monkeypatch.setattr(cm, "clip_masks", lambda *a: None)
    import torch

    torch.manual_seed(0)  # random heads: make the run independent of test order
    detectors = {a: create_detector(a, input_size=64) for a in ("plain", "bonettini", "ltpa")}
    csv = tmp_path / "labels.csv"
    csv.write_text(f"path,label\n{short_face_video},fake\n")
    paths = cm.evaluate(
        csv,
        ["gradcam", "shap3d", "ltpa", "bonettini"],
        tmp_path / "out",
        steps=2,
        n_boot=50,
        progress=False,
        detectors=detectors,
        sanity=True,
    )
    df = pd.read_csv(paths["per_video"]).set_index("explainer")
    assert df["error"].isna().all()
    assert df["detector"].str.split().str[0].to_dict() == {
        "gradcam": "plain",
        "shap3d": "plain",
        "ltpa": "ltpa",
        "bonettini": "bonettini",
    }
    for col in ("V", "deletion_auc", "insertion_auc"):
        assert df[col].notna().all(), col
    # mu skips frames whose map sums to 0 (design §2): with a random head, Grad-CAM's ReLU
    # can zero a whole clip, and then mu is NaN while V is exactly 0. Anything else is a bug.
    for explainer, row in df.iterrows():
        assert pd.notna(row["mu"]) or row["V"] == 0, explainer
    assert "next to the paper" in paths["summary_md"].read_text()


def test_masks_of_the_demo_format_are_cropped_onto_the_clip(tmp_path, short_face_video):
    from xai_study.data.masks import save_masks
    from xai_study.video import extract_face_clip, read_video

    video = read_video(short_face_video, num_frames=2)
    h, w = video.frames.shape[1:3]
    full = np.zeros((video.total_frames, h, w), np.float32)
    full[:, :, : w // 2] = 1.0  # the left half of every frame is "manipulated"
    mask_file = save_masks(full, tmp_path / "m.npz")
    clip = extract_face_clip(short_face_video, num_frames=3, size=32)
    rec = labels.VideoRecord("v", short_face_video, "v.mp4", "fake", mask=mask_file)
    crops = cm.clip_masks(rec, clip)
    assert crops.shape == (len(clip.frames), 32, 32)
    # each crop column is inside the mask iff its source x lies left of w/2
    for t, (x1, _, x2, _) in enumerate(clip.crop_boxes):
        xs = x1 + (np.arange(32) + 0.5) * (x2 - x1) / 32
        clear = np.abs(xs - w / 2) > (x2 - x1) / 32  # away from the boundary
        assert np.array_equal(crops[t, 16][clear] > 0.5, (xs < w / 2)[clear])
    assert cm.clip_masks(labels.VideoRecord("v", short_face_video, "v.mp4", "fake"), clip) is None
    rows = labels.read_labels(
        _write(tmp_path, "video_id,path,label,mask_path\nv,a.mp4,fake,m.npz\n")
    )
    assert rows[0].video_id == "v" and rows[0].mask == tmp_path / "m.npz"


def _write(folder, text):
    path = folder / "labels.csv"
    path.write_text(text)
    return path


def test_evaluate_compares_with_the_null_explainers(tmp_path, toy_setup, short_face_video):
    """With a null explainer in the run, paired.csv and summary.md give explainer - null
    per video, clustered by the labels' identities."""
    _, detectors = toy_setup
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "video_id,path,label,source_identity\n"
        f"f1,{short_face_video},fake,ann\nf2,{short_face_video},fake,ann\n"
        f"f3,{short_face_video},fake,bob\nr1,{short_face_video},real,ann\n"
    )
    kwargs = dict(steps=0, n_boot=100, progress=False, detectors=detectors)
    paths = cm.evaluate(csv, ["gradcam", "null_centre"], tmp_path / "out", **kwargs)
    per_video = pd.read_csv(paths["per_video"])
    assert set(per_video["identity"]) == {"ann", "bob"} and per_video["I"].notna().all()
    paired = pd.read_csv(paths["paired"])
    mass = paired[(paired.metric == "mass_accuracy") & (paired.group == "fake")].iloc[0]
    assert (mass.explainer, mass.null, mass.n_videos, mass.n_identities) == (
        "gradcam",
        "null_centre",
        3,
        2,
    )
    wide = per_video[per_video.label == "fake"].pivot(
        index="video", columns="explainer", values="mass_accuracy"
    )
    assert mass.mean_diff == pytest.approx((wide.gradcam - wide.null_centre).mean(), abs=1e-5)
    assert "Against the null explainers" in paths["summary_md"].read_text()
