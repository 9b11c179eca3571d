"""``xai-study build-study``: a study folder from a labelled video set.

For each section a fake video is paired with a real one (seeded order; the real video
it was made from when the labels name it). The fake is analysed by
:func:`xai_study.runs.analyse_video` (face clip, then every explainer on the detector it
needs: Grad-CAM and SHAP on the plain detector, LTPA and Bonettini on their attention
detectors), each explanation is rendered as an unlabelled heat-map animation over the
face crops, both videos are re-encoded as H.264 MP4s for the browser (:class:`Stimuli`:
size, frame rate, frames), and ``study.yaml`` is written (with the detector score, the
paper's objective metrics V/tau/rho/mu of every explanation and the run time, so that
the analysis can relate preferences to metrics).

Real corpora have bad videos: a fake without a usable face (none found, or in too few of
the sampled frames) or a video that does not decode is skipped, recorded and reported,
and the next fake (or real) takes its place. Every finished section and every skipped
video is appended to ``OUT/.build/journal.jsonl`` as it happens, so an interrupted
build resumes where it stopped when the same command is run again (finished videos are
not analysed again); the journal is removed once ``study.yaml`` is written (the skipped
videos are listed in its ``built_with``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xai_study.errors import NoFaceError, StudyError, VideoError, XaiStudyError

#: Participant videos: longest side (px), frame rate (at most; the source's when lower)
#: and frames (at most: a longer video is cut to its first frames / fps seconds).
DEFAULT_VIDEO_SIZE = 480
DEFAULT_VIDEO_FPS = 25.0
DEFAULT_VIDEO_FRAMES = 250
#: A fake is used only when a face is found in at least this share of the sampled frames.
DEFAULT_MIN_FACE_COVERAGE = 0.5
BUILD_DIR = ".build"


@dataclass(frozen=True)
class Stimuli:
    """How the participant videos and the animations are encoded.

    ``video_size``: longest side in pixels (0: as recorded); ``video_fps``: frame rate at
    most (the source's rate when it is lower); ``video_frames``: frames at most, so a
    video plays for at most ``video_frames / video_fps`` seconds (the start of a longer
    one). ``animation_fps``: frame rate of the explanation animations (None: the
    explained frames over 2 s, between 2 and 12 fps); their frames are the explained
    frames (``--frames``) at the preset's crop size."""

    video_size: int = DEFAULT_VIDEO_SIZE
    video_fps: float = DEFAULT_VIDEO_FPS
    video_frames: int = DEFAULT_VIDEO_FRAMES
    animation_fps: float | None = None

    def check(self) -> Stimuli:
        if self.video_size != 0 and not 16 <= self.video_size <= 4096:
            raise StudyError("--video-size must be 0 (as recorded) or from 16 to 4096 pixels")
        if not 1 <= self.video_fps <= 120:
            raise StudyError("--video-fps must be from 1 to 120")
        if not 1 <= self.video_frames <= 10_000:
            raise StudyError("--video-frames must be from 1 to 10000")
        if self.animation_fps is not None and not 0.5 <= self.animation_fps <= 60:
            raise StudyError("--animation-fps must be from 0.5 to 60")
        return self


@dataclass
class Skipped:
    """A video left out of the study, and why."""

    video_id: str
    role: str  # fake / real
    path: str
    reason: str

    def line(self) -> str:
        return f"{self.role} {self.video_id} ({self.path}): {self.reason}"


@dataclass
class BuildReport:
    """What :func:`build_study` did: the study file, the sections (``resumed`` of them
    from an interrupted build), the skipped videos, warnings and the codes."""

    path: Path
    sections: int
    requested: int | None
    resumed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    completion_code: str = ""
    screenout_code: str = ""

    def summary(self) -> str:
        """Several lines for the terminal: counts, each skipped video, the codes."""
        lines = [
            f"built {self.sections} section(s)"
            + (f" ({self.resumed} kept from an interrupted build)" if self.resumed else "")
        ]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} video(s):")
            lines += [f"  {s.line()}" for s in self.skipped]
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(f"completion code: {self.completion_code}")
        if self.screenout_code:
            lines.append(f"screen-out code: {self.screenout_code}")
        lines.append(f"wrote {self.path}")
        return "\n".join(lines)


def read_pool(data_csv: Path, split: str | None = "test") -> tuple[list[dict], list[dict]]:
    """``(fakes, reals)`` of a labels file (:func:`xai_study.labels.read_labels`) as
    ``{id, path, source}`` rows; ``split`` applies when the file has a ``split`` column."""
    from xai_study.labels import read_labels

    try:
        records = read_labels(data_csv, split=split or None, split_if_present=True)
    except XaiStudyError as exc:
        raise StudyError(str(exc)) from None
    fakes, reals = [], []
    for line, rec in enumerate(records, start=2):
        if not rec.path.is_file():
            raise StudyError(f"{data_csv}: row {line}: video not found: {rec.path_text}")
        row = {
            "id": _safe_id(rec.video_id),
            "path": rec.path,
            "path_text": rec.path_text,
            "source": _safe_id(rec.source) if rec.source else None,
        }
        (fakes if rec.is_fake else reals).append(row)
    return fakes, reals


def study_explainers(names: list[str] | None) -> dict[str, str]:
    """Study name -> registry name of ``names`` (study names, registry names or labels;
    default: the paper's four), in order."""
    from xai_study.explainers import explainer_class, paper_explainers

    out: dict[str, str] = {}
    for name in names or paper_explainers():
        try:
            cls = explainer_class(name)
        except XaiStudyError as exc:
            raise StudyError(f"unknown study explainer {name!r} ({exc})") from None
        out[cls.study_name] = cls.name
    return out


class Pairing:
    """Fakes in a seeded random order, each paired with a real video: the real video it
    was made from when the labels name it (``target_video_id``: same scene, only the
    face differs, as a viewer would need to tell them apart), else a free real video
    chosen by a seeded hash, avoiding the sources of fakes still to come. A pick
    depends only on the seed and on which reals are still free, so a resumed build makes
    the same pairs; reals that fail to decode are :meth:`drop`-ped and never picked."""

    def __init__(self, fakes: list[dict], reals: list[dict], seed: int) -> None:
        self.seed = seed
        self.order = list(fakes)
        random.Random(seed).shuffle(self.order)
        self.free = {r["id"]: r for r in reals}
        self.pending = Counter(f["source"] for f in self.order if f.get("source"))

    def fakes(self) -> Iterator[dict]:
        for fake in self.order:
            if fake.get("source"):
                self.pending[fake["source"]] -= 1
            yield fake

    def real_for(self, fake: dict) -> dict | None:
        """The real video for ``fake`` (None when no real video is left)."""
        own = self.free.get(fake.get("source") or "")
        if own is not None:
            return own
        spare = [r for r in self.free if self.pending[r] <= 0] or list(self.free)
        if not spare:
            return None

        def rank(real_id: str) -> str:
            return hashlib.sha256(f"{self.seed}:{fake['id']}:{real_id}".encode()).hexdigest()

        return self.free[min(spare, key=rank)]

    def drop(self, real_id: str) -> None:
        """``real_id`` is used (or unusable): never pick it again."""
        self.free.pop(real_id, None)


def pair_videos(fakes: list[dict], reals: list[dict], n: int, seed: int) -> list[tuple]:
    """The first ``n`` (fake, real) pairs of :class:`Pairing` when no video is skipped."""
    pairing = Pairing(fakes, reals, seed)
    out = []
    for fake in pairing.fakes():
        real = pairing.real_for(fake)
        if len(out) == n or real is None:
            break
        pairing.drop(real["id"])
        out.append((fake, real))
    return out


def _safe_id(value: str) -> str:
    keep = "".join(c if c.isalnum() or c in "_.-" else "_" for c in value)[:100]
    return keep if keep and keep[0].isalnum() else f"v{keep}"[:100]


def _opaque_name(section: str, role: str, salt: str) -> str:
    """A media file name that does not reveal which video is fake or which explainer
    made an animation (participants can see file names in the page's URLs). ``salt`` is
    a random secret of the build: without it, the names could be recomputed from the
    section id and the role."""
    digest = hashlib.sha256(f"{salt}:{section}:{role}".encode()).hexdigest()[:10]
    return f"{section}_{digest}.mp4"


def _stimulus_video(src: Path, dst: Path, stimuli: Stimuli) -> dict[str, Any]:
    """Re-encode a video for the browser (:class:`Stimuli`); returns what was written."""
    from xai_study.video import read_clip, write_video

    clip = read_clip(
        src,
        fps=stimuli.video_fps,
        max_frames=stimuli.video_frames,
        max_side=stimuli.video_size or None,
    )
    write_video(clip.frames, dst, fps=clip.fps, crf=23)
    h, w = clip.frames.shape[1:3]
    return {"frames": len(clip.frames), "fps": round(clip.fps, 3), "size": [w, h]}


def _check_request(explainers, sections, shown, num_frames, fakes, reals, data_csv) -> None:
    if len(explainers) < 2:
        raise StudyError("a study needs at least 2 explainers")
    if num_frames is not None and num_frames < 2:
        raise StudyError("--frames must be at least 2")
    available = min(len(fakes), len(reals))
    if available == 0:
        raise StudyError(f"{data_csv}: needs at least one real and one fake video")
    if sections is not None and not 1 <= sections <= available:
        raise StudyError(
            f"--sections must be from 1 to {available} ({len(fakes)} fake, {len(reals)} real)"
        )
    if shown is not None and not 1 <= shown <= (sections or available):
        raise StudyError(f"--shown must be from 1 to {sections or available}")


def _rounded(metrics: dict[str, float]) -> dict[str, float | None]:
    return {
        k: (None if v is None or not np.isfinite(v) else round(float(v), 6))
        for k, v in metrics.items()
    }


# -- the journal of an unfinished build ----------------------------------------------------
class Journal:
    """``OUT/.build/``: ``request.json`` (the settings that decide every section's
    content, and the build's random salt) and ``journal.jsonl`` (one line per finished
    section or skipped video, appended and synced as it happens; a line cut short by a
    crash is ignored)."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = out_dir / BUILD_DIR
        self.request_path = self.dir / "request.json"
        self.path = self.dir / "journal.jsonl"

    def exists(self) -> bool:
        return self.request_path.is_file()

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        self.dir.mkdir(parents=True, exist_ok=True)
        request = {**request, "salt": os.urandom(16).hex()}
        tmp = self.request_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(request, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.request_path)
        return request

    def resume(self, request: dict[str, Any]) -> dict[str, Any]:
        """The stored request, when ``request`` asks for the same sections; else an
        error naming the first setting that differs."""
        try:
            stored = json.loads(self.request_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StudyError(
                f"{self.request_path}: unreadable ({exc}); use --force to start again"
            ) from None
        for key, value in request.items():
            if stored.get(key) != json.loads(json.dumps(value)):
                raise StudyError(
                    f"{self.dir.parent} holds an unfinished build with other settings "
                    f"({key}: {stored.get(key)!r}, now {value!r}); run the same command "
                    "to continue it, or use --force to start again"
                )
        return stored

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # the last line of a crashed build, cut short
            if isinstance(rec, dict) and rec.get("kind") in ("section", "skipped"):
                out.append(rec)
        return out

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _prepare_folder(out_dir: Path, force: bool) -> bool:
    """Make ``out_dir`` ready; True when it holds an unfinished build to resume."""
    # the journal is removed only once study.yaml is written: while it is there, the
    # build is unfinished (also when a study file was cut short by a crash)
    if out_dir.exists() and any(out_dir.iterdir()):
        if force:
            shutil.rmtree(out_dir)
        elif Journal(out_dir).exists():
            return True
        else:
            raise StudyError(f"{out_dir} exists and is not empty (use --force to replace it)")
    (out_dir / "media").mkdir(parents=True, exist_ok=True)
    return False


# -- one section -------------------------------------------------------------------------
#: Per-video problems: the video is skipped. Anything else (a detector, an explainer
#: setting) would fail for every video and stops the build.
VIDEO_PROBLEMS = (NoFaceError, VideoError)


def analyse_fake(
    fake: dict,
    explainers: dict[str, str],
    detectors,
    *,
    preset: str,
    num_frames: int | None,
    params: dict[str, dict[str, Any]],
    min_face_coverage: float,
):
    """The analysis of a fake (face clip, then every explainer); NoFaceError when a face
    is found in fewer than ``min_face_coverage`` of the sampled frames."""
    from xai_study.runs import analyse_video
    from xai_study.runs.video import face_clip

    clip, _ = face_clip(fake["path"], preset, num_frames)
    if clip.coverage < min_face_coverage:
        raise NoFaceError(
            f"a face in only {len(clip.frames)} of the sampled frames (coverage "
            f"{clip.coverage:.2f} < {min_face_coverage:g}, --min-face-coverage)"
        )
    return analyse_video(
        clip,
        explainers=list(explainers.values()),
        preset=preset,
        num_frames=num_frames,
        detectors=detectors,
        params=params,
        render=False,
    )


@dataclass
class AnalyseJob:
    """:func:`analyse_fake` on a Ray worker (``build-study --workers N``): detectors and
    MTCNN load once per worker; the driver's preset travels with the job. ``run`` returns
    ``{"analysis": ...}`` or, for a video problem (the build skips the video),
    ``{"skip": reason}``; anything else is the worker's error and stops the build."""

    explainers: dict[str, str]
    specs: dict[str, Any]
    needed: list[str]
    preset: str
    config: dict[str, Any]
    num_frames: int | None
    params: dict[str, dict[str, Any]]
    min_face_coverage: float
    batch_size: int | None = None
    _detectors: Any = field(default=None, init=False, repr=False)

    def setup(self, device: str) -> None:
        from xai_study.runs.detectors import DetectorSet
        from xai_study.runs.presets import PRESETS
        from xai_study.video.faces import get_mtcnn

        PRESETS[self.preset] = self.config
        get_mtcnn(device)
        self._detectors = DetectorSet(self.specs, device, self.batch_size).load(self.needed)

    def run(self, fake: dict) -> dict[str, Any]:
        if self._detectors is None:
            raise RuntimeError("AnalyseJob.run before setup")
        return self.analyse(fake, self._detectors)

    def analyse(self, fake: dict, detectors) -> dict[str, Any]:
        """One fake's analysis with ``detectors`` (the sequential build calls this with
        its own; a worker with those of its :meth:`setup`)."""
        try:
            analysis = analyse_fake(
                fake,
                self.explainers,
                detectors,
                preset=self.preset,
                num_frames=self.num_frames,
                params=self.params,
                min_face_coverage=self.min_face_coverage,
            )
        except VIDEO_PROBLEMS as exc:
            return {"skip": _reason(exc, fake)}
        return {"analysis": analysis}


def section_entry(
    sid: str,
    fake: dict,
    real: dict,
    analysis,
    explainers: dict[str, str],
    out_dir: Path,
    stimuli: Stimuli,
    salt: str,
) -> dict[str, Any]:
    """Render the fake's unlabelled animations and encode the fake into
    ``out_dir/media`` (the real one is already there); the section's ``study.yaml``
    entry."""
    from xai_study.metrics import paper_metrics
    from xai_study.render import render_overlay, save_animation

    media = out_dir / "media"
    fake_name = _opaque_name(sid, "fake", salt)
    real_name = _opaque_name(sid, "real", salt)
    fake_info = _stimulus_video(fake["path"], media / fake_name, stimuli)
    crops = analysis.clip.frames
    fps = stimuli.animation_fps or max(2.0, min(12.0, len(crops) / 2.0))
    anims: dict[str, str] = {}
    meta: dict[str, Any] = {
        "p_fake": round(float(analysis.p_fake), 6),
        "metrics": {},
        "seconds": {},
        "face_coverage": round(float(analysis.clip.coverage), 4),
        "fake_video": fake_info,
    }
    for name, reg in explainers.items():
        expl = analysis.explanations[reg]
        frames = render_overlay(crops, expl.normalised, legend=False)  # unlabelled
        path = save_animation(frames, media / _opaque_name(sid, name, salt), fps=fps)
        anims[name] = str(path.relative_to(out_dir))
        meta["metrics"][name] = _rounded(paper_metrics(expl.maps, signed=expl.signed))
        meta["seconds"][name] = round(float(expl.seconds), 3)
        if expl.extra.get("convergence") is not None:
            meta.setdefault("convergence", {})[name] = expl.summary()["convergence"]
    return {
        "id": sid,
        "video_id": fake["id"],
        "real_video_id": real["id"],
        "real": f"media/{real_name}",
        "fake": f"media/{fake_name}",
        "animations": anims,
        "meta": meta,
    }


def _reason(exc: BaseException, video: dict) -> str:
    """The one-line reason of a skip (without the path, which the report names)."""
    text = str(exc).replace("\n", " ").strip() or type(exc).__name__
    return text.removeprefix(f"{video['path']}: ")


def _remove_section_media(media: Path, sid: str) -> None:
    """Files of an attempt at section ``sid`` that did not finish."""
    for path in media.glob(f"{sid}_*"):
        path.unlink(missing_ok=True)


# -- study-level settings ----------------------------------------------------------------
def _attention_checks(n_shown: int) -> list[dict[str, Any]]:
    return [
        {
            "id": "ac1",
            "after": max(1, n_shown // 2),
            "question": "This question checks attention: please choose 'Blue'.",
            "choices": ["Red", "Blue", "Green"],
            "answer": "Blue",
        }
    ]


def read_texts(path: Path) -> dict[str, str]:
    """A YAML file of participant-facing texts: a ``texts:`` mapping (what
    ``xai-study study-texts`` prints) or the bare mapping, validated."""
    import yaml

    from xai_study.study.spec import check_texts

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise StudyError(f"--texts {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        raise StudyError(f"--texts {path}: not valid YAML: {first}") from None
    if isinstance(data, dict) and set(data) == {"texts"}:
        data = data["texts"]
    return check_texts(data, f"--texts {path}")


def read_consent(path: Path) -> str:
    """The consent Markdown of ``--consent FILE.md`` (UTF-8, not empty)."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StudyError(f"--consent {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise StudyError(f"--consent {path}: not a UTF-8 text file") from None
    if not text:
        raise StudyError(f"--consent {path}: the file is empty")
    return text


@dataclass
class StudySettings:
    """What ``study.yaml`` says besides the sections (the survey's settings, not part of
    what is computed: changing them never needs a rebuild). ``completion_code`` None:
    a random one (:func:`~xai_study.study.spec.new_completion_code`)."""

    title: str | None = None
    shown: int | None = None
    q2_mode: str = "single"
    attention_check: bool = True
    completion_code: str | None = None
    screenout_code: str | None = None
    redirect_url: str | None = None
    contact: str | None = None
    retention: str | None = None
    consent: Path | None = None  # a Markdown file
    texts: dict[str, str] | Path | None = None  # a mapping or a YAML file

    def resolve(self) -> dict[str, Any]:
        """The study file's settings, checked now (before any video is analysed)."""
        from xai_study.study.spec import check_code, check_texts, new_completion_code

        if self.q2_mode not in ("single", "multiple"):
            raise StudyError("--q2-mode must be 'single' or 'multiple'")
        code = check_code(self.completion_code or new_completion_code(), "--completion-code")
        out: dict[str, Any] = {"completion_code": code}
        if self.screenout_code:
            out["screenout_code"] = check_code(self.screenout_code, "--screenout-code")
            if out["screenout_code"] == code:
                raise StudyError("--screenout-code must differ from the completion code")
        redirect = self.redirect_url or ""
        if redirect and not redirect.startswith(("https://", "http://")):
            raise StudyError(f"--redirect-url must be an http(s) URL, got {redirect!r}")
        out["redirect_url"] = redirect
        for key in ("contact", "retention"):
            value = getattr(self, key)
            if value is not None:
                if not str(value).strip():
                    raise StudyError(f"--{key} must not be empty")
                out[key] = str(value).strip()
        texts = (
            read_texts(self.texts)
            if isinstance(self.texts, str | Path)
            else check_texts(self.texts, "texts")
        )
        if self.consent is not None:
            texts = {**texts, "consent": read_consent(self.consent)}
        if texts:
            out["texts"] = texts
        return out


# -- the build -----------------------------------------------------------------------------
def _analyse_on_ray(job: AnalyseJob, fakes, ahead, cluster, progress) -> None:
    """The analyses of ``fakes`` by Ray workers, into ``ahead`` (id -> the job's
    result); a worker error (not a video problem) stops the build, as it would in a
    sequential one."""
    from xai_study.runs.cluster import run_videos

    def on_result(video: str, out: dict[str, Any]) -> str | None:
        ahead[video] = out
        return None

    items = [(f["id"], f) for f in fakes]
    report = run_videos(job, items, cluster, on_result, progress, desc="analyse")
    if report.failures:
        f = report.failures[0]
        raise StudyError(f"analysing {f.video} failed on a Ray worker: {f.error}")


def build_study(
    data_csv: Path,
    out_dir: Path,
    *,
    sections: int | None = None,
    shown: int | None = None,
    models: Any = None,  # {arch: spec}, a runs.DetectorSet, or None (the demo models)
    explainers: list[str] | None = None,
    explainer_params: dict[str, dict[str, Any]] | None = None,
    preset: str = "fast",
    num_frames: int | None = 16,
    seed: int = 0,
    split: str | None = "test",
    title: str | None = None,
    q2_mode: str = "single",
    attention_check: bool = True,
    force: bool = False,
    progress: bool = True,
    stimuli: Stimuli | None = None,
    settings: StudySettings | None = None,
    min_face_coverage: float = DEFAULT_MIN_FACE_COVERAGE,
    cluster: Any = None,  # a runs.cluster.ClusterOptions: analyse the fakes on Ray
) -> BuildReport:
    """Build the study folder ``out_dir`` (resuming an unfinished build of the same
    settings there); returns a :class:`BuildReport`.

    With ``cluster`` (enabled :class:`~xai_study.runs.cluster.ClusterOptions`) the fakes'
    analyses (face clip, detectors, explainers: nearly all of the time) run on Ray
    workers, as many at once as sections are still needed; pairing, stimuli, rendering
    and the journal stay in this process, in the same order, so the study is the
    sequential build's.

    ``sections`` None: as many as there are usable (fake, real) pairs. ``settings``
    (:class:`StudySettings`) holds the survey's settings; ``title``, ``shown``,
    ``q2_mode`` and ``attention_check`` are kept for callers that pass them alone.
    ``explainer_params`` is keyed by study explainer name (``shap``, ...) and overrides
    the ``preset``'s parameters."""
    from tqdm import tqdm

    from xai_study.explainers import canonical_name
    from xai_study.runs.detectors import VERDICT_ARCH, arch_for, detector_set
    from xai_study.study.spec import write_study

    stimuli = (stimuli or Stimuli()).check()
    if settings is None:
        settings = StudySettings(
            title=title, shown=shown, q2_mode=q2_mode, attention_check=attention_check
        )
    if not 0.0 < min_face_coverage <= 1.0:
        raise StudyError("--min-face-coverage must be in (0, 1]")
    study_fields = settings.resolve()
    chosen = study_explainers(explainers)
    fakes, reals = read_pool(data_csv, split)
    _check_request(list(chosen), sections, settings.shown, num_frames, fakes, reals, data_csv)
    needed = sorted({arch_for(reg) for reg in chosen.values()} | {VERDICT_ARCH})
    # ``models``: specs per architecture, or a DetectorSet (with its device and batch size)
    detectors = detector_set(models).load(needed)  # fail early, before any file is written
    params = {canonical_name(e): dict(v) for e, v in (explainer_params or {}).items() if v}
    shown_params = {e: v for e, v in (explainer_params or {}).items() if v}
    request = {
        "data": str(Path(data_csv).resolve()),
        "split": split or None,
        "models": {a: str(detectors.spec(a)) for a in needed},
        "explainers": chosen,
        "preset": preset,
        "frames": num_frames,
        "explainer_params": shown_params,
        "seed": seed,
        "stimuli": asdict(stimuli),
        "min_face_coverage": min_face_coverage,
    }
    journal = Journal(out_dir)
    resuming = _prepare_folder(out_dir, force)
    request = journal.resume(request) if resuming else journal.start(request)
    salt = request["salt"]
    media = out_dir / "media"
    media.mkdir(parents=True, exist_ok=True)

    done: dict[str, dict[str, Any]] = {}  # fake id -> its section record
    skipped: dict[tuple[str, str], Skipped] = {}
    for rec in journal.records():
        if rec["kind"] == "section":
            done[rec["fake"]] = rec
        else:
            sk = Skipped(rec["video"], rec["role"], rec["path"], rec["reason"])
            skipped[(sk.role, sk.video_id)] = sk
    pairing = Pairing(fakes, reals, seed)
    for role, vid in skipped:
        if role == "real":
            pairing.drop(vid)
    for rec in done.values():
        pairing.drop(rec["real"])

    def skip(video: dict, role: str, reason: str) -> None:
        sk = Skipped(video["id"], role, video["path_text"], reason)
        skipped[(role, video["id"])] = sk
        journal.append(
            {
                "kind": "skipped",
                "video": sk.video_id,
                "role": role,
                "path": sk.path,
                "reason": reason,
            }
        )

    from xai_study.runs.presets import preset as preset_config

    on_ray = cluster is not None and cluster.enabled
    job = AnalyseJob(
        explainers=dict(chosen),
        specs=dict(detectors.specs),
        needed=list(needed),
        preset=preset,
        config=preset_config(preset),
        num_frames=num_frames,
        params=params,
        min_face_coverage=min_face_coverage,
        batch_size=detectors.batch_size,
    )
    ahead: dict[str, dict[str, Any]] = {}  # fake id -> its analysis, computed on Ray

    def analyse(fake: dict) -> tuple[Any, str | None]:
        """(analysis, None), or (None, reason) for a fake to skip."""
        if not on_ray:
            out = job.analyse(fake, detectors)
        else:
            if fake["id"] not in ahead:
                # this fake and the next ones still needed, on the workers at once
                need = target - len(section_rows)
                todo = [
                    f
                    for f in pairing.order[pairing.order.index(fake) :]
                    if f["id"] not in done and ("fake", f["id"]) not in skipped
                ][:need]
                _analyse_on_ray(job, todo, ahead, cluster, progress)
            out = ahead.pop(fake["id"])
        return out.get("analysis"), out.get("skip")

    section_rows: list[dict[str, Any]] = []
    resumed = 0
    out_of_reals = 0
    target = sections or min(len(fakes), len(reals))
    with tqdm(total=target, desc="build-study", unit="section", disable=not progress) as bar:
        for fake in pairing.fakes():
            if len(section_rows) == target:
                break
            if fake["id"] in done:  # finished before an interruption: not recomputed
                section_rows.append(done[fake["id"]]["section"])
                resumed += 1
                bar.update()
                continue
            if ("fake", fake["id"]) in skipped:
                continue
            if pairing.real_for(fake) is None:
                out_of_reals += 1
                continue
            sid = f"s{len(section_rows) + 1:02d}"
            bar.set_postfix_str(f"{sid} {fake['id']}")
            _remove_section_media(media, sid)
            analysis, reason = analyse(fake)
            if reason is not None:
                skip(fake, "fake", reason)
                continue
            real = pairing.real_for(fake)
            while real is not None:
                try:
                    _stimulus_video(real["path"], media / _opaque_name(sid, "real", salt), stimuli)
                    break
                except VIDEO_PROBLEMS as exc:
                    skip(real, "real", _reason(exc, real))
                    pairing.drop(real["id"])
                    real = pairing.real_for(fake)
            if real is None:
                out_of_reals += 1
                _remove_section_media(media, sid)
                continue
            try:
                entry = section_entry(sid, fake, real, analysis, chosen, out_dir, stimuli, salt)
            except VIDEO_PROBLEMS as exc:
                skip(fake, "fake", _reason(exc, fake))
                _remove_section_media(media, sid)
                continue
            pairing.drop(real["id"])
            journal.append(
                {"kind": "section", "fake": fake["id"], "real": real["id"], "section": entry}
            )
            section_rows.append(entry)
            bar.update()

    warnings: list[str] = []
    if out_of_reals:
        warnings.append(f"{out_of_reals} fake video(s) left without a usable real video to pair")
    if not section_rows:
        raise StudyError(
            f"no section could be built: every fake video was skipped "
            f"({len(skipped)} skipped; see {journal.path})"
        )
    if sections and len(section_rows) < sections:
        warnings.append(
            f"only {len(section_rows)} of the {sections} sections asked for: not enough "
            "usable videos"
        )
    n_shown = settings.shown or len(section_rows)
    if n_shown > len(section_rows):
        warnings.append(
            f"--shown {n_shown} is more than the {len(section_rows)} sections built: each "
            f"participant sees all {len(section_rows)}"
        )
        n_shown = len(section_rows)
    name = _safe_id(out_dir.resolve().name)
    data: dict[str, Any] = {
        "name": name,
        "title": settings.title or "Which explanation of a deepfake detector do you prefer?",
        "sections_shown": n_shown,
        "q2_mode": settings.q2_mode,
        "explainers": list(chosen),
        **study_fields,
        "attention_checks": _attention_checks(n_shown) if settings.attention_check else [],
        "built_with": {
            "data": str(data_csv),
            "models": request["models"],
            "preset": preset,
            "frames": num_frames,
            "seed": seed,
            "explainer_params": shown_params,
            "stimuli": asdict(stimuli),
            "min_face_coverage": min_face_coverage,
            "skipped": [asdict(s) for s in skipped.values()],
        },
        "sections": section_rows,
    }
    path = write_study(data, out_dir)
    journal.remove()  # everything it held is in study.yaml now
    return BuildReport(
        path=path,
        sections=len(section_rows),
        requested=sections,
        resumed=resumed,
        skipped=list(skipped.values()),
        warnings=warnings,
        completion_code=study_fields["completion_code"],
        screenout_code=study_fields.get("screenout_code", ""),
    )
