"""Sub-commands of ``xai-study``.

Each module in this package defines ``register(subparsers)``, which adds one or more
sub-commands with ``subparsers.add_parser(...)`` and sets ``func=`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit status) via ``set_defaults``. The
CLI discovers the modules automatically, so adding a command never touches ``cli.py``.
Modules must import heavy libraries (torch, gradio, ...) inside ``func``, not at module
level, so that ``xai-study --help`` stays fast.
"""
