"""The study's summary as one report model, rendered as plain text (what ``xai-study
analyze`` prints) and as Markdown (the results page).

A :class:`Report` is a title and a list of :class:`Line`. Each line carries the plain-text
and the Markdown form of the same statement; a form that is ``None`` is left out of that
rendering (the terminal summary lists the sign tests, the page shows demographics and all
three Q2 tests in their place, next to its tables).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # annotations only: tables.Analysis.report() imports this module
    from xai_study.study.analysis.tables import Analysis


@dataclass(frozen=True)
class Line:
    """One statement of a report: plain text and Markdown (``None``: not in that form)."""

    text: str | None = None
    markdown: str | None = None


@dataclass
class Report:
    """A titled list of lines; :meth:`to_text` and :meth:`to_markdown` render it."""

    title: Line | None = None
    lines: list[Line] = field(default_factory=list)

    def to_text(self) -> str:
        """One line per statement with a text form (the title first, if it has one)."""
        lines = [*([self.title] if self.title else []), *self.lines]
        return "\n".join(line.text for line in lines if line.text is not None)

    def to_markdown(self) -> str:
        """The title as a level-3 heading, then one paragraph per statement."""
        parts = []
        if self.title is not None and self.title.markdown is not None:
            parts += [f"### {self.title.markdown}", ""]
        parts += [line.markdown for line in self.lines if line.markdown is not None]
        return "\n\n".join(parts)


def _pct(value: float) -> str:
    return (
        "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"
    )


def _p(value: float) -> str:
    return "–" if value is None or math.isnan(float(value)) else f"{float(value):.3g}"


def _md(value: object) -> str:
    return html.escape(str(value))


def _participants(result: Analysis) -> list[Line]:
    o = result.overview
    text = (
        f"participants: {int(o['participants'])} ({int(o['completed'])} completed, "
        f"{int(o['dropped_out'])} not completed), answers: {int(o['answers'])}"
    )
    markdown = (
        f"**Participants:** {int(o['participants'])} analysed"
        f" ({int(o['completed'])} completed, {int(o['dropped_out'])} not completed"
        f" = {_pct(o['dropout_rate'])} drop-out or still in progress)"
        + (f"; {int(o['withdrawn'])} withdrawn, left out" if o["withdrawn"] else "")
        + (
            f"; {int(o['failed_attention_check'])} failed an attention check"
            if o["failed_attention_check"]
            else ""
        )
        + (f"; {int(o['speeders'])} speeders" if o.get("speeders") else "")
        + f". Answers: {int(o['answers'])}."
    )
    lines = [Line(text, markdown)]
    demo = result.demographics
    for var, label in (("screen", "Screen"), ("familiarity", "Familiar with deepfakes")):
        part = demo[demo["variable"] == var]
        if len(part):
            levels = ", ".join(f"{_md(r.level)} {_pct(r.share)}" for r in part.itertuples())
            lines.append(Line(markdown=f"**{label}:** {levels}"))
    return lines


def _q1(result: Analysis) -> list[Line]:
    acc = result.accuracy_overall.iloc[0]
    if not acc["n"] > 0:
        return []
    text = (
        f"Q1 accuracy: {acc['accuracy']:.1%} of {int(acc['n'])} "
        f"(95% CI, participant bootstrap {_pct(acc['boot_low'])}-{_pct(acc['boot_high'])}; "
        f"Wilson, answers as independent {acc['ci_low']:.1%}-{acc['ci_high']:.1%})"
    )
    markdown = (
        f"**Q1 (which video is fake):** {_pct(acc['accuracy'])} correct of {int(acc['n'])}"
        f" (95% CI {_pct(acc['boot_low'])}–{_pct(acc['boot_high'])}, bootstrap over"
        f" participants; Wilson {_pct(acc['ci_low'])}–{_pct(acc['ci_high'])});"
        f" {int(acc['dont_know'])} \u201cI do not know\u201d."
    )
    return [Line(text, markdown)]


_GOF = {"chisquare": "chi-square", "cochran_q": "Cochran's Q", "none": "-"}


def _q2(result: Analysis) -> list[Line]:
    c = result.choices
    text = None
    if len(c):
        text = "Q2 choices: " + ", ".join(
            f"{r.explainer} {int(r.count)} ({r.share:.0%})" for r in c.itertuples()
        )
    gof = result.tests.get("chi2_gof", {})
    gof_text = None
    if not math.isnan(float(gof.get("p_value", math.nan))):
        gof_text = (
            f"equal preference, answers taken as independent ({_GOF[gof['method']]}): "
            f"chi2={gof['statistic']:.2f}, df={int(gof['df'])}, p={gof['p_value']:.3g}"
        )
    if not (len(c) and c["count"].sum()):
        lines = [Line(text=text)] if text is not None else []
        return [*lines, Line(markdown="**Q2:** no answers yet.")]
    top = c.loc[c["count"].idxmax()]
    markdown = (
        "**Q2 (best explanation):** "
        + ", ".join(f"{_md(r.explainer)} {int(r.count)} ({r.share:.0%})" for r in c.itertuples())
        + f". Most chosen: **{_md(top['explainer'])}**."
    )
    ind = result.tests["chi2_independence"]
    kappa = result.tests["fleiss_kappa"]
    check = "expected counts ok" if ind.get("expected_ok") else "expected counts too small"
    video_md = (
        f"**Preference × video:** within-participant permutation p = {_p(ind['p_permutation'])}"
        f" ({int(ind['permutations'])} shuffles); χ² = {float(ind['statistic']):.2f},"
        f" p = {_p(ind['p_value'])} (smallest expected count {_f(ind['min_expected'], '.1f')},"
        f" {check}). **Fleiss' κ** = {_f(kappa['kappa'])}"
        f" (95% CI {_f(kappa['ci_low'])} to {_f(kappa['ci_high'])}, jackknife over"
        f" participants) over {int(kappa['subjects'])} videos."
    )
    video_text = None
    if not math.isnan(float(ind["statistic"])):
        video_text = (
            f"preference x video: permutation p={_p(ind['p_permutation'])} "
            f"(within participants, {int(ind['permutations'])} shuffles); chi2="
            f"{float(ind['statistic']):.2f}, df={int(ind['df'])}, p={_p(ind['p_value'])} "
            f"(min expected {_f(ind['min_expected'], '.1f')}, {check})"
        )
    kappa_text = None
    if not math.isnan(float(kappa["kappa"])):
        kappa_text = (
            f"Fleiss' kappa over {int(kappa['subjects'])} videos: {_f(kappa['kappa'])} "
            f"(95% CI {_f(kappa['ci_low'])} to {_f(kappa['ci_high'])}, participant jackknife)"
        )
    tests = (
        "Tests that take the answers as independent (a participant gives many, so read"
        " them only next to the model): "
        f"equal preference ({_GOF[gof['method']]}): χ² = {float(gof['statistic']):.2f},"
        f" p = {_p(gof['p_value'])}. "
        "Pairwise comparisons: see the table (its participant level respects the clustering)."
    )
    return [
        Line(text, markdown),
        Line(video_text, video_md),
        Line(kappa_text, None),
        Line(gof_text, tests),
    ]


def _f(value: float, spec: str = ".3f") -> str:
    return "–" if value is None or math.isnan(float(value)) else format(float(value), spec)


def _model(result: Analysis) -> list[Line]:
    """The choice model: its table (text), the joint tests and the main result."""
    m = result.model
    if not m.fitted:
        why = "; ".join(m.notes) or "not fitted"
        return [Line(f"choice model: {why}", f"**Choice model:** not fitted ({_md(why)}).")]
    head = (
        f"choice model (conditional logit; {m.answers} answers, {m.participants} participants;"
        " SEs clustered by participant):"
    )
    width = max(len("term"), *(len(str(t)) for t in m.table["term"]))
    text = [head, f"  {'term':<{width}}    coef     se  odds ratio (95% CI) p"]
    md_rows = [
        "| term | coef | SE | odds ratio (95% CI) | p |",
        "|---|---:|---:|---|---:|",
    ]
    for r in m.table.itertuples():
        ci = f"{math.exp(r.ci_low):.2f}-{math.exp(r.ci_high):.2f}"
        text.append(
            f"  {r.term:<{width}} {r.coef:7.3f} {r.se:6.3f}  {r.odds_ratio:5.2f} "
            f"{'(' + ci + ')':<13} {_p(r.p_value)}"
        )
        md_rows.append(
            f"| {_md(r.term)} | {r.coef:.3f} | {r.se:.3f} | {r.odds_ratio:.2f}"
            f" ({ci.replace('-', '–')}) | {_p(r.p_value)} |"
        )
    text += [f"  ({n})" for n in m.notes]
    lines = [Line("\n".join(text), None)]
    labels = {
        "explainer": ("explainers differ", "the explainers differ"),
        "position": ("display position matters", "the display position matters"),
        "metric": ("the animations' metrics matter", "the animations' metrics matter"),
    }
    tests_md = []
    for kind, (text_label, md_label) in labels.items():
        w = m.joint.get(kind, {})
        if math.isnan(float(w.get("p_value", math.nan))):
            continue
        lines.append(
            Line(
                f"{text_label} (clustered Wald): chi2={w['statistic']:.2f}, df={int(w['df'])}, "
                f"p={w['p_value']:.3g} (F({int(w['df'])}, {m.participants - 1}))"
            )
        )
        tests_md.append(
            f"{md_label}: Wald χ² = {w['statistic']:.2f}, df = {int(w['df'])},"
            f" p = {_p(w['p_value'])} (F({int(w['df'])}, {m.participants - 1}) reference)"
        )
    has_metrics = bool(m.table.term.str.startswith("metric:").any())
    for by, moderated in result.model_by.items():
        w = moderated.joint.get("moderator", {})
        if moderated.fitted and not math.isnan(float(w.get("p_value", math.nan))):
            lines.append(
                Line(
                    f"preference by {by} (clustered Wald, explainer x {by} terms): "
                    f"chi2={w['statistic']:.2f}, df={int(w['df'])}, p={w['p_value']:.3g} "
                    f"(F({int(w['df'])}, {moderated.participants - 1}))"
                )
            )
            tests_md.append(
                f"preference by {by}: Wald χ² = {w['statistic']:.2f}, df = {int(w['df'])},"
                f" p = {_p(w['p_value'])} (explainer × {by} terms)"
            )
    reference = next(
        (n for n in result.explainers if f"explainer:{n}" not in set(m.table.term)), ""
    )
    main = (
        f"**Main result (choice model, {m.answers} answers of {m.participants} participants,"
        f" SEs clustered by participant):** "
        + ("; ".join(tests_md) if tests_md else "no joint test")
        + f". Odds ratios are relative to {_md(reference)}"
        + (" and to position A" if (m.table.term.str.startswith("position:")).any() else "")
        + ("; metrics per standard deviation" if has_metrics else "")
        + "."
    )
    notes = "".join(f" {_md(n)}." for n in m.notes)
    lines.append(
        Line(
            None, main + ("\n\n" + "\n".join(md_rows)) + (f"\n\n*{notes.strip()}*" if notes else "")
        )
    )
    return lines


def _sign_tests(result: Analysis) -> list[Line]:
    person = result.sign_tests[result.sign_tests["level"] == "participant"]
    return [
        Line(
            text=f"sign test (participants) {r.explainer_a} vs {r.explainer_b}: "
            f"{int(r.n_a)}:{int(r.n_b)}, p={_p(r.p_value)}, Holm p={_p(r.p_holm)}"
        )
        for r in person.itertuples()
    ]


def build_report(result: Analysis, study: str | None = None) -> Report:
    """The summary of ``result``: participants and demographics, Q1 accuracy, Q2 choices
    and tests. ``study`` names the study in the (Markdown) title."""
    title = None if study is None else Line(markdown=f"Study `{_md(study)}`")
    q2 = _q2(result)
    lines = [
        *_participants(result),
        *_q1(result),
        *q2[:1],
        *(_model(result) if result.choices["count"].sum() else []),
        *q2[1:],
        *_sign_tests(result),
    ]
    return Report(title, lines)


def display_table(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A copy of ``frame`` with float columns rounded to ``digits``, for on-screen tables."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(digits)
    return out
