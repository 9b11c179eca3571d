"""Reading and normalising the responses and participants tables; Q2 choice parsing;
the display order of explainers (from the explainer registry) and of answer levels."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from xai_study.errors import StudyError, XaiStudyError
from xai_study.explainers import canonical_name, paper_explainers
from xai_study.study.schema import CHOICE_SEPARATOR, REQUIRED_RESPONSE_COLUMNS

FAMILIARITY_ORDER = ("yes", "heard", "heard of it", "no")
SCREEN_ORDER = ("large", "small")
#: Columns beyond the required ones that the analysis keeps when a table has them.
OPTIONAL_ANALYSIS_COLUMNS = ("q2_order",)
_TRUE = {"true", "1", "yes", "y", "t", "correct"}
_FALSE = {"false", "0", "no", "n", "f", "incorrect", "wrong"}


# --------------------------------------------------------------------------- names


def explainer_id(name: object) -> str:
    """The registry name of an explainer, whatever its spelling (``GradCAM``, ``shap``,
    ``SHAP-3D`` -> ``gradcam``, ``shap3d``); a name the registry does not know is returned
    lower-cased without punctuation, so that ``My Method`` matches ``my-method``."""
    return _explainer_id(str(name))


@functools.lru_cache(maxsize=4096)
def _explainer_id(name: str) -> str:
    try:
        return canonical_name(str(name))
    except XaiStudyError:
        return "".join(ch for ch in str(name).lower() if ch.isalnum())


def order_explainers(names: Iterable[str]) -> list[str]:
    """``names`` without repeats, the paper's explainers first in the paper's order (any
    spelling), then the others alphabetically."""
    rank = {name: i for i, name in enumerate(paper_explainers())}
    values = list(dict.fromkeys(names))
    return sorted(values, key=lambda v: (rank.get(explainer_id(v), len(rank)), str(v)))


def order_levels(values: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """``values`` without repeats, those in ``preferred`` (case-insensitive) first in that
    order, then the others alphabetically."""
    rank = {k: i for i, k in enumerate(preferred)}
    values = list(dict.fromkeys(values))
    return sorted(values, key=lambda v: (rank.get(str(v).lower(), len(rank)), str(v)))


def split_choices(value: object) -> list[str]:
    """Explainer names of one Q2 answer (``"SHAP;LTPA"`` -> ``["SHAP", "LTPA"]``)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return []
    names = [p.strip() for p in str(value).split(CHOICE_SEPARATOR) if p.strip()]
    return list(dict.fromkeys(names))  # a name given twice counts once


# --------------------------------------------------------------------------- cells


def _to_bool(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return pd.NA
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer | float | np.floating):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in {"", "nan", "none", "null", "<na>"}:
        return pd.NA
    raise StudyError(f"q1_correct must be true/false, got {value!r}")


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _text_series(values: Iterable[object], index: pd.Index) -> pd.Series:
    # An object column built cell by cell: Series.map would infer pandas' string dtype,
    # which turns pd.NA into NaN (and NaN later into the text "nan").
    return pd.Series(list(values), index=index, dtype="object")


def clean_text(series: pd.Series) -> pd.Series:
    """Strings with surrounding blanks removed; empty / missing cells become NA."""
    stripped = (pd.NA if _missing(v) else str(v).strip() for v in series)
    return _text_series((pd.NA if v is pd.NA or v == "" else v for v in stripped), series.index)


def _section_text(value: object) -> object:
    """Section ids are text; a whole float read from a CSV (``3.0``) becomes ``3``."""
    if isinstance(value, float | np.floating) and not math.isnan(value) and value == int(value):
        return str(int(value))
    return value


def _lower(series: pd.Series, missing: object = pd.NA) -> pd.Series:
    return _text_series((missing if _missing(v) else str(v).lower() for v in series), series.index)


# --------------------------------------------------------------------------- tables


def prepare_responses(frame: pd.DataFrame) -> pd.DataFrame:
    """Validate and normalise a responses table (from the database or a CSV file).

    Raises :class:`StudyError` naming the missing columns. Returns a copy with the
    columns :data:`~xai_study.study.schema.REQUIRED_RESPONSE_COLUMNS` (and ``q2_order``,
    the display order the choice model needs, when the table has it):
    ``participant_id``, ``video_id``, ``q1_answer``, ``q2_choice``, ``screen``,
    ``familiarity``, ``section`` as text (NA when empty), ``q1_correct`` as a nullable
    boolean (NA for "I do not know"); ``answered_at`` is passed through.
    """
    if not isinstance(frame, pd.DataFrame):
        raise StudyError("responses must be a table")
    missing = [c for c in REQUIRED_RESPONSE_COLUMNS if c not in frame.columns]
    if missing:
        raise StudyError(
            "responses table lacks column(s) "
            + ", ".join(missing)
            + " (needs "
            + ", ".join(REQUIRED_RESPONSE_COLUMNS)
            + ")"
        )
    optional = [c for c in OPTIONAL_ANALYSIS_COLUMNS if c in frame.columns]
    df = frame.loc[:, [*REQUIRED_RESPONSE_COLUMNS, *optional]].copy()
    for col in [*REQUIRED_RESPONSE_COLUMNS, *optional]:
        if col not in ("section", "q1_correct"):
            df[col] = clean_text(df[col])
    if df["participant_id"].isna().any():
        raise StudyError("responses table has rows without participant_id")
    df["section"] = clean_text(df["section"].map(_section_text))
    if df["section"].isna().any():
        raise StudyError("responses table has rows without section")
    df["q1_correct"] = df["q1_correct"].map(_to_bool).astype("boolean")
    df["familiarity"] = _lower(df["familiarity"])
    df["screen"] = _lower(df["screen"])
    dup = df.duplicated(["participant_id", "section"])
    if dup.any():
        row = df.loc[dup].iloc[0]
        raise StudyError(
            f"participant {row['participant_id']} answered section {row['section']} twice"
        )
    return df.sort_values(["participant_id", "section"], kind="stable").reset_index(drop=True)


def _inferred_participants(responses: pd.DataFrame) -> pd.DataFrame:
    """Participants of a study without a participants table: those with an answer;
    completed when they answered as many sections as the most diligent one."""
    answered = responses.groupby("participant_id").size().rename("answered")
    first = responses.groupby("participant_id")[["screen", "familiarity"]].first()
    out = pd.DataFrame({"participant_id": answered.index.astype(str)})
    out["answered"] = answered.to_numpy()
    most = int(out["answered"].max()) if len(out) else 0
    out["status"] = np.where(out["answered"] >= most, "completed", "incomplete")
    out["screen"] = first["screen"].reindex(out["participant_id"]).to_numpy()
    out["familiarity"] = first["familiarity"].reindex(out["participant_id"]).to_numpy()
    out["checks_passed"] = np.nan
    out["checks_total"] = np.nan
    out["speeder"] = _speeder_column(pd.DataFrame(), responses, out)
    return out


def prepare_participants(
    frame: pd.DataFrame | None, responses: pd.DataFrame
) -> tuple[pd.DataFrame, bool]:
    """One row per participant: ``participant_id, status, screen, familiarity, answered``
    (and ``checks_passed``, ``checks_total``).

    Without a participants table, participants are those with at least one answer and
    completion is inferred (answered as many sections as the most diligent one); the
    second return value says whether completion was known (``True``) or inferred.
    Screen and familiarity missing from the participants table come from the responses.
    """
    if frame is None:
        return _inferred_participants(responses), False
    if "participant_id" not in frame.columns:
        raise StudyError("participants table lacks column participant_id")
    out = pd.DataFrame({"participant_id": clean_text(frame["participant_id"])})
    if out["participant_id"].isna().any():
        raise StudyError("participants table has rows without participant_id")
    out = out.drop_duplicates("participant_id").reset_index(drop=True)
    ids = out["participant_id"]
    index = (
        frame.assign(participant_id=clean_text(frame["participant_id"]))
        .drop_duplicates("participant_id")
        .set_index("participant_id")
    )
    first = responses.groupby("participant_id")[["screen", "familiarity"]].first()
    for col in ("screen", "familiarity"):
        own = (
            clean_text(index[col]).reindex(ids)
            if col in index.columns
            else pd.Series(pd.NA, index=ids, dtype="object")
        )
        merged = own.where(own.notna(), first[col].reindex(ids))
        out[col] = merged.map(lambda v: pd.NA if pd.isna(v) else str(v).lower()).to_numpy()
        out[col] = out[col].astype("object")
    answered = responses.groupby("participant_id").size()
    out["answered"] = answered.reindex(ids).fillna(0).astype("int64").to_numpy()
    for col in ("checks_passed", "checks_total"):
        values = (
            pd.to_numeric(index[col], errors="coerce").reindex(ids)
            if col in index.columns
            else pd.Series(np.nan, index=ids)
        )
        out[col] = values.astype(float).to_numpy()
    known = "status" in index.columns
    if known:
        status = clean_text(index["status"]).reindex(ids)
        out["status"] = _lower(status, missing="unknown").to_numpy()
    else:
        most = int(out["answered"].max()) if len(out) else 0
        out["status"] = np.where((out["answered"] >= most) & (most > 0), "completed", "incomplete")
    out["speeder"] = _speeder_column(index, responses, out)
    stray = sorted(set(responses["participant_id"]) - set(ids))
    if stray:
        raise StudyError(
            f"responses name participant {stray[0]} who is not in the participants table"
        )
    return out, known


def _speeder_column(index: pd.DataFrame, responses: pd.DataFrame, out: pd.DataFrame) -> np.ndarray:
    """The participants table's ``speeder`` flags; for a table without them (an
    import), the same rule from the responses' answer times (:func:`speeder_flags`)."""
    ids = out["participant_id"]
    if "speeder" in index.columns:
        flags = clean_text(index["speeder"]).reindex(ids)
        return flags.map(lambda v: str(v).strip().lower() in ("true", "1", "yes")).to_numpy()
    return speeder_flags(responses, out)


def speeder_flags(responses: pd.DataFrame, people: pd.DataFrame) -> np.ndarray:
    """The rule of :mod:`xai_study.study.speeders` applied to the answer times
    (``q1_time_spent_s``, ``time_spent_s`` of finished sections) of ``responses``, for
    the participants of ``people`` (``participant_id``, ``status``); nobody is a
    speeder when the responses have no times."""
    from xai_study.study.speeders import median_section_time, speeders

    ids = list(people["participant_id"])
    if not {"q1_time_spent_s", "time_spent_s", "q2_choice"} <= set(responses.columns):
        return np.zeros(len(ids), dtype=bool)
    done = responses[clean_text(responses["q2_choice"]).notna()]
    times: dict[str, list] = {pid: [] for pid in ids}
    for pid, q1, q2 in zip(
        clean_text(done["participant_id"]),
        pd.to_numeric(done["q1_time_spent_s"], errors="coerce"),
        pd.to_numeric(done["time_spent_s"], errors="coerce"),
        strict=True,
    ):
        times.setdefault(pid, []).append((None if pd.isna(q1) else q1, None if pd.isna(q2) else q2))
    medians = {pid: median_section_time(times[pid]) for pid in ids}
    status = list(people["status"]) if "status" in people.columns else [""] * len(ids)
    flags = speeders(
        medians, [pid for pid, st in zip(ids, status, strict=True) if st == "withdrawn"]
    )
    return np.array([flags[pid] for pid in ids], dtype=bool)


def canonical_order(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (a prepared responses table) with its participants in an order that depends
    only on their answers, not on their ids (then by section).

    Participant ids are random, so two databases holding the same answers (SQLite and
    PostgreSQL, or a re-import) order them differently; resampling and floating-point
    sums over participants in this order give the same numbers on both.
    """
    if df.empty:
        return df.reset_index(drop=True)
    cols = [c for c in df.columns if c not in ("participant_id", "answered_at")]
    cells = [[("" if _missing(v) else str(v)) for v in df[c]] for c in cols]
    text = pd.Series(["\x1f".join(row) for row in zip(*cells, strict=True)], index=df.index)
    signature = text.groupby(df["participant_id"]).agg(lambda s: "\x1e".join(sorted(s)))
    rank = signature.rank(method="first").astype(int)
    key = df["participant_id"].map(rank)
    out = df.assign(_rank=key).sort_values(["_rank", "section"], kind="stable")
    return out.drop(columns="_rank").reset_index(drop=True)
