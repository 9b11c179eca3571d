"""Prolific-ready serving (issue #18 item 4): a required PROLIFIC_PID, the screen-out
code after a failed attention check (never the completion code), the participant quota
and its "study closed" page, the speeder flag and ``--exclude-speeders``, no serving
off loopback without an admin password, and ``serve --no-demo``; at flow level and
over HTTP, with their failure paths."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from sqlalchemy import update
from study_util import free_port, make_study
from test_study_app import IDX, call

from xai_study.errors import StudyError
from xai_study.study.db import Answer, Database
from xai_study.study.flow import NotAdmitted, Survey, SurveyError
from xai_study.study.spec import load_study
from xai_study.study.speeders import median_section_time, speeders

ROOT = Path(__file__).resolve().parents[1]
PID = {"PROLIFIC_PID": "p-1", "STUDY_ID": "st", "SESSION_ID": "se"}


def _survey(tmp_path: Path, **fields) -> Survey:
    folder = tmp_path / "tiny"
    make_study(folder, n_sections=2, **fields)
    return Survey(load_study(folder), Database(f"sqlite:///{tmp_path / 'db.sqlite3'}"))


def _to_check(survey: Survey, tok: str):
    survey.submit_demographics(tok, "large", "no")
    first = survey.step(tok).section["section"]
    return survey.submit_section(tok, first, "video1", "A")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quota": 0}, "quota must be a positive integer"),
        ({"quota": "ten"}, "quota must be a positive integer"),
        ({"require_prolific_pid": "yes"}, "require_prolific_pid must be true or false"),
        ({"screenout_code": "x" * 101}, "screenout_code: .* is not a valid code"),
    ],
)
def test_study_file_checks_the_new_fields(tmp_path, fields, message):
    with pytest.raises(StudyError, match=message):
        make_study(tmp_path / "bad", n_sections=1, **fields)


def test_a_required_prolific_pid(tmp_path):
    survey = _survey(tmp_path, require_prolific_pid=True)
    refused = survey.admission({})
    assert isinstance(refused, NotAdmitted) and refused.kind == "no_pid"
    for params in ({}, {"PROLIFIC_PID": "  "}, {"STUDY_ID": "st"}):
        with pytest.raises(NotAdmitted, match="PROLIFIC_PID"):
            survey.consent(True, params)
    assert survey.db.count_participants(survey.study_row_id) == 0  # nothing stored
    assert survey.admission(PID) is None
    par = survey.consent(True, PID)
    assert par.prolific_pid == "p-1"


def test_a_failed_attention_check_screens_out(tmp_path):
    survey = _survey(tmp_path, screenout_code="SCREEN-7")
    tok = survey.consent(True, PID).token
    assert _to_check(survey, tok).kind == "check"
    step = survey.submit_check(tok, "ac1", "Red")
    assert (step.kind, step.code) == ("screened_out", "SCREEN-7")
    assert step.redirect == "https://example.org/done?cc=SCREEN-7"  # never the completion code
    assert "TEST-CODE-42" not in f"{step.code} {step.redirect}"
    par = survey.participant(tok)
    assert par.status == "screened_out"
    # a reload shows the same page; no more answers, no completion
    assert survey.step(tok).kind == "screened_out"
    second = [s for s in par.assignment_dict()["sections"]][1]["section"]
    with pytest.raises(SurveyError, match="ended"):
        survey.submit_q1(tok, second, "video1")
    with pytest.raises(SurveyError, match="ended"):
        survey.submit_check(tok, "ac1", "Blue")
    assert survey.participant(tok).status == "screened_out"
    # leaving is still possible (and deletes the answers)
    assert survey.withdraw(tok, True).kind == "withdrawn"


def test_screen_out_without_a_code_gives_no_code_and_no_link(tmp_path):
    survey = _survey(tmp_path)  # no screenout_code
    tok = survey.consent(True, PID).token
    _to_check(survey, tok)
    step = survey.submit_check(tok, "ac1", "Green")
    assert (step.kind, step.code, step.redirect) == ("screened_out", "", "")


def test_a_passed_check_still_completes(tmp_path):
    survey = _survey(tmp_path, screenout_code="SCREEN-7")
    tok = survey.consent(True, PID).token
    _to_check(survey, tok)
    step = survey.submit_check(tok, "ac1", "Blue")
    step = survey.submit_section(tok, step.section["section"], "video2", "B")
    assert (step.kind, step.code) == ("complete", "TEST-CODE-42")


def test_the_quota_closes_the_study(tmp_path):
    survey = _survey(tmp_path, quota=2)
    first = survey.consent(True, {"PROLIFIC_PID": "a"})
    survey.consent(True, {"PROLIFIC_PID": "b"})
    assert survey.admission({}).kind == "closed"
    with pytest.raises(NotAdmitted, match="closed"):
        survey.consent(True, {"PROLIFIC_PID": "c"})
    # those who have a place keep it
    assert survey.submit_demographics(first.token, "large", "no").kind == "section"
    # a withdrawal frees a place
    survey.withdraw(first.token, False)
    assert survey.admission({}) is None
    assert survey.consent(True, {"PROLIFIC_PID": "c"}).prolific_pid == "c"
    assert survey.db.count_participants(survey.study_row_id, active=True) == 2


def test_concurrent_consents_never_pass_the_quota(tmp_path):
    survey = _survey(tmp_path, quota=3)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def one(k: int) -> None:
        barrier.wait()
        try:
            survey.consent(True, {"PROLIFIC_PID": f"race-{k}"})
            results.append("in")
        except NotAdmitted:
            results.append("closed")

    threads = [threading.Thread(target=one, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["closed"] * 5 + ["in"] * 3
    assert survey.db.count_participants(survey.study_row_id) == 3


def test_the_speeder_rule():
    assert median_section_time([(1.0, 2.0), (3.0, None), (5.0, 5.0)]) == 6.5
    assert median_section_time([(None, 1.0)]) is None
    times = {"a": 30.0, "b": 36.0, "c": 42.0, "fast": 5.0, "none": None}
    flags = speeders(times)
    assert flags == {"a": False, "b": False, "c": False, "fast": True, "none": False}
    # too few participants for a typical time: nobody is flagged
    assert not any(speeders({"a": 30.0, "fast": 1.0}).values())
    # withdrawn participants do not set the typical time
    assert speeders({"a": 30.0, "b": 30.0, "w": 1.0, "x": 9.0}, withdrawn=["w"])["x"] is True


def test_speeders_in_participants_csv_and_the_analysis(tmp_path):
    from xai_study.study.analysis import analyze
    from xai_study.study.export import export_tables

    survey = _survey(tmp_path, checks=False)
    seconds = {"slow1": 20.0, "slow2": 24.0, "slow3": 30.0, "fast": 2.0}
    ids = {}
    for name, secs in seconds.items():
        tok = survey.consent(True, {"PROLIFIC_PID": name}).token
        survey.submit_demographics(tok, "large", "no")
        step = survey.step(tok)
        while step.kind == "section":
            step = survey.submit_section(tok, step.section["section"], "video1", "A")
        par = survey.participant(tok)
        ids[name] = par.id
        with survey.db.write() as s:  # the answer times as if measured
            s.execute(
                update(Answer)
                .where(Answer.participant_id == par.id)
                .values(q1_time_spent_s=secs / 2, time_spent_s=secs / 2)
            )
    parts = survey.db.participants_frame("tiny").set_index("participant_id")
    assert bool(parts.loc[ids["fast"], "speeder"]) is True
    assert not parts.loc[[ids[n] for n in ("slow1", "slow2", "slow3")], "speeder"].any()
    assert parts.loc[ids["slow2"], "median_section_s"] == pytest.approx(24.0)
    export_tables(
        survey.db.responses_frame("tiny"), survey.db.participants_frame("tiny"), tmp_path / "out"
    )
    header = (tmp_path / "out" / "participants.csv").read_text().splitlines()[0].split(",")
    assert "speeder" in header and "median_section_s" in header
    responses = survey.db.responses_frame("tiny")
    kept = analyze(responses, survey.db.participants_frame("tiny"), resamples=10, permutations=9)
    cut = analyze(
        responses,
        survey.db.participants_frame("tiny"),
        exclude_speeders=True,
        resamples=10,
        permutations=9,
    )
    assert kept.overview["participants"] == 4 and kept.overview["speeders"] == 1
    assert cut.overview["participants"] == 3 and cut.overview["excluded"] == 1
    # an imported table without the column: the same rule from the answer times
    no_flag = survey.db.participants_frame("tiny").drop(columns=["speeder"])
    again = analyze(responses, no_flag, exclude_speeders=True, resamples=10, permutations=9)
    assert again.overview["participants"] == 3


def test_serve_off_loopback_needs_an_admin_password(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XAI_STUDY_ADMIN_PASSWORD"}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "xai_study", "serve", "--host", "0.0.0.0", "--port", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --host 0.0.0.0 is reachable")
    assert "XAI_STUDY_ADMIN_PASSWORD" in lines[0]


@pytest.fixture(scope="module")
def prolific_server(tmp_path_factory):
    from xai_study.ui.app import serve
    from xai_study.ui.context import AppContext

    root = tmp_path_factory.mktemp("prolific")
    make_study(
        root / "tiny",
        n_sections=2,
        quota=2,
        require_prolific_pid=True,
        screenout_code="SCREEN-7",
    )
    ctx = AppContext(
        study=load_study(root / "tiny"),
        db=Database(f"sqlite:///{root / 'p.db'}"),
        admin_password="pw",
        demo=False,
    )
    blocks, url = serve(ctx, "127.0.0.1", free_port(), block=False)
    yield url, ctx
    blocks.close()


def test_prolific_rules_over_http(prolific_server):
    url, ctx = prolific_server
    # no PROLIFIC_PID: neither the page load nor a consent lets anyone in
    out = call(url, "resume", [None, None])
    assert "PROLIFIC_PID" in out[IDX["code"]] and not out[IDX["token"]]
    out = call(url, "consent", [None, True, None])
    assert "PROLIFIC_PID" in out[IDX["code"]] and not out[IDX["token"]]
    assert ctx.db.count_participants(ctx.study_row_id) == 0
    # with one: a failed check ends at the screen-out code, never the completion code
    link = "?PROLIFIC_PID=http-1&STUDY_ID=st&SESSION_ID=se"
    tok = call(url, "consent", [None, True, None], link)[IDX["token"]]
    out = call(url, "demographics", [tok, "large", "yes"])
    out = call(url, "q1", [tok, out[IDX["item"]], "video1"])
    out = call(url, "q2", [tok, out[IDX["item"]], "A"])
    assert out[IDX["item"]] == "ac1"
    out = call(url, "check", [tok, "ac1", "Red"])
    assert "SCREEN-7" in out[IDX["code"]] and "TEST-CODE-42" not in str(out)
    out = call(url, "resume", [tok, None], link)  # a reload: the same page
    assert "SCREEN-7" in out[IDX["code"]] and "TEST-CODE-42" not in str(out)
    # the second place, then the study is closed for newcomers
    assert call(url, "consent", [None, True, None], "?PROLIFIC_PID=http-2")[IDX["token"]]
    out = call(url, "resume", [None, None], "?PROLIFIC_PID=http-3")
    assert "study is closed" in out[IDX["code"]] and not out[IDX["token"]]
    out = call(url, "consent", [None, True, None], "?PROLIFIC_PID=http-3")
    assert "study is closed" in out[IDX["code"]] and not out[IDX["token"]]
    assert ctx.db.count_participants(ctx.study_row_id) == 2


def test_no_demo_page(prolific_server):
    url, ctx = prolific_server
    assert "demo" not in ctx.extra["pages"]
    cfg = requests.get(f"{url.rstrip('/')}/config", timeout=30).json()
    assert not any(d.get("api_name") == "analyse" for d in cfg["dependencies"])
