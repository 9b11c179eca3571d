"""``xai-study serve`` (the web app) and ``xai-study build-study`` (a study folder)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from xai_study.errors import StudyError

DEFAULT_STUDY = "study_data/demo"

SERVE_HELP = """\
Serve the web app: the participant survey at /, the results page at /results (admin
password) and the live demo at /demo.

Answers go to the database given by --db or the DATABASE_URL environment variable
(any SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db); by default a SQLite file
next to the study folder (study_data/demo.db). The schema is created on first start;
several servers may share one PostgreSQL database.

The results page password comes from XAI_STUDY_ADMIN_PASSWORD. Without --production and
on a loopback --host the fallback password is 'admin'; with --production and no password
the page stays locked; on any other --host serve refuses to start without one (exit 2).
Wrong passwords are limited to 5 per client address per 5 minutes.

Prolific: --require-prolific-pid, --quota N (a "study closed" page after N participants)
and the study file's screenout_code (shown after a failed attention check) — see
docs/study.md. --no-demo serves the survey and results without the /demo page.

A participant's place is kept in browser storage, encrypted with a secret that is
generated on first start and kept in the database, so a reload after a restart resumes;
XAI_STUDY_STATE_SECRET sets it instead (the same value on every server of a study).

Limits for the open internet: the queue holds --max-queue events, demo jobs are bounded
(--demo-jobs, --demo-jobs-per-client) so the survey keeps its share, request bodies are
limited (--max-body-kb, uploads by --max-upload-mb), and GET /healthz answers 200 while
the queue runs and 503 once it has stopped (point a supervisor's health check at it).

examples:
  xai-study serve
  XAI_STUDY_ADMIN_PASSWORD=s3cret xai-study serve --production --host 0.0.0.0
  xai-study serve --study study_data/mystudy --db postgresql+psycopg://u:p@db/xai
  participants from Prolific: https://HOST/?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID=...
"""

BUILD_HELP = """\
Build a study folder from a labelled set of videos: pairs each fake video with a real
one, analyses the fake (xai_study.runs.analyse_video: face clip, detectors,
explainers), renders one unlabelled explanation animation per explainer, copies the
videos (re-encoded to small H.264 MP4s, opaque file names) into OUT/media/ and writes
OUT/study.yaml (with the detector score and the V/tau/rho/mu metrics per explanation).

LABELS.csv needs the columns 'path' (relative to the CSV's folder or absolute) and
'label' (real/fake or 0/1); optional 'video_id' names the videos and 'split' selects the
held-out videos (--split, default test, when present).

example:
  xai-study build-study --data study_data/demo_data/labels.csv --out study_data/demo \\
      --sections 4
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the survey, results and demo web app",
        description=SERVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--study", default=DEFAULT_STUDY, help=f"study folder (default {DEFAULT_STUDY})")
    p.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy database URL (default: DATABASE_URL or SQLite next to the study)",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--production",
        action="store_true",
        help="no default admin password (also implied by a --host other than loopback)",
    )
    p.add_argument(
        "--models", default="models", help="folder of detector checkpoints for the demo page"
    )
    p.add_argument("--cache", default=".xai_study_cache", help="cache folder for the demo page")
    p.add_argument(
        "--max-upload-mb", type=float, default=50.0, help="largest upload accepted (default 50)"
    )
    p.add_argument(
        "--concurrency", type=int, default=16, help="events processed at once (default 16)"
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=512,
        help="events waiting at most; more get HTTP 503 (default 512; Gradio keeps 2,000)",
    )
    p.add_argument(
        "--demo-jobs",
        type=int,
        default=8,
        help="demo-page jobs queued or running at most (default 8)",
    )
    p.add_argument(
        "--demo-jobs-per-client",
        type=int,
        default=1,
        help="demo-page jobs queued or running per client address (default 1)",
    )
    p.add_argument(
        "--max-body-kb",
        type=float,
        default=64.0,
        help="largest request body other than an upload, in KiB (default 64)",
    )
    p.add_argument(
        "--require-prolific-pid",
        action="store_true",
        help="only links with a PROLIFIC_PID may start the survey (also study.yaml "
        "require_prolific_pid: true)",
    )
    p.add_argument(
        "--quota",
        type=int,
        default=None,
        help="participants at most, withdrawn ones not counted; later visitors get a "
        "'study closed' page (default: study.yaml quota, else no limit)",
    )
    p.add_argument(
        "--no-demo",
        action="store_true",
        help="do not serve the live demo page (/demo) next to the survey",
    )
    p.set_defaults(func=run_serve)

    b = subparsers.add_parser(
        "build-study",
        help="build a study folder (videos + explanation animations + study.yaml)",
        description=BUILD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("--data", required=True, help="labels CSV (columns path,label[,id])")
    b.add_argument("--out", required=True, help="output study folder (study_data/NAME)")
    b.add_argument(
        "--sections",
        type=int,
        default=None,
        help="number of sections (default: as many fakes as there are real videos to pair)",
    )
    b.add_argument(
        "--shown", type=int, default=None, help="sections shown to each participant (default all)"
    )
    b.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="ARCH=NAME_OR_PATH",
        help="detector for an architecture (plain, bonettini, ltpa); default: the demo "
        "checkpoints in models/ (repeatable)",
    )
    from xai_study.explainers import explainer_class, paper_explainers
    from xai_study.runs.presets import PRESETS

    paper = ",".join(explainer_class(n).study_name for n in paper_explainers())
    b.add_argument(
        "--explainers",
        default=paper,
        help=f"comma-separated study explainers (default {paper})",
    )
    b.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="fast",
        help="explainer settings of xai_study.runs.PRESETS (default fast: CPU-friendly)",
    )
    b.add_argument(
        "--frames", type=int, default=None, help="frames per explained clip (default: preset's)"
    )
    b.add_argument(
        "--shap-samples",
        type=int,
        default=None,
        help="Kernel SHAP model evaluations (default: preset's)",
    )
    b.add_argument(
        "--split",
        default="test",
        help="use only this split of the labels when present (default test)",
    )
    b.add_argument("--seed", type=int, default=0, help="seed of the video pairing (default 0)")
    b.add_argument("--title", default=None, help="study title")
    b.add_argument("--q2-mode", choices=["single", "multiple"], default="single")
    b.add_argument(
        "--no-attention-check", action="store_true", help="leave out the attention check"
    )
    b.add_argument("--force", action="store_true", help="overwrite an existing study folder")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run_build)


def make_context(args: argparse.Namespace):
    """AppContext from ``serve`` options (shared with the load test)."""
    from sqlalchemy.engine import make_url

    from xai_study.study.db import Database, default_db_url
    from xai_study.study.spec import load_study
    from xai_study.ui.context import STATE_SECRET_ENV, AppContext, admin_password_from_env

    study = load_study(args.study)
    if getattr(args, "require_prolific_pid", False):
        study.require_prolific_pid = True
    if getattr(args, "quota", None) is not None:
        study.quota = args.quota
    url = args.db or default_db_url(study.root)
    db = Database(url)
    db_path = None
    if db.is_sqlite:
        name = make_url(db.url).database
        if name and name != ":memory:":
            db_path = Path(name).resolve()
    ctx = AppContext(
        study=study,
        db=db,
        admin_password=admin_password_from_env(args.production, getattr(args, "host", "127.0.0.1")),
        production=args.production,
        models_dir=Path(args.models),
        cache_dir=Path(args.cache),
        max_upload_mb=args.max_upload_mb,
        state_secret=os.environ.get(STATE_SECRET_ENV) or None,
        demo=not getattr(args, "no_demo", False),
    )
    return ctx, db_path


def run_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise StudyError(f"--port must be 1-65535, got {args.port}")
    if args.max_upload_mb <= 0:
        raise StudyError("--max-upload-mb must be positive")
    for name in ("concurrency", "max_queue", "demo_jobs", "demo_jobs_per_client"):
        if getattr(args, name) < 1:
            raise StudyError(f"--{name.replace('_', '-')} must be at least 1")
    if args.max_queue > 1500:
        raise StudyError("--max-queue must be at most 1500 (Gradio keeps 2,000 sessions)")
    if args.max_body_kb <= 0:
        raise StudyError("--max-body-kb must be positive")
    if args.quota is not None and args.quota < 1:
        raise StudyError("--quota must be at least 1")
    from xai_study.ui.context import ADMIN_PASSWORD_ENV, is_loopback

    if not is_loopback(args.host) and not os.environ.get(ADMIN_PASSWORD_ENV):
        raise StudyError(
            f"--host {args.host} is reachable from other machines: set {ADMIN_PASSWORD_ENV} "
            "(the results page's password) before serving there"
        )
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    ctx, db_path = make_context(args)
    from xai_study.ui.app import serve

    for warning in ctx.study.warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    where = f"http://{args.host}:{args.port}/"
    print(f"serving study '{ctx.study.name}' on {where} (results: {where}results)", flush=True)
    if ctx.admin_password is None:
        print("results page locked: set XAI_STUDY_ADMIN_PASSWORD to open it", flush=True)
    try:
        serve(
            ctx,
            args.host,
            args.port,
            db_path=db_path,
            concurrency=args.concurrency,
            max_queue=args.max_queue,
            demo_jobs=args.demo_jobs,
            demo_jobs_per_client=args.demo_jobs_per_client,
            max_body_bytes=int(args.max_body_kb * 1024),
        )
    except OSError as exc:
        raise StudyError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from exc
    return 0


def run_build(args: argparse.Namespace) -> int:
    from xai_study.runs.detectors import parse_detector_specs
    from xai_study.study.build import build_study

    models = parse_detector_specs(args.model, option="--model")
    if args.shap_samples is not None and args.shap_samples < 2:
        raise StudyError("--shap-samples must be at least 2")
    path = build_study(
        data_csv=Path(args.data),
        out_dir=Path(args.out),
        sections=args.sections,
        shown=args.shown,
        models=models,
        explainers=[e.strip() for e in args.explainers.split(",") if e.strip()],
        explainer_params={"shap": {"nsamples": args.shap_samples}} if args.shap_samples else None,
        preset=args.preset,
        num_frames=args.frames,
        seed=args.seed,
        split=args.split or None,
        title=args.title,
        q2_mode=args.q2_mode,
        attention_check=not args.no_attention_check,
        force=args.force,
        progress=not args.quiet,
    )
    print(f"wrote {path}")
    return 0
