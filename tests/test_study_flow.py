"""Study folder format, per-participant assignment and the survey state machine."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml
from study_util import EXPLAINERS, make_study

from xai_study.errors import StudyError
from xai_study.study.assign import make_assignment
from xai_study.study.db import Database
from xai_study.study.flow import AlreadyStarted, Survey, SurveyError, new_consent_key
from xai_study.study.spec import load_study


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("studies") / "tiny"
    make_study(out, n_sections=4)
    return out


@pytest.fixture()
def survey(study_dir, tmp_path) -> Survey:
    return Survey(load_study(study_dir), Database(f"sqlite:///{tmp_path / 'db.sqlite3'}"))


def _edit(study_dir: Path, tmp_path: Path, change) -> Path:
    """A copy of the study file (sharing the media) with ``change(data)`` applied."""
    data = yaml.safe_load((study_dir / "study.yaml").read_text())
    change(data)
    out = tmp_path / "edited"
    out.mkdir()
    (out / "media").symlink_to(study_dir / "media")
    (out / "study.yaml").write_text(yaml.safe_dump(data))
    return out


# -- study file ------------------------------------------------------------------------
def test_load_study(study_dir):
    st = load_study(study_dir)
    assert st.name == "tiny"
    assert [s.id for s in st.sections] == ["s01", "s02", "s03", "s04"]
    assert st.explainers == EXPLAINERS
    assert st.sections[0].video_id == "fake_001"
    assert st.sections[0].animations["shap"].name == "s01_shap.mp4"
    assert st.completion_code == "TEST-CODE-42"
    assert st.redirect_for("X1") == "https://example.org/done?cc=X1"
    assert st.attention_checks[0].answer == "Blue"
    # the helper's file names (s01_fake.mp4, s01_shap.mp4) give the answers away
    assert st.warnings and "reveal" in st.warnings[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["sections"][0].update(real="../outside.mp4"), "inside the study folder"),
        (lambda d: d["sections"][0].update(real="/etc/passwd.mp4"), "inside the study folder"),
        (lambda d: d["sections"][0].update(fake="media/missing.mp4"), "not found"),
        (lambda d: d["sections"][0]["animations"].pop("shap"), "do not match explainers"),
        (lambda d: d.update(sections_shown=9), "sections_shown"),
        (lambda d: d.update(q2_mode="maybe"), "q2_mode"),
        (lambda d: d["sections"][1].update(id="s01"), "duplicate section id"),
        (lambda d: d["attention_checks"][0].update(answer="Pink"), "answer"),
        (lambda d: d.update(redirect_url="javascript:alert(1)"), "redirect_url"),
        (lambda d: d.update(sections=[]), "non-empty"),
    ],
)
def test_bad_study_files_are_one_line_errors(study_dir, tmp_path, change, message):
    with pytest.raises(StudyError, match=message) as err:
        load_study(_edit(study_dir, tmp_path, change))
    assert "\n" not in str(err.value)


def test_missing_and_malformed_study(tmp_path):
    with pytest.raises(StudyError, match="not found"):
        load_study(tmp_path / "nope")
    with pytest.raises(StudyError, match="no study file"):
        load_study(tmp_path)
    (tmp_path / "study.yaml").write_text("sections: [unclosed")
    with pytest.raises(StudyError, match="not valid YAML"):
        load_study(tmp_path)


# -- assignment -------------------------------------------------------------------------
def test_assignment_is_reproducible_and_balanced(study_dir):
    st = load_study(study_dir)
    a = make_assignment(st, seed=1234, arm=0)
    assert a == make_assignment(st, seed=1234, arm=0)
    assert a != make_assignment(st, seed=1235, arm=0)
    secs = a["sections"]
    assert sorted(s["section"] for s in secs) == ["s01", "s02", "s03", "s04"]
    # fake video shown as Video 1 in exactly half of the sections
    assert Counter(s["fake_position"] for s in secs) == {1: 2, 2: 2}
    # Latin square: every explainer once in every slot over 4 sections
    for slot in range(4):
        assert sorted(s["order"][slot] for s in secs) == sorted(EXPLAINERS)
    # consecutive arms rotate the order: slot 0 differs between arm 0 and arm 1
    b = make_assignment(st, seed=1234, arm=1)
    assert [s["section"] for s in b["sections"]] == [s["section"] for s in secs]
    assert all(x["order"][0] != y["order"][0] for x, y in zip(secs, b["sections"], strict=True))


def test_section_order_varies_across_participants(study_dir):
    st = load_study(study_dir)
    firsts = Counter(make_assignment(st, seed=s)["sections"][0]["section"] for s in range(200))
    assert set(firsts) == {"s01", "s02", "s03", "s04"}
    assert min(firsts.values()) > 25  # roughly uniform (50 expected each)


# -- flow -----------------------------------------------------------------------------
def test_nothing_is_stored_before_consent(survey):
    assert survey.step(None).kind == "consent"
    with pytest.raises(SurveyError, match="consent"):
        survey.consent(False)
    with pytest.raises(SurveyError, match="consent"):
        survey.consent("yes")  # only a real True counts
    assert survey.db.count_participants(survey.study_row_id) == 0


def test_full_participant_flow(survey):
    par = survey.consent(True, {"PROLIFIC_PID": "abc123", "STUDY_ID": "st9", "SESSION_ID": "se7"})
    tok = par.token
    assert par.consent_at is not None
    assert survey.step(tok).kind == "demographics"
    with pytest.raises(SurveyError):
        survey.submit_section(tok, "s01", "video1", "A")  # demographics first
    with pytest.raises(SurveyError, match="screen"):
        survey.submit_demographics(tok, "huge", "yes")
    with pytest.raises(SurveyError, match="deepfakes"):
        survey.submit_demographics(tok, "small", "maybe")
    step = survey.submit_demographics(tok, "small", "heard of it")
    assert step.kind == "section" and step.position == 1 and step.total == 4

    order = [e["section"] for e in par.assignment_dict()["sections"]]
    assign = {e["section"]: e for e in par.assignment_dict()["sections"]}
    # not the current section -> rejected
    with pytest.raises(SurveyError, match="in order"):
        survey.submit_section(tok, order[1], "video1", "A")
    with pytest.raises(SurveyError, match="not part"):
        survey.submit_section(tok, "s99", "video1", "A")
    with pytest.raises(SurveyError, match="question 1"):
        survey.submit_q1(tok, order[0], "video3")
    with pytest.raises(SurveyError, match="question 1 first"):
        survey.submit_q2(tok, order[0], "A")  # Q2 (animations) only after Q1

    # section 1: answer the fake's position correctly, choose slot C
    first = assign[order[0]]
    view = step.section
    assert step.phase == "q1"
    assert view["videos"][first["fake_position"] - 1].name.endswith("_fake.mp4")
    assert [p.name for _, p in view["animations"]] == [
        f"{order[0]}_{name}.mp4" for name in first["order"]
    ]
    step = survey.submit_q1(tok, order[0], f"video{first['fake_position']}")
    assert (step.kind, step.phase, step.position, step.answered) == ("section", "q2", 1, 0)
    survey.submit_q1(tok, order[0], "dont_know")  # replay: the first answer stays
    with pytest.raises(SurveyError, match="animation"):
        survey.submit_q2(tok, order[0], "E")
    with pytest.raises(SurveyError, match="exactly one"):
        survey.submit_q2(tok, order[0], ["A", "B"])
    step = survey.submit_q2(tok, order[0], "C")
    assert step.kind == "check"  # the attention check follows section 1
    # a replay of section 1 with other answers changes nothing
    survey.submit_section(tok, order[0], "dont_know", "A")
    with pytest.raises(SurveyError, match="choose one"):
        survey.submit_check(tok, "ac1", "Purple")
    step = survey.submit_check(tok, "ac1", "Blue")  # passed: the flow goes on
    assert step.kind == "section" and step.position == 2

    wrong = {1: "video2", 2: "video1"}
    step = survey.submit_section(tok, order[1], wrong[assign[order[1]]["fake_position"]], "A")
    step = survey.submit_section(tok, order[2], "dont_know", "B")
    assert step.kind == "section" and step.answered == 3
    assert survey.db.get_participant(par.id).status == "in_progress"
    step = survey.submit_section(tok, order[3], "video1", "D")
    assert step.kind == "complete"
    assert step.code == "TEST-CODE-42"
    assert step.redirect == "https://example.org/done?cc=TEST-CODE-42"
    assert survey.db.get_participant(par.id).status == "completed"

    frame = survey.db.responses_frame("tiny")
    assert list(frame["section"]) == order
    row0 = frame.iloc[0]
    assert row0["q1_correct"] is True
    assert row0["q2_choice"] == first["order"][2]  # slot C
    assert row0["q2_position"] == "C"
    assert frame.iloc[1]["q1_correct"] is False
    assert frame.iloc[2]["q1_correct"] is None and frame.iloc[2]["q1_answer"] == "dont_know"
    assert set(frame["screen"]) == {"small"} and set(frame["familiarity"]) == {"heard of it"}
    assert (frame["time_spent_s"] >= 0).all() and (frame["q1_time_spent_s"] >= 0).all()
    assert (frame["answered_at"] >= frame["q1_answered_at"]).all()
    assert frame["video_id"].str.startswith("fake_").all()

    parts = survey.db.participants_frame("tiny")
    assert len(parts) == 1
    p = parts.iloc[0]
    assert (p["prolific_pid"], p["prolific_study_id"], p["prolific_session_id"]) == (
        "abc123",
        "st9",
        "se7",
    )
    assert (p["n_answers"], p["checks_passed"], p["checks_total"]) == (4, 1, 1)


def test_resume_by_token_not_by_prolific_pid_alone(survey):
    par = survey.consent(True, {"PROLIFIC_PID": "p-1"})
    survey.submit_demographics(par.token, "large", "no")
    first = par.assignment_dict()["sections"][0]["section"]
    survey.submit_section(par.token, first, "video1", "A")
    # same link in the same browser (token kept): same participant, same place
    again = survey.find(par.token, {"PROLIFIC_PID": "p-1"})
    assert again.id == par.id
    assert survey.step(again.token).kind == "check"
    assert survey.find(par.token).id == par.id
    # the link alone (another browser, or someone who knows the id): no session
    with pytest.raises(AlreadyStarted, match="already started in another browser"):
        survey.find(None, {"PROLIFIC_PID": "p-1"})
    with pytest.raises(AlreadyStarted, match="continue there or contact the researcher"):
        survey.consent(True, {"PROLIFIC_PID": "p-1"})
    # the browser remembers p-1 but the link names someone new: not p-1's answers
    assert survey.find(par.token, {"PROLIFIC_PID": "p-2"}) is None
    # a second Survey object (another server process) resumes the same way
    other = Survey(survey.study, Database(survey.db.url))
    assert other.step(par.token).kind == "check"
    assert survey.db.count_participants(survey.study_row_id) == 1


def test_unknown_or_forged_tokens(survey):
    assert survey.step("not-a-token").kind == "consent"
    for bad in (None, "", "x" * 500, "../../etc"):
        with pytest.raises(SurveyError, match="session was not found"):
            survey.submit_demographics(bad, "large", "yes")
    with pytest.raises(SurveyError, match="URL parameter"):
        survey.consent(True, {"PROLIFIC_PID": "x" * 500})


def test_counterbalancing_arms_cycle(survey):
    arms = [survey.consent(True).arm for _ in range(8)]
    assert arms == [0, 1, 2, 3, 0, 1, 2, 3]


def test_multiple_choice_study(study_dir, tmp_path):
    edited = _edit(study_dir, tmp_path, lambda d: d.update(q2_mode="multiple", sections_shown=2))
    sv = Survey(load_study(edited), Database(f"sqlite:///{tmp_path / 'm.sqlite3'}"))
    par = sv.consent(True)
    sv.submit_demographics(par.token, "large", "yes")
    entry = par.assignment_dict()["sections"][0]
    with pytest.raises(SurveyError):
        sv.submit_section(par.token, entry["section"], "video1", ["A", "A"])
    sv.submit_section(par.token, entry["section"], "video1", ["D", "B"])
    row = sv.db.responses_frame().iloc[0]
    assert row["q2_choice"] == f"{entry['order'][1]};{entry['order'][3]}"
    assert row["q2_position"] == "B;D"
    assert len(par.assignment_dict()["sections"]) == 2


def test_json_study_file(study_dir, tmp_path):
    import json

    data = yaml.safe_load((study_dir / "study.yaml").read_text())
    out = tmp_path / "as_json"
    out.mkdir()
    (out / "media").symlink_to(study_dir / "media")
    (out / "study.json").write_text(json.dumps(data))
    st = load_study(out / "study.json")
    assert st.path.name == "study.json" and len(st.sections) == 4
    (out / "study.json").write_text("{not json")
    with pytest.raises(StudyError, match="not valid JSON"):
        load_study(out)


def test_serve_command_errors(study_dir, tmp_path, capsys):
    from xai_study.cli import main

    assert main(["serve", "--study", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("error: study folder not found")
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    assert main(["serve", "--study", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no study file")
    assert main(["serve", "--study", str(study_dir), "--db", "nonsense://x"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot open database")


@pytest.mark.parametrize("pid", [None, "retry-1"], ids=["no-link", "prolific-link"])
def test_retried_consent_is_idempotent(survey, pid):
    """A consent whose reply was lost and that is sent again (same consent key) returns
    the participant the first one created: no orphan rows."""
    params = {"PROLIFIC_PID": pid} if pid else {}
    key = new_consent_key()
    first = survey.consent(True, params, key)
    again = survey.consent(True, params, key)
    assert again.id == first.id and again.token == first.token
    # a reload after the lost reply (no token in the browser, the key still there)
    assert survey.find(None, params, key).id == first.id
    assert survey.db.count_participants(survey.study_row_id) == 1
    # another key is another person (or, on a known PROLIFIC_PID, refused)
    if pid:
        with pytest.raises(AlreadyStarted):
            survey.consent(True, params, new_consent_key())
    else:
        assert survey.consent(True, params, new_consent_key()).id != first.id


def test_concurrent_retried_consents_make_one_participant(survey):
    import threading

    key = new_consent_key()
    got, errors = [], []
    start = threading.Barrier(8)

    def go():
        start.wait()  # all at once, like a double click with a lost reply
        try:
            got.append(survey.consent(True, {"PROLIFIC_PID": "race"}, key).id)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(got)) == 1 and len(got) == 8
    assert survey.db.count_participants(survey.study_row_id) == 1


@pytest.mark.parametrize(
    "key", ["short", "x" * 65, "has space in it!!", 12345678901234567890, ["a" * 20]]
)
def test_malformed_consent_keys_are_refused(survey, key):
    with pytest.raises(SurveyError, match="invalid consent key"):
        survey.consent(True, {}, key)
    assert survey.db.count_participants(survey.study_row_id) == 0
