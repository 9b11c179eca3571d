"""``xai-study calibrate`` and ``xai-study convert``: write to a project checkpoint."""

from __future__ import annotations

import argparse
import shlex
import sys


def register(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter

    p = subparsers.add_parser(
        "calibrate",
        help="fit a calibration of P(fake) on a labelled split and store it in a checkpoint",
        description=(
            "Score every video of one split (a validation split: not the one you report) "
            "and fit temperature scaling (default) or Platt scaling of the video logit by "
            "maximum likelihood; store it in the checkpoint's metadata. detect, explain, "
            "evaluate-detector, build-study and the demo then report the calibrated "
            "P(fake); a stored threshold is re-expressed on the calibrated scale, so it "
            "makes the same decisions. Explainer targets (logits) and deletion/insertion "
            "curves keep the model's raw output. Refitting replaces the calibration.\n\n"
            "example:\n  xai-study calibrate --checkpoint models/plain.pt "
            "--data study_data/demo_data/labels.csv --split val"
        ),
        formatter_class=fmt,
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="CHECKPOINT.pt",
        help="project checkpoint to calibrate (written in place; a demo name means models/NAME.pt)",
    )
    p.add_argument("--data", required=True, metavar="LABELS.csv", help="labels CSV")
    p.add_argument("--split", default="val", help="split to fit on (default val)")
    p.add_argument(
        "--method",
        choices=["temperature", "platt"],
        default="temperature",
        help="temperature (one parameter, keeps 0.5 and the ranking) or platt (scale and "
        "bias); default temperature",
    )
    p.add_argument("--frames", type=int, default=32, help="frames per video (default 32)")
    p.add_argument(
        "--bins", type=int, default=10, help="equal-width bins of the reported ECE (default 10)"
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="also write DIR/calibration.json and DIR/per_video.csv (the fitted videos' "
        "logits and P(fake) before and after)",
    )
    p.add_argument("--cache-dir", default=".xai_study_cache/faces", help="face-crop cache folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_calibrate)

    p = subparsers.add_parser(
        "convert",
        help="write a project checkpoint from an icpr2020dfdc weight file",
        description=(
            "Convert a polimi-ispl/icpr2020dfdc state dict (EfficientNetB4 -> plain, "
            "EfficientNetAutoAttB4 -> bonettini; plain state dicts or training checkpoints "
            "with 'net') into a project checkpoint, with the source file's SHA-256 in its "
            "metadata, so that evaluate-detector --save-threshold and calibrate can store "
            "a threshold and a calibration on it. Outputs are the icpr network's.\n\n"
            "example:\n  xai-study convert weights/EfficientNetAutoAttB4_DFDC_bestval.pth "
            "--out models/autoattb4.pt"
        ),
        formatter_class=fmt,
    )
    p.add_argument("source", help="icpr2020dfdc .pth file")
    p.add_argument("--out", required=True, metavar="CHECKPOINT.pt", help="checkpoint to write")
    p.add_argument("--half", action="store_true", help="store weights as float16 (half size)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=_convert)


def _command() -> str:
    return "xai-study " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _calibrate(args) -> int:
    from xai_study.detectors.calibration import Calibration
    from xai_study.detectors.evaluate import format_p
    from xai_study.runs.calibrate import calibrate_checkpoint

    run = calibrate_checkpoint(
        args.checkpoint,
        args.data,
        split=args.split,
        frames=args.frames,
        method=args.method,
        bins=args.bins,
        cache_dir=args.cache_dir,
        progress=not args.quiet,
        command=_command(),
        out=args.out,
    )
    e = run.entry
    on, fit = e["fitted_on"], e["fit"]
    cal = Calibration.from_meta(e)
    print(
        f"{run.checkpoint}: {cal.describe()}, fitted on {on['n_videos']} {on['split']} videos "
        f"({on['n_fake']} fake, {on['n_real']} real, {on['n_identities']} identities)"
    )
    r, c = fit["raw"], fit["calibrated"]
    print(
        f"  on that split: ECE ({fit['bins']} bins) {r['ece']:.4f} -> {c['ece']:.4f}, "
        f"Brier {r['brier']:.4f} -> {c['brier']:.4f}, NLL {r['nll']:.4f} -> {c['nll']:.4f}"
    )
    if e["at_bound"]:
        print(
            "  warning: the fit ended on a bound (the split is separable or nearly so); "
            "use more validation videos",
            file=sys.stderr,
        )
    if run.threshold is not None:
        t = run.threshold
        print(
            f"  stored threshold {format_p(t['before'])} -> {format_p(t['after'])} "
            f"(raw {format_p(t['raw'])}); decisions changed on this split: "
            f"{run.decisions_changed}"
        )
    return 0


def _convert(args) -> int:
    from xai_study.detectors.checkpoint import checkpoint_info
    from xai_study.runs.calibrate import convert_checkpoint

    out = convert_checkpoint(
        args.source, args.out, half=args.half, force=args.force, command=_command()
    )
    cfg = checkpoint_info(out)["config"]
    print(f"{args.source} -> {out} ({cfg['arch']}, {cfg['backbone']}, {cfg['input_size']} px)")
    return 0
