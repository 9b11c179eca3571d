"""A researcher's own study, end to end (docs/study.md, "Your own study, end to end"):
a labels file and icpr2020dfdc checkpoints (random weights with the original key
names) -> ``build-study`` -> the survey served -> a participant from a Prolific link
completes it over HTTP -> ``export`` -> ``analyze``.

Kept cheap: one section, 2 explained frames, Grad-CAM and Bonettini only (no SHAP),
64 px participant videos of 6 frames."""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
import yaml
from study_util import api_call, free_port

from xai_study.cli import main

DATA = Path(__file__).resolve().parent / "data"
ep = pytest.importorskip("efficientnet_pytorch")

# outputs of the survey endpoints over raw HTTP (layout columns included)
# the survey's API output order (plain values): token, item, message, stimuli HTML, page
TOKEN, ITEM, MESSAGE, STIMULI, CODE = 1, 2, 4, 5, -1


def _icpr_files(out: Path) -> tuple[Path, Path]:
    """EfficientNetB4 and EfficientNetAutoAttB4 as polimi-ispl/icpr2020dfdc saves them
    (``efficientnet.*`` + ``classifier.*``; ``efficientnet.attconv`` after block 9),
    random weights: the plain one as a bare state dict, the attention one as a training
    checkpoint ``{"net": ...}``."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    paths = []
    for att in (False, True):
        net = nn.Module()
        net.efficientnet = ep.EfficientNet.from_name("efficientnet-b4")
        del net.efficientnet._fc
        if att:
            net.efficientnet.attconv = nn.Conv2d(56, 1, kernel_size=1)
        net.classifier = nn.Linear(1792, 1)
        state = net.state_dict()
        assert "efficientnet._blocks.31._project_conv.weight" in state
        path = out / ("EfficientNetAutoAttB4_DFDC.pth" if att else "EfficientNetB4_DFDC.pth")
        torch.save({"net": state, "epoch": 1} if att else state, path)
        paths.append(path)
    return paths[0], paths[1]


@pytest.mark.slow
def test_own_study_end_to_end(tmp_path, capsys):
    from xai_study.study.db import Database
    from xai_study.study.spec import load_study
    from xai_study.ui.app import serve
    from xai_study.ui.context import AppContext

    # 1. the researcher's material: videos + labels, detector weights, consent, texts
    b4, autoatt = _icpr_files(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "video_id,path,label,split,target_video_id\n"
        f"real_01,{DATA / 'single_face.mp4'},real,test,\n"
        f"fake_01,{DATA / 'single_face.webm'},fake,test,real_01\n"
    )
    consent = tmp_path / "consent.md"
    consent.write_text("**Einwilligung.** Aufbewahrung: {retention}. Kontakt: {contact}.\n")
    texts = tmp_path / "texts.yaml"
    texts.write_text(yaml.safe_dump({"texts": {"q1": "Welches Video ist gefälscht?"}}))
    study_dir = tmp_path / "mystudy"
    build = ["build-study", "--data", str(labels), "--out", str(study_dir), "--quiet"]
    build += ["--model", f"plain={b4}", "--model", f"bonettini={autoatt}"]
    build += ["--explainers", "gradcam,bonettini", "--frames", "2"]
    build += ["--video-size", "64", "--video-fps", "10", "--video-frames", "6"]
    build += ["--redirect-url", "https://app.prolific.com/submissions/complete?cc={code}"]
    build += ["--screenout-code", "SCREENED-1", "--contact", "team@example.org"]
    build += ["--retention", "zwei Jahre", "--consent", str(consent), "--texts", str(texts)]

    # 2. build the study
    assert main(build) == 0
    out = capsys.readouterr().out
    study = load_study(study_dir)
    code = study.completion_code
    assert f"completion code: {code}" in out and "built 1 section(s)" in out
    assert len(code) == 16 and "mystudy" not in code.lower()
    assert study.screenout_code == "SCREENED-1"
    assert study.contact == "team@example.org" and study.retention == "zwei Jahre"
    assert study.text("q1") == "Welches Video ist gefälscht?"
    raw = yaml.safe_load(study.path.read_text())
    assert raw["built_with"]["models"] == {"bonettini": str(autoatt), "plain": str(b4)}
    sec = study.sections[0]
    assert (sec.video_id, sec.real_video_id) == ("fake_01", "real_01")
    assert 0.0 <= sec.meta["p_fake"] <= 1.0
    assert sec.meta["fake_video"] == {"frames": 6, "fps": 10.0, "size": [64, 36]}
    assert not (study_dir / ".build").exists()  # finished: the journal is gone

    # 3. serve it
    db_path = tmp_path / "mystudy.db"
    url_db = f"sqlite:///{db_path}"
    ctx = AppContext(study=study, db=Database(url_db), admin_password="pw")
    blocks, url = serve(ctx, "127.0.0.1", free_port(), db_path=db_path, block=False)
    try:
        page = requests.get(f"{url.rstrip('/')}/config", timeout=30).text
        assert "Einwilligung" in page and "zwei Jahre" in page and "team@example.org" in page
        assert "Welches Video ist gefälscht?" in page

        # 4. a participant from a Prolific link completes it over HTTP
        link = "?PROLIFIC_PID=5f0c0ffee0c0ffee0c0ffee0&STUDY_ID=st1&SESSION_ID=se1"
        r = api_call(url, "consent", [None, True, None], link)
        tok = r[TOKEN]
        r = api_call(url, "demographics", [tok, "large", "heard of it"], link)
        assert r[ITEM] == "s01" and "xs-anims" not in r[STIMULI]  # no animation before Q1
        src = html.unescape(re.search(r"<video src='([^']+)'", r[STIMULI]).group(1))
        video = requests.get(urljoin(url, src), timeout=30)
        assert video.status_code == 200 and len(video.content) > 0  # the media is served
        r = api_call(url, "q1", [tok, "s01", "video1"], link)
        assert "xs-anims" in r[STIMULI] and "<video" in r[STIMULI]
        r = api_call(url, "q2", [tok, "s01", "B"], link)
        assert r[ITEM] == "ac1"
        r = api_call(url, "check", [tok, "ac1", "Blue"], link)
        page = r[CODE] if isinstance(r[CODE], str) else r[CODE]["value"]
        assert code in page and f"cc={code}" in page
        assert not r[MESSAGE]
    finally:
        blocks.close()

    # 5. export and analyse
    export = tmp_path / "export"
    assert main(["export", "--db", url_db, "--out", str(export)]) == 0
    with open(export / "responses.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["video_id"] == "fake_01"
    assert rows[0]["q2_choice"] in ("gradcam", "bonettini")
    with open(export / "participants.csv", newline="") as fh:
        people = list(csv.DictReader(fh))
    assert people[0]["status"] == "completed"
    assert people[0]["prolific_pid"] == "5f0c0ffee0c0ffee0c0ffee0"
    results = tmp_path / "results"
    analyse = ["analyze", "--responses", str(export / "responses.csv")]
    analyse += ["--study-dir", str(study_dir), "--out", str(results), "--no-plots"]
    assert main(analyse) == 0
    assert (results / "stats.csv").stat().st_size > 0
    assert "participants: 1 (1 completed" in capsys.readouterr().out
