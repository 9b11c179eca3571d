"""Load polimi-ispl/icpr2020dfdc checkpoints (EfficientNetB4, EfficientNetAutoAttB4).

Their weight files are plain state dicts, or training checkpoints ``dict(net=state_dict,
...)``, with ``efficientnet_pytorch`` key names (``efficientnet._conv_stem.weight``,
``efficientnet._blocks.9._project_conv.weight``, ``efficientnet.attconv.weight``,
``classifier.weight``). They map onto a timm ``tf_efficientnet_b4`` (TensorFlow "same"
padding, BN eps 1e-3) inside the project's ``plain`` / ``bonettini`` detectors.

One detail matters for exact outputs: ``EfficientNet.from_pretrained('efficientnet-b4')``
builds *static* "same" padding computed for its native 380x380 resolution, and
icpr2020dfdc runs those convs on 224x224 faces. The project model reproduces that with
``config["same_padding_size"] = 380`` (fixed paddings computed at 380, see
:func:`xai_study.detectors.padding.freeze_same_padding`), so its logits match the original network.
"""

from __future__ import annotations

from typing import Any, cast

import torch

from xai_study.detectors.models import BonettiniDetector, EfficientNetDetector, create_detector
from xai_study.errors import CheckpointError

# efficientnet_pytorch variant -> (conv_head width, number of blocks, native resolution)
_VARIANTS = {
    "b0": (1280, 16, 224),
    "b1": (1280, 23, 240),
    "b2": (1408, 23, 260),
    "b3": (1536, 26, 300),
    "b4": (1792, 32, 380),
    "b5": (2048, 39, 456),
    "b6": (2304, 45, 528),
    "b7": (2560, 55, 600),
}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def _unwrap(obj: dict[str, Any]) -> dict[str, Any]:
    state = obj.get("net", obj) if isinstance(obj.get("net"), dict) else obj
    if any(isinstance(k, str) and k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def is_icpr_state(obj: dict[str, Any]) -> bool:
    """True when ``obj`` looks like an icpr2020dfdc state dict or training checkpoint."""
    state = _unwrap(obj)
    return any(isinstance(k, str) and k.startswith(("efficientnet.", "feat_ext.")) for k in state)


def load_icpr_state(
    obj: dict[str, Any], source: str = "checkpoint", input_size: int = 224
) -> EfficientNetDetector:
    """Build the project detector for an icpr2020dfdc state dict and load its weights."""
    from xai_study.detectors.pretrained import efficientnet_pytorch_to_timm

    state = _unwrap(obj)
    if any(k.startswith("feat_ext.") for k in state):
        raise CheckpointError(
            f"{source}: Siamese-tuned (ST) icpr2020dfdc models are not supported; "
            "use EfficientNetB4 or EfficientNetAutoAttB4 weights"
        )
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{source}: entry {k!r} is not a tensor")
    if "classifier.weight" not in state or "efficientnet._conv_head.weight" not in state:
        raise CheckpointError(f"{source}: icpr2020dfdc state dict without classifier or head")
    if any(k.startswith("efficientnet.attconv.") and k.count(".") > 2 for k in state):
        raise CheckpointError(
            f"{source}: attention with width > 0 (a conv stack) is not supported; "
            "only EfficientNetAutoAttB4 (1x1 attention conv) is"
        )
    head = int(state["efficientnet._conv_head.weight"].shape[0])
    nblocks = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("efficientnet._blocks."))
    variant = next((v for v, (h, n, _) in _VARIANTS.items() if (h, n) == (head, nblocks)), None)
    if variant is None:
        raise CheckpointError(
            f"{source}: unknown EfficientNet variant ({head} head channels, {nblocks} blocks)"
        )
    native = _VARIANTS[variant][2]
    has_att = "efficientnet.attconv.weight" in state
    if has_att and variant != "b4":
        raise CheckpointError(f"{source}: auto-attention is defined for B4 only, got {variant}")
    arch = "bonettini" if has_att else "plain"
    model = cast(
        EfficientNetDetector,
        create_detector(
            arch,
            backbone=f"tf_efficientnet_{variant}",
            input_size=input_size,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            dropout=0.4 if variant == "b4" else 0.2,
            same_padding_size=native,
            source_format="icpr2020dfdc",
        ),
    )
    backbone_state = {
        k.removeprefix("efficientnet."): v
        for k, v in state.items()
        if k.startswith("efficientnet.") and not k.startswith("efficientnet.attconv.")
    }
    mapped = efficientnet_pytorch_to_timm(backbone_state, model.backbone, source)
    missing, unexpected = model.backbone.load_state_dict(mapped, strict=False)
    if unexpected or missing:
        raise CheckpointError(
            f"{source}: backbone weights do not fit ({(missing + unexpected)[0]})"
        )
    extra = {"classifier.weight", "classifier.bias"}
    if has_att:
        extra |= {"efficientnet.attconv.weight", "efficientnet.attconv.bias"}
    for k in extra:
        if k not in state:
            raise CheckpointError(f"{source}: missing tensor {k!r}")
    try:
        model.classifier.load_state_dict(
            {"weight": state["classifier.weight"], "bias": state["classifier.bias"]}
        )
        if has_att:
            cast(BonettiniDetector, model).attconv.load_state_dict(
                {
                    "weight": state["efficientnet.attconv.weight"],
                    "bias": state["efficientnet.attconv.bias"],
                }
            )
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: {str(exc).splitlines()[0]}") from None
    model.meta = {"source": source, "format": "icpr2020dfdc", "variant": variant}
    model.source = source
    return model.eval()
