"""scripts/loadtest.py end to end on a small study: concurrent participants over HTTP,
double submits and a SIGKILL + restart of the server, then the database check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from study_util import make_study

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_loadtest_kill_restart_loses_nothing(tmp_path):
    make_study(tmp_path / "tiny", n_sections=3)
    cmd = [sys.executable, str(ROOT / "scripts" / "loadtest.py"), "--study", str(tmp_path / "tiny")]
    cmd += ["-n", "12", "--kill-restart", "--double-submit", "0.5", "--seed", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, cwd=ROOT)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-2000:]
    assert "sent answers: 36 stored answers: 36" in out
    assert "lost: 0 duplicated: 0 crossed: 0" in out
    assert "kill-restart: done" in out
    assert "answer-save latency (each of Q1 and Q2): median" in out


def test_loadtest_detects_a_missing_study(tmp_path):
    cmd = [sys.executable, str(ROOT / "scripts" / "loadtest.py"), "--study", str(tmp_path / "no")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: study folder not found")
