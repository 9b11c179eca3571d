"""The /demo page's wiring (without a browser): queue limit, cancel, bad input message."""

from __future__ import annotations

import pytest

gr = pytest.importorskip("gradio")


@pytest.fixture()
def page(tmp_path, data_dir):
    from xai_study.ui import demo as demo_page
    from xai_study.ui.context import AppContext

    ctx = AppContext(study=None, db=None, cache_dir=tmp_path / "cache", max_upload_mb=5)
    ctx.extra["demo_data_dir"] = data_dir
    ctx.extra["demo_concurrency"] = 2
    with gr.Blocks() as app:
        demo_page.render(ctx)
    fns = {f.name: f for f in app.fns.values()}
    return app, fns


def test_queue_limit_and_cancel_are_wired(page):
    _, fns = page
    job = fns["analyse"]
    assert job.concurrency_limit == 2 and job.concurrency_id == "demo-explain"
    assert job.queue is not False
    assert "stop" in fns


def test_bad_input_gives_one_line_message(page, tmp_path, short_face_video):
    _, fns = page
    analyse = fns["analyse"].fn
    four = ["gradcam", "shap3d", "ltpa", "bonettini"]
    text = tmp_path / "x.mp4"
    text.write_text("not a video")
    out = analyse(str(text), None, four, "fast", "fake", 4, None)
    assert out[0].startswith("**Error:** x.mp4: not a readable video")
    out = analyse(None, None, four, "fast", "fake", 4, None)
    assert out[0] == "**Error:** no video given: upload a video or pick a demo video"
    out = analyse(None, "/etc/passwd", four, "fast", "fake", 4, None)
    assert "unknown demo video" in out[0]
    out = analyse(str(short_face_video), None, [], "fast", "fake", 4, None)
    assert out[0] == "**Error:** choose at least one explainer"


def test_an_upload_is_deleted_after_its_job(tmp_path, data_dir):
    from xai_study.ui import demo as demo_page
    from xai_study.ui.context import AppContext
    from xai_study.ui.guard import Uploads

    ctx = AppContext(study=None, db=None, cache_dir=tmp_path / "cache", max_upload_mb=5)
    ctx.extra["demo_data_dir"] = data_dir
    ctx.extra["uploads"] = uploads = Uploads()
    with gr.Blocks() as app:
        demo_page.render(ctx)
    analyse = next(f for f in app.fns.values() if f.name == "analyse").fn
    upload = tmp_path / "up" / "x.mp4"
    upload.parent.mkdir()
    upload.write_text("not a video")
    uploads.add(str(upload), "client")
    out = analyse(str(upload), None, ["gradcam"], "fast", "fake", 4, None)
    assert out[0].startswith("**Error:** x.mp4:")  # the file name, not the server path
    assert str(tmp_path) not in out[0]
    assert not upload.exists() and uploads.live() == 0
    out = analyse(str(upload), None, ["gradcam"], "fast", "fake", 4, None)  # re-run
    assert "upload it again" in out[0]
