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
Q1 accuracy: 85.2% of 708 (95% CI 82.4%-87.6%)
Q2 choices: GradCAM 165 (23%), SHAP 221 (31%), LTPA 137 (19%), Bonettini 185 (26%)
equal preference: chi2=21.15, df=3, p=9.79e-05
sign test GradCAM vs SHAP: 165:221, p=0.00505, Holm p=0.0253
sign test GradCAM vs LTPA: 165:137, p=0.12, Holm p=0.247
sign test GradCAM vs Bonettini: 165:185, p=0.31, Holm p=0.31
sign test SHAP vs LTPA: 221:137, p=1.05e-05, Holm p=6.33e-05
sign test SHAP vs Bonettini: 221:185, p=0.0823, Holm p=0.247
sign test LTPA vs Bonettini: 137:185, p=0.00871, Holm p=0.0348"""


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
    assert "**Q1 (which video is fake):** 85.2% correct of 708 (95% CI 82.4%–87.6%)" in md
    assert "Most chosen: **SHAP**." in md
    assert "Equal preference: χ² = 21.15, p = 9.79e-05." in md
    assert "sign test" not in md  # the page shows the sign tests as a table


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
