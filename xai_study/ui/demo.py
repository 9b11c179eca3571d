"""The ``/demo`` page: upload a video (or pick a bundled one) and see the verdict and the
explanations side by side. Only Gradio here; the work is in :mod:`xai_study.demo`.

``ctx.extra`` options (all optional): ``demo_data_dir`` (bundled videos, default
``study_data/demo_data/videos`` of the checkout or of the installed package, see
:mod:`xai_study.resources`), ``demo_detectors`` (the ``DetectorSet`` of ``serve
--model``/``--device``/``--batch-size``, or detector objects or names passed to the
pipeline; default: the demo checkpoints), ``demo_detectors_id`` (their identity in the
result cache), ``demo_concurrency`` (simultaneous
explanation jobs, default 1), ``demo_max_seconds`` (longest video accepted, default 60),
``uploads`` (the server's :class:`~xai_study.ui.guard.Uploads`: an uploaded video is
deleted after its job).
"""

from __future__ import annotations

import html
import threading
from pathlib import Path

import gradio as gr

from xai_study.explainers import explainer_choices, paper_explainers
from xai_study.metrics.paper import PAPER_METRICS
from xai_study.metrics.summary import LABELS
from xai_study.runs.presets import PRESETS
from xai_study.ui.context import AppContext
from xai_study.ui.guard import DEMO_JOBS, public_message

METRIC_KEYS = [cls.name for cls in PAPER_METRICS]
METRIC_HEADERS = [LABELS.get(k, k) for k in METRIC_KEYS]
ALL_EXPLAINERS = explainer_choices()
PAPER_FOUR = paper_explainers()
SLOTS = len(ALL_EXPLAINERS)


def _gpu() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - torch always present in the app
        return False


def _bundled(ctx: AppContext) -> list[str]:
    from xai_study.resources import demo_videos_dir

    folder = Path(ctx.extra.get("demo_data_dir") or demo_videos_dir())
    if not folder.is_dir():
        return []
    return sorted(str(p) for p in folder.glob("*.mp4"))


def render(ctx: AppContext) -> None:
    """Build the demo page inside the current Blocks / route context."""
    from xai_study.demo import DemoSettings, ResultCache, run_demo
    from xai_study.demo.jobs import demo_checkpoints_id
    from xai_study.detectors.evaluate import format_p
    from xai_study.errors import XaiStudyError

    cache = ResultCache(Path(ctx.cache_dir) / "demo")
    cancels: dict[str, threading.Event] = {}
    gpu = _gpu()
    # the dropdown holds file names only (no server paths in /config); mapped back here
    videos = {Path(v).name: v for v in _bundled(ctx)}
    max_seconds = float(ctx.extra.get("demo_max_seconds", 60.0))
    limit = int(ctx.extra.get("demo_concurrency", 1))
    uploads = ctx.extra.get("uploads")

    gr.Markdown(
        "# Is it fake, and why?\n"
        "Upload a short video with a face (or pick a bundled demo video). A deepfake "
        "detector gives its verdict, and four explainers show which parts of the face "
        "made it decide."
    )
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(
                label=f"Upload a video (up to {ctx.max_upload_mb:g} MB, {max_seconds:g} s)",
                file_types=["video"],
                elem_id="demo-upload",
            )
            bundled = gr.Dropdown(
                choices=[(Path(name).stem, name) for name in videos],
                value=None,
                label="... or pick a bundled demo video",
                elem_id="demo-bundled",
            )
        with gr.Column(scale=1):
            explainers = gr.CheckboxGroup(
                choices=ALL_EXPLAINERS, value=PAPER_FOUR, label="Explainers"
            )
            with gr.Row():
                preset = gr.Radio(
                    list(PRESETS),
                    value="paper" if gpu else "fast",
                    label="Preset (fast on CPU, paper on a GPU)",
                )
                target = gr.Radio(["fake", "real"], value="fake", label="Explain the class")
            frames = gr.Slider(
                2,
                32,
                value=int(ctx.extra.get("demo_frames", 32 if gpu else 16)),
                step=1,
                label="Frames",
            )
            with gr.Row():
                run_btn = gr.Button("Analyse", variant="primary", elem_id="demo-run")
                stop_btn = gr.Button("Cancel", variant="stop", elem_id="demo-cancel")
    status = gr.Markdown(
        "Pick a video and press **Analyse**. Progress and your place in the queue show here.",
        elem_id="demo-status",
        min_height=60,
    )
    with gr.Column(visible=False) as results:
        verdict = gr.Markdown(elem_id="demo-verdict")
        with gr.Row():
            plot = gr.LinePlot(
                x="time (s)", y="P(fake)", y_lim=[0, 1], label="Per-frame P(fake)", height=220
            )
            faces = gr.Video(label="Face crop track", autoplay=True, loop=True, height=220)
        gr.Markdown("### Explanations (all loop in sync; same frames, same speed)")
        with gr.Row():
            anims = [
                gr.Video(visible=False, autoplay=True, loop=True, elem_classes=["demo-anim"])
                for _ in range(SLOTS)
            ]
        captions = gr.Markdown(elem_id="demo-captions")
        metrics = gr.Dataframe(
            headers=["explainer", *METRIC_HEADERS], label="Metrics (the paper's V, τ, ρ, μ, I)"
        )
        with gr.Row():
            weighted = gr.Video(
                label="Consensus weighted by the detector's per-frame confidence",
                autoplay=True,
                loop=True,
            )
            grid = gr.Video(label="Face and all explanations in one video", loop=True)
        weighted_caption = gr.Markdown()

    outputs = [status, results, verdict, plot, faces, *anims, captions, metrics]
    outputs += [weighted, grid, weighted_caption]

    def _fail(message: str):
        # no server paths, no long echoes of what the client sent
        text = html.escape(public_message(message))
        return [f"**Error:** {text}", gr.update(visible=False)] + [gr.skip()] * (len(outputs) - 2)

    def analyse(
        file,
        picked,
        chosen,
        preset_v,
        target_v,
        frames_v,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        import pandas as pd

        if not file and picked and (not isinstance(picked, str) or picked not in videos):
            # the dropdown value comes from the client: only bundled videos are allowed
            return _fail("unknown demo video; pick one from the list")
        if file and not Path(file).is_file():
            return _fail("the uploaded video was deleted after its analysis: upload it again")
        path = file or (videos[picked] if picked else None)
        sid = getattr(request, "session_hash", None) or "anon"
        cancel = cancels[sid] = threading.Event()
        settings = DemoSettings(
            explainers=tuple(chosen or ()),
            preset=preset_v,
            frames=int(frames_v),
            target=target_v,
            detectors=str(ctx.extra.get("demo_detectors_id") or demo_checkpoints_id()),
        )
        progress(0.0, desc="starting")
        try:
            res = run_demo(
                path,
                settings,
                cache,
                detectors=ctx.extra.get("demo_detectors"),
                progress=lambda stage, frac: progress(frac, desc=stage),
                cancel=cancel,
                max_bytes=ctx.max_upload_bytes,
                max_seconds=max_seconds,
            )
        except XaiStudyError as exc:
            return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        finally:
            cancels.pop(sid, None)
            if file and uploads is not None:
                uploads.release(file)  # an upload lives for one job (or its maximum age)
        scores = pd.DataFrame({"time (s)": res.timestamps, "P(fake)": res.frame_scores})
        names = list(res.animations)
        anim_updates = [
            gr.update(value=res.animations[n], label=res.labels[n], visible=True) for n in names
        ] + [gr.update(value=None, visible=False)] * (SLOTS - len(names))
        table = pd.DataFrame(
            [[res.labels[n]] + [res.metrics[n].get(k) for k in METRIC_KEYS] for n in names],
            columns=["explainer", *METRIC_HEADERS],
        ).round(4)
        word = "FAKE" if res.verdict == "fake" else "REAL"
        note = " (from the cache)" if res.cached else f" in {res.seconds.get('total', 0):.0f} s"
        warn = "".join(f"\n\n*{w}*" for w in res.warnings)
        return [
            f"Done{note}.",
            gr.update(visible=True),
            f"## Verdict: {word} — P(fake) = {format_p(res.p_fake)} "
            f"(fake at ≥ {format_p(res.threshold)}){warn}",
            scores,
            res.face_track,
            *anim_updates,
            "\n".join(f"- {res.captions[n]}" for n in names),
            table,
            res.weighted,
            res.grid,
            res.weighted_caption,
        ]

    def stop(request: gr.Request):
        ev = cancels.get(getattr(request, "session_hash", None) or "anon")
        if ev is not None:
            ev.set()
        return "Cancelled."

    job = run_btn.click(
        analyse,
        inputs=[upload, bundled, explainers, preset, target, frames],
        outputs=outputs,
        concurrency_limit=limit,
        concurrency_id=DEMO_JOBS,
        show_progress_on=[status],
        api_visibility="private",
    )
    stop_btn.click(stop, outputs=[status], cancels=[job], queue=False)
