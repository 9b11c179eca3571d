"""Multiple-choice Q2 (several explainers per answer): sign tests drop ties, shares and
intervals are per answer, equal preference is Cochran's Q (the chi-square in single mode)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from xai_study.study.analysis import REQUIRED_RESPONSE_COLUMNS, analyze, wilson_interval
from xai_study.study.analysis.stats import goodness_of_fit


def _answers(choices: list[str], per_participant: int = 1) -> pd.DataFrame:
    rows = []
    for i, choice in enumerate(choices):
        pid, sec = divmod(i, per_participant)
        rows.append(
            {
                "participant_id": f"p{pid:03d}",
                "section": str(sec + 1),
                "video_id": f"v{sec + 1}",
                "q1_answer": "video1",
                "q1_correct": True,
                "q2_choice": choice,
                "screen": "large",
                "familiarity": "yes",
                "answered_at": "2026-01-01T00:00:00+00:00",
            }
        )
    return pd.DataFrame(rows, columns=list(REQUIRED_RESPONSE_COLUMNS))


def _pair(result, a: str, b: str, level: str) -> pd.Series:
    st = result.sign_tests
    return st[(st.explainer_a == a) & (st.explainer_b == b) & (st.level == level)].iloc[0]


def test_issue_example_both_named_is_a_tie():
    """30 answers "SHAP;GradCAM" and 10 "SHAP": GradCAM vs SHAP is 0:10, p = 2/1024."""
    result = analyze(_answers(["SHAP;GradCAM"] * 30 + ["SHAP"] * 10))
    row = _pair(result, "GradCAM", "SHAP", "answer")
    assert (row.n_a, row.n_b) == (0, 10)
    assert row.p_value == pytest.approx(2 / 2**10)  # 0.00195
    assert round(row.p_value, 3) == 0.002
    # one answer per participant here, so the participant level says the same
    person = _pair(result, "GradCAM", "SHAP", "participant")
    assert (person.n_a, person.n_b) == (0, 10)
    c = result.choices.set_index("explainer")
    assert c.loc["SHAP", "share"] == pytest.approx(1.0)  # every one of the 40 answers
    assert c.loc["GradCAM", "share"] == pytest.approx(30 / 40)
    assert (c.loc["GradCAM", "ci_low"], c.loc["GradCAM", "ci_high"]) == pytest.approx(
        wilson_interval(30, 40)
    )


@pytest.mark.parametrize(
    ("choices", "shares", "pair"),
    [
        (["A"] * 6 + ["B"] * 3 + ["C"], {"A": 0.6, "B": 0.3, "C": 0.1}, (6, 3)),
        (["A;B"] * 4 + ["A"] * 2 + ["B;C"] * 2 + ["C"] * 2,
         {"A": 0.6, "B": 0.6, "C": 0.4}, (2, 2)),
    ],
    ids=["single", "multiple"],
)  # fmt: skip
def test_shares_and_intervals_are_per_answer(choices, shares, pair):
    result = analyze(_answers(choices))
    c = result.choices.set_index("explainer")
    assert c["share"].to_dict() == pytest.approx(shares)
    for name, share in shares.items():
        low, high = wilson_interval(round(share * 10), 10)
        assert (c.loc[name, "ci_low"], c.loc[name, "ci_high"]) == pytest.approx((low, high))
    row = _pair(result, "A", "B", "answer")
    assert (row.n_a, row.n_b) == pair


def test_participant_level_counts_answers_preferring_one_over_the_other():
    # p0: A;B, A;B, A -> prefers A once (ties dropped); p1: B, A;B -> prefers B once
    df = _answers(["A;B", "A;B", "A", "B", "A;B", "A;B"], per_participant=3)
    df = df.iloc[[0, 1, 2, 3, 4]]  # p1 answers two sections
    result = analyze(df)
    row = _pair(result, "A", "B", "participant")
    assert (row.n_a, row.n_b) == (1, 1)
    answer = _pair(result, "A", "B", "answer")
    assert (answer.n_a, answer.n_b) == (1, 1)


def test_equal_preference_is_the_chi_square_in_single_mode():
    from scipy.stats import chisquare

    counts = [5, 9, 2, 4]
    x = np.repeat(np.eye(4, dtype=int), counts, axis=0)
    gof = goodness_of_fit(x)
    stat, p = chisquare(counts)
    assert gof["method"] == "chisquare"
    assert (gof["statistic"], gof["p_value"], gof["df"]) == pytest.approx((stat, p, 3))


def test_equal_preference_is_cochrans_q_per_answer_in_multiple_mode():
    # 4 answers over 3 explainers; Cochran's Q by hand:
    # column totals C = (3, 2, 1), row totals R = (2, 2, 1, 1), N = 6, k = 3
    # Q = (k-1) (k sum C^2 - N^2) / (k N - sum R^2) = 2 (3*14 - 36) / (18 - 10) = 1.5
    x = np.array([[1, 1, 0], [1, 0, 1], [1, 0, 0], [0, 1, 0]])
    gof = goodness_of_fit(x)
    assert gof["method"] == "cochran_q"
    assert gof["statistic"] == pytest.approx(1.5)
    assert gof["p_value"] == pytest.approx(math.exp(-1.5 / 2))  # chi2(2) survival
    from statsmodels.stats.contingency_tables import cochrans_q

    assert gof["statistic"] == pytest.approx(cochrans_q(x).statistic)
    # the analysis gives the same on the same answers
    result = analyze(_answers(["A;B", "A;C", "A", "B"]))
    assert result.tests["chi2_gof"]["statistic"] == pytest.approx(1.5)


def test_every_answer_naming_everything_has_no_test():
    assert math.isnan(goodness_of_fit(np.ones((5, 3)))["p_value"])
