"""Known-answer tests of the study statistics (xai_study.study.analysis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from xai_study.errors import StudyError
from xai_study.explainers import canonical_name
from xai_study.study.analysis import (
    PAPER_COUNTS,
    PAPER_METRICS,
    REQUIRED_RESPONSE_COLUMNS,
    analyze,
    explainer_id,
    fleiss_kappa_table,
    holm,
    load_metrics,
    metrics_table,
    order_explainers,
    paper_counts_by_label,
    paper_responses,
    save_plots,
    sign_test,
    wilson_interval,
)


def _binom_two_sided(k: int, n: int) -> float:
    """Exact two-sided sign test p-value from the binomial formula (p = 1/2)."""
    tail = sum(math.comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail) if k != n - k else 1.0


def _holm_by_hand(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _rows(*answers: tuple) -> pd.DataFrame:
    """(participant, section, video, q1_answer, q1_correct, q2_choice[, fam])."""
    rows = []
    for a in answers:
        pid, sec, video, q1a, q1c, q2 = a[:6]
        fam = a[6] if len(a) > 6 else "yes"
        rows.append(
            {
                "participant_id": pid,
                "section": sec,
                "video_id": video,
                "q1_answer": q1a,
                "q1_correct": q1c,
                "q2_choice": q2,
                "screen": "large",
                "familiarity": fam,
                "answered_at": "2026-01-01T00:00:00+00:00",
            }
        )
    return pd.DataFrame(rows, columns=list(REQUIRED_RESPONSE_COLUMNS))


# --------------------------------------------------------------------- the paper


def test_paper_counts_give_the_papers_shares():
    result = analyze(paper_responses())
    c = result.choices.set_index("explainer")
    assert list(c.index) == ["GradCAM", "SHAP", "LTPA", "Bonettini"]
    assert c["count"].to_dict() == paper_counts_by_label()
    assert {canonical_name(k): v for k, v in c["count"].items()} == PAPER_COUNTS
    shares = {k: round(100 * v) for k, v in c["share"].items()}
    assert shares == {"GradCAM": 23, "SHAP": 31, "LTPA": 19, "Bonettini": 26}
    assert c["share"].sum() == pytest.approx(1.0)
    # each Wilson interval contains its share
    assert (c["ci_low"] < c["share"]).all() and (c["share"] < c["ci_high"]).all()


def test_paper_answer_level_sign_tests():
    result = analyze(paper_responses())
    st = result.sign_tests[result.sign_tests["level"] == "answer"].reset_index(drop=True)
    assert list(st.columns) == [
        "explainer_a", "explainer_b", "level", "n_a", "n_b", "p_value", "p_holm"
    ]  # fmt: skip
    assert len(st) == 6
    counts = paper_counts_by_label()
    for r in st.itertuples():
        assert (r.n_a, r.n_b) == (counts[r.explainer_a], counts[r.explainer_b])
        assert r.p_value == pytest.approx(_binom_two_sided(r.n_a, r.n_a + r.n_b), rel=1e-9)
    assert st["p_holm"].tolist() == pytest.approx(_holm_by_hand(st["p_value"].tolist()))
    by_pair = st.set_index(["explainer_a", "explainer_b"])
    # SHAP (221) is preferred over GradCAM (165): p = 0.00505, significant after Holm
    assert by_pair.loc[("GradCAM", "SHAP"), "p_value"] == pytest.approx(0.0050537, abs=1e-6)
    assert by_pair.loc[("GradCAM", "SHAP"), "p_holm"] < 0.05
    assert by_pair.loc[("SHAP", "LTPA"), "p_holm"] < 0.001
    # SHAP vs Bonettini (221:185) is not significant
    assert by_pair.loc[("SHAP", "Bonettini"), "p_value"] > 0.05


def test_paper_goodness_of_fit_by_hand():
    gof = analyze(paper_responses()).tests["chi2_gof"]
    expected = sum((c - 177) ** 2 / 177 for c in PAPER_COUNTS.values())  # 708 / 4 = 177
    assert gof["statistic"] == pytest.approx(expected)
    assert gof["statistic"] == pytest.approx(3744 / 177)
    assert gof["df"] == 3
    # survival function of chi-square with 3 degrees of freedom, in closed form
    sf3 = math.erfc(math.sqrt(expected / 2)) + math.sqrt(2 * expected / math.pi) * math.exp(
        -expected / 2
    )
    assert gof["p_value"] == pytest.approx(sf3, rel=1e-9)


def test_paper_preference_vs_metrics_spearman():
    corr = analyze(paper_responses()).correlations.set_index("metric")
    # shares rank LTPA < GradCAM < Bonettini < SHAP; V ranks LTPA < GradCAM < SHAP < Bonettini
    assert corr.loc["V", "spearman_rho"] == pytest.approx(0.8)
    # tau ranks SHAP < Bonettini < LTPA < GradCAM: sum d^2 = 18 -> 1 - 6*18/60 = -0.8
    assert corr.loc["tau", "spearman_rho"] == pytest.approx(-0.8)
    assert (corr["n"] == 4).all()


# --------------------------------------------------------------------- statistics


def test_participant_level_sign_test_drops_ties():
    df = _rows(
        ("p1", "1", "v1", "video1", True, "A"),
        ("p1", "2", "v2", "video1", True, "A"),
        ("p1", "3", "v3", "video1", True, "B"),
        ("p2", "1", "v1", "video1", True, "A"),
        ("p2", "2", "v2", "video1", True, "B"),
        ("p3", "1", "v1", "video1", True, "B"),
        ("p3", "2", "v2", "video1", True, "B"),
        ("p4", "1", "v1", "video1", True, "B"),
    )
    st = analyze(df).sign_tests.set_index("level")
    answer, person = st.loc["answer"], st.loc["participant"]
    assert (answer["n_a"], answer["n_b"]) == (3, 5)
    assert (person["n_a"], person["n_b"]) == (1, 2)  # p2 is a tie and is dropped
    assert person["p_value"] == pytest.approx(1.0)
    assert answer["p_value"] == pytest.approx(_binom_two_sided(3, 8))
    assert answer["p_holm"] == answer["p_value"]  # a single pair: Holm changes nothing


def test_sign_test_and_holm_helpers():
    assert sign_test(10, 0) == pytest.approx(2 / 1024)
    assert math.isnan(sign_test(0, 0))
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = holm([0.01, float("nan"), 0.02])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_independence_test_detects_video_dependence():
    rows = []
    for i in range(20):
        rows.append((f"p{i}", "1", "v1", "video1", True, "A"))
        rows.append((f"p{i}", "2", "v2", "video1", True, "B"))
    result = analyze(_rows(*rows))
    ind = result.tests["chi2_independence"]
    # 2x2 table [[20, 0], [0, 20]]: chi2 = N = 40, Cramer's V = 1
    assert ind["statistic"] == pytest.approx(40.0)
    assert ind["df"] == 1
    assert ind["cramers_v"] == pytest.approx(1.0)
    assert ind["p_value"] < 1e-8
    assert result.video_table.loc["v1", "A"] == 20 and result.video_table.loc["v1", "B"] == 0
    # everybody agrees within a video: Fleiss' kappa is 1
    assert result.tests["fleiss_kappa"]["kappa"] == pytest.approx(1.0)


def test_fleiss_kappa_known_answer():
    # Fleiss (1971) worked example as given on Wikipedia: 10 subjects, 14 raters, kappa 0.210
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    kappa, method = fleiss_kappa_table(table)
    assert method == "fleiss"
    assert kappa == pytest.approx(0.20993, abs=1e-4)


def test_fleiss_kappa_unbalanced_by_hand():
    table = np.array([[3, 0], [1, 1], [0, 4]])
    kappa, method = fleiss_kappa_table(table)
    assert method == "fleiss-unbalanced"
    p_i = [1.0, 0.0, 1.0]  # (9-3)/6, (2-2)/2, (16-4)/12
    p_j = np.array([4, 5]) / 9
    p_e = float((p_j**2).sum())
    assert kappa == pytest.approx((np.mean(p_i) - p_e) / (1 - p_e))


def test_q1_accuracy_counts_dont_know_as_not_correct():
    df = _rows(
        ("p1", "1", "v1", "video2", True, "A", "yes"),
        ("p1", "2", "v2", "video1", False, "A", "yes"),
        ("p2", "1", "v1", "dont_know", None, "B", "no"),
        ("p2", "2", "v2", "video2", True, "B", "no"),
    )
    r = analyze(df)
    overall = r.accuracy_overall.iloc[0]
    assert (overall["n"], overall["correct"], overall["dont_know"]) == (4, 2, 1)
    assert overall["accuracy"] == pytest.approx(0.5)
    assert overall["accuracy_decided"] == pytest.approx(2 / 3)
    fam = r.accuracy_by_familiarity.set_index("group")
    assert list(fam.index) == ["yes", "no"]
    assert fam.loc["no", "accuracy"] == pytest.approx(0.5)
    video = r.accuracy_by_video.set_index("group")
    assert video.loc["v1", "correct"] == 1 and video.loc["v2", "n"] == 2


def test_wilson_interval_known_answer():
    # 85 of 100: Wilson 95 % interval (Newcombe 1998 formula)
    z = 1.959963984540054
    p, n = 0.85, 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson_interval(85, 100)
    assert low == pytest.approx(centre - half) and high == pytest.approx(centre + half)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_multiple_choice_answers_count_once_per_name():
    df = _rows(
        ("p1", "1", "v1", "video1", True, "A;B"),
        ("p2", "1", "v1", "video1", True, "B; B"),
    )
    r = analyze(df)
    assert r.choices.set_index("explainer")["count"].to_dict() == {"A": 1, "B": 2}
    assert r.tests["fleiss_kappa"]["subjects"] == 0  # only one single-choice rating of v1


def test_explainers_option_keeps_never_chosen_ones():
    df = _rows(("p1", "1", "v1", "video1", True, "shap"), ("p2", "1", "v1", "video1", True, "shap"))
    r = analyze(df, explainers=["gradcam", "shap", "ltpa"])
    assert r.choices["count"].tolist() == [0, 2, 0]
    assert r.tests["chi2_gof"]["df"] == 2
    with pytest.raises(StudyError, match="not one of"):
        analyze(df, explainers=["gradcam"])


def test_q2_order_column_names_the_explainers_shown():
    df = _rows(("p1", "1", "v1", "video1", True, "shap")).assign(q2_order="ltpa;shap;gradcam")
    assert analyze(df).explainers == ["gradcam", "shap", "ltpa"]


def test_participants_table_completion_withdrawal_and_checks():
    df = _rows(
        ("a", "1", "v1", "video1", True, "X"),
        ("a", "2", "v2", "video1", True, "X"),
        ("b", "1", "v1", "video1", True, "Y"),
        ("c", "1", "v1", "video1", True, "Y"),
        ("c", "2", "v2", "video1", True, "Y"),
    )
    people = pd.DataFrame(
        {
            "participant_id": ["a", "b", "c", "d"],
            "status": ["completed", "in_progress", "withdrawn", "consented"],
            "screen": ["large", "small", "small", None],
            "familiarity": ["yes", "no", "no", None],
            "checks_passed": [1, 0, 1, 0],
            "checks_total": [1, 1, 1, 0],
        }
    )
    r = analyze(df, people)
    o = r.overview
    assert o["participants_total"] == 4 and o["withdrawn"] == 1 and o["participants"] == 3
    assert o["completed"] == 1 and o["dropped_out"] == 2
    assert o["failed_attention_check"] == 1
    assert o["answers"] == 3  # c's answers are left out
    assert r.choices.set_index("explainer")["count"].to_dict() == {"X": 2, "Y": 1}
    assert r.reached["participants"].tolist() == [3, 2, 1]
    demo = r.demographics.set_index(["variable", "level"])["count"]
    assert demo[("screen", "unknown")] == 1 and demo[("familiarity", "no")] == 1
    strict = analyze(df, people, exclude_failed_checks=True)
    assert strict.overview["participants"] == 2 and strict.overview["answers"] == 2


def test_completion_is_inferred_without_participants_table():
    df = _rows(
        ("a", "1", "v1", "video1", True, "X"),
        ("a", "2", "v2", "video1", True, "X"),
        ("b", "1", "v1", "video1", True, "Y"),
    )
    r = analyze(df)
    assert not r.completion_known
    assert r.overview["completed"] == 1 and r.overview["dropped_out"] == 1


def test_bad_tables_raise_one_line_study_errors():
    with pytest.raises(StudyError, match="lacks column"):
        analyze(pd.DataFrame({"participant_id": ["a"]}))
    dup = _rows(("a", "1", "v1", "video1", True, "X"), ("a", "1", "v1", "video1", True, "Y"))
    with pytest.raises(StudyError, match="twice"):
        analyze(dup)
    bad = _rows(("a", "1", "v1", "video1", "maybe", "X"))
    with pytest.raises(StudyError, match="true/false"):
        analyze(bad)
    stray = _rows(("zz", "1", "v1", "video1", True, "X"))
    with pytest.raises(StudyError, match="not in the participants table"):
        analyze(stray, pd.DataFrame({"participant_id": ["a"], "status": ["completed"]}))


def test_empty_study_gives_nan_statistics_not_errors(tmp_path):
    r = analyze(pd.DataFrame(columns=list(REQUIRED_RESPONSE_COLUMNS)))
    assert r.overview["participants"] == 0
    assert math.isnan(r.tests["chi2_gof"]["p_value"])
    assert len(save_plots(r, tmp_path)) == 3


# --------------------------------------------------------------------- metrics, plots


def test_metrics_tables_wide_and_long(tmp_path):
    wide = tmp_path / "summary.csv"
    wide.write_text("explainer,V_mean,tau_mean,rho_mean,mu_mean,seconds\nGrad-CAM,0.1,0.9,0.5,0.7,3\n"
                    "shap,0.2,0.4,0.1,0.6,9\n")  # fmt: skip
    table = load_metrics(wide)
    assert list(table.columns) == ["V", "tau", "rho", "mu"]
    assert table.loc["Grad-CAM", "tau"] == pytest.approx(0.9)
    long = pd.DataFrame(
        {"explainer": ["a", "a", "b"], "metric": ["τ", "mu", "tau"], "mean": [0.1, 0.2, 0.3]}
    )
    t = metrics_table(long)
    assert t.loc["a", "tau"] == pytest.approx(0.1) and t.loc["b", "tau"] == pytest.approx(0.3)
    # the long summary.csv of `xai-study evaluate`: only the fake-video rows count
    evaluate = tmp_path / "evaluate_summary.csv"
    evaluate.write_text(
        "explainer,group,metric,n,mean,ci_low,ci_high,chance,higher_is_better\n"
        "gradcam,fake,V,3,0.01,0,0.02,,\ngradcam,real,V,3,0.5,0.4,0.6,,\n"
        "gradcam,fake,mass_accuracy,3,0.3,0.2,0.4,0.25,True\n"
    )
    t = load_metrics(evaluate)
    assert list(t.columns) == ["V"] and t.loc["gradcam", "V"] == pytest.approx(0.01)
    with pytest.raises(StudyError, match="not found"):
        load_metrics(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("explainer,foo\nx,1\n")
    with pytest.raises(StudyError, match="no metric columns"):
        load_metrics(bad)
    # user metrics are matched to explainer names ignoring case and punctuation
    df = paper_responses()
    custom = pd.DataFrame(
        {"V": [4.0, 3.0, 2.0, 1.0]}, index=["gradcam", "shap", "ltpa", "bonettini"]
    )
    corr = analyze(df, metrics=custom).correlations.set_index("metric")
    assert corr.loc["V", "n"] == 4
    # V ranks Bonettini 1, LTPA 2, SHAP 3, GradCAM 4; shares rank LTPA 1, GradCAM 2,
    # Bonettini 3, SHAP 4: sum d^2 = 4 + 1 + 1 + 4 = 10 -> rho = 1 - 6*10/60 = 0
    assert corr.loc["V", "spearman_rho"] == pytest.approx(0.0, abs=1e-12)


def test_plots_are_png_files(tmp_path):
    from PIL import Image

    paths = save_plots(analyze(paper_responses()), tmp_path)
    assert [p.name for p in paths] == [
        "choice_shares.png", "accuracy_by_familiarity.png", "preference_by_video.png"
    ]  # fmt: skip
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width >= 400 and im.height >= 300
            # not a blank canvas
            assert len(set(im.convert("L").getdata())) > 10


# --------------------------------------------------------------------- registry names


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["bonettini", "ltpa", "shap", "gradcam"], ["gradcam", "shap", "ltpa", "bonettini"]),
        (["Bonettini", "SHAP", "GradCAM", "LTPA"], ["GradCAM", "SHAP", "LTPA", "Bonettini"]),
        (["SHAP-3D", "ltpa", "Grad-CAM"], ["Grad-CAM", "SHAP-3D", "ltpa"]),
        (["shap3d", "saliency", "foo", "lime", "gradcam"], ["gradcam", "shap3d", "foo", "lime", "saliency"]),
        (["zeta", "Alpha", "zeta"], ["Alpha", "zeta"]),
    ],
    ids=["registry", "paper", "labels", "others-alphabetical", "unknown-only"],
)  # fmt: skip
def test_explainers_in_the_papers_order_whatever_the_spelling(names, expected):
    assert order_explainers(names) == expected
    df = _rows(*[(f"p{i}", "1", "v1", "video1", True, n) for i, n in enumerate(names)])
    assert analyze(df).explainers == expected


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [("GradCAM", "gradcam"), ("Grad-CAM", "gradcam"), ("SHAP", "shap3d"), ("shap", "shap3d"),
     ("SHAP-3D", "shap3d"), ("LIME-3D", "lime3d"), ("My Method", "mymethod")],
)  # fmt: skip
def test_explainer_id(spelling, expected):
    assert explainer_id(spelling) == expected


def test_paper_metrics_are_the_metrics_packages_table():
    from xai_study.metrics.paper import PAPER_RESULTS

    assert list(PAPER_METRICS.index) == ["gradcam", "shap3d", "ltpa", "bonettini"]
    assert PAPER_METRICS.to_dict(orient="index") == PAPER_RESULTS


@pytest.mark.parametrize("names", [["gradcam", "shap3d", "ltpa", "bonettini"],
                                   ["Grad-CAM", "SHAP-3D", "LTPA", "Bonettini"]])  # fmt: skip
def test_metrics_match_the_study_names_through_the_registry(names):
    # the study says GradCAM / SHAP, an evaluate summary says gradcam / shap3d
    metrics = pd.DataFrame({"V": [0.0135, 0.0302, 0.0108, 0.0951]}, index=names)
    corr = analyze(paper_responses(), metrics=metrics).correlations.set_index("metric")
    assert corr.loc["V", "n"] == 4
    assert corr.loc["V", "spearman_rho"] == pytest.approx(0.8)


# --------------------------------------------------------------------- regressions


@pytest.mark.parametrize("column", ["screen", "familiarity"])
def test_missing_demographics_in_a_csv_are_unknown_not_nan(tmp_path, column):
    from xai_study.study.export import read_responses

    df = _rows(("a", "1", "v1", "video1", True, "X"), ("b", "1", "v1", "video1", True, "Y"))
    df.loc[df["participant_id"] == "b", column] = ""
    df.to_csv(tmp_path / "r.csv", index=False)
    r = analyze(read_responses(tmp_path / "r.csv"))
    levels = r.demographics[r.demographics["variable"] == column]["level"].tolist()
    assert "unknown" in levels and "nan" not in levels


def test_missing_status_is_unknown_not_nan():
    df = _rows(("a", "1", "v1", "video1", True, "X"), ("b", "1", "v1", "video1", True, "Y"))
    people = pd.DataFrame({"participant_id": ["a", "b"], "status": ["completed", None]})
    assert analyze(df, people).participants["status"].tolist() == ["completed", "unknown"]


@pytest.mark.parametrize(
    "q1_correct", [True, False], ids=["all-correct", "none-correct"]
)  # fmt: skip
def test_plots_with_an_explainer_nobody_chose_and_extreme_accuracy(tmp_path, q1_correct):
    # Wilson bounds at 0 and 1 can miss the share by 4e-19: matplotlib refused the yerr
    df = _rows(*[(f"p{i}", "1", "v1", "video1", q1_correct, "shap") for i in range(7)])
    r = analyze(df, explainers=["gradcam", "shap", "ltpa"])
    assert r.choices["count"].tolist() == [0, 7, 0]
    assert r.choices["ci_low"].iloc[0] > 0  # 0 of 7: the bound misses 0 by a rounding error
    acc = r.accuracy_overall.iloc[0]
    assert acc["ci_low"] > acc["accuracy"] or acc["ci_high"] < acc["accuracy"]
    assert len(save_plots(r, tmp_path)) == 3
