"""Per-video work on Ray (``evaluate --workers N``, batch ``detect``): the same table as a
sequential run, a killed worker's video retried, bad videos listed, resumable; the
results CSV under concurrent writers; Ray not imported without the options.

The Ray tests share one local Ray cluster (2 CPUs) started by a module fixture; the
runner uses a cluster that is already up, as with ``--ray auto``."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import xai_study.runs.evaluate as ev
from xai_study.errors import XaiStudyError
from xai_study.runs import presets
from xai_study.runs.cluster import ClusterOptions, parse_shard, take_shard
from xai_study.runs.results import ResultsTable

REGION = (0.15, 0.55, 0.45, 0.9)
EXPLAINERS = ["gradcam", "bonettini"]


@pytest.fixture
def tiny(tmp_path, monkeypatch, short_face_video, no_face_video):
    """A labels file of 4 good videos, one without a face and one unreadable, a tiny
    preset and toy detectors (64 px)."""
    from xai_study.explainers.toys import make_region_detector

    monkeypatch.setitem(
        presets.PRESETS, "fast", {**presets.PRESETS["fast"], "frames": 4, "size": 64}
    )
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    rows = [f"fake{i},{short_face_video},fake" for i in (1, 2)]
    rows += [f"real{i},{short_face_video},real" for i in (1, 2)]
    rows += [f"noface,{no_face_video},fake", f"broken,{broken},real"]
    csv = tmp_path / "labels.csv"
    csv.write_text("id,path,label\n" + "\n".join(rows) + "\n")
    detectors = {
        a: make_region_detector(a, input_size=64, region=REGION) for a in ("plain", "bonettini")
    }
    return csv, detectors


def _table(path):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return df.drop(columns="seconds").sort_values(["video", "explainer"]).reset_index(drop=True)


def _number(text):
    try:
        return float(text)
    except ValueError:
        return None


def assert_same_table(a, b, rtol=1e-5):
    """Equal tables: text cells exactly, number cells to ``rtol``. A worker runs torch on
    fewer threads than the driver, so a sum can round differently in the last digit."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for col in a.columns:
        for i, (x, y) in enumerate(zip(a[col], b[col], strict=True)):
            fx, fy = _number(x), _number(y)
            if fx is None or fy is None:
                assert x == y, f"{col}[{i}]: {x!r} != {y!r}"
            else:
                assert fx == pytest.approx(fy, rel=rtol, abs=1e-9), f"{col}[{i}]: {x} != {y}"


@pytest.fixture(scope="module")
def ray_cluster():
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed")
    # imported by the runner (before any `import ray` here): it turns off Ray's `uv run`
    # worker hook, which CI (the suite runs under `uv run`) exercises
    from xai_study.runs.cluster import _import_ray, init_ray

    ray = _import_ray()
    init_ray(ClusterOptions(workers=2, threads=1))

    @ray.remote(num_cpus=1)
    def pid() -> int:
        return os.getpid()

    try:  # a worker process starts: else fail here, with why, instead of hanging later
        ray.get(pid.remote(), timeout=180)
    except ray.exceptions.GetTimeoutError:
        from ray._private.worker import global_worker

        log = Path(global_worker.node.get_logs_dir_path()) / "raylet.err"
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        ray.shutdown()
        pytest.fail(f"the local Ray cluster started no worker in 180 s; raylet.err:\n{tail}")
    yield ray
    ray.shutdown()


KW = dict(steps=2, n_boot=50, progress=False)

# The Ray end-to-end tests run in an interpreter of their own, as a command would: Ray's
# services, signal handlers and worker processes stay out of the suite's process. (They
# once failed only inside the suite: it runs under `uv run`, and Ray's `uv run` hook made
# every new worker die at start; xai_study.runs.cluster now turns that hook off, and the
# child inherits the suite's `uv run` ancestry, so the driver below checks that too.)
RAY_CHILD = os.environ.get("XAI_STUDY_RAY_CHILD") == "1"
in_fresh_process = pytest.mark.skipif(
    not RAY_CHILD, reason="run in a fresh interpreter by test_ray_end_to_end_tests"
)


@pytest.mark.slow
@pytest.mark.skipif(RAY_CHILD, reason="this is the driver of the Ray end-to-end tests")
def test_ray_end_to_end_tests():
    pytest.importorskip("ray")
    env = {**os.environ, "XAI_STUDY_RAY_CHILD": "1"}
    cmd = [sys.executable, "-m", "pytest", __file__, "-m", "slow", "-q", "-p", "no:cacheprovider"]
    # each child test has its own timeout (below), so a hang fails with its traceback
    cmd += ["--timeout", "240", "-o", "timeout_method=thread", "-rA"]
    # a process group of its own: a child that runs too long is killed with its Ray
    # services and workers, so nothing is left running for the rest of the suite
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=850)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the Ray end-to-end tests ran past 850 s:\n{(stdout + stderr)[-4000:]}")
    finally:  # whatever the child left behind (a child stopped by its test timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    tail = (stdout + stderr)[-6000:]
    assert proc.returncode == 0, tail
    assert "5 passed" in stdout, tail


@pytest.mark.slow
@in_fresh_process
def test_two_workers_give_the_sequential_table(tmp_path, tiny, ray_cluster, capfd):
    csv, detectors = tiny
    seq = ev.evaluate(csv, EXPLAINERS, tmp_path / "seq", detectors=detectors, **KW)
    reports = []
    par = ev.evaluate(
        csv,
        EXPLAINERS,
        tmp_path / "par",
        detectors=detectors,
        cluster=ClusterOptions(workers=2),
        on_report=reports.append,
        **KW,
    )
    a, b = _table(seq["per_video"]), _table(par["per_video"])
    assert len(a) == 12 and list(b.columns) == list(a.columns)
    assert_same_table(a, b)
    assert (tmp_path / "seq" / "summary.md").read_text() == (
        tmp_path / "par" / "summary.md"
    ).read_text()
    (report,) = reports
    assert report.workers == 2 and report.threads == 1 and report.done == 4
    assert sorted(f.video for f in report.failures) == ["broken", "noface"]
    err = capfd.readouterr().err
    assert "2 video(s) failed:" in err and "  noface: no face" in err


@pytest.mark.slow
@in_fresh_process
def test_a_killed_worker_has_its_video_retried_and_a_rerun_recomputes_nothing(
    tmp_path, tiny, ray_cluster
):
    csv, detectors = tiny
    markers = tmp_path / "markers"
    markers.mkdir()
    plain = detectors["plain"]

    class Slow(type(plain)):  # a local class: Ray ships it by value to the workers
        def forward(self, x):
            (markers / f"{os.getpid()}-{time.monotonic_ns()}").touch()
            time.sleep(0.05)
            return super().forward(x)

    plain.__class__ = Slow
    killed: list[int] = []

    def kill_the_first_busy_worker():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            for f in markers.iterdir():
                pid = int(f.name.split("-")[0])
                if pid != os.getpid():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_first_busy_worker, daemon=True)
    killer.start()
    reports = []
    out = tmp_path / "out"
    run = dict(detectors=detectors, cluster=ClusterOptions(workers=2), on_report=reports.append)
    paths = ev.evaluate(csv, EXPLAINERS, out, **run, **KW)
    killer.join(timeout=5)
    assert killed, "no worker was killed"
    (report,) = reports
    retried = [v for v, n in report.attempts.items() if n > 1]
    assert len(retried) == 1 and report.attempts[retried[0]] == 2
    assert sum(report.attempts.values()) == 6 + 1
    assert report.done == 4 and sorted(f.video for f in report.failures) == ["broken", "noface"]
    df = pd.read_csv(paths["per_video"], dtype={"error": str})
    assert len(df) == 12 and not df.duplicated(["video", "explainer"]).any()
    good = df[~df.video.isin(["noface", "broken"])]
    assert good.error.isna().all() and good.V.notna().all()
    assert df[df.video == "noface"].error.str.contains("no face").all()
    assert df[df.video == "broken"].error.notna().all()

    # finished videos (and the bad ones, recorded with their error) are never recomputed
    n_markers, before = len(list(markers.iterdir())), paths["per_video"].read_bytes()
    ev.evaluate(csv, EXPLAINERS, out, **run, **KW)
    assert reports[1].attempts == {} and len(list(markers.iterdir())) == n_markers
    assert paths["per_video"].read_bytes() == before


def test_without_the_options_ray_is_not_imported(tmp_path, short_face_video):
    csv = tmp_path / "labels.csv"
    csv.write_text(f"id,path,label\nfake1,{short_face_video},fake\n")
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from xai_study.cli import main
        from xai_study.explainers.toys import make_region_detector
        from xai_study.runs import presets
        from xai_study.runs.evaluate import evaluate
        presets.PRESETS["fast"] = {{**presets.PRESETS["fast"], "frames": 2, "size": 64}}
        det = make_region_detector("plain", input_size=64)
        evaluate(Path({str(csv)!r}), ["gradcam"], Path({str(tmp_path / "o")!r}), steps=0, n_boot=10,
                 progress=False, detectors={{"plain": det}})
        for args in (["evaluate", "--help"], ["detect", "--help"], ["build-study", "--help"]):
            try:
                main(args)
            except SystemExit:
                pass
        assert "ray" not in sys.modules, "ray was imported"
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


@pytest.mark.slow
@in_fresh_process
def test_workers_the_cluster_cannot_place_are_an_error_not_a_hang(tmp_path, tiny, ray_cluster):
    csv, detectors = tiny
    # 4 CPUs per worker on a 2-CPU cluster: Ray can never start one
    cluster = ClusterOptions(workers=1, threads=4, start_timeout=3)
    t0 = time.monotonic()
    with pytest.raises(
        XaiStudyError, match=r"no Ray worker was up after 3 s \(free on the cluster: CPU 2"
    ):
        ev.evaluate(csv, EXPLAINERS, tmp_path / "o", detectors=detectors, cluster=cluster, **KW)
    assert time.monotonic() - t0 < 60
    # the cluster is left as it was: the next run gets its CPUs
    deadline = time.monotonic() + 30
    while ray_cluster.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray_cluster.available_resources().get("CPU") == 2


@pytest.mark.slow
@in_fresh_process
def test_batch_detect_on_two_workers_gives_the_sequential_table(tmp_path, tiny, ray_cluster):
    from xai_study.runs.detect import DETECT_COLUMNS, detect_labels

    csv, _ = tiny
    kw = dict(model="plain", frames=4, progress=False)
    seq = detect_labels(csv, tmp_path / "seq.csv", **kw)
    par = detect_labels(csv, tmp_path / "par.csv", cluster=ClusterOptions(workers=2), **kw)
    a, b = (
        pd.read_csv(p, dtype=str, keep_default_na=False).sort_values("video").reset_index(drop=True)
        for p in (seq.out, par.out)
    )
    assert list(a.columns) == DETECT_COLUMNS and len(a) == 6
    assert_same_table(a, b)
    assert sorted(f.video for f in par.failures) == ["broken", "noface"]
    assert par.report.workers == 2 and par.report.done == 4
    good = a[a.error == ""]
    assert len(good) == 4 and good.p_fake.astype(float).between(0, 1).all()
    # resumable: a rerun scores nothing
    again = detect_labels(csv, tmp_path / "par.csv", cluster=ClusterOptions(workers=2), **kw)
    assert again.report.attempts == {} and len(again.rows) == 6


@pytest.mark.slow
@in_fresh_process
def test_build_study_on_two_workers_gives_the_sequential_study(tmp_path, tiny, ray_cluster):
    from xai_study.study.build import build_study
    from xai_study.study.spec import load_study

    csv, detectors = tiny
    # 3 sections asked for, from 3 fakes of which one has no face: 2 built, noface skipped
    kw = dict(sections=3, models=detectors, explainers=["gradcam", "bonettini"],
              num_frames=4, split=None, progress=False, seed=3)  # fmt: skip
    seq = build_study(csv, tmp_path / "seq", **kw)
    par = build_study(csv, tmp_path / "par", cluster=ClusterOptions(workers=2), **kw)
    assert seq.sections == par.sections == 2
    assert [x.video_id for x in par.skipped if x.role == "fake"] == ["noface"]
    assert [(x.role, x.video_id) for x in seq.skipped] == [
        (x.role, x.video_id) for x in par.skipped
    ]
    a, b = (load_study(tmp_path / d) for d in ("seq", "par"))

    def content(study):  # media names are salted per build; everything else is equal
        return [
            (s.video_id, s.real_video_id, {k: v for k, v in s.meta.items() if k != "seconds"})
            for s in study.sections
        ]

    assert content(a) == content(b)
    assert all((tmp_path / "par" / s.fake).is_file() for s in b.sections)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give a video file"),
        (["v.mp4", "--labels", "l.csv"], "not both"),
        (["--labels", "l.csv"], "needs --out"),
        (["--labels", "l.csv", "--out", "o.csv", "--json"], "--json is for one video"),
        (["v.mp4", "--workers", "2"], "go with --labels"),
        (["--labels", "l.csv", "--out", "o.csv", "--threads-per-worker", "2"], "go with --workers"),
        (["--labels", "l.csv", "--out", "o.csv", "--workers", "0"], "at least 1"),
    ],
)
def test_detect_argument_errors(args, message, capsys):
    from xai_study.cli import main

    assert main(["detect", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_workers_must_be_positive(tmp_path, tiny):
    csv, detectors = tiny
    with pytest.raises(XaiStudyError, match="--workers must be at least 1"):
        ev.evaluate(
            csv,
            EXPLAINERS,
            tmp_path / "o",
            detectors=detectors,
            cluster=ClusterOptions(workers=0),
            **KW,
        )


def test_without_ray_installed_the_options_are_a_one_line_error(tmp_path, tiny, monkeypatch):
    csv, detectors = tiny
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(XaiStudyError, match=r"need Ray: pip install 'xai-study\[cluster\]'"):
        ev.evaluate(
            csv,
            EXPLAINERS,
            tmp_path / "o",
            detectors=detectors,
            cluster=ClusterOptions(workers=2),
            **KW,
        )


# --- the results CSV ----------------------------------------------------------------------


COLUMNS = ["video", "explainer", "value"]


def _append(path, worker: int, n: int) -> None:
    with ResultsTable(path, COLUMNS, ("video", "explainer")) as table:
        for i in range(n):
            # every writer writes the shared rows too: they must appear once
            table.write_rows(
                [
                    {"video": f"w{worker}-{i}", "explainer": "e", "value": "x" * 200},
                    {"video": f"shared-{i}", "explainer": "e", "value": "1"},
                ]
            )


def test_results_table_under_concurrent_writers(tmp_path):
    path = tmp_path / "t.csv"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append, args=(path, w, 60)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    df = pd.read_csv(path, dtype=str)
    assert list(df.columns) == COLUMNS
    assert len(df) == 3 * 60 + 60 and not df.duplicated(["video", "explainer"]).any()
    assert (df[df.video.str.startswith("w")].value == "x" * 200).all()
    assert ResultsTable(path, COLUMNS, ("video", "explainer")).done == {(v, "e") for v in df.video}


def test_results_table_drops_a_row_cut_short_and_checks_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"video,explainer,value\r\na,e,1\r\nb,e,2")  # b: killed mid-row
    table = ResultsTable(path, COLUMNS, ("video", "explainer"))
    assert table.done == {("a", "e")}
    with table:
        table.write_rows([{"video": "b", "explainer": "e", "value": 3}])
    assert path.read_bytes() == b"video,explainer,value\r\na,e,1\r\nb,e,3\r\n"
    with pytest.raises(XaiStudyError, match="different columns"):
        ResultsTable(path, ["video", "other"], ("video",))


@pytest.mark.parametrize(
    "text, expected", [(None, None), ("1/1", (1, 1)), ("2/3", (2, 3)), (" 3/3", (3, 3))]
)
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/b", "2", "1/2/3"])
def test_parse_shard_errors(text):
    with pytest.raises(XaiStudyError, match="--shard"):
        parse_shard(text)


def test_shards_are_disjoint_and_cover_the_list():
    items = list(range(11))
    parts = [take_shard(items, (i, 3)) for i in (1, 2, 3)]
    assert sorted(sum(parts, [])) == items and parts[0] == [0, 3, 6, 9]
