"""scripts/abuse.py on a small study: every fast attack passes (one PASS line each)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from study_util import make_study

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "abuse.py"
FAST = ["takeover", "consent-retry", "demo-flood", "unread-flood", "admin", "body", "uploads"]
FAST += ["errors"]


def _run(study: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """Run scripts/abuse.py; past ``timeout`` the test fails with what it printed so far
    and the tails of its server logs (not a bare pytest timeout)."""
    cmd = [sys.executable, "-u", str(SCRIPT), "--study", str(study), *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        logs = []
        for line in out.splitlines():
            if line.startswith("work folder: "):
                for log in sorted(Path(line.split(": ", 1)[1]).rglob("*.log")):
                    logs.append(f"--- {log}\n{log.read_text(errors='replace')[-1500:]}")
        pytest.fail(
            f"abuse.py ran past {timeout} s; it printed:\n{out[-3000:]}\n" + "\n".join(logs)
        )


def test_fast_abuse_cases_pass(tmp_path):
    make_study(tmp_path / "tiny", n_sections=2)
    proc = _run(tmp_path / "tiny", "--cases", "fast", "--flood", "60", timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-2000:]
    lines = [x for x in out.splitlines() if x.startswith(("PASS ", "FAIL "))]
    assert [x.split()[1].rstrip(":") for x in lines] == FAST
    assert all(x.startswith("PASS ") for x in lines), out
    assert "8 of 8 cases passed" in out


@pytest.mark.slow
def test_kill9_and_restart_cases_pass(tmp_path):
    make_study(tmp_path / "tiny", n_sections=2)
    proc = _run(tmp_path / "tiny", "--cases", "restart,kill9", timeout=780)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.count("PASS ") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cases", "nope"], "unknown case(s) nope"),
        (["--flood", "0"], "--flood must be 1-5000"),
    ],
    ids=["unknown-case", "bad-flood"],
)
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    make_study(tmp_path / "tiny", n_sections=2)
    proc = _run(tmp_path / "tiny", *args, timeout=120)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and last.startswith(f"error: {message}"), proc.stderr
    proc = _run(tmp_path / "missing", timeout=120)
    assert "error: study folder not found" in proc.stderr
