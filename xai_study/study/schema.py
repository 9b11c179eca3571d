"""The responses table: one row per participant x section, defined once.

The database writes it (``Database.responses_frame``), ``xai-study export`` and
``import-responses`` write it as ``responses.csv``, and the analysis reads it. Only the
*required* columns are needed by the analysis (a responses table from elsewhere may hold
just those); the others are written by the database and kept by export and import.

No pandas and no SQLAlchemy here, so that every layer can import it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Separator between explainer names in ``q2_choice`` / ``q2_order`` (several choices).
CHOICE_SEPARATOR = ";"


@dataclass(frozen=True)
class Column:
    """One column of the responses table."""

    name: str
    #: Every responses table has it (the analysis needs it).
    required: bool
    #: Read from a CSV file as text, never converted to numbers (identifiers, answers).
    text: bool
    doc: str


RESPONSE_SCHEMA: tuple[Column, ...] = (
    Column("participant_id", True, True, "pseudonymous participant id"),
    Column("study", False, True, "study name"),
    Column("section", True, True, "section id"),
    Column("position", False, False, "0-based position of the section for the participant"),
    Column("video_id", True, True, "the fake video of the section"),
    Column("real_video_id", False, True, "the real video shown next to it"),
    Column("fake_position", False, False, "1 or 2: which of the two videos was fake"),
    Column("q1_answer", True, True, "video1 / video2 / dont_know, as the participant saw them"),
    Column("q1_correct", True, True, "True / False, empty for 'I do not know'"),
    Column("q2_choice", True, True, "the chosen explainer (';'-joined names if several)"),
    Column("q2_position", False, True, "where the chosen animation(s) were shown"),
    Column("q2_order", False, True, "the explainers in the order their animations were shown"),
    Column("screen", True, True, "large / small"),
    Column("familiarity", True, True, "familiarity with deepfakes: yes / heard of it / no"),
    Column("shown_at", False, True, "when the section was shown"),
    Column("q1_answered_at", False, True, "when Q1 was answered"),
    Column("q1_time_spent_s", False, False, "seconds spent on Q1"),
    Column("answered_at", True, True, "when Q2 (the section's last answer) was answered"),
    Column("time_spent_s", False, False, "seconds spent on the section"),
)

#: Every column, in the order the database writes them.
RESPONSE_COLUMNS: tuple[str, ...] = tuple(c.name for c in RESPONSE_SCHEMA)
#: The columns every responses table has; ``responses.csv`` starts with them.
REQUIRED_RESPONSE_COLUMNS: tuple[str, ...] = tuple(c.name for c in RESPONSE_SCHEMA if c.required)
#: The columns read from a CSV file as text.
TEXT_RESPONSE_COLUMNS: tuple[str, ...] = tuple(c.name for c in RESPONSE_SCHEMA if c.text)
