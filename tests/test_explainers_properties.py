"""Properties every registered explainer must have (parametrised over the registry)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xai_study.errors import XaiStudyError
from xai_study.explainers import create_explainer, explainer_class, list_explainers
from xai_study.explainers.toys import make_region_detector, textured_clip

ALL = list_explainers()
# Small settings so each run takes a fraction of a second on the toy detector.
FAST = {
    "shap3d": {"n_segments": 24, "compactness": 30.0, "nsamples": 64, "slic_scale": 1.0},
    "lime3d": {"n_segments": 24, "compactness": 30.0, "num_samples": 64, "slic_scale": 1.0},
    "integrated_gradients": {"n_steps": 8},
}


def toy_for(name: str, **kw):
    return make_region_detector(explainer_class(name).requires or "plain", **kw)


def hook_count(model: torch.nn.Module) -> int:
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks)
        n += len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
    return n


def test_registry_lists_the_paper_four_and_more():
    assert {"gradcam", "shap3d", "ltpa", "bonettini"} <= set(ALL)
    assert {"lime3d", "saliency", "integrated_gradients"} <= set(ALL)
    for name in ALL:
        cls = explainer_class(name)
        assert cls.name == name and cls.description
        assert "seed" in cls.defaults


@pytest.mark.parametrize("name", ALL)
def test_shape_dtype_finite_normalised(name):
    det = toy_for(name)
    clip = textured_clip(3, 48)
    expl = create_explainer(name, det, **FAST.get(name, {})).explain(clip)
    assert expl.name == name
    assert expl.maps.shape == (3, 48, 48) and expl.maps.dtype == np.float32
    assert expl.normalised.shape == (3, 48, 48) and expl.normalised.dtype == np.float32
    assert np.isfinite(expl.maps).all()
    assert expl.normalised.min() >= 0.0 and expl.normalised.max() == pytest.approx(1.0)
    assert 0.0 < expl.score < 1.0
    assert expl.score == pytest.approx(det.video_score(clip))
    assert expl.seconds > 0
    assert expl.params == {**explainer_class(name).defaults, **FAST.get(name, {})}
    if not expl.signed:
        assert expl.maps.min() >= 0.0
    summary = expl.summary()
    assert summary["shape"] == [3, 48, 48] and summary["name"] == name


@pytest.mark.parametrize("name", ALL)
def test_deterministic_with_a_seed(name):
    det = toy_for(name)
    clip = textured_clip(2, 40, seed=3)
    a = create_explainer(name, det, seed=7, **FAST.get(name, {})).explain(clip)
    b = create_explainer(name, det, seed=7, **FAST.get(name, {})).explain(clip)
    np.testing.assert_array_equal(a.maps, b.maps)


def test_seed_changes_sampling_explainers_only():
    det = make_region_detector()
    clip = textured_clip(2, 40, seed=3)
    kw = {**FAST["lime3d"], "num_samples": 24}
    a = create_explainer("lime3d", det, seed=1, **kw).explain(clip)
    b = create_explainer("lime3d", det, seed=2, **kw).explain(clip)
    assert not np.array_equal(a.maps, b.maps)


@pytest.mark.parametrize("name", ALL)
def test_hooks_released_and_weights_untouched(name):
    det = toy_for(name)
    before = hook_count(det)
    weights = {k: v.clone() for k, v in det.state_dict().items()}
    create_explainer(name, det, **FAST.get(name, {})).explain(textured_clip(2, 32))
    assert hook_count(det) == before
    for k, v in det.state_dict().items():
        assert torch.equal(v, weights[k]), k
    assert all(p.grad is None for p in det.parameters())
    assert not det.training


def test_gradcam_releases_hooks_when_a_batch_fails():
    det = make_region_detector()
    before = hook_count(det)
    calls = {"n": 0}
    original = det.preprocess

    def failing(frames):
        calls["n"] += 1
        if calls["n"] == 2:
            raise XaiStudyError("boom")
        return original(frames)

    det.preprocess = failing
    with pytest.raises(XaiStudyError, match="boom"):
        create_explainer("gradcam", det, batch_size=1).explain(textured_clip(3, 32))
    assert hook_count(det) == before


@pytest.mark.parametrize("name", ALL)
def test_constant_input_does_not_crash(name):
    det = toy_for(name)
    clip = np.full((2, 32, 32, 3), 128, dtype=np.uint8)
    expl = create_explainer(name, det, **FAST.get(name, {})).explain(clip)
    assert expl.maps.shape == (2, 32, 32)
    assert np.isfinite(expl.maps).all() and np.isfinite(expl.normalised).all()
    # The toy only sees texture: a flat clip carries no evidence, so the black-box maps
    # are flat and their normalised view is all zeros.
    if name in ("shap3d", "lime3d", "integrated_gradients"):
        assert np.allclose(expl.normalised, 0.0)


@pytest.mark.parametrize("name", ["shap3d", "lime3d", "integrated_gradients"])
def test_real_target_negates_signed_explanations(name):
    det = make_region_detector()
    clip = textured_clip(2, 40)
    kw = FAST.get(name, {})
    fake = create_explainer(name, det, **kw).explain(clip, target="fake")
    real = create_explainer(name, det, **kw).explain(clip, target="real")
    assert real.target == "real"
    np.testing.assert_allclose(real.maps, -fake.maps, rtol=1e-4, atol=1e-6)
    assert real.score == fake.score  # the score is always P(fake)


def test_real_target_changes_gradcam_and_not_attention():
    det = make_region_detector()
    clip = textured_clip(2, 40)
    fake = create_explainer("gradcam", det).explain(clip, target="fake")
    real = create_explainer("gradcam", det).explain(clip, target="real")
    # The toy's logit only increases with its features: the 'real' CAM is empty.
    assert fake.maps.max() > 0 and real.maps.max() == 0
    att = make_region_detector("bonettini")
    a = create_explainer("bonettini", att).explain(clip, target="fake")
    b = create_explainer("bonettini", att).explain(clip, target="real")
    np.testing.assert_array_equal(a.maps, b.maps)
    assert b.extra["target_independent"]


def test_ltpa_levels():
    det = make_region_detector("ltpa")
    clip = textured_clip(2, 48)
    expl = create_explainer("ltpa", det, all_levels=True).explain(clip)
    levels = expl.extra["levels"]
    assert len(levels) == 3 and all(m.shape == (2, 48, 48) for m in levels)
    np.testing.assert_allclose(expl.maps, levels[1])
    one = create_explainer("ltpa", det, level=3).explain(clip)
    np.testing.assert_allclose(one.maps, levels[2])
    with pytest.raises(XaiStudyError, match="level"):
        create_explainer("ltpa", det, level=4)


def test_user_errors_are_one_line_messages():
    det = make_region_detector()
    with pytest.raises(XaiStudyError, match="unknown explainer 'nope'"):
        create_explainer("nope", det)
    with pytest.raises(XaiStudyError, match="needs a 'ltpa' detector"):
        create_explainer("ltpa", det)
    with pytest.raises(XaiStudyError, match="needs a 'bonettini' detector"):
        create_explainer("bonettini", det)
    with pytest.raises(XaiStudyError, match="unknown parameter"):
        create_explainer("shap3d", det, n_samples=10)
    with pytest.raises(XaiStudyError, match="baseline"):
        create_explainer("shap3d", det, baseline="white")
    with pytest.raises(XaiStudyError, match="target"):
        create_explainer("gradcam", det).explain(textured_clip(1, 32), target="both")
    with pytest.raises(XaiStudyError, match="shape"):
        create_explainer("gradcam", det).explain(np.zeros((2, 32, 32), np.uint8))


def test_aliases_resolve():
    det = make_region_detector()
    assert create_explainer("shap", det).name == "shap3d"
    assert create_explainer("ig", det).name == "integrated_gradients"


# ------------------------------------------------------------- real (random) detectors


@pytest.fixture(scope="module")
def real_detectors():
    from xai_study.detectors import create_detector

    torch.manual_seed(0)
    return {a: create_detector(a, input_size=64) for a in ("plain", "bonettini", "ltpa")}


@pytest.mark.parametrize("name", ALL)
def test_every_explainer_runs_on_a_real_random_detector(name, real_detectors, short_face_video):
    clip = _clip(short_face_video)
    det = real_detectors[explainer_class(name).requires or "plain"]
    before = hook_count(det)
    kw = {**FAST.get(name, {})}
    if name in ("shap3d", "lime3d"):
        kw.update(compactness=10.0, slic_scale=0.5)
    expl = create_explainer(name, det, **kw).explain(clip)
    assert expl.maps.shape == clip.frames.shape[:3]
    assert np.isfinite(expl.maps).all() and expl.normalised.max() == pytest.approx(1.0)
    assert expl.score == pytest.approx(det.video_score(clip.frames), abs=1e-6)
    assert hook_count(det) == before


_CLIPS: dict = {}


def _clip(path):
    from xai_study.video import extract_face_clip

    if path not in _CLIPS:
        _CLIPS[path] = extract_face_clip(path, num_frames=3, size=96)
    return _CLIPS[path]


@pytest.mark.parametrize("name", ALL)
def test_a_single_frame_clip_works(name):
    det = toy_for(name)
    clip = textured_clip(1, 40, seed=9)
    expl = create_explainer(name, det, **FAST.get(name, {})).explain(clip[0])  # (H, W, 3)
    assert expl.maps.shape == (1, 40, 40) and np.isfinite(expl.maps).all()


@pytest.mark.parametrize("name", ["gradcam", "saliency", "integrated_gradients"])
def test_gradient_explainers_work_under_no_grad_and_inference_mode(name):
    det = make_region_detector()
    clip = textured_clip(2, 32)
    ref = create_explainer(name, det, **FAST.get(name, {})).explain(clip).maps
    with torch.no_grad():
        a = create_explainer(name, det, **FAST.get(name, {})).explain(clip).maps
    with torch.inference_mode():
        b = create_explainer(name, det, **FAST.get(name, {})).explain(clip).maps
    np.testing.assert_allclose(a, ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b, ref, rtol=1e-5, atol=1e-7)
    assert ref.max() > 0


def test_concurrent_gradcam_runs_on_a_shared_detector_do_not_mix():
    from concurrent.futures import ThreadPoolExecutor

    from xai_study.explainers.base import detector_lock

    det = make_region_detector()
    clips = [textured_clip(3, 32, seed=s) for s in range(4)]
    alone = [create_explainer("gradcam", det, batch_size=1).explain(c).maps for c in clips]

    def run(k):
        if k % 2:  # forward passes under the detector's lock never reach Grad-CAM's hooks
            with detector_lock(det):
                det.frame_logits(clips[(k + 1) % 4])
        return create_explainer("gradcam", det, batch_size=1).explain(clips[k % 4]).maps

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(8)))
    for k, maps in enumerate(results):
        np.testing.assert_allclose(maps, alone[k % 4], rtol=1e-5, atol=1e-7)
    assert hook_count(det) == 0
