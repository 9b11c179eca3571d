"""The survey as a state machine over the database (no gradio).

Steps, in order: ``consent`` -> ``demographics`` -> ``section`` 1..n (with attention
checks inserted after the section they name) -> ``complete``. A section has two phases:
``q1`` (the two videos: which one is fake?) and then ``q2`` (the explanation
animations, which would give the fake away if shown with Q1). The current step is always
derived from what is stored, so a reload, a second browser tab, a second server process
or a server restart all resume at the same place. Every submission is validated here,
on the server: the participant token must exist, the step must be the current one (or
an already answered one, which returns the stored answer unchanged: double clicks and
replays are idempotent), and every value must be one of the allowed choices.

A participant's session is reached only with what that participant's browser holds: the
resume token, or the consent key it sent with its consent (a retried consent whose
reply was lost). A ``PROLIFIC_PID`` alone never is: a second browser with a known
``PROLIFIC_PID`` gets :class:`AlreadyStarted` and neither a token nor any data.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from xai_study.errors import XaiStudyError
from xai_study.study.assign import make_assignment, new_seed, slot_labels
from xai_study.study.db import (
    FAMILIARITY,
    Q1_ANSWERS,
    SCREENS,
    Database,
    Participant,
    ParticipantExists,
    StudyFull,
    utcnow,
)
from xai_study.study.spec import DEFAULT_TEXTS, StudySpec

#: stored answer value -> key of its label in the study's texts (``StudySpec.text``)
Q1_TEXT_KEYS = {"video1": "q1_video1", "video2": "q1_video2", "dont_know": "q1_dont_know"}
SCREEN_TEXT_KEYS = {"large": "screen_large", "small": "screen_small"}
FAMILIARITY_TEXT_KEYS = {
    "yes": "familiarity_yes",
    "heard of it": "familiarity_heard",
    "no": "familiarity_no",
}
MAX_PARAM_LEN = 100
#: A consent key: 16-64 URL-safe characters chosen by the client (the page gets one from
#: the server on load and keeps it in browser storage).
CONSENT_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
ALREADY_STARTED = DEFAULT_TEXTS["error_already_started"]
NO_PROLIFIC_PID = DEFAULT_TEXTS["error_no_prolific_pid"]
STUDY_CLOSED = DEFAULT_TEXTS["error_study_closed"]
SCREENED_OUT = DEFAULT_TEXTS["error_screened_out"]


class SurveyError(XaiStudyError):
    """A submission that the survey rejects (shown to the participant as one line)."""


class AlreadyStarted(SurveyError):
    """A ``PROLIFIC_PID`` that already took part, sent without that person's token."""

    def __init__(self, contact: str = "", message: str = ALREADY_STARTED) -> None:
        if "{contact}" in message:
            message = message.replace("{contact}", contact)
        elif message == ALREADY_STARTED and "@" in contact:  # an override says it itself
            message += f" at {contact}"
        super().__init__(message)


class NotAdmitted(SurveyError):
    """Someone new who may not start: the study is full, or the link lacks the
    ``PROLIFIC_PID`` the study requires. ``kind`` is ``closed`` or ``no_pid``."""

    def __init__(self, kind: str, message: str | None = None) -> None:
        self.kind = kind
        super().__init__(message or (STUDY_CLOSED if kind == "closed" else NO_PROLIFIC_PID))


def new_consent_key() -> str:
    """A fresh consent key for a page (unguessable, 32 characters)."""
    import secrets

    return secrets.token_urlsafe(24)


def clean_consent_key(value: Any, message: str = DEFAULT_TEXTS["error_consent_key"]) -> str | None:
    """``value`` as a consent key; None for no key; SurveyError(``message``) for a
    malformed one."""
    if value is None or value == "":
        return None
    if (
        not isinstance(value, str)
        or not 16 <= len(value) <= 64
        or not set(value) <= CONSENT_KEY_CHARS
    ):
        raise SurveyError(message)
    return value


@dataclass
class Step:
    """Where a participant is. ``kind`` is consent / demographics / section / check /
    complete / withdrawn; ``position`` is the 1-based section number (for a check, the section it
    follows)."""

    kind: str
    phase: str = ""
    position: int = 0
    total: int = 0
    answered: int = 0
    section: dict[str, Any] = field(default_factory=dict)
    check: Any = None
    code: str = ""
    redirect: str = ""
    deleted: bool = False  # withdrawn: the answers were erased
    participant_id: str = ""  # the participant's pseudonymous id ("" before the consent)

    @property
    def progress(self) -> str:
        if self.kind in ("consent", "demographics"):
            return f"0 of {self.total} sections"
        return f"{self.answered} of {self.total} sections"


def _clean_param(value: Any, message: str = DEFAULT_TEXTS["error_url_parameter"]) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if len(text) > MAX_PARAM_LEN or not text.isprintable():
        raise SurveyError(message)
    return text


def _as_utc(value: _dt.datetime | None) -> _dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=_dt.UTC)
    return value


class Survey:
    """The survey of one study on one database."""

    def __init__(self, study: StudySpec, db: Database) -> None:
        self.study = study
        self.db = db
        self.study_row_id = db.ensure_study(study.name, study.title, study.file_hash).id

    def _text(self, key: str) -> str:
        """A participant-facing message of this study (``texts:`` in the study file)."""
        return self.study.text(key)

    def _already_started(self) -> AlreadyStarted:
        message = self.study.texts.get("error_already_started", ALREADY_STARTED)
        return AlreadyStarted(self.study.contact, message)

    # -- participants -----------------------------------------------------------------
    def participant(self, token: str | None) -> Participant | None:
        """The participant with this resume token in this study, else None."""
        if not token:
            return None
        par = self.db.participant_by_token(str(token))
        if par is None or par.study_id != self.study_row_id:
            return None
        return par

    def by_consent_key(self, key: Any) -> Participant | None:
        """The participant whose consent carried ``key`` in this study, else None."""
        key = clean_consent_key(key, self._text("error_consent_key"))
        if key is None:
            return None
        par = self.db.participant_by_consent_key(key)
        if par is None or par.study_id != self.study_row_id:
            return None
        return par

    def find(
        self,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        consent_key: str | None = None,
    ) -> Participant | None:
        """Resume: the participant of this browser's token (else of its consent key, for
        a consent whose reply was lost), None for someone new.

        A link whose ``PROLIFIC_PID`` belongs to another participant than the browser's
        (or to someone while the browser holds nothing) raises :class:`AlreadyStarted`:
        a platform id alone gives no access to anyone's session. A link with a new
        ``PROLIFIC_PID`` on a browser that remembers someone else (a shared computer)
        is someone new."""
        par = self.participant(token) or self.by_consent_key(consent_key)
        pid = _clean_param((params or {}).get("PROLIFIC_PID"), self._text("error_url_parameter"))
        if not pid or (par is not None and par.prolific_pid == pid):
            return par
        owner = self.db.participant_by_prolific(self.study_row_id, pid)
        if owner is not None:
            raise self._already_started()
        return None

    def admission(self, params: dict[str, Any] | None = None) -> NotAdmitted | None:
        """Why someone new with these URL parameters may not start (None: they may):
        the study requires a ``PROLIFIC_PID`` and the link has none, or its quota of
        participants (withdrawn ones not counted) is reached."""
        if self.study.require_prolific_pid and not _clean_param((params or {}).get("PROLIFIC_PID")):
            return NotAdmitted("no_pid", self._text("error_no_prolific_pid"))
        quota = self.study.quota
        if (
            quota is not None
            and self.db.count_participants(self.study_row_id, active=True) >= quota
        ):
            return NotAdmitted("closed", self._text("error_study_closed"))
        return None

    def consent(
        self,
        agreed: bool,
        params: dict[str, Any] | None = None,
        consent_key: str | None = None,
    ) -> Participant:
        """Create the participant (nothing is stored before this).

        ``consent_key`` makes the consent idempotent: sending it again (the reply was
        lost) returns the participant that the first call created. A ``PROLIFIC_PID``
        that already took part raises :class:`AlreadyStarted` (unless the key is the one
        that participant consented with). Someone the study does not admit
        (:meth:`admission`) gets :class:`NotAdmitted`, also when the quota fills up
        during the call."""
        if agreed is not True:
            raise SurveyError(self._text("error_consent"))
        params = params or {}
        key = clean_consent_key(consent_key, self._text("error_consent_key"))
        bad_param = self._text("error_url_parameter")
        pid = _clean_param(params.get("PROLIFIC_PID"), bad_param)
        study_id = _clean_param(params.get("STUDY_ID"), bad_param)
        session_id = _clean_param(params.get("SESSION_ID"), bad_param)

        def retried() -> Participant | None:
            """The participant this key's earlier consent made (a retry), else None."""
            again = self.db.participant_by_consent_key(key) if key is not None else None
            if again is not None and again.study_id != self.study_row_id:
                raise SurveyError(self._text("error_consent_key"))
            return again

        again = retried()
        if again is not None:
            return again
        refused = self.admission(params)
        if refused is not None:
            raise refused
        if pid and self.db.participant_by_prolific(self.study_row_id, pid) is not None:
            # a concurrent first try with this key may have just stored it: look again
            again = retried()
            if again is not None:
                return again
            raise self._already_started()
        arm = self.db.count_participants(self.study_row_id) % max(1, len(self.study.explainers))
        seed = new_seed()
        try:
            par = self.db.create_participant(
                self.study_row_id,
                seed=seed,
                arm=arm,
                assignment=make_assignment(self.study, seed, arm),
                prolific_pid=pid,
                prolific_study_id=study_id,
                prolific_session_id=session_id,
                consent_key=key,
                existing_ok=False,
                quota=self.study.quota,
            )
        except StudyFull:
            raise NotAdmitted("closed", self._text("error_study_closed")) from None
        except ParticipantExists:
            again = retried()
            if again is not None:
                return again
            raise self._already_started() from None
        if par.study_id != self.study_row_id:  # a key of another study on this database
            raise SurveyError(self._text("error_consent_key"))
        return par

    def _require(self, token: str | None) -> Participant:
        par = self.participant(token)
        if par is None:
            raise SurveyError(self._text("error_session"))
        if par.status == "withdrawn":
            raise SurveyError(self._text("error_withdrawn"))
        if par.status == "screened_out":
            raise SurveyError(self._text("error_screened_out"))
        return par

    # -- steps ------------------------------------------------------------------------
    def _plan(self, par: Participant) -> list[tuple[str, Any]]:
        plan: list[tuple[str, Any]] = []
        sections = par.assignment_dict()["sections"]
        for pos, entry in enumerate(sections, 1):
            plan.append(("section", (pos, entry)))
            for chk in self.study.attention_checks:
                if chk.after == pos:
                    plan.append(("check", (pos, chk)))
        return plan

    def step(self, token: str | None) -> Step:
        """The participant's current step (``consent`` for an unknown token)."""
        par = self.participant(token)
        if par is None:
            return Step("consent", total=self.study.sections_shown)
        step = self._step_of(par)
        step.participant_id = par.id
        return step

    def _step_of(self, par: Participant) -> Step:
        total = len(par.assignment_dict()["sections"])
        if par.status == "withdrawn":  # not "complete": no code, and no status change
            kept = par.demographics_at is not None or bool(self.db.answers(par.id))
            return Step("withdrawn", total=total, deleted=not kept)
        if par.demographics_at is None:
            return Step("demographics", total=total)
        rows = {a.section: a for a in self.db.answers(par.id)}
        answered = {k for k, a in rows.items() if a.q2_choice is not None}
        checks = self.db.checks(par.id)
        checked = {c.check_id for c in checks}
        if par.status == "screened_out" or any(not c.passed for c in checks):
            # a failed attention check ends the survey: the screen-out code (if the
            # study has one), never the completion code
            if par.status != "screened_out":
                par = self.db.set_status(par.id, "screened_out")
            return Step(
                "screened_out",
                total=total,
                answered=len(answered),
                code=self.study.screenout_code,
                redirect=self.study.screenout_redirect,
            )
        for kind, (pos, item) in self._plan(par):
            if kind == "section" and item["section"] not in answered:
                return Step(
                    "section",
                    phase="q2" if item["section"] in rows else "q1",
                    position=pos,
                    total=total,
                    answered=len(answered),
                    section=self.section_view(par, pos),
                )
            if kind == "check" and item.id not in checked:
                return Step("check", position=pos, total=total, answered=len(answered), check=item)
        if par.status != "completed":
            par = self.db.set_status(par.id, "completed")
        return Step(
            "complete",
            position=total,
            total=total,
            answered=len(answered),
            code=self.study.completion_code,
            redirect=self.study.completion_redirect,
        )

    def section_view(self, par: Participant, position: int) -> dict[str, Any]:
        """What the participant sees in a section: media paths in display order."""
        entries = par.assignment_dict()["sections"]
        if not 1 <= position <= len(entries):
            raise SurveyError(self._text("error_no_section"))
        entry = entries[position - 1]
        sec = self.study.section(entry["section"])
        videos = [sec.fake, sec.real] if entry["fake_position"] == 1 else [sec.real, sec.fake]
        labels = slot_labels(len(entry["order"]))
        return {
            "section": sec.id,
            "position": position,
            "videos": videos,
            "animations": [
                (lab, sec.animations[name])
                for lab, name in zip(labels, entry["order"], strict=True)
            ],
            "labels": labels,
        }

    # -- submissions ------------------------------------------------------------------
    def submit_demographics(self, token: str | None, screen: Any, familiarity: Any) -> Step:
        par = self._require(token)
        if screen not in SCREENS:
            raise SurveyError(self._text("error_screen"))
        if familiarity not in FAMILIARITY:
            raise SurveyError(self._text("error_familiarity"))
        self.db.set_demographics(par.id, screen, familiarity)
        return self.step(token)

    def _section_entry(self, par: Participant, section_id: Any) -> tuple[int, dict[str, Any]]:
        if par.demographics_at is None:
            raise SurveyError(self._text("error_demographics_first"))
        entries = par.assignment_dict()["sections"]
        for pos, entry in enumerate(entries, 1):
            if isinstance(section_id, str) and entry["section"] == section_id:
                return pos, entry
        raise SurveyError(self._text("error_not_your_section"))

    def submit_q1(self, token: str | None, section_id: Any, q1: Any) -> Step:
        """Store Q1 of a section (``video1`` / ``video2`` / ``dont_know``)."""
        par = self._require(token)
        pos, entry = self._section_entry(par, section_id)
        if self.db.get_answer(par.id, section_id) is not None:
            return self.step(token)  # replay / double click: keep the first answer
        current = self.step(token)
        if current.kind != "section" or current.section["section"] != section_id:
            raise SurveyError(self._text("error_sections_order"))
        if q1 not in Q1_ANSWERS:
            raise SurveyError(self._text("error_q1"))
        fake = entry["fake_position"]
        sec = self.study.section(section_id)
        now = utcnow()
        shown = self._previous_time(par)
        self.db.save_answer(
            par.id,
            section=section_id,
            position=pos,
            video_id=sec.video_id,
            real_video_id=sec.real_video_id,
            fake_position=fake,
            q1_answer=q1,
            q1_correct=None if q1 == "dont_know" else (q1 == f"video{fake}"),
            q2_order=";".join(entry["order"]),
            shown_at=shown,
            q1_answered_at=now,
            q1_time_spent_s=(now - shown).total_seconds() if shown else None,
        )
        return self.step(token)

    def submit_q2(self, token: str | None, section_id: Any, q2: Any) -> Step:
        """Store Q2 of a section: a slot label (``"A"``) or, for multiple-choice
        studies, a list of labels. Q1 of the section must be stored."""
        par = self._require(token)
        _, entry = self._section_entry(par, section_id)
        row = self.db.get_answer(par.id, section_id)
        if row is None:
            raise SurveyError(self._text("error_q1_first"))
        if row.q2_choice is not None:
            return self.step(token)  # replay / double click: keep the first answer
        labels = slot_labels(len(entry["order"]))
        picks = q2 if isinstance(q2, list | tuple) else ([q2] if q2 else [])
        if not picks or any(p not in labels for p in picks) or len(set(picks)) != len(picks):
            raise SurveyError(self._text("error_q2"))
        if self.study.q2_mode == "single" and len(picks) != 1:
            raise SurveyError(self._text("error_q2_one"))
        picks = sorted(picks)
        now = utcnow()
        started = _as_utc(row.q1_answered_at)
        self.db.save_q2(
            par.id,
            section_id,
            q2_choice=";".join(entry["order"][labels.index(p)] for p in picks),
            q2_position=";".join(picks),
            answered_at=now,
            time_spent_s=(now - started).total_seconds() if started else None,
        )
        return self.step(token)

    def submit_section(self, token: str | None, section_id: Any, q1: Any, q2: Any) -> Step:
        """Both questions of a section in one call (scripts, tests)."""
        self.submit_q1(token, section_id, q1)
        return self.submit_q2(token, section_id, q2)

    def submit_check(self, token: str | None, check_id: Any, answer: Any) -> Step:
        par = self._require(token)
        checks = {c.id: c for c in self.study.attention_checks}
        if not isinstance(check_id, str) or check_id not in checks:
            raise SurveyError(self._text("error_unknown_check"))
        if any(c.check_id == check_id for c in self.db.checks(par.id)):
            return self.step(token)
        current = self.step(token)
        if current.kind != "check" or current.check.id != check_id:
            raise SurveyError(self._text("error_questions_order"))
        spec = checks[check_id]
        if answer not in spec.choices:
            raise SurveyError(self._text("error_check"))
        now = utcnow()
        shown = self._previous_time(par)
        self.db.save_check(
            par.id,
            check_id=check_id,
            answer=answer,
            passed=answer == spec.answer,
            answered_at=now,
            time_spent_s=(now - shown).total_seconds() if shown else None,
        )
        return self.step(token)

    def withdraw(self, token: str | None, delete: Any = False) -> Step:
        """The participant leaves the study from the survey page: status ``withdrawn``
        (left out of every analysis, no more answers, no completion code) and, with
        ``delete``, their answers, checks, demographics and platform ids erased (the
        same as ``xai-study withdraw --delete``). Repeating it is harmless; deleting
        later is still possible."""
        par = self.participant(token)
        if par is None:
            raise SurveyError(self._text("error_session"))
        if delete not in (True, False, None):
            raise SurveyError(self._text("error_withdraw_request"))
        if par.status != "withdrawn" or delete:
            self.db.withdraw(par.id, delete=bool(delete))
        return self.step(token)

    def _previous_time(self, par: Participant) -> _dt.datetime | None:
        """When the current step was reached: the last stored answer (or demographics)."""
        times = [_as_utc(par.demographics_at)]
        for a in self.db.answers(par.id):
            times += [_as_utc(a.q1_answered_at), _as_utc(a.answered_at)]
        times += [_as_utc(c.answered_at) for c in self.db.checks(par.id)]
        times = [t for t in times if t is not None]
        return max(times) if times else None
