"""Small detectors with a known answer, for tests and benchmarks of the explainers.

:class:`RegionDetector` implements the detector contract
(:class:`xai_study.detectors.contract.AttentionDetector`: ``preprocess``, ``forward ->
(N, 1)`` logits, ``frame_logits``, ``aggregate``, ``video_score``, ``threshold``,
``gradcam_layer``, ``attention``, ``config``) but its decision depends *only* on the pixels inside one
rectangle of the face crop: the logit grows with the high-frequency energy (texture)
inside the rectangle, so blurring or hiding that rectangle lowers it, and nothing outside
it matters. Every faithful explainer must put its mass there. Its attention maps (for
the ``bonettini``/``ltpa`` explainers) are high on the same rectangle.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def region_mask(size: int, region: tuple[float, float, float, float]) -> np.ndarray:
    """Boolean (size, size) mask of ``region`` = (top, left, bottom, right) fractions."""
    top, left, bottom, right = region
    mask = np.zeros((size, size), dtype=bool)
    mask[round(top * size) : round(bottom * size), round(left * size) : round(right * size)] = True
    return mask


def make_region_detector(
    arch: str = "plain",
    input_size: int = 64,
    region: tuple[float, float, float, float] = (0.15, 0.55, 0.45, 0.9),
    seed: int = 0,
):
    """A :class:`RegionDetector` (built lazily so importing this module needs no torch)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from xai_study.detectors.contract import aggregate_logits, batched_logits, preprocess_frames

    class _Masked(nn.Module):
        """Multiplies the feature map by the region mask (the Grad-CAM layer)."""

        mask: torch.Tensor  # a buffer

        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, x):
            return x * self.mask

    class RegionDetector(nn.Module):
        def __init__(self):
            super().__init__()
            gen = torch.Generator().manual_seed(seed)
            self.config: dict[str, Any] = {
                "arch": arch,
                "backbone": "toy",
                "input_size": input_size,
                "mean": [0.5, 0.5, 0.5],
                "std": [0.25, 0.25, 0.25],
                "region": list(region),
            }
            self.region = region
            # Laplacian-like high-pass filters (zero response to flat regions).
            w = torch.randn(8, 3, 3, 3, generator=gen)
            w = w - w.mean(dim=(2, 3), keepdim=True)
            self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            with torch.no_grad():
                self.conv.weight.copy_(w)
            mask = torch.from_numpy(region_mask(input_size, region).astype(np.float32))
            self.masked = _Masked(mask[None, None])
            self.fc = nn.Linear(8, 1)
            with torch.no_grad():
                self.fc.weight.fill_(0.05)
                self.fc.bias.fill_(-1.0)
            self.area = float(mask.sum())
            self.meta: dict = {}
            self.batch_size = 16
            self.eval()

        @property
        def gradcam_layer(self):
            return self.masked

        @property
        def input_size(self) -> int:
            return int(self.config["input_size"])

        @property
        def mean(self) -> tuple[float, ...]:
            return tuple(self.config["mean"])

        @property
        def std(self) -> tuple[float, ...]:
            return tuple(self.config["std"])

        @property
        def threshold(self) -> float:
            return 0.5

        def preprocess(self, frames):
            return preprocess_frames(frames, input_size, self.config["mean"], self.config["std"])

        def features(self, x):
            return self.masked(F.relu(self.conv(x)) ** 2)

        def forward(self, x):
            f = self.features(x)
            pooled = f.sum(dim=(2, 3)) / self.area
            return self.fc(pooled)

        def frame_logits(self, frames):
            """All frames in one batch, float64 (the toy is small)."""
            x = self.preprocess(frames)
            return batched_logits(self, x, max(1, len(x))).astype(np.float64)

        def aggregate(self, logits):
            return aggregate_logits(logits, "mean_logit")

        def video_score(self, frames):
            return self.aggregate(self.frame_logits(frames))

        def _attention_at(self, x, size):
            m = F.adaptive_avg_pool2d(self.masked.mask.expand(len(x), 1, -1, -1), size)
            energy = F.adaptive_avg_pool2d(F.relu(self.conv(x)).mean(1, keepdim=True), size)
            return 6.0 * m + 0.1 * energy

        def attention(self, x):
            if arch == "ltpa":
                maps = []
                for div in (4, 8, 16):
                    c = self._attention_at(x, max(1, input_size // div))
                    n, _, h, w = c.shape
                    maps.append(torch.softmax(c.reshape(n, -1), dim=1).reshape(n, 1, h, w))
                return maps
            return torch.sigmoid(self._attention_at(x, max(1, input_size // 8)) - 3.0)

    return RegionDetector()


def textured_clip(frames: int = 4, size: int = 64, seed: int = 0) -> np.ndarray:
    """A (T, size, size, 3) uint8 clip of smooth random texture drifting over time."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(size // 4 + 2, size // 4 + 2, 3)).astype(np.float32)
    import cv2

    big = cv2.resize(base, (size + 16, size + 16), interpolation=cv2.INTER_CUBIC)
    out = [big[t : t + size, t : t + size] for t in range(frames)]
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)
