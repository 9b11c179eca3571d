"""``xai-study train``, ``detect`` and ``evaluate-detector``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

ARCH_CHOICES = ["plain", "bonettini", "ltpa", "xception", "mesoinception4"]


def register(subparsers) -> None:
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
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda")
    p.add_argument("--cache-dir", default=".xai_study_cache/faces", help="face-crop cache folder")
    p.add_argument("--half", action="store_true", help="store weights as float16 (half size)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = subparsers.add_parser(
        "detect",
        help="P(fake) of a video with a detector",
        description=(
            "Score a video: faces are detected and cropped on evenly spaced frames, every "
            "crop gets a logit, the video P(fake) is the sigmoid of the mean logit (or the "
            "checkpoint's aggregation).\n\nexamples:\n  xai-study detect clip.mp4\n"
            "  xai-study detect clip.mp4 --model ltpa --json"
        ),
        formatter_class=fmt,
    )
    p.add_argument("video", help="video file (or image)")
    p.add_argument(
        "--model",
        default="plain",
        help="plain, bonettini, ltpa (demo checkpoints) or a checkpoint path",
    )
    p.add_argument("--frames", type=int, default=32, help="frames sampled (default 32)")
    p.add_argument(
        "--aggregation",
        choices=["mean_logit", "mean_prob", "median"],
        help="video score from frame logits (default: the checkpoint's)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_detect)

    p = subparsers.add_parser(
        "evaluate-detector",
        help="AUC / balanced accuracy of a detector on a split of a labels CSV",
        description=(
            "Score every video of one split and report video-level and frame-level AUC, "
            "balanced accuracy (at 0.5, and at the checkpoint's own threshold when it has "
            "one), EER and AP. Writes metrics.json, per_video.csv and ROC/DET plots to "
            "--out.\n\nexamples:\n"
            "  xai-study evaluate-detector --model plain "
            "--data study_data/demo_data/labels.csv --split test --out runs/eval_plain\n"
            "  xai-study evaluate-detector --model runs/my.pt --data labels.csv --split val "
            "--save-threshold"
        ),
        formatter_class=fmt,
    )
    p.add_argument("--model", default="plain", help="demo name or checkpoint path")
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
    import numpy as np

    from xai_study.detectors import load_detector
    from xai_study.detectors.contract import aggregate_logits, sigmoid
    from xai_study.detectors.evaluate import format_p
    from xai_study.errors import XaiStudyError
    from xai_study.video.clip import extract_face_clip

    if args.frames < 1:
        raise XaiStudyError("--frames must be at least 1")
    det = load_detector(args.model)
    clip = extract_face_clip(args.video, num_frames=args.frames, size=det.input_size)
    logits = det.frame_logits(clip.frames)
    how = args.aggregation or det.config.get("aggregation", "mean_logit")
    p = aggregate_logits(logits, how)
    scores = sigmoid(logits).tolist()
    result = {
        "p_fake": p,
        "label": "fake" if p >= det.threshold else "real",
        "threshold": det.threshold,
        "frame_scores": scores,
        "frame_logits": logits.astype(float).tolist(),
        "frame_indices": clip.frame_indices.astype(int).tolist(),
        "timestamps": [round(float(t), 4) for t in clip.timestamps],
        "aggregation": how,
        "model": args.model,
        "arch": det.config["arch"],
        "frames_sampled": int(clip.frames_sampled),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{args.video}: P(fake) = {format_p(p)} ({result['label']} at threshold "
            f"{format_p(det.threshold)}), model {args.model}"
        )
        print(
            f"{len(scores)} of {clip.frames_sampled} sampled frames with a face; "
            f"frame P(fake) min {min(scores):.3f} median {float(np.median(scores)):.3f} "
            f"max {max(scores):.3f}"
        )
    return 0


def _evaluate(args) -> int:
    from pathlib import Path

    import torch

    from xai_study.detectors import load_detector
    from xai_study.detectors.checkpoint import read_checkpoint, resolve_model
    from xai_study.detectors.contract import sigmoid
    from xai_study.detectors.data import build_faceset, read_labels, select_split
    from xai_study.detectors.evaluate import (
        binary_metrics,
        choose_threshold,
        clean_json,
        dump_json,
        evaluate_faceset,
        format_p,
        plot_roc_det,
        write_per_video_csv,
    )
    from xai_study.errors import XaiStudyError

    if args.frames < 1:
        raise XaiStudyError("--frames must be at least 1")
    det = load_detector(args.model)
    path = resolve_model(args.model)
    if args.save_to_checkpoint or args.save_threshold:  # checked before the long part
        obj = read_checkpoint(path)
        if obj.get("format") != "xai-study-detector":
            flag = "--save-threshold" if args.save_threshold else "--save-to-checkpoint"
            raise XaiStudyError(f"{flag} needs a project checkpoint")
    items = select_split(read_labels(args.data), args.split, args.data)
    faces = build_faceset(
        items,
        args.frames,
        det.input_size,
        cache_dir=args.cache_dir,
        progress=not args.quiet,
        desc=f"faces ({args.split})",
    )
    res = evaluate_faceset(det, faces, progress=not args.quiet)
    chosen = None
    if args.save_threshold:
        if args.split == "test":
            print(
                "note: a threshold chosen on the test split makes test figures optimistic",
                file=sys.stderr,
            )
        try:
            chosen = choose_threshold(faces.video_labels(), res["video_scores"])
        except ValueError as exc:
            raise XaiStudyError(f"--save-threshold: {exc} in split {args.split!r}") from None
    t = chosen["p_fake"] if chosen else det.threshold
    frame_p = sigmoid(res["frame_logits"], dtype=res["frame_logits"].dtype)  # float32 here
    at = None
    if t != 0.5:
        vb = binary_metrics(faces.video_labels(), res["video_scores"], t)["balanced_accuracy"]
        fb = binary_metrics(faces.labels, frame_p, t)["balanced_accuracy"]
        at = {"threshold": t, "video_balanced_accuracy": vb, "frame_balanced_accuracy": fb}
    metrics = {
        "model": args.model,
        "data": args.data,
        "split": args.split,
        "frames_per_video": args.frames,
        "aggregation": det.config.get("aggregation", "mean_logit"),
        "video": res["video"],
        "frame": res["frame"],
        "skipped": faces.skipped,
    }
    if at is not None:
        metrics["at_threshold"] = at
    if args.out:
        out = Path(args.out)
        dump_json(metrics, out / "metrics.json")
        write_per_video_csv(out / "per_video.csv", faces, res["video_scores"], res["frame_logits"])
        plot_roc_det(
            faces.video_labels(), res["video_scores"], out / "video", title=f"{args.split} (video)"
        )
        plot_roc_det(
            faces.labels,
            frame_p,
            out / "frame",
            title=f"{args.split} (frame)",
        )
    if args.save_to_checkpoint or args.save_threshold:
        meta = obj.setdefault("meta", {})
        if args.save_to_checkpoint:
            meta.setdefault("metrics", {})[args.split] = clean_json(
                {k: metrics[k] for k in ("data", "frames_per_video", "video", "frame")}
            )
        if chosen is not None:
            meta["threshold"] = clean_json(
                dict(
                    chosen,
                    rule="highest video balanced accuracy",
                    split=args.split,
                    data=str(args.data),
                    frames_per_video=args.frames,
                    n_videos=len(faces.items),
                )
            )
        tmp = path.with_name(path.name + ".tmp")
        torch.save(obj, tmp)
        tmp.replace(path)
    if args.json:
        print(json.dumps(clean_json(metrics), indent=2))
    else:
        v, f = res["video"], res["frame"]
        print(
            f"{args.model} on {args.split}: {v['n']} videos ({v['n_fake']} fake, {v['n_real']} real), "
            f"{f['n']} frames"
        )
        print(
            f"  video AUC {_f(v['auc'])}  balanced acc {_f(v['balanced_accuracy'])}  "
            f"EER {_f(v['eer'])}  AP {_f(v['ap'])}"
        )
        print(f"  frame AUC {_f(f['auc'])}  balanced acc {_f(f['balanced_accuracy'])}")
        if at is not None:
            print(
                f"  at threshold {format_p(at['threshold'])}: video balanced acc "
                f"{_f(at['video_balanced_accuracy'])}, frame {_f(at['frame_balanced_accuracy'])}"
            )
        if chosen is not None:
            print(f"  threshold {format_p(chosen['p_fake'])} saved to {path}")
        if faces.skipped:
            print(f"  skipped {len(faces.skipped)} video(s) without a usable face")
    return 0
