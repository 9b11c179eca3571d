"""The study folder format: ``study_data/<name>/study.yaml`` (or ``study.json``) + media.

A study file looks like::

    name: demo
    title: Which explanation of a deepfake detector do you prefer?
    sections_shown: 20          # sections per participant (all when omitted)
    q2_mode: single             # or: multiple
    explainers: [gradcam, shap, ltpa, bonettini]
    completion_code: XAI-DEMO-2026
    redirect_url: "https://app.prolific.com/submissions/complete?cc={code}"   # optional
    screenout_code: XS-SCREENED-OUT   # shown (and put into redirect_url) after a failed check
    quota: 200                  # participants at most (not counting withdrawn ones)
    require_prolific_pid: true  # only links with a PROLIFIC_PID may take part
    retention: "until the end of the project, at most 2 years"
    contact: "study-team@example.org"
    attention_checks:
      - id: ac1
        after: 2                # shown after the 2nd section
        question: "To show that you read this, choose 'Blue'."
        choices: [Red, Blue, Green]
        answer: Blue
    sections:
      - id: s01
        video_id: fake_001      # id of the fake video (what analysis reports)
        real_video_id: real_001
        real: media/s01_real.mp4
        fake: media/s01_fake.mp4
        animations:             # one per explainer, all inside the folder
          gradcam: media/s01_gradcam.mp4
          shap: media/s01_shap.mp4
          ltpa: media/s01_ltpa.mp4
          bonettini: media/s01_bonettini.mp4

Media paths are relative to the folder and must stay inside it (only the folder's
``media/`` files are served). :func:`load_study` validates everything and raises a
one-line :class:`~xai_study.errors.StudyError` on the first problem.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xai_study.errors import StudyError

STUDY_FILES = ("study.yaml", "study.yml", "study.json")
MEDIA_SUFFIXES = (".mp4", ".webm", ".gif", ".png", ".jpg", ".jpeg")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: A completion / screen-out code: it is shown to participants and put into the
#: redirect URL, so URL-safe characters only.
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{3,63}$")


def new_completion_code() -> str:
    """A random completion code (``secrets``: 16 hex digits, not derivable from anything)."""
    import secrets

    return secrets.token_hex(8).upper()


def check_code(value: Any, where: str) -> str:
    """``value`` as a completion or screen-out code (4-64 letters, digits, '_', '-', '.')."""
    code = str(value) if value is not None else ""
    if not CODE_PATTERN.match(code):
        raise StudyError(
            f"{where}: {code!r} is not a valid code (4-64 letters, digits, '_', '-', '.'; "
            "starting with a letter or digit)"
        )
    return code


#: Every participant-facing string of the survey, by key. A study file's ``texts:``
#: mapping overrides any of them (an unknown key is an error), so that a study can run in
#: another language; ``xai-study study-texts`` prints them all as a ``texts:`` block.
#: ``{name}`` placeholders are filled in where the text is shown: ``{n}`` (animations per
#: section) everywhere, and those named in :data:`TEXT_PLACEHOLDERS`.
DEFAULT_TEXTS = {
    # consent page
    "intro": (
        "You will watch short videos of faces. In each section, first tell us which of "
        "two videos contains a fake (edited) face, then which animation best explains "
        "why a detector program thinks a face is fake."
    ),
    "consent": (
        "**What we collect.** Your answers, how long each answer took, the kind of screen "
        "you use and whether you know about deepfakes. If you come from a recruiting "
        "platform, the participant, study and session ids it puts in the link. No name, "
        "e-mail, IP address or camera/microphone data is collected. Nothing is stored "
        "before you agree below.\n\n"
        "**Why.** To learn which explanation of a deepfake detector people find most "
        "useful (a research study comparing explanation methods).\n\n"
        "**How long we keep it.** {retention}. Results are published only in aggregate."
        "\n\n"
        "**Withdrawing.** You can stop at any time by closing the page, or leave with "
        '"Leave the study" at the bottom of every page, which can also delete the answers '
        "you gave. Later, write to {contact} with the participant id shown at the top of "
        "the survey.\n\n"
        "The survey has {sections} short sections (a few minutes in all)."
    ),
    "consent_agree": "I am 18 or older, I have read the above and I agree to take part.",
    "start_button": "Start",
    "participant_id": "participant id",
    # demographics
    "about_you": "About you",
    "screen_question": "Which screen are you using?",
    "screen_large": "Large (computer, laptop, tablet)",
    "screen_small": "Small (phone)",
    "familiarity_question": "Do you know what deepfakes are?",
    "familiarity_yes": "Yes, I know what deepfakes are",
    "familiarity_heard": "I have heard of them",
    "familiarity_no": "No",
    "continue_button": "Continue",
    # sections
    "progress": (
        "**Section {position} of {total}**, question {question} of 2 · {answered} sections answered"
    ),
    "question": "Question {question}.",
    "q1": "Which video contains a FAKE face?",
    "video": "Video {k}",
    "q1_video1": "Video 1",
    "q1_video2": "Video 2",
    "q1_dont_know": "I do not know",
    "next_button": "Next",
    "q2": (
        "A bot thinks that this face has been edited (indeed it is). Which of the "
        "{n} animations best explains why the bot believes this?"
    ),
    "q2_multiple": (
        "A bot thinks that this face has been edited (indeed it is). Which ones of the "
        "{n} animations best explain why the bot believes this? (choose one or more)"
    ),
    "animation": "Animation {label}",
    "q2_label": "Best explanation",
    "q2_label_multiple": "Best explanation(s)",
    "save_button": "Save and continue",
    # attention checks (their questions and choices are in attention_checks)
    "check_label": "Your answer",
    # completion
    "complete_title": "Thank you! Your answers are saved.",
    "completion_code": "Your completion code is:",
    "return_link": "Return to the recruiting platform",
    # screened out (a failed attention check)
    "screenout_title": "Thank you for your time.",
    "screenout_body": (
        "The survey has ended for you: an attention check was not passed, so this "
        "submission cannot be completed."
    ),
    "screenout_code": "Your code is:",
    "screenout_return": "If you came from a recruiting platform, please return your submission.",
    # leaving
    "leave_title": "Leave the study",
    "leave_body": (
        "You can leave at any time. Your answers are then left out of the study and you "
        "will not get a completion code."
    ),
    "leave_delete": "Also delete the answers I have given",
    "leave_button": "Leave the study",
    "left_title": "You have left the study.",
    "left_deleted": "Your answers were deleted.",
    "left_kept": (
        "Your answers are left out of the study. To have them deleted, write to {contact} "
        "with your participant id."
    ),
    "left_return": (
        "If you came from a recruiting platform (such as Prolific), please return your "
        "submission there. You can close this page."
    ),
    # messages (one line each, shown above the page)
    "error_consent": "please tick the consent box to take part",
    "error_already_started": (
        "this study was already started in another browser; continue there or contact the "
        "researcher"
    ),
    "error_consent_key": "invalid consent key: reload the page",
    "error_url_parameter": "invalid URL parameter",
    "error_session": "your session was not found: please reload the page",
    "error_withdrawn": "you have withdrawn from this study",
    "error_screen": "please choose the screen you are using",
    "error_familiarity": "please tell us whether you know what deepfakes are",
    "error_demographics_first": "please answer the questions about you first",
    "error_not_your_section": "this section is not part of your survey",
    "error_sections_order": "please answer the sections in order",
    "error_q1": "please answer question 1",
    "error_q1_first": "please answer question 1 first",
    "error_q2": "please choose the animation that best explains the decision",
    "error_q2_one": "please choose exactly one animation",
    "error_unknown_check": "unknown attention check",
    "error_questions_order": "please answer the questions in order",
    "error_check": "please choose one of the answers",
    "error_withdraw_request": "invalid withdrawal request",
    "error_no_section": "no such section",
    "error_no_prolific_pid": (
        "please open this study from its link on Prolific (the link you used has no PROLIFIC_PID)"
    ),
    "error_study_closed": (
        "this study is closed: it has all the participants it needs. Thank you for your interest"
    ),
    "error_screened_out": "the survey has ended for you (an attention check was not passed)",
}
#: Placeholders (besides ``{n}``) that a text may use, filled in where it is shown.
TEXT_PLACEHOLDERS = {
    "consent": ("retention", "contact", "sections"),
    "progress": ("position", "total", "question", "answered"),
    "question": ("question",),
    "video": ("k",),
    "animation": ("label",),
    "left_kept": ("contact",),
    "error_already_started": ("contact",),
}


def check_texts(texts: Any, where: str) -> dict[str, str]:
    """``texts`` (a study file's ``texts:``) as a validated ``{key: text}`` mapping:
    a mapping of known keys (:data:`DEFAULT_TEXTS`) to strings."""
    if texts is None:
        return {}
    if not isinstance(texts, dict):
        raise StudyError(f"{where}: 'texts' must be a mapping of text keys to strings")
    unknown = sorted(str(k) for k in texts if k not in DEFAULT_TEXTS)
    if unknown:
        raise StudyError(
            f"{where}: unknown text key(s) {', '.join(unknown)} in 'texts' "
            f"(known: {', '.join(DEFAULT_TEXTS)})"
        )
    bad = [str(k) for k, v in texts.items() if not isinstance(v, str)]
    if bad:
        raise StudyError(f"{where}: texts {', '.join(bad)} must be strings (quote them)")
    return {str(k): v for k, v in texts.items()}


@dataclass(frozen=True)
class CheckSpec:
    id: str
    after: int
    question: str
    choices: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class SectionSpec:
    id: str
    video_id: str
    real_video_id: str
    real: Path
    fake: Path
    animations: dict[str, Path]
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class StudySpec:
    root: Path
    name: str
    title: str
    sections: list[SectionSpec]
    explainers: list[str]
    sections_shown: int
    q2_mode: str = "single"
    completion_code: str = ""
    redirect_url: str = ""
    #: Shown instead of the completion code after a failed attention check (and put
    #: into ``redirect_url``'s ``{code}``); empty: no code, the participant is asked to
    #: return the submission.
    screenout_code: str = ""
    #: Participants at most (withdrawn ones do not count); None: no limit.
    quota: int | None = None
    #: Only links with a ``PROLIFIC_PID`` may start the survey.
    require_prolific_pid: bool = False
    retention: str = "until the end of the research project, at most 2 years"
    contact: str = "the study team"
    attention_checks: list[CheckSpec] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    file_hash: str = ""
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def section(self, section_id: str) -> SectionSpec:
        for sec in self.sections:
            if sec.id == section_id:
                return sec
        raise StudyError(f"unknown section {section_id!r}")

    def metrics_frame(self):
        """Mean objective metrics per explainer over the sections (from the ``meta`` that
        build-study writes): a DataFrame indexed by explainer, columns V/tau/rho/mu; empty
        when the study file has none."""
        import pandas as pd

        rows = []
        for sec in self.sections:
            for name, values in ((sec.meta or {}).get("metrics") or {}).items():
                if isinstance(values, dict):
                    rows.append({"explainer": name, **values})
        if not rows:
            return pd.DataFrame(columns=["V", "tau", "rho", "mu"])
        frame = pd.DataFrame(rows).set_index("explainer").apply(pd.to_numeric, errors="coerce")
        return frame.groupby(level=0).mean()

    def text(self, key: str, **values: Any) -> str:
        """The participant-facing text ``key`` (the study's ``texts:`` override, else
        :data:`DEFAULT_TEXTS`), with ``{n}`` and the given ``{name}`` placeholders filled
        in (other braces are left as they are)."""
        if key not in DEFAULT_TEXTS:
            raise KeyError(f"unknown study text {key!r}")
        value = self.texts.get(key, DEFAULT_TEXTS[key])
        for name, filler in {"n": len(self.explainers), **values}.items():
            value = value.replace("{" + name + "}", str(filler))
        return value

    @property
    def media_dir(self) -> Path:
        return self.root / "media"

    def redirect_for(self, code: str) -> str:
        """``redirect_url`` for ``code`` (its ``{code}`` filled in); "" without one."""
        return self.redirect_url.replace("{code}", code) if self.redirect_url else ""

    @property
    def completion_redirect(self) -> str:
        """Where a participant who completed the study is sent ("" for nowhere)."""
        return self.redirect_for(self.completion_code)

    @property
    def screenout_redirect(self) -> str:
        """Where a screened-out participant (failed attention check) is sent:
        ``redirect_url`` with the screen-out code, only when it has a ``{code}`` to carry
        it (never the completion link); "" otherwise."""
        if self.screenout_code and "{code}" in self.redirect_url:
            return self.redirect_for(self.screenout_code)
        return ""


def find_study_file(root: Path) -> Path:
    if root.is_file():
        return root
    if not root.is_dir():
        raise StudyError(f"study folder not found: {root}")
    for name in STUDY_FILES:
        if (root / name).is_file():
            return root / name
    raise StudyError(f"no study file ({' / '.join(STUDY_FILES)}) in {root}")


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudyError(f"{path}: not valid {path.suffix[1:].upper()}: {first}") from exc
    if not isinstance(data, dict):
        raise StudyError(f"{path}: the study file must be a mapping")
    return data


def _media(root: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise StudyError(f"{where}: a media path is required")
    rel = Path(value)
    if rel.is_absolute() or ".." in rel.parts:
        raise StudyError(f"{where}: media path must be relative and inside the study folder")
    if rel.suffix.lower() not in MEDIA_SUFFIXES:
        raise StudyError(f"{where}: unsupported media type {rel.suffix!r}")
    full = (root / rel).resolve()
    media = (root / "media").resolve()
    if media not in full.parents:
        raise StudyError(f"{where}: media must be under the study's media/ folder")
    if not full.is_file():
        raise StudyError(f"{where}: media file not found: {value}")
    return full


def _ident(value: Any, where: str) -> str:
    value = str(value) if value is not None else ""
    if not _ID.match(value):
        raise StudyError(f"{where}: id {value!r} must be 1-100 letters, digits, '_', '-', '.'")
    return value


def load_study(path: str | Path) -> StudySpec:
    """Load and validate a study folder (or a study file inside one)."""
    study_file = find_study_file(Path(path).expanduser())
    root = study_file.parent.resolve()
    data = _read(study_file)
    raw_sections = data.get("sections")
    if not isinstance(raw_sections, list) or not raw_sections:
        raise StudyError(f"{study_file}: 'sections' must be a non-empty list")
    explainers = data.get("explainers")
    sections: list[SectionSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_sections, 1):
        where = f"{study_file.name}: section {i}"
        if not isinstance(raw, dict):
            raise StudyError(f"{where}: must be a mapping")
        sid = _ident(raw.get("id", f"s{i:02d}"), where)
        if sid in seen:
            raise StudyError(f"{where}: duplicate section id {sid!r}")
        seen.add(sid)
        anims = raw.get("animations")
        if not isinstance(anims, dict) or len(anims) < 2:
            raise StudyError(f"{where}: 'animations' must map at least 2 explainers to files")
        if explainers is None:
            explainers = list(anims)
        if sorted(anims) != sorted(explainers):
            raise StudyError(
                f"{where}: animations {sorted(anims)} do not match explainers {sorted(explainers)}"
            )
        sections.append(
            SectionSpec(
                id=sid,
                video_id=_ident(raw.get("video_id", sid), where),
                real_video_id=_ident(raw.get("real_video_id", f"{sid}_real"), where),
                real=_media(root, raw.get("real"), f"{where} real"),
                fake=_media(root, raw.get("fake"), f"{where} fake"),
                animations={
                    _ident(k, where): _media(root, v, f"{where} animation {k}")
                    for k, v in anims.items()
                },
                meta=raw.get("meta") if isinstance(raw.get("meta"), dict) else {},
            )
        )
    explainers = [_ident(e, f"{study_file.name}: explainers") for e in explainers]
    shown = data.get("sections_shown", len(sections))
    if not isinstance(shown, int) or isinstance(shown, bool) or not 1 <= shown <= len(sections):
        raise StudyError(
            f"{study_file.name}: sections_shown must be an integer from 1 to {len(sections)}"
        )
    q2_mode = data.get("q2_mode", "single")
    if q2_mode not in ("single", "multiple"):
        raise StudyError(f"{study_file.name}: q2_mode must be 'single' or 'multiple'")
    checks: list[CheckSpec] = []
    for j, raw in enumerate(data.get("attention_checks") or [], 1):
        where = f"{study_file.name}: attention check {j}"
        if not isinstance(raw, dict):
            raise StudyError(f"{where}: must be a mapping")
        choices = raw.get("choices")
        if not isinstance(choices, list) or len(choices) < 2:
            raise StudyError(f"{where}: 'choices' must list at least 2 options")
        choices = tuple(str(c) for c in choices)
        answer = str(raw.get("answer", ""))
        if answer not in choices:
            raise StudyError(f"{where}: 'answer' must be one of the choices")
        after = raw.get("after", shown)
        if not isinstance(after, int) or not 1 <= after <= shown:
            raise StudyError(f"{where}: 'after' must be a section number from 1 to {shown}")
        question = str(raw.get("question") or "").strip()
        if not question:
            raise StudyError(f"{where}: 'question' is required")
        checks.append(
            CheckSpec(_ident(raw.get("id", f"ac{j}"), where), after, question, choices, answer)
        )
    if len({c.id for c in checks}) != len(checks):
        raise StudyError(f"{study_file.name}: duplicate attention check ids")
    redirect = str(data.get("redirect_url") or "")
    if redirect and not redirect.startswith(("https://", "http://")):
        raise StudyError(f"{study_file.name}: redirect_url must be an http(s) URL")
    texts = check_texts(data.get("texts"), study_file.name)
    quota = data.get("quota")
    if quota is not None and (not isinstance(quota, int) or isinstance(quota, bool) or quota < 1):
        raise StudyError(f"{study_file.name}: quota must be a positive integer (or left out)")
    require_pid = data.get("require_prolific_pid", False)
    if not isinstance(require_pid, bool):
        raise StudyError(f"{study_file.name}: require_prolific_pid must be true or false")
    name = _ident(data.get("name", root.name), f"{study_file.name}: name")
    if not data.get("completion_code"):
        # no fallback: a code derived from the study would be guessable, and one made up
        # here would neither be stored nor match what the recruiting platform expects
        raise StudyError(
            f"{study_file}: no completion_code; add one, e.g. 'completion_code: "
            f"{new_completion_code()}' (a random one) or the code your recruiting platform "
            "gave you, or rebuild the study with build-study"
        )
    code = check_code(data["completion_code"], f"{study_file.name}: completion_code")
    screenout = ""
    if data.get("screenout_code"):
        screenout = check_code(data["screenout_code"], f"{study_file.name}: screenout_code")
        if screenout == code:
            raise StudyError(f"{study_file.name}: screenout_code must differ from completion_code")
    leaks = []
    for sec in sections:
        roles = f"{sec.fake.stem} {sec.real.stem}".lower()
        names = " ".join(p.stem.lower() for p in sec.animations.values())
        if "fake" in roles or "real" in roles or any(n.lower() in names for n in sec.animations):
            leaks.append(sec.id)
    warnings = []
    if leaks:
        warnings.append(
            f"media file names of {len(leaks)} section(s) (e.g. {leaks[0]}) reveal the fake "
            "video or the explainer; participants can see file names (build-study uses "
            "opaque names)"
        )
    return StudySpec(
        warnings=warnings,
        root=root,
        name=name,
        title=str(data.get("title") or "Deepfake explanation study"),
        sections=sections,
        explainers=explainers,
        sections_shown=shown,
        q2_mode=q2_mode,
        completion_code=code,
        redirect_url=redirect,
        screenout_code=screenout,
        quota=quota,
        require_prolific_pid=require_pid,
        retention=str(data.get("retention") or StudySpec.retention),
        contact=str(data.get("contact") or StudySpec.contact),
        attention_checks=checks,
        texts=texts,
        file_hash=hashlib.sha256(study_file.read_bytes()).hexdigest(),
        path=study_file,
    )


def write_study(data: dict[str, Any], out_dir: Path) -> Path:
    """Write ``study.yaml`` into ``out_dir`` and validate it by loading it back."""
    import yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "study.yaml"
    tmp = out_dir / ".study.yaml.tmp"  # never a half-written study file
    tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(path)
    load_study(out_dir)
    return path
