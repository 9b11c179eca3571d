"""The report model: one Report rendered as plain text (``xai-study analyze``) and as
Markdown (the results page)."""

from __future__ import annotations

import pandas as pd
import pytest

from xai_study.study.analysis import (
    REQUIRED_RESPONSE_COLUMNS,
    Line,
    Report,
    analyze,
    build_report,
    display_table,
    paper_counts_by_label,
    paper_responses,
)

#: What ``xai-study analyze`` prints for the paper's responses (docs/analysis.md).
PAPER_TEXT = """\
participants: 36 (35 completed, 1 not completed), answers: 708
Q1 accuracy: 85.2% of 708 (95% CI, participant bootstrap 85.0%-85.5%; Wilson, answers as independent 82.4%-87.6%)
Q2 choices: GradCAM 165 (23%), SHAP 221 (31%), LTPA 137 (19%), Bonettini 185 (26%)
choice model (conditional logit; 708 answers, 36 participants; SEs clustered by participant):
  term                   coef     se  odds ratio (95% CI) p
  explainer:SHAP        0.292  0.120   1.34 (1.06-1.69)   0.0149
  explainer:LTPA       -0.186  0.145   0.83 (0.63-1.10)   0.199
  explainer:Bonettini   0.114  0.103   1.12 (0.92-1.37)   0.264
  (no position terms: q2_order (the display order) is missing)
explainers differ (clustered Wald): chi2=22.95, df=3, p=0.000464 (F(3, 35))
preference by screen (clustered Wald, explainer x screen terms): chi2=2.42, df=3, p=0.498 (F(3, 35))
preference by familiarity (clustered Wald, explainer x familiarity terms): chi2=6.19, df=6, p=0.421 (F(6, 35))
preference x video: permutation p=0.177 (within participants, 999 shuffles); chi2=65.83, df=57, p=0.198 (min expected 6.8, expected counts ok)
Fleiss' kappa over 20 videos: 0.005 (95% CI -0.012 to 0.021, participant jackknife)
equal preference, answers taken as independent (chi-square): chi2=21.15, df=3, p=9.79e-05
sign test (participants) GradCAM vs SHAP: 12:23, p=0.0895, Holm p=0.448
sign test (participants) GradCAM vs LTPA: 19:13, p=0.377, Holm p=1
sign test (participants) GradCAM vs Bonettini: 13:18, p=0.473, Holm p=1
sign test (participants) SHAP vs LTPA: 26:6, p=0.000535, Holm p=0.00321
sign test (participants) SHAP vs Bonettini: 17:11, p=0.345, Holm p=1
sign test (participants) LTPA vs Bonettini: 11:20, p=0.15, Holm p=0.598"""


@pytest.fixture(scope="module")
def paper():
    return analyze(paper_responses())


def test_lines_render_in_their_forms_only():
    report = Report(
        Line(markdown="Study `x`"),
        [Line("a: 1", "**A:** 1"), Line(text="only text"), Line(markdown="only *markdown*")],
    )
    assert report.to_text() == "a: 1\nonly text"
    assert report.to_markdown() == "### Study `x`\n\n\n\n**A:** 1\n\nonly *markdown*"
    assert Report(lines=[Line("t", "m")]).to_markdown() == "m"
    assert Report(Line("title", None), [Line("t", "m")]).to_text() == "title\nt"


def test_paper_report_text_is_the_cli_summary(paper):
    assert paper.report().to_text() == PAPER_TEXT
    assert build_report(paper).to_text() == PAPER_TEXT


def test_paper_report_markdown_is_the_page_summary(paper):
    md = paper.report("paper").to_markdown()
    assert md.startswith("### Study `paper`\n\n")
    assert "**Participants:** 36 analysed (35 completed, 1 not completed" in md
    assert "**Q1 (which video is fake):** 85.2% correct of 708 (95% CI 85.0%–85.5%" in md
    assert "Wilson 82.4%–87.6%" in md
    assert "**Preference × video:** within-participant permutation p = 0.177" in md
    assert "Most chosen: **SHAP**." in md
    assert "equal preference (chi-square): χ² = 21.15, p = 9.79e-05." in md
    assert "sign test" not in md  # the page shows the sign tests as a table
    # the main result is the choice model's, with its clustered Wald test and table
    assert "**Main result (choice model, 708 answers of 36 participants" in md
    assert "the explainers differ: Wald χ² = 22.95, df = 3, p = 0.000464 (F(3, 35)" in md
    assert "| explainer:SHAP | 0.292 | 0.120 | 1.34 (1.06–1.69) | 0.0149 |" in md
    assert md.index("Main result") < md.index("take the answers as independent")


@pytest.mark.parametrize("label", list(paper_counts_by_label()))
def test_text_and_markdown_report_the_same_counts(paper, label):
    count = paper_counts_by_label()[label]
    share = f"{count / 708:.0%}"
    text, md = paper.report("s").to_text(), paper.report("s").to_markdown()
    assert f"{label} {count} ({share})" in text
    assert f"{label} {count} ({share})" in md


def test_markdown_escapes_names_text_keeps_them():
    df = paper_responses({"<b>x</b>": 3, "y": 1})
    report = analyze(df).report("a<study>")
    assert "<b>x</b> 3 (75%)" in report.to_text()
    md = report.to_markdown()
    assert "&lt;b&gt;x&lt;/b&gt; 3 (75%)" in md and "<b>" not in md
    assert md.startswith("### Study `a&lt;study&gt;`")


def test_empty_study_report():
    report = analyze(pd.DataFrame(columns=list(REQUIRED_RESPONSE_COLUMNS))).report("e")
    assert report.to_text() == "participants: 0 (0 completed, 0 not completed), answers: 0"
    assert report.to_markdown().endswith("**Q2:** no answers yet.")
    assert "Q1" not in report.to_markdown()


def test_display_table_rounds_only_float_columns(paper):
    shown = display_table(paper.choices, digits=2)
    assert shown["count"].tolist() == paper.choices["count"].tolist()
    assert shown["share"].tolist() == paper.choices["share"].round(2).tolist()
    assert paper.choices["share"].iloc[0] != shown["share"].iloc[0]  # a copy, not in place
