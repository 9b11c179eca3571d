"""The null explainers: registered like any other, and null by construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xai_study.explainers import create_explainer, explainer_class, list_explainers
from xai_study.explainers.base import paper_explainers
from xai_study.explainers.toys import make_region_detector, textured_clip
from xai_study.metrics import Centredness, RelevanceMassAccuracy, paper_metrics

NULLS = ["null_centre", "null_supervoxels", "null_random_model"]
SEG = {"n_segments": 24, "compactness": 30.0, "slic_scale": 1.0}
PARAMS = {"null_centre": {}, "null_supervoxels": SEG, "null_random_model": {}}


def test_nulls_are_registered_and_flagged():
    assert set(NULLS) <= set(list_explainers())
    for name in list_explainers():
        cls = explainer_class(name)
        assert cls.null is (name in NULLS), name
    for name in NULLS:
        cls = explainer_class(name)
        assert cls.paper_rank == 0 and cls.label.startswith("Null") and "seed" in cls.defaults
        assert name not in paper_explainers()
    assert explainer_class("Null: centre prior").name == "null_centre"


@pytest.mark.parametrize("name", NULLS)
def test_shape_and_determinism_per_seed(name):
    det = make_region_detector(input_size=48)
    clip = textured_clip(3, 48, seed=1)
    a = create_explainer(name, det, seed=3, **PARAMS[name]).explain(clip)
    b = create_explainer(name, det, seed=3, **PARAMS[name]).explain(clip)
    assert a.maps.shape == (3, 48, 48) and a.maps.dtype == np.float32
    assert np.isfinite(a.maps).all() and a.normalised.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(a.maps, b.maps)
    other = create_explainer(name, det, seed=4, **PARAMS[name]).explain(clip)
    if name == "null_centre":  # fixed: no randomness at all
        np.testing.assert_array_equal(a.maps, other.maps)
    else:
        assert not np.array_equal(a.maps, other.maps)


def test_centre_prior_is_fixed_centred_and_scores_mu_high():
    det = make_region_detector(input_size=64)
    clip = textured_clip(4, 64, seed=2)
    expl = create_explainer("null_centre", det).explain(clip)
    for t in range(1, 4):
        np.testing.assert_array_equal(expl.maps[t], expl.maps[0])
    y, x = np.unravel_index(np.argmax(expl.maps[0]), expl.maps[0].shape)
    assert abs(y - 31.5) <= 1 and abs(x - 31.5) <= 1
    np.testing.assert_allclose(expl.maps[0], expl.maps[0].T, atol=1e-6)  # isotropic
    mu = Centredness()(expl.maps)
    assert mu > 0.5  # a uniform map gives 0.25
    # the same map on another clip (it ignores the video)
    other = create_explainer("null_centre", det).explain(textured_clip(4, 64, seed=9))
    np.testing.assert_array_equal(other.maps, expl.maps)
    # a centred mask: the prior gets most of its mass inside, as centred face swaps do
    mask = np.zeros((4, 64, 64), bool)
    mask[:, 12:52, 12:52] = True
    assert RelevanceMassAccuracy()(expl.maps, mask) > 1.5 * mask.mean()  # 0.70 vs 0.39
    assert paper_metrics(expl.maps)["mu"] == pytest.approx(mu)


def test_random_supervoxels_use_shap3ds_supervoxels():
    det = make_region_detector(input_size=48)
    clip = textured_clip(3, 48, seed=5)
    null = create_explainer("null_supervoxels", det, **SEG).explain(clip)
    shap = create_explainer("shap3d", det, nsamples=64, **SEG).explain(clip)
    seg = null.extra["segments"]
    np.testing.assert_array_equal(seg, shap.extra["segments"])
    values = null.extra["values"]
    assert len(values) == seg.max() + 1 and null.signed
    np.testing.assert_array_equal(null.maps, values.astype(np.float32)[seg])
    assert null.extra["paint"] == "total"


def test_random_model_leaves_the_detector_untouched_and_differs_from_gradcam():
    det = make_region_detector(input_size=48)
    weights = {k: v.clone() for k, v in det.state_dict().items()}
    clip = textured_clip(2, 48, seed=6)
    null = create_explainer("null_random_model", det, seed=1).explain(clip)
    for k, v in det.state_dict().items():
        assert torch.equal(v, weights[k]), k
    assert all(p.grad is None for p in det.parameters())
    gradcam = create_explainer("gradcam", det).explain(clip)
    assert not np.allclose(null.maps, gradcam.maps)
    assert null.score == pytest.approx(gradcam.score)  # the score is the real detector's
