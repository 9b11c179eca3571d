"""Q1 accuracy by familiarity and screen: the participant-clustered logistic GEE."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from xai_study.study.analysis import MODEL_COLUMNS, REQUIRED_RESPONSE_COLUMNS, analyze


def _study(accuracy: dict[str, float], n_people: int = 40, sections: int = 10, seed: int = 0):
    """Participants of each familiarity level answer Q1 correctly with its accuracy
    (exactly that share of their sections, so the saturated model has a known answer)."""
    rng = np.random.default_rng(seed)
    rows = []
    levels = list(accuracy)
    for p in range(n_people):
        level = levels[p % len(levels)]
        correct = np.zeros(sections, bool)
        correct[: round(accuracy[level] * sections)] = True
        rng.shuffle(correct)
        for s in range(sections):
            rows.append(
                {"participant_id": f"p{p:03d}", "section": str(s + 1), "video_id": f"v{s}",
                 "q1_answer": "video1", "q1_correct": bool(correct[s]), "q2_choice": "A",
                 "screen": "large", "familiarity": level, "answered_at": ""}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=list(REQUIRED_RESPONSE_COLUMNS))


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_saturated_model_gives_the_log_odds_ratios():
    table = analyze(_study({"yes": 0.9, "no": 0.6}), permutations=0).accuracy_model
    assert list(table.columns) == list(MODEL_COLUMNS)
    t = table.set_index("term")
    assert list(t.index) == ["intercept", "familiarity:no"]  # one screen: no screen term
    assert t.loc["intercept", "coef"] == pytest.approx(_logit(0.9), abs=1e-6)
    assert t.loc["familiarity:no", "coef"] == pytest.approx(_logit(0.6) - _logit(0.9), abs=1e-6)
    assert t.loc["familiarity:no", "p_value"] < 0.01
    assert t.loc["familiarity:no", "odds_ratio"] == pytest.approx(
        math.exp(t.loc["familiarity:no", "coef"])
    )


def test_no_difference_no_effect_and_robust_se_is_clustered():
    # every participant exactly 70 % correct: no between-participant spread at all
    t = analyze(_study({"yes": 0.7, "heard of it": 0.7, "no": 0.7}), permutations=0)
    m = t.accuracy_model.set_index("term")
    assert m.loc["familiarity:no", "coef"] == pytest.approx(0.0, abs=1e-9)
    # with identical participants the sandwich SE is (almost) 0, far below the binomial SE
    binomial_se = math.sqrt(2 / (0.7 * 0.3 * 130))
    assert m.loc["familiarity:no", "se"] < 0.2 * binomial_se


def test_too_few_answers_give_an_empty_table():
    assert analyze(_study({"yes": 0.5}, n_people=1, sections=3)).accuracy_model.empty


def _choices_by_screen(shift: float, seed: int = 0) -> pd.DataFrame:
    """Small-screen participants like SHAP ``shift`` more (log odds) than large-screen."""
    from xai_study.study.analysis import simulate_responses

    effects = {"gradcam": 0.0, "shap": 0.2, "ltpa": -0.2, "bonettini": 0.0}
    large = simulate_responses(40, 10, effects, seed=seed)
    small = simulate_responses(40, 10, {**effects, "shap": 0.2 + shift}, seed=seed + 1)
    large = large.assign(screen="large")
    small = small.assign(screen="small", participant_id="s" + small["participant_id"])
    return pd.concat([large, small], ignore_index=True)


@pytest.mark.parametrize(("shift", "detected"), [(1.2, True), (0.0, False)], ids=["shift", "none"])
def test_choice_by_screen(shift, detected):
    r = analyze(_choices_by_screen(shift), resamples=0, permutations=0)
    m = r.model_by["screen"]
    t = m.table.set_index("term")
    term = "explainer:shap*screen:small"
    assert term in t.index and len(t) == 9  # 3 explainer, 3 position, 3 interaction terms
    assert t.loc[term, "ci_low"] < shift < t.loc[term, "ci_high"]
    p = m.joint["moderator"]["p_value"]
    assert (p < 0.001) if detected else (p > 0.01), p
    assert "preference by screen" in r.report().to_text()
