"""The conditional-logit choice model: statsmodels' likelihood, known answers, clustered
standard errors against simulation, and interval coverage of known effects."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from xai_study.errors import StudyError
from xai_study.study.analysis import analyze, paper_responses, prepare_responses
from xai_study.study.analysis.model import (
    MODEL_COLUMNS,
    animation_metrics,
    choice_sets,
    fit_choice_model,
)
from xai_study.study.analysis.simulate import simulate_responses

NAMES = ["gradcam", "shap", "ltpa", "bonettini"]
EFFECTS = {"gradcam": 0.0, "shap": 0.5, "ltpa": -0.4, "bonettini": 0.2}
POSITIONS = [0.0, -0.3, -0.5, -0.2]
TRUTH = {
    "explainer:shap": 0.5,
    "explainer:ltpa": -0.4,
    "explainer:bonettini": 0.2,
    "position:2": -0.3,
    "position:3": -0.5,
    "position:4": -0.2,
}


def _fit(df: pd.DataFrame, names=NAMES, metrics=None):
    return fit_choice_model(choice_sets(prepare_responses(df), names, metrics), names)


def _mixed_answers(seed: int = 1, n: int = 150) -> pd.DataFrame:
    """Single and double choices with random display orders."""
    rng = np.random.default_rng(seed)
    df = simulate_responses(n // 10, 10, EFFECTS, POSITIONS, seed=seed)
    for i in np.flatnonzero(rng.random(len(df)) < 0.4):
        order = df.at[i, "q2_order"].split(";")
        second = [o for o in order if o != df.at[i, "q2_choice"]][rng.integers(3)]
        df.at[i, "q2_choice"] = df.at[i, "q2_choice"] + ";" + second
    return df


@pytest.mark.parametrize("mode", ["single", "multiple"])
def test_same_fit_as_statsmodels_conditional_logit(mode):
    from statsmodels.discrete.conditional_models import ConditionalLogit

    df = simulate_responses(15, 10, EFFECTS, POSITIONS, seed=2) if mode == "single" else (
        _mixed_answers()
    )  # fmt: skip
    long = choice_sets(prepare_responses(df), NAMES)
    model = fit_choice_model(long, NAMES)
    assert list(model.table["term"]) == list(TRUTH)
    x = np.column_stack(
        [(long["explainer"] == n).to_numpy(float) for n in NAMES[1:]]
        + [(long["position"] == k).to_numpy(float) for k in (2, 3, 4)]
    )
    ref = ConditionalLogit(long["chosen"].to_numpy(), x, groups=long["answer"].to_numpy())
    beta = model.table["coef"].to_numpy()
    # our optimum is the optimum of statsmodels' likelihood, with the same information
    assert ref.loglike(beta) == pytest.approx(model.log_likelihood, rel=1e-10)
    assert np.abs(ref.score(beta)).max() < 1e-5
    se = np.sqrt(np.diag(np.linalg.inv(-ref.hessian(beta))))
    assert model.se_model == pytest.approx(se, rel=1e-4)
    assert ref.loglike(beta + 0.01) < ref.loglike(beta)


def test_paper_counts_known_answer_without_display_order():
    """All four shown, no q2_order: the MLE is log(count / reference count)."""
    result = analyze(paper_responses())
    m = result.model
    coef = m.table.set_index("term")["coef"]
    assert coef.to_dict() == pytest.approx(
        {
            "explainer:SHAP": math.log(221 / 165),
            "explainer:LTPA": math.log(137 / 165),
            "explainer:Bonettini": math.log(185 / 165),
        }
    )
    assert list(m.table.columns) == list(MODEL_COLUMNS)
    assert m.answers == 708 and m.participants == 36
    assert any("q2_order" in n for n in m.notes)  # no position terms
    t = m.table
    assert np.allclose(t["odds_ratio"], np.exp(t["coef"]))
    assert np.allclose(t["z"], t["coef"] / t["se"])
    assert np.allclose(t["ci_high"] - t["coef"], 1.959963984540054 * t["se"])
    assert m.joint["explainer"]["df"] == 3 and m.joint["explainer"]["p_value"] < 0.001


def test_clustered_se_matches_the_spread_over_simulated_studies():
    """With strong participant tastes the clustered SE is the estimates' real spread;
    the model-based SE (answers taken as independent) is too small."""
    estimates, clustered, naive = [], [], []
    for rep in range(30):
        df = simulate_responses(30, 12, EFFECTS, POSITIONS, taste_sd=1.0, seed=100 + rep)
        m = _fit(df)
        estimates.append(m.table["coef"].to_numpy()[:3])
        clustered.append(m.table["se"].to_numpy()[:3])
        naive.append(m.se_model[:3])
    spread = np.std(estimates, axis=0, ddof=1)
    ratio = np.mean(clustered, axis=0) / spread
    # 30 studies: the SD itself has ~13% Monte Carlo error, so allow 0.7 .. 1.35
    assert np.all((ratio > 0.7) & (ratio < 1.35)), ratio
    assert np.mean(naive) < 0.85 * np.mean(clustered)


def test_intervals_cover_known_effects_at_the_nominal_rate():
    """Acceptance: 40 simulated studies x 6 terms; clustered 95% intervals cover the true
    explainer and position effects about 95% of the time (240 intervals: Monte Carlo SE
    about 1.4 points; 40 clusters leave a small-sample shortfall of about 1-2 points)."""
    covered = []
    for rep in range(40):
        df = simulate_responses(40, 6, EFFECTS, POSITIONS, taste_sd=0.8, seed=rep)
        table = _fit(df).table.set_index("term")
        for term, value in TRUTH.items():
            covered.append(table.loc[term, "ci_low"] <= value <= table.loc[term, "ci_high"])
    rate = float(np.mean(covered))
    assert 0.88 <= rate <= 0.99, rate


def _metric_study(n_sections: int, slope: float, seed: int = 0):
    """Section metrics that vary per animation; choices that follow V with ``slope``."""
    rng = np.random.default_rng(seed)
    metrics = {
        f"s{s + 1:02d}": {n: {"V": float(rng.uniform()), "tau": 0.5} for n in NAMES}
        for s in range(n_sections)
    }
    rows = []
    for p in range(60):
        for s in range(n_sections):
            sid = f"s{s + 1:02d}"
            order = list(rng.permutation(NAMES))
            u = [EFFECTS[n] + slope * metrics[sid][n]["V"] + rng.gumbel() for n in order]
            rows.append(
                {
                    "participant_id": f"p{p}", "section": sid, "video_id": f"v{s}",
                    "q1_answer": "video1", "q1_correct": True,
                    "q2_choice": order[int(np.argmax(u))], "screen": "large",
                    "familiarity": "yes", "answered_at": "", "q2_order": ";".join(order),
                }
            )  # fmt: skip
    return pd.DataFrame(rows), metrics


def test_metrics_of_the_shown_animations_enter_the_model():
    df, metrics = _metric_study(8, slope=2.0)
    m = _fit(df, metrics=metrics)
    t = m.table.set_index("term")
    assert "metric:V" in t.index
    assert "metric:tau" not in t.index  # the same for every animation
    assert any("metric:tau" in n for n in m.notes)
    values = np.array([metrics[s][n]["V"] for s in metrics for n in NAMES])
    # per standard deviation of the animations' V: the true value is 2.0 * SD(V)
    truth = 2.0 * values.std()
    assert t.loc["metric:V", "ci_low"] < truth < t.loc["metric:V", "ci_high"]
    assert t.loc["metric:V", "p_value"] < 1e-3
    assert m.joint["metric"]["df"] == 1


def test_animation_metrics_from_a_study_spec():
    from types import SimpleNamespace

    sec = SimpleNamespace(id="s01", meta={"metrics": {"GradCAM": {"V": 0.1, "I": 0.2, "x": 1}}})
    study = SimpleNamespace(sections=[sec, SimpleNamespace(id="s02", meta={})])
    assert animation_metrics(study) == {"s01": {"gradcam": {"V": 0.1, "I": 0.2}}}
    assert animation_metrics(SimpleNamespace(name="no sections")) == {}


def test_a_choice_that_was_not_shown_is_an_error():
    df = simulate_responses(2, 1, EFFECTS, seed=0)
    df.loc[0, "q2_order"] = "shap;ltpa;bonettini"
    df.loc[0, "q2_choice"] = "gradcam"
    with pytest.raises(StudyError, match="not in the animations shown"):
        _fit(df)


def test_an_explainer_nobody_chose_is_left_out_with_a_note():
    df = simulate_responses(20, 5, EFFECTS, seed=0)
    df = df[df["q2_choice"] != "ltpa"]
    m = _fit(df)
    assert "explainer:ltpa" not in set(m.table["term"])
    assert any("never chosen" in n for n in m.notes)
    assert m.fitted


def test_statistics_do_not_depend_on_participant_ids():
    """Participant ids are random per database: relabelling them (which reorders the
    participants) changes no number, to the last bit."""
    df = _mixed_answers(seed=4)
    ids = sorted(df["participant_id"].unique())
    relabel = dict(zip(ids, [f"x{i}" for i in np.random.default_rng(0).permutation(len(ids))],
                       strict=True))  # fmt: skip
    a = analyze(df).stats
    b = analyze(df.assign(participant_id=df["participant_id"].map(relabel))).stats
    pd.testing.assert_frame_equal(a, b, check_exact=True)
