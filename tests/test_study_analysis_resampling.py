"""Clustered resampling: the within-participant permutation test of video dependence,
participant bootstrap intervals, the jackknife interval of Fleiss' kappa."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xai_study.study.analysis import (
    analyze,
    fleiss_kappa_table,
    prepare_responses,
    simulate_responses,
)
from xai_study.study.analysis.cleaning import canonical_order
from xai_study.study.analysis.resampling import (
    bootstrap_ratio,
    bootstrap_weights,
    chi_square_statistic,
    expected_counts_check,
    jackknife_kappa,
    kappa_of_tables,
    permutation_video_test,
)

EFFECTS = {"gradcam": 0.0, "shap": 0.4, "ltpa": -0.3, "bonettini": 0.1}


def _arrays(df: pd.DataFrame):
    """Codes of a single-choice responses table (sorted by participant) for the test."""
    person, _ = pd.factorize(df["participant_id"])
    video, videos = pd.factorize(df["video_id"])
    choice, names = pd.factorize(df["q2_choice"])
    n = len(df)
    return person, video, np.arange(n), choice, len(videos), len(names)


def test_permutation_p_values_are_uniform_under_h0():
    """Acceptance: choices that do not depend on the video (but on a participant's own
    strong taste) give permutation p-values uniform within Monte Carlo error."""
    p_values = []
    for rep in range(80):
        df = simulate_responses(12, 6, EFFECTS, taste_sd=1.5, seed=1000 + rep)
        _, p = permutation_video_test(*_arrays(df), permutations=99, seed=rep)
        p_values.append(p)
    p = np.sort(p_values)
    n = len(p)
    # Kolmogorov-Smirnov distance to U(0, 1); p-values are on a 1/100 grid, so allow it
    ks = max(np.max(np.arange(1, n + 1) / n - p), np.max(p - np.arange(n) / n))
    assert ks < 1.63 / np.sqrt(n) + 0.01, (ks, p)  # the 1% critical value
    assert abs(np.mean(p) - 0.5) < 3 * np.sqrt(1 / 12 / n)  # mean of U(0,1) +- 3 MC SEs
    assert np.mean(p <= 0.1) < 0.1 + 3 * np.sqrt(0.09 / n)


def test_analysis_reports_the_permutation_test_of_the_same_answers():
    df = simulate_responses(12, 6, EFFECTS, taste_sd=1.5, seed=7)
    ind = analyze(df, resamples=0, permutations=99, seed=3).tests["chi2_independence"]
    ordered = canonical_order(prepare_responses(df))  # the analysis' participant order
    stat, p = permutation_video_test(*_arrays(ordered), permutations=99, seed=3)
    assert ind["statistic"] == pytest.approx(stat)
    assert ind["p_permutation"] == p
    assert ind["permutations"] == 99


def test_permutation_test_detects_video_dependence():
    rows = []
    for i in range(20):
        for sec, choice in (("1", "A"), ("2", "B"), ("3", "A"), ("4", "B")):
            pick = choice if (i + int(sec)) % 4 else ("B" if choice == "A" else "A")
            rows.append((f"p{i}", sec, f"v{sec}", pick))
    df = pd.DataFrame(
        [
            {"participant_id": p, "section": s, "video_id": v, "q1_answer": "video1",
             "q1_correct": True, "q2_choice": c, "screen": "large", "familiarity": "yes",
             "answered_at": ""}
            for p, s, v, c in rows
        ]
    )  # fmt: skip
    ind = analyze(df, permutations=499).tests["chi2_independence"]
    assert ind["p_permutation"] < 0.01
    assert ind["permutations"] == 499


def test_expected_count_check_known_answer():
    # margins (10, 10) x (18, 2): expected counts 9, 1, 9, 1 -> half below 5, min 1
    check = expected_counts_check(np.array([[9, 1], [9, 1]]))
    assert check == {"min_expected": 1.0, "share_expected_below_5": 0.5, "expected_ok": 0.0}
    ok = expected_counts_check(np.array([[10, 12], [11, 9], [0, 0]]))  # empty row dropped
    assert ok["expected_ok"] == 1.0 and ok["min_expected"] == pytest.approx(20 * 21 / 42)
    assert chi_square_statistic(np.array([[20, 0], [0, 20]])) == pytest.approx(40.0)


def test_bootstrap_weights_resample_whole_participants():
    w = bootstrap_weights(7, 50, seed=3)
    assert w.shape == (50, 7) and np.all(w.sum(axis=1) == 7)
    np.testing.assert_array_equal(w, bootstrap_weights(7, 50, seed=3))  # seeded


def test_bootstrap_ratio_of_identical_participants_has_no_spread():
    num = np.full((5, 1), 3.0)
    den = np.full((5, 1), 4.0)
    low, high = bootstrap_ratio(num, den, bootstrap_weights(5, 200, seed=0))
    assert low[0] == pytest.approx(0.75) and high[0] == pytest.approx(0.75)


@pytest.mark.parametrize(("taste_sd", "wider"), [(0.0, False), (3.0, True)], ids=["none", "strong"])
def test_clustered_share_intervals_widen_with_participant_taste(taste_sd, wider):
    """Each participant's own taste makes their answers alike: the participant bootstrap
    interval is then much wider than the Wilson interval (which takes answers as
    independent); without taste the two agree."""
    r = analyze(simulate_responses(40, 20, EFFECTS, taste_sd=taste_sd, seed=5), permutations=0)
    c = r.choices
    ratio = float(((c.boot_high - c.boot_low) / (c.ci_high - c.ci_low)).mean())
    assert (ratio > 1.5) if wider else (0.8 < ratio < 1.25), ratio
    assert ((c.boot_low <= c.share) & (c.share <= c.boot_high)).all()


def test_accuracy_intervals_by_group_are_clustered():
    r = analyze(simulate_responses(30, 10, EFFECTS, seed=2), permutations=0)
    for table in (r.accuracy_overall, r.accuracy_by_familiarity, r.accuracy_by_video):
        assert ((table.boot_low <= table.accuracy) & (table.accuracy <= table.boot_high)).all()


def test_vectorised_kappa_is_fleiss_kappa():
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                      [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                      [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])  # fmt: skip
    assert float(kappa_of_tables(table)) == pytest.approx(0.20993, abs=1e-4)
    uneven = np.array([[3, 0], [1, 1], [0, 4], [1, 0]])
    assert float(kappa_of_tables(uneven)) == pytest.approx(fleiss_kappa_table(uneven)[0])


def test_jackknife_kappa_by_hand():
    rng = np.random.default_rng(0)
    person = np.repeat(np.arange(6), 4)
    video = np.tile(np.arange(4), 6)
    category = rng.integers(0, 3, len(video))
    low, high, se = jackknife_kappa(person, video, category)
    full = np.zeros((4, 3))
    np.add.at(full, (video, category), 1)
    leave_out = []
    for p in range(6):
        keep = person != p
        t = np.zeros((4, 3))
        np.add.at(t, (video[keep], category[keep]), 1)
        leave_out.append(fleiss_kappa_table(t)[0])
    leave_out = np.array(leave_out)
    expected = np.sqrt(5 / 6 * ((leave_out - leave_out.mean()) ** 2).sum())
    assert se == pytest.approx(expected)
    kappa = fleiss_kappa_table(full)[0]
    assert (low + high) / 2 == pytest.approx(kappa)
    assert high - low == pytest.approx(2 * 1.959963984540054 * expected)
