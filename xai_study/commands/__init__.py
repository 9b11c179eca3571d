"""Sub-commands of ``xai-study``.

Each module in this package defines ``register(subparsers)``, which adds one or more
sub-commands with ``subparsers.add_parser(...)`` and sets ``func=`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit status) via ``set_defaults``. The
CLI discovers the modules automatically, so adding a command never touches ``cli.py``.
Modules must import heavy libraries (torch, gradio, ...) inside ``func``, not at module
level, so that ``xai-study --help`` stays fast.
"""

import argparse


def positive_int(text: str) -> int:
    """argparse ``type=`` for a whole number of at least 1, with a one-line message."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value
