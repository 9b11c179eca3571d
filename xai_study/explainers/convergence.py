"""Convergence figures of the sampling explainers (SHAP-3D, LIME-3D).

A sampled explanation is only worth reading when another run with another seed would
give the same supervoxel ranking. Efficiency (the values summing to
``f(clip) - f(baseline)``) is no such check: Kernel SHAP enforces it by construction at
any budget. The figure used here is **split-half agreement**: the budget is spent as two
independent halves (different random streams), each half gives its own estimate of the
supervoxel values, and

- ``split_half_spearman`` is the Spearman rank correlation between the two halves'
  values;
- ``agreement`` is the Spearman–Brown prediction ``2 r / (1 + r)`` of the correlation
  between two *full-budget* runs with different seeds (the reported values are the
  mean of the two halves, a full-budget estimate); ``1`` for exact enumeration;
- ``se_mean`` / ``se_max`` are standard errors of the reported values from the halves'
  differences (``|a - b| / 2`` per independent estimate, combined over frames), and
  ``se_relative`` is ``se_mean / mean |value|``.

:func:`convergence_warning` says when the figure is poor: ``agreement`` below
:data:`POOR_AGREEMENT` (0.9), i.e. two runs with different seeds would be expected to
rank the supervoxels with a Spearman correlation under 0.9.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Below this predicted seed-to-seed Spearman agreement a sampled explanation is "poor".
POOR_AGREEMENT = 0.9


#: Values smaller than this fraction of the largest |value| rank as 0 (ties): a null
#: player's estimate is 0 up to rounding, and ranking rounding noise is no disagreement.
ZERO_TOLERANCE = 1e-9


def rank_correlation(a, b) -> float:
    """Spearman rank correlation of two vectors; ``nan`` when either is constant.

    Entries below :data:`ZERO_TOLERANCE` of the largest magnitude in either vector
    count as exactly 0.
    """
    from scipy.stats import spearmanr

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    a = np.where(np.abs(a) <= ZERO_TOLERANCE * scale, 0.0, a)
    b = np.where(np.abs(b) <= ZERO_TOLERANCE * scale, 0.0, b)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def spearman_brown(r: float) -> float:
    """Predicted correlation of two estimates of twice the budget: ``2 r / (1 + r)``."""
    if not np.isfinite(r):
        return float("nan")
    if r <= -1.0:
        return -1.0
    return float(2.0 * r / (1.0 + r))


def split_half_figure(
    half_a: np.ndarray,
    half_b: np.ndarray,
    method: str,
    se: np.ndarray | None = None,
    **more: Any,
) -> dict[str, Any]:
    """The convergence figure from two independent half-budget estimates of the values.

    ``se`` (per value) defaults to ``|a - b| / 2``, the standard error of the mean of
    two independent estimates.
    """
    a = np.asarray(half_a, dtype=np.float64).ravel()
    b = np.asarray(half_b, dtype=np.float64).ravel()
    values = 0.5 * (a + b)
    se = 0.5 * np.abs(a - b) if se is None else np.asarray(se, dtype=np.float64).ravel()
    r = rank_correlation(a, b)
    scale = float(np.mean(np.abs(values))) if values.size else 0.0
    return {
        "method": method,
        "split_half_spearman": _round(r),
        "agreement": _round(spearman_brown(r)),
        "se_mean": _round(float(se.mean()) if se.size else 0.0),
        "se_max": _round(float(se.max()) if se.size else 0.0),
        "se_relative": _round(float(se.mean()) / scale if scale > 0 else float("nan")),
        **more,
    }


def exact_figure(**more: Any) -> dict[str, Any]:
    """The figure of exactly computed values: agreement 1, no sampling error."""
    return {
        "method": "exact",
        "split_half_spearman": 1.0,
        "agreement": 1.0,
        "se_mean": 0.0,
        "se_max": 0.0,
        "se_relative": 0.0,
        **more,
    }


def convergence_warning(figure: dict[str, Any] | None) -> str | None:
    """A one-line warning when ``figure`` (``Explanation.extra["convergence"]``) is poor,
    else ``None``: poor means a predicted seed-to-seed agreement below
    :data:`POOR_AGREEMENT` (or an undefined one, e.g. every value equal)."""
    if not figure:
        return None
    agreement = figure.get("agreement")
    if agreement is not None and agreement >= POOR_AGREEMENT:
        return None
    shown = "undefined" if agreement is None else f"{agreement:.2f}"
    return (
        f"the sampled values have not converged: predicted agreement between two seeds "
        f"{shown} < {POOR_AGREEMENT} (split-half Spearman "
        f"{figure.get('split_half_spearman')}); raise the sample budget"
    )


def is_poor(figure: dict[str, Any] | None) -> bool:
    """True when :func:`convergence_warning` would warn."""
    return convergence_warning(figure) is not None


def _round(x: float, digits: int = 4) -> float | None:
    """``digits`` significant digits; ``None`` (JSON ``null``) when undefined."""
    if x is None or not np.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")
