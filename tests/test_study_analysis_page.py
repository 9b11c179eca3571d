"""The results page inside the real app, called over HTTP like a browser (or an attacker)."""

from __future__ import annotations

import json

import pytest
import requests
from study_util import free_port, make_study

from xai_study.study.db import Database
from xai_study.study.spec import load_study
from xai_study.ui.context import AppContext


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from test_study_analysis_export import fill_database

    from xai_study.ui import results
    from xai_study.ui.app import serve

    root = tmp_path_factory.mktemp("results")
    study_dir = root / "demo"
    make_study(study_dir, n_sections=3)
    url = f"sqlite:///{root / 'demo.sqlite3'}"
    fill_database(url)  # answers of a study called "demo", written through the DB API
    ctx = AppContext(study=load_study(study_dir), db=Database(url), admin_password="s3cret")
    old_delay = results.WRONG_PASSWORD_DELAY
    results.WRONG_PASSWORD_DELAY = 0.0
    blocks, base = serve(ctx, "127.0.0.1", free_port(), block=False)
    fn_index = next(i for i, f in blocks.fns.items() if f.name == "show")
    yield {"url": base.rstrip("/"), "ctx": ctx, "blocks": blocks, "fn": fn_index}
    blocks.close()
    results.WRONG_PASSWORD_DELAY = old_delay


def _call(app, password, session="s1"):
    """Run the page's hidden ``show`` endpoint through Gradio's queue, as the browser does."""
    body = {"data": [password, True], "fn_index": app["fn"], "session_hash": session}
    resp = requests.post(f"{app['url']}/gradio_api/queue/join", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    with requests.get(
        f"{app['url']}/gradio_api/queue/data",
        params={"session_hash": session},
        stream=True,
        timeout=60,
    ) as stream:
        for line in stream.iter_lines():
            if line.startswith(b"data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    assert msg.get("success", True), msg
                    return msg["output"]["data"]
    raise AssertionError("no result")


def test_results_endpoints_are_hidden_from_the_api(app):
    shown = [f for f in app["blocks"].fns.values() if f.name == "show"]
    assert len(shown) == 4  # login button, Enter, refresh, timer
    assert all(f.api_visibility == "private" for f in shown)
    assert "results" in app["ctx"].extra["pages"]


def test_wrong_password_over_http_reveals_nothing(app):
    out = _call(app, "guess", session="attacker")
    assert out[0] == "Wrong password."
    assert out[2] == ""
    text = json.dumps(out)
    assert "gradcam" not in text and "responses.csv" not in text and "base64" not in text


def test_admin_sees_statistics_and_downloads_over_http(app):
    out = _call(app, "s3cret", session="admin")
    assert out[0].startswith("Updated")
    assert "13 analysed" in out[2] and "Most chosen" in out[2]
    assert "Main result (choice model" in out[2]
    assert out[3]["type"] == "matplotlib" and out[3]["plot"].startswith("data:image/png")
    files = [o for o in out if isinstance(o, dict) and o.get("orig_name", "").endswith(".csv")]
    assert [f["orig_name"] for f in files] == [
        "responses.csv", "participants.csv", "stats.csv", "preference_model.csv",
        "sign_tests.csv",
    ]  # fmt: skip
    resp = requests.get(files[0]["url"], timeout=10)
    assert resp.status_code == 200
    header = resp.text.splitlines()[0]
    assert header.startswith("participant_id,section,video_id,q1_answer,q1_correct,q2_choice")
    expected = len(app["ctx"].db.responses_frame("demo"))
    assert len(resp.text.strip().split("\r\n")) == expected + 1


@pytest.mark.browser
def test_admin_logs_in_with_a_browser(app):

    from browser_util import CHROMIUM, have_chromium, launch

    if not have_chromium():
        pytest.skip(f"browser test skipped: {CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})  # phone-sized
            page.goto(app["url"] + "/results")
            page.fill("#xs-admin-password input", "not it")
            page.get_by_role("button", name="Show results").click()
            page.wait_for_selector("#xs-results-status >> text=Wrong password", timeout=30000)
            assert not page.locator("#xs-results-overview").is_visible()
            page.fill("#xs-admin-password input", "s3cret")
            page.get_by_role("button", name="Show results").click()
            page.wait_for_selector("#xs-results-overview >> text=13 analysed", timeout=30000)
            assert page.get_by_role("button", name="Download stats.csv").is_visible()
            assert page.locator("#xs-results img").count() >= 3  # the three plots
        finally:
            browser.close()
