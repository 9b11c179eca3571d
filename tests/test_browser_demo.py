"""End-to-end: headless Chromium opens /demo, uploads a bundled demo video, waits for the
result, and checks the verdict and four playable H.264 animations."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser_util import CHROMIUM, launch

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _bundled_video() -> Path:
    videos = sorted((ROOT / "study_data" / "demo_data" / "videos").glob("fake_*.mp4"))
    if not videos:
        pytest.skip("no bundled demo videos in study_data/demo_data/videos")
    return videos[0]


@pytest.fixture()
def demo_server(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("headless Chromium not installed (/usr/bin/chromium)")
    import gradio as gr
    import torch

    from xai_study.detectors import create_detector
    from xai_study.ui import demo as demo_page
    from xai_study.ui.context import AppContext

    torch.manual_seed(0)
    ctx = AppContext(study=None, db=None, cache_dir=tmp_path / "cache", max_upload_mb=20)
    # random-init detectors: the test checks the page, not the models' accuracy
    ctx.extra["demo_detectors"] = {
        a: create_detector(a).eval() for a in ("plain", "ltpa", "bonettini")
    }
    ctx.extra["demo_detectors_id"] = "random-init-test"
    ctx.extra["demo_frames"] = 4
    with gr.Blocks() as app:
        demo_page.render(ctx)
    app.queue()
    _, url, _ = app.launch(prevent_thread_lock=True, server_port=None, quiet=True)
    yield url, ctx
    app.close()


def test_demo_page_end_to_end(demo_server):
    from playwright.sync_api import sync_playwright

    from xai_study.video import probe_codec

    url, ctx = demo_server
    video = _bundled_video()
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page()
        page.goto(url, wait_until="networkidle")
        # a corrupt upload gives a one-line message in the page, and the server keeps going
        bad = Path(ctx.cache_dir).parent / "broken.mp4"
        bad.write_bytes(video.read_bytes()[:1500])
        page.locator("#demo-upload input[type=file]").set_input_files(str(bad))
        page.wait_for_timeout(1500)
        page.locator("#demo-run").click()
        page.locator("#demo-status").get_by_text("Error:").wait_for(timeout=60_000)
        assert "broken.mp4" in page.locator("#demo-status").inner_text()
        page.reload(wait_until="networkidle")
        page.locator("#demo-upload input[type=file]").set_input_files(str(video))
        page.wait_for_timeout(1500)
        page.locator("#demo-run").click()
        verdict = page.locator("#demo-verdict")
        try:
            verdict.get_by_text("Verdict:").wait_for(timeout=240_000)
        except Exception as exc:  # say what the page showed instead
            status = page.locator("#demo-status").inner_text()
            raise AssertionError(f"no verdict; the status line said: {status!r}") from exc
        text = verdict.inner_text()
        assert "P(fake) =" in text and ("FAKE" in text or "REAL" in text)
        anims = page.locator(".demo-anim video")
        anims.first.wait_for(timeout=30_000)
        assert anims.count() == 4
        # every animation must actually decode in the browser (H.264 in MP4)
        states = page.evaluate(
            """async () => {
                const vids = [...document.querySelectorAll('.demo-anim video')];
                const wait = v => new Promise(r => {
                    if (v.readyState >= 2) return r(v.readyState);
                    v.addEventListener('loadeddata', () => r(v.readyState));
                    v.addEventListener('error', () => r(-1));
                    setTimeout(() => r(v.readyState), 20000);
                });
                return Promise.all(vids.map(v => { v.muted = true; v.load(); return wait(v); }));
            }"""
        )
        assert states == [s for s in states if s >= 2] and len(states) == 4, states
        captions = page.locator("#demo-captions").inner_text()
        for label in ("Grad-CAM", "SHAP-3D", "LTPA", "Bonettini"):
            assert label in captions
        browser.close()
    # the files behind the players are H.264 yuv420p
    mp4s = [
        p
        for p in (Path(ctx.cache_dir) / "demo").rglob("*.mp4")
        if p.stem in ("gradcam", "shap3d", "ltpa", "bonettini")
    ]
    assert len(mp4s) == 4
    for p in mp4s:
        info = probe_codec(p)
        assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    shutil.rmtree(Path(ctx.cache_dir), ignore_errors=True)
