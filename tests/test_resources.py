"""The lookup of the bundled demo files (xai_study.resources): checkout first, then the
copy inside the installed package."""

from __future__ import annotations

from pathlib import Path

import pytest

from xai_study import resources
from xai_study.detectors import checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_a_checkout_uses_its_top_level_folders():
    assert resources.checkout_root() == ROOT
    assert resources.models_dir() == ROOT / "models"
    assert resources.demo_study_dir() == ROOT / "study_data" / "demo"
    assert resources.demo_videos_dir() == ROOT / "study_data" / "demo_data" / "videos"
    assert checkpoint.MODELS_DIR == ROOT / "models"
    assert not resources.is_installed_copy(ROOT / "study_data" / "demo")


def _fake_layout(tmp_path: Path, monkeypatch, checkout: bool) -> tuple[Path, Path]:
    pkg = tmp_path / "site" / "xai_study"
    bundle = pkg / "_bundle"
    (bundle / "models").mkdir(parents=True)
    (bundle / "models" / "plain.pt").write_bytes(b"x")
    if checkout:
        (tmp_path / "site" / "pyproject.toml").write_text('[project]\nname = "xai-study"\n')
    monkeypatch.setattr(resources, "PACKAGE_DIR", pkg)
    monkeypatch.setattr(resources, "BUNDLE_DIR", bundle)
    return tmp_path / "site", bundle


def test_installed_package_uses_its_bundle(tmp_path, monkeypatch):
    _, bundle = _fake_layout(tmp_path, monkeypatch, checkout=False)
    assert resources.checkout_root() is None
    assert resources.models_dir() == bundle / "models"
    assert resources.is_installed_copy(bundle / "models" / "plain.pt")
    # missing everywhere: the installed-copy path, for the caller's error message
    assert resources.demo_study_dir() == bundle / "study_data" / "demo"


@pytest.mark.parametrize("with_models", [True, False])
def test_checkout_first_then_bundle(tmp_path, monkeypatch, with_models):
    root, bundle = _fake_layout(tmp_path, monkeypatch, checkout=True)
    if with_models:
        (root / "models").mkdir()
    assert resources.checkout_root() == root
    expected = root / "models" if with_models else bundle / "models"
    assert resources.models_dir() == expected
    # neither exists: the checkout path is named
    assert resources.demo_study_dir() == root / "study_data" / "demo"


def test_another_projects_pyproject_is_not_a_checkout(tmp_path, monkeypatch):
    root, bundle = _fake_layout(tmp_path, monkeypatch, checkout=False)
    (root / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    (root / "models").mkdir()  # e.g. another distribution's top-level folder
    assert resources.checkout_root() is None
    assert resources.models_dir() == bundle / "models"
