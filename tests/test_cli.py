import subprocess
import sys

import pytest

from xai_study.cli import main


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "xai-study" in out and "commands" in out


def test_unknown_command_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "xai_study", "no-such-command"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "Traceback" not in proc.stderr


#: Every command the README documents; the CLI must register each of them.
COMMANDS = [
    "faces",
    "make-demo-data",
    "make-train-extra",
    "train",
    "detect",
    "evaluate-detector",
    "calibrate",
    "convert",
    "explain",
    "metrics",
    "evaluate",
    "build-study",
    "study-texts",
    "serve",
    "export",
    "analyze",
    "import-responses",
    "withdraw",
    "power",
]


def _registered() -> list[str]:
    import argparse

    from xai_study.cli import build_parser

    parser = build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(subs[0].choices) if subs else []


def test_every_documented_command_is_registered():
    registered = _registered()
    assert registered, "no command registered"
    assert sorted(COMMANDS) == registered


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: xai-study {command}") and len(out.splitlines()) > 3
