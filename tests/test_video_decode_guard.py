"""Decode guards of read_video: huge frames are refused from the stream header, before
any frame is decoded (a 200 KB file can announce 8192 x 8192 frames)."""

from __future__ import annotations

import numpy as np
import pytest

from xai_study.errors import VideoError
from xai_study.video import read_video, write_video


def _encode(path, width, height, frames):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "ultrafast"}
        img = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        for _ in range(frames):
            for pk in s.encode(img):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return path


def test_huge_frames_are_refused_before_decoding(tmp_path, monkeypatch):
    from xai_study.video import io

    path = _encode(tmp_path / "bomb.mp4", 4352, 4352, 3)  # 18.9 MP per frame
    assert path.stat().st_size < 200_000

    def no_decoding(*args, **kwargs):
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(io, "_decode", no_decoding)
    with pytest.raises(VideoError, match=r"4352x4352 pixels, over the limit of 16\.8 mega"):
        read_video(path, num_frames=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_pixels": 1000}, "over the limit of 0.0 megapixels per frame"),
        ({"max_total_pixels": 5 * 64 * 64}, "6 frames of 64x64 pixels are over the limit"),
    ],
    ids=["per-frame", "all-frames"],
)
def test_pixel_budgets(tmp_path, kwargs, message):
    frames = np.zeros((6, 64, 64, 3), np.uint8)
    path = write_video(frames, tmp_path / "small.mp4", fps=6)
    with pytest.raises(VideoError, match=message):
        read_video(path, num_frames=6, **kwargs)
    assert read_video(path, num_frames=6).frames.shape == (6, 64, 64, 3)  # defaults: fine
    if "max_total_pixels" in kwargs:  # fewer frames fit the budget
        assert len(read_video(path, num_frames=5, **kwargs).frames) == 5


def test_huge_still_images_are_refused(tmp_path):
    from PIL import Image

    path = tmp_path / "huge.png"
    Image.new("RGB", (5000, 4000)).save(path)
    with pytest.raises(VideoError, match="5000x4000 pixels, over the limit"):
        read_video(path)


def test_the_demo_pre_check_refuses_huge_frames_before_decoding(tmp_path, monkeypatch):
    """demo.jobs.check_input reads the stream header only: no frame of a decode bomb is
    decoded, and the message names the file, not the server's folder."""
    import av

    from xai_study.demo.jobs import check_input

    path = _encode(tmp_path / "bomb.mp4", 4352, 4352, 2)
    decoded = []
    real_decode = av.container.InputContainer.decode

    def counting_decode(self, *args, **kwargs):
        for frame in real_decode(self, *args, **kwargs):
            decoded.append(frame)
            yield frame

    monkeypatch.setattr(av.container.InputContainer, "decode", counting_decode)
    with pytest.raises(VideoError, match=r"^bomb\.mp4: the frames are 4352x4352 pixels") as err:
        check_input(path)
    assert not decoded
    assert str(tmp_path) not in str(err.value)
