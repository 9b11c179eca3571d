"""Load test of the survey: N simulated participants at once over the server's HTTP API.

Starts ``xai-study serve`` (one or more processes on one database), runs N participants
concurrently through the same endpoints the browser uses (consent -> demographics ->
every section -> attention checks -> completion code), optionally double-submitting
answers (double clicks) and killing + restarting the servers half way, then checks the
database: every answer of every participant present, none duplicated, none crossed
between participants (each stored answer is the one that participant sent). Prints the
answer-save latency (median, p95) and exits 1 on any failure.

    .venv/bin/python scripts/loadtest.py                       # 100 participants, demo study
    .venv/bin/python scripts/loadtest.py -n 100 --kill-restart --double-submit 0.2
    .venv/bin/python scripts/loadtest.py --db postgresql+psycopg://u@host/db --servers 2
    .venv/bin/python scripts/loadtest.py --url http://host:7860/ --db URL   # running server
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = {"token": 1, "item": 2, "message": 4, "done": -1}


class CallFailed(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One ``xai-study serve`` subprocess."""

    def __init__(self, study: str, db: str, port: int, log: Path) -> None:
        self.study, self.db, self.port, self.log = study, db, port, log
        self.url = f"http://127.0.0.1:{port}/"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 300) -> None:
        cmd = [sys.executable, "-m", "xai_study", "serve", "--study", self.study, "--db", self.db]
        cmd += ["--port", str(self.port), "--concurrency", "32"]
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=ROOT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"error: server exited: see {self.log}")
            try:
                if requests.get(self.url + "gradio_api/info", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.kill()  # no orphan server left behind
        raise SystemExit(f"error: server did not start in {timeout:.0f} s: see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def call(
    session: requests.Session,
    url: str,
    api: str,
    data: list,
    retry_s: float = 90,
    query: str = "",
    session_hash: str | None = None,
    wait_s: float = 300,
):
    """POST /gradio_api/call/<api>, read the result stream; retry while the server is
    down (a kill/restart), since every endpoint is idempotent. ``session_hash``: the
    Gradio session the call belongs to, as a browser page sends it (one per page load;
    None: a new session per call). A call with no result after ``wait_s`` seconds in
    all fails (the stream's heartbeats would otherwise keep it waiting for ever)."""
    deadline = time.time() + retry_s
    give_up = time.time() + wait_s
    body: dict = {"data": data}
    if session_hash:
        body["session_hash"] = session_hash
    while True:
        try:
            r = session.post(f"{url}gradio_api/call/{api}{query}", json=body, timeout=60)
            r.raise_for_status()
            event = r.json()["event_id"]
            with session.get(f"{url}gradio_api/call/{api}/{event}", stream=True, timeout=120) as s:
                kind = None
                for raw in s.iter_lines(decode_unicode=True):
                    if time.time() > give_up:
                        raise CallFailed(f"{api}: no result in {wait_s:.0f} s")
                    if raw.startswith("event:"):
                        kind = raw.split(":", 1)[1].strip()
                    elif raw.startswith("data:") and kind in ("complete", "error"):
                        payload = raw.split(":", 1)[1].strip()
                        if kind == "error" and "404" in payload:
                            # the server restarted between the POST and this stream: the
                            # new process does not know the event; send it again (every
                            # endpoint is idempotent), as a reconnecting page would
                            raise requests.ConnectionError(f"event lost: {payload}")
                        if kind == "error":
                            raise CallFailed(f"{api}: server error {payload}")
                        return json.loads(payload)
            raise requests.ConnectionError("stream ended without a result")
        except requests.RequestException as exc:  # server down or restarting: retry
            if time.time() > min(deadline, give_up):
                raise CallFailed(f"{api}: {exc}") from exc
            time.sleep(0.5)


def call_twice(
    url: str,
    api: str,
    data: list,
    session_hash: str,
    retry_s: float = 90,
    wait_s: float = 300,
) -> list:
    """A double click as a browser page sends it: the same event submitted twice at once
    in one Gradio session, both results read from that session's one message stream
    (``/queue/data``), matched by event id. Returns both outputs.

    Two ``/call`` streams on one session would not do: Gradio's ``/call/<api>/<event>``
    stream reads the whole session's messages, so one stream can take the other's
    result, and when the first client closes its stream the server cancels the
    session's other events. A browser never opens two streams for one page."""
    deadline = time.time() + retry_s
    give_up = time.time() + wait_s
    body = {"data": data, "session_hash": session_hash}
    while True:
        try:
            s = requests.Session()
            with ThreadPoolExecutor(2) as pool:
                posts = [
                    pool.submit(s.post, f"{url}gradio_api/call/{api}", json=body, timeout=60)
                    for _ in range(2)
                ]
                responses = [f.result() for f in posts]
            for r in responses:
                r.raise_for_status()
            waiting = {r.json()["event_id"] for r in responses}
            results: dict[str, list] = {}
            stream = f"{url}gradio_api/queue/data"
            with s.get(
                stream, params={"session_hash": session_hash}, stream=True, timeout=120
            ) as st:
                for raw in st.iter_lines(decode_unicode=True):
                    if time.time() > give_up:
                        raise CallFailed(f"{api} (double): no result in {wait_s:.0f} s")
                    if not raw.startswith("data:"):
                        continue
                    msg = json.loads(raw.split(":", 1)[1])
                    if msg.get("msg") == "unexpected_error":
                        # a restarted server does not know the session: send both again
                        raise requests.ConnectionError(f"session lost: {msg.get('message')}")
                    if msg.get("msg") != "process_completed" or msg.get("event_id") not in waiting:
                        continue
                    if not msg.get("success"):
                        raise CallFailed(f"{api} (double): server error {msg.get('output')}")
                    results[msg["event_id"]] = msg["output"]["data"]
                    if len(results) == len(waiting):
                        return list(results.values())
            raise requests.ConnectionError("stream ended before both results")
        except requests.RequestException as exc:  # server down or restarting: retry
            if time.time() > min(deadline, give_up):
                raise CallFailed(f"{api} (double): {exc}") from exc
            time.sleep(0.5)


class Participant:
    def __init__(self, k: int, rng: random.Random, double: float, think: float = 0.0) -> None:
        self.k = k
        self.think = think
        self.pid = f"LOAD{k:05d}"
        self.rng = rng
        self.double = double
        self.sent: dict[str, tuple[str, str]] = {}
        self.checks: dict[str, str] = {}
        self.latencies: list[float] = []
        self.token = ""
        self.code = ""
        # one Gradio session per participant, as one page load of a browser has
        self.session_hash = f"load{k:05d}{rng.getrandbits(48):012x}"

    def run(self, urls: list[str], checks, gate: threading.Event | None, at_half) -> None:
        s = requests.Session()
        url = urls[self.k % len(urls)]
        # recruiting-platform parameters, as in a Prolific link (recorded from the query)
        query = f"?PROLIFIC_PID={self.pid}&STUDY_ID=load&SESSION_ID=s{self.k}"
        # a consent key, as the page sends it: a retried consent (reply lost while the
        # server restarts) finds the participant it made instead of being refused
        key = f"load-{self.k:05d}-{self.rng.getrandbits(64):016x}"
        out = call(
            s, url, "consent", [None, True, key], query=query, session_hash=self.session_hash
        )
        self.token = out[OUT["token"]]
        if not isinstance(self.token, str) or not self.token:
            raise CallFailed(f"participant {self.k}: consent failed: {out[OUT['message']]}")
        out = call(
            s,
            url,
            "demographics",
            [self.token, "large", self.rng.choice(["yes", "no"])],
            session_hash=self.session_hash,
        )
        answered = 0
        while True:
            item = out[OUT["item"]]
            msg = out[OUT["message"]]
            if isinstance(msg, str) and msg:
                raise CallFailed(f"participant {self.k}: {msg}")
            if not item:
                break
            if item.startswith("ac"):
                chk = next(c for c in checks if c.id == item)
                self.checks[item] = chk.answer
                values = [chk.answer if c.id == item else None for c in checks]
                out = call(
                    s, url, "check", [self.token, item, *values], session_hash=self.session_hash
                )
                continue
            if self.think:
                time.sleep(self.rng.uniform(0.5, 1.5) * self.think)  # watching the videos
            q1 = self.rng.choice(["video1", "video2", "dont_know"])
            q2 = self.rng.choice("ABCD")
            self.sent[item] = (q1, q2)
            double = self.rng.random() < self.double
            for api, value in (("q1", q1), ("q2", q2)):
                t0 = time.perf_counter()
                if double:  # a double click: the same request twice at once
                    outs = call_twice(url, api, [self.token, item, value], self.session_hash)
                    out = next((o for o in outs if not o[OUT["message"]]), outs[0])
                else:
                    out = call(
                        s, url, api, [self.token, item, value], session_hash=self.session_hash
                    )
                self.latencies.append(time.perf_counter() - t0)
                if out[OUT["message"]]:
                    raise CallFailed(f"participant {self.k}: {api}: {out[OUT['message']]}")
            answered += 1
            if at_half is not None and answered == 2:
                at_half()
                if gate is not None:
                    gate.wait(180)
        done = out[OUT["done"]]
        text = done.get("value", "") if isinstance(done, dict) else str(done)
        self.code = text


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values`` (nearest rank; nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def check_database(db_url: str, study, people, complete: bool = True) -> dict:
    """Compare what ``people`` sent with what the database stored: every sent answer
    present (``lost``), none twice (``duplicated``), each equal to what that
    participant sent and each participant's platform id their own (``crossed``); with
    ``complete`` every participant must also have finished with the completion code.
    ``people[i].sent`` maps section -> (q1, q2), q2 None for a section left after Q1."""
    from xai_study.study.db import Database

    db = Database(db_url)
    frame = db.responses_frame(study.name)
    parts = db.participants_frame(study.name)
    by_token = {p.token: db.participant_by_token(p.token) for p in people if p.token}
    mine = frame[frame["participant_id"].isin([par.id for par in by_token.values() if par])]
    duplicated = int(mine.duplicated(["participant_id", "section"]).sum())
    problems: list[str] = []
    if duplicated:
        problems.append("duplicated answers")
    lost = crossed = 0
    for p in people:
        par = by_token.get(p.token)
        if par is None:
            lost += len(p.sent)
            continue
        rows = mine[mine["participant_id"] == par.id].set_index("section")
        if par.prolific_pid != p.pid:
            crossed += 1
        for section, (q1, q2) in p.sent.items():
            if section not in rows.index:
                lost += 1
                continue
            row = rows.loc[section]
            stored_q2 = row["q2_position"] if isinstance(row["q2_position"], str) else None
            if row["q1_answer"] != q1:
                crossed += 1
            elif stored_q2 != q2:
                lost += q2 is not None and stored_q2 is None
                crossed += stored_q2 is not None
        extra = set(rows.index) - set(p.sent)
        if extra:
            problems.append(f"participant {p.k}: {len(extra)} answers stored that were not sent")
        if not complete:
            continue
        if len(rows) != study.sections_shown:
            problems.append(
                f"participant {p.k}: {len(rows)} answers stored, {study.sections_shown} expected"
            )
        if study.completion_code not in p.code:
            problems.append(f"participant {p.k}: no completion code")
        if par.status != "completed":
            problems.append(f"participant {p.k}: status {par.status}")
    dup_pids = parts["prolific_pid"].dropna().duplicated().sum()
    if dup_pids:
        problems.append(f"{dup_pids} participants created twice")
    return {
        "sent": sum(len(p.sent) for p in people),
        "stored": len(mine),
        "rows": mine,
        "lost": int(lost),
        "duplicated": duplicated,
        "crossed": int(crossed),
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "-n", "--participants", type=int, default=100, help="simulated participants (default 100)"
    )
    ap.add_argument(
        "--study", default="study_data/demo", help="study folder (default study_data/demo)"
    )
    ap.add_argument(
        "--db", default=None, help="database URL (default: a fresh SQLite file in a temp folder)"
    )
    ap.add_argument(
        "--url", default=None, help="use this running server instead of starting one (needs --db)"
    )
    ap.add_argument(
        "--servers", type=int, default=1, help="server processes sharing the database (default 1)"
    )
    ap.add_argument(
        "--double-submit",
        type=float,
        default=0.1,
        help="share of answers sent twice at once (default 0.1)",
    )
    ap.add_argument(
        "--kill-restart", action="store_true", help="SIGKILL and restart the servers half way"
    )
    ap.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a participant spends on a section before answering (default 0: "
        "worst case, all answers at once)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--workdir", default=None, help="folder for the server logs (default: a new temp folder)"
    )
    args = ap.parse_args(argv)

    from xai_study.study.db import Database
    from xai_study.study.spec import load_study

    study = load_study(args.study)
    if args.workdir:
        tmp = Path(args.workdir)
        tmp.mkdir(parents=True, exist_ok=True)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="xs-load-"))
    db_url = args.db or f"sqlite:///{tmp / 'load.sqlite3'}"
    if args.url and not args.db:
        raise SystemExit("error: --url needs --db (the database the server writes to)")
    servers: list[Server] = []
    if args.url:
        urls = [args.url.rstrip("/") + "/"]
    else:
        for i in range(args.servers):
            servers.append(Server(str(study.root), db_url, free_port(), tmp / f"server{i}.log"))
        for srv in servers:
            srv.start()
        urls = [srv.url for srv in servers]
    print(f"{args.participants} participants on {len(urls)} server(s), db {db_url.split('@')[-1]}")

    gate = threading.Event() if args.kill_restart else None
    lock = threading.Lock()
    reached = [0]
    restarted = {"done": False, "answers_before": 0}

    def at_half() -> None:
        with lock:
            reached[0] += 1
            if gate is None or reached[0] != max(1, args.participants // 2) or not servers:
                return
        # half the participants are past their 2nd answer: kill every server, restart
        restarted["answers_before"] = len(Database(db_url).responses_frame(study.name))
        for srv in servers:
            srv.kill()
        print(f"killed the server(s) with {restarted['answers_before']} answers stored; restarting")
        for srv in servers:
            srv.start()
        restarted["done"] = True
        gate.set()

    people = [
        Participant(k, random.Random(args.seed * 100003 + k), args.double_submit, args.think)
        for k in range(args.participants)
    ]
    errors: list[str] = []
    t0 = time.time()
    from tqdm import tqdm

    with (
        ThreadPoolExecutor(args.participants) as pool,
        tqdm(total=len(people), desc="participants", file=sys.stderr) as bar,
    ):
        futs = [
            pool.submit(
                p.run, urls, study.attention_checks, gate, at_half if args.kill_restart else None
            )
            for p in people
        ]
        timer = threading.Timer(240, gate.set) if gate is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()  # never wait forever
        for f in futs:
            try:
                f.result()
            except Exception as exc:  # noqa: BLE001 - collected and reported
                errors.append(str(exc))
            bar.update()
    wall = time.time() - t0
    if timer is not None:
        timer.cancel()
    for srv in servers:
        srv.kill()

    result = check_database(db_url, study, people)
    problems = list(errors) + result["problems"]
    lost, crossed, mine = result["lost"], result["crossed"], result["rows"]
    expected = result["sent"]
    lat = sorted(x for p in people for x in p.latencies)
    med = statistics.median(lat) * 1000 if lat else float("nan")
    p95 = percentile(lat, 0.95) * 1000
    print(f"participants: {len(people)} sent answers: {expected} stored answers: {len(mine)}")
    print(f"lost: {lost} duplicated: {result['duplicated']} crossed: {crossed}")
    if args.kill_restart:
        print(
            f"kill-restart: {'done' if restarted['done'] else 'NOT DONE'}, answers stored before the kill: {restarted['answers_before']}"
        )
        if not restarted["done"] and servers:
            problems.append("kill-restart did not happen")
    print(
        f"answer-save latency (each of Q1 and Q2): median {med:.0f} ms, p95 {p95:.0f} ms ({len(lat)} answers, {wall:.1f} s wall)"
    )
    if lost or crossed or problems:
        for msg in problems[:20]:
            print(f"FAIL {msg}")
        print("FAILED")
        return 1
    print("OK: nothing lost, duplicated or crossed")
    return 0


if __name__ == "__main__":
    from xai_study.errors import XaiStudyError

    try:
        raise SystemExit(main())
    except XaiStudyError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None
