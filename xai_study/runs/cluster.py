"""Per-video work on Ray: ``evaluate`` and batch ``detect`` with ``--workers N`` (a local
Ray cluster on this machine) or ``--ray auto|ADDRESS`` (an existing cluster).

Ray is an optional extra (``pip install 'xai-study[cluster]'``) and is imported only
here, inside functions, and only when one of those options is given.

- A *job* (:class:`Job`: ``evaluate``'s and ``detect``'s are in their modules) is a
  picklable object with ``setup(device)`` (load the detectors and MTCNN) and
  ``run(item)`` (one video's result).
- :func:`run_videos` starts N :class:`Worker` actors, each calling ``job.setup`` once
  (so detectors and MTCNN are loaded once per worker, not per video) with its torch
  threads set (cores / N by default, so that N workers do not oversubscribe the cores)
  and asking Ray for those CPUs and its share of the GPUs.
- Each worker has one video at a time; the driver hands out the next when one finishes
  and gives each result to ``on_result`` at once (the caller writes it, see
  :mod:`xai_study.runs.results`).
- A worker that dies (killed, out of memory) is replaced and its video handed out again,
  up to ``max_attempts`` times; a video that fails (its one-line error) is reported and
  the run goes on. Finished videos are written, so a rerun never recomputes them.
- One progress bar for the run: done / running / failed; the failures at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from xai_study.errors import XaiStudyError


class Job(Protocol):
    """What a worker runs: ``setup`` once per worker, ``run`` once per video."""

    def setup(self, device: str) -> None: ...

    def run(self, item: Any) -> Any: ...


@dataclass
class ClusterOptions:
    """How to run per-video work on Ray (all None: not on Ray)."""

    workers: int | None = None  # number of worker actors
    address: str | None = None  # "auto", "HOST:PORT" or "ray://HOST:10001"; None: local
    threads: int | None = None  # torch threads per worker (default: cores / workers)
    gpus: float | None = None  # GPUs per worker (default: the cluster's GPUs / workers)
    max_attempts: int = 3  # a video whose worker dies this many times is a failure
    # seconds to wait for the first worker to be up (its detectors loaded) before the
    # run stops with an error instead of waiting for ever; env XAI_STUDY_RAY_START_TIMEOUT
    start_timeout: float = field(
        default_factory=lambda: float(os.environ.get("XAI_STUDY_RAY_START_TIMEOUT", "600"))
    )

    @property
    def enabled(self) -> bool:
        return self.workers is not None or self.address is not None

    def check(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise XaiStudyError("--workers must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise XaiStudyError("--threads-per-worker must be at least 1")
        if self.gpus is not None and self.gpus < 0:
            raise XaiStudyError("--gpus-per-worker must be 0 or more")
        if self.address is not None and not self.address.strip():
            raise XaiStudyError("--ray needs 'auto' or a cluster address")


def add_cluster_arguments(parser, what: str = "videos") -> None:
    """The ``--workers`` / ``--ray`` / ``--threads-per-worker`` / ``--gpus-per-worker``
    options of a command."""
    g = parser.add_argument_group("parallel runs on Ray (pip install 'xai-study[cluster]')")
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=f"process the {what} with N Ray workers on this machine (a local Ray cluster); "
        "with --ray, N workers on that cluster (default there: one per GPU, else per "
        "--threads-per-worker CPUs)",
    )
    g.add_argument(
        "--ray",
        default=None,
        metavar="auto|ADDRESS",
        dest="ray_address",
        help="run on an existing Ray cluster: 'auto' (the one started here with "
        "'ray start') or its address (HOST:6379, ray://HOST:10001)",
    )
    g.add_argument(
        "--threads-per-worker",
        type=int,
        default=None,
        metavar="T",
        help="torch threads (and CPUs asked of Ray) per worker (default: cores / N "
        "locally, 1 on a cluster)",
    )
    g.add_argument(
        "--gpus-per-worker",
        type=float,
        default=None,
        metavar="G",
        help="GPUs per worker, fractions share one (default: the cluster's GPUs / N, "
        "at most 1; 0 on a cluster without GPUs)",
    )


def options_from_args(args) -> ClusterOptions:
    options = ClusterOptions(
        workers=args.workers,
        address=args.ray_address,
        threads=args.threads_per_worker,
        gpus=args.gpus_per_worker,
    )
    if not options.enabled and (options.threads is not None or options.gpus is not None):
        raise XaiStudyError("--threads-per-worker and --gpus-per-worker go with --workers or --ray")
    options.check()
    return options


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/8"`` -> ``(2, 8)``: the second of eight shards (None stays None)."""
    if text is None:
        return None
    i, slash, n = str(text).partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        index = count = 0
    if not slash or count < 1 or not 1 <= index <= count:
        raise XaiStudyError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 1/4")
    return index, count


def take_shard(items: Sequence[Any], shard: tuple[int, int] | None) -> list[Any]:
    """Every N-th item starting at the I-th (shards are disjoint and cover the list)."""
    if shard is None:
        return list(items)
    index, count = shard
    return [x for k, x in enumerate(items) if k % count == index - 1]


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, with its type when it is not
    one of ours."""
    text = next((s.strip() for s in str(exc).splitlines() if s.strip()), "")
    if isinstance(exc, XaiStudyError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ----------------------------------------------------------------------------- worker


class Worker:
    """A Ray actor (``ray.remote`` is applied in :func:`run_videos`): sets its torch
    threads, runs ``job.setup`` once, then ``job.run`` per video."""

    def __init__(self, job: Job, threads: int, device: str):
        import torch

        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # already set in this process
            torch.set_num_interop_threads(1)
        self.job = job
        job.setup(device)

    def ping(self) -> int:
        """Answers once the worker is up (its job set up): the driver's start check."""
        return os.getpid()

    def run(self, item: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            result, error = self.job.run(item), None
        except Exception as exc:  # a bad video never stops the run
            result, error = None, one_line(exc)
        return {
            "result": result,
            "error": error,
            "seconds": time.perf_counter() - t0,
            "pid": os.getpid(),
        }


# ----------------------------------------------------------------------------- driver


@dataclass
class Failure:
    video: str
    error: str


@dataclass
class RunReport:
    """What :func:`run_videos` did."""

    workers: int = 0
    threads: int = 0
    gpus: float = 0.0
    done: int = 0
    failures: list[Failure] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    # per finished task: (seconds from hand-out to result at the driver, seconds of work)
    tasks: list[tuple[float, float]] = field(default_factory=list)
    startup_seconds: float = 0.0  # until every worker was ready
    seconds: float = 0.0


def _import_ray():
    # Ray >= 2.43 starts the workers of a driver run under `uv run` with `uv run` in a
    # copy of the current folder, where the project's .venv is missing: every worker
    # then dies at start ("No module named 'ray'") and the run waits for ever. Our
    # workers run in this interpreter's environment (a cluster's nodes have xai-study
    # installed, docs/scale.md). Read once, when ray is imported; set it to 1 to opt in.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray
    except ImportError:
        raise XaiStudyError(
            "--workers / --ray need Ray: pip install 'xai-study[cluster]' (or ray)"
        ) from None
    return ray


def init_ray(options: ClusterOptions) -> bool:
    """Connect to the cluster of ``options.address``, or start a local one sized for
    ``options.workers`` x ``options.threads`` CPUs (a Ray already running in this process
    is used as it is); True when this call started it (and must stop it)."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray runs its workers at niceness +15 by default (below its own services); ours do
    # the command's work, so they run as nice as the command itself
    os.environ.setdefault("RAY_worker_niceness", "0")
    kwargs: dict[str, Any] = dict(
        include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
    )
    if options.address is not None:
        kwargs["address"] = options.address
    else:
        workers = options.workers or 1
        threads = options.threads or max(1, (os.cpu_count() or 1) // workers)
        kwargs.update(num_cpus=workers * threads, object_store_memory=256 * 2**20)
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        raise XaiStudyError(f"--ray {options.address}: {one_line(exc)}") from None
    except Exception as exc:
        # (not retried: the services of a failed start live on until this process ends)
        ray.shutdown()
        raise XaiStudyError(
            f"could not start Ray ({one_line(exc)}); on a busy machine start it once with "
            "'ray start --head' and use --ray auto"
        ) from None
    return True


def _plan(ray, options: ClusterOptions) -> tuple[int, int, float]:
    """(workers, torch threads per worker, GPUs per worker) for the cluster."""
    res = ray.cluster_resources()
    cpus, gpus = int(res.get("CPU", 1)), float(res.get("GPU", 0))
    local = options.address is None
    if options.threads is not None:
        threads = options.threads
    elif local and options.workers:
        threads = max(1, cpus // options.workers)
    else:
        threads = 1
    workers = options.workers or (int(gpus) if gpus >= 1 else max(1, cpus // threads))
    per_gpu = options.gpus if options.gpus is not None else min(1.0, gpus / workers)
    return workers, threads, per_gpu


def _wait_for_a_worker(ray, actors: list, timeout: float) -> None:
    """Return once one of ``actors`` is up; a clear error (not a run that waits for
    ever) when none is after ``timeout`` seconds, e.g. a cluster without the CPUs or
    GPUs asked for, or a machine where Ray cannot start worker processes."""
    pings = [a.ping.remote() for a in actors]
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        # a dead worker's ping counts as done here; ray.get below raises its error
        done, _ = ray.wait(pings, num_returns=1, timeout=max(0.0, min(1.0, left)))
        if done:
            try:
                ray.get(done[0])
                return
            except ray.exceptions.RayError as exc:
                pings.remove(done[0])  # the run replaces a dead worker when it uses it
                if not pings:
                    raise XaiStudyError(f"no Ray worker could start ({one_line(exc)})") from None
            continue
        if left <= 0:
            for a in actors:
                ray.kill(a)
            res = ray.available_resources()
            free = ", ".join(f"{k} {v:g}" for k, v in sorted(res.items()) if k in ("CPU", "GPU"))
            raise XaiStudyError(
                f"no Ray worker was up after {timeout:.0f} s (free on the cluster: "
                f"{free or 'nothing'}); see 'ray status', or set "
                "XAI_STUDY_RAY_START_TIMEOUT to wait longer"
            )


def run_videos(
    job: Job,
    items: Sequence[tuple[str, Any]],
    options: ClusterOptions,
    on_result: Callable[[str, Any], str | None],
    progress: bool = True,
    desc: str = "videos",
) -> RunReport:
    """Run ``job`` on every ``(video_id, item)`` on Ray; ``on_result(video_id, result)``
    writes a result as it arrives and returns its error (a failed video) or None."""
    from tqdm import tqdm

    options.check()
    ray = _import_ray()
    report = RunReport()
    if not items:  # everything is done already
        return report
    started = init_ray(options)
    t_run = time.perf_counter()
    try:
        workers, threads, gpus = _plan(ray, options)
        report.workers, report.threads, report.gpus = workers, threads, gpus
        actor_class = ray.remote(Worker).options(
            num_cpus=threads, num_gpus=gpus, max_restarts=0, max_concurrency=1
        )
        device = "cuda" if gpus > 0 else "cpu"
        job_ref = ray.put(job)

        def new_actor():
            return actor_class.remote(job_ref, threads, device)

        actors = [new_actor() for _ in range(min(workers, len(items)))]
        _wait_for_a_worker(ray, actors, options.start_timeout)
        queue = deque(items)
        running: dict[Any, tuple[int, str, Any, float]] = {}  # ref -> actor, id, item, t
        idle = list(range(len(actors)))
        deaths_in_a_row = 0
        ready = [False] * len(actors)
        bar = tqdm(total=len(items), desc=desc, unit="video", disable=not progress)

        def show() -> None:
            bar.set_postfix_str(f"running={len(running)} failed={len(report.failures)}")

        with bar:
            show()
            while queue or running:
                while queue and idle:
                    i = idle.pop()
                    video, item = queue.popleft()
                    report.attempts[video] = report.attempts.get(video, 0) + 1
                    ref = actors[i].run.remote(item)
                    running[ref] = (i, video, item, time.perf_counter())
                show()
                done: list = []
                while not done:  # a timeout, so that Ctrl-C is seen
                    done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                ref = done[0]
                i, video, item, t0 = running.pop(ref)
                try:
                    out = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    # the worker died (killed, out of memory): replace it, retry the video
                    deaths_in_a_row += 1
                    if deaths_in_a_row > max(3, 2 * len(actors)):
                        raise XaiStudyError(f"Ray workers keep dying ({one_line(exc)})") from None
                    actors[i] = new_actor()
                    ready[i] = False
                    idle.append(i)
                    if report.attempts[video] < options.max_attempts:
                        queue.appendleft((video, item))
                    else:
                        msg = f"its worker died {report.attempts[video]} times ({one_line(exc)})"
                        report.failures.append(Failure(video, msg))
                        bar.update(1)
                    continue
                except ray.exceptions.RayError as exc:
                    out = {"result": None, "error": one_line(exc), "seconds": 0.0}
                deaths_in_a_row = 0
                idle.append(i)
                if not ready[i]:
                    ready[i] = True
                    if all(ready):
                        report.startup_seconds = time.perf_counter() - t_run
                else:
                    report.tasks.append((time.perf_counter() - t0, float(out["seconds"])))
                error = out["error"]
                if error is None:
                    error = on_result(video, out["result"])
                if error is None:
                    report.done += 1
                else:
                    report.failures.append(Failure(video, error))
                bar.update(1)
        for a in actors:
            ray.kill(a)
    finally:
        if started:
            ray.shutdown()
    report.seconds = time.perf_counter() - t_run
    return report


def print_failures(failures: Sequence[Failure], file=None) -> None:
    """The failure list at the end of a run (stderr)."""
    file = file or sys.stderr
    if not failures:
        return
    print(f"{len(failures)} video(s) failed:", file=file)
    for f in failures:
        print(f"  {f.video}: {f.error}", file=file)
