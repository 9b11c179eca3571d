"""Withdrawing a participant: left out of the analysis, session closed, data erased on
request (``xai-study withdraw``)."""

from __future__ import annotations

import pytest
from study_util import make_study

from xai_study.cli import main
from xai_study.study.analysis import analyze, load_database
from xai_study.study.db import Database
from xai_study.study.flow import Survey, SurveyError
from xai_study.study.spec import load_study


@pytest.fixture()
def setup(tmp_path):
    study_dir = tmp_path / "tiny"
    make_study(study_dir, n_sections=2)
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    survey = Survey(load_study(study_dir), Database(url))
    people = []
    for k in range(3):
        par = survey.consent(True, {"PROLIFIC_PID": f"pp{k}"})
        tok = par.token
        step = survey.submit_demographics(tok, "large", "yes")
        while step.kind != "complete":
            if step.kind == "check":
                step = survey.submit_check(tok, step.check.id, step.check.answer)
            elif step.phase == "q1":
                step = survey.submit_q1(tok, step.section["section"], "dont_know")
            else:
                step = survey.submit_q2(tok, step.section["section"], step.section["labels"][0])
        people.append(par)
    return survey, url, people


def test_withdraw_leaves_the_participant_out_and_closes_the_session(setup, capsys):
    survey, url, people = setup
    gone = people[1]
    before = analyze(*load_database(survey.db, survey.study.name))
    assert main(["withdraw", "--db", url, gone.id]) == 0
    assert f"participant {gone.id} withdrawn" in capsys.readouterr().out
    assert survey.db.get_participant(gone.id).status == "withdrawn"
    # answers stay (no --delete) but every statistic leaves them out and counts them
    assert len(survey.db.answers(gone.id)) == 2
    after = analyze(*load_database(survey.db, survey.study.name))
    assert after.overview["withdrawn"] == 1
    assert after.overview["participants"] == before.overview["participants"] - 1
    step = survey.step(gone.token)  # a reload shows no completion code ...
    assert step.kind == "withdrawn" and not step.code and not step.deleted
    with pytest.raises(SurveyError, match="withdrawn"):
        survey.submit_check(gone.token, "ac1", "Blue")  # ... and takes no more answers
    assert survey.db.get_participant(gone.id).status == "withdrawn"  # ... nor re-completes
    survey.step(people[0].token)  # the others go on


def test_withdraw_delete_erases_answers_checks_and_demographics(setup, capsys):
    survey, url, people = setup
    gone = people[0]
    assert len(survey.db.answers(gone.id)) == 2 and len(survey.db.checks(gone.id)) == 1
    assert main(["withdraw", "--db", url, gone.id, "--delete"]) == 0
    assert "deleted 3 answer/check rows" in capsys.readouterr().out
    par = survey.db.get_participant(gone.id)
    assert par.status == "withdrawn" and par.screen is None and par.prolific_pid is None
    assert survey.db.answers(gone.id) == [] and survey.db.checks(gone.id) == []
    assert len(survey.db.answers(people[2].id)) == 2  # nobody else's data is touched


def test_withdraw_errors(setup, tmp_path, capsys):
    _, url, _ = setup
    assert main(["withdraw", "--db", url, "nobody"]) == 2
    assert "no participant 'nobody'" in capsys.readouterr().err
    assert main(["withdraw", "--db", f"sqlite:///{tmp_path / 'missing.db'}", "x"]) == 2
    assert "error:" in capsys.readouterr().err


def test_participant_withdraws_from_the_survey_page(setup):
    survey, _, people = setup
    # halfway through: one section answered, then "Leave the study" keeping the answers
    par = survey.consent(True, {"PROLIFIC_PID": "mid"})
    step = survey.submit_demographics(par.token, "small", "no")
    survey.submit_section(par.token, step.section["section"], "video1", "A")
    step = survey.withdraw(par.token, False)
    assert step.kind == "withdrawn" and not step.deleted and not step.code
    assert survey.db.get_participant(par.id).status == "withdrawn"
    assert len(survey.db.answers(par.id)) == 1
    with pytest.raises(SurveyError, match="withdrawn"):
        survey.submit_q1(par.token, "s02", "video1")
    # deleting afterwards is still possible; repeating is harmless
    step = survey.withdraw(par.token, True)
    assert step.deleted and survey.db.answers(par.id) == []
    assert survey.withdraw(par.token, True).kind == "withdrawn"
    assert survey.step(par.token).deleted  # what a reload shows
    # after completion too; nobody else is touched
    assert survey.withdraw(people[2].token, True).deleted
    assert len(survey.db.answers(people[0].id)) == 2
    assert survey.step(people[0].token).kind == "complete"
    with pytest.raises(SurveyError, match="not found"):
        survey.withdraw("forged", True)
    with pytest.raises(SurveyError, match="invalid"):
        survey.withdraw(people[0].token, "yes please")
    assert survey.db.get_participant(people[0].id).status == "completed"
