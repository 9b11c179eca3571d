"""Import answers collected with a form tool (Google Forms, Microsoft Forms, LimeSurvey...).

A form tool exports one row per respondent and one column per question. A *column map*
(YAML, see ``docs/examples/form_columns.yaml`` and ``docs/analysis.md``) says which column
holds which answer and how the form's answer texts translate to ours:

.. code-block:: yaml

    participant_id: "Respondent ID"     # optional; default: the row number
    answered_at: "Timestamp"            # optional
    screen: {column: "Screen?", values: {"Large": large, "Small": small}}
    familiarity: {column: "Familiar?", values: {"Yes": "yes", "I heard of it": "heard of it", "No": "no"}}
    q1_values: {"Video 1": video1, "Video 2": video2, "I do not know": dont_know}
    q2_values: {"Animation A": gradcam, "Animation B": shap}
    q2_separator: ", "                  # optional: several Q2 answers in one cell
    sections:
      - {id: s01, video_id: fake_001, fake: video2, q1: "Q1 (1)", q2: "Q2 (1)"}

:func:`convert_form` turns the form's CSV into the same ``responses`` / ``participants``
tables the database gives, :func:`import_into_database` stores them so that the results
page and ``xai-study analyze`` treat them like answers given in the browser.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from xai_study.errors import StudyError
from xai_study.study.schema import REQUIRED_RESPONSE_COLUMNS

Q1_VALUES = ("video1", "video2", "dont_know")
SCREENS = ("large", "small")
FAMILIARITY = ("yes", "heard of it", "no")


@dataclass
class SectionMap:
    id: str
    video_id: str
    fake: str  # video1 | video2: the Q1 answer that is correct
    q1: str | None
    q2: str | None
    real_video_id: str = ""
    q1_values: dict[str, str] = field(default_factory=dict)
    q2_values: dict[str, str] = field(default_factory=dict)


@dataclass
class ColumnMap:
    sections: list[SectionMap]
    participant_id: str | None = None
    answered_at: str | None = None
    screen: tuple[str, dict[str, str]] | None = None
    familiarity: tuple[str, dict[str, str]] | None = None
    q2_separator: str | None = None
    timestamp_format: str | None = None

    @property
    def explainers(self) -> list[str]:
        names: list[str] = []
        for sec in self.sections:
            names.extend(sec.q2_values.values())
        return list(dict.fromkeys(names))


def _key(text: object) -> str:
    return " ".join(str(text).split()).casefold()


def _values(raw: Any, where: str, allowed: tuple[str, ...] | None = None) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        raise StudyError(f"column map: {where} must be a mapping of form answers to values")
    out = {}
    for form_value, ours in raw.items():
        ours = str(ours).strip()
        if allowed is not None and ours not in allowed:
            raise StudyError(
                f"column map: {where} maps {form_value!r} to {ours!r}, not one of "
                + ", ".join(allowed)
            )
        out[_key(form_value)] = ours
    return out


def _column_spec(raw: Any, where: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    if isinstance(raw, str):
        return raw, {}
    if not isinstance(raw, dict) or "column" not in raw:
        raise StudyError(f"column map: {where} needs 'column' (and optionally 'values')")
    return str(raw["column"]), _values(raw.get("values"), f"{where}.values", allowed)


def parse_column_map(data: Any) -> ColumnMap:
    """Validate a column map already loaded from YAML/JSON (see the module docstring)."""
    if not isinstance(data, dict):
        raise StudyError("column map must be a YAML mapping")
    known = {
        "participant_id", "answered_at", "screen", "familiarity", "q1_values", "q2_values",
        "q2_separator", "sections", "timestamp_format",
    }  # fmt: skip
    extra = sorted(set(data) - known)
    if extra:
        raise StudyError(
            f"column map: unknown key {extra[0]!r} (known: {', '.join(sorted(known))})"
        )
    q1_default = _values(data.get("q1_values"), "q1_values", Q1_VALUES)
    q2_default = _values(data.get("q2_values"), "q2_values")
    raw_sections = data.get("sections")
    if not isinstance(raw_sections, list) or not raw_sections:
        raise StudyError("column map: 'sections' must be a non-empty list")
    sections = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_sections, start=1):
        where = f"sections[{i}]"
        if not isinstance(raw, dict):
            raise StudyError(f"column map: {where} must be a mapping")
        sec_id = str(raw.get("id", i)).strip()
        if sec_id in seen:
            raise StudyError(f"column map: section id {sec_id!r} appears twice")
        seen.add(sec_id)
        if not raw.get("video_id"):
            raise StudyError(f"column map: {where} needs 'video_id' (the fake video's id)")
        fake = str(raw.get("fake", "")).strip()
        if fake not in ("video1", "video2"):
            raise StudyError(f"column map: {where} needs 'fake: video1' or 'fake: video2'")
        q1, q2 = raw.get("q1"), raw.get("q2")
        if not q1 and not q2:
            raise StudyError(f"column map: {where} names neither a 'q1' nor a 'q2' column")
        q1_values = {**q1_default, **_values(raw.get("q1_values"), f"{where}.q1_values", Q1_VALUES)}
        q2_values = {**q2_default, **_values(raw.get("q2_values"), f"{where}.q2_values")}
        if q1 and not q1_values:
            raise StudyError(f"column map: {where} has a q1 column but no q1_values")
        if q2 and not q2_values:
            raise StudyError(f"column map: {where} has a q2 column but no q2_values")
        sections.append(
            SectionMap(
                id=sec_id,
                video_id=str(raw["video_id"]),
                real_video_id=str(raw.get("real_video_id", "")),
                fake=fake,
                q1=str(q1) if q1 else None,
                q2=str(q2) if q2 else None,
                q1_values=q1_values,
                q2_values=q2_values,
            )
        )
    screen = familiarity = None
    if data.get("screen") is not None:
        screen = _column_spec(data["screen"], "screen", SCREENS)
    if data.get("familiarity") is not None:
        familiarity = _column_spec(data["familiarity"], "familiarity", FAMILIARITY)
    sep = data.get("q2_separator")
    return ColumnMap(
        sections=sections,
        participant_id=str(data["participant_id"]) if data.get("participant_id") else None,
        answered_at=str(data["answered_at"]) if data.get("answered_at") else None,
        screen=screen,
        familiarity=familiarity,
        q2_separator=str(sep) if sep else None,
        timestamp_format=str(data["timestamp_format"]) if data.get("timestamp_format") else None,
    )


def load_column_map(path: str | Path) -> ColumnMap:
    """Read and validate a column-map YAML (or JSON) file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise StudyError(f"column map not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StudyError(f"column map {path} is not valid YAML: {first}") from None
    return parse_column_map(data)


def _empty(value: object) -> bool:
    return (
        value is None
        or value is pd.NA
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _lookup(value: object, mapping: dict[str, str], row: int, column: str) -> str:
    ours = mapping.get(_key(value))
    if ours is None:
        known = ", ".join(repr(k) for k in list(mapping)[:6])
        raise StudyError(
            f"row {row}, column {column!r}: answer {str(value)!r} is not in the column map "
            f"(known: {known})"
        )
    return ours


def convert_form(frame: pd.DataFrame, cmap: ColumnMap) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A form tool's table -> (responses, participants) in the database's layout.

    Rows are numbered from 2 in messages (row 1 is the header, as in a spreadsheet).
    """
    needed = [c for c in (cmap.participant_id, cmap.answered_at) if c]
    needed += [spec[0] for spec in (cmap.screen, cmap.familiarity) if spec]
    for sec in cmap.sections:
        needed += [c for c in (sec.q1, sec.q2) if c]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise StudyError(
            f"the CSV has no column {missing[0]!r} named in the column map "
            f"({len(missing)} missing; first columns: {', '.join(map(str, frame.columns[:5]))})"
        )
    responses, people = [], []
    seen_ids: set[str] = set()
    order = ";".join(cmap.explainers)
    for i, row in enumerate(frame.to_dict("records")):
        line = i + 2
        if cmap.participant_id:
            pid = row[cmap.participant_id]
            if _empty(pid):
                raise StudyError(f"row {line}: empty participant id in {cmap.participant_id!r}")
            pid = str(pid).strip()
        else:
            pid = f"row{line:05d}"
        if pid in seen_ids:
            raise StudyError(f"row {line}: participant id {pid!r} appears twice")
        seen_ids.add(pid)
        when = None
        if cmap.answered_at and not _empty(row[cmap.answered_at]):
            when = _timestamp(row[cmap.answered_at], cmap.timestamp_format, line, cmap.answered_at)
        demo = {}
        for name, spec in (("screen", cmap.screen), ("familiarity", cmap.familiarity)):
            demo[name] = None
            if spec and not _empty(row[spec[0]]):
                column, values = spec
                demo[name] = (
                    _lookup(row[column], values, line, column)
                    if values
                    else str(row[column]).strip().lower()
                )
                allowed = SCREENS if name == "screen" else FAMILIARITY
                if demo[name] not in allowed:
                    raise StudyError(
                        f"row {line}, column {column!r}: {name} must be one of "
                        + ", ".join(allowed)
                    )
        answered = 0
        for position, sec in enumerate(cmap.sections):
            q1_raw = row[sec.q1] if sec.q1 else None
            q2_raw = row[sec.q2] if sec.q2 else None
            if _empty(q1_raw) and _empty(q2_raw):
                continue
            q1 = None if _empty(q1_raw) else _lookup(q1_raw, sec.q1_values, line, sec.q1)
            q2 = None
            if not _empty(q2_raw):
                parts = (
                    [p for p in str(q2_raw).split(cmap.q2_separator) if p.strip()]
                    if cmap.q2_separator
                    else [q2_raw]
                )
                names = [_lookup(p, sec.q2_values, line, sec.q2) for p in parts]
                q2 = ";".join(dict.fromkeys(names))
            answered += 1
            responses.append(
                {
                    "participant_id": pid,
                    "section": sec.id,
                    "video_id": sec.video_id,
                    "q1_answer": q1,
                    "q1_correct": None if q1 in (None, "dont_know") else q1 == sec.fake,
                    "q2_choice": q2,
                    "screen": demo["screen"],
                    "familiarity": demo["familiarity"],
                    "answered_at": when,
                    "position": position,
                    "real_video_id": sec.real_video_id,
                    "fake_position": 1 if sec.fake == "video1" else 2,
                    "q2_order": order,
                }
            )
        people.append(
            {
                "participant_id": pid,
                "status": "completed" if answered == len(cmap.sections) else "in_progress",
                "screen": demo["screen"],
                "familiarity": demo["familiarity"],
                "answered_at": when,
                "n_answers": answered,
            }
        )
    extra = ["position", "real_video_id", "fake_position", "q2_order"]
    resp = pd.DataFrame(responses, columns=[*REQUIRED_RESPONSE_COLUMNS, *extra])
    resp["q1_correct"] = resp["q1_correct"].astype(object)
    parts = pd.DataFrame(
        people,
        columns=["participant_id", "status", "screen", "familiarity", "answered_at", "n_answers"],
    )
    return resp, parts


def _timestamp(value: object, fmt: str | None, line: int, column: str) -> _dt.datetime:
    try:
        if fmt:
            ts = pd.Timestamp(_dt.datetime.strptime(str(value).strip(), fmt))
        else:
            ts = pd.Timestamp(str(value).strip())
    except (ValueError, TypeError):
        raise StudyError(
            f"row {line}, column {column!r}: {str(value)!r} is not a date/time"
            + ("" if fmt else " (set timestamp_format in the column map)")
        ) from None
    if ts is pd.NaT:
        raise StudyError(f"row {line}, column {column!r}: empty date/time")
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").to_pydatetime()


def read_form_csv(path: str | Path) -> pd.DataFrame:
    """A form tool's CSV export, every cell as text (UTF-8, with or without BOM)."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"file not found: {path}")
    try:
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig"
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StudyError(f"cannot read CSV file {path}: {str(exc).splitlines()[0]}") from None


def import_into_database(
    db: Any, study: str, responses: pd.DataFrame, participants: pd.DataFrame
) -> tuple[int, int]:
    """Store converted answers in ``db`` (a :class:`xai_study.study.db.Database`).

    The form's participant id is stored as the participant's platform id
    (``prolific_pid``), so importing the same file again adds nothing (participants and
    answers are matched, not duplicated). Returns (new participants, new answers).
    """
    study_row = db.ensure_study(study)
    new_people = new_answers = 0
    by_person = {pid: part for pid, part in responses.groupby("participant_id", sort=False)}
    for person in participants.to_dict("records"):
        pid = person["participant_id"]
        existing = db.participant_by_prolific(study_row.id, pid)
        when = person.get("answered_at")
        when = None if _empty(when) else when
        row = existing or db.create_participant(
            study_row.id,
            seed=0,
            arm=0,
            assignment={"imported": True},
            prolific_pid=pid,
            consent_at=when,
        )
        new_people += existing is None
        if not _empty(person.get("screen")) and not _empty(person.get("familiarity")):
            db.set_demographics(row.id, person["screen"], person["familiarity"])
        answers = by_person.get(pid)
        if answers is not None:
            for ans in answers.to_dict("records"):
                q1 = ans["q1_answer"]
                correct = ans["q1_correct"]
                _, created = db.save_answer(
                    row.id,
                    section=str(ans["section"]),
                    position=int(ans["position"]),
                    video_id=str(ans["video_id"]),
                    real_video_id=str(ans.get("real_video_id") or ""),
                    fake_position=int(ans["fake_position"]),
                    q1_answer="" if _empty(q1) else q1,
                    q1_correct=None if _empty(correct) else bool(correct),
                    q2_choice="" if _empty(ans["q2_choice"]) else ans["q2_choice"],
                    q2_order=str(ans.get("q2_order") or ""),
                    answered_at=None if _empty(ans["answered_at"]) else ans["answered_at"],
                )
                new_answers += created
        if person["status"] == "completed":
            db.set_status(row.id, "completed")
        elif existing is None and answers is not None:
            db.set_status(row.id, "in_progress")
    return new_people, new_answers
