"""``xai-study build-study``: a real study folder from labelled videos."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from xai_study.cli import main
from xai_study.errors import StudyError
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
    assert study.attention_checks and len(study.completion_code) == 16
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


def _noise_video(path: Path) -> Path:
    """A decodable video without a face (cheap for MTCNN: 64 px)."""
    import numpy as np

    from xai_study.video import write_video

    rng = np.random.default_rng(0)
    return write_video(rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8), path, fps=4)


@pytest.mark.slow
def test_bad_videos_are_skipped_and_an_interrupted_build_resumes(
    tmp_path, checkpoints, capsys, monkeypatch
):
    """A corpus with a fake without a face, a fake and a real that do not decode: they
    are skipped and reported; a build interrupted after its first section continues
    from there (no finished or skipped video analysed again); the same command again
    (with --force) gives another random completion code."""
    from xai_study.study import build

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 64)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "video_id,path,label,split,target_video_id\n"
        f"r_bad,{garbage},real,test,\n"
        f"r1,{DATA / 'single_face.mp4'},real,test,\n"
        f"r2,{DATA / 'single_face.avi'},real,test,\n"
        f"f_noise,{_noise_video(tmp_path / 'noise.mp4')},fake,test,\n"
        f"f_garbage,{garbage},fake,test,\n"
        f"f1,{DATA / 'single_face.webm'},fake,test,r_bad\n"
        f"f2,{DATA / 'single_face.mkv'},fake,test,\n"
    )
    out = tmp_path / "built"
    args = ["build-study", "--data", str(labels), "--out", str(out), "--quiet"]
    args += ["--explainers", "gradcam,bonettini", "--frames", "2"]
    args += ["--video-size", "96", "--video-fps", "10", "--video-frames", "12"]
    for arch in ("plain", "bonettini"):
        args += ["--model", f"{arch}={checkpoints[arch]}"]

    real_analyse = build.analyse_fake
    calls: list[str] = []
    state = {"analysed": 0, "interrupt": True}

    def analyse(fake, *a, **kw):
        if state["interrupt"] and state["analysed"] == 1:
            state["interrupt"] = False
            raise KeyboardInterrupt  # Ctrl-C while the second usable fake is analysed
        calls.append(fake["id"])
        result = real_analyse(fake, *a, **kw)
        state["analysed"] += 1
        return result

    monkeypatch.setattr(build, "analyse_fake", analyse)
    assert main(args) == 130
    assert "run the same command again to continue" in capsys.readouterr().err
    journal = build.Journal(out)
    done = [r for r in journal.records() if r["kind"] == "section"]
    assert len(done) == 1 and not (out / "study.yaml").exists()
    first_media = {p.name: p.read_bytes() for p in (out / "media").glob("s01_*")}
    assert len(first_media) == 4  # real, fake, 2 animations
    before = list(calls)

    calls.clear()
    assert main(args) == 0
    report = capsys.readouterr().out
    assert set(calls).isdisjoint(before)  # nothing finished or skipped is analysed again
    assert done[0]["fake"] not in calls  # the finished section was not recomputed
    assert "built 2 section(s) (1 kept from an interrupted build)" in report
    study = load_study(out)
    assert sorted(s.video_id for s in study.sections) == ["f1", "f2"]
    assert {s.real_video_id for s in study.sections} == {"r1", "r2"}  # r_bad skipped
    assert {p.name: p.read_bytes() for p in (out / "media").glob("s01_*")} == first_media
    raw = yaml.safe_load(study.path.read_text())
    skipped = {(s["role"], s["video_id"]): s["reason"] for s in raw["built_with"]["skipped"]}
    assert set(skipped) == {("fake", "f_noise"), ("fake", "f_garbage"), ("real", "r_bad")}
    assert "no face found" in skipped[("fake", "f_noise")]
    assert "FFmpeg" in skipped[("real", "r_bad")]
    for role, vid in skipped:
        assert f"{role} {vid} (" in report
    assert "skipped 3 video(s):" in report
    assert not journal.dir.exists()
    fake = read_video(study.sections[0].fake, num_frames=None)
    assert fake.frames.shape[1:3] == (54, 96) and len(fake.frames) == 12
    assert fake.fps == pytest.approx(10.0)
    # a finished study is not overwritten; the same command with --force builds anew,
    # with a new random completion code
    assert main(args) == 2
    capsys.readouterr()
    monkeypatch.setattr(build, "analyse_fake", real_analyse)
    assert main([*args, "--force"]) == 0
    assert load_study(out).completion_code != study.completion_code


def test_unfinished_build_journal(tmp_path):
    """The journal ignores a line cut short by a crash and refuses to resume with
    settings that change the sections."""
    from xai_study.study.build import Journal

    journal = Journal(tmp_path)
    request = journal.start({"seed": 0, "frames": 4})
    assert len(request["salt"]) == 32
    journal.append({"kind": "section", "fake": "f1", "real": "r1", "section": {"id": "s01"}})
    with open(journal.path, "a") as fh:
        fh.write('{"kind": "section", "fake": "f2", "re')  # killed mid-write
    assert [r["fake"] for r in journal.records()] == ["f1"]
    assert journal.resume({"seed": 0, "frames": 4}) == request
    with pytest.raises(StudyError, match=r"other settings \(frames: 4, now 8\)"):
        journal.resume({"seed": 0, "frames": 8})


def test_study_settings_are_checked_before_the_build(tmp_path):
    from xai_study.study.build import StudySettings

    codes = {StudySettings().resolve()["completion_code"] for _ in range(2)}
    assert len(codes) == 2  # random, not derived from anything
    assert all(len(c) == 16 for c in codes)
    consent = tmp_path / "consent.md"
    consent.write_text("Mein Text {contact}\n")
    texts = tmp_path / "texts.yaml"
    texts.write_text("texts:\n  q1: Frage eins\n")
    got = StudySettings(
        completion_code="MY-CODE-1", consent=consent, texts=texts, contact=" a@b.c "
    ).resolve()
    assert got["completion_code"] == "MY-CODE-1" and got["contact"] == "a@b.c"
    assert got["texts"] == {"q1": "Frage eins", "consent": "Mein Text {contact}"}
    bad_texts = tmp_path / "bad.yaml"
    bad_texts.write_text("q1: x\nq9: y\n")
    empty = tmp_path / "empty.md"
    empty.write_text("\n")
    for settings, message in [
        (StudySettings(redirect_url="ftp://x"), "--redirect-url must be an http(s) URL"),
        (StudySettings(completion_code="a b"), "--completion-code: 'a b' is not a valid code"),
        (StudySettings(completion_code="SAME1", screenout_code="SAME1"), "must differ"),
        (StudySettings(consent=empty), "the file is empty"),
        (StudySettings(consent=tmp_path / "none.md"), "No such file"),
        (StudySettings(texts=bad_texts), "unknown text key(s) q9 in 'texts' (known: intro,"),
        (StudySettings(contact=" "), "--contact must not be empty"),
    ]:
        with pytest.raises(StudyError) as info:
            settings.resolve()
        assert message in str(info.value), (message, str(info.value))


def test_participant_videos_keep_their_frame_rate(tmp_path):
    """Stimuli: a 2.4 s, 30 fps clip at --video-fps 25 plays at 25 fps for 2.4 s
    (60 frames), not 50 frames spread over it; --video-frames cuts it; size limited."""
    from xai_study.study.build import Stimuli, _stimulus_video

    info = _stimulus_video(DATA / "single_face.mp4", tmp_path / "a.mp4", Stimuli())
    assert info == {"frames": 60, "fps": 25.0, "size": [480, 270]}
    video = read_video(tmp_path / "a.mp4", num_frames=None)
    assert len(video.frames) == 60 and video.fps == pytest.approx(25.0)
    assert video.duration == pytest.approx(2.4, abs=0.05)
    info = _stimulus_video(
        DATA / "single_face.mp4",
        tmp_path / "b.mp4",
        Stimuli(video_size=0, video_fps=60, video_frames=30),
    )
    assert info == {"frames": 30, "fps": 30.0, "size": [640, 360]}  # source rate, cut at 1 s
    with pytest.raises(StudyError, match="--video-fps must be from 1 to 120"):
        Stimuli(video_fps=0).check()
