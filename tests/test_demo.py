"""The live demo's numerical parts: face regions and captions, confidence weighting,
input checks and the result cache."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from xai_study.demo import (
    REGIONS,
    DemoResult,
    DemoSettings,
    ResultCache,
    caption,
    check_input,
    confidence_weights,
    region_masks,
    region_shares,
    run_demo,
    weighted_consensus,
)
from xai_study.demo.regions import scale_landmarks
from xai_study.errors import VideoError, XaiStudyError

# A frontal face on a 112x112 crop: eyes, nose tip, mouth corners (x, y).
LM = np.array([[38.0, 45.0], [74.0, 45.0], [56.0, 64.0], [42.0, 82.0], [70.0, 82.0]])
H = W = 112


def _label(name):
    return REGIONS.index(name)


def test_region_masks_put_landmarks_in_their_regions():
    lab = region_masks(LM, H, W)
    assert lab.shape == (H, W)
    assert lab[45, 38] == _label("eyes") and lab[45, 74] == _label("eyes")
    assert lab[62, 56] == _label("nose")
    assert lab[82, 56] == _label("mouth")
    assert lab[0, 0] == _label("background") and lab[111, 111] == _label("background")
    assert lab[68, 34] == _label("cheeks")  # beside the nose, below the eyes
    assert lab[30, 56] == _label("forehead")
    # every region is present on a frontal face
    assert set(np.unique(lab)) == set(range(len(REGIONS)))


def test_region_masks_follow_head_roll_and_landmark_order():
    # rotate the landmarks 90 degrees about the centre: the mouth moves with them
    c = np.array([56.0, 56.0])
    rot = (LM - c) @ np.array([[0.0, 1.0], [-1.0, 0.0]]) + c
    lab = region_masks(rot, H, W)
    mx, my = rot[3:5].mean(axis=0)
    assert lab[int(my), int(mx)] == _label("mouth")
    # swapping the two eyes (or the two mouth corners) changes nothing
    swapped = LM[[1, 0, 2, 4, 3]]
    assert np.array_equal(region_masks(swapped, H, W), region_masks(LM, H, W))


def test_region_masks_reject_degenerate_landmarks():
    bad = LM.copy()
    bad[1] = bad[0]
    with pytest.raises(ValueError, match="degenerate"):
        region_masks(bad, H, W)


def test_caption_names_the_mouth_for_a_mouth_map():
    lab = region_masks(LM, H, W)
    maps = np.repeat((lab == _label("mouth")).astype(float)[None], 3, axis=0)
    shares = region_shares(maps, np.repeat(LM[None], 3, axis=0))
    assert shares.mass["mouth"] == pytest.approx(1.0)
    assert sum(shares.area.values()) == pytest.approx(1.0)
    assert shares.top() == ["mouth"]
    text = caption(shares, "Grad-CAM")
    assert text.startswith("Grad-CAM: highlights mostly the mouth (100% of the map")


def test_caption_two_regions_ordered_by_mass_and_uniform_map():
    lab = region_masks(LM, H, W)
    m = 3.0 * (lab == _label("eyes")) + 1.0 * (lab == _label("nose"))
    shares = region_shares(m[None], LM[None])
    assert shares.top() == ["eyes", "nose"]
    assert "the eyes" in caption(shares) and caption(shares).index("eyes") < caption(shares).index(
        "nose"
    )
    uniform = region_shares(np.ones((2, H, W)), np.repeat(LM[None], 2, axis=0))
    assert uniform.top() == []
    assert all(v == pytest.approx(1.0) for v in uniform.lift.values())
    assert "no region stands out" in caption(uniform)
    empty = region_shares(np.zeros((1, H, W)), LM[None])
    assert empty.frames == 0 and "empty" in caption(empty)


def test_region_shares_weights_frames():
    lab = region_masks(LM, H, W)
    mouth = (lab == _label("mouth")).astype(float)
    eyes = (lab == _label("eyes")).astype(float)
    lms = np.repeat(LM[None], 2, axis=0)
    shares = region_shares(np.stack([mouth, eyes]), lms, weights=np.array([3.0, 1.0]))
    assert shares.mass["mouth"] == pytest.approx(0.75)
    assert shares.mass["eyes"] == pytest.approx(0.25)
    with pytest.raises(ValueError):
        region_shares(-np.ones((1, H, W)), LM[None])


def test_scale_landmarks():
    out = scale_landmarks(LM, (112, 112), (224, 56))
    assert np.allclose(out[:, 0], LM[:, 0] / 2) and np.allclose(out[:, 1], LM[:, 1] * 2)


def test_confidence_weights_and_weighted_consensus():
    p = np.array([0.2, 0.8, 1.0])
    assert np.allclose(confidence_weights(p, "fake"), p)
    assert np.allclose(confidence_weights(p, "real"), 1 - p)
    a = np.ones((3, 2, 2))
    b = np.zeros((3, 2, 2))
    out = weighted_consensus([a, b], p)
    assert np.allclose(out[:, 0, 0], [0.1, 0.4, 0.5])  # mean 0.5 x (p / max p)
    assert np.allclose(weighted_consensus([a], np.zeros(3)), 0)
    with pytest.raises(ValueError):
        weighted_consensus([a], np.ones(2))


def test_settings_key_ignores_explainer_order():
    a = DemoSettings(explainers=("gradcam", "ltpa"))
    b = DemoSettings(explainers=("ltpa", "gradcam"))
    assert a.key() == b.key()
    assert a.key() != DemoSettings(explainers=("gradcam", "ltpa"), frames=8).key()
    assert a.key() != DemoSettings(explainers=("gradcam", "ltpa"), target="real").key()


def test_check_input_bad_files(tmp_path, short_face_video):
    with pytest.raises(VideoError, match="no video given"):
        check_input(None)
    with pytest.raises(VideoError, match="no such file"):
        check_input(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="not a readable video"):
        check_input(text)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(short_face_video.read_bytes()[:2000])
    with pytest.raises(VideoError):
        check_input(corrupt)
    with pytest.raises(VideoError, match="over the limit of"):
        check_input(short_face_video, max_bytes=1000)
    with pytest.raises(VideoError, match=r"lasts 2\.\d s, over the limit of 1 s"):
        check_input(short_face_video, max_seconds=1)
    assert check_input(short_face_video) == Path(short_face_video)


def _fake_result(folder: Path, key: str) -> DemoResult:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for n in ("gradcam", "faces", "confidence_weighted", "grid"):
        (folder / f"{n}.mp4").write_bytes(b"x")
        files[n] = str(folder / f"{n}.mp4")
    return DemoResult(
        key=key,
        folder=folder,
        verdict="fake",
        p_fake=0.9,
        frame_scores=[0.9],
        timestamps=[0.0],
        animations={"gradcam": files["gradcam"]},
        labels={"gradcam": "Grad-CAM"},
        captions={"gradcam": "Grad-CAM: highlights mostly the mouth."},
        metrics={"gradcam": {"V": 0.1, "tau": None, "rho": 0.2, "mu": 0.3}},
        regions={},
        face_track=files["faces"],
        weighted=files["confidence_weighted"],
        weighted_caption="c",
        settings={},
        grid=files["grid"],
    )


def test_cache_round_trip_and_warm_run_is_instant(tmp_path, short_face_video):
    from xai_study.demo.jobs import file_sha256

    cache = ResultCache(tmp_path / "cache")
    settings = DemoSettings()
    key = f"{file_sha256(short_face_video)[:24]}-{settings.key()}"
    assert cache.get(key) is None
    tmp = tmp_path / "cache" / ".tmp"
    stored = cache.put(tmp, _fake_result(tmp, key))
    assert not tmp.exists() and stored.cached and stored.folder == tmp_path / "cache" / key
    assert (
        json.loads((stored.folder / "result.json").read_text())["metrics"]["gradcam"]["tau"] is None
    )
    # run_demo finds it without computing anything (no detectors are available here)
    t0 = time.perf_counter()
    hit = run_demo(short_face_video, settings, cache)
    assert time.perf_counter() - t0 < 1.0
    assert hit.cached and hit.p_fake == 0.9 and Path(hit.animations["gradcam"]).is_file()
    # a missing media file invalidates the entry
    Path(hit.animations["gradcam"]).unlink()
    assert cache.get(key) is None


def test_run_demo_rejects_bad_settings_before_work(tmp_path, short_face_video):
    cache = ResultCache(tmp_path)
    with pytest.raises(XaiStudyError, match="at least one explainer"):
        run_demo(short_face_video, DemoSettings(explainers=()), cache)
    with pytest.raises(XaiStudyError, match="frames must be 1-64"):
        run_demo(short_face_video, DemoSettings(frames=500), cache)


def test_run_demo_no_face_is_a_clear_error(tmp_path, no_face_video):
    from xai_study.detectors import create_detector

    dets = {a: create_detector(a).eval() for a in ("plain", "ltpa", "bonettini")}
    with pytest.raises(XaiStudyError, match="no face"):
        run_demo(no_face_video, DemoSettings(frames=4), ResultCache(tmp_path), detectors=dets)
    assert not any(tmp_path.iterdir())  # nothing half-written left in the cache


def test_run_demo_cancelled_leaves_no_cache_entry(tmp_path, short_face_video):
    import threading

    from xai_study.runs import AnalysisCancelled

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(AnalysisCancelled, match="cancelled"):
        run_demo(short_face_video, DemoSettings(frames=4), ResultCache(tmp_path), cancel=cancel)
    assert not any(tmp_path.iterdir())


def test_same_request_twice_at_once_computes_once(tmp_path, short_face_video, monkeypatch):
    """Two users submitting the same video and settings share one computation."""
    import threading

    import xai_study.demo.jobs as jobs

    calls = []
    gate = threading.Event()

    def fake_compute(p, settings, key, tmp, detectors, progress, cancel):
        calls.append(key)
        gate.wait(5)
        return _fake_result(tmp, key)

    monkeypatch.setattr(jobs, "_compute", fake_compute)
    cache = ResultCache(tmp_path / "cache")
    results = []

    def worker():
        results.append(run_demo(short_face_video, DemoSettings(), cache))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    gate.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and len(results) == 2
    assert results[0].key == results[1].key and all(r.p_fake == 0.9 for r in results)
    # one request computed it, the other got it from the cache
    assert sorted(r.cached for r in results) == [False, True]
