"""Null explainers: maps that explain nothing, to measure the real explainers against.

A metric only says something about an explainer when the explainer beats what a map
that ignores the detector (or the video) scores. Three such nulls, registered like any
other explainer (``Explainer.null`` is true on them, ``paper_rank`` 0):

- ``null_centre``: a centre prior, the same fixed, centred Gaussian on every frame
  (standard deviation ``sigma`` times the crop side). Face crops are centred, and so
  are the manipulation masks of face swaps: this is what "above chance" must beat.
- ``null_supervoxels``: random values (standard normal, seeded) on the same SLIC
  supervoxels as SHAP-3D (same parameters, same painting): what the segmentation alone
  gives τ, ρ and the localisation metrics.
- ``null_random_model``: Grad-CAM of a copy of the detector whose every parameterised
  layer is re-initialised (:func:`xai_study.metrics.sanity.randomise_model`, seeded);
  the detector itself is never changed. What the architecture alone gives.
"""

from __future__ import annotations

import numpy as np

from xai_study.errors import XaiStudyError
from xai_study.explainers.base import Explainer, register
from xai_study.explainers.gradcam import GradCamExplainer
from xai_study.explainers.supervoxels import SUPERVOXEL_DEFAULTS, SupervoxelExplainer


def centre_prior(height: int, width: int, sigma: float = 0.25) -> np.ndarray:
    """``(H, W)`` float32 Gaussian centred on the crop, peak 1, σ = ``sigma`` × side."""
    y = (np.arange(height) + 0.5 - height / 2.0) / (sigma * height)
    x = (np.arange(width) + 0.5 - width / 2.0) / (sigma * width)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)).astype(np.float32)


@register
class NullCentre(Explainer):
    name = "null_centre"
    label = "Null: centre prior"
    null = True
    signed = False
    requires = None
    description = "null: a fixed centred Gaussian on every frame (ignores video and detector)"
    defaults = {"sigma": 0.25, "seed": 0}

    def check_params(self) -> None:
        sigma = self.params["sigma"]
        if not isinstance(sigma, int | float) or not 0 < float(sigma) <= 10:
            raise XaiStudyError(f"sigma must be a number in (0, 10], got {sigma!r}")

    def _explain(self, frames, sign, progress):
        T, H, W = frames.shape[:3]
        prior = centre_prior(H, W, float(self.params["sigma"]))
        return np.broadcast_to(prior, (T, H, W)).copy()


@register
class NullSupervoxels(SupervoxelExplainer):
    name = "null_supervoxels"
    label = "Null: random supervoxels"
    null = True
    description = "null: random values on SHAP-3D's supervoxels (ignores the detector)"
    defaults = SUPERVOXEL_DEFAULTS

    def _explain(self, frames, sign, progress):
        game = self.game(frames, sign)
        # a stream of its own, so the values do not depend on what else used the seed
        rng = np.random.default_rng([int(self.params["seed"]) % 2**32, 7919])
        values = rng.standard_normal(game.n_segments)
        extra = {
            "segments": game.segments,
            "values": values,
            "paint": self.params["paint"],
        }
        return game.paint(values, self.params["paint"]), extra


@register
class NullRandomModel(GradCamExplainer):
    """Grad-CAM (its parameters and their checks) on a randomised copy of the detector."""

    name = "null_random_model"
    label = "Null: random model"
    paper_rank = 0
    paper_label = ""
    null = True
    description = "null: Grad-CAM of a copy of the detector with re-initialised weights"

    def _explain(self, frames, sign, progress):
        from xai_study.detectors.randomise import randomise_model

        clone = randomise_model(self.detector, "all", seed=int(self.params["seed"]))
        gradcam = GradCamExplainer(clone, batch_size=int(self.params["batch_size"]))
        maps = gradcam._explain(frames, sign, progress)
        if isinstance(maps, tuple):
            maps = maps[0]
        return maps
