"""The study server under restarts, floods and abuse (issue 20), over HTTP on loopback."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest
import requests
from study_util import make_study
from test_study_app import IDX, call

from xai_study.study.db import Database
from xai_study.study.spec import load_study
from xai_study.ui.context import AppContext


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("server") / "tiny"
    make_study(out, n_sections=2)
    return out


def _serve(study_dir: Path, db_url: str, **ctx_kwargs):
    from xai_study.ui.app import serve

    ctx = AppContext(study=load_study(study_dir), db=Database(db_url), **ctx_kwargs)
    blocks, url = serve(ctx, "127.0.0.1", _free_port(), block=False)
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
