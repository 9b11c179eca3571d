"""Keeping the study server up on the open internet (issue 20): queue bounds and
per-client job limits, a health endpoint, a request-body limit and a per-client rate
limiter. Only server plumbing here; no survey logic.

Gradio 6.31 keeps the message queues of at most 2,000 sessions (an LRU cache). A flood
of queue joins whose results are never read evicts sessions that still have an event
pending; the next message to such a session raises ``KeyError`` inside the queue's
processing loop, which stops the queue for good (every call then gets ``503 Queue is
stopped`` while ``/`` still answers). :func:`harden_queue` therefore

- makes sending a message to an evicted session harmless (its message queue is made
  again, so a client that is still listening gets its result),
- cuts error messages sent to clients (Gradio's validation errors echo the whole
  invalid value: 1 MB in, 1 MB out) and reduces absolute paths in them to file names,
- bounds the events of chosen concurrency groups (the demo's explanation jobs) in all
  and per client, refusing the excess with ``503`` and a clear message *before* it
  reaches the queue, so the survey's share of the queue stays free.

:class:`Guard` (ASGI middleware) answers ``GET /healthz`` (``503`` when the queue has
stopped, so a supervisor restarts the server), refuses request bodies above a limit
(``413``) on every route but uploads, which Gradio limits itself (``max_file_size``),
and watches uploads (:class:`Uploads`): video files only (by name and by content, else
``415`` and the file is deleted), a few live uploads per client (else ``429``), each
deleted after its job or once it is older than a maximum age.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from asyncio import Queue as AsyncQueue
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Largest request body accepted outside uploads (survey events are below 2 KiB).
DEFAULT_MAX_BODY_BYTES = 64 * 1024
HEALTH_PATH = "/healthz"
#: URL folder of the study's stimulus videos, served as plain static files (with range
#: requests) instead of through Gradio's file outputs (see :class:`Guard`).
MEDIA_ROUTE = "study-media"
#: The concurrency group of the demo page's explanation jobs.
DEMO_JOBS = "demo-explain"
#: Events queued at most (Gradio keeps 2,000 sessions; stay well inside that).
DEFAULT_MAX_QUEUE = 512


def client_of(request: Any) -> str:
    """The client's address (what limits count per client). Behind a reverse proxy on
    the same machine uvicorn puts the forwarded address here (``X-Forwarded-For`` from
    127.0.0.1 is trusted by default)."""
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return str(host) if host else "unknown"


@dataclass
class GroupLimit:
    """Bounds of one concurrency group: events queued or running, in all and per client."""

    total: int
    per_client: int
    message: str = "the server is busy: please try again in a few minutes"


@dataclass
class QueueGuard:
    """What :func:`harden_queue` installed (for the health endpoint and tests)."""

    limits: dict[str, GroupLimit]
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    recreated_sessions: int = 0
    _owners: dict[str, tuple[str, str]] = field(default_factory=dict)  # event -> (group, client)

    def counts(self, queue: Any, group: str) -> tuple[int, dict[str, int]]:
        """Live events of ``group`` (queued or running) in all and per client."""
        live = queue.event_ids_to_events
        for event_id in [e for e in self._owners if e not in live]:
            del self._owners[event_id]
        per: dict[str, int] = defaultdict(int)
        total = 0
        for event in list(live.values()):
            if event.concurrency_id != group:
                continue
            total += 1
            owner = self._owners.get(event._id)
            if owner is not None:
                per[owner[1]] += 1
        return total, per


def harden_queue(blocks: Any, limits: dict[str, GroupLimit] | None = None) -> QueueGuard:
    """Patch ``blocks``' queue (after ``blocks.queue()``): messages to evicted sessions
    no longer stop it, and the groups in ``limits`` are bounded. Returns the guard."""
    from gradio import route_utils

    queue = blocks._queue
    guard = QueueGuard(dict(limits or {}))

    def send_message(event: Any, event_message: Any) -> None:
        if not event.alive:
            return
        event_message.event_id = event._id
        output = getattr(event_message, "output", None)
        if isinstance(output, dict) and isinstance(output.get("error"), str):
            # Gradio's own validation errors echo the whole invalid value back
            output["error"] = public_message(output["error"])
        messages = queue.pending_messages_per_session.get(event.session_hash)
        if messages is None:  # evicted from Gradio's LRU of 2,000 sessions
            messages = AsyncQueue()
            queue.pending_messages_per_session[event.session_hash] = messages
            guard.recreated_sessions += 1
        messages.put_nowait(event_message)

    original_push = queue.push

    async def push(body: Any, request: Any, username: Any):
        group = None
        if guard.limits and body.fn_index is not None:
            try:
                group = route_utils.get_fn(queue.blocks, None, body).concurrency_id
            except Exception:  # unknown function: Gradio's own push reports it
                group = None
        limit = guard.limits.get(group) if group is not None else None
        client = client_of(request)
        if limit is not None:
            total, per = guard.counts(queue, group)
            if total >= limit.total or per.get(client, 0) >= limit.per_client:
                guard.refused[group] += 1
                return False, limit.message, "queue_full"
        ok, event_id, state = await original_push(body=body, request=request, username=username)
        if ok and limit is not None and isinstance(event_id, str):
            guard._owners[event_id] = (group, client)
        return ok, event_id, state

    needed = ("pending_messages_per_session", "event_ids_to_events", "push", "send_message")
    missing = [name for name in needed if not hasattr(queue, name)]
    if missing:  # another Gradio version: run unguarded rather than break every call
        log.warning("queue guard not installed: Gradio's queue has no %s", ", ".join(missing))
        return guard
    queue.send_message = send_message
    queue.push = push
    blocks._xai_queue_guard = guard
    return guard


def queue_health(blocks: Any) -> tuple[bool, dict[str, Any]]:
    """``(healthy, details)`` of ``blocks``' queue."""
    queue = getattr(blocks, "_queue", None)
    if queue is None:
        return False, {"status": "no queue"}
    if queue.stopped:
        return False, {"status": "queue stopped"}
    guard = getattr(blocks, "_xai_queue_guard", None)
    return True, {
        "status": "ok",
        "queued": len(queue),
        "running": queue.get_active_worker_count(),
        "sessions": len(queue.pending_messages_per_session),
        "refused": dict(guard.refused) if guard else {},
    }


#: Suffixes of the video files that may be uploaded.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi")


def looks_like_video(path: str | Path) -> bool:
    """A video file by name and by its first bytes (MP4/MOV ``ftyp``, WebM/Matroska
    EBML, AVI ``RIFF....AVI``)."""
    p = Path(path)
    if p.suffix.lower() not in VIDEO_SUFFIXES:
        return False
    try:
        with open(p, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide")
        or head[:4] == b"\x1a\x45\xdf\xa3"
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
    )


class Uploads:
    """The uploads of this server: who sent each one and when, so that a client has at
    most ``per_client`` live uploads, all of them at most ``total`` files and
    ``max_total_bytes``, and each is deleted after its job (:meth:`release`) or once
    older than ``max_age_s`` (:meth:`sweep`, run at most every minute on any request)."""

    def __init__(
        self,
        per_client: int = 3,
        total: int = 200,
        max_age_s: float = 1800.0,
        max_total_bytes: int = 2 * 1024**3,
    ):
        self.per_client = int(per_client)
        self.total = int(total)
        self.max_age_s = float(max_age_s)
        self.max_total_bytes = int(max_total_bytes)
        self._lock = threading.Lock()
        self._files: dict[str, tuple[str, float]] = {}  # path -> (client, time)
        self._sizes: dict[str, int] = {}
        self._last_sweep = time.monotonic()
        self.deleted = 0

    def admit(self, client: str) -> str | None:
        """None when ``client`` may upload now, else the reason it may not."""
        self.sweep()
        with self._lock:
            if len(self._files) >= self.total or sum(self._sizes.values()) >= self.max_total_bytes:
                return "too many uploads on the server right now: please try again later"
            mine = sum(1 for c, _ in self._files.values() if c == client)
            if mine >= self.per_client:
                return (
                    f"you have {mine} uploads waiting: analyse them (each is deleted after its "
                    "analysis) or wait, then upload again"
                )
        return None

    def add(self, path: str, client: str) -> None:
        try:
            size = Path(path).stat().st_size
        except OSError:
            size = 0
        with self._lock:
            self._files[str(path)] = (client, time.monotonic())
            self._sizes[str(path)] = size

    def sweep_now_and_then(self, every_s: float = 60.0) -> None:
        """:meth:`sweep` at most every ``every_s`` seconds (called on every request)."""
        now = time.monotonic()
        if now - self._last_sweep >= every_s:
            self._last_sweep = now
            self.sweep()

    def live(self) -> int:
        with self._lock:
            return len(self._files)

    def release(self, path: Any) -> bool:
        """Delete an upload (after its job); False when ``path`` is not one."""
        key = str(path) if path else ""
        with self._lock:
            known = self._files.pop(key, None) is not None
            self._sizes.pop(key, None)
        if known:
            _delete(Path(key))
            self.deleted += 1
        return known

    def sweep(self) -> int:
        """Delete the uploads older than ``max_age_s``; returns how many."""
        now = time.monotonic()
        with self._lock:
            old = [p for p, (_, t) in self._files.items() if now - t > self.max_age_s]
            for p in old:
                del self._files[p]
                self._sizes.pop(p, None)
        for p in old:
            _delete(Path(p))
        self.deleted += len(old)
        return len(old)


def _delete(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot delete upload %s: %s", path.name, exc.strerror)
        return
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # Gradio's one-folder-per-upload, when empty


class GuardState:
    """Filled in after the app is built: the Blocks whose queue ``/healthz`` reports,
    the body limit and the uploads."""

    def __init__(
        self,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        uploads: Uploads | None = None,
        media: dict[str, Path] | None = None,
    ) -> None:
        self.blocks: Any = None
        self.max_body_bytes = int(max_body_bytes)
        self.uploads = uploads or Uploads()
        #: URL name -> file of every stimulus the study shows (nothing else is served
        #: under ``/study-media/``)
        self.media = dict(media or {})


class Guard:
    """ASGI middleware: ``GET /healthz``, the study's media files (``GET
    /study-media/<name>``, only the files the study file names), the request-body limit
    and the upload checks."""

    def __init__(self, app: Any, state: GuardState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        self.state.uploads.sweep_now_and_then()  # old uploads go even when no new one comes
        if path == HEALTH_PATH and scope.get("method") in ("GET", "HEAD"):
            ok, details = queue_health(self.state.blocks)
            await _respond(send, 200 if ok else 503, details)
            return
        if scope.get("method") in ("GET", "HEAD") and f"/{MEDIA_ROUTE}/" in path:
            await self._media(path, scope, receive, send)
            return
        if scope.get("method") == "POST" and _is_upload(path):
            await self._upload(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS") or _is_upload(path):
            await self.app(scope, receive, send)
            return
        limit = self.state.max_body_bytes
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                too_big = True
            if too_big:
                await _respond(send, 413, {"detail": f"request body over {limit} bytes"})
                return
        # read the whole (small) body first: a chunked body without a length is
        # counted as it arrives and refused once it passes the limit
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _respond(send, 413, {"detail": f"request body over {limit} bytes"})
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later: disconnect notifications

        await self.app(scope, replay, send)

    async def _media(self, path: str, scope: dict, receive: Any, send: Any) -> None:
        """A stimulus video as a static file: no Gradio processing, range requests (for
        Safari and seeking), cacheable by the browser; 404 for anything the study does
        not name."""
        from urllib.parse import unquote

        from starlette.responses import FileResponse

        name = unquote(path.split(f"/{MEDIA_ROUTE}/", 1)[1])
        file = self.state.media.get(name)
        if file is None:
            await _respond(send, 404, {"detail": "Not Found"})
            return
        response = FileResponse(file, headers={"Cache-Control": "private, max-age=86400"})
        await response(scope, receive, send)

    async def _upload(self, scope: dict, receive: Any, send: Any) -> None:
        """Let Gradio store the upload, then keep only video files and record them."""
        uploads = self.state.uploads
        client = (scope.get("client") or ("unknown", 0))[0]
        reason = uploads.admit(client)
        if reason is not None:
            await _respond(send, 429, {"detail": reason})
            return
        start: dict | None = None
        parts: list[bytes] = []

        async def capture(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(parts)
        status = start["status"] if start else 500
        paths: list[str] = []
        if status == 200:
            try:
                paths = [str(p) for p in json.loads(body)]
            except (ValueError, TypeError):
                paths = []
        bad = [p for p in paths if not looks_like_video(p)]
        if bad:
            for p in paths:
                _delete(Path(p))
            names = ", ".join(sorted(VIDEO_SUFFIXES))
            await _respond(send, 415, {"detail": f"only video files can be uploaded ({names})"})
            return
        for p in paths:
            uploads.add(p, client)
        if start is None:
            await _respond(send, 500, {"detail": "upload failed"})
            return
        await send(start)
        await send({"type": "http.response.body", "body": body})


def _is_upload(path: str) -> bool:
    return path.rstrip("/").endswith("/gradio_api/upload")


async def _respond(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """At most ``attempts`` failures per client within ``window_s`` seconds; thread-safe.

    ``blocked(client)`` tells whether the client must wait (and how long); ``fail``
    records a failure. Memory stays bounded (at most ``max_clients`` clients)."""

    def __init__(self, attempts: int = 5, window_s: float = 60.0, max_clients: int = 10000):
        self.attempts = int(attempts)
        self.window_s = float(window_s)
        self.max_clients = int(max_clients)
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _prune(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client)
        if times is None:
            return deque()
        while times and now - times[0] > self.window_s:
            times.popleft()
        if not times:
            self._failures.pop(client, None)
        return times

    def blocked(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            times = self._prune(client, now)
            if len(times) < self.attempts:
                return 0.0
            return max(0.0, self.window_s - (now - times[0]))

    def fail(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            times = self._prune(client, now)
            if client not in self._failures:
                if len(self._failures) >= self.max_clients:  # drop the oldest client
                    self._failures.pop(next(iter(self._failures)))
                self._failures[client] = times
            times.append(now)


_ABS_PATH = re.compile(
    r"(?<![\w.:/])(?:/|[A-Za-z]:\\)(?:[^\s/\\'\"():,;]+[/\\])+([^\s/\\'\"():,;]*)"
)
#: Longest message shown to a web client (echoed values are cut).
MAX_MESSAGE_CHARS = 300


def public_message(text: Any, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` fit for a web page: absolute paths reduced to their file name (the
    server's folders are nobody's business) and cut to ``limit`` characters."""
    out = _ABS_PATH.sub(lambda m: m.group(1) or "…", str(text))
    if len(out) > limit:
        out = out[: limit - 1].rstrip() + "…"
    return out
