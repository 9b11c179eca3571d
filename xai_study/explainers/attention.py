"""Shared code of the attention explainers (LTPA and Bonettini)."""

from __future__ import annotations

import numpy as np

from xai_study.explainers.base import model_device, resize_maps


def attention_maps(detector, frames: np.ndarray, batch_size: int, pick, progress=None):
    """Run ``detector.attention`` over ``frames`` in batches; ``pick`` selects the
    ``(N, 1, h, w)`` map from its output. Returns ``(T, H, W)`` float32 maps upsampled
    bilinearly to the crop grid."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(frames), batch_size):
            x = detector.preprocess(frames[i : i + batch_size]).to(model_device(detector))
            att = pick(detector.attention(x))
            out.append(att.float().reshape(len(x), *att.shape[-2:]).cpu().numpy())
            if progress is not None:
                progress(min(1.0, (i + batch_size) / len(frames)))
    return resize_maps(np.concatenate(out), frames.shape[1:3])
