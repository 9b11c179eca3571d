"""``xai-study serve`` (the web app) and ``xai-study build-study`` (a study folder)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from xai_study.commands import add_detector_options, detector_set, detector_specs
from xai_study.errors import StudyError

DEFAULT_STUDY = "study_data/demo"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
HOST_ENV, PORT_ENV, ROOT_PATH_ENV = "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "GRADIO_ROOT_PATH"

SERVE_HELP = """\
Serve the web app: the participant survey at /, the results page at /results (admin
password) and the live demo at /demo.

Without --study it serves the bundled demo study: study_data/demo of the checkout, or
the copy inside the installed package (pip install), whatever the current directory.

--host, --port and --root-path default to the environment variables GRADIO_SERVER_NAME,
GRADIO_SERVER_PORT and GRADIO_ROOT_PATH (the convention of Gradio hosting and
containers), then to 127.0.0.1, 7860 and none. --root-path is the path (or full URL)
under which a reverse proxy serves the app, e.g. /study for https://example.org/study/.

Answers go to the database given by --db or the DATABASE_URL environment variable
(any SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db); by default a SQLite file
next to the study folder (study_data/demo.db), or demo.db in the current directory for
the installed copy of the demo study. The schema is created on first start; several
servers may share one PostgreSQL database.

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
  GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=8080 xai-study serve --root-path /study
  participants from Prolific: https://HOST/?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID=...
"""

BUILD_HELP = """\
Build a study folder from a labelled set of videos: pairs each fake video with a real
one (the real video it was made from when the labels name it), analyses the fake
(xai_study.runs.analyse_video: face clip, detectors, explainers), renders one
unlabelled explanation animation per explainer, copies the videos (re-encoded to H.264
MP4s, opaque file names) into OUT/media/ and writes OUT/study.yaml (with the detector
score and the V/tau/rho/mu metrics per explanation).

LABELS.csv needs the columns 'path' (relative to the CSV's folder or absolute) and
'label' (real/fake or 0/1); optional 'video_id' names the videos and 'split' selects the
held-out videos (--split, default test, when present).

Bad videos are skipped, not fatal: a fake without a usable face (none found, or in
fewer than --min-face-coverage of the sampled frames) or a video that does not decode is
left out, the next one takes its place, and a summary at the end lists each with its
reason (also kept in study.yaml, built_with.skipped). An interrupted build (Ctrl-C, a
crash) resumes when the same command is run again: finished sections are kept in
OUT/.build/ and not recomputed.

Participant videos play at --video-fps (default 25, or the source's rate when lower) for
at most --video-frames frames (default 250: 10 s; a longer video plays its start), with
the longest side at most --video-size pixels (default 480). The completion code is a
random secret unless --completion-code gives one; it is printed at the end (enter it on
the recruiting platform).

With --workers N (a local Ray cluster) or --ray auto|ADDRESS the fakes are analysed
(face clip, detectors, explainers) by Ray workers, as many at once as sections are still
needed; stimuli, animations and study.yaml are written here, in the sequential order
(docs/scale.md). Needs the 'cluster' extra.

examples:
  xai-study build-study --data study_data/demo_data/labels.csv --out study_data/demo \\
      --sections 4
  xai-study build-study --data labels.csv --out study_data/big --sections 20 --workers 4
  xai-study build-study --data videos/labels.csv --out study_data/mine \\
      --model plain=weights/EfficientNetB4_DFDC.pth \\
      --model bonettini=weights/EfficientNetAutoAttB4_DFDC.pth \\
      --redirect-url "https://app.prolific.com/submissions/complete?cc={code}" \\
      --screenout-code SCREENED1 --contact study@example.org --consent consent.md
"""

TEXTS_HELP = """\
Print every participant-facing text of the survey (consent page, questions, buttons,
progress line, completion and leaving pages, messages) with its default, as the
'texts:' block of a study file. Translate the values and pass the file to
'build-study --texts FILE.yaml', or paste the block into study.yaml: any key left out
keeps its default, an unknown key is an error. Placeholders such as {n} or {contact}
are filled in where the text is shown.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the survey, results and demo web app",
        description=SERVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--study",
        default=None,
        help=f"study folder (default: the bundled demo study, {DEFAULT_STUDY})",
    )
    p.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy database URL (default: DATABASE_URL or SQLite next to the study)",
    )
    p.add_argument(
        "--host",
        default=None,
        help=f"interface to listen on (default: ${HOST_ENV}, else {DEFAULT_HOST})",
    )
    p.add_argument(
        "--port", type=int, default=None, help=f"port (default: ${PORT_ENV}, else {DEFAULT_PORT})"
    )
    p.add_argument(
        "--root-path",
        default=None,
        help=f"path or URL the app is served under behind a reverse proxy (default: "
        f"${ROOT_PATH_ENV}, else none)",
    )
    p.add_argument(
        "--production",
        action="store_true",
        help="no default admin password (also implied by a --host other than loopback)",
    )
    add_detector_options(p)
    p.add_argument(
        "--models",
        default=None,
        metavar="DIR",
        help="deprecated: the same as --model ARCH=DIR/ARCH.pt for each of plain.pt, "
        "bonettini.pt, ltpa.pt in DIR",
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
    add_detector_options(b)
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
    from xai_study.study import build as _build

    g = b.add_argument_group("participant videos and animations")
    g.add_argument(
        "--video-size",
        type=int,
        default=_build.DEFAULT_VIDEO_SIZE,
        metavar="PX",
        help=f"longest side of the videos (default {_build.DEFAULT_VIDEO_SIZE}; 0: as recorded)",
    )
    g.add_argument(
        "--video-fps",
        type=float,
        default=_build.DEFAULT_VIDEO_FPS,
        help=f"frame rate of the videos (default {_build.DEFAULT_VIDEO_FPS:g}; "
        "the source's when lower)",
    )
    g.add_argument(
        "--video-frames",
        type=int,
        default=_build.DEFAULT_VIDEO_FRAMES,
        metavar="N",
        help=f"frames per video at most (default {_build.DEFAULT_VIDEO_FRAMES}: a longer "
        "video plays its first N / fps seconds)",
    )
    g.add_argument(
        "--animation-fps",
        type=float,
        default=None,
        help="frame rate of the explanation animations (default: the explained frames "
        "over 2 s, 2-12 fps)",
    )
    g.add_argument(
        "--min-face-coverage",
        type=float,
        default=_build.DEFAULT_MIN_FACE_COVERAGE,
        metavar="SHARE",
        help="skip fakes with a face in fewer than this share of the sampled frames "
        f"(default {_build.DEFAULT_MIN_FACE_COVERAGE:g})",
    )
    from xai_study.runs.cluster import add_cluster_arguments

    add_cluster_arguments(b, what="fakes' analyses")
    g = b.add_argument_group("recruiting platform and consent (stored in study.yaml)")
    g.add_argument(
        "--completion-code",
        default=None,
        metavar="CODE",
        help="code shown on completion (default: a random secret, printed at the end)",
    )
    g.add_argument(
        "--screenout-code",
        default=None,
        metavar="CODE",
        help="code for participants screened out by a failed attention check (default none)",
    )
    g.add_argument(
        "--redirect-url",
        default=None,
        metavar="URL",
        help="where participants are sent at the end; {code} becomes the code, e.g. "
        "https://app.prolific.com/submissions/complete?cc={code}",
    )
    g.add_argument("--contact", default=None, help="who participants write to (consent page)")
    g.add_argument("--retention", default=None, help="how long answers are kept (consent page)")
    g.add_argument(
        "--consent",
        default=None,
        type=Path,
        metavar="FILE.md",
        help="consent text (Markdown) instead of the built-in one; {retention}, {contact} "
        "and {sections} are filled in",
    )
    g.add_argument(
        "--texts",
        default=None,
        type=Path,
        metavar="FILE.yaml",
        help="participant-facing texts to override (see 'xai-study study-texts')",
    )
    b.add_argument("--force", action="store_true", help="overwrite an existing study folder")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run_build)

    t = subparsers.add_parser(
        "study-texts",
        help="print the survey's participant-facing texts (to translate or reword them)",
        description=TEXTS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.set_defaults(func=run_texts)


def listen_address(
    host: str | None, port: int | None, root_path: str | None, env: Mapping[str, str] = os.environ
) -> tuple[str, int, str]:
    """``(host, port, root_path)`` of ``serve``: the option, else the Gradio environment
    variable, else the default. Raises :class:`StudyError` (one line) on a bad value."""
    host = host if host is not None else (env.get(HOST_ENV) or DEFAULT_HOST)
    if not host.strip() or any(c.isspace() for c in host):
        raise StudyError(f"--host / ${HOST_ENV} must be a host name or address, got {host!r}")
    if port is None:
        text = env.get(PORT_ENV, "").strip()
        if not text:
            port = DEFAULT_PORT
        elif not text.isdigit():
            raise StudyError(f"${PORT_ENV} must be a port number 1-65535, got {text!r}")
        else:
            port = int(text)
    if not 0 < port < 65536:
        raise StudyError(f"--port / ${PORT_ENV} must be 1-65535, got {port}")
    root = root_path if root_path is not None else env.get(ROOT_PATH_ENV, "")
    root = root.strip().rstrip("/")
    if root and not root.startswith(("/", "http://", "https://")):
        raise StudyError(
            f"--root-path / ${ROOT_PATH_ENV} must start with / (or be a http(s):// URL), "
            f"got {root!r}"
        )
    if any(c.isspace() for c in root) or "?" in root or "#" in root:
        raise StudyError(f"--root-path / ${ROOT_PATH_ENV} must be a plain path, got {root!r}")
    return host, port, root


def make_context(args: argparse.Namespace):
    """AppContext from ``serve`` options (shared with the load test)."""
    from sqlalchemy.engine import make_url

    from xai_study.resources import demo_study_dir, is_installed_copy
    from xai_study.study.db import Database, default_db_url
    from xai_study.study.spec import load_study
    from xai_study.ui.context import STATE_SECRET_ENV, AppContext, admin_password_from_env

    specs = detector_specs(args, ("--models", _models_dir_specs(getattr(args, "models", None))))
    dets = detector_set(args, specs, load=False)  # run_serve loads them
    study = load_study(args.study if args.study is not None else demo_study_dir())
    if is_installed_copy(study.root) and not args.db and not os.environ.get("DATABASE_URL"):
        # the installed demo study may be read-only: answers go to the current directory
        url = f"sqlite:///{Path.cwd() / (study.root.name + '.db')}"
    else:
        url = args.db or default_db_url(study.root)
    if getattr(args, "require_prolific_pid", False):
        study.require_prolific_pid = True
    if getattr(args, "quota", None) is not None:
        study.quota = args.quota
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
        cache_dir=Path(args.cache),
        max_upload_mb=args.max_upload_mb,
        state_secret=os.environ.get(STATE_SECRET_ENV) or None,
        demo=not getattr(args, "no_demo", False),
    )
    # the /demo page's detectors (ui/demo.py): the set, and its identity for the cache
    ctx.extra["demo_detectors"] = dets
    if specs:
        ctx.extra["demo_detectors_id"] = dets.content_id()
    return ctx, db_path


def _models_dir_specs(folder: str | None) -> list[str]:
    """What the deprecated ``serve --models DIR`` names: ``ARCH=DIR/ARCH.pt`` for every
    demo architecture with a file there (a one-line error when there is none)."""
    if folder is None:
        return []
    from xai_study.detectors.checkpoint import DEMO_MODELS

    found = [f"{a}={Path(folder) / f'{a}.pt'}" for a in DEMO_MODELS]
    found = [f for f in found if Path(f.partition("=")[2]).is_file()]
    if not found:
        raise StudyError(
            f"--models {folder}: no {', '.join(f'{a}.pt' for a in DEMO_MODELS)} in that folder"
        )
    return found


def run_serve(args: argparse.Namespace) -> int:
    args.host, args.port, args.root_path = listen_address(
        args.host, args.port, getattr(args, "root_path", None)
    )
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
    dets = ctx.extra["demo_detectors"]
    dets.load(dets.specs)  # a missing or wrong detector file fails now, not in the first job
    from xai_study.ui.app import serve

    for warning in ctx.study.warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    where = f"http://{args.host}:{args.port}/"
    print(f"serving study '{ctx.study.name}' on {where} (results: {where}results)", flush=True)
    if args.root_path:
        print(f"root path for the reverse proxy: {args.root_path}/", flush=True)
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
            root_path=args.root_path,
        )
    except OSError as exc:
        raise StudyError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from exc
    return 0


def run_build(args: argparse.Namespace) -> int:
    from xai_study.runs.cluster import options_from_args
    from xai_study.study.build import Journal, Stimuli, StudySettings, build_study

    models = detector_set(args, detector_specs(args))
    cluster = options_from_args(args)
    if args.shap_samples is not None and args.shap_samples < 2:
        raise StudyError("--shap-samples must be at least 2")
    settings = StudySettings(
        title=args.title,
        shown=args.shown,
        q2_mode=args.q2_mode,
        attention_check=not args.no_attention_check,
        completion_code=args.completion_code,
        screenout_code=args.screenout_code,
        redirect_url=args.redirect_url,
        contact=args.contact,
        retention=args.retention,
        consent=args.consent,
        texts=args.texts,
    )
    stimuli = Stimuli(
        video_size=args.video_size,
        video_fps=args.video_fps,
        video_frames=args.video_frames,
        animation_fps=args.animation_fps,
    )
    try:
        report = build_study(
            data_csv=Path(args.data),
            out_dir=Path(args.out),
            sections=args.sections,
            models=models,
            explainers=[e.strip() for e in args.explainers.split(",") if e.strip()],
            explainer_params=(
                {"shap": {"nsamples": args.shap_samples}} if args.shap_samples else None
            ),
            preset=args.preset,
            num_frames=args.frames,
            seed=args.seed,
            split=args.split or None,
            force=args.force,
            progress=not args.quiet,
            stimuli=stimuli,
            settings=settings,
            min_face_coverage=args.min_face_coverage,
            cluster=cluster,
        )
    except KeyboardInterrupt:
        journal = Journal(Path(args.out))
        if journal.exists():
            sys.stderr.write(
                f"interrupted: the finished sections are kept in {journal.dir}; run the "
                "same command again to continue\n"
            )
            return 130
        raise
    print(report.summary())
    return 0


def run_texts(args: argparse.Namespace) -> int:
    import yaml

    from xai_study.study.spec import DEFAULT_TEXTS

    sys.stdout.write(
        "# participant-facing texts of xai-study surveys (defaults); {name} placeholders\n"
        "# are filled in where a text is shown\n"
    )
    sys.stdout.write(
        yaml.safe_dump({"texts": DEFAULT_TEXTS}, sort_keys=False, allow_unicode=True, width=88)
    )
    return 0
