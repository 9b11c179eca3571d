"""scripts/compare_outputs.py (the before/after check of refactorings) finds differences
and ignores only run times and the folders' own paths."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_outputs.py"
spec = importlib.util.spec_from_file_location("compare_outputs", SCRIPT)
compare_outputs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_outputs)


def _write(root: Path, p_fake: float, seconds: float, maps_scale: float = 1.0) -> None:
    root.mkdir()
    (root / "summary.json").write_text(json.dumps({"p_fake": p_fake, "seconds": seconds}))
    (root / "rows.csv").write_text(f"video,score,seconds\nv1,{p_fake},{seconds}\n")
    (root / "out.stdout").write_text(f"wrote {root}/grid.mp4 in {seconds:.1f} s\n")
    np.savez(root / "maps.npz", maps=np.ones((2, 3, 3)) * maps_scale)
    (root / "grid.mp4").write_bytes(b"same")


def test_identical_up_to_times_and_paths(tmp_path):
    _write(tmp_path / "a", 0.25, 1.5)
    _write(tmp_path / "b", 0.25, 123.0)
    diffs, binary, n = compare_outputs.compare(tmp_path / "a", tmp_path / "b")
    assert (diffs, binary, n) == ([], [], 5)


@pytest.mark.parametrize(
    "change, where",
    [
        ({"p_fake": 0.26}, "summary.json.p_fake"),
        ({"maps_scale": 1.001}, "maps.npz[maps]"),
    ],
    ids=["number", "array"],
)
def test_a_changed_value_is_reported(tmp_path, change, where):
    _write(tmp_path / "a", 0.25, 1.5)
    _write(tmp_path / "b", change.get("p_fake", 0.25), 1.5, change.get("maps_scale", 1.0))
    diffs, _, _ = compare_outputs.compare(tmp_path / "a", tmp_path / "b")
    assert any(d.startswith(where) for d in diffs), diffs
    assert compare_outputs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1


def test_missing_and_binary_files_are_reported(tmp_path):
    _write(tmp_path / "a", 0.25, 1.5)
    _write(tmp_path / "b", 0.25, 1.5)
    (tmp_path / "b" / "grid.mp4").write_bytes(b"other")
    (tmp_path / "a" / "extra.json").write_text("{}")
    diffs, binary, _ = compare_outputs.compare(tmp_path / "a", tmp_path / "b")
    assert diffs == ["extra.json: only in before"] and binary == ["grid.mp4: binary differs"]
