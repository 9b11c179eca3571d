"""Static "same" padding, as efficientnet_pytorch builds it for a fixed image size.

timm's TensorFlow-ported EfficientNets (``tf_efficientnet_*``) pad their strided convs
*dynamically* ("same" for the actual input size). ``EfficientNet.from_pretrained`` of
efficientnet_pytorch instead computes the paddings once, for the variant's native
resolution (380 px for B4), and keeps them for every input size. A network trained that
way (icpr2020dfdc runs B4 on 224-px faces) only gives its own outputs with the same fixed
paddings: :func:`freeze_same_padding` swaps timm's ``Conv2dSame`` modules for
:class:`StaticSameConv2d` with the paddings of a given image size. Used by the model
registry (``config["same_padding_size"]``) and by warm starts from such a model.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn


def _pair(v: tuple[int, ...]) -> tuple[int, int]:
    return int(v[0]), int(v[1])


class StaticSameConv2d(nn.Conv2d):
    """A Conv2d with a fixed asymmetric zero padding (left, right, top, bottom) applied
    before the convolution, like efficientnet_pytorch's ``Conv2dStaticSamePadding``."""

    def __init__(self, conv: nn.Conv2d, pad: tuple[int, int, int, int]):
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            _pair(conv.kernel_size),
            stride=_pair(conv.stride),
            padding=0,
            dilation=_pair(conv.dilation),
            groups=conv.groups,
            bias=conv.bias is not None,
        )
        self.static_pad = tuple(int(p) for p in pad)
        with torch.no_grad():
            self.weight.copy_(conv.weight)
            if conv.bias is not None and self.bias is not None:
                self.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.static_pad):
            x = F.pad(x, self.static_pad)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _same_pad(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def freeze_same_padding(backbone: nn.Module, image_size: int) -> int:
    """Replace timm's dynamic-"same" convs (``Conv2dSame``) by fixed paddings computed for
    ``image_size`` (efficientnet_pytorch's static padding). Returns how many were fixed."""
    from timm.layers.conv2d_same import Conv2dSame

    sizes: dict[str, tuple[int, int]] = {}
    hooks = []
    for name, mod in backbone.named_modules():
        if isinstance(mod, Conv2dSame):
            hooks.append(
                mod.register_forward_pre_hook(
                    lambda m, a, n=name: sizes.__setitem__(n, tuple(a[0].shape[-2:]))
                )
            )
    if not hooks:
        return 0
    try:
        was_training = backbone.training
        backbone.eval()
        with torch.no_grad():
            x = torch.zeros(1, 3, image_size, image_size, device=next(backbone.parameters()).device)
            cast(Any, backbone).forward_features(x)  # a timm model
        backbone.train(was_training)
    finally:
        for hook in hooks:
            hook.remove()
    for name, (h, w) in sizes.items():
        parent_name, _, attr = name.rpartition(".")
        parent = backbone.get_submodule(parent_name) if parent_name else backbone
        conv = getattr(parent, attr)
        ph = _same_pad(h, conv.kernel_size[0], conv.stride[0], conv.dilation[0])
        pw = _same_pad(w, conv.kernel_size[1], conv.stride[1], conv.dilation[1])
        setattr(parent, attr, StaticSameConv2d(conv, (pw[0], pw[1], ph[0], ph[1])))
    return len(sizes)
