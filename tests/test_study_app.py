"""The survey app over HTTP: the same endpoints the browser uses, called directly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from study_util import api_call, free_port, make_study

from xai_study.study.db import Database
from xai_study.study.spec import load_study
from xai_study.ui.context import AppContext


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from gradio_client import Client

    from xai_study.ui.app import serve

    root = tmp_path_factory.mktemp("app")
    study_dir = root / "tiny"
    make_study(study_dir, n_sections=3)
    db_path = root / "tiny.sqlite3"
    ctx = AppContext(
        study=load_study(study_dir),
        db=Database(f"sqlite:///{db_path}"),
        admin_password="pw",
        max_upload_mb=1,
    )
    blocks, url = serve(ctx, "127.0.0.1", free_port(), db_path=db_path, block=False)
    yield {"url": url, "ctx": ctx, "db_path": db_path, "client": Client(url, verbose=False)}
    blocks.close()


# gradio_client leaves layout blocks (columns) out of the outputs
IDX = {"token": 1, "item": 2, "message": 4, "stimuli": 5, "key": -2, "code": -1}


def media_srcs(html_text: str) -> list[str]:
    """The ``<video src>`` URLs of a section's HTML (relative to the page)."""
    return re.findall(r"<video src='([^']+)'", html_text)


def fetched_size(url: str, src: str) -> int:
    r = requests.get(url.rstrip("/") + "/" + src, timeout=30)
    assert r.status_code == 200, (src, r.status_code)
    return len(r.content)


def call(url: str, api: str, data: list, query: str = "") -> list:
    """One raw HTTP call of an endpoint, as any script (or attacker) can make it."""
    return api_call(url, api, data, query, timeout=30)


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _strings(v)]
    if isinstance(value, list):
        return [x for v in value for x in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_participant_over_http(server):
    c = server["client"]
    r = c.predict(None, False, None, api_name="/consent")
    assert "consent" in r[IDX["message"]] and not isinstance(r[IDX["token"]], str)
    r = c.predict(None, True, None, api_name="/consent")
    tok = r[IDX["token"]]
    assert len(tok) >= 30
    r = c.predict(tok, "small", "no", api_name="/demographics")
    assert r[IDX["item"]].startswith("s0")
    # the two videos, served as static files; the animations (they show the fake) later
    srcs = media_srcs(r[IDX["stimuli"]])
    assert len(srcs) == 2 and all(fetched_size(server["url"], s) > 0 for s in srcs)
    assert "Animation A" not in r[IDX["stimuli"]]
    first = r[IDX["item"]]
    r = c.predict(tok, first, "video2", api_name="/q1")
    assert r[IDX["item"]] == first and "Video 1" not in r[IDX["stimuli"]]
    anims = media_srcs(r[IDX["stimuli"]])
    assert len(anims) == 4 and not set(anims) & set(srcs)
    assert all(fetched_size(server["url"], s) > 0 for s in anims)
    r = c.predict(tok, first, "B", api_name="/q2")
    assert r[IDX["item"]] == "ac1"
    r = c.predict(tok, "ac1", "Blue", api_name="/check")
    while r[IDX["item"]]:
        r = c.predict(tok, r[IDX["item"]], "video1", api_name="/q1")
        r = c.predict(tok, r[IDX["item"]], "A", api_name="/q2")
    assert "TEST-CODE-42" in r[IDX["code"]]
    # resume with the same token (what a reload does) lands on the completion page
    r = c.predict(tok, None, api_name="/resume")
    assert "TEST-CODE-42" in r[IDX["code"]]
    db = server["ctx"].db
    par = db.participant_by_token(tok)
    assert par.status == "completed"
    assert len(db.answers(par.id)) == 3


def test_participant_leaves_the_study_over_http(server):
    c = server["client"]
    tok = c.predict(None, True, None, api_name="/consent")[IDX["token"]]
    r = c.predict(tok, "large", "yes", api_name="/demographics")
    r = c.predict(tok, r[IDX["item"]], "video1", api_name="/q1")
    r = c.predict(tok, True, api_name="/withdraw")
    assert "You have left the study" in r[IDX["code"]]
    assert "deleted" in r[IDX["code"]]
    db = server["ctx"].db
    par = db.participant_by_token(tok)
    assert par.status == "withdrawn" and db.answers(par.id) == []
    r = c.predict(tok, None, api_name="/resume")  # a reload shows the same page, no code
    assert "You have left the study" in r[IDX["code"]]
    r = c.predict(tok, "s01", "video1", api_name="/q1")
    assert "withdrawn" in r[IDX["message"]]
    r = c.predict("forged-token", True, api_name="/withdraw")
    assert "not found" in r[IDX["message"]]


def test_forged_calls_are_rejected(server):
    c = server["client"]
    db = server["ctx"].db
    before = len(db.responses_frame())
    r = c.predict("forged-token", "s01", "video1", api_name="/q1")
    assert "session was not found" in r[IDX["message"]]
    tok = c.predict(None, True, None, api_name="/consent")[IDX["token"]]
    r = c.predict(tok, "s01", "video1", api_name="/q1")
    assert "questions about you" in r[IDX["message"]]
    r = c.predict(tok, "large", "yes", api_name="/demographics")
    current = r[IDX["item"]]
    other = next(s for s in ("s01", "s02", "s03") if s != current)
    r = c.predict(tok, other, "video1", api_name="/q1")
    assert "in order" in r[IDX["message"]]
    r = c.predict(tok, current, "A", api_name="/q2")
    assert "question 1 first" in r[IDX["message"]]
    assert len(db.responses_frame()) == before


def test_only_the_media_folder_is_served(server):
    url = server["url"].rstrip("/")
    ctx = server["ctx"]
    secret = [
        ctx.study.path,  # study file (completion code)
        server["db_path"],  # the answers
        Path(__file__),
        Path("/etc/passwd"),
    ]
    for path in secret:
        resp = requests.get(f"{url}/gradio_api/file={path}", timeout=10)
        assert resp.status_code in (403, 404), (path, resp.status_code)
    media = ctx.study.sections[0].real
    resp = requests.get(f"{url}/gradio_api/file={media}", timeout=10)
    assert resp.status_code == 200 and len(resp.content) == media.stat().st_size
    # the survey's own static route serves the study's stimuli, with range requests,
    # and nothing else (not the study file, no path tricks)
    resp = requests.get(f"{url}/study-media/{media.name}", timeout=10)
    assert resp.status_code == 200 and resp.content == media.read_bytes()
    part = requests.get(
        f"{url}/study-media/{media.name}", headers={"Range": "bytes=0-9"}, timeout=10
    )
    assert part.status_code == 206 and part.content == media.read_bytes()[:10]
    for name in ("../study.yaml", "%2e%2e/study.yaml", "study.yaml", "nope.mp4", str(media)):
        resp = requests.get(f"{url}/study-media/{name}", timeout=10)
        assert resp.status_code == 404, (name, resp.status_code)


def test_uploads_are_limited(server):
    url = server["url"].rstrip("/")
    big = b"0" * (2 * 1024 * 1024)
    resp = requests.post(
        f"{url}/gradio_api/upload", files={"files": ("big.mp4", big, "video/mp4")}, timeout=30
    )
    assert resp.status_code == 413


def test_optional_pages_are_routed(server):
    import importlib.util

    url = server["url"].rstrip("/")
    pages = server["ctx"].extra["pages"]
    for name in ("results", "demo"):
        present = importlib.util.find_spec(f"xai_study.ui.{name}") is not None
        assert (name in pages) == present
        if present:
            assert requests.get(f"{url}/{name}", timeout=30).status_code == 200


def test_a_known_prolific_pid_without_the_token_gets_nothing(server):
    """An attacker who knows (or guesses) someone's PROLIFIC_PID: resume and consent
    with that id give no token, no participant id and no answers; withdrawing and
    deleting need the token."""
    url, db = server["url"], server["ctx"].db
    link = "?PROLIFIC_PID=victim-1&STUDY_ID=st&SESSION_ID=se"
    out = call(url, "consent", [None, True, None], link)
    tok = out[IDX["token"]]
    assert isinstance(tok, str) and len(tok) >= 30
    out = call(url, "demographics", [tok, "large", "yes"])
    out = call(url, "q1", [tok, out[IDX["item"]], "video1"])
    victim = db.participant_by_token(tok)
    for api, data in (
        ("resume", [None, None]),
        ("resume", ["forged-token", "forged-but-well-formed-key"]),
        ("consent", [None, True, None]),
        ("consent", [None, True, "another-well-formed-key-123"]),
    ):
        out = call(url, api, data, link)
        assert "already started in another browser" in out[IDX["message"]], (api, data)
        texts = " ".join(_strings(out))
        assert tok not in texts and victim.id not in texts, (api, data)
        assert not isinstance(out[IDX["token"]], str) or not out[IDX["token"]]
    for delete in (True, False):
        out = call(url, "withdraw", [None, delete], link)
        assert "not found" in out[IDX["message"]]
    again = db.get_participant(victim.id)
    assert again.status == "in_progress" and len(db.answers(victim.id)) == 1
    # the victim's own browser (token kept) continues as before
    out = call(url, "resume", [tok, None], link)
    assert out[IDX["token"]] == tok and not out[IDX["message"]]


def test_a_retried_consent_makes_no_orphan(server):
    """The reply to a consent is lost; the page sends it again with the same consent
    key, or reloads: one participant, the same token."""
    url, ctx = server["url"], server["ctx"]
    before = ctx.db.count_participants(ctx.study_row_id)
    out = call(url, "resume", [None, None])  # page load: the page gets a consent key
    key = out[IDX["key"]]
    assert isinstance(key, str) and len(key) >= 16
    first = call(url, "consent", [None, True, key])[IDX["token"]]
    assert call(url, "consent", [None, True, key])[IDX["token"]] == first
    reload = call(url, "resume", [None, key])  # the token never reached the browser
    assert reload[IDX["token"]] == first and reload[IDX["key"]] != key
    assert ctx.db.count_participants(ctx.study_row_id) == before + 1


def test_a_demo_flood_leaves_the_survey_serving(server):
    """Demo jobs are bounded per client before they reach the queue; the survey and the
    health endpoint answer throughout."""
    from concurrent.futures import ThreadPoolExecutor

    url = server["url"].rstrip("/")
    if "demo" not in server["ctx"].extra["pages"]:
        pytest.skip("no demo page")
    cfg = requests.get(f"{url}/config", timeout=30).json()
    demo = next(d["id"] for d in cfg["dependencies"] if d["api_name"] == "analyse")

    def join(k: int):
        body = {"data": [None, "bogus", [], "fast", "fake", 4], "fn_index": demo}
        body.update(session_hash=f"flood{k}", event_data=None)
        return requests.post(f"{url}/gradio_api/queue/join", json=body, timeout=30)

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(join, range(40)))
    codes = [r.status_code for r in replies]
    assert set(codes) <= {200, 503} and codes.count(503) >= 1, codes
    assert all("demo is busy" in r.json()["detail"] for r in replies if r.status_code == 503)
    health = requests.get(f"{url}/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["refused"]["demo-explain"] >= 1
    assert isinstance(call(url, "consent", [None, True, None])[IDX["token"]], str)


def test_admin_password_guessing_is_limited_per_client(server):
    """Five wrong passwords, then every attempt (even the right one) is refused for a
    while, whichever route the call takes; /gradio_api/run/ (skipping the queue) is
    refused altogether."""
    url = server["url"].rstrip("/")
    r = requests.post(f"{url}/gradio_api/run/show", json={"data": ["pw", True]}, timeout=30)
    assert r.status_code == 404
    results = [call(url, "show", [f"guess{k}", True])[0] for k in range(5)]
    assert results == ["Wrong password."] * 5
    for pw in ("guess5", "pw"):
        assert call(url, "show", [pw, True])[0].startswith("Too many wrong passwords")


@pytest.mark.parametrize(
    ("production", "host", "expected"),
    [
        (False, "127.0.0.1", "admin"),
        (False, "localhost", "admin"),
        (False, "::1", "admin"),
        (False, "0.0.0.0", None),
        (False, "192.168.1.5", None),
        (True, "127.0.0.1", None),
    ],
)
def test_no_fallback_admin_password_off_loopback(monkeypatch, production, host, expected):
    from xai_study.ui.context import admin_password_from_env

    monkeypatch.delenv("XAI_STUDY_ADMIN_PASSWORD", raising=False)
    assert admin_password_from_env(production, host) == expected
    monkeypatch.setenv("XAI_STUDY_ADMIN_PASSWORD", "from-env")
    assert admin_password_from_env(production, host) == "from-env"


def test_no_server_paths_in_config_and_no_long_echoes(server):
    import os

    url = server["url"].rstrip("/")
    text = requests.get(f"{url}/config", timeout=30).text
    for folder in {str(server["ctx"].study.root), os.getcwd(), str(Path.home()), "/tmp/"}:
        assert folder not in text, folder
    # an invalid 60 KB value (under the body limit) is not sent back
    base = f"{url}/gradio_api/call/q1"
    r = requests.post(base, json={"data": ["t" * 40, "s01", "v" * 60_000]}, timeout=30)
    event = r.json()["event_id"]
    reply = requests.get(f"{base}/{event}", timeout=30).text
    assert len(reply) < 4000 and "v" * 300 not in reply
