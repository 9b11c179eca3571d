"""Deepfake detectors: architectures, registry, checkpoints, training and evaluation.

``create_detector(arch, backbone, input_size, pretrained)`` builds ``plain``,
``bonettini``, ``ltpa`` (timm EfficientNet backbones), ``xception`` or ``mesoinception4``;
``load_detector(name_or_path)`` loads a demo checkpoint (``plain``/``bonettini``/``ltpa``
from ``models/``), a project checkpoint or a polimi-ispl/icpr2020dfdc state dict. Every
detector implements :class:`~xai_study.detectors.contract.VideoDetector` (see
:mod:`xai_study.detectors.contract`).
"""

from xai_study.detectors.checkpoint import (
    checkpoint_info,
    load_detector,
    save_checkpoint,
)
from xai_study.detectors.contract import (
    AttentionDetector,
    FrameClassifier,
    VideoDetector,
    aggregate_logits,
    batched_logits,
    sigmoid,
)
from xai_study.detectors.models import (
    ARCHS,
    Detector,
    create_detector,
    list_detectors,
)

__all__ = [
    "ARCHS",
    "AttentionDetector",
    "Detector",
    "FrameClassifier",
    "VideoDetector",
    "aggregate_logits",
    "batched_logits",
    "checkpoint_info",
    "create_detector",
    "list_detectors",
    "load_detector",
    "save_checkpoint",
    "sigmoid",
]
