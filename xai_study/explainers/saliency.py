"""Vanilla gradient saliency (Simonyan et al. 2014) with captum, frame by frame.

The map is the largest absolute gradient of the (signed) fake logit over the three
colour channels of each input pixel, resized bilinearly to the crop.
"""

from __future__ import annotations

import numpy as np

from xai_study.explainers.base import (
    GRADIENT_BATCH,
    Explainer,
    batch_size_of,
    check_positive_int,
    register,
)
from xai_study.explainers.gradients import signed_logit_model
from xai_study.maps import resize_maps


@register
class SaliencyExplainer(Explainer):
    name = "saliency"
    label = "Saliency"
    signed = False
    requires = None
    description = "absolute input gradient, max over colour channels (captum Saliency)"
    defaults = {"batch_size": 0, "seed": 0}

    def check_params(self) -> None:
        check_positive_int("batch_size", self.params["batch_size"], 0)

    def _explain(self, frames, sign, progress):
        import torch
        from captum.attr import Saliency

        from xai_study.detectors.contract import detector_device

        det = self.detector
        bs = int(self.params["batch_size"]) or batch_size_of(det, cap=GRADIENT_BATCH)
        method = Saliency(signed_logit_model(det, sign))
        out = []
        with torch.inference_mode(False), torch.enable_grad():
            for i in range(0, len(frames), bs):
                x = det.preprocess(frames[i : i + bs]).to(detector_device(det)).requires_grad_(True)
                attr = method.attribute(x, target=0, abs=True)
                out.append(attr.detach().amax(dim=1).float().cpu().numpy())
                if progress is not None:
                    progress(min(1.0, (i + bs) / len(frames)))
        det.zero_grad(set_to_none=True)
        return resize_maps(np.concatenate(out), frames.shape[1:3])
