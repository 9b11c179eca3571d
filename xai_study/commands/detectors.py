"""``xai-study train``, ``detect`` and ``evaluate-detector``."""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys

from xai_study.commands import add_detector_options, detector_specs, one_detector

ARCH_CHOICES = ["plain", "bonettini", "ltpa", "xception", "mesoinception4"]


def register(subparsers) -> None:
    from xai_study.devices import DEVICE_HELP

    fmt = argparse.RawDescriptionHelpFormatter

    p = subparsers.add_parser(
        "train",
        help="train a deepfake detector on labelled videos",
        description=(
            "Train a detector on face crops of the videos in a labels CSV (columns path, "
            "label fake/real, split train/val/test). Crops are cached in "
            ".xai_study_cache/faces. Validates every epoch and keeps the best epoch "
            "(video AUC) in --out, with OUT.history.csv/.json and OUT.val.roc.png/.det.png.\n\n"
            "example:\n  xai-study train --arch ltpa --data study_data/demo_data/labels.csv "
            "--out runs/ltpa.pt --size 128 --epochs 4"
        ),
        formatter_class=fmt,
    )
    p.add_argument(
        "--arch", choices=ARCH_CHOICES, default="plain", help="architecture (default plain)"
    )
    p.add_argument(
        "--backbone",
        default="efficientnet_lite0",
        help="timm EfficientNet name for plain/bonettini/ltpa (default efficientnet_lite0)",
    )
    p.add_argument("--data", required=True, metavar="LABELS.csv", help="labels CSV")
    p.add_argument("--out", required=True, metavar="CHECKPOINT.pt", help="checkpoint to write")
    p.add_argument("--epochs", type=int, default=5, help="epochs (default 5)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    p.add_argument("--size", type=int, default=160, help="input size in pixels (default 160)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--frames",
        type=int,
        default=16,
        help="frames sampled per training/validation video (default 16)",
    )
    p.add_argument(
        "--freeze-stages",
        type=int,
        default=0,
        help="freeze the stem and the first N EfficientNet stages (faster on CPU)",
    )
    p.add_argument(
        "--aug-copies",
        type=int,
        default=3,
        help="with --freeze-stages: the frozen trunk's features are computed once "
        "for this many copies of each frame (1 clean + N-1 augmented) and cached",
    )
    p.add_argument(
        "--sbi-copies",
        type=int,
        default=0,
        help="add N self-blended pseudo-fakes (Shiohara & Yamasaki 2022) of every real "
        "training crop: fakes that differ from a real face only by blending, so the "
        "detector learns blending artefacts rather than identities (default 0)",
    )
    p.add_argument(
        "--init",
        metavar="CHECKPOINT",
        default=None,
        help="start from another detector's weights (demo name, checkpoint or "
        "icpr2020dfdc file with the same backbone): tensors whose name and shape match "
        "are copied, the rest (attention modules, a new head) start fresh; e.g. "
        "bonettini or ltpa from a trained plain detector, as icpr2020dfdc fine-tunes "
        "its auto-attention B4 from the plain B4",
    )
    p.add_argument(
        "--no-feature-cache",
        action="store_true",
        help="with --freeze-stages: run the frozen trunk every step instead",
    )
    p.add_argument("--dropout", type=float, default=0.2, help="dropout before the logit")
    p.add_argument(
        "--no-pretrained",
        action="store_true",
        help="random init (default: ImageNet weights, efficientnet_lite0 only)",
    )
    p.add_argument("--no-aug", action="store_true", help="no data augmentation")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop after the epoch that passes this wall-clock budget",
    )
    p.add_argument("--device", default="auto", metavar="DEV", help=DEVICE_HELP)
    p.add_argument("--cache-dir", default=".xai_study_cache/faces", help="face-crop cache folder")
    p.add_argument("--half", action="store_true", help="store weights as float16 (half size)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = subparsers.add_parser(
        "detect",
        help="P(fake) of a video (or of every video of a labels CSV) with a detector",
        description=(
            "Score a video: faces are detected and cropped on evenly spaced frames, every "
            "crop gets a logit, the video P(fake) is the sigmoid of the mean logit (or the "
            "checkpoint's aggregation), calibrated when the checkpoint stores a calibration "
            "(xai-study calibrate; --json also gives p_fake_raw).\n\n"
            "With --labels, score every video of a labels CSV (optionally one --split) and "
            "write one row per video to --out FILE.csv as each finishes (video, label, "
            "model, p_fake, predicted, threshold, frames, error); rerunning the same "
            "command resumes (use another --out for other settings). --workers N / --ray "
            "run the videos on Ray workers (docs/scale.md).\n\nexamples:\n"
            "  xai-study detect clip.mp4\n"
            "  xai-study detect clip.mp4 --model ltpa --json\n"
            "  xai-study detect clip.mp4 --model plain=EfficientNetB4_DFDC_bestval.pth "
            "--device cuda\n"
            "  xai-study detect --labels study_data/demo_data/labels.csv --split test "
            "--out runs/detect.csv --workers 2"
        ),
        formatter_class=fmt,
    )
    p.add_argument("video", nargs="?", help="video file (or image); or use --labels")
    add_detector_options(p, many=False)
    p.add_argument("--frames", type=int, default=32, help="frames sampled (default 32)")
    p.add_argument(
        "--aggregation",
        choices=["mean_logit", "mean_prob", "median"],
        help="video score from frame logits (default: the checkpoint's)",
    )
    p.add_argument("--json", action="store_true", help="print JSON (one video)")
    p.add_argument("--labels", metavar="LABELS.csv", help="score every video of this labels CSV")
    p.add_argument("--split", default=None, help="with --labels: only this split")
    p.add_argument("--out", metavar="FILE.csv", help="with --labels: the table to write")
    p.add_argument(
        "--shard", default=None, metavar="I/N", help="with --labels: every N-th video from the I-th"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from xai_study.runs.cluster import add_cluster_arguments

    add_cluster_arguments(p)
    p.set_defaults(func=_detect)

    p = subparsers.add_parser(
        "evaluate-detector",
        help="AUC / balanced accuracy of a detector on a split of a labels CSV",
        description=(
            "Score every video of one split and report video-level and frame-level AUC, "
            "balanced accuracy (at 0.5, and at the checkpoint's own threshold when it has "
            "one), EER and AP, with 95 % bootstrap intervals of the AUC that resample "
            "identities (the labels file's source_identity), and ECE (10 bins) / Brier score "
            "of P(fake) before and after the checkpoint's calibration. Writes metrics.json, "
            "per_video.csv and ROC/DET plots to --out.\n\nexamples:\n"
            "  xai-study evaluate-detector --model plain "
            "--data study_data/demo_data/labels.csv --split test --out runs/eval_plain\n"
            "  xai-study evaluate-detector --model runs/my.pt --data labels.csv --split val "
            "--save-threshold"
        ),
        formatter_class=fmt,
    )
    add_detector_options(p, many=False)
    p.add_argument("--data", required=True, metavar="LABELS.csv", help="labels CSV")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--frames", type=int, default=32, help="frames per video (default 32)")
    p.add_argument("--out", default=None, help="folder for metrics.json, per_video.csv, plots")
    p.add_argument("--cache-dir", default=".xai_study_cache/faces", help="face-crop cache folder")
    p.add_argument(
        "--save-to-checkpoint",
        action="store_true",
        help="also store the metrics in the checkpoint's metadata (meta.metrics.SPLIT)",
    )
    p.add_argument(
        "--save-threshold",
        action="store_true",
        help="choose the video P(fake) threshold with the highest balanced accuracy on "
        "this split and store it in the checkpoint: detect, explain and the demo then "
        "call a video fake at or above it instead of 0.5 (use a validation split)",
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_evaluate)


def _train(args) -> int:
    from xai_study.detectors.train import TrainConfig, train_detector

    cmd = "xai-study " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    cfg = TrainConfig(
        arch=args.arch,
        backbone=args.backbone,
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        size=args.size,
        seed=args.seed,
        frames_per_video=args.frames,
        val_frames_per_video=args.frames,
        pretrained=not args.no_pretrained,
        freeze_stages=args.freeze_stages,
        dropout=args.dropout,
        max_minutes=args.max_minutes,
        device=args.device,
        cache_dir=args.cache_dir,
        half=args.half,
        aug=not args.no_aug,
        aug_copies=args.aug_copies,
        sbi_copies=args.sbi_copies,
        init=args.init,
        feature_cache=not args.no_feature_cache,
        command=cmd,
    )
    summary = train_detector(cfg, progress=not args.quiet, log=lambda m: print(m, file=sys.stderr))
    v = summary["val"]["video"]
    print(
        f"best epoch {summary['best_epoch']}: val video AUC {_f(v['auc'])}, "
        f"balanced accuracy {_f(v['balanced_accuracy'])} -> {summary['checkpoint']}"
    )
    return 0


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _detect(args) -> int:
    from xai_study.detectors.evaluate import format_p
    from xai_study.errors import XaiStudyError
    from xai_study.runs.cluster import options_from_args
    from xai_study.runs.detect import detect_video

    cluster = options_from_args(args)
    if args.labels is not None:
        if args.video is not None:
            raise XaiStudyError("give a video or --labels, not both")
        return _detect_labels(args, cluster)
    if args.video is None:
        raise XaiStudyError("give a video file, or --labels LABELS.csv --out FILE.csv")
    if cluster.enabled or args.out or args.split or args.shard:
        raise XaiStudyError("--out, --split, --shard, --workers and --ray go with --labels")

    arch, model = one_detector(detector_specs(args), "detect")
    result = detect_video(
        args.video,
        model,
        args.frames,
        args.aggregation,
        device=args.device,
        batch_size=args.batch_size,
        role=arch,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    scores = result["frame_scores"]
    print(
        f"{args.video}: P(fake) = {format_p(result['p_fake'])} ({result['label']} at threshold "
        f"{format_p(result['threshold'])}), model {model}"
    )
    print(
        f"{len(scores)} of {result['frames_sampled']} sampled frames with a face; "
        f"frame P(fake) min {min(scores):.3f} median {statistics.median(scores):.3f} "
        f"max {max(scores):.3f}"
    )
    return 0


def _detect_labels(args, cluster) -> int:
    from xai_study.errors import XaiStudyError
    from xai_study.runs.cluster import parse_shard
    from xai_study.runs.detect import detect_labels

    if args.json:
        raise XaiStudyError("--json is for one video; --labels writes --out FILE.csv")
    if not args.out:
        raise XaiStudyError("--labels needs --out FILE.csv")
    arch, model = one_detector(detector_specs(args), "detect")
    run = detect_labels(
        args.labels,
        args.out,
        model=model,
        role=arch,
        device=args.device,
        batch_size=args.batch_size,
        frames=args.frames,
        aggregation=args.aggregation,
        split=args.split,
        cluster=cluster,
        shard=parse_shard(args.shard),
        progress=not args.quiet,
    )
    scored = [r for r in run.rows if not r["error"]]
    right = sum(r["predicted"] == r["label"] for r in scored)
    fakes = sum(r["predicted"] == "fake" for r in scored)
    line = f"{len(run.rows)} videos: {fakes} called fake, {len(scored) - fakes} real"
    line += f", {len(run.rows) - len(scored)} failed"
    if scored:
        line += f"; accuracy {right / len(scored):.4f} at the detector's threshold"
    print(f"{line}; wrote {run.out}")
    return 0


def _evaluate(args) -> int:
    from xai_study.detectors.evaluate import clean_json
    from xai_study.runs.detect import evaluate_detector

    arch, model = one_detector(detector_specs(args), "evaluate-detector")
    run = evaluate_detector(
        model,
        args.data,
        split=args.split,
        frames=args.frames,
        out=args.out,
        cache_dir=args.cache_dir,
        save_threshold=args.save_threshold,
        save_to_checkpoint=args.save_to_checkpoint,
        progress=not args.quiet,
        device=args.device,
        batch_size=args.batch_size,
        role=arch,
    )
    if args.json:
        print(json.dumps(clean_json(run.metrics), indent=2))
    else:
        _print_evaluation(model, args.split, run)
    return 0


def _print_evaluation(model: str, split: str, run) -> None:
    from xai_study.detectors.evaluate import format_p

    v, f = run.metrics["video"], run.metrics["frame"]
    print(
        f"{model} on {split}: {v['n']} videos ({v['n_fake']} fake, {v['n_real']} real), "
        f"{f['n']} frames"
    )
    print(
        f"  video AUC {_f(v['auc'])}  balanced acc {_f(v['balanced_accuracy'])}  "
        f"EER {_f(v['eer'])}  AP {_f(v['ap'])}"
    )
    print(f"  frame AUC {_f(f['auc'])}  balanced acc {_f(f['balanced_accuracy'])}")
    for level, ci in run.metrics.get("auc_interval", {}).items():
        if ci["low"] is not None and ci["low"] == ci["low"]:
            print(
                f"  {level} AUC 95 % interval {ci['low']:.3f}-{ci['high']:.3f} "
                f"(bootstrap over {ci['n_clusters']} identities)"
            )
    cal = run.metrics.get("calibration")
    if cal:
        r, c = cal["video"]["raw"], cal["video"]["calibrated"]
        if cal["method"] == "identity":
            how = "raw"
        elif cal["method"] == "temperature":
            how = f"temperature T={cal['temperature']:.3g}"
        else:
            how = f"Platt a={cal['scale']:.3g} b={cal['bias']:+.3g}"
        print(
            f"  video P(fake) calibration ({how}): ECE ({cal['bins']} bins) {r['ece']:.3f} -> "
            f"{c['ece']:.3f}, Brier {r['brier']:.3f} -> {c['brier']:.3f}"
        )
    at = run.metrics.get("at_threshold")
    if at is not None:
        print(
            f"  at threshold {format_p(at['threshold'])}: video balanced acc "
            f"{_f(at['video_balanced_accuracy'])}, frame {_f(at['frame_balanced_accuracy'])}"
        )
    if run.chosen is not None:
        print(f"  threshold {format_p(run.chosen['p_fake'])} saved to {run.checkpoint}")
    if run.metrics["skipped"]:
        print(f"  skipped {len(run.metrics['skipped'])} video(s) without a usable face")
