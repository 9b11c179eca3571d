"""The statistical tests: Wilson intervals, sign tests with Holm correction, chi-square
tests, Fleiss' kappa and the Spearman correlation of preference with the metrics."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from xai_study.study.analysis.cleaning import explainer_id

SIGN_TEST_COLUMNS = ("explainer_a", "explainer_b", "level", "n_a", "n_b", "p_value", "p_holm")
CORRELATION_COLUMNS = ("metric", "spearman_rho", "p_value", "n")


def wilson_interval(count: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for ``count`` successes out of ``n`` (NaN, NaN when n=0)."""
    if n <= 0:
        return (math.nan, math.nan)
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(count, n, alpha=alpha, method="wilson")
    return (float(low), float(high))


def sign_test(n_a: int, n_b: int) -> float:
    """Two-sided sign test: exact binomial test of ``n_a`` out of ``n_a + n_b`` vs 1/2."""
    from scipy.stats import binomtest

    if n_a + n_b == 0:
        return math.nan
    return float(binomtest(int(n_a), int(n_a + n_b), 0.5).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels ``multipletests(method="holm")``); NaN kept."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return [float(v) for v in out]


def fleiss_kappa_table(table: np.ndarray) -> tuple[float, str]:
    """Fleiss' kappa of a subjects x categories count table.

    With the same number of ratings per subject this is statsmodels' ``fleiss_kappa``;
    otherwise the usual extension to a varying number of raters is used (agreement
    ``P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1))`` per subject, category shares
    pooled over all ratings). Subjects with fewer than 2 ratings are left out.
    Returns (kappa, method).
    """
    table = np.asarray(table, dtype=float)
    if table.ndim != 2 or table.size == 0:
        return (math.nan, "none")
    n_i = table.sum(axis=1)
    table = table[n_i >= 2]
    n_i = n_i[n_i >= 2]
    if len(table) < 1:
        return (math.nan, "none")
    if np.all(n_i == n_i[0]):
        from statsmodels.stats.inter_rater import fleiss_kappa

        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            value = float(fleiss_kappa(table, method="fleiss"))
        return (value, "fleiss")
    p_i = ((table**2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    p_j = table.sum(axis=0) / table.sum()
    p_e = float((p_j**2).sum())
    if p_e >= 1.0:
        return (math.nan, "fleiss-unbalanced")
    return ((p_bar - p_e) / (1 - p_e), "fleiss-unbalanced")


def goodness_of_fit(counts: np.ndarray) -> dict[str, float | str]:
    """Chi-square goodness of fit of ``counts`` against equal shares."""
    from scipy.stats import chisquare

    nan = {"statistic": math.nan, "df": math.nan, "p_value": math.nan}
    if len(counts) < 2 or counts.sum() == 0:
        return nan
    stat, p = chisquare(counts)
    return {"statistic": float(stat), "df": float(len(counts) - 1), "p_value": float(p)}


def independence(table: np.ndarray) -> dict[str, float | str]:
    """Chi-square test of independence (no continuity correction; empty rows and columns
    dropped) and Cramér's V."""
    from scipy.stats import chi2_contingency

    nan = {"statistic": math.nan, "df": math.nan, "p_value": math.nan, "cramers_v": math.nan}
    if table.size == 0:
        return nan
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return nan
    res = chi2_contingency(table, correction=False)
    n = table.sum()
    v = math.sqrt(res.statistic / (n * (min(table.shape) - 1)))
    return {
        "statistic": float(res.statistic),
        "df": float(res.dof),
        "p_value": float(res.pvalue),
        "cramers_v": float(v),
    }


def pairwise_sign_tests(chosen: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Sign tests of every pair of ``names`` at answer and participant level, Holm-
    corrected per level. ``chosen``: one row per chosen explainer (``participant_id``,
    ``choice``)."""
    per_person = (
        chosen.groupby(["participant_id", "choice"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=names, fill_value=0)
    )
    totals = chosen["choice"].value_counts()
    rows = []
    for level in ("answer", "participant"):
        level_rows = []
        for a, b in combinations(names, 2):
            if level == "answer":
                n_a, n_b = int(totals.get(a, 0)), int(totals.get(b, 0))
            else:
                n_a = int((per_person[a] > per_person[b]).sum())
                n_b = int((per_person[b] > per_person[a]).sum())
            level_rows.append(
                {
                    "explainer_a": a,
                    "explainer_b": b,
                    "level": level,
                    "n_a": n_a,
                    "n_b": n_b,
                    "p_value": sign_test(n_a, n_b),
                }
            )
        adjusted = holm([r["p_value"] for r in level_rows])
        for r, p in zip(level_rows, adjusted, strict=True):
            r["p_holm"] = p
        rows.extend(level_rows)
    return pd.DataFrame(rows, columns=list(SIGN_TEST_COLUMNS))


def metric_correlations(
    choices: pd.DataFrame, metrics: pd.DataFrame, metric_names: Sequence[str]
) -> pd.DataFrame:
    """Spearman correlation of the explainers' choice shares with each metric in
    ``metric_names`` found in ``metrics`` (indexed by explainer; names are matched
    through the explainer registry, so ``SHAP`` matches ``shap3d``). Needs 3 explainers
    with both values and some variation, NaN otherwise."""
    from scipy.stats import spearmanr

    by_id = {explainer_id(i): i for i in metrics.index}
    rows = []
    for metric in [m for m in metric_names if m in metrics.columns]:
        pairs = []
        for r in choices.itertuples():
            row = by_id.get(explainer_id(r.explainer))
            if row is None:
                continue
            share, value = float(r.share), float(metrics.loc[row, metric])
            if not (math.isnan(share) or math.isnan(value)):
                pairs.append((share, value))
        rho = p = math.nan
        if len(pairs) >= 3:
            x, y = zip(*pairs, strict=True)
            if len(set(x)) > 1 and len(set(y)) > 1:
                res = spearmanr(x, y)
                rho, p = float(res.statistic), float(res.pvalue)
        rows.append({"metric": metric, "spearman_rho": rho, "p_value": p, "n": len(pairs)})
    return pd.DataFrame(rows, columns=list(CORRELATION_COLUMNS))
