"""Study settings a researcher sets: participant-facing texts (another language),
completion and screen-out codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from study_util import make_study

from xai_study.errors import StudyError
from xai_study.study.db import Database
from xai_study.study.flow import AlreadyStarted, Survey, SurveyError
from xai_study.study.spec import DEFAULT_TEXTS, TEXT_PLACEHOLDERS, load_study


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("texts") / "tiny"
    make_study(out, n_sections=2)
    return out


def _edit(study_dir: Path, tmp_path: Path, change) -> Path:
    data = yaml.safe_load((study_dir / "study.yaml").read_text())
    change(data)
    out = tmp_path / "edited"
    out.mkdir()
    (out / "media").symlink_to(study_dir / "media")
    (out / "study.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return out


GERMAN = {
    "q1": "Welches Video zeigt ein GEFÄLSCHTES Gesicht?",
    "error_consent": "Bitte bestätigen Sie die Einwilligung.",
    "error_already_started": "Bereits in einem anderen Browser begonnen ({contact}).",
    "progress": "Abschnitt {position} von {total}",
    "consent": "Wir speichern Ihre Antworten {retention}. Kontakt: {contact}. {sections} Teile.",
}


def test_texts_override_every_default_and_fill_placeholders(study_dir, tmp_path):
    st = load_study(_edit(study_dir, tmp_path, lambda d: d.update(texts=GERMAN, contact="a@b.c")))
    assert st.text("q1") == GERMAN["q1"]
    assert st.text("q1_video1") == DEFAULT_TEXTS["q1_video1"]  # not overridden: default
    assert st.text("progress", position=2, total=5) == "Abschnitt 2 von 5"
    assert st.text("q2").count("4 animations") == 1  # {n}: the number of explainers
    with pytest.raises(KeyError):
        st.text("no_such_text")
    # the survey's own messages come from the texts too
    survey = Survey(st, Database(f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    with pytest.raises(SurveyError, match="Bitte bestätigen"):
        survey.consent(False)
    survey.consent(True, {"PROLIFIC_PID": "p1"})
    with pytest.raises(AlreadyStarted) as info:
        survey.consent(True, {"PROLIFIC_PID": "p1"})
    assert str(info.value) == "Bereits in einem anderen Browser begonnen (a@b.c)."
    # every placeholder a text may use is one its default uses (the default of
    # error_already_started adds the contact itself, when it is an e-mail address)
    for key, names in TEXT_PLACEHOLDERS.items():
        if key != "error_already_started":
            assert all("{" + n + "}" in DEFAULT_TEXTS[key] for n in names), key


def test_the_survey_page_shows_the_study_texts(study_dir, tmp_path):
    """The Gradio page (built, not served) uses the overridden strings and no default."""
    import gradio as gr

    from xai_study.ui.context import AppContext
    from xai_study.ui.survey import build

    texts = {k: f"T<{k}>" for k in DEFAULT_TEXTS}
    st = load_study(_edit(study_dir, tmp_path, lambda d: d.update(texts=texts)))
    ctx = AppContext(study=st, db=Database(f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    ctx.extra["survey"] = Survey(st, ctx.db)
    with gr.Blocks() as blocks:
        build(ctx, blocks)
    config = str(blocks.get_config_file())
    for key in ("consent_agree", "start_button", "screen_question", "screen_small", "q1_video1"):
        assert f"T<{key}>" in config, key
    # (the Q1 video captions are drawn per step in the stimuli HTML, not in the layout)
    for key in ("animation", "save_button", "leave_title", "leave_body"):
        assert f"T<{key}>" in config or f"T&lt;{key}&gt;" in config, key
    for default in ("I agree to take part", "Which screen are you using?", "Save and continue"):
        assert default not in config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.update(texts={"q1": "x", "q3": "y", "intro2": "z"}),
            "unknown text key(s) intro2, q3 in 'texts' (known: intro, consent,",
        ),
        (lambda d: d.update(texts=["q1"]), "'texts' must be a mapping"),
        (lambda d: d.update(texts={"q1": 3}), "texts q1 must be strings"),
        (lambda d: d.pop("completion_code"), "no completion_code; add one, e.g. 'completion_code:"),
        (lambda d: d.update(completion_code="a b"), "not a valid code"),
        (lambda d: d.update(screenout_code="TEST-CODE-42"), "must differ from completion_code"),
        (lambda d: d.update(screenout_code="x"), "screenout_code: 'x' is not a valid code"),
    ],
)
def test_bad_settings_are_one_line_errors(study_dir, tmp_path, change, message):
    with pytest.raises(StudyError) as info:
        load_study(_edit(study_dir, tmp_path, change))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_no_code_is_derived_from_the_study(study_dir, tmp_path):
    """A study without a code is refused, never given one made from its name; the
    message suggests a fresh random code each time."""
    out = _edit(study_dir, tmp_path, lambda d: d.pop("completion_code"))
    messages = set()
    for _ in range(2):
        with pytest.raises(StudyError) as info:
            load_study(out)
        messages.add(str(info.value))
    assert len(messages) == 2


def test_screenout_settings(study_dir, tmp_path):
    st = load_study(_edit(study_dir, tmp_path, lambda d: d.update(screenout_code="SCREEN-1")))
    assert st.screenout_code == "SCREEN-1"
    assert st.screenout_redirect == "https://example.org/done?cc=SCREEN-1"
    assert st.completion_redirect == "https://example.org/done?cc=TEST-CODE-42"
    assert load_study(study_dir).screenout_redirect == ""  # none set: no screen-out
