"""The study server under restarts, floods and abuse (issue 20), over HTTP on loopback."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import requests
from study_util import free_port, make_study
from test_study_app import IDX, call

from xai_study.study.db import Database
from xai_study.study.spec import load_study
from xai_study.ui.context import AppContext


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("server") / "tiny"
    make_study(out, n_sections=2)
    return out


def _serve(study_dir: Path, db_url: str, **ctx_kwargs):
    from xai_study.ui.app import serve

    ctx = AppContext(study=load_study(study_dir), db=Database(db_url), **ctx_kwargs)
    blocks, url = serve(ctx, "127.0.0.1", free_port(), block=False)
    return blocks, url, ctx


def _secrets(url: str) -> set[str]:
    cfg = requests.get(url.rstrip("/") + "/config", timeout=30).json()
    return {c["props"]["secret"] for c in cfg["components"] if c["type"] == "browserstate"}


def test_a_reload_after_a_restart_resumes(study_dir, tmp_path):
    """The browser-storage secret outlives the server process: the page of a restarted
    server decrypts what the first one stored, and the stored token resumes (no
    PROLIFIC_PID involved)."""
    db_url = f"sqlite:///{tmp_path / 'restart.db'}"
    blocks, url, _ = _serve(study_dir, db_url)
    try:
        first = _secrets(url)
        assert len(first) == 1 and len(next(iter(first))) >= 32
        tok = call(url, "consent", [None, True, None])[IDX["token"]]
        out = call(url, "demographics", [tok, "small", "no"])
        item = out[IDX["item"]]
    finally:
        blocks.close()
    blocks, url, _ = _serve(study_dir, db_url)  # a new process on the same database
    try:
        assert _secrets(url) == first
        out = call(url, "resume", [tok, None])  # what the reloaded page sends
        assert out[IDX["token"]] == tok and out[IDX["item"]] == item
    finally:
        blocks.close()


def test_the_secret_is_per_database_or_configured(study_dir, tmp_path, monkeypatch):
    from xai_study.commands.study import make_context
    from xai_study.ui.app import state_secret

    one = AppContext(study=load_study(study_dir), db=Database(f"sqlite:///{tmp_path / 'a.db'}"))
    two = AppContext(study=load_study(study_dir), db=Database(f"sqlite:///{tmp_path / 'b.db'}"))
    assert state_secret(one) == state_secret(one) != state_secret(two)
    monkeypatch.setenv("XAI_STUDY_STATE_SECRET", "configured-secret-for-all-servers")
    args = argparse.Namespace(
        study=str(study_dir),
        db=f"sqlite:///{tmp_path / 'c.db'}",
        production=False,
        models="models",
        cache=".cache",
        max_upload_mb=5.0,
    )
    ctx, _ = make_context(args)
    assert state_secret(ctx) == "configured-secret-for-all-servers"


# -- floods: the survey keeps serving --------------------------------------------------
def _join(url: str, fn_index: int, data: list, session: str) -> int:
    r = requests.post(
        url.rstrip("/") + "/gradio_api/queue/join",
        json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None},
        timeout=30,
    )
    return r.status_code


def _fn_index(url: str, api_name: str | None = None, group: str | None = None) -> int:
    cfg = requests.get(url.rstrip("/") + "/config", timeout=30).json()
    for k, dep in enumerate(cfg["dependencies"]):
        if (api_name and dep.get("api_name") == api_name) or (
            group and dep.get("concurrency_id") == group
        ):
            return dep.get("id", k)
    raise AssertionError(f"no function {api_name or group}")


@pytest.fixture()
def tiny_app():
    """A small app with a slow 'demo' job and a fast 'survey' answer, launched with the
    server's guards; Gradio's 2,000-session cache is shrunk to 40 so that a flood of
    a few hundred requests evicts sessions with events pending (as 2,500 would)."""
    import time

    import gradio as gr

    from xai_study.ui.app import launch_guarded
    from xai_study.ui.guard import DEMO_JOBS, Uploads

    with gr.Blocks() as blocks:
        box = gr.Textbox()
        out = gr.Textbox()
        gr.Button("demo").click(
            lambda x: time.sleep(1.5) or x,
            box,
            out,
            api_name="slow_demo",
            concurrency_id=DEMO_JOBS,
            concurrency_limit=1,
        )
        gr.Button("answer").click(lambda x: f"stored {x}", box, out, api_name="answer")
    uploads = Uploads(per_client=3, max_age_s=3600)
    url = launch_guarded(
        blocks, "127.0.0.1", free_port(), concurrency=4, max_queue=400, uploads=uploads
    )
    blocks._queue.pending_messages_per_session.max_size = 40
    blocks.uploads = uploads
    yield blocks, url
    blocks.close()


def test_a_flood_of_unread_requests_does_not_stop_the_queue(tiny_app):
    from concurrent.futures import ThreadPoolExecutor

    blocks, url = tiny_app
    demo, answer = _fn_index(url, "slow_demo"), _fn_index(url, "answer")
    with ThreadPoolExecutor(8) as pool:
        demo_codes = list(pool.map(lambda k: _join(url, demo, ["x"], f"demo{k}"), range(60)))
        # cheap requests from 200 sessions whose results nobody reads: evictions
        codes = list(pool.map(lambda k: _join(url, answer, [str(k)], f"flood{k}"), range(200)))
    assert demo_codes.count(200) <= 2 and demo_codes.count(503) >= 58  # 1 per client
    assert codes.count(200) == 200
    health = requests.get(url + "healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    assert call(url, "answer", ["after the flood"]) == ["stored after the flood"]
    assert blocks._xai_queue_guard.recreated_sessions > 0  # the flood did evict sessions
    blocks._queue.stopped = True  # what Gradio's KeyError did: the supervisor must see it
    health = requests.get(url + "healthz", timeout=10)
    assert health.status_code == 503 and health.json()["status"] == "queue stopped"


def test_direct_run_calls_and_big_bodies_are_refused(tiny_app):
    _, url = tiny_app
    r = requests.post(url + "gradio_api/run/answer", json={"data": ["x"]}, timeout=10)
    assert r.status_code == 404  # /run/ would skip the queue and its limits
    big = {"data": ["x" * (200 * 1024)], "fn_index": 1, "session_hash": "big"}
    r = requests.post(url + "gradio_api/queue/join", json=big, timeout=10)
    assert r.status_code == 413 and "request body over" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b"x" * 4096

    r = requests.post(url + "gradio_api/queue/join", data=chunks(), timeout=10)
    assert r.status_code == 413
    assert call(url, "answer", ["small"]) == ["stored small"]


def test_rate_limiter_window_and_memory_bound():
    import time

    from xai_study.ui.guard import RateLimiter

    lim = RateLimiter(attempts=3, window_s=0.3, max_clients=2)
    for _ in range(3):
        assert lim.blocked("a") == 0
        lim.fail("a")
    assert 0 < lim.blocked("a") <= 0.3
    assert lim.blocked("b") == 0  # per client
    lim.fail("b")
    lim.fail("c")  # a third client pushes the oldest out: memory stays bounded
    assert len(lim._failures) == 2
    time.sleep(0.35)
    assert lim.blocked("c") == 0 and lim.blocked("a") == 0


def _upload(url: str, name: str, content: bytes, mime: str = "video/mp4"):
    return requests.post(
        url + "gradio_api/upload", files={"files": (name, content, mime)}, timeout=30
    )


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b"just text"),
        ("fake.mp4", b"not a video at all, only a name"),
        ("page.html", b"<script>alert(1)</script>"),
    ],
    ids=["text", "renamed-text", "html"],
)
def test_only_videos_can_be_uploaded(tiny_app, name, content):
    blocks, url = tiny_app
    r = _upload(url, name, content, "text/plain")
    assert r.status_code == 415 and "only video files" in r.json()["detail"]
    assert blocks.uploads.live() == 0


def test_uploads_are_limited_per_client_and_deleted(tiny_app, tmp_path):
    from study_util import ROOT

    blocks, url = tiny_app
    video = (ROOT / "tests" / "data" / "single_face.mp4").read_bytes()
    paths = []
    for k in range(3):  # different bytes (Gradio stores identical uploads once)
        r = _upload(url, "clip.mp4", video + bytes([k]))
        assert r.status_code == 200, r.text
        paths += r.json()
    assert len(set(paths)) == 3 and all(Path(p).is_file() for p in paths)
    r = _upload(url, "clip.mp4", video + b"4")
    assert r.status_code == 429 and "uploads waiting" in r.json()["detail"]
    assert blocks.uploads.release(paths[0]) and not Path(paths[0]).exists()  # job done
    r = _upload(url, "clip.mp4", video + b"5")
    assert r.status_code == 200
    paths = paths[1:] + r.json()
    blocks.uploads.max_age_s = 0.0  # by age
    assert blocks.uploads.sweep() == 3 and not any(Path(p).exists() for p in paths)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/tmp/gradio/3f9a/clip.mp4: no such file", "clip.mp4: no such file"),
        ("cannot open /srv/xai/models/plain.pt (bad magic)", "cannot open plain.pt (bad magic)"),
        ("C:\\Users\\me\\v.mp4: broken", "v.mp4: broken"),
        ("P(fake) = 1/2 at https://example.org/a/b", "P(fake) = 1/2 at https://example.org/a/b"),
        ("x" * 5000, "x" * 299 + "…"),
    ],
    ids=["upload-path", "model-path", "windows-path", "no-path", "long-echo"],
)
def test_public_messages_show_no_paths_and_are_short(text, expected):
    from xai_study.ui.guard import public_message

    assert public_message(text) == expected


def test_upload_limits_in_all(tmp_path):
    from xai_study.ui.guard import Uploads

    files = []
    for k in range(3):
        f = tmp_path / f"u{k}" / "v.mp4"
        f.parent.mkdir()
        f.write_bytes(b"x" * 1000)
        files.append(f)
    by_bytes = Uploads(per_client=10, total=10, max_total_bytes=2000)
    by_count = Uploads(per_client=10, total=2)
    for up in (by_bytes, by_count):
        for k, f in enumerate(files[:2]):
            assert up.admit(f"client{k}") is None
            up.add(str(f), f"client{k}")
        assert "too many uploads on the server" in up.admit("client9")
    assert by_bytes.release(str(files[0])) and not files[0].exists()
    assert not files[0].parent.exists()  # Gradio's folder of the upload goes too
    assert by_bytes.admit("client9") is None
