"""Decoding and encoding video files with PyAV.

``read_video`` samples frames evenly over a video (any container FFmpeg reads: mp4, mov,
avi, webm, mkv; variable frame rate is fine because sampling goes by presentation time).
A still image is accepted as a one-frame video. ``write_video`` writes H.264 ``yuv420p``
MP4 that browsers play.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from xai_study.errors import VideoError

DEFAULT_MAX_BYTES = 200 * 1024 * 1024  # 200 MB
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class VideoFrames:
    """Frames sampled from a video."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    indices: np.ndarray  # (T,) index of each frame in decoding order
    timestamps: np.ndarray  # (T,) seconds from the start
    fps: float  # average frame rate of the source (1.0 for an image)
    duration: float  # seconds (0.0 for an image)
    total_frames: int  # frames decoded in the whole file
    path: str = ""
    is_image: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])


def check_file(path: str | os.PathLike, max_bytes: int | None = DEFAULT_MAX_BYTES) -> Path:
    """Check that ``path`` is an existing, non-empty file under the size limit."""
    p = Path(path)
    if not p.exists():
        raise VideoError(f"{p}: no such file")
    if not p.is_file():
        raise VideoError(f"{p}: not a file")
    size = p.stat().st_size
    if size == 0:
        raise VideoError(f"{p}: the file is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise VideoError(
            f"{p}: the file is {size / 1e6:.1f} MB, over the limit of {max_bytes / 1e6:.0f} MB"
        )
    return p


def _read_image(p: Path) -> VideoFrames:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise VideoError(f"{p}: not a readable image or video ({exc})") from None
    return VideoFrames(
        frames=arr[None].copy(),
        indices=np.zeros(1, dtype=np.int64),
        timestamps=np.zeros(1, dtype=np.float64),
        fps=1.0,
        duration=0.0,
        total_frames=1,
        path=str(p),
        is_image=True,
        warnings=["the input is a still image: treated as a one-frame video"],
    )


def _scan(p: Path) -> tuple[list[float], float, list[str]]:
    """Decode the whole stream once to get every frame's timestamp (robust for VFR)."""
    import av

    warnings: list[str] = []
    times: list[float] = []
    fps = 0.0
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise VideoError(f"{p}: the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if stream.average_rate:
                fps = float(stream.average_rate)
            tb = stream.time_base or Fraction(1, 1)
            try:
                for frame in container.decode(stream):
                    t = frame.pts * tb if frame.pts is not None else len(times) / max(fps, 1)
                    times.append(float(t))
            except av.error.FFmpegError as exc:
                if not times:
                    raise
                warnings.append(
                    f"the file is truncated or corrupt after frame {len(times)}: "
                    f"using the {len(times)} frames that decode ({exc.__class__.__name__})"
                )
    except VideoError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as exc:
        raise VideoError(f"{p}: not a readable video ({exc.__class__.__name__}: {exc})") from None
    if not times:
        raise VideoError(f"{p}: the video has no decodable frames")
    return times, fps, warnings


def read_video(
    path: str | os.PathLike,
    num_frames: int | None = 32,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> VideoFrames:
    """Sample ``num_frames`` frames evenly over the video (all frames if ``None``).

    Frames are spread evenly over the decoded frames (in presentation order), so a
    variable-frame-rate file is sampled evenly in frame count. Raises :class:`VideoError`
    with a one-line reason for anything that is not a readable video.
    """
    import av

    p = check_file(path, max_bytes)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return _read_image(p)
    try:
        times, fps, warnings = _scan(p)
    except VideoError:
        # Not a video container: maybe an image with an unusual suffix.
        try:
            return _read_image(p)
        except VideoError:
            pass
        raise
    order = np.argsort(np.asarray(times), kind="stable")
    n_total = len(times)
    if num_frames is None or num_frames >= n_total:
        wanted = order
    else:
        if num_frames < 1:
            raise VideoError("the number of frames to sample must be at least 1")
        pos = np.linspace(0, n_total - 1, num_frames)
        wanted = order[np.round(pos).astype(int)]
    wanted_set = {int(i): k for k, i in enumerate(wanted)}
    frames: list[np.ndarray | None] = [None] * len(wanted)
    with av.open(str(p)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for i, frame in enumerate(container.decode(stream)):
                k = wanted_set.get(i)
                if k is not None:
                    frames[k] = frame.to_ndarray(format="rgb24")
                if i >= n_total - 1:
                    break
        except av.error.FFmpegError:
            pass
    keep = [k for k, f in enumerate(frames) if f is not None]
    if not keep:
        raise VideoError(f"{p}: no frame could be decoded")
    arr = np.stack([frames[k] for k in keep])
    idx = np.asarray([int(wanted[k]) for k in keep], dtype=np.int64)
    ts = np.asarray([times[i] for i in idx], dtype=np.float64)
    t0 = min(times)
    duration = max(times) - t0 + (1.0 / fps if fps else 0.0)
    return VideoFrames(
        frames=arr,
        indices=idx,
        timestamps=ts - t0,
        fps=fps if fps else (n_total / duration if duration > 0 else 25.0),
        duration=float(duration),
        total_frames=n_total,
        path=str(p),
        warnings=warnings,
    )


def write_video(
    frames: np.ndarray,
    path: str | os.PathLike,
    fps: float = 25.0,
    crf: int = 20,
) -> Path:
    """Write RGB uint8 frames (T, H, W, 3) as H.264 ``yuv420p`` MP4 (browser-playable).

    Odd frame sizes are padded by one pixel (yuv420p needs even sizes). A ``.gif`` path
    writes an animated GIF instead; a ``.webm`` path writes VP9.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        from PIL import Image

        ims = [Image.fromarray(f) for f in frames]
        ims[0].save(
            out, save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0
        )
        return out
    h, w = frames.shape[1:3]
    ph, pw = h % 2, w % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        h, w = h + ph, w + pw
    rate = Fraction(fps).limit_denominator(1001)
    webm = out.suffix.lower() == ".webm"
    opts = {} if webm else {"movflags": "+faststart"}
    with av.open(str(out), mode="w", options=opts) as container:
        stream = container.add_stream("libvpx-vp9" if webm else "libx264", rate=rate)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        if not webm:
            stream.options = {"crf": str(crf), "preset": "medium"}
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def probe_codec(path: str | os.PathLike) -> dict:
    """Codec name, pixel format, size and frame count of the first video stream."""
    import av

    with av.open(str(path)) as container:
        s = container.streams.video[0]
        n = sum(1 for _ in container.decode(s))
        return {
            "codec": s.codec_context.name,
            "pix_fmt": s.codec_context.pix_fmt,
            "width": s.codec_context.width,
            "height": s.codec_context.height,
            "frames": n,
            "fps": float(s.average_rate) if s.average_rate else None,
        }
