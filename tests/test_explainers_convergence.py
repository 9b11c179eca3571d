"""SHAP-3D's per-frame games against brute-force Shapley values, and the convergence
figures of SHAP-3D and LIME-3D (efficiency is no convergence check: these are)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from xai_study.detectors.contract import aggregate_logits, batched_logits
from xai_study.errors import XaiStudyError
from xai_study.explainers import create_explainer
from xai_study.explainers.convergence import (
    POOR_AGREEMENT,
    convergence_warning,
    is_poor,
    rank_correlation,
    spearman_brown,
)
from xai_study.explainers.shap3d import all_coalitions, exact_shapley
from xai_study.explainers.supervoxels import supervoxels
from xai_study.explainers.toys import make_region_detector, textured_clip

SIZE = 32
# few, compact supervoxels that last the whole clip: at most 12 players in all
SEG = {"n_segments": 10, "compactness": 30.0, "temporal_spacing": 1.0, "slic_scale": 1.0}


class Saturating(torch.nn.Module):
    """The toy region detector (here looking at the whole crop) behind a saturating
    non-linearity, so supervoxels interact and the Shapley values are not just the
    marginal effects (an additive game would make every estimator exact)."""

    def __init__(self):
        super().__init__()
        self.inner = make_region_detector(input_size=SIZE, region=(0.0, 0.0, 1.0, 1.0))
        self.config = self.inner.config
        self.gradcam_layer = self.inner.gradcam_layer
        self.batch_size, self.meta, self.threshold = 16, {}, 0.5
        self.input_size, self.mean, self.std = SIZE, self.inner.mean, self.inner.std

    def preprocess(self, frames):
        return self.inner.preprocess(frames)

    def forward(self, x):
        return 3.0 * torch.tanh(self.inner(x) / 2.0)

    # the rest of the detector contract (xai_study.detectors.contract)
    def frame_logits(self, frames):
        return batched_logits(self, frames, self.batch_size)

    def aggregate(self, logits):
        return aggregate_logits(logits)

    def video_score(self, frames):
        return self.aggregate(self.frame_logits(frames))


def mean_colour(frames):
    """The ``mean`` baseline: the clip's mean colour everywhere."""
    return np.broadcast_to(np.round(frames.reshape(-1, 3).mean(axis=0)), frames.shape)


def masked_clip(frames, segments, keep):
    kept = np.isin(segments, list(keep))[..., None]
    return np.where(kept, frames, mean_colour(frames)).astype(np.uint8)


def brute_force_shapley(det, frames, segments):
    """Shapley values of the whole-clip game by the subset formula, every coalition
    evaluated on a clip masked here (mean-colour baseline), independently of the
    explainer."""
    k = int(segments.max()) + 1

    def value(keep):
        with torch.no_grad():
            return float(det(det.preprocess(masked_clip(frames, segments, keep))).mean())

    v = {}
    for size in range(k + 1):
        for subset in itertools.combinations(range(k), size):
            v[frozenset(subset)] = value(subset)
    phi = np.zeros(k)
    for i in range(k):
        others = [j for j in range(k) if j != i]
        for size in range(k):
            w = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
            for subset in itertools.combinations(others, size):
                s = frozenset(subset)
                phi[i] += w * (v[s | {i}] - v[s])
    return phi


@pytest.fixture(scope="module")
def toy():
    det = Saturating().eval()
    clip = textured_clip(3, SIZE, seed=11)
    segments = supervoxels(
        clip, SEG["n_segments"], SEG["compactness"], SEG["temporal_spacing"], scale=1.0
    )
    k = int(segments.max()) + 1
    assert 4 <= k <= 12, k
    return det, clip, segments, brute_force_shapley(det, clip, segments)


def test_exact_shapley_matches_the_permutation_definition():
    rng = np.random.default_rng(0)
    k = 5
    table = rng.normal(size=2**k)
    rows = all_coalitions(k)
    index = {tuple(r): m for m, r in enumerate(rows)}
    want = np.zeros(k)
    for perm in itertools.permutations(range(k)):
        member = np.zeros(k, dtype=bool)
        for player in perm:
            before = table[index[tuple(member)]]
            member[player] = True
            want[player] += table[index[tuple(member)]] - before
    want /= math.factorial(k)
    np.testing.assert_allclose(exact_shapley(table, k), want, atol=1e-12)


def test_exact_enumeration_matches_brute_force_shapley(toy):
    """Tolerance: 1e-4 of the largest |value| (float32 logits, different batching)."""
    det, clip, segments, want = toy
    k = len(want)
    expl = create_explainer("shap3d", det, **SEG, baseline="mean", nsamples=2**k).explain(clip)
    x = expl.extra
    np.testing.assert_array_equal(x["segments"], segments)
    assert x["convergence"]["method"] == "exact"
    assert x["convergence"]["agreement"] == 1.0 and x["convergence"]["frames_kernel"] == 0
    assert x["frames_evaluated"] <= len(clip) * 2**k
    np.testing.assert_allclose(x["values"], want, atol=1e-4 * np.abs(want).max())
    # the toy saturates: the values are not the players' effects on their own
    with torch.no_grad():
        logit = [
            float(det(det.preprocess(masked_clip(clip, segments, keep))).mean())
            for keep in [[]] + [[i] for i in range(k)]
        ]
    alone = np.array(logit[1:]) - logit[0]
    assert np.abs(alone - want).max() > 0.05 * np.abs(want).max()


def test_kernel_frames_converge_to_brute_force(toy):
    """Below 2^K - 2 coalitions per frame Kernel SHAP runs: at 128 coalitions per frame
    (of 254) within 15 % of the largest |value| of the exact answer (measured: 6-8 %)."""
    det, clip, segments, want = toy
    nsamples = 128
    assert all(2 ** len(np.unique(s)) - 2 > nsamples for s in segments)
    expl = create_explainer("shap3d", det, **SEG, baseline="mean", nsamples=nsamples).explain(clip)
    fig = expl.extra["convergence"]
    assert fig["method"] == "kernel" and fig["frames_kernel"] == len(clip)
    err = np.abs(expl.extra["values"] - want).max() / np.abs(want).max()
    assert err < 0.15, f"max error {err:.3f} of the largest value"
    assert rank_correlation(expl.extra["values"], want) > 0.9


def test_two_seeds_agree_and_the_figure_predicts_it(toy):
    det, clip, _, want = toy
    kw = {**SEG, "baseline": "mean", "nsamples": 128}
    a = create_explainer("shap3d", det, seed=0, **kw).explain(clip).extra
    b = create_explainer("shap3d", det, seed=1, **kw).explain(clip).extra
    assert not np.array_equal(a["values"], b["values"])  # the seed is used
    measured = rank_correlation(a["values"], b["values"])
    assert measured >= POOR_AGREEMENT
    for x in (a, b):
        fig = x["convergence"]
        assert fig["agreement"] >= POOR_AGREEMENT and not is_poor(fig)
        assert fig["se_max"] < 0.1 * np.abs(want).max()


def test_a_small_budget_on_the_clip_game_reports_poor_convergence():
    det = make_region_detector(input_size=48)
    clip = textured_clip(4, 48, seed=3)
    kw = {"n_segments": 48, "compactness": 30.0, "slic_scale": 1.0, "method": "clip"}
    expl = create_explainer("shap3d", det, nsamples=8, **kw).explain(clip)
    fig = expl.extra["convergence"]
    assert fig["estimator"] == "clip" and fig["method"] == "kernel"
    assert is_poor(fig)
    message = convergence_warning(fig)
    assert message and "\n" not in message and str(POOR_AGREEMENT) in message


@pytest.mark.parametrize(
    ("case", "figure", "poor"),
    [
        ("exact", {"method": "exact", "agreement": 1.0}, False),
        ("converged", {"method": "kernel", "agreement": 0.95}, False),
        ("at_threshold", {"method": "kernel", "agreement": POOR_AGREEMENT}, False),
        ("below", {"method": "kernel", "agreement": 0.6, "split_half_spearman": 0.43}, True),
        ("undefined", {"method": "kernel", "agreement": None}, True),
        ("no_figure", None, False),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_convergence_warning_threshold(case, figure, poor):
    assert is_poor(figure) is poor, case
    assert (convergence_warning(figure) is not None) is poor, case


def test_spearman_brown_and_rank_correlation_edge_cases():
    assert spearman_brown(0.5) == pytest.approx(2 / 3)
    assert spearman_brown(1.0) == 1.0 and math.isnan(spearman_brown(float("nan")))
    assert math.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))
    # entries that are zero up to rounding rank as ties, not as disagreement
    assert rank_correlation([1.0, 2.0, 1e-17, -1e-17], [1.0, 2.0, -1e-17, 1e-17]) == 1.0


@pytest.mark.parametrize("name", ["shap3d", "lime3d"])
def test_summary_carries_a_json_convergence_figure(name):
    det = Saturating().eval()
    clip = textured_clip(2, SIZE, seed=4)
    budget = {"shap3d": {"nsamples": 64}, "lime3d": {"num_samples": 64}}[name]
    expl = create_explainer(
        name, det, n_segments=16, compactness=30.0, slic_scale=1.0, **budget
    ).explain(clip)
    summary = json.loads(json.dumps(expl.summary(), allow_nan=False))
    fig = summary["convergence"]
    assert fig["method"] in ("exact", "kernel", "lime")
    assert fig["frame_evaluations"] == expl.extra["frames_evaluated"] > 0
    assert -1.0 <= fig["split_half_spearman"] <= 1.0 and -1.0 <= fig["agreement"] <= 1.0


@pytest.mark.parametrize("method", ["frames", "clip"])
def test_both_estimators_keep_efficiency(method):
    det = make_region_detector(input_size=32)
    clip = textured_clip(3, 32, seed=5)
    x = (
        create_explainer(
            "shap3d", det, n_segments=24, compactness=30.0, slic_scale=1.0, method=method
        )
        .explain(clip)
        .extra
    )
    gap = x["f_clip"] - x["f_baseline"]
    assert abs(x["values"].sum() - gap) <= 1e-6 * max(1.0, abs(gap))
    assert x["convergence"]["estimator"] == method


@pytest.mark.parametrize("name", ["shap3d", "lime3d", "null_supervoxels"])
def test_density_painting_sums_to_the_values(name):
    det = make_region_detector(input_size=32)
    clip = textured_clip(2, 32, seed=6)
    kw = {"n_segments": 12, "compactness": 30.0, "slic_scale": 1.0}
    total = create_explainer(name, det, **kw).explain(clip)
    dense = create_explainer(name, det, paint="density", **kw).explain(clip)
    assert total.extra["paint"] == "total" and dense.extra["paint"] == "density"
    values = total.extra["values"]
    seg = total.extra["segments"]
    np.testing.assert_allclose(total.maps, values[seg], rtol=1e-6)
    assert dense.maps.sum() == pytest.approx(values.sum(), rel=1e-4, abs=1e-6)
    sizes = np.bincount(seg.ravel())
    np.testing.assert_allclose(dense.maps, (values / sizes)[seg], rtol=1e-5)


def test_bad_method_and_paint_are_one_line_errors():
    det = make_region_detector(input_size=32)
    for kw in ({"method": "whole"}, {"paint": "mean"}, {"nsamples": 2}):
        with pytest.raises(XaiStudyError) as err:
            create_explainer("shap3d", det, **kw)
        assert "\n" not in str(err.value)
