"""One responses schema for the database, export / import and the analysis."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from xai_study.study import db as db_module
from xai_study.study.export import export_tables, read_responses
from xai_study.study.schema import (
    REQUIRED_RESPONSE_COLUMNS,
    RESPONSE_COLUMNS,
    RESPONSE_SCHEMA,
    TEXT_RESPONSE_COLUMNS,
)


def test_required_columns_are_the_analysis_input_in_database_order():
    assert REQUIRED_RESPONSE_COLUMNS == (
        "participant_id", "section", "video_id", "q1_answer", "q1_correct", "q2_choice",
        "screen", "familiarity", "answered_at",
    )  # fmt: skip
    positions = [RESPONSE_COLUMNS.index(c) for c in REQUIRED_RESPONSE_COLUMNS]
    assert positions == sorted(positions)
    assert len(set(RESPONSE_COLUMNS)) == len(RESPONSE_SCHEMA) == 19
    assert db_module.RESPONSE_COLUMNS is RESPONSE_COLUMNS  # one definition


def test_database_export_writes_the_schema(tmp_path):
    from test_study_analysis_export import fill_database

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    frame = fill_database(url).responses_frame("demo")
    assert tuple(frame.columns) == RESPONSE_COLUMNS
    (path,) = export_tables(frame, None, tmp_path / "out")
    header = path.read_text().splitlines()[0].split(",")
    rest = [c for c in RESPONSE_COLUMNS if c not in REQUIRED_RESPONSE_COLUMNS]
    assert header == [*REQUIRED_RESPONSE_COLUMNS, *rest]
    back = read_responses(path)
    assert sorted(back.columns) == sorted(RESPONSE_COLUMNS)
    assert len(back) == len(frame)


@pytest.mark.parametrize("column", TEXT_RESPONSE_COLUMNS)
def test_text_columns_keep_leading_zeros(tmp_path, column):
    frame = pd.DataFrame({c: ["007"] for c in RESPONSE_COLUMNS})
    frame["q1_correct"] = "007" if column == "q1_correct" else "True"
    (path,) = export_tables(frame, None, tmp_path)
    assert read_responses(path)[column].iloc[0] == "007"


@pytest.mark.parametrize("column", [c.name for c in RESPONSE_SCHEMA if not c.text], ids=lambda c: c)
def test_number_columns_are_read_as_numbers(tmp_path, column):
    frame = pd.DataFrame({c: ["7"] for c in RESPONSE_COLUMNS})
    (path,) = export_tables(frame, None, tmp_path)
    assert read_responses(path)[column].iloc[0] == 7


def test_database_layer_does_not_import_the_analysis():
    code = (
        "import sys, xai_study.study.db, xai_study.study.schema; "
        "print(sorted(m for m in sys.modules if m.startswith('xai_study.study.analysis')"
        " or m in ('pandas', 'scipy', 'matplotlib')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
