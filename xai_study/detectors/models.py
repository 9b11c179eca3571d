"""Detector architectures: plain EfficientNet, Bonettini auto-attention, LTPA, Xception,
MesoInception-4.

Every detector maps a batch of normalised face crops ``(N, 3, S, S)`` to one logit per
image ``(N, 1)``; ``P(fake) = sigmoid(logit)``. The :class:`Detector` base class
implements the rest of the detector contract
(:class:`xai_study.detectors.contract.VideoDetector`: ``preprocess``, ``frame_logits``,
``aggregate``, ``video_score``, ``threshold``, normalisation and the ``config``
dictionary saved in checkpoints) once for all architectures.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xai_study.detectors.contract import (
    aggregate_logits,
    batched_logits,
    check_aggregation,
    detector_device,
    preprocess_frames,
)
from xai_study.detectors.padding import freeze_same_padding
from xai_study.errors import XaiStudyError

if TYPE_CHECKING:
    from xai_study.detectors.contract import AttentionDetector, VideoDetector

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)


class Detector(nn.Module):
    """Base class: a binary real/fake frame classifier with one output logit.

    Implements :class:`~xai_study.detectors.contract.VideoDetector` for its subclasses,
    which add ``forward`` and ``gradcam_layer`` (and ``attention`` where they have it).
    """

    arch: str = ""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        cfg = dict(config)
        cfg.setdefault("aggregation", "mean_logit")
        check_aggregation(cfg["aggregation"])
        self.config: dict[str, Any] = cfg
        self.meta: dict[str, Any] = {}  # what a checkpoint says (load_detector fills it)
        self.source: str | None = None  # the file it was loaded from
        self.batch_size = 32

    # -- subclasses implement forward() and gradcam_layer ------------------------------
    @property
    def gradcam_layer(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return detector_device(self)

    @property
    def input_size(self) -> int:
        return int(self.config["input_size"])

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.config["mean"])

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.config["std"])

    @property
    def threshold(self) -> float:
        """Video P(fake) at or above which the detector calls a video fake: the one
        ``evaluate-detector --save-threshold`` stored in the checkpoint, else 0.5. It is
        on the calibrated scale (``meta["calibration"]``; the raw scale when there is
        none): compare it with ``calibration_of(detector).video_p(logits)``, not with
        ``aggregate(logits)``."""
        t = (self.meta or {}).get("threshold") or {}
        return float(t.get("p_fake", 0.5))

    def attention(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        raise XaiStudyError(f"the {self.arch!r} detector has no attention maps")

    # -- video helpers -------------------------------------------------------------------
    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 frames ``(T, H, W, 3)`` (or one ``(H, W, 3)``) -> normalised float tensor
        ``(T, 3, S, S)`` on the detector's device, resized to the input size."""
        return preprocess_frames(
            frames, self.input_size, self.config["mean"], self.config["std"], self.device
        )

    def frame_logits(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """One logit per frame, ``(T,)`` float32 (eval mode, batched)."""
        was_training = self.training
        self.eval()
        try:
            logits = batched_logits(self, self.preprocess(frames), self.batch_size)
        finally:
            self.train(was_training)
        return logits.astype(np.float32)

    def aggregate(self, logits: np.ndarray) -> float:
        """Video-level P(fake) from frame logits, by ``config["aggregation"]``."""
        return aggregate_logits(logits, self.config.get("aggregation", "mean_logit"))

    def video_score(self, frames: np.ndarray | torch.Tensor) -> float:
        """Video-level P(fake) (sigmoid of the mean frame logit by default)."""
        return self.aggregate(self.frame_logits(frames))


# ---------------------------------------------------------------------------------------
# EfficientNet family (timm)
# ---------------------------------------------------------------------------------------


def efficientnet_backbones() -> list[str]:
    import timm

    return sorted(
        m
        for m in timm.list_models("*efficientnet*")
        if m.startswith(("efficientnet_", "tf_efficientnet_"))
        and not m.startswith(("efficientnet_x", "efficientnet_h", "efficientnet_cc"))
        and "cc_" not in m
        and "blur" not in m
    )


def _timm_trunk(name: str) -> Any:
    """A timm model without classifier and pooling, randomly initialised (``Any``: timm
    types its models as ``nn.Module``, whose submodules a type checker cannot see)."""
    import timm

    return timm.create_model(name, pretrained=False, num_classes=0, global_pool="")


def _make_efficientnet(backbone: str) -> Any:
    """A timm EfficientNet without head (``Any``: its submodules ``conv_stem``, ``bn1``,
    ``blocks`` (7 stages), ``conv_head``, ``bn2`` are not visible to a type checker)."""

    known = efficientnet_backbones()
    if backbone not in known:
        lite = ", ".join(m for m in known if "lite" in m or m.endswith(("_b0", "_b4", "_b7")))
        raise XaiStudyError(
            f"unknown EfficientNet backbone {backbone!r}; use a timm EfficientNet "
            f"name such as {lite}"
        )
    net = _timm_trunk(backbone)
    if not hasattr(net, "blocks") or len(net.blocks) != 7:
        raise XaiStudyError(f"backbone {backbone!r} does not have the 7 EfficientNet stages")
    return net


class EfficientNetDetector(Detector):
    """**plain**: timm EfficientNet -> global average pool -> dropout -> Linear(C, 1)."""

    arch = "plain"

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.backbone: Any = _make_efficientnet(self.config["backbone"])
        if self.config.get("same_padding_size"):
            freeze_same_padding(self.backbone, int(self.config["same_padding_size"]))
        self.num_features = int(self.backbone.num_features)
        self.dropout = nn.Dropout(float(self.config.get("dropout", 0.2)))
        self.classifier = nn.Linear(self.num_features, 1)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.bn1(self.backbone.conv_stem(x))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.bn2(self.backbone.conv_head(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.backbone.blocks(x)
        return self.head(x)

    def logits_from_features(self, f: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(f.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.features(x))

    def trunk(self, x: torch.Tensor, stages: int) -> torch.Tensor:
        """Stem + the first ``stages`` stages: the input of :meth:`forward_from`."""
        x = self.stem(x)
        for i in range(stages):
            x = self.backbone.blocks[i](x)
        return x

    def forward_from(self, h: torch.Tensor, start: int) -> torch.Tensor:
        """Logits from the output ``h`` of stage ``start - 1`` (``forward(x) ==
        forward_from(trunk(x, k), k)``); lets training cache a frozen trunk."""
        for i in range(start, len(self.backbone.blocks)):
            h = self.backbone.blocks[i](h)
        return self.logits_from_features(self.head(h))

    @property
    def gradcam_layer(self) -> nn.Module:
        """Last convolutional feature map (conv_head + BN + activation)."""
        return self.backbone.bn2


class BonettiniDetector(EfficientNetDetector):
    """**bonettini** (EfficientNetAutoAtt, Bonettini et al. 2020): after the stride-8 stage
    (``blocks[2]``; block index 9 of B4 in efficientnet_pytorch numbering) a 1x1 conv +
    sigmoid makes a single attention map that multiplies the features; the rest of the
    network is unchanged."""

    arch = "bonettini"
    att_stage = 2

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        ch = _stage_channels(self.backbone, self.att_stage)
        self.attconv = nn.Conv2d(ch, 1, kernel_size=1)

    def _to_attention(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(self.att_stage + 1):
            x = self.backbone.blocks[i](x)
        return x

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention map ``(N, 1, S/8, S/8)`` in [0, 1]."""
        return torch.sigmoid(self.attconv(self._to_attention(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._to_attention(x)
        x = x * torch.sigmoid(self.attconv(x))
        for i in range(self.att_stage + 1, len(self.backbone.blocks)):
            x = self.backbone.blocks[i](x)
        return self.head(x)

    def forward_from(self, h: torch.Tensor, start: int) -> torch.Tensor:
        if start > self.att_stage + 1:
            raise ValueError(f"bonettini: start must be at most {self.att_stage + 1}")
        for i in range(start, self.att_stage + 1):
            h = self.backbone.blocks[i](h)
        h = h * torch.sigmoid(self.attconv(h))
        return super().forward_from(h, self.att_stage + 1)


class LTPADetector(EfficientNetDetector):
    """**ltpa** (Learn To Pay Attention, Jetley et al. 2018) on an EfficientNet trunk.

    Local features ``l_s`` are the outputs of the stride-8, 16 and 32 stages
    (``blocks[2]``, ``blocks[4]``, ``blocks[6]``), projected to a common width ``C`` by
    1x1 convs; the global feature ``g`` is the pooled final feature map projected to
    ``C``. Compatibility ``c_s = Conv2d(C, 1, 1, bias=False)(l_s + g)`` ("pc" form),
    attention ``a_s = softmax`` over the spatial positions of ``c_s``, attended descriptor
    ``g_s = sum(a_s * l_s)``; the classifier sees ``concat(g_1, g_2, g_3)``.
    """

    arch = "ltpa"
    local_stages = (2, 4, 6)

    def __init__(self, config: dict[str, Any]):
        config = dict(config)
        config.setdefault("ltpa_width", 256)
        super().__init__(config)
        width = int(self.config["ltpa_width"])
        self.project = nn.ModuleList(
            nn.Conv2d(_stage_channels(self.backbone, s), width, kernel_size=1, bias=False)
            for s in self.local_stages
        )
        self.global_proj = nn.Linear(self.num_features, width)
        self.compat = nn.ModuleList(
            nn.Conv2d(width, 1, kernel_size=1, bias=False) for _ in self.local_stages
        )
        self.classifier = nn.Linear(width * len(self.local_stages), 1)

    def _run(self, x: torch.Tensor, start: int | None = None):
        """Attention maps and concatenated descriptors; ``start > 0``: ``x`` is the
        output of stage ``start - 1`` (see :meth:`forward_from`)."""
        if start is None:
            x, start = self.stem(x), 0
        elif start > self.local_stages[0] + 1:
            raise ValueError(f"ltpa: start must be at most {self.local_stages[0] + 1}")
        locals_ = [x] if start - 1 in self.local_stages else []
        for i in range(start, len(self.backbone.blocks)):
            x = self.backbone.blocks[i](x)
            if i in self.local_stages:
                locals_.append(x)
        f = self.head(x)
        g = self.global_proj(f.mean(dim=(2, 3)))  # (N, C)
        maps, descs = [], []
        for proj, compat, loc in zip(self.project, self.compat, locals_, strict=True):
            lp = proj(loc)  # (N, C, h, w)
            c = compat(lp + g[:, :, None, None])  # (N, 1, h, w)
            n, _, h, w = c.shape
            a = torch.softmax(c.reshape(n, -1), dim=1).reshape(n, 1, h, w)
            maps.append(a)
            descs.append((a * lp).sum(dim=(2, 3)))  # (N, C)
        return maps, torch.cat(descs, dim=1)

    def attention(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Three spatial-softmax maps ``(N, 1, h, w)`` (each sums to 1), at strides 8,
        16 and 32."""
        return self._run(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self._run(x)[1]))

    def forward_from(self, h: torch.Tensor, start: int) -> torch.Tensor:
        return self.classifier(self.dropout(self._run(h, start)[1]))


def _stage_channels(backbone: Any, stage: int) -> int:
    last = backbone.blocks[stage][-1]
    for name in ("conv_pwl", "conv_pw"):
        conv = getattr(last, name, None)
        if conv is not None:
            return int(conv.out_channels)
    raise XaiStudyError("cannot find the output width of the backbone stage")


# ---------------------------------------------------------------------------------------
# Xception (timm legacy_xception) and MesoInception-4
# ---------------------------------------------------------------------------------------


class XceptionDetector(Detector):
    """**xception**: timm ``legacy_xception`` -> average pool -> dropout -> Linear(2048, 1)."""

    arch = "xception"

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.backbone = _timm_trunk("legacy_xception")
        self.dropout = nn.Dropout(float(self.config.get("dropout", 0.2)))
        self.classifier = nn.Linear(int(self.backbone.num_features), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone.forward_features(x)
        return self.classifier(self.dropout(f.mean(dim=(2, 3))))

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.backbone.act4


class _Inception(nn.Module):
    """MesoInception block: 1x1 | 1x1->3x3 | 1x1->3x3 dil 2 | 1x1->3x3 dil 3, concatenated."""

    def __init__(self, cin: int, a: int, b: int, c: int, d: int):
        super().__init__()
        self.b1 = nn.Conv2d(cin, a, 1)
        self.b2 = nn.Sequential(nn.Conv2d(cin, b, 1), nn.ReLU(), nn.Conv2d(b, b, 3, padding=1))
        self.b3 = nn.Sequential(
            nn.Conv2d(cin, c, 1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=2, dilation=2)
        )
        self.b4 = nn.Sequential(
            nn.Conv2d(cin, d, 1), nn.ReLU(), nn.Conv2d(d, d, 3, padding=3, dilation=3)
        )
        self.bn = nn.BatchNorm2d(a + b + c + d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1)
        return F.max_pool2d(self.bn(F.relu(y)), 2)


class MesoInception4(Detector):
    """**mesoinception4** (Afchar et al. 2018, MesoNet): two inception blocks, two 5x5
    conv blocks, Dense(16) + LeakyReLU, Dense(1). An adaptive pool to 8x8 makes any input
    size work (the original uses 256x256 inputs, where it is the identity)."""

    arch = "mesoinception4"

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.inc1 = _Inception(3, 1, 4, 4, 2)
        self.inc2 = _Inception(11, 2, 4, 4, 2)
        self.conv3 = nn.Sequential(nn.Conv2d(12, 16, 5, padding=2), nn.ReLU(), nn.BatchNorm2d(16))
        self.conv4 = nn.Sequential(nn.Conv2d(16, 16, 5, padding=2), nn.ReLU(), nn.BatchNorm2d(16))
        self.pool = nn.AdaptiveAvgPool2d((8, 8))
        self.head_ = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(16 * 8 * 8, 16),
            nn.LeakyReLU(0.1),
            nn.Dropout(0.5),
            nn.Linear(16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inc2(self.inc1(x))
        x = F.max_pool2d(self.conv3(x), 2)
        x = F.max_pool2d(self.conv4(x), 4, ceil_mode=True)
        return self.head_(self.pool(x))

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.conv4


ARCHS: dict[str, type[Detector]] = {
    "plain": EfficientNetDetector,
    "bonettini": BonettiniDetector,
    "ltpa": LTPADetector,
    "xception": XceptionDetector,
    "mesoinception4": MesoInception4,
}

DEFAULT_BACKBONE = {
    "plain": "efficientnet_lite0",
    "bonettini": "efficientnet_lite0",
    "ltpa": "efficientnet_lite0",
    "xception": "legacy_xception",
    "mesoinception4": "mesoinception4",
}


def list_detectors() -> list[str]:
    """Names of the architectures ``create_detector`` accepts."""
    return list(ARCHS)


def default_normalisation(arch: str, backbone: str) -> tuple[tuple, tuple]:
    if arch in ("xception", "mesoinception4") or backbone.startswith("tf_"):
        return HALF_MEAN, HALF_STD
    return IMAGENET_MEAN, IMAGENET_STD


def create_detector(
    arch: str,
    backbone: str = "efficientnet_lite0",
    input_size: int = 224,
    pretrained: bool = False,
    **options: Any,
) -> Detector:
    """Build a detector with random (or ImageNet, ``pretrained=True``) initialisation.

    ``arch``: ``plain``, ``bonettini``, ``ltpa`` (timm EfficientNet ``backbone``), or
    ``xception`` / ``mesoinception4`` (their own fixed backbone; ``backbone`` ignored).
    ``options``: ``dropout``, ``aggregation`` (``mean_logit``/``mean_prob``/``median``),
    ``ltpa_width``, ``mean``, ``std``.
    """
    if arch not in ARCHS:
        raise XaiStudyError(f"unknown detector {arch!r}; choose one of {', '.join(ARCHS)}")
    if not isinstance(input_size, int | np.integer) or not 32 <= int(input_size) <= 1024:
        raise XaiStudyError(f"input size must be an integer in 32..1024, got {input_size!r}")
    if arch in ("xception", "mesoinception4"):
        backbone = DEFAULT_BACKBONE[arch]
    mean, std = default_normalisation(arch, backbone)
    config: dict[str, Any] = {
        "arch": arch,
        "backbone": backbone,
        "input_size": int(input_size),
        "mean": list(options.pop("mean", mean)),
        "std": list(options.pop("std", std)),
    }
    config.update(options)
    model = ARCHS[arch](config)
    _init_head(model)
    if pretrained:
        from xai_study.detectors.pretrained import load_imagenet_backbone

        load_imagenet_backbone(model)
        model.config["pretrained"] = "imagenet"
    model.eval()
    return model


def _init_head(model: Detector) -> None:
    """Small, zero-bias classifier init so an untrained detector starts near P=0.5."""
    clf = getattr(model, "classifier", None)
    if isinstance(clf, nn.Linear):
        nn.init.normal_(clf.weight, std=1.0 / math.sqrt(clf.in_features))
        nn.init.zeros_(clf.bias)


if TYPE_CHECKING:  # mypy (tests/test_types.py) checks that the classes fit the contract

    def _implements_contract(plain: EfficientNetDetector, att: BonettiniDetector) -> None:
        detector: VideoDetector = plain
        attention: AttentionDetector = att
        del detector, attention
