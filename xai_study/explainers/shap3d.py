"""SHAP-3D: Kernel SHAP over supervoxels of the whole clip (Pino et al. 2021).

The players are SLIC supervoxels of the ``(T, H, W, 3)`` clip (segments extend over
several frames). A coalition keeps its supervoxels and replaces every other one by the
baseline clip (blurred by default); the game's value is the detector's video-level logit
(mean frame logit) of that masked clip. ``shap.KernelExplainer`` estimates the Shapley
values with ``l1_reg=False`` so every supervoxel gets a value, and its constrained
regression makes them sum to ``f(clip) - f(baseline)`` (efficiency). Each pixel of the
map carries its supervoxel's value (signed).
"""

from __future__ import annotations

import logging

import numpy as np

from xai_study.explainers.base import check_positive_int, register
from xai_study.explainers.supervoxels import SUPERVOXEL_DEFAULTS, SupervoxelExplainer


@register
class Shap3D(SupervoxelExplainer):
    name = "shap3d"
    label = "SHAP-3D"
    study_name = "shap"
    paper_rank = 2
    paper_label = "SHAP"
    description = "Kernel SHAP over 3D SLIC supervoxels (black box, signed)"
    defaults = {**SUPERVOXEL_DEFAULTS, "nsamples": 512}

    def check_params(self) -> None:
        super().check_params()
        if self.params["nsamples"] != "auto":
            check_positive_int("nsamples", self.params["nsamples"], 2)

    def _explain(self, frames, sign, progress):
        import shap

        game = self.game(frames, sign, progress)
        k = game.n_segments
        nsamples = self.params["nsamples"]
        # shap logs one INFO line per call about the number of samples; keep it quiet.
        logging.getLogger("shap").setLevel(logging.WARNING)
        game.progress = None  # the one-row calls (background, full clip) are not progress
        explainer = shap.KernelExplainer(game, np.zeros((1, k)), link="identity")
        game.progress = progress
        values = explainer.shap_values(
            np.ones((1, k)), nsamples=nsamples, l1_reg=False, silent=True
        )
        game.progress = None
        values = np.asarray(values, dtype=np.float64).reshape(-1)[:k]
        f_clip = float(game(np.ones((1, k)))[0])
        f_base = float(explainer.expected_value)
        extra = {
            "segments": game.segments,
            "values": values,
            "f_clip": f_clip,
            "f_baseline": f_base,
            "score": game.video_score(),
            **game.stats(),
        }
        return game.paint(values), extra
