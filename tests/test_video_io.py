"""Decoding (read_video) on real files in every supported container, and bad input."""

from __future__ import annotations

import wave
from fractions import Fraction

import av
import numpy as np
import pytest

from xai_study.errors import VideoError, XaiStudyError
from xai_study.video import probe_codec, read_video, write_video

EVEN_72_32 = np.round(np.linspace(0, 71, 32)).astype(int)


def _grey_video(path, values, fps=25, pts_ms=None, codec="libx264", size=(64, 48)):
    """Flat grey frames (frame k has grey level values[k]); optional explicit pts in ms."""
    w, h = size
    with av.open(str(path), mode="w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if pts_ms is not None:
            s.time_base = Fraction(1, 1000)
        if codec == "libx264":
            s.options = {"crf": "10", "bf": "0"}
        for k, v in enumerate(values):
            f = av.VideoFrame.from_ndarray(np.full((h, w, 3), v, np.uint8), format="rgb24")
            if pts_ms is not None:
                f.pts, f.time_base = pts_ms[k], Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize(
    "name, shape, fps",
    [
        ("single_face.mp4", (360, 640), 30.0),
        ("single_face.webm", (180, 320), 30.0),
        ("single_face.mkv", (180, 320), 30.0),
        ("single_face.avi", (180, 320), 30.0),
        ("two_faces.mp4", (180, 640), 30.0),
    ],
)
def test_containers_sample_32_even_frames(data_dir, name, shape, fps):
    v = read_video(data_dir / name, num_frames=32)
    assert v.frames.shape == (32, *shape, 3) and v.frames.dtype == np.uint8
    assert v.total_frames == 72
    assert v.fps == pytest.approx(fps)
    np.testing.assert_array_equal(v.indices, EVEN_72_32)
    np.testing.assert_allclose(v.timestamps, EVEN_72_32 / 30.0, atol=1e-3)
    assert v.duration == pytest.approx(2.4, abs=0.01)
    assert v.warnings == []
    assert v.frames.std() > 10  # real picture content, not blank frames


def test_hevc_mov_and_long_mp4(data_dir, partial_face_video, face_video):
    mov = read_video(partial_face_video, num_frames=8)
    assert mov.frames.shape == (8, 540, 960, 3) and mov.total_frames == 169
    long = read_video(face_video, num_frames=32)
    assert long.frames.shape == (32, 360, 640, 3) and long.total_frames == 472
    assert long.duration == pytest.approx(19.69, abs=0.05)
    assert np.all(np.diff(long.timestamps) > 0.5)


def test_edit_list_frames_are_not_counted(no_face_video):
    # no_face.mp4 has 98 packets, 3 of which its edit list drops: 95 frames are shown.
    v = read_video(no_face_video, num_frames=None)
    assert v.total_frames == 95 and len(v.frames) == 95
    assert v.timestamps[0] == 0.0
    sampled = read_video(no_face_video, num_frames=32)
    assert len(sampled.frames) == 32 and sampled.warnings == []


def test_all_frames_and_more_than_available(short_face_video):
    v = read_video(short_face_video, num_frames=None)
    assert len(v.frames) == 72
    np.testing.assert_array_equal(v.indices, np.arange(72))
    assert len(read_video(short_face_video, num_frames=500).frames) == 72


def test_sampling_picks_the_right_frames(tmp_path):
    values = [10 + 4 * k for k in range(50)]  # grey level encodes the frame index
    path = _grey_video(tmp_path / "ramp.mp4", values)
    v = read_video(path, num_frames=6)
    want = np.round(np.linspace(0, 49, 6)).astype(int)
    np.testing.assert_array_equal(v.indices, want)
    got = v.frames.reshape(6, -1).mean(axis=1)
    np.testing.assert_allclose(got, [values[i] for i in want], atol=2.0)


def test_variable_frame_rate_timestamps(tmp_path):
    pts = [0, 40, 80, 480, 520, 2000, 2040, 2080, 3000, 3040]  # on the 25 fps grid
    values = [20 * k + 10 for k in range(10)]
    path = _grey_video(tmp_path / "vfr.mkv", values, pts_ms=pts)
    v = read_video(path, num_frames=None)
    np.testing.assert_allclose(v.timestamps, np.asarray(pts) / 1000, atol=1e-3)
    np.testing.assert_allclose(v.frames.reshape(10, -1).mean(axis=1), values, atol=2.0)
    four = read_video(path, num_frames=4)  # even in frame count: 0, 3, 6, 9
    np.testing.assert_array_equal(four.indices, [0, 3, 6, 9])
    np.testing.assert_allclose(four.timestamps, [0.0, 0.48, 2.04, 3.04], atol=1e-3)


def test_truncated_mp4_with_index_first_uses_decodable_frames(tmp_path, face_video):
    data = face_video.read_bytes()
    cut = tmp_path / "half.mp4"
    cut.write_bytes(data[: len(data) // 2])  # moov is at the start of this file
    v = read_video(cut, num_frames=32)
    assert len(v.frames) == 32
    assert 150 < v.total_frames < 472
    assert v.timestamps[-1] < 12.0
    assert any("truncated" in w for w in v.warnings)


def test_truncated_mp4_without_index_is_a_clear_error(tmp_path, short_face_video):
    data = short_face_video.read_bytes()  # moov at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="moov") as err:
        read_video(cut)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["single_face.webm", "single_face.mkv", "single_face.avi"])
def test_truncated_other_containers(tmp_path, data_dir, name):
    data = (data_dir / name).read_bytes()
    cut = tmp_path / f"cut{(data_dir / name).suffix}"
    cut.write_bytes(data[: len(data) // 2])
    v = read_video(cut, num_frames=32)
    assert 5 <= len(v.frames) < 72 and v.total_frames < 72
    assert any("truncated" in w for w in v.warnings)
    full = read_video(data_dir / name, num_frames=None)
    # the frames that do decode are the same pictures as in the complete file
    k = int(v.indices[0])
    assert np.abs(v.frames[0].astype(int) - full.frames[k].astype(int)).mean() < 1.0


def test_corrupt_middle_still_gives_frames(tmp_path, data_dir):
    data = bytearray((data_dir / "single_face.mkv").read_bytes())
    rng = np.random.default_rng(0)
    data[5000:9000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    v = read_video(bad, num_frames=32)
    assert 1 <= len(v.frames) < 72
    assert v.warnings


def test_empty_missing_directory_and_text(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        read_video(empty)
    with pytest.raises(VideoError, match="no such file"):
        read_video(tmp_path / "nope.mp4")
    with pytest.raises(VideoError, match="not a file"):
        read_video(tmp_path)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="not a video"):
        read_video(text)


def test_audio_only_file(tmp_path):
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.sin(np.arange(8000) / 5) * 3000).astype("<i2").tobytes())
    with pytest.raises(VideoError, match="no video stream"):
        read_video(path)


def test_size_limit(short_face_video):
    with pytest.raises(VideoError, match="over the limit"):
        read_video(short_face_video, max_bytes=100_000)
    assert len(read_video(short_face_video, num_frames=2, max_bytes=None).frames) == 2


def test_bad_frame_count(short_face_video):
    with pytest.raises(XaiStudyError, match="at least 1"):
        read_video(short_face_video, num_frames=0)


def test_image_is_a_one_frame_video(data_dir, tmp_path):
    v = read_video(data_dir / "single_face.jpg")
    assert v.frames.shape == (1, 562, 572, 3) and v.is_image
    assert any("still image" in w for w in v.warnings)
    # an image with a video-like suffix is still read as one frame
    odd = tmp_path / "photo.mp4"
    odd.write_bytes((data_dir / "single_face.jpg").read_bytes())
    again = read_video(odd)
    assert again.frames.shape == (1, 562, 572, 3)
    assert np.abs(again.frames.astype(int) - v.frames.astype(int)).mean() < 3


def test_write_video_round_trip(tmp_path, short_face_video):
    src = read_video(short_face_video, num_frames=10)
    small = src.frames[:, ::4, ::4]  # 90 x 160
    out = write_video(small, tmp_path / "out.mp4", fps=10)
    info = probe_codec(out)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == 10
    back = read_video(out, num_frames=None)
    assert back.frames.shape == small.shape
    assert np.abs(back.frames.astype(int) - small.astype(int)).mean() < 6
    odd = write_video(small[:, :-1, :-1], tmp_path / "odd.webm", fps=10)
    assert probe_codec(odd)["codec"] in {"vp9", "libvpx-vp9"}


def phone_video(src, dst, num_frames=8):
    """A phone-style MP4: the pictures of ``src`` stored turned 90° counter-clockwise,
    with a display matrix saying 'rotate 90° clockwise to show' (as phones write)."""
    import struct

    upright = read_video(src, num_frames=num_frames).frames
    write_video(np.rot90(upright, 1, axes=(1, 2)), dst, fps=10, crf=12)
    data = bytearray(dst.read_bytes())
    pos = data.find(b"tkhd")
    off = pos + 8 + (20 if data[pos + 4] == 0 else 32) + 16
    m = 0x10000
    data[off : off + 36] = struct.pack(">9i", 0, m, 0, -m, 0, 0, 0, 0, 0x40000000)
    dst.write_bytes(bytes(data))
    return upright


def test_display_rotation_is_applied(tmp_path, short_face_video):
    upright = phone_video(short_face_video, tmp_path / "phone.mp4", num_frames=4)
    v = read_video(tmp_path / "phone.mp4", num_frames=None)
    assert v.frames.shape == upright.shape == (4, 360, 640, 3)
    assert np.abs(v.frames.astype(int) - upright.astype(int)).mean() < 4


@pytest.mark.parametrize("name", ["WolfgangLanger_Pexels.mp4", "face_noface.mov"])
def test_keyframe_seeking_gives_the_same_frames(data_dir, name):
    jump = read_video(data_dir / name, num_frames=12, seek=True)
    full = read_video(data_dir / name, num_frames=12, seek=False)
    np.testing.assert_array_equal(jump.indices, full.indices)
    np.testing.assert_array_equal(jump.frames, full.frames)


def test_keyframe_seeking_known_answer(tmp_path):
    values = [(7 * k) % 200 + 20 for k in range(300)]  # grey level encodes the frame
    path = tmp_path / "gop.mp4"
    w, h = 64, 48
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "10", "g": "10"}  # a keyframe every 10 frames
        for v in values:
            f = av.VideoFrame.from_ndarray(np.full((h, w, 3), v, np.uint8), format="rgb24")
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    got = read_video(path, num_frames=7)  # sparse: seeks by default
    want = np.round(np.linspace(0, 299, 7)).astype(int)
    np.testing.assert_array_equal(got.indices, want)
    np.testing.assert_allclose(got.frames.reshape(7, -1).mean(1), [values[i] for i in want], atol=2)
    np.testing.assert_array_equal(got.frames, read_video(path, num_frames=7, seek=False).frames)


def test_resolution_change_within_the_stream(tmp_path):
    def segment(w, h, value):
        path = tmp_path / f"{w}.ts"
        with av.open(str(path), mode="w", format="mpegts") as c:
            s = c.add_stream("mpeg2video", rate=25)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            for _ in range(10):
                f = av.VideoFrame.from_ndarray(np.full((h, w, 3), value, np.uint8), format="rgb24")
                for p in s.encode(f):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        return path.read_bytes()

    both = tmp_path / "both.ts"  # MPEG-TS segments can simply be concatenated
    both.write_bytes(segment(64, 48, 50) + segment(96, 64, 200))
    v = read_video(both, num_frames=None)
    assert v.frames.shape[1:] == (48, 64, 3)
    assert any("frame size changes" in w for w in v.warnings)
    means = v.frames.reshape(len(v.frames), -1).mean(axis=1)
    assert means.min() == pytest.approx(50, abs=3) and means.max() == pytest.approx(200, abs=3)
