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
from typing import Any

import gradio as gr

from xai_study.errors import XaiStudyError
from xai_study.study.flow import (
    FAMILIARITY_TEXT_KEYS,
    Q1_TEXT_KEYS,
    SCREEN_TEXT_KEYS,
    AlreadyStarted,
    Step,
    Survey,
    new_consent_key,
)
from xai_study.ui.context import AppContext

CSS = """
/* no navigation bar: Gradio draws one ("Home") as soon as an app has routes, and
   gr.Navbar(visible=False) did not remove it in Gradio 6.31; participants must not be
   pointed anywhere, admins open /results and /demo by URL */
.nav-holder { display: none !important; }
.xs-media video { max-height: 42vh; }
.xs-msg { color: #b91c1c; font-weight: 600; }
@media (max-width: 640px) {
  .xs-media video { max-height: 30vh; }
  .gradio-container { padding: 4px !important; }
}
"""


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


def build(ctx: AppContext, blocks: gr.Blocks, secret: str | None = None) -> dict[str, Any]:
    """Lay out the survey in the current ``gr.Blocks`` and wire its events. ``secret``
    encrypts the browser storage (the same secret must be used after a restart for a
    reload to resume; None: a random one per process)."""
    survey: Survey = ctx.extra["survey"]
    st = ctx.study
    n_anim = len(st.explainers)
    labels = [chr(ord("A") + i) for i in range(n_anim)]

    browser_token = gr.BrowserState(None, storage_key=f"xai-study-{st.name}", secret=secret)
    browser_key = gr.BrowserState(None, storage_key=f"xai-study-{st.name}-consent", secret=secret)
    token = gr.Textbox(visible="hidden", label="token", elem_id="xs-token")
    consent_key = gr.Textbox(visible="hidden", label="consent key", elem_id="xs-consent-key")
    item_id = gr.Textbox(visible="hidden", label="item", elem_id="xs-item")
    header = gr.Markdown(f"# {html.escape(st.title)}", elem_id="xs-header")
    message = gr.Markdown("", elem_classes=["xs-msg"], elem_id="xs-message")

    with gr.Column(visible=True, elem_id="xs-consent") as consent_col:
        gr.Markdown(_consent_text(ctx))
        agree = gr.Checkbox(
            label=st.text("consent_agree"),
            elem_id="xs-agree",
        )
        consent_btn = gr.Button(st.text("start_button"), variant="primary", elem_id="xs-start")

    with gr.Column(visible=False, elem_id="xs-demographics") as demo_col:
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

    with gr.Column(visible=False, elem_id="xs-section") as section_col:
        progress = gr.Markdown("", elem_id="xs-progress")
        with gr.Column(elem_id="xs-part1") as part1:
            q1_head = html.escape(f"{st.text('question', question=1)} {st.text('q1')}")
            gr.Markdown(f"### {q1_head}")
            with gr.Row():
                video1 = gr.Video(
                    label=st.text("video", k=1),
                    interactive=False,
                    buttons=[],
                    elem_classes=["xs-media"],
                    min_width=240,
                )
                video2 = gr.Video(
                    label=st.text("video", k=2),
                    interactive=False,
                    buttons=[],
                    elem_classes=["xs-media"],
                    min_width=240,
                )
            q1 = gr.Radio(
                [(st.text(t), k) for k, t in Q1_TEXT_KEYS.items()],
                label=st.text("q1"),
                elem_id="xs-q1",
            )
            q1_btn = gr.Button(st.text("next_button"), variant="primary", elem_id="xs-q1-next")
        with gr.Column(visible=False, elem_id="xs-part2") as part2:
            q2_key = "q2_multiple" if st.q2_mode == "multiple" else "q2"
            q2_head = html.escape(f"{st.text('question', question=2)} {st.text(q2_key)}")
            gr.Markdown(f"### {q2_head}")
            anims = []
            with gr.Row():
                for lab in labels:
                    anims.append(
                        gr.Video(
                            label=st.text("animation", label=lab),
                            interactive=False,
                            buttons=[],
                            autoplay=True,
                            loop=True,
                            elem_classes=["xs-media"],
                            min_width=150,
                        )
                    )
            choices = [(st.text("animation", label=lab), lab) for lab in labels]
            if st.q2_mode == "multiple":
                q2 = gr.CheckboxGroup(choices, label=st.text("q2_label_multiple"), elem_id="xs-q2")
            else:
                q2 = gr.Radio(choices, label=st.text("q2_label"), elem_id="xs-q2")
            answer_btn = gr.Button(st.text("save_button"), variant="primary", elem_id="xs-answer")

    with gr.Column(visible=False, elem_id="xs-check") as check_col:
        check_md = gr.Markdown("")
        # one radio per check, with fixed choices (validated by gradio without session)
        check_radios = {
            chk.id: gr.Radio(
                list(chk.choices),
                label=st.text("check_label"),
                visible=False,
                elem_id=f"xs-check-{chk.id}",
            )
            for chk in st.attention_checks
        }
        check_btn = gr.Button(
            st.text("continue_button"), variant="primary", elem_id="xs-check-next"
        )

    with gr.Column(visible=False, elem_id="xs-done") as done_col:
        done_md = gr.Markdown("", elem_id="xs-code")

    with (
        gr.Column(visible=False, elem_id="xs-withdraw") as withdraw_col,
        gr.Accordion(st.text("leave_title"), open=False, elem_id="xs-withdraw-open"),
    ):
        gr.Markdown(html.escape(st.text("leave_body")))
        erase = gr.Checkbox(label=st.text("leave_delete"), value=True, elem_id="xs-erase")
        withdraw_btn = gr.Button(
            st.text("leave_button"), variant="stop", size="sm", elem_id="xs-withdraw-btn"
        )

    outputs = [
        browser_token,
        token,
        item_id,
        header,
        message,
        consent_col,
        demo_col,
        section_col,
        check_col,
        done_col,
        withdraw_col,
        part1,
        part2,
        progress,
        video1,
        video2,
        *anims,
        q1,
        q2,
        check_md,
        *check_radios.values(),
        browser_key,
        consent_key,
        done_md,
    ]
    skip = gr.skip

    def view(step: Step, tok: str | None, msg: str = "", key: str | None = None) -> list[Any]:
        """Component updates for a step."""
        vis = {k: step.kind == k for k in ("consent", "demographics", "section", "check")}
        vis["complete"] = step.kind in ("complete", "withdrawn")
        par_id = ""
        if tok:
            par = survey.participant(tok)
            par_id = par.id if par else ""
        head = f"# {html.escape(st.title)}"
        if par_id:
            head += f"\n<small>{html.escape(st.text('participant_id'))}: `{par_id}`</small>"
        sec_updates: list[Any] = [skip()] * (2 + 2 + n_anim + 2)
        item = ""
        prog = skip()
        check_upd = [skip()] * (1 + len(check_radios))
        done = skip()
        if step.kind == "section":
            sv = step.section
            item = sv["section"]
            first = step.phase == "q1"
            # the animations show the fake face: never send them before Q1 is stored
            sec_updates = [
                gr.update(visible=first),
                gr.update(visible=not first),
                gr.update(value=str(sv["videos"][0]) if first else None),
                gr.update(value=str(sv["videos"][1]) if first else None),
                *[gr.update(value=None if first else str(path)) for _, path in sv["animations"]],
                gr.update(value=None),
                gr.update(value=[] if st.q2_mode == "multiple" else None),
            ]
            prog = st.text(
                "progress",
                position=step.position,
                total=step.total,
                question=1 if first else 2,
                answered=step.answered,
            )
        elif step.kind == "check":
            item = step.check.id
            check_upd = [
                gr.update(value=f"### {html.escape(step.check.question)}"),
                *[gr.update(visible=cid == step.check.id, value=None) for cid in check_radios],
            ]
        elif step.kind == "withdrawn":
            text = f"## {html.escape(st.text('left_title'))}\n\n"
            if step.deleted:
                text += html.escape(st.text("left_deleted"))
            else:
                text += html.escape(st.text("left_kept", contact=st.contact))
            text += f"\n\n{html.escape(st.text('left_return'))}"
            done = gr.update(value=text)
        elif step.kind == "complete":
            code = html.escape(step.code)
            text = (
                f"## {html.escape(st.text('complete_title'))}\n\n"
                f"{html.escape(st.text('completion_code'))} "
                f"**<span id='xs-completion-code'>{code}</span>**"
            )
            if step.redirect:
                url = html.escape(step.redirect, quote=True)
                text += f"\n\n[{html.escape(st.text('return_link'))}]({url})"
            done = gr.update(value=text)
        return [
            tok or None,
            tok or "",
            item,
            head,
            html.escape(msg),
            gr.update(visible=vis["consent"]),
            gr.update(visible=vis["demographics"]),
            gr.update(visible=vis["section"]),
            gr.update(visible=vis["check"]),
            gr.update(visible=vis["complete"]),
            gr.update(visible=step.kind in ("demographics", "section", "check", "complete")),
            *sec_updates[:2],
            prog,
            *sec_updates[2:],
            *check_upd,
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
        upd[outputs.index(consent_col)] = gr.update(visible=False)
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

    common = {"outputs": outputs, "trigger_mode": "once", "show_progress": "minimal"}
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
