"""Whole-video analysis (analyse_video) and the ``xai-study explain`` command."""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest
import torch

from xai_study.cli import main
from xai_study.errors import XaiStudyError
from xai_study.runs import PRESETS, AnalysisCancelled, analyse_video, explainer_params
from xai_study.video import probe_codec

SMALL = {"shap3d": {"nsamples": 24, "n_segments": 12}}


@pytest.fixture(scope="module")
def detectors():
    from xai_study.detectors import create_detector

    torch.manual_seed(0)
    return {a: create_detector(a, input_size=64) for a in ("plain", "bonettini", "ltpa")}


@pytest.fixture(scope="module")
def analysis(detectors, short_face_video, tmp_path_factory):
    out = tmp_path_factory.mktemp("explain")
    calls = []
    result = analyse_video(
        short_face_video,
        num_frames=4,
        detectors=detectors,
        out_dir=out,
        params=SMALL,
        paste_back=True,
        progress=lambda stage, frac: calls.append((stage, frac)),
    )
    return result, out, calls


def test_analysis_verdict_and_explanations(analysis, detectors):
    result, _, _ = analysis
    clip = result.clip
    t = len(clip.frames)
    assert 1 <= t <= 4
    assert list(result.explanations) == ["gradcam", "shap3d", "ltpa", "bonettini"]
    plain = detectors["plain"]
    assert result.p_fake == pytest.approx(plain.video_score(clip.frames))
    np.testing.assert_allclose(result.frame_logits, plain.frame_logits(clip.frames), rtol=1e-5)
    np.testing.assert_allclose(result.frame_scores, 1 / (1 + np.exp(-result.frame_logits)))
    assert result.verdict == ("fake" if result.p_fake >= 0.5 else "real")
    # the verdict uses the plain detector's threshold (0.5 without a stored one)
    assert result.threshold == 0.5 and result.summary()["threshold"] == 0.5
    assert dataclasses.replace(result, threshold=result.p_fake).verdict == "fake"
    assert dataclasses.replace(result, threshold=result.p_fake + 1e-9).verdict == "real"
    for name, expl in result.explanations.items():
        assert expl.maps.shape == clip.frames.shape[:3], name
    # the attention explainers ran on their own detectors, the others on the plain one
    assert result.detectors["ltpa"].startswith("ltpa")
    assert result.detectors["bonettini"].startswith("bonettini")
    assert result.detectors["gradcam"].startswith("plain")
    assert result.explanations["shap3d"].params["nsamples"] == 24  # override
    assert result.explanations["shap3d"].params["temporal_spacing"] == 64.0  # fast preset


def test_analysis_files(analysis):
    result, out, _ = analysis
    t = len(result.clip.frames)
    for name, expl in result.explanations.items():
        with np.load(out / f"{name}.npz") as data:
            np.testing.assert_array_equal(data["maps"], expl.maps)
            assert data["maps"].dtype == np.float32
            assert bool(data["signed"]) == expl.signed
        info = probe_codec(out / f"{name}.mp4")
        assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == t
        full = probe_codec(out / f"{name}_full.mp4")
        assert (full["width"], full["height"]) == (640, 360) or full["width"] > 224
    grid = probe_codec(out / "grid.mp4")
    assert grid["frames"] == t and grid["width"] > 4 * 224
    summary = json.loads((out / "summary.json").read_text())
    assert summary["p_fake"] == pytest.approx(result.p_fake, abs=1e-6)
    assert len(summary["frame_scores"]) == t
    assert set(summary["explainers"]) == {"gradcam", "shap3d", "ltpa", "bonettini"}
    assert summary["explainers"]["shap3d"]["params"]["nsamples"] == 24
    assert summary["explainers"]["gradcam"]["seconds"] > 0
    assert summary["files"]["gradcam"] == "gradcam.mp4" and summary["grid"] == "grid.mp4"


def test_progress_is_monotonic_and_ends_at_one(analysis):
    _, _, calls = analysis
    fractions = [f for _, f in calls]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0 and calls[-1][0] == "done"
    stages = [s for s, _ in calls]
    for stage in ("faces", "detection", "gradcam", "shap3d", "ltpa", "bonettini", "rendering"):
        assert stage in stages
    assert stages.index("faces") < stages.index("shap3d") < stages.index("rendering")


def test_cancel_stops_the_analysis(detectors, short_face_video, tmp_path):
    cancel = threading.Event()

    def progress(stage, fraction):
        if stage == "shap3d":
            cancel.set()

    with pytest.raises(AnalysisCancelled):
        analyse_video(
            short_face_video,
            explainers=["gradcam", "shap3d", "ltpa"],
            num_frames=2,
            detectors=detectors,
            out_dir=tmp_path,
            params=SMALL,
            progress=progress,
            cancel=cancel,
        )
    assert not (tmp_path / "summary.json").exists()


def test_target_real_and_no_rendering(detectors, short_face_video):
    result = analyse_video(
        short_face_video,
        explainers=["integrated_gradients"],
        num_frames=2,
        target="real",
        detectors=detectors,
        params={"integrated_gradients": {"n_steps": 4}},
    )
    assert result.target == "real" and result.files == {} and result.grid is None
    assert result.explanations["integrated_gradients"].target == "real"


def test_pipeline_user_errors(detectors, short_face_video, no_face_video, tmp_path):
    with pytest.raises(XaiStudyError, match="preset"):
        analyse_video(short_face_video, preset="slow", detectors=detectors)
    with pytest.raises(XaiStudyError, match="unknown explainer"):
        analyse_video(short_face_video, explainers=["nope"], detectors=detectors)
    with pytest.raises(XaiStudyError, match="target"):
        analyse_video(short_face_video, target="maybe", detectors=detectors)
    with pytest.raises(XaiStudyError, match="no face"):
        analyse_video(no_face_video, explainers=["gradcam"], num_frames=2, detectors=detectors)
    with pytest.raises(XaiStudyError, match="not run"):
        analyse_video(short_face_video, explainers=["gradcam"], params=SMALL, detectors=detectors)


def test_presets():
    assert PRESETS["fast"]["frames"] == 16 and PRESETS["paper"]["frames"] == 32
    # SHAP-3D budgets are coalitions per frame game: the paper preset spends more
    fast, paper = explainer_params("fast", "shap3d"), explainer_params("paper", "shap3d")
    assert fast["method"] == paper["method"] == "frames"
    assert paper["nsamples"] > fast["nsamples"] >= 128
    assert explainer_params("fast", "shap3d", nsamples=5)["nsamples"] == 5
    with pytest.raises(XaiStudyError):
        explainer_params("nope", "shap3d")


# ---------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def checkpoints(detectors, tmp_path_factory):
    from xai_study.detectors import save_checkpoint

    folder = tmp_path_factory.mktemp("ckpt")
    return {a: save_checkpoint(d, folder / f"{a}.pt") for a, d in detectors.items()}


def test_cli_explain_writes_maps_animations_grid_and_summary(
    checkpoints, short_face_video, tmp_path, capsys
):
    out = tmp_path / "out"
    models = [arg for a, p in checkpoints.items() for arg in ("--model", f"{a}={p}")]
    rc = main(
        [
            "explain",
            str(short_face_video),
            "--out",
            str(out),
            "--explainers",
            "gradcam,shap3d,ltpa,bonettini",
            "--frames",
            "3",
            *models,
            "--param",
            "shap3d.nsamples=20",
            "--param",
            "shap3d.n_segments=10",
            "--quiet",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "P(fake)" in printed
    for name in ("gradcam", "shap3d", "ltpa", "bonettini"):
        assert (out / f"{name}.npz").is_file() and (out / f"{name}.mp4").is_file()
        assert name in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["explainers"]["shap3d"]["params"]["nsamples"] == 20
    assert summary["frames"] == np.load(out / "gradcam.npz")["maps"].shape[0]
    assert (out / "grid.mp4").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--explainers", "gradcam,nope"], "unknown explainer 'nope'"),
        (["--param", "shap3d.nope=1"], "has no parameter nope"),
        (["--param", "oops"], "expected NAME.KEY=VALUE"),
        (["--param", "lime3d.num_samples=5"], "not in --explainers"),
        (["--model", "weird=x.pt"], "unknown detector role"),
        (["--model", "plain=/no/such/file.pt"], "no such checkpoint"),
        (["--models", "plain=/no/such/file.pt"], "no such checkpoint"),  # deprecated
        (["--explainers", ","], "empty"),
        (["--device", "tpu9"], "unknown torch device"),
    ],
)
def test_cli_explain_errors_are_one_line(argv, message, short_face_video, tmp_path, capsys):
    rc = main(["explain", str(short_face_video), "--out", str(tmp_path), "--quiet", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("error: ") and message in err[-1]
    assert "Traceback" not in "\n".join(err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_cli_explain_cuda_without_a_gpu(short_face_video, tmp_path, capsys):
    rc = main(["explain", str(short_face_video), "--out", str(tmp_path), "--device", "cuda"])
    assert rc == 2 and "no CUDA GPU" in capsys.readouterr().err


def test_cli_explain_missing_video_is_reported_first(tmp_path, capsys):
    rc = main(["explain", str(tmp_path / "missing.mp4"), "--out", str(tmp_path), "--quiet"])
    assert rc == 2 and "no such file" in capsys.readouterr().err


def test_cli_explain_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["explain", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--explainers", "--preset", "--frames", "--target", "--model", "summary.json"):
        assert word in text


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_parameter_is_valid(preset):
    from xai_study.explainers import create_explainer, explainer_class, list_explainers
    from xai_study.explainers.toys import make_region_detector

    for name in list_explainers():
        cls = explainer_class(name)
        params = explainer_params(preset, name)
        assert set(params) <= set(cls.defaults), (preset, name)
        create_explainer(name, make_region_detector(cls.requires or "plain"), **params)
