"""Durable storage of a user study (SQLAlchemy 2; SQLite by default, PostgreSQL works).

Tables:

- ``studies``: one row per study folder served (name, title, hash of the study file).
- ``participants``: pseudonymous id, resume token, consent time, demographics (screen,
  familiarity), assignment seed + counterbalancing arm + the resolved assignment (JSON),
  the recruiting platform's URL parameters (``PROLIFIC_PID``, ``STUDY_ID``,
  ``SESSION_ID``), status (``consented`` -> ``in_progress`` -> ``completed``) and times.
- ``answers``: one row per participant x section (unique), with Q1 / Q2 answers, the
  placement shown, when the section was shown and answered and the time spent (Q1 is
  asked first and stored on its own, before the animations give the fake away; Q2 then
  fills the same row once).
- ``checks``: one row per participant x attention check (unique).
- ``consent_keys``: the idempotency key a browser sends with its consent (unique), so a
  consent whose reply was lost and that is sent again finds the participant it created
  instead of creating a second one.
- ``settings``: server-side values shared by every process on the database (the secret
  that encrypts the browser's stored resume token, so a restart keeps it readable).

Every write is one short transaction. On SQLite the database runs in WAL mode with a
busy timeout and write transactions start with ``BEGIN IMMEDIATE`` (so two writers never
deadlock on a lock upgrade); on PostgreSQL several app processes can share one database:
uniqueness is enforced by the database and a losing concurrent insert is read back, which
makes every submission idempotent.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from xai_study.errors import StudyError
from xai_study.study.schema import RESPONSE_COLUMNS

__all__ = [
    "Answer",
    "Check",
    "ConsentKey",
    "Database",
    "Participant",
    "ParticipantExists",
    "Study",
    "default_db_url",
    "utcnow",
]

SCREENS = ("large", "small")
FAMILIARITY = ("yes", "heard of it", "no")
Q1_ANSWERS = ("video1", "video2", "dont_know")
#: ``screened_out``: failed an attention check (the survey ends there, no completion code).
STATUSES = ("consented", "in_progress", "completed", "withdrawn", "screened_out")

#: participants_frame() columns, in order.
PARTICIPANT_COLUMNS = [
    "participant_id",
    "study",
    "status",
    "created_at",
    "consent_at",
    "screen",
    "familiarity",
    "seed",
    "arm",
    "prolific_pid",
    "prolific_study_id",
    "prolific_session_id",
    "completed_at",
    "n_answers",
    "checks_passed",
    "checks_total",
    "median_section_s",
    "speeder",
]


def utcnow() -> _dt.datetime:
    """Timezone-aware current UTC time."""
    return _dt.datetime.now(_dt.UTC)


def _aware(value: _dt.datetime | None) -> _dt.datetime | None:
    """SQLite drops the time zone; all stored times are UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=_dt.UTC)
    return value


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    file_hash: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("study_id", "prolific_pid", name="uq_study_prolific_pid"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="consented")
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    consent_at: Mapped[_dt.datetime | None] = mapped_column(DateTime(timezone=True))
    screen: Mapped[str | None] = mapped_column(String(20))
    familiarity: Mapped[str | None] = mapped_column(String(20))
    demographics_at: Mapped[_dt.datetime | None] = mapped_column(DateTime(timezone=True))
    seed: Mapped[int] = mapped_column(Integer)
    arm: Mapped[int] = mapped_column(Integer, default=0)
    assignment: Mapped[str] = mapped_column(Text, default="{}")
    prolific_pid: Mapped[str | None] = mapped_column(String(100))
    prolific_study_id: Mapped[str | None] = mapped_column(String(100))
    prolific_session_id: Mapped[str | None] = mapped_column(String(100))
    completed_at: Mapped[_dt.datetime | None] = mapped_column(DateTime(timezone=True))

    def assignment_dict(self) -> dict[str, Any]:
        return json.loads(self.assignment or "{}")


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("participant_id", "section", name="uq_answer_section"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    section: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    video_id: Mapped[str] = mapped_column(String(200))
    real_video_id: Mapped[str] = mapped_column(String(200), default="")
    fake_position: Mapped[int] = mapped_column(Integer)
    q1_answer: Mapped[str] = mapped_column(String(20))
    q1_correct: Mapped[bool | None] = mapped_column(Boolean)
    q1_answered_at: Mapped[_dt.datetime | None] = mapped_column(DateTime(timezone=True))
    q1_time_spent_s: Mapped[float | None] = mapped_column(Float)
    q2_choice: Mapped[str | None] = mapped_column(String(200))
    q2_position: Mapped[str | None] = mapped_column(String(50))
    q2_order: Mapped[str] = mapped_column(String(200), default="")
    shown_at: Mapped[_dt.datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[_dt.datetime | None] = mapped_column(DateTime(timezone=True))
    time_spent_s: Mapped[float | None] = mapped_column(Float)


class Check(Base):
    __tablename__ = "checks"
    __table_args__ = (UniqueConstraint("participant_id", "check_id", name="uq_check"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    check_id: Mapped[str] = mapped_column(String(100))
    answer: Mapped[str] = mapped_column(String(200))
    passed: Mapped[bool] = mapped_column(Boolean)
    answered_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    time_spent_s: Mapped[float | None] = mapped_column(Float)


class ConsentKey(Base):
    """A consent's idempotency key (chosen by the client) -> the participant it made."""

    __tablename__ = "consent_keys"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Setting(Base):
    """A named server-side value, written once and shared by every server process."""

    __tablename__ = "settings"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ParticipantExists(StudyError):
    """``create_participant(existing_ok=False)`` found the ``PROLIFIC_PID`` taken."""


class StudyFull(StudyError):
    """``create_participant(quota=N)`` found N participants (not withdrawn) already."""


def default_db_url(study_dir: str | os.PathLike[str] | None = None) -> str:
    """``DATABASE_URL`` if set, else a SQLite file next to the study folder."""
    env = os.environ.get("DATABASE_URL")
    if env:
        return env
    if study_dir is None:
        return "sqlite:///xai_study.db"
    study = Path(study_dir).resolve()
    return f"sqlite:///{study.parent / (study.name + '.db')}"


def _normalise_url(url: str) -> str:
    """Accept ``postgres://`` / ``postgresql://`` and use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Database:
    """All study storage behind one object; create with any SQLAlchemy URL.

    >>> db = Database("sqlite://")        # in memory
    >>> db.ensure_study("demo").name
    'demo'
    """

    def __init__(self, url: str | None = None, *, busy_timeout_ms: int = 30000) -> None:
        url = _normalise_url(url or default_db_url())
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StudyError(f"not a database URL: {url!r}") from exc
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._write_lock = threading.Lock() if self.is_sqlite else None
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            database = parsed.database or ""
            if database and database != ":memory:":
                folder = Path(database).expanduser().resolve().parent
                if not folder.is_dir():
                    raise StudyError(f"database folder does not exist: {folder}")
            else:
                from sqlalchemy.pool import StaticPool

                kwargs["poolclass"] = StaticPool
            kwargs["connect_args"] = {
                "timeout": busy_timeout_ms / 1000,
                "check_same_thread": False,
            }
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except Exception as exc:  # missing driver, bad options
            raise StudyError(f"cannot open database {parsed!r}: {exc}") from exc
        if self.is_sqlite:
            self._setup_sqlite(busy_timeout_ms)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        try:
            try:
                Base.metadata.create_all(self.engine)
            except (IntegrityError, ProgrammingError):
                # another process created the tables at the same moment: check again
                time.sleep(0.5)
                Base.metadata.create_all(self.engine)
        except OperationalError as exc:
            msg = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
            raise StudyError(f"cannot open database {parsed!r}: {msg}") from exc

    def _setup_sqlite(self, busy_timeout_ms: int) -> None:
        @event.listens_for(self.engine, "connect")
        def _connect(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _begin(conn) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

    # -- sessions ---------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Session]:
        """A short write transaction (``BEGIN IMMEDIATE`` on SQLite).

        On SQLite, writers of this process queue on a lock first: SQLite's busy handler
        waits by sleeping with back-off, which makes the slowest writes much slower
        under many concurrent writers; other processes still wait via busy_timeout."""
        if self._write_lock is None:
            with self._sessions() as session, session.begin():
                yield session
            return
        with self._write_lock, self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction that never takes the SQLite write lock."""
        bind = self.engine
        if self.is_sqlite:
            bind = self.engine.execution_options(sqlite_begin="DEFERRED")
        with Session(bind, expire_on_commit=False) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    # -- studies ------------------------------------------------------------------------
    def ensure_study(self, name: str, title: str = "", file_hash: str = "") -> Study:
        """The study row called ``name``, created on first use (race-safe)."""
        for _ in range(2):
            with self.read() as s:
                row = s.scalar(select(Study).where(Study.name == name))
            if row is not None:
                if (title and row.title != title) or (file_hash and row.file_hash != file_hash):
                    with self.write() as s:
                        live = s.get(Study, row.id)
                        live.title = title or live.title
                        live.file_hash = file_hash or live.file_hash
                        row = live
                return row
            try:
                with self.write() as s:
                    row = Study(name=name, title=title, file_hash=file_hash)
                    s.add(row)
                    s.flush()
                return row
            except IntegrityError:
                continue  # another process created it: read it back
        raise StudyError(f"cannot create study {name!r} in the database")

    # -- participants -----------------------------------------------------------------
    def create_participant(
        self,
        study_id: int,
        *,
        seed: int,
        arm: int,
        assignment: dict[str, Any],
        prolific_pid: str | None = None,
        prolific_study_id: str | None = None,
        prolific_session_id: str | None = None,
        consent_at: _dt.datetime | None = None,
        consent_key: str | None = None,
        existing_ok: bool = True,
        quota: int | None = None,
    ) -> Participant:
        """Store a participant who has just consented.

        With ``consent_key`` the participant and the key are stored in one transaction,
        and a second call with the same key returns the participant of the first (a
        retried consent). When the same ``PROLIFIC_PID`` already joined this study the
        existing participant is returned, or, with ``existing_ok=False``,
        :class:`ParticipantExists` is raised (the survey never hands one person's
        session to a caller who knows only their platform id).

        With ``quota``, :class:`StudyFull` is raised when the study already has that many
        participants who did not withdraw; the count and the insert are one transaction
        (serialised: SQLite's ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock on the
        study), so concurrent consents never pass the quota."""
        if consent_key:
            existing = self.participant_by_consent_key(consent_key)
            if existing is not None:
                return existing
        if prolific_pid:
            existing = self.participant_by_prolific(study_id, prolific_pid)
            if existing is not None:
                if not existing_ok:
                    raise ParticipantExists("this PROLIFIC_PID has already joined the study")
                return existing
        row = Participant(
            id=secrets.token_hex(6),
            token=secrets.token_urlsafe(24),
            study_id=study_id,
            status="consented",
            created_at=utcnow(),
            consent_at=consent_at or utcnow(),
            seed=int(seed),
            arm=int(arm),
            assignment=json.dumps(assignment, sort_keys=True),
            prolific_pid=prolific_pid or None,
            prolific_study_id=prolific_study_id or None,
            prolific_session_id=prolific_session_id or None,
        )
        try:
            with self.write() as s:
                if quota is not None:
                    if self.engine.dialect.name == "postgresql":
                        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(study_id)})
                    taken = s.scalar(
                        select(func.count(Participant.id)).where(
                            Participant.study_id == study_id, Participant.status != "withdrawn"
                        )
                    )
                    if int(taken or 0) >= quota:
                        raise StudyFull("the study is full")
                s.add(row)
                if consent_key:
                    s.flush()  # the participant first (foreign key)
                    s.add(ConsentKey(key=consent_key, participant_id=row.id))
        except IntegrityError:
            # a concurrent call won: the same key (a retry), or the same PROLIFIC_PID
            if consent_key:
                existing = self.participant_by_consent_key(consent_key)
                if existing is not None:
                    return existing
            if prolific_pid:
                existing = self.participant_by_prolific(study_id, prolific_pid)
                if existing is not None:
                    if not existing_ok:
                        raise ParticipantExists(
                            "this PROLIFIC_PID has already joined the study"
                        ) from None
                    return existing
            raise
        return row

    def participant_by_consent_key(self, key: str) -> Participant | None:
        """The participant created by the consent that carried ``key``, else None."""
        if not key or not isinstance(key, str) or len(key) > 64:
            return None
        with self.read() as s:
            return s.scalar(
                select(Participant)
                .join(ConsentKey, ConsentKey.participant_id == Participant.id)
                .where(ConsentKey.key == key)
            )

    def setting(self, name: str, default: Any) -> str:
        """The stored value of setting ``name``; on first use ``default()`` (a callable)
        or ``default`` is stored and returned. Race-safe: when two processes store a
        first value at once, both get the one that was stored."""
        for _ in range(3):
            with self.read() as s:
                row = s.get(Setting, name)
            if row is not None:
                return row.value
            value = default() if callable(default) else default
            try:
                with self.write() as s:
                    s.add(Setting(name=name, value=str(value)))
                return str(value)
            except IntegrityError:
                continue  # another process stored it first: read it back
        raise StudyError(f"cannot store setting {name!r} in the database")

    def count_participants(self, study_id: int, active: bool = False) -> int:
        """Participants of the study (``active``: those who did not withdraw)."""
        stmt = select(func.count(Participant.id)).where(Participant.study_id == study_id)
        if active:
            stmt = stmt.where(Participant.status != "withdrawn")
        with self.read() as s:
            return int(s.scalar(stmt) or 0)

    def participant_by_token(self, token: str) -> Participant | None:
        if not token or not isinstance(token, str) or len(token) > 64:
            return None
        with self.read() as s:
            return s.scalar(select(Participant).where(Participant.token == token))

    def participant_by_prolific(self, study_id: int, prolific_pid: str) -> Participant | None:
        with self.read() as s:
            return s.scalar(
                select(Participant).where(
                    Participant.study_id == study_id, Participant.prolific_pid == prolific_pid
                )
            )

    def get_participant(self, participant_id: str) -> Participant | None:
        with self.read() as s:
            return s.get(Participant, participant_id)

    def set_demographics(self, participant_id: str, screen: str, familiarity: str) -> Participant:
        """Store demographics once (a second call keeps the first answers)."""
        if screen not in SCREENS:
            raise StudyError(f"screen must be one of {', '.join(SCREENS)}")
        if familiarity not in FAMILIARITY:
            raise StudyError(f"familiarity must be one of {', '.join(FAMILIARITY)}")
        with self.write() as s:
            row = s.get(Participant, participant_id)
            if row is None:
                raise StudyError("unknown participant")
            if row.demographics_at is None:
                row.screen = screen
                row.familiarity = familiarity
                row.demographics_at = utcnow()
                if row.status == "consented":
                    row.status = "in_progress"
            return row

    def set_status(self, participant_id: str, status: str) -> Participant:
        if status not in STATUSES:
            raise StudyError(f"unknown status {status!r}")
        with self.write() as s:
            row = s.get(Participant, participant_id)
            if row is None:
                raise StudyError("unknown participant")
            if row.status != "completed":
                row.status = status
                if status == "completed":
                    row.completed_at = utcnow()
            return row

    def withdraw(self, participant_id: str, delete: bool = False) -> tuple[Participant, int]:
        """Mark a participant as withdrawn (also after completion): analyses and the results
        page leave them out, and their session stops accepting answers. With ``delete``,
        their answers and attention-check results are deleted and their demographics and
        platform ids cleared; the row itself stays (withdrawals are counted). Returns the
        participant and the number of deleted answer/check rows."""
        with self.write() as s:
            row = s.get(Participant, participant_id)
            if row is None:
                raise StudyError(f"no participant {participant_id!r} in this database")
            row.status = "withdrawn"
            deleted = 0
            if delete:
                for model in (Answer, Check):
                    for item in s.scalars(
                        select(model).where(model.participant_id == participant_id)
                    ):
                        s.delete(item)
                        deleted += 1
                row.screen = row.familiarity = row.demographics_at = None
                row.prolific_pid = row.prolific_study_id = row.prolific_session_id = None
            return row, deleted

    # -- answers ----------------------------------------------------------------------
    def save_answer(self, participant_id: str, **fields: Any) -> tuple[Answer, bool]:
        """Insert one section answer; returns ``(row, created)``. A second answer for the
        same participant and section returns the stored one unchanged (idempotent)."""
        section = fields["section"]
        existing = self.get_answer(participant_id, section)
        if existing is not None:
            return existing, False
        row = Answer(participant_id=participant_id, **fields)
        try:
            with self.write() as s:
                s.add(row)
        except IntegrityError:
            existing = self.get_answer(participant_id, section)
            if existing is None:
                raise
            return existing, False
        return row, True

    def save_q2(
        self,
        participant_id: str,
        section: str,
        *,
        q2_choice: str,
        q2_position: str,
        answered_at: _dt.datetime | None = None,
        time_spent_s: float | None = None,
    ) -> bool:
        """Store Q2 of a section whose Q1 is stored; only the first call counts (one
        conditional UPDATE, so concurrent replays cannot overwrite). Returns True when
        this call stored it."""
        with self.write() as s:
            result = s.execute(
                update(Answer)
                .where(
                    Answer.participant_id == participant_id,
                    Answer.section == section,
                    Answer.q2_choice.is_(None),
                )
                .values(
                    q2_choice=q2_choice,
                    q2_position=q2_position,
                    answered_at=answered_at or utcnow(),
                    time_spent_s=time_spent_s,
                )
            )
            return bool(result.rowcount)

    def get_answer(self, participant_id: str, section: str) -> Answer | None:
        with self.read() as s:
            return s.scalar(
                select(Answer).where(
                    Answer.participant_id == participant_id, Answer.section == section
                )
            )

    def answers(self, participant_id: str) -> list[Answer]:
        with self.read() as s:
            return list(
                s.scalars(
                    select(Answer)
                    .where(Answer.participant_id == participant_id)
                    .order_by(Answer.position)
                )
            )

    def save_check(self, participant_id: str, **fields: Any) -> tuple[Check, bool]:
        """Insert one attention-check answer (idempotent like :meth:`save_answer`)."""
        check_id = fields["check_id"]
        existing = self._get_check(participant_id, check_id)
        if existing is not None:
            return existing, False
        row = Check(participant_id=participant_id, **fields)
        if row.answered_at is None:
            row.answered_at = utcnow()
        try:
            with self.write() as s:
                s.add(row)
        except IntegrityError:
            existing = self._get_check(participant_id, check_id)
            if existing is None:
                raise
            return existing, False
        return row, True

    def _get_check(self, participant_id: str, check_id: str) -> Check | None:
        with self.read() as s:
            return s.scalar(
                select(Check).where(
                    Check.participant_id == participant_id, Check.check_id == check_id
                )
            )

    def checks(self, participant_id: str) -> list[Check]:
        with self.read() as s:
            return list(s.scalars(select(Check).where(Check.participant_id == participant_id)))

    # -- frames for analysis / export -------------------------------------------------
    def study_names(self) -> list[str]:
        with self.read() as s:
            return list(s.scalars(select(Study.name).order_by(Study.id)))

    def responses_frame(self, study: str | None = None):
        """One row per participant x answered section (``RESPONSE_COLUMNS`` of
        :mod:`xai_study.study.schema`).

        ``q1_answer`` is ``video1`` / ``video2`` / ``dont_know`` as the participant saw
        them, ``q1_correct`` is True/False (None for "I do not know"), ``q2_choice`` the
        explainer name (``;``-joined names when the study allows several choices), None
        while the participant has answered Q1 of the section but not yet Q2.
        ``answered_at``/``time_spent_s`` are those of Q2 (the section's last answer),
        ``q1_answered_at``/``q1_time_spent_s`` those of Q1.
        """
        import pandas as pd

        stmt = (
            select(Answer, Participant, Study.name)
            .join(Participant, Answer.participant_id == Participant.id)
            .join(Study, Participant.study_id == Study.id)
            .order_by(Participant.created_at, Participant.id, Answer.position)
        )
        if study is not None:
            stmt = stmt.where(Study.name == study)
        rows = []
        with self.read() as s:
            for ans, par, study_name in s.execute(stmt):
                rows.append(
                    {
                        "participant_id": par.id,
                        "study": study_name,
                        "section": ans.section,
                        "position": ans.position,
                        "video_id": ans.video_id,
                        "real_video_id": ans.real_video_id,
                        "fake_position": ans.fake_position,
                        "q1_answer": ans.q1_answer,
                        "q1_correct": ans.q1_correct,
                        "q2_choice": ans.q2_choice,
                        "q2_position": ans.q2_position,
                        "q2_order": ans.q2_order,
                        "screen": par.screen,
                        "familiarity": par.familiarity,
                        "shown_at": _aware(ans.shown_at),
                        "q1_answered_at": _aware(ans.q1_answered_at),
                        "q1_time_spent_s": ans.q1_time_spent_s,
                        "answered_at": _aware(ans.answered_at),
                        "time_spent_s": ans.time_spent_s,
                    }
                )
        frame = pd.DataFrame(rows, columns=list(RESPONSE_COLUMNS))
        frame["q1_correct"] = frame["q1_correct"].astype(object)
        return frame

    def participants_frame(self, study: str | None = None):
        """One row per participant (``PARTICIPANT_COLUMNS``), with answer counts."""
        import pandas as pd

        n_answers = (
            select(Answer.participant_id, func.count(Answer.id).label("n"))
            .where(Answer.q2_choice.is_not(None))
            .group_by(Answer.participant_id)
            .subquery()
        )
        stmt = (
            select(Participant, Study.name, n_answers.c.n)
            .join(Study, Participant.study_id == Study.id)
            .outerjoin(n_answers, n_answers.c.participant_id == Participant.id)
            .order_by(Participant.created_at, Participant.id)
        )
        if study is not None:
            stmt = stmt.where(Study.name == study)
        from xai_study.study.speeders import median_section_time, speeders

        rows = []
        with self.read() as s:
            checks: dict[str, list[bool]] = {}
            for chk in s.scalars(select(Check)):
                checks.setdefault(chk.participant_id, []).append(bool(chk.passed))
            times: dict[str, list[tuple[float | None, float | None]]] = {}
            finished = select(Answer.participant_id, Answer.q1_time_spent_s, Answer.time_spent_s)
            for pid, q1_s, q2_s in s.execute(finished.where(Answer.q2_choice.is_not(None))):
                times.setdefault(pid, []).append((q1_s, q2_s))
            for par, study_name, n in s.execute(stmt):
                passed = checks.get(par.id, [])
                rows.append(
                    {
                        "participant_id": par.id,
                        "study": study_name,
                        "status": par.status,
                        "created_at": _aware(par.created_at),
                        "consent_at": _aware(par.consent_at),
                        "screen": par.screen,
                        "familiarity": par.familiarity,
                        "seed": par.seed,
                        "arm": par.arm,
                        "prolific_pid": par.prolific_pid,
                        "prolific_study_id": par.prolific_study_id,
                        "prolific_session_id": par.prolific_session_id,
                        "completed_at": _aware(par.completed_at),
                        "n_answers": int(n or 0),
                        "checks_passed": sum(passed),
                        "checks_total": len(passed),
                        "median_section_s": median_section_time(times.get(par.id, [])),
                    }
                )
        flags: dict[str, bool] = {}
        for name in {r["study"] for r in rows}:  # each study its own typical time
            mine = [r for r in rows if r["study"] == name]
            flags |= speeders(
                {r["participant_id"]: r["median_section_s"] for r in mine},
                [r["participant_id"] for r in mine if r["status"] == "withdrawn"],
            )
        for r in rows:
            r["speeder"] = flags[r["participant_id"]]
        return pd.DataFrame(rows, columns=PARTICIPANT_COLUMNS)
