"""Common shape of every metric: a small class carrying its reference and direction.

Modelled on Quantus: a metric object is configured once (its hyper-parameters are
constructor arguments) and then called on plain arrays. Each class states

- ``name``: the short key used in tables and JSON,
- ``reference``: the paper that defines it,
- ``higher_is_better``: the score direction (``None`` where neither direction is
  "better", e.g. the paper's descriptive variance V),
- ``value_range``: the closed interval the score lies in,

and its docstring gives the exact definition. A score is a Python ``float``; ``nan``
means "undefined for this input" (every frame was skipped) and is written ``null`` in
JSON.
"""

from __future__ import annotations

import math

import numpy as np

from xai_study.maps import normalise

NAN = float("nan")


class Metric:
    """Base class: subclasses implement :meth:`__call__` and fill the class attributes."""

    name: str = ""
    reference: str = ""
    higher_is_better: bool | None = None
    value_range: tuple[float, float] = (-math.inf, math.inf)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MapMetric(Metric):
    """A metric of the explanation maps alone (design §2: non-negative view, clip min–max).

    ``signed`` (constructor default, overridable per call) says whether the maps come
    from a signed explainer (SHAP, LIME, integrated gradients), whose negative evidence
    is dropped before normalising.
    """

    def __init__(self, signed: bool = False):
        self.signed = signed

    def view(self, maps, signed: bool | None = None) -> np.ndarray:
        """The normalised (T, H, W) float64 view the metric is defined on."""
        return normalise(maps, self.signed if signed is None else signed)

    def __call__(self, maps, signed: bool | None = None) -> float:
        return self.score(self.view(maps, signed))

    def score(self, n: np.ndarray) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


def nanmean_or_nan(values) -> float:
    """Mean of a list of floats; ``nan`` for an empty list (all frames skipped)."""
    values = [float(v) for v in values]
    return float(np.mean(values)) if values else NAN


def to_json_value(value):
    """A float for JSON: ``nan``/``inf`` become ``None`` (``null``)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
