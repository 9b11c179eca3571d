"""The type checker (mypy, configured in pyproject.toml) passes on the typed boundaries:
the detector contract and every module that implements or uses it.

Add a module to ``CHECKED`` once it is clean. The first run builds mypy's cache
(``.mypy_cache/``, about a minute of CPU); later runs take seconds.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECKED = [
    "xai_study/maps.py",
    "xai_study/labels.py",
    "xai_study/runs",
    "xai_study/detectors/__init__.py",
    "xai_study/detectors/contract.py",
    "xai_study/detectors/baselines.py",
    "xai_study/detectors/padding.py",
    "xai_study/detectors/models.py",
    "xai_study/detectors/checkpoint.py",
    "xai_study/detectors/icpr.py",
    "xai_study/detectors/pretrained.py",
    "xai_study/detectors/evaluate.py",
    "xai_study/detectors/calibration.py",
    "xai_study/explainers",
    "xai_study/metrics",
]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed (it is in the dev group)",
)


def _mypy(*targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mypy", *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_mypy_passes_on_the_typed_modules() -> None:
    proc = _mypy(*CHECKED)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_sees_the_detector_contract(tmp_path) -> None:
    """The check is not vacuous: misusing the contract is a type error."""
    bad = tmp_path / "misuse.py"
    bad.write_text(
        "from xai_study.detectors.contract import VideoDetector\n"
        "from xai_study.detectors.models import create_detector\n\n"
        "def label(det: VideoDetector) -> str:\n"
        "    return det.video_score(None)\n\n"
        "def size() -> str:\n"
        "    return create_detector('plain').input_size\n"
    )
    proc = _mypy(str(bad))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("[return-value]") == 2, proc.stdout
