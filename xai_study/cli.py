"""The ``xai-study`` command line (also ``python -m xai_study``)."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from xai_study import __version__
from xai_study.errors import XaiStudyError

DESCRIPTION = """\
Explain why a video deepfake detector calls a video fake, measure the explanations,
and run browser user studies that compare them.

Typical flow:  faces -> detect -> explain -> metrics / evaluate -> build-study -> serve
Run 'xai-study COMMAND --help' for the options of each command."""


_ORDER = [
    "faces",
    "make_demo_data",
    "detectors",
    "checkpoints",
    "explain",
    "metrics",
    "study",
    "analyze",
]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line ``error: ...`` with exit status 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse hook
        sys.stderr.write(f"error: {self.prog}: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="xai-study",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"xai-study {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    from xai_study import commands

    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    # List commands in the order of the data flow; any other module goes last.
    names.sort(key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))
    for name in names:
        importlib.import_module(f"xai_study.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except XaiStudyError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except Exception as exc:  # a bug, but the user still gets one line, not a traceback
        if os.environ.get("XAI_STUDY_DEBUG"):
            raise
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__}: {exc} "
            "(set XAI_STUDY_DEBUG=1 for the traceback)\n"
        )
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
