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

from xai_study.errors import XaiStudyError
from xai_study.explainers.base import (
    BASELINES,
    Explainer,
    batch_size_of,
    check_choice,
    check_positive_int,
    make_baseline,
    register,
)
from xai_study.explainers.supervoxels import CoalitionGame, supervoxels


@register
class Shap3D(Explainer):
    name = "shap3d"
    signed = True
    requires = None
    description = "Kernel SHAP over 3D SLIC supervoxels (black box, signed)"
    defaults = {
        "n_segments": 64,
        "compactness": 10.0,
        "temporal_spacing": 4.0,
        "slic_scale": 0.5,
        "baseline": "blur",
        "blur_sigma": 0.0,
        "nsamples": 512,
        "batch_size": 0,
        "seed": 0,
    }

    def check_params(self) -> None:
        p = self.params
        check_positive_int("n_segments", p["n_segments"], 2)
        check_choice("baseline", p["baseline"], BASELINES)
        if p["nsamples"] != "auto":
            check_positive_int("nsamples", p["nsamples"], 2)
        check_positive_int("batch_size", p["batch_size"], 0)

    def game(self, frames: np.ndarray, sign: float = 1.0, progress=None) -> CoalitionGame:
        p = self.params
        segments = supervoxels(
            frames,
            n_segments=int(p["n_segments"]),
            compactness=float(p["compactness"]),
            temporal_spacing=float(p["temporal_spacing"]),
            scale=float(p["slic_scale"]),
        )
        baseline = make_baseline(frames, p["baseline"], float(p["blur_sigma"]))
        return CoalitionGame(
            self.detector,
            frames,
            segments,
            baseline,
            sign=sign,
            batch_size=int(p["batch_size"]) or batch_size_of(self.detector),
            progress=progress,
        )

    def _explain(self, frames, sign, progress):
        import shap

        game = self.game(frames, sign, progress)
        k = game.n_segments
        if k < 2:
            raise XaiStudyError("the clip has fewer than 2 supervoxels: nothing to explain")
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
