"""Explainers of video deepfake detectors behind one interface (see ``base``).

Importing this package registers every explainer: ``gradcam``, ``shap3d``, ``ltpa``,
``bonettini`` (the paper's four), ``lime3d``, ``saliency`` and ``integrated_gradients``,
and the null explainers ``null_centre``, ``null_supervoxels``, ``null_random_model``.
"""

# Each module registers its explainer on import.
from xai_study.explainers import (  # noqa: E402,F401
    bonettini,
    gradcam,
    integrated_gradients,
    lime3d,
    ltpa,
    nulls,
    saliency,
    shap3d,
)
from xai_study.explainers.base import (
    Explainer,
    Explanation,
    canonical_name,
    create_explainer,
    explainer_choices,
    explainer_class,
    explainer_label,
    list_explainers,
    null_explainers,
    paper_explainers,
    register,
    study_explainers,
)

__all__ = [
    "Explainer",
    "Explanation",
    "canonical_name",
    "create_explainer",
    "explainer_choices",
    "explainer_class",
    "explainer_label",
    "list_explainers",
    "null_explainers",
    "paper_explainers",
    "register",
    "study_explainers",
]
