"""Integrated gradients (Sundararajan et al. 2017) with captum, frame by frame.

The path runs from a baseline frame (blurred by default, like SHAP-3D; ``black`` or
``mean`` on request) to the frame in ``n_steps`` Gauss-Legendre steps; the map is the
attribution summed over colour channels (signed), resized bilinearly to the crop.
``extra["delta"]`` holds captum's convergence deltas (completeness error per frame).
"""

from __future__ import annotations

import numpy as np

from xai_study.explainers.base import (
    BASELINES,
    GRADIENT_BATCH,
    Explainer,
    batch_size_of,
    check_choice,
    check_positive_int,
    make_baseline,
    register,
)
from xai_study.explainers.gradients import signed_logit_model
from xai_study.maps import resize_maps


@register
class IntegratedGradientsExplainer(Explainer):
    name = "integrated_gradients"
    label = "Integrated Gradients"
    signed = True
    requires = None
    description = "integrated gradients from a baseline frame, summed over channels (captum)"
    defaults = {"n_steps": 32, "baseline": "blur", "blur_sigma": 0.0, "batch_size": 0, "seed": 0}

    def check_params(self) -> None:
        check_positive_int("n_steps", self.params["n_steps"], 2)
        check_choice("baseline", self.params["baseline"], BASELINES)
        check_positive_int("batch_size", self.params["batch_size"], 0)

    def _explain(self, frames, sign, progress):
        import torch
        from captum.attr import IntegratedGradients

        from xai_study.detectors.contract import detector_device

        det = self.detector
        p = self.params
        bs = int(p["batch_size"]) or batch_size_of(det, cap=GRADIENT_BATCH)
        base = make_baseline(frames, p["baseline"], float(p["blur_sigma"]))
        method = IntegratedGradients(signed_logit_model(det, sign))
        dev = detector_device(det)
        out, deltas = [], []
        with torch.inference_mode(False), torch.enable_grad():
            for t in range(len(frames)):
                x = det.preprocess(frames[t : t + 1]).to(dev)
                b = det.preprocess(base[t : t + 1]).to(dev)
                attr, delta = method.attribute(
                    x,
                    baselines=b,
                    target=0,
                    n_steps=int(p["n_steps"]),
                    internal_batch_size=bs,
                    return_convergence_delta=True,
                )
                out.append(attr.detach().sum(dim=1).float().cpu().numpy())
                deltas.append(float(delta.abs().max()))
                if progress is not None:
                    progress((t + 1) / len(frames))
        det.zero_grad(set_to_none=True)
        maps = resize_maps(np.concatenate(out), frames.shape[1:3])
        return maps, {"delta": np.asarray(deltas)}
