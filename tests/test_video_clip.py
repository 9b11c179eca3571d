"""Face clips from real videos (acceptance criteria of issue 2), caching, and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from xai_study.cli import main
from xai_study.errors import NoFaceError, VideoError, XaiStudyError
from xai_study.video import FaceClip, extract_face_clip, read_video

_CACHE: dict[tuple, FaceClip] = {}


def clip_of(path, **kw) -> FaceClip:
    key = (str(path), tuple(sorted(kw.items())))
    if key not in _CACHE:
        _CACHE[key] = extract_face_clip(path, **kw)
    return _CACHE[key]


def _check_geometry(clip: FaceClip):
    t = len(clip)
    s = clip.size
    assert clip.frames.shape == (t, s, s, 3) and clip.frames.dtype == np.uint8
    assert clip.boxes.shape == (t, 4) and clip.crop_boxes.shape == (t, 4)
    assert clip.landmarks.shape == (t, 5, 2) and clip.crop_landmarks.shape == (t, 5, 2)
    assert clip.probs.shape == (t,) and np.all(clip.probs >= 0.9)
    assert len(clip.frame_indices) == len(clip.timestamps) == t
    sides = clip.crop_boxes[:, 2] - clip.crop_boxes[:, 0]
    np.testing.assert_allclose(sides, clip.crop_boxes[:, 3] - clip.crop_boxes[:, 1], rtol=1e-5)
    box_side = np.maximum(clip.boxes[:, 2] - clip.boxes[:, 0], clip.boxes[:, 3] - clip.boxes[:, 1])
    # margin x the (lightly smoothed) box side
    np.testing.assert_allclose(sides / box_side, clip.margin, rtol=0.1)
    # landmarks fall inside the crop, eyes above mouth
    assert np.all((clip.crop_landmarks > 0) & (clip.crop_landmarks < s))
    assert np.all(clip.crop_landmarks[:, :2, 1].max(axis=1) < clip.crop_landmarks[:, 3:, 1].min(1))
    # crop landmarks are the source landmarks mapped into the crop
    back = clip.crop_landmarks * (sides / s)[:, None, None] + clip.crop_boxes[:, None, :2]
    np.testing.assert_allclose(back, clip.landmarks, atol=0.05)


def test_long_video_full_coverage(face_video):
    clip = clip_of(face_video)
    assert clip.frames_sampled == 32 and clip.coverage >= 0.95
    assert clip.source_fps == pytest.approx(23.976, abs=1e-3)
    assert clip.fps == pytest.approx(31 / clip.sampled_timestamps[-1], rel=1e-6)
    assert 1.4 < clip.fps < 1.7
    assert clip.source_size == (360, 640)
    _check_geometry(clip)


def test_short_video_full_coverage(short_face_video):
    clip = clip_of(short_face_video)
    assert clip.frames_sampled == 32 and clip.coverage >= 0.95
    assert clip.warnings == []
    _check_geometry(clip)
    # the crop really is the face: it matches the same square cut by hand from the frame
    video = read_video(short_face_video, num_frames=32)
    k = 10
    x1, y1, x2, y2 = clip.crop_boxes[k].round().astype(int)
    assert x1 >= 0 and y1 >= 0 and x2 <= 640 and y2 <= 360
    by_hand = np.asarray(Image.fromarray(video.frames[k, y1:y2, x1:x2]).resize((224, 224)))
    assert np.abs(by_hand.astype(int) - clip.frames[k].astype(int)).mean() < 8


def test_face_in_part_of_the_video(partial_face_video):
    clip = clip_of(partial_face_video)
    assert clip.frames_sampled == 32
    assert 0.2 < clip.coverage < 1.0
    assert len(clip) == round(clip.coverage * 32)
    # the face is in the first part: every kept frame comes before every dropped one
    kept = set(clip.frame_indices.tolist())
    dropped = [i for i in clip.sampled_indices.tolist() if i not in kept]
    assert max(kept) < min(dropped)
    assert any("coverage" in w for w in clip.warnings)
    _check_geometry(clip)


def test_no_face(no_face_video):
    with pytest.raises(NoFaceError, match="no face found"):
        extract_face_clip(no_face_video)


def test_two_people_the_clip_stays_on_one(data_dir):
    clip = clip_of(data_dir / "two_faces.mp4")
    assert clip.coverage == 1.0
    assert clip.faces_per_frame.max() == 2 and clip.faces_per_frame.min() == 1
    centres = (clip.boxes[:, 0] + clip.boxes[:, 2]) / 2
    assert np.all(centres < 320)  # always the person on the left, present in every frame
    assert any("faces in a frame" in w for w in clip.warnings)


@pytest.mark.parametrize("name", ["single_face.webm", "single_face.mkv", "single_face.avi"])
def test_other_containers(data_dir, name):
    clip = clip_of(data_dir / name, num_frames=8, size=112)
    assert clip.coverage == 1.0 and clip.frames.shape == (8, 112, 112, 3)
    _check_geometry(clip)


def test_still_image_is_a_one_frame_clip(data_dir):
    clip = clip_of(data_dir / "single_face.jpg")
    assert clip.frames_sampled == 1 and len(clip) == 1 and clip.coverage == 1.0
    assert clip.fps == 1.0
    assert any("still image" in w for w in clip.warnings)
    _check_geometry(clip)


def test_video_frames_input_and_options(short_face_video):
    video = read_video(short_face_video, num_frames=4)
    clip = extract_face_clip(video, size=64, margin=2.0, smooth=False)
    assert clip.frames.shape == (4, 64, 64, 3)
    np.testing.assert_array_equal(clip.frame_indices, video.indices)
    sides = clip.crop_boxes[:, 2] - clip.crop_boxes[:, 0]
    box_side = np.maximum(clip.boxes[:, 2] - clip.boxes[:, 0], clip.boxes[:, 3] - clip.boxes[:, 1])
    np.testing.assert_allclose(sides, 2.0 * box_side, rtol=1e-5)  # exact without smoothing


def test_bad_arguments(short_face_video, tmp_path):
    with pytest.raises(XaiStudyError, match="margin"):
        extract_face_clip(short_face_video, margin=0.5)
    with pytest.raises(XaiStudyError, match="size"):
        extract_face_clip(short_face_video, size=2)
    with pytest.raises(VideoError, match="over the limit"):
        extract_face_clip(short_face_video, max_bytes=1000)
    empty = tmp_path / "e.mov"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        extract_face_clip(empty)


def test_npz_round_trip_and_save(short_face_video, tmp_path):
    clip = clip_of(short_face_video)
    path = clip.to_npz(tmp_path / "cache" / "clip.npz")
    back = FaceClip.from_npz(path)
    for name in ("frames", "boxes", "crop_boxes", "landmarks", "crop_landmarks", "probs"):
        np.testing.assert_array_equal(getattr(back, name), getattr(clip, name))
    np.testing.assert_array_equal(back.frame_indices, clip.frame_indices)
    np.testing.assert_array_equal(back.timestamps, clip.timestamps)
    assert (back.fps, back.coverage, back.frames_sampled) == (
        clip.fps,
        clip.coverage,
        clip.frames_sampled,
    )
    assert back.source == clip.source and back.warnings == clip.warnings
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(XaiStudyError, match="cache"):
        FaceClip.from_npz(bad)

    out = tmp_path / "faces"
    clip.save(out)
    data = json.loads((out / "faces.json").read_text())
    assert data["frames_sampled"] == 32 and data["frames_with_face"] == 32
    assert data["coverage"] == 1.0 and len(data["frames"]) == 32 and len(data["sampled"]) == 32
    first = data["frames"][0]
    assert set(first) >= {"box", "landmarks", "timestamp", "frame_index", "crop"}
    png = np.asarray(Image.open(out / first["crop"]))
    np.testing.assert_array_equal(png, clip.frames[0])
    (out / "notes.txt").write_text("mine")
    short = FaceClip.from_npz(path)
    short.frames = short.frames[:3]
    short.save(out)  # a shorter clip into the same folder: stale crops go, other files stay
    assert sorted(p.name for p in out.glob("face_*.png")) == [f"face_00{k}.png" for k in range(3)]
    assert (out / "notes.txt").exists()


# ----------------------------------------------------------------------- CLI
def test_cli_partial_face(partial_face_video, tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["faces", str(partial_face_video), "--out", str(out), "--frames", "12"]) == 0
    captured = capsys.readouterr()
    assert "coverage" in captured.out and "warning:" in captured.err
    data = json.loads((out / "faces.json").read_text())
    assert data["frames_sampled"] == 12 and 0 < data["coverage"] < 1
    assert data["frames_with_face"] == len(list(out.glob("face_*.png")))
    assert all(len(f["box"]) == 4 and len(f["landmarks"]) == 5 for f in data["frames"])


def test_cli_options(short_face_video, tmp_path, capsys):
    out = tmp_path / "s"
    args = ["faces", str(short_face_video), "--out", str(out), "--frames", "3"]
    args += ["--size", "96", "--scale", "1.6", "--npz", "--quiet", "--threads", "2"]
    assert main(args) == 0
    assert capsys.readouterr().out == ""
    assert Image.open(out / "face_002.png").size == (96, 96)
    clip = FaceClip.from_npz(out / "face_clip.npz")
    assert clip.margin == 1.6 and len(clip) == 3 and clip.coverage == 1.0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--max-mb", "0.1"], "over the limit"),
        (["--frames", "0"], "at least 1"),
        (["--scale", "9"], "expected a value"),
        (["--size", "4"], "at least 8"),
    ],
)
def test_cli_bad_options(short_face_video, tmp_path, capsys, extra, message):
    try:  # argparse usage errors exit 2 themselves; input errors return 2
        status = main(["faces", str(short_face_video), "--out", str(tmp_path), *extra])
    except SystemExit as exc:
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_cli_bad_files_exit_2(no_face_video, tmp_path, capsys):
    text = tmp_path / "notes.avi"
    text.write_text("hello\n" * 100)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.mp4"
    data = no_face_video.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    cases = [(text, "not a video"), (empty, "empty"), (cut, "truncated")]
    cases += [(tmp_path / "missing.mkv", "no such file")]
    for path, message in cases:
        assert main(["faces", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err


def test_cli_no_face_in_a_subprocess(no_face_video, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "xai_study", "faces", str(no_face_video), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "no face found" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "faces.json").exists()


def test_phone_video_with_display_rotation(tmp_path, short_face_video):
    from test_video_io import phone_video

    phone_video(short_face_video, tmp_path / "p.mp4", num_frames=4)
    clip = extract_face_clip(tmp_path / "p.mp4")
    assert clip.source_size == (360, 640) and clip.coverage == 1.0
    _check_geometry(clip)  # includes: eyes above the mouth, i.e. the face is upright


def test_second_clip_of_a_file_reuses_detections(tmp_path, short_face_video, monkeypatch):
    import xai_study.video.clip as clip_mod

    path = tmp_path / "v.mp4"
    shutil.copy(short_face_video, path)
    calls = []
    real = clip_mod.detect_faces

    def counting(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(clip_mod, "detect_faces", counting)
    a = extract_face_clip(path, num_frames=4, size=64)
    b = extract_face_clip(path, num_frames=4, size=128, margin=1.5)  # cached detections
    assert len(calls) == 1
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert b.frames.shape == (4, 128, 128, 3)
    extract_face_clip(path, num_frames=5)  # other sampling: detect again
    assert len(calls) == 2
    video = read_video(path, num_frames=4)  # frames given directly: never cached
    extract_face_clip(video)
    assert len(calls) == 3
    data = path.read_bytes()
    path.write_bytes(data[:-1] + b"\0")  # the file changed: its mtime differs
    os.utime(path, ns=(1, 1))
    extract_face_clip(path, num_frames=4)
    assert len(calls) == 4
