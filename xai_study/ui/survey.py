"""The participant survey page (``/``): consent -> demographics -> sections -> completion.

All logic and validation live in :class:`xai_study.study.flow.Survey`; this module only
lays out components and maps a :class:`~xai_study.study.flow.Step` to component updates.

The participant's resume token is kept in browser storage (``gr.BrowserState``, so a
reload resumes) and mirrored in a hidden textbox that every endpoint takes as its first
input: the endpoints are plain HTTP APIs (``/consent``, ``/demographics``, ``/q1``,
``/q2``, ``/check``, ``/resume``), so scripts (the load test) drive the same code as the browser,
and the server trusts nothing they send beyond the token itself.

Before the consent, the page holds a *consent key* (also in browser storage, handed out
by ``/resume``): ``/consent`` sends it, so a consent whose reply was lost and that is
sent again (or a reload after it) finds the participant it created instead of creating
a second one. Both values are encrypted in browser storage with a secret that is kept
in the database, so a restarted server still reads them.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gradio as gr

from xai_study.errors import XaiStudyError
from xai_study.study.flow import (
    FAMILIARITY_TEXT_KEYS,
    Q1_TEXT_KEYS,
    SCREEN_TEXT_KEYS,
    AlreadyStarted,
    NotAdmitted,
    Step,
    Survey,
    new_consent_key,
)
from xai_study.ui.context import AppContext
from xai_study.ui.guard import MEDIA_ROUTE

CSS = """
/* no navigation bar: Gradio draws one ("Home") as soon as an app has routes, and
   gr.Navbar(visible=False) did not remove it in Gradio 6.31; participants must not be
   pointed anywhere, admins open /results and /demo by URL */
.nav-holder { display: none !important; }
.xs-grid { display: flex; flex-wrap: wrap; gap: 8px; }
.xs-grid figure { flex: 1 1 240px; margin: 0; min-width: 0; }
.xs-grid.xs-anims figure { flex-basis: 150px; }
.xs-grid figcaption { font-weight: 600; margin-bottom: 2px; }
.xs-grid video { width: 100%; max-height: 42vh; background: #000; }
.xs-msg { color: #b91c1c; font-weight: 600; }
@media (max-width: 640px) {
  .xs-grid video { max-height: 30vh; }
  .gradio-container { padding: 4px !important; }
}
"""

#: The page's parts (``elem_id``s) and the steps that show them. Which part shows is
#: set by a ``<style>`` in the page's header (:func:`_page_style`), not by Gradio
#: visibility updates: an update of a layout block makes Gradio build a new component
#: per event, which was most of an answer's time under load (issue #20, item 9).
PARTS = {
    "xs-consent": ("consent",),
    "xs-demographics": ("demographics",),
    "xs-section": ("section",),
    "xs-check": ("check",),
    "xs-done": ("complete", "withdrawn", "closed", "screened_out"),
    "xs-withdraw": ("demographics", "section", "check", "complete", "screened_out"),
}


def _page_style(kind: str, phase: str = "", check_id: str = "", check_ids=()) -> str:
    """The ``<style>`` that hides every part of the page that step ``kind`` does not
    show (``phase`` q1/q2 of a section, ``check_id`` the attention check shown)."""
    hidden = [f"#{part}" for part, kinds in PARTS.items() if kind not in kinds]
    if kind == "section":
        hidden.append("#xs-part2" if phase == "q1" else "#xs-part1")
    hidden += [f"#xs-check-{cid}" for cid in check_ids if cid != check_id]
    if not hidden:
        return ""
    return f"<style>{', '.join(hidden)} {{ display: none !important; }}</style>"


def media_name(study, path) -> str:
    """The URL name of a media file of ``study`` (its path under ``media/``)."""
    return Path(path).resolve().relative_to(study.media_dir.resolve()).as_posix()


def media_files(study) -> dict[str, Path]:
    """URL name -> file of every video or animation the study shows (what the server
    serves under ``/study-media/``; nothing else)."""
    files: dict[str, Path] = {}
    for sec in study.sections:
        for path in (sec.real, sec.fake, *sec.animations.values()):
            files[media_name(study, path)] = Path(path)
    return files


def _media_html(study, items, *, animations: bool) -> str:
    """``<video>`` elements for (caption, file) pairs, served as static files (relative
    URLs, so a reverse proxy's root path works). Animations play muted in a loop; the
    two Q1 videos have controls. No download button."""
    figures = []
    for caption, path in items:
        src = html.escape(f"{MEDIA_ROUTE}/{quote(media_name(study, path))}", quote=True)
        if animations:
            attrs = "autoplay loop muted playsinline"
        else:
            attrs = "controls playsinline preload='auto'"
        figures.append(
            f"<figure><figcaption>{html.escape(caption)}</figcaption>"
            f"<video src='{src}' {attrs} controlslist='nodownload' disablepictureinpicture"
            " oncontextmenu='return false'></video></figure>"
        )
    kind = "xs-grid xs-anims" if animations else "xs-grid"
    return f"<div class='{kind}'>{''.join(figures)}</div>"


def _consent_text(ctx: AppContext) -> str:
    """The consent page's text: the intro and the consent Markdown (``texts.consent``,
    e.g. from ``build-study --consent FILE.md``), with retention, contact and the number
    of sections filled in."""
    st = ctx.study
    body = st.text(
        "consent",
        retention=html.escape(st.retention),
        contact=html.escape(st.contact),
        sections=st.sections_shown,
    )
    return f"{html.escape(st.text('intro'))}\n\n{body}\n"


def _header_html(title: str, participant_id: str, style: str, label: str = "participant id") -> str:
    head = f"<h1>{html.escape(title)}</h1>"
    if participant_id:
        head += (
            f"<p><small>{html.escape(label)}: <code>{html.escape(participant_id)}</code>"
            "</small></p>"
        )
    return style + head


def _bold_html(markdown: str) -> str:
    """A one-line text with ``**bold**`` parts as HTML (everything else escaped)."""
    parts = html.escape(markdown).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def _done_text(st, step: Step) -> str:
    """The completion page's Markdown for a final step ('' for the others)."""
    if step.kind == "withdrawn":
        text = f"## {html.escape(st.text('left_title'))}\n\n"
        if step.deleted:
            text += html.escape(st.text("left_deleted"))
        else:
            text += html.escape(st.text("left_kept", contact=st.contact))
        return text + f"\n\n{html.escape(st.text('left_return'))}"
    if step.kind == "screened_out":
        text = (
            f"## {html.escape(st.text('screenout_title'))}\n\n"
            f"{html.escape(st.text('screenout_body'))}"
        )
        if step.code:
            code = html.escape(step.code)
            text += (
                f"\n\n{html.escape(st.text('screenout_code'))} "
                f"**<span id='xs-screenout-code'>{code}</span>**"
            )
        else:
            text += f"\n\n{html.escape(st.text('screenout_return'))}"
        if step.redirect:
            url = html.escape(step.redirect, quote=True)
            text += f"\n\n[{html.escape(st.text('return_link'))}]({url})"
        return text
    if step.kind == "complete":
        code = html.escape(step.code)
        text = (
            f"## {html.escape(st.text('complete_title'))}\n\n"
            f"{html.escape(st.text('completion_code'))} "
            f"**<span id='xs-completion-code'>{code}</span>**"
        )
        if step.redirect:
            url = html.escape(step.redirect, quote=True)
            text += f"\n\n[{html.escape(st.text('return_link'))}]({url})"
        return text
    return ""


def build(ctx: AppContext, blocks: gr.Blocks, secret: str | None = None) -> dict[str, Any]:
    """Lay out the survey in the current ``gr.Blocks`` and wire its events. ``secret``
    encrypts the browser storage (the same secret must be used after a restart for a
    reload to resume; None: a random one per process).

    Every event answers with plain values (``postprocess=False``) for a few components:
    which parts of the page show is a ``<style>`` in the header, and the videos are
    ``<video>`` elements whose files the server serves as static files
    (``/study-media/``), so no event sends a layout update or a Gradio file output."""
    survey: Survey = ctx.extra["survey"]
    st = ctx.study
    n_anim = len(st.explainers)
    labels = [chr(ord("A") + i) for i in range(n_anim)]
    check_ids = [chk.id for chk in st.attention_checks]

    browser_token = gr.BrowserState(None, storage_key=f"xai-study-{st.name}", secret=secret)
    browser_key = gr.BrowserState(None, storage_key=f"xai-study-{st.name}-consent", secret=secret)
    token = gr.Textbox(visible="hidden", label="token", elem_id="xs-token")
    consent_key = gr.Textbox(visible="hidden", label="consent key", elem_id="xs-consent-key")
    item_id = gr.Textbox(visible="hidden", label="item", elem_id="xs-item")
    # the page's header: the title, the participant id and the <style> of the step
    # (before the first event: every part hidden, the page is loading)
    header = gr.HTML(
        _header_html(st.title, "", _page_style("loading", check_ids=check_ids)),
        elem_id="xs-header",
    )
    message = gr.Markdown("", elem_classes=["xs-msg"], elem_id="xs-message")

    with gr.Column(elem_id="xs-consent"):
        gr.Markdown(_consent_text(ctx))
        agree = gr.Checkbox(
            label=st.text("consent_agree"),
            elem_id="xs-agree",
        )
        consent_btn = gr.Button(st.text("start_button"), variant="primary", elem_id="xs-start")

    with gr.Column(elem_id="xs-demographics"):
        gr.Markdown(f"### {html.escape(st.text('about_you'))}")
        screen = gr.Radio(
            [(st.text(t), k) for k, t in SCREEN_TEXT_KEYS.items()],
            label=st.text("screen_question"),
            elem_id="xs-screen",
        )
        familiarity = gr.Radio(
            [(st.text(t), k) for k, t in FAMILIARITY_TEXT_KEYS.items()],
            label=st.text("familiarity_question"),
            elem_id="xs-familiarity",
        )
        demo_btn = gr.Button(st.text("continue_button"), variant="primary", elem_id="xs-demo-next")

    with gr.Column(elem_id="xs-section"):
        # progress line, the question and its videos (Q1: the two videos; Q2: the
        # animations, never sent before Q1 is stored: they show the fake face)
        section_html = gr.HTML("", elem_id="xs-stimuli")
        with gr.Column(elem_id="xs-part1"):
            q1 = gr.Radio(
                [(st.text(t), k) for k, t in Q1_TEXT_KEYS.items()],
                label=st.text("q1"),
                elem_id="xs-q1",
            )
            q1_btn = gr.Button(st.text("next_button"), variant="primary", elem_id="xs-q1-next")
        with gr.Column(elem_id="xs-part2"):
            choices = [(st.text("animation", label=lab), lab) for lab in labels]
            if st.q2_mode == "multiple":
                q2 = gr.CheckboxGroup(choices, label=st.text("q2_label_multiple"), elem_id="xs-q2")
            else:
                q2 = gr.Radio(choices, label=st.text("q2_label"), elem_id="xs-q2")
            answer_btn = gr.Button(st.text("save_button"), variant="primary", elem_id="xs-answer")

    with gr.Column(elem_id="xs-check"):
        check_md = gr.Markdown("")
        # one radio per check, with fixed choices (validated by gradio without session)
        check_radios = {
            chk.id: gr.Radio(
                list(chk.choices), label=st.text("check_label"), elem_id=f"xs-check-{chk.id}"
            )
            for chk in st.attention_checks
        }
        check_btn = gr.Button(
            st.text("continue_button"), variant="primary", elem_id="xs-check-next"
        )

    with gr.Column(elem_id="xs-done"):
        done_md = gr.Markdown("", elem_id="xs-code")

    with (
        gr.Column(elem_id="xs-withdraw"),
        gr.Accordion(st.text("leave_title"), open=False, elem_id="xs-withdraw-open"),
    ):
        gr.Markdown(html.escape(st.text("leave_body")))
        erase = gr.Checkbox(label=st.text("leave_delete"), value=True, elem_id="xs-erase")
        withdraw_btn = gr.Button(
            st.text("leave_button"), variant="stop", size="sm", elem_id="xs-withdraw-btn"
        )

    # the API's output order (scripts read token [1], item [2], message [4], consent
    # key [-2] and the completion page [-1])
    outputs = [
        browser_token,
        token,
        item_id,
        header,
        message,
        section_html,
        q1,
        q2,
        check_md,
        *check_radios.values(),
        browser_key,
        consent_key,
        done_md,
    ]
    skip = gr.skip
    q2_empty: Any = [] if st.q2_mode == "multiple" else None

    def view(step: Step, tok: str | None, msg: str = "", key: str | None = None) -> list[Any]:
        """The components' new values for a step (plain values, nothing skipped)."""
        par_id = step.participant_id
        if tok and not par_id:
            par = survey.participant(tok)
            par_id = par.id if par else ""
        item = ""
        stimuli = ""
        check_text = ""
        done = ""
        if step.kind == "section":
            sv = step.section
            item = sv["section"]
            first = step.phase == "q1"
            prog = st.text(
                "progress",
                position=step.position,
                total=step.total,
                question=1 if first else 2,
                answered=step.answered,
            )
            progress = f"<p id='xs-progress'>{_bold_html(prog)}</p>"
            if first:
                question = html.escape(st.text("q1"))
                media = _media_html(
                    st,
                    [(st.text("video", k=i), path) for i, path in enumerate(sv["videos"], 1)],
                    animations=False,
                )
            else:
                q2_key = "q2_multiple" if st.q2_mode == "multiple" else "q2"
                question = html.escape(st.text(q2_key))
                media = _media_html(
                    st,
                    [(st.text("animation", label=lab), path) for lab, path in sv["animations"]],
                    animations=True,
                )
            number = 1 if first else 2
            head = html.escape(st.text("question", question=number))
            stimuli = f"{progress}<h3>{head} {question}</h3>{media}"
        elif step.kind == "check":
            item = step.check.id
            check_text = f"### {html.escape(step.check.question)}"
        else:
            done = _done_text(st, step)
        style = _page_style(
            step.kind, step.phase, step.check.id if step.kind == "check" else "", check_ids
        )
        return [
            tok or None,
            tok or "",
            item,
            _header_html(st.title, par_id, style, st.text("participant_id")),
            html.escape(msg),
            stimuli,
            None,
            q2_empty,
            check_text,
            *[None] * len(check_radios),
            *([key, key] if key else [skip(), skip()]),
            done,
        ]

    def error_view(msg: str) -> list[Any]:
        upd = [skip()] * len(outputs)
        upd[outputs.index(message)] = html.escape(msg)
        return upd

    def blocked_view(msg: str) -> list[Any]:
        """A known PROLIFIC_PID without its token: the message only, no consent form."""
        upd = error_view(msg)
        upd[outputs.index(header)] = _header_html(
            st.title, "", _page_style("blocked", check_ids=check_ids)
        )
        return upd

    def closed_view(refused: NotAdmitted) -> list[Any]:
        """Someone new whom the study does not admit (full, or no PROLIFIC_PID): that
        page only, no consent form."""
        upd = view(Step("closed"), None)
        upd[outputs.index(done_md)] = (
            f"## {html.escape(str(refused)[:1].upper() + str(refused)[1:])}."
        )
        return upd

    def fresh_key(saved: Any) -> str:
        """The page's consent key: the stored one while no consent used it (so tabs of
        one browser share it), else a new one."""
        try:
            if saved and survey.by_consent_key(saved) is None:
                return str(saved)
        except XaiStudyError:
            pass  # malformed: replace it
        return new_consent_key()

    def params_of(request: gr.Request | None) -> dict[str, str]:
        if request is None:
            return {}
        try:
            qp = dict(request.query_params)
        except Exception:
            return {}
        return {k: qp[k] for k in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID") if k in qp}

    def on_resume(saved: str | None, saved_key: str | None, request: gr.Request):
        try:
            try:
                par = survey.find(saved, params_of(request), saved_key)
            except AlreadyStarted as exc:
                return blocked_view(str(exc))
            tok = par.token if par is not None else None
            if par is None:
                refused = survey.admission(params_of(request))
                if refused is not None:
                    return closed_view(refused)
            return view(survey.step(tok), tok, key=fresh_key(saved_key))
        except XaiStudyError as exc:
            return error_view(str(exc))

    def on_consent(tok: str | None, agreed: bool, key: str | None, request: gr.Request):
        try:
            params = params_of(request)
            try:
                par = survey.find(tok, params, key) or survey.consent(agreed, params, key)
            except AlreadyStarted as exc:
                return blocked_view(str(exc))
            except NotAdmitted as exc:
                return closed_view(exc)
            # the key is used now: the page gets a fresh one (for a consent after leaving)
            return view(survey.step(par.token), par.token, key=new_consent_key())
        except XaiStudyError as exc:
            return error_view(str(exc))

    def on_demographics(tok: str, scr: str, fam: str):
        try:
            return view(survey.submit_demographics(tok, scr, fam), tok)
        except XaiStudyError as exc:
            return error_view(str(exc))

    def on_q1(tok: str, section: str, a1: str):
        try:
            return view(survey.submit_q1(tok, section, a1), tok)
        except XaiStudyError as exc:
            return error_view(str(exc))

    def on_answer(tok: str, section: str, a2: Any):
        try:
            return view(survey.submit_q2(tok, section, a2), tok)
        except XaiStudyError as exc:
            return error_view(str(exc))

    def on_check(tok: str, check: str, *answers: str):
        try:
            ids = list(check_radios)
            ans = answers[ids.index(check)] if check in ids else None
            return view(survey.submit_check(tok, check, ans), tok)
        except XaiStudyError as exc:
            return error_view(str(exc))

    def on_withdraw(tok: str, delete: bool):
        try:
            return view(survey.withdraw(tok, delete), tok)
        except XaiStudyError as exc:
            return error_view(str(exc))

    common = {
        "outputs": outputs,
        "trigger_mode": "once",
        "show_progress": "minimal",
        "postprocess": False,  # plain values: no per-component processing per event
    }
    blocks.load(on_resume, inputs=[browser_token, browser_key], api_name="resume", **common)
    consent_btn.click(on_consent, inputs=[token, agree, consent_key], api_name="consent", **common)
    demo_btn.click(
        on_demographics, inputs=[token, screen, familiarity], api_name="demographics", **common
    )
    q1_btn.click(on_q1, inputs=[token, item_id, q1], api_name="q1", **common)
    answer_btn.click(on_answer, inputs=[token, item_id, q2], api_name="q2", **common)
    check_btn.click(
        on_check, inputs=[token, item_id, *check_radios.values()], api_name="check", **common
    )
    withdraw_btn.click(on_withdraw, inputs=[token, erase], api_name="withdraw", **common)
    return {"outputs": outputs, "token": token}
