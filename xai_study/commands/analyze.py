"""``xai-study export``, ``xai-study analyze`` and ``xai-study import-responses``."""

from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path

from xai_study.errors import StudyError

_DB_HELP = (
    "SQLAlchemy database URL of the study (e.g. sqlite:///study_data/demo.sqlite3 or "
    "postgresql+psycopg://user:pw@host/db); default: $DATABASE_URL"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter

    p = subparsers.add_parser(
        "export",
        help="write a study's answers as responses.csv and participants.csv",
        description=textwrap.fill(
            "Export the answers stored in a study database as CSV files: responses.csv "
            "(one row per participant x section: participant_id, section, video_id, "
            "q1_answer, q1_correct, q2_choice, screen, familiarity, answered_at, ...) and "
            "participants.csv (status, consent, demographics, platform ids, checks). "
            "Cells a spreadsheet would run as formulas are prefixed with a quote."
        ),
        epilog="example:\n  xai-study export --db sqlite:///study_data/demo.sqlite3 --out results/",
        formatter_class=fmt,
    )
    p.add_argument("--db", metavar="URL", help=_DB_HELP)
    p.add_argument("--study", metavar="NAME", help="study name (needed when the DB holds several)")
    p.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder")
    p.set_defaults(func=run_export)

    p = subparsers.add_parser(
        "analyze",
        help="statistics and plots of a user study (same numbers as the results page)",
        description=textwrap.fill(
            "Compute the study's statistics. The main Q2 analysis is a conditional-logit "
            "choice model (one choice set per answer: explainer and display-position "
            "effects, with --study-dir the shown animations' metrics; standard errors "
            "clustered by participant), written to preference_model.csv. Also: "
            "participants, completion and drop-out, demographics; Q1 accuracy overall, per "
            "video and per familiarity; Q2 shares per explainer (per answer); Cochran's Q / "
            "chi-square of equal preference, pairwise sign tests at answer and participant "
            "level with Holm correction, chi-square explainer x video, Fleiss' kappa, "
            "Spearman correlation of preference with the metrics (descriptive). Writes "
            "stats.csv, sign_tests.csv, preference_model.csv, detail tables and PNG plots "
            "into --out."
        ),
        epilog=(
            "examples:\n"
            "  xai-study analyze --db sqlite:///study_data/demo.sqlite3 --out results/\n"
            "  xai-study analyze --responses results/responses.csv --out results/\n"
            "  xai-study analyze --responses r.csv --metrics eval/summary.csv --out results/\n"
            "  xai-study analyze --responses r.csv --study-dir study_data/demo --out results/"
        ),
        formatter_class=fmt,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", metavar="URL", help=_DB_HELP.replace("; default: $DATABASE_URL", ""))
    src.add_argument(
        "--responses",
        metavar="CSV",
        type=Path,
        help="responses.csv written by 'xai-study export' (or with the same columns)",
    )
    p.add_argument(
        "--participants",
        metavar="CSV",
        type=Path,
        help="participants.csv for completion / drop-out (default: the participants.csv "
        "next to --responses, if there is one)",
    )
    p.add_argument("--study", metavar="NAME", help="study name (with --db, when it holds several)")
    p.add_argument(
        "--metrics",
        metavar="CSV",
        type=Path,
        help="objective metrics per explainer (an 'xai-study evaluate' summary.csv); "
        "default: the paper's table",
    )
    p.add_argument(
        "--study-dir",
        metavar="DIR",
        type=Path,
        help="the study folder (study.yaml): adds the metrics of the animations each "
        "participant saw (V, tau, rho, mu and I, from build-study's meta) to the choice model",
    )
    p.add_argument(
        "--explainers",
        metavar="A,B,...",
        help="comma-separated explainer names in display order (default: those in the data)",
    )
    p.add_argument(
        "--exclude-failed-checks",
        action="store_true",
        help="leave out participants who failed an attention check",
    )
    p.add_argument(
        "--exclude-speeders",
        action="store_true",
        help="leave out speeders: median section time under a third of the study's "
        "median (the speeder column of participants.csv)",
    )
    p.add_argument("--no-plots", action="store_true", help="do not write the PNG plots")
    p.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder")
    p.set_defaults(func=run_analyze)

    p = subparsers.add_parser(
        "import-responses",
        help="load a form tool's CSV export into a study database",
        description=textwrap.fill(
            "Load answers collected with a form tool (one row per respondent, one column "
            "per question) so that they can be analysed like answers given in the browser. "
            "A column map (YAML) names the columns and translates the form's answer texts; "
            "see docs/analysis.md and docs/examples/form_columns.yaml. Importing the same "
            "file twice adds nothing."
        ),
        epilog=(
            "example:\n  xai-study import-responses docs/examples/form_export.csv \\\n"
            "      --columns docs/examples/form_columns.yaml --db sqlite:///paper.sqlite3 "
            "--study paper"
        ),
        formatter_class=fmt,
    )
    p.add_argument("file", metavar="FILE.csv", type=Path, help="the form tool's CSV export")
    p.add_argument("--columns", metavar="MAP.yaml", required=True, type=Path, help="column map")
    p.add_argument("--db", metavar="URL", help=_DB_HELP)
    p.add_argument(
        "--study",
        metavar="NAME",
        default="imported",
        help="study name in the DB (default: imported)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="also (or, without --db and $DATABASE_URL, only) write responses.csv and "
        "participants.csv here",
    )
    p.set_defaults(func=run_import)

    p = subparsers.add_parser(
        "withdraw",
        help="withdraw a participant (left out of every analysis; --delete erases answers)",
        description=textwrap.fill(
            "Withdraw a participant who asked to leave the study, by the participant id "
            "shown on every survey page. They are marked 'withdrawn': analyses, exports' "
            "statistics and the results page leave them out (and count them), and their "
            "browser session stops accepting answers. With --delete their answers and "
            "attention-check results are deleted as well, and their demographics and "
            "Prolific ids cleared. Run it again with --delete to erase after a plain "
            "withdrawal."
        ),
        epilog="example:\n  xai-study withdraw --db sqlite:///study_data/demo.db 3f9c0a1b2c --delete",
        formatter_class=fmt,
    )
    p.add_argument("participant", metavar="PARTICIPANT_ID", help="the participant's id")
    p.add_argument("--db", metavar="URL", help=_DB_HELP)
    p.add_argument(
        "--delete", action="store_true", help="also delete their answers and check results"
    )
    p.set_defaults(func=run_withdraw)


def _db_url(args: argparse.Namespace, required: bool = True) -> str | None:
    url = args.db or os.environ.get("DATABASE_URL")
    if not url and required:
        raise StudyError("no database: pass --db URL or set DATABASE_URL")
    return url


def pick_study(db, name: str | None) -> str | None:
    """The study to analyse: ``name`` (checked), the only one, or an error listing them."""
    names = db.study_names()
    if name is not None:
        if name not in names:
            listed = ", ".join(names) or "none"
            raise StudyError(f"study {name!r} is not in the database (studies: {listed})")
        return name
    if len(names) > 1:
        raise StudyError(
            "the database holds studies " + ", ".join(names) + ": choose one with --study"
        )
    return names[0] if names else None


def _open(url: str, must_exist: bool = True):
    """The study database; for reading, a SQLite file that does not exist is an error
    (rather than silently creating an empty database from a mistyped path)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from xai_study.study.db import Database

    if must_exist:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StudyError(f"not a database URL: {url!r}") from None
        name = parsed.database or ""
        if (
            parsed.get_backend_name() == "sqlite"
            and name not in ("", ":memory:")
            and not Path(name).expanduser().is_file()
        ):
            raise StudyError(f"database file not found: {name}")
    return Database(url)


def run_export(args: argparse.Namespace) -> int:
    from xai_study.study.analysis import load_database
    from xai_study.study.export import export_tables

    db = _open(_db_url(args))
    study = pick_study(db, args.study)
    responses, participants = load_database(db, study)
    paths = export_tables(responses, participants, args.out)
    print(
        f"study {study or '(empty database)'}: {len(participants)} participants, "
        f"{len(responses)} answers"
    )
    for path in paths:
        print(f"wrote {path}")
    return 0


def run_withdraw(args: argparse.Namespace) -> int:
    db = _open(_db_url(args))
    par, deleted = db.withdraw(args.participant.strip(), delete=args.delete)
    extra = f"; deleted {deleted} answer/check rows and the demographics" if args.delete else ""
    print(f"participant {par.id} withdrawn{extra}")
    return 0


def run_analyze(args: argparse.Namespace) -> int:
    from xai_study.study.analysis import (
        analyze,
        load_database,
        load_metrics,
        read_tables,
        write_results,
    )

    if args.db:
        if args.participants:
            raise StudyError("--participants goes with --responses, not with --db")
        db = _open(args.db)
        responses, participants = load_database(db, pick_study(db, args.study))
    else:
        if args.study:
            raise StudyError("--study goes with --db")
        responses, participants = read_tables(args.responses, args.participants)
    explainers = None
    if args.explainers:
        explainers = [e.strip() for e in args.explainers.split(",") if e.strip()]
        if not explainers:
            raise StudyError("--explainers is empty")
    shown_metrics = None
    if args.study_dir:
        from xai_study.study.analysis import animation_metrics
        from xai_study.study.spec import load_study

        shown_metrics = animation_metrics(load_study(args.study_dir))
        if not shown_metrics:
            raise StudyError(f"{args.study_dir}: the study has no animation metrics (meta)")
    result = analyze(
        responses,
        participants,
        explainers=explainers,
        metrics=load_metrics(args.metrics) if args.metrics else None,
        exclude_failed_checks=args.exclude_failed_checks,
        exclude_speeders=args.exclude_speeders,
        animation_metrics=shown_metrics,
    )
    paths = write_results(result, args.out, plots=not args.no_plots)
    print(result.report().to_text())
    for path in paths:
        print(f"wrote {path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from xai_study.study.export import export_tables
    from xai_study.study.importer import (
        convert_form,
        import_into_database,
        load_column_map,
        read_form_csv,
    )

    cmap = load_column_map(args.columns)
    form = read_form_csv(args.file)
    responses, participants = convert_form(form, cmap)
    url = _db_url(args, required=args.out is None)
    print(f"{args.file}: {len(participants)} respondents, {len(responses)} section answers")
    if url:
        db = _open(url, must_exist=False)
        new_people = new_answers = 0
        for start in tqdm(
            range(0, len(participants), 50),
            desc="import",
            unit="batch",
            disable=len(participants) <= 50,
        ):
            chunk = participants.iloc[start : start + 50]
            ids = set(chunk["participant_id"])
            p, a = import_into_database(
                db, args.study, responses[responses["participant_id"].isin(ids)], chunk
            )
            new_people += p
            new_answers += a
        print(
            f"study {args.study}: {new_people} new participants, {new_answers} new answers "
            f"({len(participants) - new_people} participants were already there)"
        )
    if args.out:
        for path in export_tables(responses, participants, args.out):
            print(f"wrote {path}")
    return 0
