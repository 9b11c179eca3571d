"""Answer latency of the survey server, in the three scenarios of issue #20 (item 9),
measured in one run against one fresh server on 127.0.0.1:

- ``idle``: one participant at a time answers the whole survey (the baseline);
- ``think``: N participants at once (default 100), each thinking a mean T seconds
  (default 10; uniform 0.5-1.5 x T) before each section's Q1, then answering Q2;
- ``steady``: answers (Q1 or Q2) sent at a fixed rate (default 30 per second) for D
  seconds, each by a participant that has no request in flight (open loop: a slow
  server does not slow the arrivals).

Every participant is a browser page: one Gradio session for all its calls. A latency
is one Q1 or Q2 request, from the POST to the stored answer's reply. At the end the
database is checked: every answer sent is stored once, as sent, under the participant
who sent it (lost / duplicated / crossed). The load average of the machine is printed
with each scenario (the clients run on the same machine, so a busy machine shows).

    .venv/bin/python benchmarks/bench_survey_latency.py              # all three, ~3 min
    .venv/bin/python benchmarks/bench_survey_latency.py --quick      # smaller, ~1 min

Targets (issue #20): think p95 <= 100 ms, steady p95 <= 250 ms, 0 lost / duplicated /
crossed. Exit status 1 when an answer is lost, duplicated or crossed (the latency
targets are reported, not enforced: they depend on the machine).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from loadtest import OUT, CallFailed, Server, call, check_database, free_port, percentile  # noqa: E402


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user + system) used so far by process ``pid`` (Linux), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


class Page:
    """One participant's browser page: consent, demographics, then one answer at a
    time (``answer()``), attention checks answered on the way."""

    def __init__(self, url: str, k: int, seed: int, checks) -> None:
        self.url, self.k, self.checks = url, k, {c.id: c for c in checks}
        self.rng = random.Random(seed * 100003 + k)
        self.pid = f"BENCH{k:05d}"
        self.session_hash = f"bench{k:05d}{self.rng.getrandbits(48):012x}"
        self.http = requests.Session()
        self.token = ""
        self.code = ""
        self.item = ""
        self.phase = "q1"
        self.sent: dict[str, tuple[str, str | None]] = {}
        self.latencies: list[float] = []
        self.done = False

    def _call(self, api: str, data: list, query: str = "") -> list:
        out = call(self.http, self.url, api, data, query=query, session_hash=self.session_hash)
        msg = out[OUT["message"]]
        if isinstance(msg, str) and msg:
            raise CallFailed(f"participant {self.k}: {api}: {msg}")
        return out

    def _follow(self, out: list) -> None:
        """Where the reply put the page; attention checks are answered at once."""
        while True:
            self.item = out[OUT["item"]] or ""
            if not self.item:
                done = out[OUT["done"]]
                self.code = done.get("value", "") if isinstance(done, dict) else str(done)
                self.done = True
                return
            if self.item in self.checks:
                chk = self.checks[self.item]
                values = [chk.answer if c == self.item else None for c in self.checks]
                out = self._call("check", [self.token, self.item, *values])
                continue
            self.phase = "q2" if self.item in self.sent else "q1"
            return

    def start(self) -> None:
        query = f"?PROLIFIC_PID={self.pid}&STUDY_ID=bench&SESSION_ID=s{self.k}"
        key = f"bench-{self.k:05d}-{self.rng.getrandbits(64):016x}"
        out = self._call("consent", [None, True, key], query=query)
        self.token = out[OUT["token"]]
        out = self._call("demographics", [self.token, "large", self.rng.choice(["yes", "no"])])
        self._follow(out)

    def answer(self) -> None:
        """Send the next answer (Q1 or Q2 of the current section), timed."""
        item = self.item
        if self.phase == "q1":
            value = self.rng.choice(["video1", "video2", "dont_know"])
            self.sent[item] = (value, None)
        else:
            value = self.rng.choice("ABCD")
            self.sent[item] = (self.sent[item][0], value)
        t0 = time.perf_counter()
        out = self._call(self.phase, [self.token, item, value])
        self.latencies.append(time.perf_counter() - t0)
        self._follow(out)


def summary(name: str, pages: list[Page], wall: float, load_before: str) -> dict:
    lat = [x for p in pages for x in p.latencies]
    rate = len(lat) / wall if wall else 0.0
    row = {
        "name": name,
        "answers": len(lat),
        "p50": percentile(lat, 0.5) * 1000,
        "p95": percentile(lat, 0.95) * 1000,
        "rate": rate,
        "wall": wall,
    }
    print(
        f"{name:7s} {len(lat):5d} answers in {wall:5.1f} s ({rate:4.1f}/s): "
        f"p50 {row['p50']:6.0f} ms  p95 {row['p95']:6.0f} ms   [{load_before}; after: {load()}]",
        flush=True,
    )
    return row


def run_idle(url: str, study, n: int, seed: int, offset: int) -> tuple[list[Page], dict]:
    before = load()
    pages = [Page(url, offset + i, seed, study.attention_checks) for i in range(n)]
    t0 = time.perf_counter()
    for page in pages:
        page.start()
        while not page.done:
            page.answer()
    return pages, summary("idle", pages, time.perf_counter() - t0, before)


def run_think(url: str, study, n: int, think: float, seed: int, offset: int):
    before = load()
    pages = [Page(url, offset + i, seed, study.attention_checks) for i in range(n)]

    def one(page: Page) -> None:
        page.start()
        while not page.done:
            if page.phase == "q1":
                time.sleep(page.rng.uniform(0.5, 1.5) * think)  # watching the two videos
            page.answer()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        for fut in [pool.submit(one, p) for p in pages]:
            fut.result()
    return pages, summary("think", pages, time.perf_counter() - t0, before)


def run_steady(url: str, study, rate: float, seconds: float, seed: int, offset: int):
    per_page = 2 * study.sections_shown
    n = int(rate * seconds / per_page * 1.5) + 8  # enough pages that one is always free
    pages = [Page(url, offset + i, seed, study.attention_checks) for i in range(n)]
    with ThreadPoolExecutor(16) as pool:  # not measured: everyone past the demographics
        for fut in [pool.submit(p.start) for p in pages]:
            fut.result()
    before = load()
    free = list(pages)
    lock = threading.Lock()
    errors: list[str] = []
    late = [0]

    def one(page: Page) -> None:
        try:
            page.answer()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(str(exc))
        with lock:
            if not page.done:
                free.append(page)

    total = int(rate * seconds)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(min(256, total)) as pool:
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            with lock:
                page = free.pop(0) if free else None
            if page is None:
                late[0] += 1  # every page busy: the server is far behind
                continue
            pool.submit(one, page)
    wall = time.perf_counter() - t0
    if errors:
        raise CallFailed(errors[0])
    row = summary("steady", pages, wall, before)
    if late[0]:
        print(f"steady: {late[0]} answers not sent (every participant had one in flight)")
    return pages, row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--study", default=str(ROOT / "study_data" / "demo"))
    ap.add_argument("--participants", type=int, default=100, help="think scenario (default 100)")
    ap.add_argument("--think", type=float, default=10.0, help="mean think time, s (default 10)")
    ap.add_argument("--rate", type=float, default=30.0, help="steady answers/s (default 30)")
    ap.add_argument("--seconds", type=float, default=20.0, help="steady duration (default 20)")
    ap.add_argument("--idle", type=int, default=3, help="idle participants, one at a time")
    ap.add_argument("--quick", action="store_true", help="30 think participants, 10 s steady")
    ap.add_argument("--url", default=None, help="a running server (needs --db)")
    ap.add_argument("--db", default=None, help="its database URL")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.participants, args.seconds, args.idle = 30, 10.0, 2
    if args.url and not args.db:
        raise SystemExit("error: --url needs --db (the database the server writes to)")

    from xai_study.study.spec import load_study

    study = load_study(args.study)
    tmp = Path(tempfile.mkdtemp(prefix="xs-bench-"))
    db_url = args.db or f"sqlite:///{tmp / 'bench.sqlite3'}"
    server = None
    if args.url:
        url = args.url.rstrip("/") + "/"
    else:
        server = Server(str(study.root), db_url, free_port(), tmp / "server.log")
        server.start()
        url = server.url
    print(f"survey latency, study '{study.name}' ({study.sections_shown} sections), {url}")
    print(f"start: {load()}", flush=True)
    pid = server.proc.pid if server is not None and server.proc is not None else None

    def measured(run, *run_args):
        """Run a scenario; print the server's CPU time per answer (independent of how
        busy the machine is: what bounds the answers per second on these cores)."""
        before = cpu_seconds(pid)
        pages, row = run(*run_args)
        after = cpu_seconds(pid)
        if before is not None and after is not None and row["answers"]:
            per = (after - before) / sum(len(p.latencies) + 2 for p in pages) * 1000
            print(f"        server CPU per request (answers, consents, checks): {per:.1f} ms")
        return pages, row

    try:
        pages_i, idle = measured(run_idle, url, study, args.idle, args.seed, 0)
        pages_t, think = measured(
            run_think, url, study, args.participants, args.think, args.seed, 1000
        )
        pages_s, steady = measured(run_steady, url, study, args.rate, args.seconds, args.seed, 5000)
    finally:
        if server is not None:
            server.kill()
    complete = check_database(db_url, study, pages_i + pages_t)
    partial = check_database(db_url, study, pages_s, complete=False)
    lost = complete["lost"] + partial["lost"]
    dup = complete["duplicated"] + partial["duplicated"]
    crossed = complete["crossed"] + partial["crossed"]
    sent = complete["sent"] + partial["sent"]
    stored = complete["stored"] + partial["stored"]
    print(
        f"sections sent {sent}, stored {stored}: lost {lost}, duplicated {dup}, crossed {crossed}"
    )
    for problem in (complete["problems"] + partial["problems"])[:10]:
        print(f"FAIL {problem}")
    ok_think = think["p95"] <= 100
    ok_steady = steady["p95"] <= 250
    print(
        f"targets: think p95 {think['p95']:.0f} ms <= 100 ms: {'yes' if ok_think else 'NO'}; "
        f"steady {args.rate:g}/s p95 {steady['p95']:.0f} ms <= 250 ms: "
        f"{'yes' if ok_steady else 'NO'}; idle p95 {idle['p95']:.0f} ms"
    )
    print(f"end: {load()}")
    bad = lost or dup or crossed or complete["problems"] or partial["problems"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
