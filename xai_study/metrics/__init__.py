"""Explanation metrics (design §2): small classes over plain arrays.

Every metric carries ``name``, ``reference``, ``higher_is_better`` and ``value_range``
and documents its exact definition. Map metrics take ``(maps, signed=...)``; localisation
metrics ``(maps, mask)``; faithfulness metrics ``(frames, maps, detector_or_scorer)``;
the sanity check ``(explain_fn, detector)``.
"""

from xai_study.metrics.base import Metric, to_json_value
from xai_study.metrics.faithfulness import (
    DeletionAUC,
    InsertionAUC,
    baseline_frames,
    density_segments,
    detector_scorer,
)
from xai_study.metrics.localisation import (
    PointingGame,
    RelevanceMassAccuracy,
    localisation_metrics,
    prepare_mask,
)
from xai_study.metrics.paper import (
    PAPER_METRICS,
    Centredness,
    Intensity,
    InterFrameConsistency,
    IntraFrameConsistency,
    Variance,
    paper_metrics,
)
from xai_study.metrics.sanity import ModelParameterRandomisation, randomise_model, spearman

ALL_METRICS = (
    Variance,
    InterFrameConsistency,
    IntraFrameConsistency,
    Centredness,
    Intensity,
    RelevanceMassAccuracy,
    PointingGame,
    DeletionAUC,
    InsertionAUC,
    ModelParameterRandomisation,
)

__all__ = [
    "ALL_METRICS",
    "PAPER_METRICS",
    "Centredness",
    "DeletionAUC",
    "InsertionAUC",
    "Intensity",
    "InterFrameConsistency",
    "IntraFrameConsistency",
    "Metric",
    "ModelParameterRandomisation",
    "PointingGame",
    "RelevanceMassAccuracy",
    "Variance",
    "baseline_frames",
    "density_segments",
    "detector_scorer",
    "localisation_metrics",
    "paper_metrics",
    "prepare_mask",
    "randomise_model",
    "spearman",
    "to_json_value",
]
