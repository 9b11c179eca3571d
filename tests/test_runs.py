"""The run layer's pieces: progress, the detector set and its resolver, detector specs,
the pure analysis and the artefact writer (xai_study.runs)."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from xai_study.errors import XaiStudyError
from xai_study.explainers.toys import make_region_detector, textured_clip
from xai_study.runs import (
    AnalysisCancelled,
    DetectorSet,
    Progress,
    analyse_clip,
    check_request,
    write_artefacts,
)
from xai_study.runs.detectors import parse_detector_specs, resolve_detector

REGION = (0.25, 0.25, 0.75, 0.75)


@pytest.fixture(scope="module")
def toys():
    return {a: make_region_detector(a, input_size=32, region=REGION) for a in ("plain", "ltpa")}


class _Clip:
    """The parts of a FaceClip the analysis reads."""

    def __init__(self, frames):
        self.frames = frames
        self.frame_indices = np.arange(len(frames))
        self.timestamps = np.arange(len(frames)) / 8.0
        self.crop_boxes = np.tile([0, 0, frames.shape[2], frames.shape[1]], (len(frames), 1))
        self.coverage = 1.0
        self.fps = 8.0
        self.source = "toy"


# ------------------------------------------------------------------------- progress


def test_progress_weights_stages_and_never_goes_back():
    calls = []
    p = Progress(["faces", "gradcam", "shap3d"], lambda s, f: calls.append((s, f)))
    # weights: faces 2, gradcam 1.5, shap3d 8 -> total 11.5
    p.report("faces", 0.5)
    assert calls[-1] == ("faces", pytest.approx(1 / 11.5))
    p.finish("faces")
    p.report("shap3d", 0.5)  # gradcam not finished: only shap3d's half counts on top
    assert calls[-1][1] == pytest.approx((2 + 4) / 11.5)
    p.report("gradcam", 0.0)  # an earlier figure is not shown
    assert calls[-1][1] == pytest.approx((2 + 4) / 11.5)
    p.done()
    assert calls[-1] == ("done", 1.0)
    assert [f for _, f in calls] == sorted(f for _, f in calls)


def test_progress_cancel():
    cancel = threading.Event()
    p = Progress(["faces"], None, cancel)
    p.report("faces", 0.3)
    cancel.set()
    with pytest.raises(AnalysisCancelled):
        p.within("faces")(0.5)


# ------------------------------------------------------------------------- detectors


def test_detector_set_uses_objects_and_loads_once(toys, monkeypatch):
    loads = []
    import xai_study.detectors as detectors_pkg
    import xai_study.runs.detectors as resolver

    def fake_load(spec, device="cpu"):
        loads.append(spec)
        return toys["plain"]

    monkeypatch.setattr(detectors_pkg, "load_detector", fake_load)
    monkeypatch.setattr(resolver, "_CACHE", {})  # keep the toy out of the process cache
    dets = DetectorSet({"ltpa": toys["ltpa"]})
    assert dets.for_explainer("ltpa") is toys["ltpa"]
    assert dets.for_explainer("gradcam") is dets.verdict
    dets.for_explainers(["gradcam", "ltpa", "saliency"])
    assert loads == ["plain"]  # the verdict detector came from its spec, once
    assert dets.names() == {"ltpa": str(toys["ltpa"]), "plain": "plain"}


def test_resolver_reloads_a_rewritten_checkpoint(tmp_path):
    from xai_study.detectors import create_detector, save_checkpoint

    path = tmp_path / "d.pt"
    save_checkpoint(create_detector("plain", input_size=32), path)
    first = resolve_detector(str(path), "cpu")
    assert resolve_detector(str(path), "cpu") is first  # cached
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert resolve_detector(str(path), "cpu") is not first  # a new version of the file


@pytest.mark.parametrize(
    "items, expected",
    [
        (["ckpt.pt"], {"plain": "ckpt.pt"}),
        (["plain=a.pt,ltpa=b.pt"], {"plain": "a.pt", "ltpa": "b.pt"}),
        (["bonettini=c.pt", "plain=d.pt"], {"bonettini": "c.pt", "plain": "d.pt"}),
        ([""], {}),
    ],
    ids=["bare", "comma-separated", "repeated", "empty"],
)
def test_parse_detector_specs(items, expected):
    assert parse_detector_specs(items) == expected


@pytest.mark.parametrize(
    "item, message",
    [("vgg=x.pt", "unknown detector role 'vgg'"), ("ltpa=", "names no detector")],
)
def test_parse_detector_specs_errors(item, message):
    with pytest.raises(XaiStudyError, match=message):
        parse_detector_specs([item], option="--model")


# ------------------------------------------------------------------------- analysis


@pytest.mark.parametrize(
    "args, message",
    [
        ((["gradcam"], "slow", "fake"), "unknown preset 'slow'"),
        ((["gradcam"], "fast", "maybe"), "target must be 'fake' or 'real'"),
        (([], "fast", "fake"), "no explainers requested"),
        ((["nope"], "fast", "fake"), "unknown explainer 'nope'"),
    ],
    ids=["preset", "target", "none", "unknown"],
)
def test_check_request_errors(args, message):
    with pytest.raises(XaiStudyError, match=message):
        check_request(*args)


def test_check_request_resolves_spellings_and_parameters():
    names, params = check_request(
        ["Grad-CAM", "shap", "gradcam"], "fast", "fake", {"SHAP-3D": {"nsamples": 8}}
    )
    assert names == ["gradcam", "shap3d"] and params == {"shap3d": {"nsamples": 8}}
    with pytest.raises(XaiStudyError, match="not run: lime3d"):
        check_request(["gradcam"], "fast", "fake", {"lime3d": {"num_samples": 8}})


def test_analyse_clip_is_pure_and_matches_the_detector(toys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip = _Clip(textured_clip(frames=3, size=32, seed=1))
    dets = DetectorSet(toys)
    analysis = analyse_clip(clip, dets, ["gradcam", "ltpa"], "fast")
    assert list(tmp_path.iterdir()) == []  # no file written
    logits = toys["plain"].frame_logits(clip.frames)
    np.testing.assert_allclose(analysis.frame_logits, logits, rtol=1e-6)
    np.testing.assert_allclose(analysis.frame_scores, 1 / (1 + np.exp(-logits)), rtol=1e-6)
    assert analysis.p_fake == pytest.approx(toys["plain"].video_score(clip.frames))
    assert set(analysis.explanations) == {"gradcam", "ltpa"}
    assert analysis.explanations["gradcam"].maps.shape == (3, 32, 32)
    assert analysis.files == {} and analysis.summary_path is None


def test_write_artefacts_writes_every_file(toys, tmp_path):
    clip = _Clip(textured_clip(frames=3, size=32, seed=2))
    analysis = analyse_clip(clip, DetectorSet(toys), ["gradcam"], "fast")
    write_artefacts(analysis, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gradcam.mp4",
        "gradcam.npz",
        "grid.mp4",
        "summary.json",
    ]
    with np.load(tmp_path / "gradcam.npz") as saved:
        np.testing.assert_array_equal(saved["maps"], analysis.explanations["gradcam"].maps)
        assert saved["target"] == "fake" and not bool(saved["signed"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["files"] == {"gradcam": "gradcam.mp4"} and summary["grid"] == "grid.mp4"
    assert summary["p_fake"] == round(analysis.p_fake, 6)
    # without rendering: the maps and the summary only
    out = tmp_path / "plain"
    write_artefacts(analysis, out, render=False)
    assert sorted(p.name for p in out.iterdir()) == ["gradcam.npz", "summary.json"]
