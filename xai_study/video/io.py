"""Decoding and encoding video files with PyAV.

``read_video`` samples frames evenly over a video (any container FFmpeg reads: mp4, mov,
avi, webm, mkv; variable frame rate is fine because sampling goes by presentation time).
A still image is accepted as a one-frame video. ``write_video`` writes H.264 ``yuv420p``
MP4 that browsers play.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from xai_study.errors import VideoError

DEFAULT_MAX_BYTES = 200 * 1024 * 1024  # 200 MB
#: Decode guards, checked from the stream header before any frame is decoded: pixels of
#: one frame (4096 x 4096), and pixels of all the frames kept (2**28 = 32 frames of
#: 4K UHD; 805 MB as RGB). A tiny file can announce huge frames (8192 x 8192 x 20 frames
#: of 200 KB decode to 4 GB).
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_TOTAL_PIXELS = 2**28
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class VideoFrames:
    """Frames sampled from a video."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    indices: np.ndarray  # (T,) index of each frame in decoding order
    timestamps: np.ndarray  # (T,) seconds from the start
    fps: float  # average frame rate of the source (1.0 for an image)
    duration: float  # seconds (0.0 for an image)
    total_frames: int  # frames in the whole file (that can be read)
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


def _read_image(p: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> VideoFrames:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            check_pixels(p, im.width, im.height, 1, max_pixels, None)
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
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


MOOV_MISSING = (
    "the MP4/MOV file is truncated or incomplete: its index (the 'moov' atom) is missing, "
    "so no frame can be located; use the complete file, or re-export it with the index "
    "at the start (ffmpeg -movflags +faststart)"
)


def _mp4_lacks_moov(p: Path) -> bool:
    """True for an ISO-BMFF (MP4/MOV) file whose top-level boxes have no ``moov``."""
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(12)
        if len(head) < 8 or head[4:8] not in (b"ftyp", b"mdat", b"wide", b"free", b"moov"):
            return False
        pos = 0
        while pos + 8 <= size:
            fh.seek(pos)
            hdr = fh.read(16)
            if len(hdr) < 8:
                break
            box_size = int.from_bytes(hdr[:4], "big")
            kind = hdr[4:8]
            if kind == b"moov":
                return False
            if box_size == 1 and len(hdr) >= 16:
                box_size = int.from_bytes(hdr[8:16], "big")
            elif box_size == 0:  # box runs to the end of the file
                break
            if box_size < 8:
                return False  # not a sane box structure: let FFmpeg judge
            pos += box_size
    return True


def _ffmpeg_reason(exc: Exception) -> str:
    """The human part of an FFmpeg error, without errno and file name."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip().rstrip(".")


@dataclass
class _Scan:
    pts: list[int]  # presentation timestamps (time-base units) in presentation order
    time_base: Fraction
    fps: float
    warnings: list[str]
    keys: list[int] = field(default_factory=list)  # keyframe timestamps, sorted
    has_pts: bool = True
    width: int = 0  # frame size the stream header announces (0: unknown)
    height: int = 0


def _open_error(p: Path, exc: Exception) -> VideoError:
    try:
        if _mp4_lacks_moov(p):
            return VideoError(f"{p}: {MOOV_MISSING}")
    except OSError:
        pass
    return VideoError(
        f"{p}: not a video or image file that FFmpeg can read ({_ffmpeg_reason(exc)})"
    )


def _scan(p: Path) -> _Scan:
    """Demux the video stream once (no decoding) to get every frame's timestamp."""
    import av

    warnings: list[str] = []
    pts: list[int] = []
    keys: list[int] = []
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise _open_error(p, exc) from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{p}: the file has no video stream")
        stream = container.streams.video[0]
        width = int(getattr(stream.codec_context, "width", 0) or 0)
        height = int(getattr(stream.codec_context, "height", 0) or 0)
        fps = float(stream.average_rate) if stream.average_rate else 0.0
        tb = stream.time_base or Fraction(1, 1000)
        missing_pts = False
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or getattr(packet, "is_discard", False):
                    continue  # flush packet, or a frame an edit list drops
                if packet.pts is None:
                    missing_pts = True
                    pts.append(len(pts))
                else:
                    pts.append(int(packet.pts))
                    if packet.is_keyframe:
                        keys.append(int(packet.pts))
        except av.error.FFmpegError as exc:
            if not pts:
                raise VideoError(
                    f"{p}: the video is corrupt, no frame could be read ({_ffmpeg_reason(exc)})"
                ) from None
            warnings.append(
                f"the file is truncated or corrupt after frame {len(pts)}: "
                f"using the frames before that ({_ffmpeg_reason(exc)})"
            )
        if missing_pts:
            # No timestamps (e.g. raw streams in AVI): frame order and nominal rate.
            rate = fps or 25.0
            tb = Fraction(1, 1) / Fraction(rate).limit_denominator(1001)
            pts = list(range(len(pts)))
        if not pts:
            raise VideoError(f"{p}: the video has no frames")
        pts.sort()
        # Spot truncation: fewer frames / less time than the header announces.
        if not warnings:
            last = float((pts[-1] - pts[0]) * tb)
            expected_t = 0.0
            if stream.duration:
                expected_t = float(stream.duration * tb)
            if container.duration:
                expected_t = max(expected_t, container.duration / 1e6)
            expected_n = int(stream.frames or 0)
            step = 1.0 / fps if fps else 0.04
            short_n = expected_n > 0 and len(pts) < 0.95 * expected_n - 1
            short_t = expected_t > 0 and last + 2 * step < 0.9 * expected_t
            if short_n or short_t:
                announced = f"{expected_n} frames" if short_n else f"{expected_t:.1f} s"
                warnings.append(
                    f"the file looks truncated: {len(pts)} frames ({last + step:.1f} s) can "
                    f"be read of the {announced} its header announces; using those"
                )
    return _Scan(
        pts=pts,
        time_base=Fraction(tb),
        fps=fps,
        warnings=warnings,
        keys=sorted(keys),
        has_pts=not missing_pts,
        width=width,
        height=height,
    )


def check_pixels(
    p: Path,
    width: int,
    height: int,
    n_frames: int,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_total_pixels: int | None = DEFAULT_MAX_TOTAL_PIXELS,
) -> None:
    """Refuse, before decoding, frames over ``max_pixels`` or ``n_frames`` of them over
    ``max_total_pixels`` (None: no limit)."""
    per = int(width) * int(height)
    if max_pixels is not None and per > max_pixels:
        raise VideoError(
            f"{p}: the frames are {width}x{height} pixels, over the limit of "
            f"{max_pixels / 1e6:.1f} megapixels per frame; use a smaller video"
        )
    if max_total_pixels is not None and per * n_frames > max_total_pixels:
        raise VideoError(
            f"{p}: {n_frames} frames of {width}x{height} pixels are over the limit of "
            f"{max_total_pixels / 1e6:.0f} megapixels in all; sample fewer frames or use a "
            "smaller video"
        )


def _upright(frame) -> np.ndarray:
    """RGB array of a decoded frame, turned as the file's display matrix says (phones)."""
    img = frame.to_ndarray(format="rgb24")
    rotation = getattr(frame, "rotation", 0) or 0  # degrees counter-clockwise
    k = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(img, k)) if k else img


class _SeekFailed(Exception):
    pass


def _decode(
    p: Path, targets: list[int], pts: list[int], keys: list[int]
) -> tuple[list[np.ndarray | None], list[int], int, str]:
    """Decode, for each target timestamp, the first frame at or after it.

    With ``keys`` (keyframe timestamps) the decoder jumps to the keyframe before the next
    target whenever that keyframe lies ahead, instead of decoding everything in between.
    Returns the frames (None where none was found), their timestamps, how many frames
    were decoded, and the FFmpeg error that stopped decoding ('' if none).
    """
    import av

    frames: list[np.ndarray | None] = [None] * len(targets)
    got: list[int] = [0] * len(targets)
    nxt = decoded = 0
    n_total = len(pts)
    error = ""
    with av.open(str(p)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        gen = None
        current_key = None  # keyframe we last jumped to
        last_pts = None
        while nxt < len(targets):
            if keys:
                key = keys[max(0, bisect.bisect_right(keys, targets[nxt]) - 1)]
                ahead = last_pts is None or key > last_pts
                if ahead and (current_key is None or key > current_key):
                    try:
                        container.seek(key, stream=stream, backward=True, any_frame=False)
                    except av.error.FFmpegError:
                        raise _SeekFailed from None
                    current_key, gen = key, None
            if gen is None:
                gen = container.decode(stream)
            jump = False
            try:
                for frame in gen:
                    if frame.pts is None:
                        if keys:
                            raise _SeekFailed
                        fp = pts[min(decoded, n_total - 1)]
                    else:
                        fp = frame.pts
                    decoded += 1
                    last_pts = fp
                    if fp >= targets[nxt]:
                        img = _upright(frame)
                        while nxt < len(targets) and fp >= targets[nxt]:
                            frames[nxt], got[nxt] = img, fp
                            nxt += 1
                    if nxt >= len(targets):
                        break
                    if keys:
                        key = keys[max(0, bisect.bisect_right(keys, targets[nxt]) - 1)]
                        if key > fp and (current_key is None or key > current_key):
                            jump = True
                            break
            except av.error.FFmpegError as exc:
                error = _ffmpeg_reason(exc)
                break
            if not jump:
                break  # end of the stream
    return frames, got, decoded, error


def read_video(
    path: str | os.PathLike,
    num_frames: int | None = 32,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    seek: bool | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_total_pixels: int | None = DEFAULT_MAX_TOTAL_PIXELS,
) -> VideoFrames:
    """Sample ``num_frames`` frames evenly over the video (all frames if ``None``).

    The stream is demuxed once to list every frame's presentation time, ``num_frames``
    positions are spread evenly over that list (so a variable-frame-rate file is sampled
    evenly in frame count), and one decoding pass keeps, for each position, the first
    decoded frame at or after its time; when the samples are sparse (``seek=None``: fewer
    than a quarter of the frames) the decoder jumps from keyframe to keyframe instead of
    decoding everything (``seek=False`` forces the full pass, which gives the same
    frames). Frames are turned upright when the file carries a
    display rotation (portrait phone videos). A truncated or partly corrupt file yields the
    frames that decode, with a warning. Raises :class:`VideoError` with a one-line reason
    for anything that is not a readable video, and for frames over ``max_pixels`` or
    sampled frames over ``max_total_pixels`` in all (checked from the stream header before
    any frame is decoded; None: no limit).
    """
    import av

    if num_frames is not None and num_frames < 1:
        raise VideoError(f"the number of frames to sample must be at least 1, got {num_frames}")
    p = check_file(path, max_bytes)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return _read_image(p, max_pixels)
    try:
        scan = _scan(p)
    except VideoError:
        # Not a video container: maybe an image with an unusual suffix.
        try:
            return _read_image(p, max_pixels)
        except VideoError:
            pass
        raise
    pts, tb = scan.pts, scan.time_base
    warnings = list(scan.warnings)
    n_total = len(pts)
    if num_frames is None or num_frames >= n_total:
        positions = np.arange(n_total)
    else:
        positions = np.round(np.linspace(0, n_total - 1, num_frames)).astype(int)
    targets = [pts[i] for i in positions]
    check_pixels(p, scan.width, scan.height, len(targets), max_pixels, max_total_pixels)
    if seek is None:  # sparse sampling of a healthy file: jump between keyframes
        seek = scan.has_pts and not scan.warnings and len(scan.keys) > 1
        seek = seek and 4 * len(targets) < n_total
    try:
        try:
            frames, got_pts, decoded, error = _decode(p, targets, pts, scan.keys if seek else [])
        except _SeekFailed:
            frames, got_pts, decoded, error = _decode(p, targets, pts, [])
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{p}: the video cannot be decoded ({_ffmpeg_reason(exc)})") from None
    if error and not scan.warnings:
        warnings.append(
            f"decoding stopped after {decoded} frames, the file is corrupt "
            f"there ({error}); using the frames before that"
        )
    keep = [k for k, f in enumerate(frames) if f is not None]
    if not keep:
        raise VideoError(f"{p}: no frame of the video could be decoded")
    if len(keep) < len(targets) and not any("corrupt" in w or "trunc" in w for w in warnings):
        warnings.append(
            f"only {len(keep)} of {len(targets)} sampled frames could be decoded "
            "(the end of the file is damaged)"
        )
    # Repeated frames (several positions mapped to one decoded frame) are dropped.
    uniq: list[int] = []
    for k in keep:
        if not uniq or got_pts[k] != got_pts[uniq[-1]]:
            uniq.append(k)
    picked = [frames[k] for k in uniq]
    shapes = {f.shape for f in picked}
    if len(shapes) > 1:  # the stream changes resolution: bring all to the first size
        import cv2

        h, w = picked[0].shape[:2]
        picked = [
            f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
            for f in picked
        ]
        warnings.append(f"the frame size changes within the video: frames resized to {w}x{h}")
    arr = np.stack(picked)
    pts_arr = np.asarray(pts)
    got = np.asarray([got_pts[k] for k in uniq])
    idx = np.clip(np.searchsorted(pts_arr, got), 0, n_total - 1).astype(np.int64)
    t0 = pts[0]
    ts = np.asarray([float((g - t0) * tb) for g in got], dtype=np.float64)
    fps = scan.fps
    span = float((pts[-1] - t0) * tb)
    duration = span + (1.0 / fps if fps else (span / max(n_total - 1, 1)))
    if not fps:
        fps = n_total / duration if duration > 0 else 25.0
    return VideoFrames(
        frames=arr,
        indices=idx,
        timestamps=ts,
        fps=float(fps),
        duration=float(duration),
        total_frames=n_total,
        path=str(p),
        warnings=warnings,
    )


def read_clip(
    path: str | os.PathLike,
    fps: float | None = None,
    max_frames: int | None = None,
    max_side: int | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> VideoFrames:
    """Consecutive frames from the start of a video, for playing it again.

    Frames are taken at ``fps`` (by timestamp, every ``1/fps`` s; ``None`` or a rate at
    or above the file's: every frame, at the file's rate), at most ``max_frames`` of them
    (so a longer video is cut to its first ``max_frames / fps`` seconds), each scaled
    while decoding so that its longest side is at most ``max_side`` pixels (never
    enlarged): a long HD video needs memory only for the small frames. ``fps`` of the
    result is the rate the frames play at. Frames over ``max_pixels`` are refused from the
    header, before decoding; a file that is damaged part-way yields the frames before the
    damage, with a warning.
    """
    import av

    if fps is not None and fps <= 0:
        raise VideoError(f"the frame rate must be positive, got {fps}")
    if max_frames is not None and max_frames < 1:
        raise VideoError(f"the number of frames must be at least 1, got {max_frames}")
    p = check_file(path, max_bytes)
    scan = _scan(p)
    check_pixels(p, scan.width, scan.height, 1, max_pixels, None)
    src_fps = float(scan.fps) if scan.fps else 25.0
    out_fps = src_fps if fps is None or fps >= src_fps else float(fps)
    step = 1.0 / out_fps
    t0 = scan.pts[0] if scan.pts else 0
    frames: list[np.ndarray] = []
    indices: list[int] = []
    times: list[float] = []
    warnings = list(scan.warnings)
    next_t = 0.0
    try:
        with av.open(str(p)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for k, frame in enumerate(container.decode(stream)):
                    t = (
                        float((frame.pts - t0) * scan.time_base)
                        if frame.pts is not None
                        else k / src_fps
                    )
                    if t + 1e-6 < next_t:
                        continue
                    img = _upright(frame)
                    h, w = img.shape[:2]
                    if max_side and max(h, w) > max_side:
                        import cv2

                        scale = max_side / max(h, w)
                        size = (max(2, round(w * scale)), max(2, round(h * scale)))
                        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
                    if frames and img.shape != frames[0].shape:
                        import cv2

                        fh, fw = frames[0].shape[:2]
                        img = cv2.resize(img, (fw, fh), interpolation=cv2.INTER_AREA)
                    frames.append(img)
                    indices.append(k)
                    times.append(t)
                    while next_t <= t + 1e-6:  # the next frame's slot
                        next_t += step
                    if max_frames is not None and len(frames) >= max_frames:
                        break
            except av.error.FFmpegError as exc:
                if not frames:
                    raise
                warnings.append(
                    f"decoding stopped after {len(frames)} frames, the file is corrupt there "
                    f"({_ffmpeg_reason(exc)}); using the frames before that"
                )
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{p}: the video cannot be decoded ({_ffmpeg_reason(exc)})") from None
    if not frames:
        raise VideoError(f"{p}: no frame of the video could be decoded")
    return VideoFrames(
        frames=np.stack(frames),
        indices=np.asarray(indices, dtype=np.int64),
        timestamps=np.asarray(times, dtype=np.float64),
        fps=out_fps,
        duration=len(frames) / out_fps,
        total_frames=len(scan.pts),
        path=str(p),
        warnings=warnings,
    )


def write_video(
    frames: np.ndarray,
    path: str | os.PathLike,
    fps: float = 25.0,
    crf: int = 20,
    *,
    x264_params: str | None = None,
    threads: int | None = None,
) -> Path:
    """Write RGB uint8 frames (T, H, W, 3) as H.264 ``yuv420p`` MP4 (browser-playable).

    Odd frame sizes are padded by one pixel (yuv420p needs even sizes). A ``.gif`` path
    writes an animated GIF instead; a ``.webm`` path writes VP9. ``x264_params`` and
    ``threads`` (encoder threads) pass through to x264 (see ``xai_study.data.encode``).
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
        ims[0].save(out, save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)
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
        if threads is not None:
            stream.codec_context.thread_count = threads
        if not webm:
            stream.options = {"crf": str(crf), "preset": "medium"}
            if x264_params:
                stream.options = {**stream.options, "x264-params": x264_params}
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
