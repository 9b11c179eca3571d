"""``xai-study faces``: turn a video into a tracked face clip (PNG crops + faces.json)."""

from __future__ import annotations

import argparse
import sys

from xai_study.commands import positive_int

DEFAULT_MAX_MB = 200.0
DEFAULT_BATCH_SIZE = 16  # xai_study.video.faces.DEFAULT_BATCH_SIZE (not imported: fast --help)


def _float_range(lo: float, hi: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected a value in [{lo:g}, {hi:g}], got {value:g}")
        return value

    return parse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "faces",
        help="extract a tracked face clip from a video (crops + faces.json)",
        description=(
            "Sample frames evenly over a video (mp4, mov, avi, webm, mkv; a still image is "
            "a one-frame video), detect faces with MTCNN, follow one person, and write "
            "square face crops (face_000.png, ...) and faces.json (frames_sampled, "
            "frames_with_face, coverage, per-frame boxes, landmarks, timestamps, warnings) "
            "to the output folder. Exits with status 2 and 'error: no face found ...' when "
            "no sampled frame has a face."
        ),
        epilog=(
            "examples:\n"
            "  xai-study faces clip.mp4 --out faces/\n"
            "  xai-study faces clip.mov --out faces/ --frames 64 --scale 1.5 --size 380\n"
            "  xai-study faces big.mkv --out faces/ --max-mb 0   # no size limit"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("video", metavar="VIDEO", help="video file (or image) to read")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output folder, created (default: ./<video name>_faces)",
    )
    p.add_argument(
        "--frames",
        metavar="N",
        type=positive_int,
        default=32,
        help="frames sampled evenly over the video (default: 32)",
    )
    p.add_argument(
        "--scale",
        "--margin",
        dest="scale",
        metavar="S",
        type=_float_range(1.0, 4.0),
        default=1.3,
        help="crop side as a multiple of the longer face-box side (default: 1.3)",
    )
    p.add_argument(
        "--size",
        metavar="PX",
        type=positive_int,
        default=224,
        help="side of the square crops in pixels (default: 224)",
    )
    p.add_argument(
        "--max-mb",
        metavar="MB",
        type=_float_range(0.0, 1e9),
        default=DEFAULT_MAX_MB,
        help=f"refuse files larger than this many MB; 0 = no limit (default: {DEFAULT_MAX_MB:g})",
    )
    p.add_argument(
        "--max-side",
        metavar="PX",
        type=positive_int,
        default=640,
        help="downscale frames so the longer side is at most PX for detection; crops "
        "are still cut from the full-resolution frame (default: 640)",
    )
    p.add_argument(
        "--min-prob",
        metavar="P",
        type=_float_range(0.0, 1.0),
        default=0.9,
        help="minimum MTCNN face probability (default: 0.9)",
    )
    p.add_argument(
        "--threads",
        metavar="N",
        type=positive_int,
        default=1,
        help="torch threads for face detection; MTCNN is fastest with 1 (default: 1)",
    )
    from xai_study.devices import DEVICE_HELP

    p.add_argument("--device", default="auto", metavar="DEV", help=f"MTCNN device: {DEVICE_HELP}")
    p.add_argument(
        "--batch-size",
        metavar="N",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"frames per MTCNN batch (default: {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument("--no-smooth", action="store_true", help="do not smooth the crop box over time")
    p.add_argument(
        "--npz", action="store_true", help="also write the whole clip to DIR/face_clip.npz"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from xai_study.errors import XaiStudyError
    from xai_study.video import extract_face_clip

    if args.size < 8:
        raise XaiStudyError(f"--size must be at least 8 pixels, got {args.size}")
    max_bytes = None if args.max_mb == 0 else int(args.max_mb * 1e6)
    clip = extract_face_clip(
        args.video,
        num_frames=args.frames,
        size=args.size,
        margin=args.scale,
        max_bytes=max_bytes,
        max_side=args.max_side,
        min_prob=args.min_prob,
        smooth=not args.no_smooth,
        progress=not args.quiet,
        threads=args.threads,
        batch_size=args.batch_size,
        device=args.device,
    )
    out = Path(args.out) if args.out else Path.cwd() / f"{Path(args.video).stem}_faces"
    json_path = clip.save(out)
    if args.npz:
        clip.to_npz(out / "face_clip.npz")
    for w in clip.warnings:
        sys.stderr.write(f"warning: {w}\n")
    if not args.quiet:
        print(
            f"{args.video}: face in {clip.frames_with_face} of {clip.frames_sampled} sampled "
            f"frames (coverage {clip.coverage:.2f}); {len(clip)} crop{'s' if len(clip) != 1 else ''} of "
            f"{clip.size}x{clip.size} px and {json_path.name} written to {out}"
        )
    return 0
