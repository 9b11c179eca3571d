"""The xai-study web app: one ``gr.Blocks`` with the survey at ``/``, the results page at
``/results`` and the live demo at ``/demo`` (each page module is optional: a page whose
module is not installed is left out)."""

from __future__ import annotations

import importlib
import logging
import secrets
from pathlib import Path
from typing import Any

import gradio as gr

from xai_study.study.flow import Survey
from xai_study.ui import survey as survey_page
from xai_study.ui.context import AppContext
from xai_study.ui.guard import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_QUEUE,
    DEMO_JOBS,
    GroupLimit,
    Guard,
    GuardState,
    Uploads,
    harden_queue,
)

log = logging.getLogger(__name__)

#: (navbar name, path, module) of the optional pages.
PAGES = (
    ("Results", "results", "xai_study.ui.results"),
    ("Demo", "demo", "xai_study.ui.demo"),
)


def _optional_page(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


#: Name of the database setting with the browser-storage secret.
STATE_SECRET_SETTING = "browser_state_secret"


def state_secret(ctx: AppContext) -> str:
    """The secret that encrypts the survey's browser storage: ``ctx.state_secret``, else
    the one kept in the database (generated on first start and shared by every server
    on it), so that a reload after a restart still resumes."""
    if ctx.state_secret:
        return ctx.state_secret
    return ctx.db.setting(STATE_SECRET_SETTING, lambda: secrets.token_urlsafe(32))


def build_app(ctx: AppContext) -> gr.Blocks:
    """Build (not launch) the app for ``ctx``; also sets ``ctx.extra['survey']``."""
    if "survey" not in ctx.extra:
        ctx.extra["survey"] = Survey(ctx.study, ctx.db)
    ctx.extra.setdefault("uploads", Uploads())  # the demo page releases its uploads
    ctx.study_row_id = ctx.extra["survey"].study_row_id
    with gr.Blocks(title=ctx.study.title, analytics_enabled=False) as blocks:
        survey_page.build(ctx, blocks, secret=state_secret(ctx))
    pages = []
    for name, path, module_name in PAGES:
        if path == "demo" and not ctx.demo:
            log.info("page /demo not served (--no-demo)")
            continue
        module = _optional_page(module_name)
        if module is None or not hasattr(module, "render"):
            log.info("page /%s skipped: %s not available", path, module_name)
            continue
        with blocks.route(name, f"/{path}", show_in_navbar=False):
            module.render(ctx)
        pages.append(path)
    ctx.extra["pages"] = pages
    return blocks


def launch_kwargs(ctx: AppContext, db_path: Path | None = None) -> dict[str, Any]:
    """``launch()`` options: serve only the study's media folder, limit uploads."""
    blocked = [str(ctx.study.path)] if ctx.study.path else []
    if db_path is not None:
        blocked += [str(db_path), str(db_path) + "-wal", str(db_path) + "-shm"]
    return {
        "allowed_paths": [str(ctx.study.media_dir)],
        "blocked_paths": blocked,
        "max_file_size": ctx.max_upload_bytes,
        "css": survey_page.CSS,
        "footer_links": [],
        "show_error": False,
    }


def _warm_up() -> None:
    """Import now what Gradio imports on the first event (every event switches
    matplotlib's backend, which imports pyplot: seconds of CPU), so that the first
    participant does not wait for it."""
    try:
        import matplotlib

        matplotlib.get_backend()
    except ImportError:
        pass


def launch_guarded(
    blocks: gr.Blocks,
    host: str,
    port: int,
    *,
    concurrency: int = 16,
    max_queue: int = DEFAULT_MAX_QUEUE,
    demo_jobs: int = 8,
    demo_jobs_per_client: int = 1,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    uploads: Uploads | None = None,
    media: dict[str, Path] | None = None,
    **launch: Any,
) -> str:
    """Queue and launch ``blocks`` (without blocking) with the server's guards; returns
    the local URL.

    The queue holds at most ``max_queue`` events, of which at most ``demo_jobs`` demo
    jobs (``demo_jobs_per_client`` per client address), and a message to a session that
    Gradio has evicted no longer stops it; direct ``/gradio_api/run/`` calls, which would
    skip the queue, are refused; ``GET /healthz`` reports the queue (503 once it has
    stopped); request bodies other than uploads are limited to ``max_body_bytes``;
    uploads must be videos and are limited and deleted as ``uploads`` says; ``media``
    (URL name -> file) are served as static files under ``/study-media/``."""
    from starlette.middleware import Middleware

    blocks.queue(default_concurrency_limit=concurrency, max_size=max_queue, api_open=False)
    harden_queue(
        blocks,
        {
            DEMO_JOBS: GroupLimit(
                total=demo_jobs,
                per_client=demo_jobs_per_client,
                message=(
                    "the demo is busy (or you already have a job running): please wait "
                    "for it to finish, then try again"
                ),
            )
        },
    )
    _warm_up()
    state = GuardState(max_body_bytes, uploads, media)
    state.blocks = blocks
    _, url, _ = blocks.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        app_kwargs={"middleware": [Middleware(Guard, state=state)]},
        **launch,
    )
    return url


def serve(
    ctx: AppContext,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    db_path: Path | None = None,
    concurrency: int = 16,
    block: bool = True,
    root_path: str | None = None,
    **guards: Any,
):
    """Build, queue and launch the app (``guards``: the limits of
    :func:`launch_guarded`; ``root_path``: the path or URL a reverse proxy serves it
    under, ``None``: Gradio's ``GRADIO_ROOT_PATH``). Returns ``(blocks, local_url)``."""
    blocks = build_app(ctx)
    extra = {} if root_path is None else {"root_path": root_path}
    url = launch_guarded(
        blocks,
        host,
        port,
        concurrency=concurrency,
        uploads=ctx.extra["uploads"],
        media=survey_page.media_files(ctx.study),
        **guards,
        **launch_kwargs(ctx, db_path),
        **extra,
    )
    if block:
        blocks.block_thread()
    return blocks, url
