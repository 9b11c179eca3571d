"""``xai-study power``: the power of the study's main tests, by simulation, before launch."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from xai_study.errors import StudyError


def _numbers(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise StudyError(f"{what} must be comma-separated numbers, got {text!r}") from None


def _counts(text: str, what: str) -> list[int]:
    values = _numbers(text, what)
    if not values or any(v != int(v) or v < 1 for v in values):
        raise StudyError(f"{what} must be positive whole numbers, got {text!r}")
    return [int(v) for v in values]


def _effects(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise StudyError(f"--effects: {part!r} is not NAME=NUMBER")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise StudyError(f"--effects: {value!r} is not a number") from None
    if len(out) < 2:
        raise StudyError("--effects needs at least 2 explainers, e.g. gradcam=0,shap=0.3")
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "power",
        help="power of the study's main tests for N participants x S sections (simulation)",
        description=textwrap.fill(
            "Size a study before paying participants. Simulates studies of N participants x "
            "S sections in which each participant picks one of the animations, shown in a "
            "random order, with the stated explainer effects (log odds: utility of each "
            "explainer), display-position effects and participant-to-participant taste "
            "variation, fits the choice model of 'xai-study analyze' (conditional logit, "
            "SEs clustered by participant) to each and prints how often its tests reject: "
            "'explainers differ', 'position matters' and each term."
        ),
        epilog=(
            "example:\n  xai-study power --participants 30,60 --sections 20 \\\n"
            "      --effects gradcam=0,shap=0.3,ltpa=-0.2,bonettini=0.1 "
            "--positions 0,-0.2,-0.2,-0.3 --taste-sd 0.5"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--participants", metavar="N[,N...]", required=True, help="participants per study"
    )
    p.add_argument("--sections", metavar="S", type=int, default=20, help="sections each (20)")
    p.add_argument(
        "--effects",
        metavar="NAME=X,...",
        required=True,
        help="utility (log odds) of each explainer; the first is the reference",
    )
    p.add_argument(
        "--positions",
        metavar="X,...",
        help="utility of each display position A, B, ... (default: no position bias)",
    )
    p.add_argument(
        "--taste-sd",
        type=float,
        default=0.0,
        help="SD of a participant's own taste per explainer (makes answers dependent; 0)",
    )
    p.add_argument("--simulations", type=int, default=500, help="simulated studies (500)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--out", metavar="CSV", type=Path, help="also write the table as CSV")
    p.set_defaults(func=run_power)


def run_power(args: argparse.Namespace) -> int:
    import pandas as pd

    from xai_study.study.analysis.simulate import power, power_text

    effects = _effects(args.effects)
    positions = _numbers(args.positions, "--positions") if args.positions else None
    if args.taste_sd < 0:
        raise StudyError("--taste-sd must be 0 or more")
    tables = []
    for n in _counts(args.participants, "--participants"):
        table = power(
            n,
            args.sections,
            effects,
            positions,
            taste_sd=args.taste_sd,
            simulations=args.simulations,
            alpha=args.alpha,
            seed=args.seed,
        )
        print(f"{n} participants x {args.sections} sections ({n * args.sections} answers):")
        print(power_text(table, args.alpha))
        tables.append(table.assign(participants=n, sections=args.sections))
    if args.out:
        from xai_study.study.export import write_csv

        args.out.parent.mkdir(parents=True, exist_ok=True)
        print(f"wrote {write_csv(pd.concat(tables, ignore_index=True), args.out)}")
    return 0
