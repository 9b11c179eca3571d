"""``xai-study build-study``: a real study folder from labelled videos."""

from __future__ import annotations

from pathlib import Path

import pytest

from xai_study.cli import main
from xai_study.study.spec import load_study
from xai_study.video import probe_codec, read_video

DATA = Path(__file__).resolve().parent / "data"


def _labels(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "labels.csv"
    lines = ["video_id,path,label,split"] + [f"{i},{p},{lab},test" for i, p, lab in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Untrained (seeded) small detectors: the build exercises the real pipeline."""
    import torch

    from xai_study.detectors import create_detector, save_checkpoint

    out = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    paths = {}
    for arch in ("plain", "bonettini", "ltpa"):
        det = create_detector(arch, backbone="efficientnet_lite0", input_size=64)
        paths[arch] = save_checkpoint(det, out / f"{arch}.pt", half=True)
    return paths


def _bad_input(tmp_path, case: str) -> tuple[list[str], str]:
    """(extra build-study arguments, expected message) of one bad-input case."""
    real = ("r", str(DATA / "single_face.mp4"), "real")
    fake = ("f", str(DATA / "single_face.webm"), "fake")
    if case == "no-labels-file":
        return ["--data", str(tmp_path / "none.csv")], "no such labels file"
    if case == "no-label-column":
        bad = tmp_path / "bad.csv"
        bad.write_text("file,kind\na,b\n")
        return ["--data", str(bad)], "needs the columns 'path' (or 'video'/'file') and 'label'"
    if case == "only-real":
        return ["--data", str(_labels(tmp_path, [real]))], "at least one real and one fake"
    two = str(_labels(tmp_path, [real, fake]))
    if case == "too-many-sections":
        return ["--data", two, "--sections", "3"], "--sections must be from 1 to 1"
    if case == "empty-split":
        return ["--data", two, "--split", "val"], "no videos in split 'val' (splits: test)"
    assert case == "unknown-detector-role"
    return ["--data", two, "--model", "vgg=x"], "unknown detector role 'vgg'"


@pytest.mark.parametrize(
    "case",
    [
        "no-labels-file",
        "no-label-column",
        "only-real",
        "too-many-sections",
        "empty-split",
        "unknown-detector-role",
    ],
)
def test_bad_inputs_are_one_line_errors(tmp_path, capsys, case):
    args, message = _bad_input(tmp_path, case)
    assert main(["build-study", *args, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s").exists()  # nothing written before the error


@pytest.mark.slow
def test_build_study_from_videos(tmp_path, checkpoints):
    labels = _labels(
        tmp_path,
        [
            ("real_1", str(DATA / "single_face.mp4"), "real"),
            ("fake_1", str(DATA / "single_face.webm"), "fake"),
        ],
    )
    out = tmp_path / "built"
    args = ["build-study", "--data", str(labels), "--out", str(out), "--frames", "4"]
    args += ["--shap-samples", "8", "--quiet"]
    for arch, path in checkpoints.items():
        args += ["--model", f"{arch}={path}"]
    assert main(args) == 0
    study = load_study(out)  # validates every path and field
    assert [s.video_id for s in study.sections] == ["fake_1"]
    sec = study.sections[0]
    assert sec.real_video_id == "real_1"
    assert sorted(sec.animations) == ["bonettini", "gradcam", "ltpa", "shap"]
    for path in [sec.real, sec.fake, *sec.animations.values()]:
        assert probe_codec(path)["codec"] in ("h264", "libx264"), path
    anim = read_video(sec.animations["gradcam"], num_frames=None)
    assert anim.frames.shape[1] == anim.frames.shape[2] and len(anim.frames) == 4
    # the animations differ (four real explanations, not copies)
    frames = {k: read_video(v, num_frames=None).frames for k, v in sec.animations.items()}
    assert len({f.tobytes() for f in frames.values()}) == 4
    import yaml

    raw = yaml.safe_load(study.path.read_text())
    metrics = raw["sections"][0]["meta"]["metrics"]
    assert set(metrics) == {"bonettini", "gradcam", "ltpa", "shap"}
    assert 0.0 <= metrics["gradcam"]["mu"] <= 1.0
    assert study.warnings == []  # opaque media names: nothing gives the answers away
    names = [p.name for p in [sec.real, sec.fake, *sec.animations.values()]]
    assert not any(w in n for n in names for w in ("fake", "real", "gradcam", "shap", "ltpa"))
    table = study.metrics_frame()
    assert sorted(table.index) == ["bonettini", "gradcam", "ltpa", "shap"]
    assert table.loc["gradcam", "mu"] == pytest.approx(metrics["gradcam"]["mu"])
    assert study.attention_checks and study.completion_code
    # an existing folder is not overwritten without --force
    assert main(args) == 2


def test_fakes_are_paired_with_their_source_video():
    from xai_study.study.build import pair_videos

    fakes = [{"id": f"f{i}", "source": f"r{i}" if i < 3 else None} for i in range(5)]
    reals = [{"id": f"r{i}"} for i in range(6)]
    pairs = pair_videos(fakes, reals, 5, seed=1)
    assert sorted(f["id"] for f, _ in pairs) == [f"f{i}" for i in range(5)]
    for fake, real in pairs:
        if fake["source"]:
            assert real["id"] == fake["source"]
    used = [r["id"] for _, r in pairs]
    assert len(set(used)) == 5  # every real used once
    assert pairs == pair_videos(fakes, reals, 5, seed=1)  # seeded
    assert len(pair_videos(fakes, reals, 2, seed=1)) == 2
