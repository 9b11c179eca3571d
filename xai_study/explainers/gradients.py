"""Shared code of the captum gradient explainers (saliency, integrated gradients)."""

from __future__ import annotations


def signed_logit_model(detector, sign: float):
    """An ``nn.Module`` returning ``sign * logit`` as (N, 1): captum's forward function."""
    import torch

    class _Signed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.detector = detector

        def forward(self, x):
            return sign * self.detector(x).reshape(len(x), 1)

    return _Signed().eval()
