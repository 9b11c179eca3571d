"""End to end in headless Chromium: one participant on a phone-sized screen, from the
consent page to the completion code, with a reload in the middle (resume)."""

from __future__ import annotations

import re
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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from xai_study.ui.app import serve

    root = tmp_path_factory.mktemp("browser")
    make_study(root / "tiny", n_sections=2)
    ctx = AppContext(study=load_study(root / "tiny"), db=Database(f"sqlite:///{root / 'b.db'}"))
    blocks, url = serve(ctx, "127.0.0.1", free_port(), block=False)
    yield url, ctx
    blocks.close()


def test_participant_from_consent_to_completion_code(server):
    url, ctx = server
    with chromium_page(viewport={"width": 390, "height": 844}) as (page, expect):  # a phone
        page.goto(f"{url}?PROLIFIC_PID=browser-1&STUDY_ID=st&SESSION_ID=se")
        expect(page.locator("#xs-start")).to_be_visible()
        # participants get no navigation bar (no "Home" link to the admin pages)
        expect(page.get_by_role("link", name="Home")).to_be_hidden()
        assert ctx.db.count_participants(ctx.extra["survey"].study_row_id) == 0
        page.locator("#xs-agree").get_by_role("checkbox").check()
        page.locator("#xs-start").click()

        expect(page.locator("#xs-demographics")).to_be_visible()
        page.locator("#xs-screen").get_by_text("Small (phone)").click()
        page.locator("#xs-familiarity").get_by_text("No", exact=True).click()
        page.locator("#xs-demo-next").click()

        expect(page.locator("#xs-progress")).to_contain_text("Section 1 of 2, question 1")
        expect(page.locator("#xs-section video").first).to_be_attached()
        expect(page.locator("#xs-part2")).to_be_hidden()
        page.locator("#xs-q1").get_by_text("Video 2").click()
        page.locator("#xs-q1-next").click()
        expect(page.locator("#xs-progress")).to_contain_text("Section 1 of 2, question 2")
        expect(page.locator("#xs-part1")).to_be_hidden()
        page.locator("#xs-q2").get_by_text("Animation C").click()
        page.locator("#xs-answer").dblclick()  # a double click stores one answer

        expect(page.locator("#xs-check-ac1")).to_be_visible()
        # reload: the participant resumes at the attention check, not at the consent
        page.reload()
        expect(page.locator("#xs-check-ac1")).to_be_visible()
        expect(page.locator("#xs-consent")).to_be_hidden()
        page.locator("#xs-check-ac1").get_by_text("Blue").click()
        page.locator("#xs-check-next").click()

        expect(page.locator("#xs-progress")).to_contain_text("Section 2 of 2, question 1")
        page.locator("#xs-q1").get_by_text("I do not know").click()
        page.locator("#xs-q1-next").click()
        # reload between the two questions: back at question 2, not question 1
        expect(page.locator("#xs-progress")).to_contain_text("Section 2 of 2, question 2")
        page.reload()
        expect(page.locator("#xs-progress")).to_contain_text("Section 2 of 2, question 2")
        page.locator("#xs-q2").get_by_text("Animation A").click()
        page.locator("#xs-answer").click()

        code = page.locator("#xs-completion-code")
        expect(code).to_have_text("TEST-CODE-42")
        link = page.get_by_role("link", name=re.compile("Return to the recruiting"))
        expect(link).to_have_attribute("href", "https://example.org/done?cc=TEST-CODE-42")
        # nothing wider than the phone screen
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 2, width

    frame = ctx.db.responses_frame()
    assert len(frame) == 2
    assert list(frame["q1_answer"]) == ["video2", "dont_know"]
    assert list(frame["q2_position"]) == ["C", "A"]
    parts = ctx.db.participants_frame()
    assert len(parts) == 1
    row = parts.iloc[0]
    assert (row["prolific_pid"], row["status"], row["screen"]) == (
        "browser-1",
        "completed",
        "small",
    )
    assert (row["checks_passed"], row["checks_total"]) == (1, 1)


def test_participant_leaves_the_study_halfway(server):
    url, ctx = server
    with chromium_page(viewport={"width": 1280, "height": 900}) as (page, expect):
        page.goto(url)  # no platform ids: the browser's stored token is the only link
        expect(page.locator("#xs-withdraw")).to_be_hidden()  # nothing to leave yet
        page.locator("#xs-agree").get_by_role("checkbox").check()
        page.locator("#xs-start").click()
        page.locator("#xs-screen").get_by_text("Large").click()
        page.locator("#xs-familiarity").get_by_text("No", exact=True).click()
        page.locator("#xs-demo-next").click()
        page.locator("#xs-q1").get_by_text("Video 1").click()
        page.locator("#xs-q1-next").click()
        expect(page.locator("#xs-progress")).to_contain_text("question 2")
        page.locator("#xs-withdraw-open").get_by_text("Leave the study").first.click()
        expect(page.locator("#xs-erase").get_by_role("checkbox")).to_be_checked()
        page.locator("#xs-withdraw-btn").click()
        expect(page.locator("#xs-code")).to_contain_text("Your answers were deleted")
        expect(page.locator("#xs-section")).to_be_hidden()
        expect(page.locator("#xs-withdraw")).to_be_hidden()
        page.reload()  # still gone, not back at the consent page
        expect(page.locator("#xs-code")).to_contain_text("You have left the study")
        expect(page.locator("#xs-consent")).to_be_hidden()
    parts = ctx.db.participants_frame()
    gone = parts[parts["status"] == "withdrawn"]
    assert len(gone) == 1
    assert ctx.db.answers(gone.iloc[0]["participant_id"]) == []
    assert (parts["status"] == "completed").sum() == 1  # the other participant is kept
