"""Where the bundled demo files are: the checkout, or the copy inside the installed package.

The demo checkpoints (``models/``), the demo study (``study_data/demo``) and the demo
data set (``study_data/demo_data``) live at the top of the repository. A wheel carries
copies of them under ``xai_study/_bundle/`` (``[tool.hatch.build.targets.wheel.
force-include]`` in ``pyproject.toml``), so that ``pip install`` followed by
``xai-study serve`` works from any directory.

:func:`bundled` looks in this order and returns the first that exists:

1. the checkout: the folder above the ``xai_study`` package, when it holds the project's
   ``pyproject.toml`` (a git checkout, an unpacked sdist, an editable install);
2. the installed copy, ``xai_study/_bundle/<relative path>``.

When neither exists it returns the checkout path if there is a checkout, else the
installed-copy path, so that the caller's "missing" error names a real place to look.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLE_DIR = PACKAGE_DIR / "_bundle"

MODELS = "models"
DEMO_STUDY = "study_data/demo"
DEMO_DATA = "study_data/demo_data"


def checkout_root() -> Path | None:
    """The repository root when the package runs from a checkout, else ``None``."""
    root = PACKAGE_DIR.parent
    pyproject = root / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "xai-study"' in text else None


def candidates(relative: str) -> list[Path]:
    """The places :func:`bundled` looks for ``relative``, in order."""
    root = checkout_root()
    return ([root / relative] if root is not None else []) + [BUNDLE_DIR / relative]


def bundled(relative: str) -> Path:
    """The first existing copy of the bundled ``relative`` path (see the module notes)."""
    places = candidates(relative)
    for p in places:
        if p.exists():
            return p
    return places[0]


def models_dir() -> Path:
    """The demo checkpoints folder (``plain.pt``, ``bonettini.pt``, ``ltpa.pt``)."""
    return bundled(MODELS)


def demo_study_dir() -> Path:
    """The demo study folder (``study.yaml`` + ``media/``)."""
    return bundled(DEMO_STUDY)


def demo_videos_dir() -> Path:
    """The demo data set's videos (the demo page's example videos)."""
    return bundled(f"{DEMO_DATA}/videos")


def is_installed_copy(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` lies in the installed package's bundle (read-only in general)."""
    p = Path(path).resolve()
    return p == BUNDLE_DIR or BUNDLE_DIR in p.parents
