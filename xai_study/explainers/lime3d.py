"""LIME-3D: LIME (the ``lime`` package) over the same supervoxels as SHAP-3D.

The neighbourhood is sampled as ``lime_image.LimeImageExplainer`` samples it (uniform
random on/off supervoxels, the first sample the whole clip), but the masked clips are
built and evaluated by the shared :class:`~xai_study.explainers.supervoxels.CoalitionGame`
(same baseline as SHAP-3D, cached frames, bounded batches) instead of copying the whole
clip per sample. ``lime_base.LimeBase`` then fits the weighted ridge surrogate with
LIME's image kernel (cosine distance, width 0.25) over *all* supervoxels
(``feature_selection="none"``). Each pixel carries its supervoxel's weight (signed;
``paint="density"`` divides it by the supervoxel's size).

Convergence (``extra["convergence"]``, :mod:`xai_study.explainers.convergence`): the
surrogate is also fitted on each half of the samples (alternate rows, the whole clip in
both), at no extra model evaluation; the halves' Spearman agreement and its
Spearman–Brown prediction for the full sample are reported. The reported weights are
the fit on all samples.
"""

from __future__ import annotations

import numpy as np

from xai_study.explainers.base import check_positive_int, register
from xai_study.explainers.convergence import split_half_figure
from xai_study.explainers.supervoxels import SUPERVOXEL_DEFAULTS, SupervoxelExplainer


@register
class Lime3D(SupervoxelExplainer):
    name = "lime3d"
    label = "LIME-3D"
    study_name = "lime"
    description = "LIME over 3D SLIC supervoxels (black box, signed)"
    defaults = {**SUPERVOXEL_DEFAULTS, "num_samples": 256, "kernel_width": 0.25}

    def check_params(self) -> None:
        super().check_params()
        check_positive_int("num_samples", self.params["num_samples"], 2)

    def _explain(self, frames, sign, progress):
        import sklearn.metrics
        from lime import lime_base

        p = self.params
        game = self.game(frames, sign, progress)
        k = game.n_segments
        rng = np.random.RandomState(int(p["seed"]))
        data = rng.randint(0, 2, size=(int(p["num_samples"]), k))
        data[0, :] = 1
        labels = game(data)[:, None]
        distances = sklearn.metrics.pairwise_distances(
            data, data[0].reshape(1, -1), metric="cosine"
        ).ravel()
        width = float(p["kernel_width"])

        def kernel(d):
            return np.sqrt(np.exp(-(d**2) / width**2))

        base = lime_base.LimeBase(kernel, verbose=False, random_state=rng)

        def fit(rows):
            intercept, local_exp, r2, _ = base.explain_instance_with_data(
                data[rows], labels[rows], distances[rows], 0, k, feature_selection="none"
            )
            weights = np.zeros(k)
            for feature, weight in local_exp:
                weights[int(feature)] = weight
            return weights, intercept, r2

        n = len(data)
        weights, intercept, r2 = fit(np.arange(n))
        halves = [np.r_[0, np.arange(1 + part, n, 2)] for part in (0, 1)]
        if min(len(h) for h in halves) >= 3:
            (a, _, _), (b, _, _) = fit(halves[0]), fit(halves[1])
            figure = split_half_figure(a, b, "lime")
        else:
            figure = {"method": "lime", "split_half_spearman": None, "agreement": None}
        figure.update(frame_evaluations=game.frames_evaluated, samples=n, precision=game.precision)
        extra = {
            "segments": game.segments,
            "values": weights,
            "intercept": float(intercept),
            "r2": float(r2),
            "paint": p["paint"],
            "convergence": figure,
            "score": game.video_score(),
            **game.stats(),
        }
        return game.paint(weights, p["paint"]), extra
