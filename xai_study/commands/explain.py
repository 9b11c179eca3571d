"""``xai-study explain``: explain a detector's verdict on a video, as maps and animations."""

from __future__ import annotations

import argparse
import sys

from xai_study.commands import add_detector_options, detector_set, detector_specs, positive_int

DESCRIPTION = """\
Extract the face clip of VIDEO, score it with the plain detector, explain the score with
each explainer and write, to DIR:

  <name>.npz     array 'maps' (T x H x W float32, raw maps on the face-crop grid; signed
                 for shap3d/lime3d/integrated_gradients) + 'signed', 'score', 'frame_indices'
  <name>.mp4     heatmap overlay on the face crops (H.264 yuv420p, the clip's frame rate)
  grid.mp4       the face and every explanation side by side, frames in sync
  summary.json   verdict, P(fake), per-frame scores, per-explainer parameters and seconds

{explainers}

Presets: 'fast' (16 frames, few SHAP/LIME samples: a CPU demo in about a minute) and
'paper' (32 frames, 128 supervoxels, 512 SHAP coalitions per frame: publication quality,
for a GPU)."""

EPILOG = """\
examples:
  xai-study explain clip.mp4 --out out/
  xai-study explain clip.mp4 --out out/ --explainers gradcam,shap3d --frames 8
  xai-study explain clip.mp4 --out out/ --preset paper --target real
  xai-study explain clip.mp4 --out out/ --model plain=my_detector.pt --paste-back
  xai-study explain clip.mp4 --out out/ --model plain=B4.pth --model bonettini=B4Att.pth \\
      --explainers gradcam,bonettini --device cuda --batch-size 16
  xai-study explain clip.mp4 --out out/ --explainers shap3d --param shap3d.nsamples=256"""


def _description() -> str:
    from xai_study.explainers import explainer_choices, explainer_class, paper_explainers

    paper = paper_explainers()
    others = [n for _, n in explainer_choices() if n not in paper]
    attention = [n for _, n in explainer_choices() if explainer_class(n).requires]
    import textwrap

    text = (
        f"Explainers: {', '.join(paper)} (the paper's four; default), {', '.join(others)}. "
        f"{' and '.join(attention)} need the detectors of the same name; the others explain "
        "the plain detector."
    )
    return DESCRIPTION.replace("{explainers}", textwrap.fill(text, 88))


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a value in [0, 1], got {value:g}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "explain",
        help="explain why the detector calls a video fake (maps + animations)",
        description=_description(),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("video", metavar="VIDEO", help="video file (or image) to explain")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (created)")
    from xai_study.explainers import paper_explainers
    from xai_study.runs.presets import PRESETS

    paper = ",".join(paper_explainers())
    p.add_argument(
        "--explainers",
        default=paper,
        metavar="LIST",
        help=f"comma-separated explainers (default: {paper})",
    )
    p.add_argument(
        "--preset", choices=list(PRESETS), default="fast", help="quality preset (default: fast)"
    )
    p.add_argument(
        "--frames",
        type=positive_int,
        metavar="N",
        help="frames sampled evenly over the video (default: 16 fast, 32 paper)",
    )
    p.add_argument(
        "--target",
        choices=("fake", "real"),
        default="fake",
        help="explain the fake logit or its negation, 'real' (default: fake)",
    )
    add_detector_options(p)
    p.add_argument(
        "--models",
        metavar="ARCH=MODEL,...",
        default="",
        help="deprecated: comma-separated --model values (use --model, repeated)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="override an explainer parameter, e.g. shap3d.nsamples=512 (repeatable)",
    )
    p.add_argument(
        "--cmap", default="jet", help="matplotlib colormap of the overlays (default: jet)"
    )
    p.add_argument(
        "--alpha",
        type=_alpha,
        default=0.5,
        help="overlay opacity at the hottest pixel (default: 0.5)",
    )
    p.add_argument("--gif", action="store_true", help="also write <name>.gif animations")
    p.add_argument(
        "--paste-back",
        action="store_true",
        help="also write <name>_full.mp4: the overlay pasted into the full video frames",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _parse_params(items: list[str]) -> dict[str, dict]:
    from xai_study.errors import XaiStudyError

    params: dict[str, dict] = {}
    for item in items:
        key, eq, value = item.partition("=")
        name, dot, param = key.partition(".")
        if not eq or not dot or not name or not param:
            raise XaiStudyError(
                f"--param {item!r}: expected NAME.KEY=VALUE, e.g. shap3d.nsamples=512"
            )
        params.setdefault(name.strip(), {})[param.strip()] = _parse_value(value.strip())
    return params


def run(args: argparse.Namespace) -> int:
    from xai_study.errors import XaiStudyError
    from xai_study.explainers import explainer_class

    names = [s.strip() for s in args.explainers.split(",") if s.strip()]
    if not names:
        raise XaiStudyError("--explainers is empty")
    names = [explainer_class(n).name for n in names]
    params = _parse_params(args.param)
    for name, kw in params.items():
        cls = explainer_class(name)
        if cls.name not in names:
            raise XaiStudyError(f"--param for {name!r}, which is not in --explainers")
        bad = sorted(set(kw) - set(cls.defaults))
        if bad:
            raise XaiStudyError(
                f"--param: {cls.name} has no parameter {', '.join(bad)} "
                f"(it has: {', '.join(sorted(cls.defaults))})"
            )
    params = {explainer_class(n).name: kw for n, kw in params.items()}
    dets = detector_set(args, detector_specs(args, ("--models", [args.models])))

    from tqdm import tqdm

    from xai_study.runs import RenderOptions, analyse_video

    bar = tqdm(total=100, desc="explain", unit="%", disable=args.quiet, file=sys.stderr)

    def progress(stage: str, fraction: float) -> None:
        bar.set_postfix_str(stage)
        bar.n = round(100 * fraction)
        bar.refresh()

    try:
        analysis = analyse_video(
            args.video,
            explainers=names,
            preset=args.preset,
            num_frames=args.frames,
            target=args.target,
            detectors=dets,
            out_dir=args.out,
            progress=progress,
            params=params,
            render_options=RenderOptions(cmap=args.cmap, alpha=args.alpha, gif=args.gif),
            paste_back=args.paste_back,
        )
    finally:
        bar.close()
    from xai_study.detectors.evaluate import format_p

    print(
        f"{analysis.verdict}: P(fake) = {format_p(analysis.p_fake)} (fake at ≥ "
        f"{format_p(analysis.threshold)}) over {len(analysis.clip.frames)} frames; "
        f"wrote {len(analysis.files)} animations, grid.mp4 and summary.json to {args.out}"
    )
    for name, expl in analysis.explanations.items():
        print(f"  {name:22s} {expl.seconds:7.1f} s  {analysis.files.get(name, '')}")
    return 0
