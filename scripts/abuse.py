"""Abuse and fault test of the study server (issue 20): every attack on a server of its
own on 127.0.0.1, bounded in requests and time, then one PASS/FAIL line per case with a
figure. Exits 1 when a case fails.

    .venv/bin/python scripts/abuse.py                         # every case, demo study
    .venv/bin/python scripts/abuse.py --flood 2500            # the launch-day flood size
    .venv/bin/python scripts/abuse.py --cases takeover,admin  # some cases
    .venv/bin/python scripts/abuse.py --list

Cases: takeover (a PROLIFIC_PID without its token), consent-retry (no orphans),
demo-flood (N demo requests never read), unread-flood (N survey requests never read:
Gradio's 2,000-session cache), admin (password guessing, /gradio_api/run/), body (1 MB
bodies), decode-bomb (an 8192x8192 video of a few hundred KB), uploads (types, per
client), errors (paths and echoes), restart (kill -9 mid-study, restart, resume without
a PROLIFIC_PID), kill9 (kill -9 with 10 participants answering at once: nothing lost,
duplicated, crossed or orphaned; runs scripts/loadtest.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from loadtest import Server, call, free_port  # noqa: E402

OUT = {"token": 1, "item": 2, "message": 4, "key": -2, "done": -1}
FAST = [
    "takeover",
    "consent-retry",
    "demo-flood",
    "unread-flood",
    "admin",
    "body",
    "uploads",
    "errors",
]
SLOW = ["decode-bomb", "restart", "kill9"]
ALL = FAST[:-2] + ["decode-bomb"] + FAST[-2:] + SLOW[1:]  # bomb before the upload limit


class Ctx:
    """The server under test and what the cases share."""

    def __init__(self, server: Server, study: str, db_url: str, flood: int, tmp: Path):
        self.server, self.study, self.db_url, self.flood, self.tmp = (
            server,
            study,
            db_url,
            flood,
            tmp,
        )

    @property
    def url(self) -> str:
        return self.server.url

    def fn_index(self, api_name: str) -> int:
        cfg = requests.get(self.url + "config", timeout=30).json()
        for k, dep in enumerate(cfg["dependencies"]):
            if dep.get("api_name") == api_name:
                return int(dep.get("id", k))
        raise LookupError(f"no endpoint {api_name}")

    def join(self, fn_index: int, data: list, session: str) -> requests.Response:
        body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None}
        return requests.post(self.url + "gradio_api/queue/join", json=body, timeout=60)

    def rss_mb(self) -> float:
        pid = self.server.proc.pid if self.server.proc else None
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")


def _strings(value) -> str:
    return json.dumps(value)


# -- the cases: each returns (passed, figure) ----------------------------------------------
def case_takeover(c: Ctx) -> tuple[bool, str]:
    link = "?PROLIFIC_PID=abuse-victim&STUDY_ID=st&SESSION_ID=se"
    s = requests.Session()
    tok = call(s, c.url, "consent", [None, True, "victim-consent-key-0001"], query=link)[1]
    call(s, c.url, "demographics", [tok, "large", "yes"])
    attacks = [
        ("resume", [None, None]),
        ("resume", ["forged-token", "forged-consent-key-01"]),
        ("consent", [None, True, None]),
        ("consent", [None, True, "attacker-consent-key-1"]),
        ("withdraw", [None, True]),
        ("withdraw", ["forged-token", True]),
    ]
    leaked = 0
    for api, data in attacks:
        out = call(s, c.url, api, data, query=link)
        if tok in _strings(out) or (isinstance(out[1], str) and out[1]):
            leaked += 1
    still = call(s, c.url, "resume", [tok, None], query=link)
    ok = leaked == 0 and still[1] == tok and not still[OUT["message"]]
    return ok, f"{leaked} of {len(attacks)} attacker calls got a token or data; victim unharmed"


def case_consent_retry(c: Ctx) -> tuple[bool, str]:
    from xai_study.study.db import Database

    db = Database(c.db_url)
    before = len(db.participants_frame())
    s = requests.Session()
    key = call(s, c.url, "resume", [None, None])[OUT["key"]]
    tokens = {call(s, c.url, "consent", [None, True, key])[1] for _ in range(3)}
    tokens.add(call(s, c.url, "resume", [None, key])[1])  # reload after a lost reply
    made = len(db.participants_frame()) - before
    ok = made == 1 and len(tokens) == 1
    return (
        ok,
        f"3 consents + 1 reload with one consent key: {made} participant(s), {len(tokens)} token(s)",
    )


def _flood(c: Ctx, api: str, data: list, n: int) -> tuple[list[int], float]:
    fn = c.fn_index(api)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda k: c.join(fn, data, f"{api}-flood-{k}").status_code, range(n)))
    return codes, time.perf_counter() - t0


def _survey_ok(c: Ctx) -> tuple[bool, float]:
    t0 = time.perf_counter()
    try:
        out = call(requests.Session(), c.url, "consent", [None, True, None], retry_s=5)
        ok = isinstance(out[1], str) and bool(out[1])
    except Exception:
        ok = False
    return ok, time.perf_counter() - t0


def _health(c: Ctx) -> int:
    try:
        return requests.get(c.url + "healthz", timeout=10).status_code
    except requests.RequestException:
        return 0


def case_demo_flood(c: Ctx) -> tuple[bool, str]:
    codes, secs = _flood(c, "analyse", [None, "bogus", [], "fast", "fake", 4], c.flood)
    ok_survey, answer_s = _survey_ok(c)
    health = _health(c)
    refused = codes.count(503)
    ok = ok_survey and health == 200 and set(codes) <= {200, 503}
    return ok, (
        f"{len(codes)} demo requests in {secs:.1f} s: {refused} refused (503); then a survey "
        f"call answered in {answer_s * 1000:.0f} ms, /healthz {health}"
    )


def case_unread_flood(c: Ctx) -> tuple[bool, str]:
    codes, secs = _flood(c, "resume", [None, None], c.flood)
    # let the queue work through them, then the survey must still answer
    deadline = time.time() + 120
    while time.time() < deadline:
        h = requests.get(c.url + "healthz", timeout=10)
        if h.status_code != 200 or h.json().get("queued", 0) == 0:
            break
        time.sleep(0.5)
    ok_survey, answer_s = _survey_ok(c)
    health = _health(c)
    ok = ok_survey and health == 200 and codes.count(200) + codes.count(503) == len(codes)
    return ok, (
        f"{len(codes)} unread survey requests in {secs:.1f} s ({codes.count(200)} queued); "
        f"queue running, /healthz {health}, survey call {answer_s * 1000:.0f} ms"
    )


def case_admin(c: Ctx) -> tuple[bool, str]:
    s = requests.Session()
    run = requests.post(c.url + "gradio_api/run/show", json={"data": ["x", True]}, timeout=30)
    t0 = time.perf_counter()
    replies = [call(s, c.url, "show", [f"guess-{k}", True])[0] for k in range(20)]
    rate = 20 / (time.perf_counter() - t0)
    checked = sum(r == "Wrong password." for r in replies)
    refused = sum(str(r).startswith("Too many wrong passwords") for r in replies)
    ok = run.status_code == 404 and checked <= 5 and checked + refused == 20
    return ok, (
        f"20 guesses ({rate:.0f}/s): {checked} checked, {refused} refused; "
        f"/gradio_api/run/show {run.status_code}"
    )


def case_body(c: Ctx) -> tuple[bool, str]:
    before = c.rss_mb()
    big = json.dumps({"data": ["x" * (1 << 20)], "fn_index": 0, "session_hash": "b"})
    codes = []
    for _ in range(6):
        r = requests.post(
            c.url + "gradio_api/queue/join",
            data=big,
            headers={"content-type": "application/json"},
            timeout=30,
        )
        codes.append(r.status_code)

    def chunks():
        for _ in range(256):
            yield b"x" * 4096

    codes.append(
        requests.post(c.url + "gradio_api/queue/join", data=chunks(), timeout=30).status_code
    )
    grown = c.rss_mb() - before
    ok = set(codes) == {413} and not grown > 50
    return (
        ok,
        f"6 x 1 MB bodies + 1 MB chunked: HTTP {sorted(set(codes))}, server RSS {grown:+.0f} MB",
    )


def _encode(path: Path, side: int, frames: int) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width = s.height = side
        s.pix_fmt = "yuv420p"
        s.options = {"preset": "ultrafast"}
        img = av.VideoFrame.from_ndarray(np.zeros((side, side, 3), np.uint8), format="rgb24")
        for _ in range(frames):
            for pk in s.encode(img):
                out.mux(pk)
        for pk in s.encode():
            out.mux(pk)
    return path


def _upload(c: Ctx, name: str, content: bytes, mime: str = "video/mp4") -> requests.Response:
    return requests.post(
        c.url + "gradio_api/upload", files={"files": (name, content, mime)}, timeout=60
    )


def case_decode_bomb(c: Ctx) -> tuple[bool, str]:
    bomb = _encode(c.tmp / "bomb.mp4", 8192, 8)
    kb = bomb.stat().st_size / 1024
    r = _upload(c, "bomb.mp4", bomb.read_bytes())
    if r.status_code != 200:
        return False, f"upload of the bomb refused: HTTP {r.status_code}"
    path = r.json()[0]
    before = c.rss_mb()
    filedata = {"path": path, "orig_name": "bomb.mp4", "meta": {"_type": "gradio.FileData"}}
    out = call(
        requests.Session(), c.url, "analyse", [filedata, None, ["gradcam"], "fast", "fake", 4]
    )
    grown = c.rss_mb() - before
    msg = str(out[0])
    ok = "megapixels" in msg and grown < 800 and "/" not in msg.split("**Error:**")[-1]
    return ok, (
        f"8192x8192 x 8 frames ({kb:.0f} KB; 1.6 GB decoded): '{msg[:90]}', server RSS "
        f"{grown:+.0f} MB"
    )


def case_uploads(c: Ctx) -> tuple[bool, str]:
    text = _upload(c, "notes.txt", b"hello", "text/plain").status_code
    renamed = _upload(c, "fake.mp4", b"not a video, only its name").status_code
    video = (ROOT / "tests" / "data" / "single_face.mp4").read_bytes()
    codes = [_upload(c, "clip.mp4", video + bytes([k])).status_code for k in range(5)]
    ok = text == 415 and renamed == 415 and codes.count(429) >= 2 and codes.count(200) <= 3
    return ok, (
        f"text: {text}, renamed text: {renamed}; 5 videos from one client: "
        f"{codes.count(200)} stored, {codes.count(429)} refused (429)"
    )


def case_errors(c: Ctx) -> tuple[bool, str]:
    import os

    text = requests.get(c.url + "config", timeout=30).text
    found = [f for f in {str(Path(c.study).resolve()), os.getcwd(), "/tmp/"} if f in text]
    base = c.url + "gradio_api/call/q1"
    r = requests.post(base, json={"data": ["t" * 40, "s01", "v" * 60_000]}, timeout=30)
    reply = requests.get(f"{base}/{r.json()['event_id']}", timeout=30).text
    ok = not found and len(reply) < 4000
    return ok, (
        f"/config: {len(found)} server folders named; a 60 KB invalid value gets a "
        f"{len(reply)}-byte reply"
    )


def case_restart(c: Ctx) -> tuple[bool, str]:
    def secret() -> str:
        cfg = requests.get(c.url + "config", timeout=30).json()
        return next(x["props"]["secret"] for x in cfg["components"] if x["type"] == "browserstate")

    s = requests.Session()
    tok = call(s, c.url, "consent", [None, True, None])[1]
    item = call(s, c.url, "demographics", [tok, "small", "no"])[2]
    call(s, c.url, "q1", [tok, item, "video1"])
    first = secret()
    t0 = time.perf_counter()
    c.server.kill()  # SIGKILL mid-study
    c.server.start()
    down = time.perf_counter() - t0
    out = call(s, c.url, "resume", [tok, None])  # what the reloaded page sends
    ok = secret() == first and out[1] == tok and out[2] == item
    return ok, (
        f"kill -9 mid-study, back in {down:.0f} s: storage secret kept, the reload resumes "
        f"at question 2 of '{out[2]}' without a PROLIFIC_PID"
    )


def case_kill9(c: Ctx) -> tuple[bool, str]:
    import loadtest

    from xai_study.study.db import Database

    db_url = f"sqlite:///{c.tmp / 'kill9.sqlite3'}"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        rc = loadtest.main(
            ["--study", c.study, "-n", "10", "--kill-restart", "--double-submit", "0.3"]
            + ["--db", db_url, "--seed", "7", "--workdir", str(c.tmp / "kill9")]
        )
    out = buf.getvalue()
    people = len(Database(db_url).participants_frame())
    line = next((x for x in out.splitlines() if x.startswith("lost:")), "no result")
    ok = rc == 0 and "lost: 0 duplicated: 0 crossed: 0" in out and people == 10
    figure = f"10 participants, kill -9 half way: {line}, orphans: {people - 10}"
    if not ok:
        figure += " | " + " / ".join(out.strip().splitlines()[-4:])
    return ok, figure


CASES: dict[str, Callable[[Ctx], tuple[bool, str]]] = {
    "takeover": case_takeover,
    "consent-retry": case_consent_retry,
    "demo-flood": case_demo_flood,
    "unread-flood": case_unread_flood,
    "admin": case_admin,
    "body": case_body,
    "decode-bomb": case_decode_bomb,
    "uploads": case_uploads,
    "errors": case_errors,
    "restart": case_restart,
    "kill9": case_kill9,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--study", default="study_data/demo", help="study folder (default demo)")
    ap.add_argument(
        "--cases",
        default="all",
        help="comma-separated cases, 'fast' (no restarts, no bomb) or 'all' (default)",
    )
    ap.add_argument(
        "--flood", type=int, default=300, help="requests per flood case (default 300; 2500)"
    )
    ap.add_argument(
        "--max-seconds", type=float, default=900, help="stop after this long (default 900)"
    )
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(ALL))
        return 0
    names = {"all": ALL, "fast": FAST}.get(args.cases) or [
        x.strip() for x in args.cases.split(",") if x.strip()
    ]
    unknown = [x for x in names if x not in CASES]
    if unknown:
        raise SystemExit(f"error: unknown case(s) {', '.join(unknown)}; --list shows them")
    if not 1 <= args.flood <= 5000:
        raise SystemExit("error: --flood must be 1-5000")
    if (
        not (Path(args.study) / "study.yaml").is_file()
        and not (Path(args.study) / "study.json").is_file()
    ):
        raise SystemExit(f"error: study folder not found: {args.study}")

    tmp = Path(tempfile.mkdtemp(prefix="xs-abuse-"))
    print(f"work folder: {tmp}", flush=True)  # the server logs, the databases
    db_url = f"sqlite:///{tmp / 'abuse.sqlite3'}"
    server = Server(str(Path(args.study).resolve()), db_url, free_port(), tmp / "server.log")
    server.start()  # 127.0.0.1 only (Server never binds anything else)
    ctx = Ctx(server, str(Path(args.study).resolve()), db_url, args.flood, tmp)
    deadline = time.time() + args.max_seconds
    failed = 0
    try:
        for name in names:
            if time.time() > deadline:
                print(f"FAIL {name}: not run, --max-seconds reached", flush=True)
                failed += 1
                continue
            t0 = time.perf_counter()
            try:
                ok, figure = CASES[name](ctx)
            except Exception as exc:  # noqa: BLE001 - a case that breaks is a failure
                ok, figure = False, f"{type(exc).__name__}: {str(exc)[:200]}"
            failed += not ok
            took = time.perf_counter() - t0
            print(f"{'PASS' if ok else 'FAIL'} {name}: {figure} ({took:.1f} s)", flush=True)
    finally:
        server.kill()
    print(f"{len(names) - failed} of {len(names)} cases passed (server log: {server.log})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
