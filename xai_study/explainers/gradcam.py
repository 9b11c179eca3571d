"""Grad-CAM for a single-logit (binary) detector, with pytorch-grad-cam.

``BinaryClassifierOutputTarget(1)`` explains the fake logit, ``(0)`` its negation (the
``real`` target). pytorch-grad-cam rescales every frame to [0, 1] on its own, which
would erase the differences in intensity between frames that the clip-level
normalisation keeps, so :class:`RawGradCAM` (a small subclass) keeps the raw ReLU'd
CAM and only resizes it. The target layer is the detector's ``gradcam_layer`` (the last
convolutional stage); frames go through in batches; the CAM object is a context manager,
so its hooks are released even when a batch fails. Gradients are needed: this never
runs under ``torch.no_grad``.
"""

from __future__ import annotations

import numpy as np

from xai_study.errors import XaiStudyError
from xai_study.explainers.base import (
    GRADIENT_BATCH,
    Explainer,
    batch_size_of,
    check_positive_int,
    register,
)
from xai_study.maps import resize_maps


def _raw_gradcam_class():
    from pytorch_grad_cam import GradCAM

    class RawGradCAM(GradCAM):
        """GradCAM that returns unscaled maps (ReLU of the weighted activations)."""

        def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):
            activations = [a.cpu().data.numpy() for a in self.activations_and_grads.activations]
            grads = [g.cpu().data.numpy() for g in self.activations_and_grads.gradients]
            if len(grads) < len(self.target_layers):
                raise XaiStudyError(
                    "Grad-CAM got no gradient at the detector's target layer "
                    "(is the layer used in the forward pass?)"
                )
            size = tuple(input_tensor.shape[-2:])
            cams = []
            for layer, act, grad in zip(self.target_layers, activations, grads, strict=False):
                cam = self.get_cam_image(input_tensor, layer, targets, act, grad, eigen_smooth)
                cam = np.maximum(cam, 0).astype(np.float32)
                cams.append(resize_maps(cam, size)[:, None])
            return cams

        def aggregate_multi_layers(self, cam_per_target_layer):
            return np.maximum(np.concatenate(cam_per_target_layer, axis=1), 0).mean(axis=1)

    return RawGradCAM


@register
class GradCamExplainer(Explainer):
    name = "gradcam"
    label = "Grad-CAM"
    paper_rank = 1
    paper_label = "GradCAM"
    signed = False
    requires = None
    description = "Grad-CAM at the detector's last convolutional stage (white box)"
    defaults = {"batch_size": 0, "seed": 0}

    def check_params(self) -> None:
        check_positive_int("batch_size", self.params["batch_size"], 0)
        if self.detector.gradcam_layer is None:
            raise XaiStudyError("this detector has no 'gradcam_layer' for Grad-CAM")

    def _explain(self, frames, sign, progress):
        import torch
        from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

        from xai_study.detectors.contract import detector_device

        det = self.detector
        bs = int(self.params["batch_size"]) or batch_size_of(det, cap=GRADIENT_BATCH)
        category = 1 if sign > 0 else 0
        out = []
        with (
            torch.inference_mode(False),
            torch.enable_grad(),
            _raw_gradcam_class()(det, [det.gradcam_layer]) as cam,
        ):
            for i in range(0, len(frames), bs):
                x = det.preprocess(frames[i : i + bs]).to(detector_device(det))
                targets = [BinaryClassifierOutputTarget(category)] * len(x)
                out.append(cam(input_tensor=x, targets=targets))
                if progress is not None:
                    progress(min(1.0, (i + bs) / len(frames)))
        det.zero_grad(set_to_none=True)
        maps = np.concatenate(out)
        return resize_maps(maps, frames.shape[1:3])
