"""``xai-study metrics`` (V, τ, ρ, μ of saved maps) and ``xai-study evaluate`` (data sets):
argument parsing and printing; the work is in :mod:`xai_study.metrics.files` and
:mod:`xai_study.runs.evaluate`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xai_study.commands import add_detector_options, detector_set, detector_specs

METRICS_HELP = """\
Compute the paper's four explanation metrics for saved maps (design §2):
  V    variance of each frame, averaged (descriptive)
  tau  inter-frame consistency: mean Pearson r of consecutive frames (higher = steadier)
  rho  intra-frame consistency: autocorrelation at 10 % shifts (higher = smoother)
  mu   centredness: share of relevance in the central quarter (higher = more central)
Each FILE.npz holds an array 'maps' (T x H x W). Signed maps (SHAP, LIME, IG) keep only
their positive part: store a boolean 'signed' in the file or pass --signed. When the file
also holds a ground-truth 'mask' (T x H x W or H x W), mass accuracy and the pointing game
are added with their chance level (the mask's area share). Undefined values print as nan
(null in JSON).

examples:
  xai-study metrics out/gradcam.npz out/shap3d.npz
  xai-study metrics out/*.npz --json > metrics.json"""

EVALUATE_HELP = """\
Explain every video of a labelled data set with each explainer and measure the
explanations: the paper's V, tau, rho, mu and I (mean intensity, our reading of the
poster); localisation against the ground-truth masks of the fakes (relevance mass
accuracy and pointing game, each with its chance level, the mask's area share);
faithfulness (deletion and insertion AUC of the video P(fake)); and, with --sanity, the
model-randomisation check (Spearman correlation with the explanation of a detector whose
weights are all re-initialised).

Add the null explainers (null_centre: a centred Gaussian; null_supervoxels: random values
on SHAP's supervoxels; null_random_model: Grad-CAM of a randomised detector) to compare
every explainer with maps that look at nothing: DIR/paired.csv and a section of
summary.md give explainer - null per video, with 95 % intervals from a bootstrap over
identities (the labels' source_identity), not videos.

Videos are processed alternating fake and real. Writes DIR/per_video.csv (one row per
video x explainer, appended as it goes: re-running the same command resumes and skips
finished rows; --summary-only summarises a stopped run), DIR/summary.csv and DIR/summary.md
(mean and 95 % bootstrap interval per explainer x metric, fake and real videos
separately, with n) and DIR/summary.png.

LABELS.csv needs a column 'path' (or 'video'/'file'; relative to the CSV's folder) and
'label' (fake/real or 1/0); optional 'id'/'video_id', 'split' (used by --split), 'method'
and 'mask_path' (or 'mask': the ground-truth mask .npz of a fake video, see
xai_study.data.masks).

With --workers N (a local Ray cluster of N workers) or --ray auto|ADDRESS (an existing
Ray cluster) the videos are processed in parallel: detectors and face detection are
loaded once per worker, each video's rows are appended as it finishes, a worker that dies
has its video retried, a failing video is listed at the end and never stops the run; the
table is the same as a sequential run's (docs/scale.md). Needs the 'cluster' extra.

examples:
  xai-study evaluate --data study_data/demo_data/labels.csv \\
      --explainers gradcam,shap3d,ltpa,bonettini,null_centre,null_supervoxels \\
      --out results/demo --preset fast
  xai-study evaluate --data labels.csv --explainers gradcam --out r --limit 10 --split test
  xai-study evaluate --data labels.csv --explainers gradcam,bonettini --out r \\
      --model plain=B4.pth --model bonettini=B4Att.pth --device cuda
  xai-study evaluate --data labels.csv --explainers gradcam,shap3d --out r --workers 2"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "metrics",
        help="V, tau, rho, mu (paper metrics) of explanation maps saved as .npz",
        description=METRICS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE.npz", help="files with an array 'maps'")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument(
        "--signed",
        action="store_true",
        help="treat the maps as signed (keep max(M, 0)) even without a 'signed' flag",
    )
    p.set_defaults(func=run_metrics)

    from xai_study.runs.presets import PRESETS

    e = subparsers.add_parser(
        "evaluate",
        help="explain a labelled data set with several explainers and tabulate the metrics",
        description=EVALUATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--data", required=True, metavar="LABELS.csv", help="labelled video list")
    e.add_argument(
        "--explainers",
        required=True,
        metavar="LIST",
        help="comma-separated explainer names, e.g. gradcam,shap3d,ltpa,bonettini",
    )
    e.add_argument("--out", required=True, metavar="DIR", help="output folder (resumable)")
    e.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="fast",
        help="explainer/clip settings: fast (few frames, few samples) or paper (default: fast)",
    )
    e.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="at most N fake and N real videos (the first of each, in file order)",
    )
    e.add_argument("--split", default=None, help="only rows whose 'split' column equals this")
    add_detector_options(e)
    e.add_argument(
        "--detector",
        default=None,
        metavar="NAME_OR_PATH",
        help="deprecated: the same as --model plain=NAME_OR_PATH",
    )
    e.add_argument(
        "--steps",
        type=int,
        default=None,
        help="deletion/insertion steps (default: 8 fast, 20 paper; 0 skips faithfulness)",
    )
    e.add_argument(
        "--baseline",
        choices=("blur", "black", "grey", "mean"),
        default="blur",
        help="what deleted pixels become / inserted pixels start from (default: blur)",
    )
    e.add_argument(
        "--sanity",
        action="store_true",
        help="also run the model-randomisation check (explains every video twice)",
    )
    e.add_argument(
        "--summary-only",
        action="store_true",
        help="explain nothing: rebuild the summary from the rows already in DIR",
    )
    e.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (2000)")
    e.add_argument("--seed", type=int, default=0, help="seed for explainers and bootstrap")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="only every N-th video from the I-th (1-based), for N jobs (a Slurm array) "
        "writing into the same DIR; then run once more with --summary-only",
    )
    from xai_study.runs.cluster import add_cluster_arguments

    add_cluster_arguments(e)
    e.set_defaults(func=run_evaluate)


# ----------------------------------------------------------------------------- run


def run_metrics(args) -> int:
    from xai_study.metrics import to_json_value
    from xai_study.metrics.files import file_metrics

    rows = [file_metrics(Path(f), args.signed) for f in args.files]
    if args.json:
        out = [{k: (v if k == "file" else to_json_value(v)) for k, v in r.items()} for r in rows]
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    keys = [k for k in rows[0] if k != "file"]
    for r in rows[1:]:
        keys += [k for k in r if k != "file" and k not in keys]
    width = max(len("file"), *(len(r["file"]) for r in rows))
    widths = [max(8, len(k)) for k in keys]
    print(
        f"{'file':<{width}}  " + "  ".join(f"{k:>{w}}" for k, w in zip(keys, widths, strict=True))
    )
    for r in rows:
        cells = [
            " " * w if r.get(k) is None else f"{r[k]:>{w}.4f}"
            for k, w in zip(keys, widths, strict=True)
        ]
        print(f"{r['file']:<{width}}  " + "  ".join(cells))
    return 0


def run_evaluate(args) -> int:
    from xai_study.runs.cluster import options_from_args, parse_shard
    from xai_study.runs.evaluate import evaluate

    specs = detector_specs(args, ("--detector", [args.detector] if args.detector else []))
    dets = detector_set(args, specs, load=not args.summary_only)

    paths = evaluate(
        data=Path(args.data),
        explainers=[e.strip() for e in args.explainers.split(",") if e.strip()],
        out=Path(args.out),
        preset=args.preset,
        limit=args.limit,
        split=args.split,
        steps=args.steps,
        baseline=args.baseline,
        sanity=args.sanity,
        summary_only=args.summary_only,
        n_boot=args.bootstrap,
        seed=args.seed,
        progress=not args.quiet,
        detectors=dets,
        cluster=options_from_args(args),
        shard=parse_shard(args.shard),
    )
    print(paths["summary_md"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values() if p.exists())}")
    return 0
