"""``serve`` host, port and root path: option, then GRADIO_* environment variable, then
the default; bad values are one-line errors (exit 2)."""

from __future__ import annotations

import pytest

from xai_study.cli import main
from xai_study.commands.study import listen_address
from xai_study.errors import StudyError


@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        ((None, None, None), {}, ("127.0.0.1", 7860, "")),
        (
            (None, None, None),
            {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7801"},
            ("0.0.0.0", 7801, ""),
        ),
        ((None, None, None), {"GRADIO_ROOT_PATH": "/study/"}, ("127.0.0.1", 7860, "/study")),
        (
            (None, None, None),
            {"GRADIO_ROOT_PATH": "https://example.org/xai"},
            ("127.0.0.1", 7860, "https://example.org/xai"),
        ),
        # options win over the environment
        (
            ("::1", 9000, "/a"),
            {
                "GRADIO_SERVER_NAME": "0.0.0.0",
                "GRADIO_SERVER_PORT": "7801",
                "GRADIO_ROOT_PATH": "/b",
            },
            ("::1", 9000, "/a"),
        ),
        # an explicit empty root path overrides the variable
        ((None, None, ""), {"GRADIO_ROOT_PATH": "/b"}, ("127.0.0.1", 7860, "")),
        # empty variables count as unset
        (
            (None, None, None),
            {"GRADIO_SERVER_NAME": "", "GRADIO_SERVER_PORT": " "},
            ("127.0.0.1", 7860, ""),
        ),
    ],
)
def test_listen_address(options, env, expected):
    assert listen_address(*options, env=env) == expected


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        ((None, None, None), {"GRADIO_SERVER_PORT": "http"}, "GRADIO_SERVER_PORT must be a port"),
        ((None, None, None), {"GRADIO_SERVER_PORT": "70000"}, "must be 1-65535, got 70000"),
        ((None, 0, None), {}, "must be 1-65535, got 0"),
        ((None, None, "study"), {}, "must start with /"),
        ((None, None, None), {"GRADIO_ROOT_PATH": "/a b"}, "plain path"),
        (("my host", None, None), {}, "host name or address"),
    ],
)
def test_bad_values_are_one_line_errors(options, env, message):
    with pytest.raises(StudyError, match=message) as info:
        listen_address(*options, env=env)
    assert "\n" not in str(info.value)


def test_cli_reports_a_bad_port_variable(monkeypatch, capsys):
    monkeypatch.setenv("GRADIO_SERVER_PORT", "seventy")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: $GRADIO_SERVER_PORT must be a port number") and "\n" not in err


def test_cli_reports_a_bad_root_path(capsys):
    assert main(["serve", "--root-path", "no-slash"]) == 2
    assert "--root-path / $GRADIO_ROOT_PATH must start with /" in capsys.readouterr().err
