"""Study storage on SQLite and on a real PostgreSQL server (started by the fixture)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from pg_util import PgUnavailable, start_postgres

from xai_study.errors import StudyError
from xai_study.study.db import PARTICIPANT_COLUMNS, RESPONSE_COLUMNS, Answer, Database


@pytest.fixture(scope="module")
def pg_url():
    try:
        url, stop = start_postgres()
    except PgUnavailable as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    yield url
    stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'study.sqlite3'}"
        return
    base = request.getfixturevalue("pg_url")
    # a fresh database per test on the shared server
    name = f"t{abs(hash(request.node.name)) % 10**8}"
    eng = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield base.rsplit("/", 1)[0] + f"/{name}"
    eng.dispose()


def _answer(i: int) -> dict:
    return {
        "section": f"s{i:02d}",
        "position": i,
        "video_id": f"fake_{i:03d}",
        "fake_position": 1 + i % 2,
        "q1_answer": "video1",
        "q1_correct": i % 2 == 0,
        "q2_choice": "shap",
    }


def test_schema_created_and_idempotent_answers(db_url):
    db = Database(db_url)
    st = db.ensure_study("demo", "Demo")
    assert db.ensure_study("demo").id == st.id
    assert Database(db_url).ensure_study("demo").id == st.id  # second process, same row
    par = db.create_participant(st.id, seed=7, arm=0, assignment={"sections": []})
    row, created = db.save_answer(par.id, **_answer(1))
    assert created
    again, created = db.save_answer(par.id, **{**_answer(1), "q2_choice": "ltpa"})
    assert not created and again.q2_choice == "shap"
    # the database itself refuses a duplicate (participant, section)
    with pytest.raises(sa.exc.IntegrityError), db.write() as s:
        s.add(Answer(participant_id=par.id, **_answer(1)))
    # Q1 first, Q2 later on the same row; only the first Q2 counts
    db.save_answer(par.id, **{**_answer(2), "q2_choice": None})
    assert db.save_q2(par.id, "s02", q2_choice="ltpa", q2_position="B")
    assert not db.save_q2(par.id, "s02", q2_choice="gradcam", q2_position="A")
    assert db.get_answer(par.id, "s02").q2_choice == "ltpa"
    frame = db.responses_frame()
    assert tuple(frame.columns) == RESPONSE_COLUMNS
    assert list(frame["q2_choice"]) == ["shap", "ltpa"]
    frame = frame[frame["section"] == "s01"]
    assert len(frame) == 1 and frame.iloc[0]["q2_choice"] == "shap"
    assert list(db.participants_frame().columns) == PARTICIPANT_COLUMNS
    db.dispose()


def test_same_prolific_pid_is_one_participant(db_url):
    db = Database(db_url)
    st = db.ensure_study("demo")
    a = db.create_participant(st.id, seed=1, arm=0, assignment={}, prolific_pid="PID1")
    b = db.create_participant(st.id, seed=2, arm=1, assignment={}, prolific_pid="PID1")
    assert a.id == b.id and b.seed == 1
    other = db.ensure_study("other")
    c = db.create_participant(other.id, seed=3, arm=0, assignment={}, prolific_pid="PID1")
    assert c.id != a.id


def test_concurrent_writers_lose_nothing(db_url):
    """8 threads on two engines (as two server processes would) write 10 participants x
    6 answers each, every answer submitted twice; all 480 land exactly once."""
    dbs = [Database(db_url), Database(db_url)]
    st = dbs[0].ensure_study("load")
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        db = dbs[k % 2]
        try:
            for _ in range(10):
                par = db.create_participant(st.id, seed=k, arm=k % 4, assignment={})
                db.set_demographics(par.id, "large", "yes")
                for i in range(6):
                    db.save_answer(par.id, **{**_answer(i), "q2_choice": par.id})
                    db.save_answer(par.id, **_answer(i))  # replay
                db.set_status(par.id, "completed")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    frame = dbs[0].responses_frame("load")
    assert len(frame) == 8 * 10 * 6
    assert not frame.duplicated(["participant_id", "section"]).any()
    assert (frame["q2_choice"] == frame["participant_id"]).all()  # nothing crossed
    parts = dbs[1].participants_frame("load")
    assert len(parts) == 80 and (parts["status"] == "completed").all()
    assert (parts["n_answers"] == 6).all()


def test_sqlite_settings(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_bad_urls_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(StudyError, match="not a database URL"):
        Database("not a url")
    with pytest.raises(StudyError, match="does not exist"):
        Database(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    with pytest.raises(StudyError, match="cannot open database"):
        Database("postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert Database().url.endswith("env.db")


def test_postgres_url_gets_the_psycopg_driver():
    from xai_study.study.db import _normalise_url

    assert _normalise_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert _normalise_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert _normalise_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"


def test_servers_starting_together_share_one_schema(db_url):
    """Several processes creating the schema at the same moment (a multi-server start)."""
    errors: list[BaseException] = []
    dbs: list[Database] = []

    def start() -> None:
        try:
            dbs.append(Database(db_url))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    ids = {db.ensure_study("shared").id for db in dbs}
    assert len(ids) == 1
