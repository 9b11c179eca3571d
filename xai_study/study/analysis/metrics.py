"""Objective metrics per explainer: the paper's table and ``xai-study evaluate``
summaries, to correlate with the participants' preference."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xai_study.errors import StudyError
from xai_study.explainers import paper_explainers
from xai_study.metrics.paper import PAPER_RESULTS

METRIC_NAMES = ("V", "tau", "rho", "mu", "I")
_METRIC_ALIASES = {
    "v": "V",
    "variance": "V",
    "tau": "tau",
    "τ": "tau",
    "interframe": "tau",
    "interframeconsistency": "tau",
    "rho": "rho",
    "ρ": "rho",
    "intraframe": "rho",
    "intraframeconsistency": "rho",
    "mu": "mu",
    "μ": "mu",
    "centredness": "mu",
    "centeredness": "mu",
}

#: The paper's objective metrics (mean over 58 fake videos), indexed by registry name.
PAPER_METRICS = pd.DataFrame(
    [[PAPER_RESULTS[name][m] for m in METRIC_NAMES] for name in paper_explainers()],
    index=pd.Index(paper_explainers(), name="explainer"),
    columns=list(METRIC_NAMES),
)


def _squash(text: object) -> str:
    return "".join(ch for ch in str(text).lower() if ch.isalnum())


def _metric_name(name: object) -> str | None:
    """``V``, ``tau``, ``rho`` or ``mu`` for a metric name or alias (``τ``, ``Variance``)."""
    text = str(name).strip().lower()
    return _METRIC_ALIASES.get(text) or _METRIC_ALIASES.get(_squash(text))


def load_metrics(path: str | Path) -> pd.DataFrame:
    """Objective metrics per explainer from an ``xai-study evaluate`` ``summary.csv``.

    Accepts a wide table (an ``explainer`` column and metric columns ``V, tau, rho, mu``,
    optionally suffixed ``_mean``) or a long one (``explainer, metric, mean|value``; with
    a ``group`` column, as ``evaluate`` writes, only the ``fake`` rows are used).
    Returns a table indexed by explainer with the columns found among V, tau, rho, mu.
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"metrics file not found: {path}")
    try:
        raw = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StudyError(f"cannot read metrics file {path}: {exc}") from None
    return metrics_table(raw, source=str(path))


def _long_to_wide(raw: pd.DataFrame, cols: dict[str, str], name_col: str) -> pd.DataFrame:
    value_col = cols.get("mean", cols.get("value"))
    if "group" in cols:  # evaluate's summary: the paper's metrics are over fake videos
        groups = raw[cols["group"]].astype(str).str.lower()
        if (groups == "fake").any():
            raw = raw[groups == "fake"]
    long = raw[[name_col, cols["metric"], value_col]].copy()
    long.columns = ["explainer", "metric", "value"]
    long["metric"] = long["metric"].map(_metric_name)
    long = long.dropna(subset=["metric"])
    return long.pivot_table(index="explainer", columns="metric", values="value", aggfunc="mean")


def _wide(raw: pd.DataFrame, name_col: str, source: str) -> pd.DataFrame:
    picked = {}
    for col in raw.columns:
        key = str(col).strip().lower()
        for suffix in ("_mean", " mean", "mean"):
            if key.endswith(suffix) and key != suffix:
                key = key[: -len(suffix)]
                break
        metric = _metric_name(key)
        if metric and metric not in picked:
            picked[metric] = col
    if not picked:
        raise StudyError(f"{source}: no metric columns among V, tau, rho, mu")
    wide = raw.groupby(name_col)[list(picked.values())].mean()
    wide.columns = list(picked.keys())
    wide.index.name = "explainer"
    return wide


def metrics_table(raw: pd.DataFrame, source: str = "metrics") -> pd.DataFrame:
    """Normalise a wide or long metrics table (see :func:`load_metrics`)."""
    cols = {_squash(c): c for c in raw.columns}
    name_col = next((cols[k] for k in ("explainer", "name", "method") if k in cols), None)
    if name_col is None:
        raise StudyError(f"{source}: needs an 'explainer' column")
    if "metric" in cols and any(k in cols for k in ("mean", "value")):
        wide = _long_to_wide(raw, cols, name_col)
    else:
        wide = _wide(raw, name_col, source)
    wide = wide[[m for m in METRIC_NAMES if m in wide.columns]].astype(float)
    if wide.empty:
        raise StudyError(f"{source}: no metric values found")
    wide.index = wide.index.astype(str)
    return wide
