"""In headless Chromium (issue 20): a reload after a server restart resumes without a
PROLIFIC_PID, and a second browser with a known PROLIFIC_PID gets no session."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_util import CHROMIUM, chromium_page
from study_util import free_port, make_study

from xai_study.study.db import Database
from xai_study.study.spec import load_study
from xai_study.ui.context import AppContext

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def _start(study_dir: Path, db_url: str, port: int):
    from xai_study.ui.app import serve

    ctx = AppContext(study=load_study(study_dir), db=Database(db_url))
    blocks, url = serve(ctx, "127.0.0.1", port, block=False)
    return blocks, url, ctx


def _to_first_section(page, expect) -> None:
    expect(page.locator("#xs-start")).to_be_visible()
    page.locator("#xs-agree").get_by_role("checkbox").check()
    page.locator("#xs-start").click()
    page.locator("#xs-screen").get_by_text("Large").click()
    page.locator("#xs-familiarity").get_by_text("No", exact=True).click()
    page.locator("#xs-demo-next").click()
    expect(page.locator("#xs-progress")).to_contain_text("Section 1 of 2, question 1")


def test_a_reload_after_a_restart_resumes(tmp_path):
    make_study(tmp_path / "tiny", n_sections=2)
    db_url = f"sqlite:///{tmp_path / 'b.db'}"
    port = free_port()  # the same origin after the restart (browser storage is per origin)
    blocks, url, ctx = _start(tmp_path / "tiny", db_url, port)
    try:
        with chromium_page(viewport={"width": 1280, "height": 900}) as (page, expect):
            page.goto(url)  # no PROLIFIC_PID: the browser storage is the only link
            _to_first_section(page, expect)
            page.locator("#xs-q1").get_by_text("Video 2").click()
            page.locator("#xs-q1-next").click()
            expect(page.locator("#xs-progress")).to_contain_text("question 2")
            blocks.close()  # the server goes away ...
            blocks, url, ctx = _start(tmp_path / "tiny", db_url, port)  # ... and comes back
            page.reload()
            expect(page.locator("#xs-progress")).to_contain_text("Section 1 of 2, question 2")
            expect(page.locator("#xs-consent")).to_be_hidden()
    finally:
        blocks.close()
    assert ctx.db.count_participants(ctx.extra["survey"].study_row_id) == 1


def test_a_second_browser_with_a_known_prolific_pid_gets_nothing(tmp_path):
    make_study(tmp_path / "tiny", n_sections=2)
    blocks, url, ctx = _start(tmp_path / "tiny", f"sqlite:///{tmp_path / 'c.db'}", free_port())
    link = f"{url}?PROLIFIC_PID=pp-browser&STUDY_ID=st&SESSION_ID=se"
    try:
        with chromium_page(viewport={"width": 1280, "height": 900}) as (page, expect):
            page.goto(link)
            _to_first_section(page, expect)
            pid = ctx.db.participants_frame().iloc[0]["participant_id"]
        with chromium_page(viewport={"width": 1280, "height": 900}) as (page, expect):
            page.goto(link)  # another browser, same link
            msg = page.locator("#xs-message")
            expect(msg).to_contain_text("already started in another browser")
            expect(page.locator("#xs-consent")).to_be_hidden()
            expect(page.locator("#xs-section")).to_be_hidden()
            assert pid not in page.content()
    finally:
        blocks.close()
    assert ctx.db.count_participants(ctx.extra["survey"].study_row_id) == 1
