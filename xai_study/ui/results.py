"""The admin results page (``/results``): live statistics, plots and CSV downloads.

Locked behind the admin password (``XAI_STUDY_ADMIN_PASSWORD``; in production mode, or
when the server listens on more than loopback, there is no default and the page stays
locked without it). Every event handler checks the password itself (hidden endpoints
are still callable over HTTP), so nothing is computed or sent to a caller without it;
the check is constant-time and wrong passwords are limited per client address
(``PASSWORD_ATTEMPTS`` per ``PASSWORD_WINDOW_S``), whichever route a call takes. The
numbers come from :func:`xai_study.study.analysis.analyze` on the database's tables, as
with ``xai-study analyze --db``, and the summary is the same report that command prints,
rendered as Markdown. When the served study's
sections carry animation metrics (``build-study``'s ``meta``), the choice model includes
them, as ``xai-study analyze --study-dir`` does; the summary states its main result.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from xai_study.study.analysis import (
    Analysis,
    analyze,
    animation_metrics,
    display_table,
    figures,
    load_database,
    write_model_tables,
)
from xai_study.study.export import export_analysis, export_tables
from xai_study.ui.context import AppContext
from xai_study.ui.guard import RateLimiter, client_of

#: Seconds between automatic refreshes once logged in.
REFRESH_SECONDS = 30
#: Wrong passwords allowed per client address within PASSWORD_WINDOW_S seconds; then
#: every attempt (right or wrong) is refused until the window has passed.
PASSWORD_ATTEMPTS = 5
PASSWORD_WINDOW_S = 300.0
#: Extra pause after a wrong password, in seconds (0: the per-client limit does the job;
#: a pause holds a worker thread, which slowed the survey under guessing).
WRONG_PASSWORD_DELAY = 0.0
DOWNLOADS = (
    "responses.csv",
    "participants.csv",
    "stats.csv",
    "preference_model.csv",
    "sign_tests.csv",
)


@dataclass
class Payload:
    """What the page shows after a successful login / refresh."""

    analysis: Analysis
    files: dict[str, Path]
    overview_md: str


class _Files:
    """One temporary folder per refresh; the previous one is removed (Gradio has
    copied the files into its own cache by then)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dirs: list[Path] = []

    def new(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="xai-study-results-"))
        with self._lock:
            self._dirs.append(path)
            old, self._dirs = self._dirs[:-4], self._dirs[-4:]
        for d in old:
            shutil.rmtree(d, ignore_errors=True)
        return path


def build_payload(ctx: AppContext, out_dir: Path) -> Payload:
    """Analyse the live database and write the downloadable CSVs into ``out_dir`` (the
    tables are read once, so the downloads and the statistics agree)."""
    study = ctx.study.name
    responses, participants = load_database(ctx.db, study)
    # the study's own animation metrics (build-study's meta), when it has them
    shown = animation_metrics(ctx.study) or None
    result = analyze(responses, participants, animation_metrics=shown)
    export_tables(responses, participants, out_dir)
    export_analysis(result, out_dir)
    write_model_tables(result, out_dir)
    files = {name: out_dir / name for name in DOWNLOADS}
    return Payload(result, files, result.report(study).to_markdown())


def render(ctx: AppContext) -> dict[str, Any]:
    """Lay out the results page inside the current Blocks / route context."""
    files = _Files()
    limiter = RateLimiter(PASSWORD_ATTEMPTS, PASSWORD_WINDOW_S)

    gr.Markdown("# Study results")
    locked = not ctx.admin_password
    with gr.Row(equal_height=True):
        password = gr.Textbox(
            type="password",
            label="Admin password",
            placeholder="locked: set XAI_STUDY_ADMIN_PASSWORD" if locked else "",
            interactive=not locked,
            scale=3,
            elem_id="xs-admin-password",
        )
        login = gr.Button("Show results", variant="primary", scale=1, interactive=not locked)
    status = gr.Markdown(
        "The results page is locked: start the server with XAI_STUDY_ADMIN_PASSWORD set."
        if locked
        else "",
        elem_id="xs-results-status",
    )
    with gr.Column(visible=False, elem_id="xs-results") as body:
        overview = gr.Markdown(elem_id="xs-results-overview")
        with gr.Row():
            refresh = gr.Button("Refresh now", size="sm")
            auto = gr.Checkbox(value=True, label=f"Refresh every {REFRESH_SECONDS} s")
        with gr.Row():
            dl = {
                name: gr.DownloadButton(f"Download {name}", size="sm", elem_id=f"xs-dl-{i}")
                for i, name in enumerate(DOWNLOADS)
            }
        with gr.Row():
            plot_choices = gr.Plot(label="Q2 choice shares", format="png", show_label=False)
            plot_accuracy = gr.Plot(
                label="Q1 accuracy by familiarity", format="png", show_label=False
            )
        plot_video = gr.Plot(label="Preference per video", format="png", show_label=False)
        model = gr.Dataframe(
            label="Choice model (conditional logit, SEs clustered by participant)",
            interactive=False,
        )
        choices = gr.Dataframe(label="Q2 choices per explainer (95% Wilson CI)", interactive=False)
        sign_tests = gr.Dataframe(
            label="Pairwise sign tests (answer and participant level, Holm-corrected)",
            interactive=False,
        )
        correlations = gr.Dataframe(
            label="Spearman correlation of preference share with the mean metrics "
            "(descriptive: only as many points as explainers)",
            interactive=False,
        )
        with gr.Row():
            acc_fam = gr.Dataframe(label="Q1 accuracy by familiarity", interactive=False)
            demographics = gr.Dataframe(label="Demographics", interactive=False)
        acc_video = gr.Dataframe(label="Q1 accuracy per video", interactive=False)
        dropout = gr.Dataframe(
            label="Drop-out: participants who answered at least k sections", interactive=False
        )
    timer = gr.Timer(REFRESH_SECONDS, active=False)

    tables = [model, choices, sign_tests, correlations, acc_fam, demographics, acc_video, dropout]
    plots = [plot_choices, plot_accuracy, plot_video]
    outputs = [status, body, overview, *plots, *tables, *dl.values(), timer]

    def denied(message: str) -> list[Any]:
        empty = pd.DataFrame()
        return [
            message,
            gr.Column(visible=False),
            "",
            *[None] * len(plots),
            *[empty] * len(tables),
            *[None for _ in dl],
            gr.Timer(active=False),
        ]

    def show(
        pw: str | None, keep_refreshing: bool = True, request: gr.Request | None = None
    ) -> list[Any]:
        if not ctx.admin_password:
            return denied("The results page is locked (no admin password configured).")
        client = client_of(request)
        wait = limiter.blocked(client)
        if wait:  # not even a right password counts now: guessing stays slow
            return denied(f"Too many wrong passwords: try again in {math.ceil(wait)} s.")
        if not ctx.check_admin(pw):
            limiter.fail(client)
            if WRONG_PASSWORD_DELAY:
                time.sleep(WRONG_PASSWORD_DELAY)
            return denied("Wrong password.")
        payload = build_payload(ctx, files.new())
        r = payload.analysis
        figs = figures(r)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        return [
            f"Updated {stamp}.",
            gr.Column(visible=True),
            payload.overview_md,
            figs["choice_shares"],
            figs["accuracy_by_familiarity"],
            figs["preference_by_video"],
            display_table(r.model.table),
            display_table(r.choices),
            display_table(r.sign_tests),
            display_table(r.correlations),
            display_table(r.accuracy_by_familiarity),
            display_table(r.demographics),
            display_table(r.accuracy_by_video),
            r.reached,
            *[str(payload.files[name]) for name in dl],
            gr.Timer(active=bool(keep_refreshing)),
        ]

    common = {"outputs": outputs, "api_visibility": "private", "concurrency_limit": 2}
    login.click(show, inputs=[password, auto], **common)
    password.submit(show, inputs=[password, auto], **common)
    refresh.click(show, inputs=[password, auto], **common)
    timer.tick(show, inputs=[password, auto], show_progress="hidden", **common)
    auto.change(
        lambda on: gr.Timer(active=bool(on)), inputs=auto, outputs=timer, api_visibility="private"
    )
    return {"password": password, "status": status, "body": body, "show": show, "outputs": outputs}
