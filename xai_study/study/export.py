"""CSV export of a study, safe to open in a spreadsheet.

Every text cell that a spreadsheet would read as a formula (first non-blank character
``=``, ``+``, ``-``, ``@``, tab, CR or LF; OWASP "CSV injection") is prefixed with a
single quote ``'``. Plain numbers such as ``-0.5`` are left alone (a spreadsheet reads
them as numbers, not formulas). Cells that already start with ``'`` get a second one, so
:func:`unneutralise_cell` restores every original value exactly and our own exports read
back unchanged (:func:`read_csv`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from xai_study.errors import StudyError
from xai_study.study.schema import REQUIRED_RESPONSE_COLUMNS, TEXT_RESPONSE_COLUMNS

if TYPE_CHECKING:
    from xai_study.study.analysis import Analysis

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def neutralise_cell(value: object) -> object:
    """The cell as it is safe to write to a CSV file (see the module docstring)."""
    if not isinstance(value, str) or not value:
        return value
    stripped = value.lstrip(" ")
    if stripped.startswith("'") or value.startswith("'"):
        return "'" + value
    if stripped and stripped[0] in FORMULA_STARTS and not _NUMBER.match(stripped):
        return "'" + value
    return value


def unneutralise_cell(value: object) -> object:
    """Inverse of :func:`neutralise_cell` for cells of our own exports."""
    if isinstance(value, str) and value.startswith("'"):
        return value[1:]
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell (and column name) neutralised."""
    out = frame.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].astype("object").map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` (without its index) as UTF-8 CSV with every cell neutralised."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # CRLF (RFC 4180) also makes the csv writer quote cells holding a lone CR or LF
    neutralise_frame(frame).to_csv(path, index=False, lineterminator="\r\n")
    return path


def read_csv(path: str | Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV written by :func:`write_csv`, undoing the neutralisation.

    Every cell is read as text first (so identifiers like ``007`` keep their form);
    columns not in ``text_columns`` are then converted to numbers where every
    non-empty cell is a number.
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"file not found: {path}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StudyError(f"cannot read CSV file {path}: {str(exc).splitlines()[0]}") from None
    raw.columns = [unneutralise_cell(c) for c in raw.columns]
    out = pd.DataFrame(index=raw.index)
    for col in raw.columns:
        series = (
            raw[col]
            .astype("object")
            .map(lambda v: pd.NA if v is None or (isinstance(v, float) and v != v) else v)
        )
        series = series.map(lambda v: v if v is pd.NA else unneutralise_cell(v))
        if col not in text_columns:
            numbers = pd.to_numeric(series, errors="coerce")
            if numbers.notna().sum() == series.notna().sum() and series.notna().any():
                out[col] = numbers
                continue
        out[col] = series.astype("object")
    return out


def read_responses(path: str | Path) -> pd.DataFrame:
    """``responses.csv`` (ours or any file with the same columns) as a DataFrame."""
    return read_csv(path, text_columns=TEXT_RESPONSE_COLUMNS)


def read_participants(path: str | Path) -> pd.DataFrame:
    """``participants.csv`` as a DataFrame (identifier and text columns kept as text)."""
    return read_csv(
        path,
        text_columns=(
            "participant_id",
            "status",
            "screen",
            "familiarity",
            "prolific_pid",
            "prolific_study_id",
            "prolific_session_id",
            "study",
        ),
    )


def read_stats(path: str | Path) -> pd.DataFrame:
    """``stats.csv`` back as the table :func:`analyze` made (numbers as floats)."""
    frame = read_csv(path, text_columns=("group", "statistic", "key", "value"))

    def number(v: object) -> object:
        if pd.isna(v):
            return float("nan")
        try:
            return float(v)
        except ValueError:
            return v

    frame["key"] = frame["key"].map(lambda v: "" if pd.isna(v) else v).astype("object")
    frame["value"] = frame["value"].map(number)
    return frame.astype("object")


def export_tables(
    responses: pd.DataFrame, participants: pd.DataFrame | None, out_dir: str | Path
) -> list[Path]:
    """Write ``responses.csv`` (and ``participants.csv``) into ``out_dir``."""
    out_dir = Path(out_dir)
    missing = [c for c in REQUIRED_RESPONSE_COLUMNS if c not in responses.columns]
    if missing:
        raise StudyError("responses lack column(s) " + ", ".join(missing))
    rest = [c for c in responses.columns if c not in REQUIRED_RESPONSE_COLUMNS]
    columns = [*REQUIRED_RESPONSE_COLUMNS, *rest]
    written = [write_csv(responses[columns], out_dir / "responses.csv")]
    if participants is not None:
        written.append(write_csv(participants, out_dir / "participants.csv"))
    return written


def export_analysis(result: Analysis, out_dir: str | Path) -> list[Path]:
    """Write ``stats.csv``, ``sign_tests.csv`` and the detail tables into ``out_dir``."""
    out_dir = Path(out_dir)
    video = result.video_table.reset_index()
    return [
        write_csv(result.stats, out_dir / "stats.csv"),
        write_csv(result.sign_tests, out_dir / "sign_tests.csv"),
        write_csv(result.choices, out_dir / "choices.csv"),
        write_csv(result.accuracy_by_video, out_dir / "accuracy_by_video.csv"),
        write_csv(result.accuracy_by_familiarity, out_dir / "accuracy_by_familiarity.csv"),
        write_csv(video, out_dir / "choices_by_video.csv"),
        write_csv(result.correlations, out_dir / "preference_vs_metrics.csv"),
    ]
