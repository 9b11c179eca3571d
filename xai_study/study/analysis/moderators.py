"""Moderators of Q1 accuracy: a participant-clustered logistic model (GEE).

``correct ~ familiarity + screen`` (treatment coding, the first level of each in the
analysis order is the reference: familiarity ``yes``, screen ``large``), a binomial GEE
with an exchangeable working correlation within participant and robust (sandwich)
standard errors (statsmodels ``GEE``). "I do not know" counts as not correct, as in
the accuracy tables. Levels with no answers are left out; a model that cannot be fitted
gives an empty table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from xai_study.study.analysis.cleaning import FAMILIARITY_ORDER, SCREEN_ORDER, order_levels
from xai_study.study.analysis.model import MODEL_COLUMNS, coefficient_table


def accuracy_model(q1: pd.DataFrame, person: np.ndarray) -> pd.DataFrame:
    """Terms ``familiarity:LEVEL`` and ``screen:LEVEL`` (log odds of a correct Q1 answer
    relative to the reference level), columns :data:`~.model.MODEL_COLUMNS`, plus the
    ``intercept``. ``q1``: the Q1 answers; ``person``: participant codes per row."""

    empty = pd.DataFrame(columns=list(MODEL_COLUMNS))
    if len(q1) < 10:
        return empty
    y = (q1["q1_correct"] == True).fillna(False).to_numpy(float)  # noqa: E712
    columns, names = [np.ones(len(q1))], ["intercept"]
    for var, order in (("familiarity", FAMILIARITY_ORDER), ("screen", SCREEN_ORDER)):
        values = q1[var].map(lambda v: "unknown" if pd.isna(v) else str(v)).to_numpy()
        levels = order_levels(pd.unique(values), order)
        for level in levels[1:]:
            columns.append((values == level).astype(float))
            names.append(f"{var}:{level}")
    x = np.column_stack(columns)
    if np.linalg.matrix_rank(x) < x.shape[1] or y.min() == y.max():
        return empty
    import statsmodels.api as sm

    groups = np.asarray(person)[q1.index]
    order = np.argsort(groups, kind="stable")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.GEE(
                y[order],
                x[order],
                groups=groups[order],
                family=sm.families.Binomial(),
                cov_struct=sm.cov_struct.Exchangeable(),
            ).fit()
    except (np.linalg.LinAlgError, ValueError):
        return empty
    beta, se = np.asarray(fit.params), np.asarray(fit.bse)
    if not np.all(np.isfinite(beta)):
        return empty
    return coefficient_table(names, beta, se)
