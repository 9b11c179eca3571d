"""``xai-study metrics`` (V, τ, ρ, μ of saved maps) and ``xai-study evaluate`` (data sets)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xai_study.errors import XaiStudyError

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
explanations: the paper's V, tau, rho, mu; localisation against the ground-truth masks
of the fakes (relevance mass accuracy and pointing game, each with its chance level,
the mask's area share); faithfulness (deletion and insertion AUC of the video P(fake));
and, with --sanity, the model-randomisation check (Spearman correlation with the
explanation of a detector whose weights are all re-initialised).

Videos are processed alternating fake and real. Writes DIR/per_video.csv (one row per
video x explainer, appended as it goes: re-running the same command resumes and skips
finished rows; --summary-only summarises a stopped run), DIR/summary.csv and DIR/summary.md
(mean and 95 % bootstrap interval per explainer x metric, fake and real videos
separately, with n) and DIR/summary.png.

LABELS.csv needs a column 'path' (or 'video'/'file'; relative to the CSV's folder) and
'label' (fake/real or 1/0); optional 'id'/'video_id', 'split' (used by --split), 'method'
and 'mask_path' (or 'mask': the ground-truth mask .npz of a fake video, see
xai_study.data.masks).

examples:
  xai-study evaluate --data study_data/demo_data/labels.csv \\
      --explainers gradcam,shap3d,ltpa,bonettini --out results/demo --preset fast
  xai-study evaluate --data labels.csv --explainers gradcam --out r --limit 10 --split test"""


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
        choices=("fast", "paper"),
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
    e.add_argument(
        "--detector",
        default=None,
        metavar="NAME_OR_PATH",
        help="detector for explainers that work on any model (default: the demo 'plain')",
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
    e.set_defaults(func=run_evaluate)


# ----------------------------------------------------------------------------- metrics


def _load_npz(path: Path, force_signed: bool):
    import numpy as np

    if not path.is_file():
        raise XaiStudyError(f"{path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception:
        raise XaiStudyError(f"{path}: not a readable .npz file") from None
    if not hasattr(data, "files"):  # np.load returned a plain .npy array
        raise XaiStudyError(f"{path}: a .npy array, not an .npz file with an array 'maps'")
    with data:
        if "maps" not in data.files:
            raise XaiStudyError(
                f"{path}: no array 'maps' (found: {', '.join(data.files) or 'none'})"
            )
        maps = np.asarray(data["maps"])
        signed = force_signed or (
            bool(np.asarray(data["signed"]).item()) if "signed" in data.files else False
        )
        mask = np.asarray(data["mask"]) if "mask" in data.files else None
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3 or 0 in maps.shape:
        raise XaiStudyError(f"{path}: 'maps' must be T x H x W, got shape {maps.shape}")
    if not np.issubdtype(maps.dtype, np.number) or maps.dtype == np.bool_:
        maps = maps.astype(np.float64)
    if not np.all(np.isfinite(maps)):
        raise XaiStudyError(f"{path}: 'maps' contains NaN or infinite values")
    return maps, signed, mask


def file_metrics(path: Path, force_signed: bool = False) -> dict:
    from xai_study.metrics import localisation_metrics, paper_metrics

    maps, signed, mask = _load_npz(path, force_signed)
    row = {"file": str(path), **paper_metrics(maps, signed=signed)}
    if mask is not None:
        row.update(localisation_metrics(maps, mask, signed=signed))
    return row


def run_metrics(args) -> int:
    from xai_study.metrics import to_json_value

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
    paths = evaluate(
        data=Path(args.data),
        explainers=[e.strip() for e in args.explainers.split(",") if e.strip()],
        out=Path(args.out),
        preset=args.preset,
        limit=args.limit,
        split=args.split,
        detector=args.detector,
        steps=args.steps,
        baseline=args.baseline,
        sanity=args.sanity,
        summary_only=args.summary_only,
        n_boot=args.bootstrap,
        seed=args.seed,
        progress=not args.quiet,
    )
    print(paths["summary_md"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values() if p.exists())}")
    return 0


# ----------------------------------------------------------------------------- evaluate

#: Deletion/insertion steps per preset; clip size, frame count and explainer parameters
#: come from :data:`xai_study.pipeline.PRESETS` (shared with ``explain`` and the demo).
FAITHFULNESS_STEPS = {"fast": 8, "paper": 20}

CSV_COLUMNS = [
    "video",
    "path",
    "label",
    "split",
    "method",
    "explainer",
    "detector",
    "frames",
    "score",
    "seconds",
    "V",
    "tau",
    "rho",
    "mu",
    "mass_accuracy",
    "mass_accuracy_chance",
    "pointing_game",
    "pointing_game_chance",
    "deletion_auc",
    "insertion_auc",
    "randomisation_spearman",
    "error",
]


def _label(value: str, line: int, path: Path) -> str:
    v = str(value).strip().lower()
    if v in ("fake", "1", "true", "manipulated"):
        return "fake"
    if v in ("real", "0", "false", "original", "pristine"):
        return "real"
    raise XaiStudyError(f"{path}, line {line}: label must be fake/real or 1/0, got {value!r}")


def read_labels(path: Path, split: str | None = None, limit: int | None = None) -> list[dict]:
    """Rows ``{video, path, label, split, mask}`` of a labels CSV (paths made absolute).

    ``split`` keeps the rows of that split; ``limit`` keeps at most that many fake and
    that many real videos (the first of each label, so a subset stays balanced).
    """
    import csv

    if not path.is_file():
        raise XaiStudyError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in reader.fieldnames or []]
            raw = [
                {k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in reader
            ]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise XaiStudyError(f"{path}: not a readable CSV file ({exc})") from None
    path_col = next((c for c in ("path", "video", "file") if c in fields), None)
    if path_col is None or "label" not in fields:
        raise XaiStudyError(
            f"{path}: needs the columns 'path' (or 'video'/'file') and 'label', "
            f"found: {', '.join(fields) or 'none'}"
        )
    if split is not None and "split" not in fields:
        raise XaiStudyError(f"{path}: --split given but the file has no 'split' column")
    if limit is not None and limit < 1:
        raise XaiStudyError("--limit must be at least 1")
    rows, seen = [], set()
    for i, r in enumerate(raw, start=2):
        if split is not None and r.get("split", "") != split:
            continue
        rel = r[path_col]
        if not rel:
            raise XaiStudyError(f"{path}, line {i}: empty {path_col!r}")
        video_path = Path(rel) if Path(rel).is_absolute() else path.parent / rel
        mask = r.get("mask") or r.get("mask_path") or ""
        mask_path = None
        if mask:
            mask_path = Path(mask) if Path(mask).is_absolute() else path.parent / mask
        key = r.get("id") or r.get("video_id") or rel
        if key in seen:
            raise XaiStudyError(f"{path}, line {i}: video {key!r} is listed twice")
        seen.add(key)
        rows.append(
            {
                "video": key,
                "path": video_path,
                "path_text": rel,
                "label": _label(r["label"], i, path),
                "split": r.get("split", ""),
                "method": r.get("method", ""),
                "mask": mask_path,
            }
        )
    if not rows:
        raise XaiStudyError(f"{path}: no videos" + (f" in split {split!r}" if split else ""))
    if limit:
        taken = {"fake": 0, "real": 0}
        kept = []
        for r in rows:
            if taken[r["label"]] < limit:
                taken[r["label"]] += 1
                kept.append(r)
        rows = kept
    return rows


def interleave(videos: list[dict]) -> list[dict]:
    """Alternate fake and real videos (each in file order), so that a run stopped early
    has done about as many of each."""
    fakes = [v for v in videos if v["label"] == "fake"]
    reals = [v for v in videos if v["label"] == "real"]
    out = []
    for i in range(max(len(fakes), len(reals))):
        out += fakes[i : i + 1] + reals[i : i + 1]
    return out


def _finished(csv_path: Path) -> set[tuple[str, str]]:
    import csv

    if not csv_path.is_file():
        return set()
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != CSV_COLUMNS:
            raise XaiStudyError(
                f"{csv_path} was not written by this version of 'evaluate' "
                "(different columns); use another --out folder"
            )
        return {(r["video"], r["explainer"]) for r in reader}


def _check_settings(out: Path, settings: dict) -> None:
    meta = out / "run.json"
    if meta.is_file():
        try:
            old = json.loads(meta.read_text())
        except ValueError:
            old = None
        if old != settings:
            diff = sorted(k for k in settings if not old or old.get(k) != settings[k])
            raise XaiStudyError(
                f"{out} holds results computed with other settings ({', '.join(diff)}); "
                "use another --out folder or the same options"
            )
    else:
        meta.write_text(json.dumps(settings, indent=2) + "\n")


def _clip_masks(mask_path: Path | None, video_path: Path, clip):
    """The clip's ground-truth masks on the crop grid (T, S, S) in [0, 1], or None
    when the row names no mask file."""
    if mask_path is None:
        return None
    from xai_study.data.masks import crop_masks, load_masks

    return crop_masks(load_masks(mask_path), clip)


def _fmt(value) -> str:
    import math

    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


def evaluate(
    data: Path,
    explainers: list[str],
    out: Path,
    preset: str = "fast",
    limit: int | None = None,
    split: str | None = None,
    detector: str | None = None,
    steps: int | None = None,
    baseline: str = "blur",
    sanity: bool = False,
    summary_only: bool = False,
    n_boot: int = 2000,
    seed: int = 0,
    progress: bool = True,
    detectors: dict | None = None,
) -> dict:
    """Run the evaluation (see ``xai-study evaluate --help``); returns the output paths.

    ``detectors`` maps architecture names (``plain``, ``bonettini``, ``ltpa``) to ready
    detector objects, bypassing :func:`load_detector` (used by tests).
    """
    import csv

    import pandas as pd
    from tqdm import tqdm

    from xai_study import pipeline
    from xai_study.explainers import create_explainer, explainer_class, list_explainers
    from xai_study.metrics import (
        DeletionAUC,
        InsertionAUC,
        ModelParameterRandomisation,
        localisation_metrics,
        paper_metrics,
    )
    from xai_study.metrics.summary import summarise, summary_markdown, summary_plot
    from xai_study.video import extract_face_clip

    if not explainers:
        raise XaiStudyError("--explainers is empty")
    known = list_explainers()
    unknown = [e for e in explainers if e not in known]
    if unknown:
        raise XaiStudyError(
            f"unknown explainer(s) {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    if len(set(explainers)) != len(explainers):
        raise XaiStudyError("--explainers lists an explainer twice")
    if preset not in pipeline.PRESETS or preset not in FAITHFULNESS_STEPS:
        raise XaiStudyError(f"unknown preset {preset!r} (choose from: fast, paper)")
    config = pipeline.PRESETS[preset]
    steps = FAITHFULNESS_STEPS[preset] if steps is None else steps
    if steps < 0:
        raise XaiStudyError("--steps must be 0 (skip) or more")
    videos = interleave(read_labels(data, split, limit))
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "preset": preset,
        "frames": config["frames"],
        "size": config["size"],
        "steps": steps,
        "baseline": baseline,
        "detector": detector or "plain",
        "sanity": sanity,
        "seed": seed,
    }
    if summary_only and not (out / "per_video.csv").is_file():
        raise XaiStudyError(f"{out}: no per_video.csv to summarise")
    _check_settings(out, settings)
    csv_path = out / "per_video.csv"
    done = _finished(csv_path)
    if summary_only:
        videos = [v for v in videos if any((v["video"], e) in done for e in explainers)]

    detectors = dict(detectors or {})

    def get_detector(arch: str):
        if arch not in detectors:
            spec = (detector or "plain") if arch == "plain" else arch
            detectors[arch] = pipeline.get_detector(spec)
        return detectors[arch]

    def params_for(name: str) -> dict:
        allowed = explainer_class(name).defaults
        wanted = {"seed": seed, **pipeline.explainer_params(preset, name)}
        return {k: v for k, v in wanted.items() if k in allowed}

    total = len(videos) * len(explainers)
    initial = sum((v["video"], e) in done for v in videos for e in explainers)
    new_file = not csv_path.is_file()
    bar = tqdm(total=total, initial=initial, desc="evaluate", unit="expl", disable=not progress)
    deletion = DeletionAUC(steps, baseline, seed=seed) if steps else None
    insertion = InsertionAUC(steps, baseline, seed=seed) if steps else None
    with open(csv_path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        if new_file:
            writer.writeheader()

        def write(row: dict) -> None:
            writer.writerow({k: _fmt(row.get(k)) for k in CSV_COLUMNS})
            fh.flush()
            bar.update(1)

        for video in videos:
            todo = [e for e in explainers if (video["video"], e) not in done]
            if not todo or summary_only:
                continue
            base = {
                "video": video["video"],
                "path": video.get("path_text", str(video["path"])),
                "label": video["label"],
                "split": video["split"],
                "method": video["method"],
            }
            bar.set_postfix_str(str(video["video"])[-30:])
            try:
                clip = extract_face_clip(
                    video["path"], num_frames=config["frames"], size=config["size"]
                )
                masks = None
                if video["label"] == "fake":
                    masks = _clip_masks(video["mask"], video["path"], clip)
                archs = {explainer_class(e).requires or "plain" for e in todo} | {"plain"}
                analysis = pipeline.analyse_video(
                    clip,
                    explainers=todo,
                    preset=preset,
                    detectors={a: get_detector(a) for a in archs},
                    params={
                        e: {"seed": seed} for e in todo if "seed" in explainer_class(e).defaults
                    },
                    render=False,
                )
            except XaiStudyError as exc:
                for name in todo:
                    write({**base, "explainer": name, "error": str(exc)})
                continue
            endpoints = {}  # (P(fake | clip), P(fake | baseline)) per detector
            for name in todo:
                expl = analysis.explanations[name]
                det = get_detector(explainer_class(name).requires or "plain")
                row = {
                    **base,
                    "explainer": name,
                    "detector": analysis.detectors.get(name, ""),
                    "frames": len(clip.frames),
                    "score": expl.score,
                    "seconds": expl.seconds,
                }
                try:
                    row.update(paper_metrics(expl.maps, signed=expl.signed))
                    if masks is not None:
                        row.update(localisation_metrics(expl.maps, masks, signed=expl.signed))
                    if deletion is not None:
                        if id(det) not in endpoints:
                            endpoints[id(det)] = deletion.endpoints(clip.frames, det)
                        ends = endpoints[id(det)]
                        row["deletion_auc"] = deletion(
                            clip.frames, expl.maps, det, expl.signed, endpoints=ends
                        )
                        row["insertion_auc"] = insertion(
                            clip.frames, expl.maps, det, expl.signed, endpoints=ends
                        )
                    if sanity:
                        params = params_for(name)

                        def explain_with(model, name=name, params=params, clip=clip):
                            return create_explainer(name, model, **params).explain(clip).maps

                        row["randomisation_spearman"] = ModelParameterRandomisation(seed=seed)(
                            explain_with, det, maps=expl.maps, signed=expl.signed
                        )
                except XaiStudyError as exc:
                    row = {**base, "explainer": name, "error": str(exc)}
                write(row)
    bar.close()

    per_video = pd.read_csv(csv_path, keep_default_na=True, dtype={"error": str, "video": str})
    wanted = {(v["video"], e) for v in videos for e in explainers}
    per_video = per_video[
        [(v, e) in wanted for v, e in zip(per_video["video"], per_video["explainer"], strict=True)]
    ]
    summary = summarise(per_video, n_boot=n_boot, seed=seed)
    summary.to_csv(out / "summary.csv", index=False, float_format="%.6g")
    title = f"Explanation metrics: {data.name}, preset {preset}"
    (out / "summary.md").write_text(summary_markdown(summary, per_video, title) + "\n")
    if len(summary):
        summary_plot(summary, out / "summary.png", title)
    return {
        "per_video": csv_path,
        "summary_csv": out / "summary.csv",
        "summary_md": out / "summary.md",
        "plot": out / "summary.png",
    }
