"""Export, CLI (export / analyze / import-responses), importer and results page."""

from __future__ import annotations

import csv
import random
import types
from pathlib import Path

import pandas as pd
import pytest

from xai_study.cli import main
from xai_study.errors import StudyError
from xai_study.study.analysis import MODEL_COLUMNS, analyze, analyze_database, paper_responses
from xai_study.study.db import Database
from xai_study.study.export import (
    FORMULA_STARTS,
    neutralise_cell,
    read_csv,
    read_stats,
    unneutralise_cell,
    write_csv,
)
from xai_study.study.importer import (
    convert_form,
    load_column_map,
    parse_column_map,
    read_form_csv,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
EVIL = ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
        "\tx", "\r=1", "\n=1", "  =1+1", "'quoted", "''=x"]  # fmt: skip
EXPLAINERS = ["gradcam", "shap", "ltpa", "bonettini"]


def fill_database(url: str, participants: int = 14, seed: int = 3) -> Database:
    """A small study written through the real Database API (hostile ids included)."""
    db = Database(url)
    study = db.ensure_study("demo")
    rng = random.Random(seed)
    for i in range(participants):
        pid = EVIL[i] if i < len(EVIL) else f"PID{i}"
        p = db.create_participant(study.id, seed=i, arm=i % 2, assignment={}, prolific_pid=pid)
        if i == participants - 1:
            continue  # consented, never answered
        db.set_demographics(
            p.id, rng.choice(["large", "small"]), rng.choice(["yes", "heard of it", "no"])
        )
        n = 5 if i % 5 else 2
        for k in range(n):
            q1 = rng.choice(["video1", "video2", "video2", "dont_know"])
            many = rng.random() < 0.1
            choice = ";".join(rng.sample(EXPLAINERS, 2)) if many else rng.choice(EXPLAINERS)
            db.save_answer(
                p.id,
                section=f"s{k + 1:02d}",
                position=k,
                video_id=EVIL[k] if k < 2 else f"fake_{k:03d}",
                real_video_id=f"real_{k:03d}",
                fake_position=2,
                q1_answer=q1,
                q1_correct=None if q1 == "dont_know" else q1 == "video2",
                q2_choice=choice,
                q2_order=";".join(EXPLAINERS),
                time_spent_s=1.5 + k,
            )
        if i == 3:
            db.set_status(p.id, "withdrawn")
        elif n == 5:
            db.set_status(p.id, "completed")
    return db


@pytest.fixture()
def study_db(tmp_path) -> tuple[str, Database]:
    url = f"sqlite:///{tmp_path / 'study.sqlite3'}"
    return url, fill_database(url)


def _cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


def assert_no_formula_cells(path: Path) -> None:
    import re

    number = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
    for cell in _cells(path):
        stripped = cell.lstrip(" ")
        if stripped and stripped[0] in FORMULA_STARTS:
            assert number.match(stripped), f"{path.name}: formula cell {cell!r}"


# --------------------------------------------------------------------- neutralising


@pytest.mark.parametrize("value", EVIL)
def test_formula_cells_are_neutralised_and_restored(value):
    safe = neutralise_cell(value)
    assert safe.startswith("'")
    assert unneutralise_cell(safe) == value


@pytest.mark.parametrize("value", ["-0.5", "+3", "1e-3", "plain", "", "a=b", "video_1"])
def test_numbers_and_plain_text_are_left_alone(value):
    assert neutralise_cell(value) == value


def test_write_csv_round_trip_is_exact(tmp_path):
    frame = pd.DataFrame(
        {"text": EVIL + ["ok"], "number": [-1.25] * (len(EVIL) + 1), "id": ["007"] * 11}
    )
    path = write_csv(frame, tmp_path / "t.csv")
    assert_no_formula_cells(path)
    back = read_csv(path, text_columns=("text", "id"))
    assert back["text"].tolist() == frame["text"].tolist()
    assert back["id"].tolist() == ["007"] * 11
    assert back["number"].tolist() == [-1.25] * 11


# --------------------------------------------------------------------- export -> analyze


def test_export_then_analyze_equals_results_page(study_db, tmp_path):
    """Acceptance: export -> analyze --responses gives the results page's numbers."""
    from xai_study.ui.context import AppContext
    from xai_study.ui.results import build_payload

    url, db = study_db
    ctx = AppContext(study=types.SimpleNamespace(name="demo"), db=db, admin_password="pw")
    page = build_payload(ctx, tmp_path / "page")
    assert page.analysis.overview["withdrawn"] == 1

    out = tmp_path / "export"
    assert main(["export", "--db", url, "--out", str(out)]) == 0
    for name in ("responses.csv", "participants.csv"):
        assert_no_formula_cells(out / name)
    assert main(["analyze", "--responses", str(out / "responses.csv"), "--out",
                 str(tmp_path / "cli")]) == 0  # fmt: skip
    cli_stats = read_stats(tmp_path / "cli" / "stats.csv")
    pd.testing.assert_frame_equal(cli_stats, page.analysis.stats, check_exact=True)
    # the page's own stats.csv download holds the same table
    pd.testing.assert_frame_equal(read_stats(page.files["stats.csv"]), cli_stats, check_exact=True)
    cli_signs = read_csv(tmp_path / "cli" / "sign_tests.csv", text_columns=("explainer_a",
                         "explainer_b", "level"))  # fmt: skip
    pd.testing.assert_frame_equal(
        cli_signs, page.analysis.sign_tests.astype({"n_a": "int64", "n_b": "int64"}),
        check_dtype=False, check_exact=True,
    )  # fmt: skip
    for name in ("stats.csv", "sign_tests.csv", "choices_by_video.csv"):
        assert_no_formula_cells(tmp_path / "cli" / name)
    # hostile video ids survive the round trip unchanged
    assert set(EVIL[:2]) <= set(page.analysis.video_table.index)
    # and analyze --db gives the same again
    assert main(["analyze", "--db", url, "--out", str(tmp_path / "db"), "--no-plots"]) == 0
    pd.testing.assert_frame_equal(
        read_stats(tmp_path / "db" / "stats.csv"), cli_stats, check_exact=True
    )
    assert not (tmp_path / "db" / "choice_shares.png").exists()
    assert (tmp_path / "cli" / "choice_shares.png").stat().st_size > 5000


def test_analyze_writes_paper_sign_tests(tmp_path, capsys):
    responses = tmp_path / "responses.csv"
    write_csv(paper_responses(), responses)
    assert main(["analyze", "--responses", str(responses), "--out", str(tmp_path / "o"),
                 "--no-plots"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "GradCAM 165 (23%), SHAP 221 (31%), LTPA 137 (19%), Bonettini 185 (26%)" in text
    assert "explainer:SHAP" in text and "SEs clustered by participant" in text
    assert "sign test (participants) GradCAM vs SHAP:" in text
    model = pd.read_csv(tmp_path / "o" / "preference_model.csv")
    assert list(model.columns) == list(MODEL_COLUMNS)
    assert model["term"].tolist() == [
        "explainer:SHAP", "explainer:LTPA", "explainer:Bonettini"
    ]  # fmt: skip
    signs = pd.read_csv(tmp_path / "o" / "sign_tests.csv")
    assert list(signs.columns) == [
        "explainer_a", "explainer_b", "level", "n_a", "n_b", "p_value", "p_holm"
    ]  # fmt: skip
    assert set(signs["level"]) == {"answer", "participant"}
    row = signs[(signs.level == "answer") & (signs.explainer_a == "GradCAM")
                & (signs.explainer_b == "SHAP")].iloc[0]  # fmt: skip
    assert (row.n_a, row.n_b) == (165, 221)


def test_analyze_with_metrics_file(tmp_path):
    responses = tmp_path / "responses.csv"
    write_csv(paper_responses(), responses)
    metrics = tmp_path / "summary.csv"
    metrics.write_text("explainer,V,tau,rho,mu\ngradcam,4,1,1,1\nshap,3,2,2,2\nltpa,2,3,3,3\n"
                       "bonettini,1,4,4,4\n")  # fmt: skip
    out = tmp_path / "o"
    assert main(["analyze", "--responses", str(responses), "--metrics", str(metrics),
                 "--out", str(out), "--no-plots"]) == 0  # fmt: skip
    corr = pd.read_csv(out / "preference_vs_metrics.csv").set_index("metric")
    assert corr.loc["V", "spearman_rho"] == pytest.approx(0.0, abs=1e-12)
    assert corr.loc["tau", "n"] == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["analyze", "--responses", "missing.csv", "--out", "o"], "file not found"),
        (["analyze", "--out", "o"], "one of the arguments --db --responses is required"),
        (["analyze", "--db", "nonsense://", "--out", "o"], "database"),
        (["export", "--db", "sqlite:///no/such/folder/x.db", "--out", "o"], "file not found"),
        (["analyze", "--db", "sqlite:///typo.sqlite3", "--out", "o"], "file not found"),
    ],
)
def test_cli_errors_are_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_analyze_rejects_a_malformed_responses_file(tmp_path, capsys):
    bad = tmp_path / "responses.csv"
    bad.write_text("participant_id,section\na,1\n")
    assert main(["analyze", "--responses", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "lacks column(s) video_id" in capsys.readouterr().err


def test_export_needs_a_study_when_the_database_holds_several(study_db, tmp_path, capsys):
    url, db = study_db
    db.ensure_study("second")
    assert main(["export", "--db", url, "--out", str(tmp_path / "o")]) == 2
    assert "choose one with --study" in capsys.readouterr().err
    assert main(["export", "--db", url, "--study", "demo", "--out", str(tmp_path / "o")]) == 0
    assert len(pd.read_csv(tmp_path / "o" / "participants.csv")) == 14


# --------------------------------------------------------------------- importer


def test_import_example_form_into_database(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'imported.sqlite3'}"
    argv = ["import-responses", str(EXAMPLES / "form_export.csv"), "--columns",
            str(EXAMPLES / "form_columns.yaml"), "--db", url, "--study", "paper"]  # fmt: skip
    assert main(argv) == 0
    assert "8 new participants, 23 new answers" in capsys.readouterr().out
    assert main(argv) == 0  # importing twice adds nothing
    assert "0 new participants, 0 new answers" in capsys.readouterr().out
    db = Database(url)
    responses = db.responses_frame("paper")
    assert len(responses) == 23
    people = db.participants_frame("paper").set_index("prolific_pid")
    assert people.loc["R1001", "screen"] == "large" and people.loc["R1001", "familiarity"] == "yes"
    assert people.loc["R1008", "status"] == "in_progress"  # left section 3 empty
    assert (people.drop(index="R1008")["status"] == "completed").all()
    first = responses[responses.participant_id == people.loc["R1001", "participant_id"]]
    first = first.set_index("section")
    # section 1: "I do not know", "Animation A" = gradcam; section 2 overrides the order:
    # "Video 1" is right (fake: video1) and "Animation A" = shap there
    assert first.loc["s01", "q1_answer"] == "dont_know" and pd.isna(first.loc["s01", "q1_correct"])
    assert first.loc["s01", "q2_choice"] == "gradcam"
    assert first.loc["s02", "q1_correct"] is True or first.loc["s02", "q1_correct"] == True  # noqa: E712
    assert first.loc["s02", "q2_choice"] == "shap"
    r4 = responses[responses.participant_id == people.loc["R1004", "participant_id"]]
    assert r4.set_index("section").loc["s01", "q2_choice"] == "gradcam;shap"  # checkbox answer
    stamp = pd.Timestamp(first.loc["s01", "answered_at"])
    assert stamp == pd.Timestamp("2021-03-10 18:09:25", tz="UTC")
    # analysed like browser answers
    result = analyze_database(db, "paper")
    assert result.overview["participants"] == 8 and result.explainers == EXPLAINERS


def test_import_without_database_writes_csv(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    out = tmp_path / "o"
    assert main(["import-responses", str(EXAMPLES / "form_export.csv"), "--columns",
                 str(EXAMPLES / "form_columns.yaml"), "--out", str(out)]) == 0  # fmt: skip
    assert main(["analyze", "--responses", str(out / "responses.csv"), "--out", str(out),
                 "--no-plots"]) == 0  # fmt: skip
    stats = read_stats(out / "stats.csv").set_index(["group", "statistic", "key"])["value"]
    assert stats[("participants", "participants", "")] == 8
    assert stats[("participants", "answers", "")] == 23


def test_column_map_errors(tmp_path):
    cmap = load_column_map(EXAMPLES / "form_columns.yaml")
    form = read_form_csv(EXAMPLES / "form_export.csv")
    bad = form.copy()
    bad.iloc[2, 4] = "Video 3"
    with pytest.raises(StudyError, match=r"row 4, column 'Section 1 .*'Video 3' is not in"):
        convert_form(bad, cmap)
    with pytest.raises(StudyError, match="no column"):
        convert_form(form.drop(columns=["Timestamp"]), cmap)
    with pytest.raises(StudyError, match="fake: video1"):
        parse_column_map({"sections": [{"video_id": "v", "q1": "c"}], "q1_values": {"a": "video1"}})
    with pytest.raises(StudyError, match="not one of"):
        parse_column_map({"q1_values": {"Video 1": "first"}, "sections": [{}]})
    with pytest.raises(StudyError, match="unknown key"):
        parse_column_map({"sections": [], "colums": {}})
    broken = tmp_path / "broken.yaml"
    broken.write_text("sections: [\n")
    with pytest.raises(StudyError, match="not valid YAML"):
        load_column_map(broken)


# --------------------------------------------------------------------- results page


def test_results_page_needs_the_password(study_db):
    import gradio as gr

    from xai_study.ui import results
    from xai_study.ui.context import AppContext

    _, db = study_db
    ctx = AppContext(study=types.SimpleNamespace(name="demo"), db=db, admin_password="s3cret")
    with gr.Blocks():
        page = results.render(ctx)
    results.WRONG_PASSWORD_DELAY = 0.0
    for wrong in (None, "", "S3CRET", "s3cret "):
        out = page["show"](wrong)
        assert out[0] == "Wrong password."
        assert out[2] == ""  # no statistics
        assert all(v is None for v in out[3:6])  # no plots
        assert all(v is None for v in out[14:19])  # no downloads
        assert all(isinstance(v, pd.DataFrame) and v.empty for v in out[6:14])
    out = page["show"]("s3cret")
    assert out[0].startswith("Updated")
    assert "Participants:** 13 analysed" in out[2]  # 14 minus the one who withdrew
    assert "1 withdrawn" in out[2]
    expected = analyze_database(db, "demo")
    model = out[6]
    assert list(model.columns) == list(MODEL_COLUMNS)
    assert model["term"].tolist() == expected.model.table["term"].tolist()
    assert "Main result (choice model" in out[2]
    choices = out[7]
    assert choices["count"].tolist() == expected.choices["count"].tolist()
    downloads = [Path(p) for p in out[14:19]]
    assert [p.name for p in downloads] == list(results.DOWNLOADS)
    assert all(p.is_file() for p in downloads)
    assert_no_formula_cells(downloads[1])  # participants.csv with hostile platform ids

    locked = AppContext(study=types.SimpleNamespace(name="demo"), db=db, admin_password=None)
    with gr.Blocks():
        locked_page = results.render(locked)
    out = locked_page["show"]("admin")
    assert "locked" in out[0] and out[2] == ""


def test_results_page_on_an_empty_study():
    import gradio as gr

    from xai_study.ui import results
    from xai_study.ui.context import AppContext

    db = Database("sqlite://")
    db.ensure_study("demo")
    ctx = AppContext(study=types.SimpleNamespace(name="demo"), db=db, admin_password="pw")
    with gr.Blocks():
        page = results.render(ctx)
    out = page["show"]("pw")
    assert "0 analysed" in out[2] and "no answers yet" in out[2]


def test_identifiers_that_look_like_numbers_stay_text(tmp_path):
    from xai_study.study.export import read_participants, read_responses

    frame = paper_responses().head(4).assign(participant_id="007", section=["01", "02", "03", "04"])
    path = write_csv(frame, tmp_path / "responses.csv")
    back = read_responses(path)
    assert back["participant_id"].tolist() == ["007"] * 4
    assert back["section"].tolist() == ["01", "02", "03", "04"]
    people = write_csv(
        pd.DataFrame({"participant_id": ["007"], "status": ["completed"]}), tmp_path / "p.csv"
    )
    pd.testing.assert_frame_equal(
        analyze(back, read_participants(people)).stats,
        analyze(frame, pd.DataFrame({"participant_id": ["007"], "status": ["completed"]})).stats,
        check_exact=True,
    )


def test_paper_table_through_csv_is_unchanged(tmp_path):
    frame = paper_responses()
    path = write_csv(frame, tmp_path / "r.csv")
    from xai_study.study.export import read_responses

    a, b = analyze(frame), analyze(read_responses(path))
    pd.testing.assert_frame_equal(a.stats, b.stats, check_exact=True)


@pytest.mark.postgres
def test_postgres_gives_the_same_statistics_as_sqlite(study_db, tmp_path):
    """The same answers stored in PostgreSQL: export -> analyze equals the live analysis,
    and both equal the SQLite numbers."""
    import sqlalchemy as sa
    from pg_util import PgUnavailable, start_postgres

    try:
        base, stop = start_postgres()
    except PgUnavailable as exc:
        pytest.skip(f"PostgreSQL test skipped: {exc}")
    try:
        eng = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE analysis_test")
        eng.dispose()
        url = base.rsplit("/", 1)[0] + "/analysis_test"
        pg = fill_database(url)
        live = analyze_database(pg, "demo")
        out = tmp_path / "pg"
        assert main(["export", "--db", url, "--out", str(out)]) == 0
        assert main(["analyze", "--responses", str(out / "responses.csv"), "--out", str(out),
                     "--no-plots"]) == 0  # fmt: skip
        pd.testing.assert_frame_equal(read_stats(out / "stats.csv"), live.stats, check_exact=True)
        _, sqlite_db = study_db
        pd.testing.assert_frame_equal(
            analyze_database(sqlite_db, "demo").stats, live.stats, check_exact=True
        )
        pg.dispose()
    finally:
        stop()


def test_printed_summary_of_a_served_study_shows_the_model_table(study_db, tmp_path, capsys):
    """The summary prints the model table that preference_model.csv holds. This database
    shows the animations in the same order to everyone, so display position cannot be
    told apart from the explainer: the position terms are left out, and the summary
    says why."""
    url, _ = study_db
    assert main(["analyze", "--db", url, "--out", str(tmp_path / "o"), "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "choice model (conditional logit;" in text
    model = pd.read_csv(tmp_path / "o" / "preference_model.csv")
    assert model["term"].tolist() == ["explainer:shap", "explainer:ltpa", "explainer:bonettini"]
    assert "(position:2 left out (collinear with the other terms))" in text
    for term in model["term"]:
        assert f"  {term} " in text
