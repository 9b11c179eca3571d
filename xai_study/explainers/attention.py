"""Shared code of the attention explainers (LTPA and Bonettini)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from xai_study.maps import resize_maps

if TYPE_CHECKING:
    from xai_study.detectors.contract import AttentionDetector
    from xai_study.explainers.base import ProgressFn


def attention_maps(
    detector: AttentionDetector,
    frames: np.ndarray,
    batch_size: int,
    progress: ProgressFn | None = None,
) -> list[np.ndarray]:
    """Run ``detector.attention`` over ``frames`` in batches.

    Returns one ``(T, H, W)`` float32 array per attention map the detector outputs (one
    for Bonettini, three for LTPA), each upsampled bilinearly to the crop grid."""
    import torch

    from xai_study.detectors.contract import detector_device

    chunks: list[list[np.ndarray]] = []
    with torch.inference_mode():
        for i in range(0, len(frames), batch_size):
            x = detector.preprocess(frames[i : i + batch_size]).to(detector_device(detector))
            out = detector.attention(x)
            maps = list(out) if isinstance(out, list | tuple) else [out]
            if not chunks:
                chunks = [[] for _ in maps]
            for store, att in zip(chunks, maps, strict=True):
                store.append(att.float().reshape(len(x), *att.shape[-2:]).cpu().numpy())
            if progress is not None:
                progress(min(1.0, (i + batch_size) / len(frames)))
    return [resize_maps(np.concatenate(store), frames.shape[1:3]) for store in chunks]
