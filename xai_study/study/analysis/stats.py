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


def goodness_of_fit(indicator: np.ndarray) -> dict[str, float | str]:
    """Test of equal preference from an answers x explainers 0/1 table (1: the answer
    names the explainer).

    Cochran's Q, the test of equal marginal shares of k binary answers given together;
    when every answer names exactly one explainer it equals Pearson's chi-square goodness
    of fit of the counts against equal shares (``method = chisquare``), otherwise each
    answer (not each choice) is one observation (``method = cochran_q``). Both treat the
    answers as independent (they are not: a participant gives many); the choice model's
    clustered Wald test is the one to report.
    """
    nan = {"statistic": math.nan, "df": math.nan, "p_value": math.nan, "method": "none"}
    x = np.asarray(indicator, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        return nan
    x = x[x.sum(axis=1) > 0]
    if len(x) == 0:
        return nan
    from scipy.stats import chi2, chisquare

    k = x.shape[1]
    df = float(k - 1)
    if np.all(x.sum(axis=1) == 1):
        stat, p = chisquare(x.sum(axis=0))
        return {"statistic": float(stat), "df": df, "p_value": float(p), "method": "chisquare"}
    col, row = x.sum(axis=0), x.sum(axis=1)
    total = float(row.sum())
    denom = k * total - float((row**2).sum())
    if denom <= 0:  # every answer names every explainer: no information
        return {**nan, "method": "cochran_q"}
    q = (k - 1) * (k * float((col**2).sum()) - total**2) / denom
    return {"statistic": q, "df": df, "p_value": float(chi2.sf(q, df)), "method": "cochran_q"}


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


def pair_counts(indicator: pd.DataFrame, a: str, b: str) -> tuple[pd.Series, pd.Series]:
    """Per answer: does it prefer ``a`` to ``b`` (names ``a`` but not ``b``), and the
    reverse. An answer naming both, or neither, is a tie."""
    x_a, x_b = indicator[a].astype(bool), indicator[b].astype(bool)
    return x_a & ~x_b, x_b & ~x_a


def pairwise_sign_tests(
    indicator: pd.DataFrame, participant: pd.Series, names: list[str]
) -> pd.DataFrame:
    """Sign tests of every pair of ``names`` at answer and participant level, Holm-
    corrected per level.

    ``indicator``: one row per Q2 answer, one 0/1 column per explainer (1: the answer
    names it); ``participant``: the answer's participant. At answer level ``n_a`` counts
    the answers naming ``a`` and not ``b`` (answers naming both or neither are ties and
    are dropped); at participant level, the participants with more such answers for
    ``a`` than for ``b`` (equal numbers are ties). Only the participant level respects
    that a participant gives many answers.
    """
    rows = []
    who = pd.Series(np.asarray(participant), index=indicator.index)
    for level in ("answer", "participant"):
        level_rows = []
        for a, b in combinations(names, 2):
            for_a, for_b = pair_counts(indicator, a, b)
            if level == "answer":
                n_a, n_b = int(for_a.sum()), int(for_b.sum())
            else:
                per_a = for_a.groupby(who).sum()
                per_b = for_b.groupby(who).sum()
                n_a, n_b = int((per_a > per_b).sum()), int((per_b > per_a).sum())
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
