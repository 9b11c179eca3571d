"""The explainer interface, its result type and the registry.

Contract (documented once here, like captum's attribution contract):

- An :class:`Explainer` is built for one detector with ``create_explainer(name, detector,
  **params)``. The detector implements the detector contract,
  :class:`xai_study.detectors.contract.VideoDetector` (``preprocess``, ``forward ->
  (N, 1)`` logits, ``frame_logits``, ``video_score``, ``gradcam_layer``, ``config``,
  ...); anything else is a one-line user error. ``requires`` names the detector
  architecture it needs (``None``: any; ``bonettini`` / ``ltpa``: an
  :class:`~xai_study.detectors.contract.AttentionDetector` of that architecture).
- ``explain(clip, target="fake")`` takes a :class:`~xai_study.video.clip.FaceClip` (or a
  plain ``(T, H, W, 3)`` uint8 array of face crops) and returns an :class:`Explanation`:
  ``maps`` are the raw maps, ``(T, H, W)`` float32 on the face-crop grid (signed when
  ``signed`` is true: positive values are evidence *for* the target); ``normalised`` is
  the non-negative, clip-normalised view of :func:`xai_study.maps.normalise` (design §2
  steps 1-2) used by metrics and rendering.
- ``target="fake"`` explains the fake logit; ``target="real"`` explains its negation
  (for the attention explainers the map does not depend on the target, which the
  explanation's ``params`` record).
- Explainers never change the detector's weights, always release the hooks they add,
  and are deterministic for a given ``seed`` parameter.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from xai_study.errors import XaiStudyError

if TYPE_CHECKING:  # the detectors package imports torch: only when an explainer runs
    from xai_study.detectors.contract import AttentionDetector, VideoDetector

TARGETS = ("fake", "real")
ProgressFn = Callable[[float], None]


@dataclass
class Explanation:
    """One explanation of one clip."""

    name: str
    maps: np.ndarray  # (T, H, W) float32, raw, on the crop grid
    normalised: np.ndarray  # (T, H, W) float32 in [0, 1]
    score: float  # video-level P(fake) of the explained detector
    signed: bool
    target: str = "fake"
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # method-specific by-products

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description (no arrays); sampling explainers add their
        ``convergence`` figure (:mod:`xai_study.explainers.convergence`)."""
        out = {
            "name": self.name,
            "signed": self.signed,
            "target": self.target,
            "score": float(self.score),
            "seconds": round(float(self.seconds), 3),
            "shape": list(self.maps.shape),
            "params": _jsonable(self.params),
        }
        if self.extra.get("convergence") is not None:
            out["convergence"] = _jsonable(self.extra["convergence"])
        return out


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class Explainer:
    """Base class: subclasses set ``name``/``signed``/``requires`` and implement ``_explain``.

    ``defaults`` lists every parameter with its default; unknown parameters are a user
    error. ``_explain(frames, sign, progress)`` receives the crops as a ``(T, H, W, 3)``
    uint8 array and ``sign`` (+1 for fake, -1 for real) and returns raw ``(T, H, W)``
    maps (and optionally a dict of extras as a second value).
    """

    name: ClassVar[str] = ""
    #: Identity (the one place these are spelled): the display label, the name used in
    #: study folders and participant answers (default: ``name``), and, for the paper's
    #: four explainers, their 1-based position in the paper's tables and the paper's
    #: own spelling. ``paper_rank`` 0: not one of the paper's explainers.
    label: ClassVar[str] = ""
    study_name: ClassVar[str] = ""
    paper_rank: ClassVar[int] = 0
    paper_label: ClassVar[str] = ""
    #: True on the null explainers (``explainers/nulls.py``): maps that ignore the
    #: detector or the video, reported beside the others as what they must beat.
    null: ClassVar[bool] = False
    signed: ClassVar[bool] = False
    requires: ClassVar[str | None] = None  # detector arch this explainer needs
    description: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, detector: VideoDetector, **params: Any):
        from xai_study.detectors.contract import check_detector

        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            allowed = ", ".join(sorted(self.defaults)) or "none"
            raise XaiStudyError(
                f"explainer {self.name!r}: unknown parameter(s) {', '.join(unknown)} "
                f"(allowed: {allowed})"
            )
        detector = check_detector(detector, f"explainer {self.name!r}: the detector")
        arch = detector_arch(detector)
        if self.requires is not None and arch != self.requires:
            raise XaiStudyError(
                f"explainer {self.name!r} needs a {self.requires!r} detector, got {arch!r}"
            )
        self.detector: VideoDetector = detector
        self.params = {**self.defaults, **params}
        self.check_params()

    def check_params(self) -> None:
        """Validate ``self.params`` (raise XaiStudyError); override in subclasses."""

    def attention_detector(self) -> AttentionDetector:
        """The detector as an :class:`~xai_study.detectors.contract.AttentionDetector`
        (for the attention explainers; a one-line error for a detector without
        ``attention``)."""
        from xai_study.detectors.contract import check_attention_detector

        return check_attention_detector(self.detector, f"explainer {self.name!r}: the detector")

    def explain(
        self, clip: Any, target: str = "fake", progress: ProgressFn | None = None
    ) -> Explanation:
        """Explain why the detector scores ``clip`` as ``target``; see the module docstring."""
        from xai_study.maps import normalise

        if target not in TARGETS:
            raise XaiStudyError(f"target must be 'fake' or 'real', got {target!r}")
        frames = clip_frames(clip)
        sign = 1.0 if target == "fake" else -1.0
        start = time.perf_counter()
        with (
            detector_lock(self.detector),
            _seeded(int(self.params.get("seed", 0))),
            _eval_mode(self.detector),
        ):
            out = self._explain(frames, sign, progress)
            extra: dict[str, Any] = {}
            if isinstance(out, tuple):
                out, extra = out
            seconds = time.perf_counter() - start
            score = extra.pop("score", None)
            if score is None:  # not part of the timing: every explainer needs it
                score = self.detector.video_score(frames)
        maps = np.asarray(out, dtype=np.float32)
        expected = frames.shape[:3]
        if maps.shape != expected:  # a bug in a subclass, not a user error
            raise RuntimeError(f"{self.name}: maps have shape {maps.shape}, expected {expected}")
        maps = np.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0)
        if progress is not None:
            progress(1.0)
        return Explanation(
            name=self.name,
            maps=maps,
            normalised=normalise(maps, signed=self.signed).astype(np.float32),
            score=float(score),
            signed=self.signed,
            target=target,
            params=dict(self.params),
            seconds=seconds,
            extra=extra,
        )

    def _explain(self, frames: np.ndarray, sign: float, progress: ProgressFn | None) -> Any:
        raise NotImplementedError


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Explainer]] = {}


def register(cls: type[Explainer]) -> type[Explainer]:
    """Class decorator adding an explainer to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if not cls.label:
        raise ValueError(f"{cls.__name__} has no display label")
    if "study_name" not in cls.__dict__ or not cls.study_name:
        cls.study_name = cls.name
    _REGISTRY[cls.name] = cls
    return cls


def list_explainers() -> list[str]:
    """Names of every registered explainer, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def explainer_class(name: str) -> type[Explainer]:
    """The registered class of ``name``: a registry name, an alias, a study name or a
    display label (``Grad-CAM``, ``GradCAM``, ``shap``, ``SHAP-3D``; case and punctuation
    do not matter)."""
    _load_all()
    key = ALIASES.get(name, name)
    if key not in _REGISTRY:
        key = _spellings().get(_squash(name), key)
    if key not in _REGISTRY:
        raise XaiStudyError(
            f"unknown explainer {name!r} (choose from: {', '.join(sorted(_REGISTRY))})"
        )
    return _REGISTRY[key]


def canonical_name(name: str) -> str:
    """The registry name of any spelling :func:`explainer_class` accepts."""
    return explainer_class(name).name


def paper_explainers() -> list[str]:
    """Registry names of the paper's four explainers, in the paper's order."""
    _load_all()
    ranked = [c for c in _REGISTRY.values() if c.paper_rank]
    return [c.name for c in sorted(ranked, key=lambda c: c.paper_rank)]


def explainer_choices() -> list[tuple[str, str]]:
    """``(label, name)`` of every explainer a user may pick: the paper's four in the
    paper's order, then the others by name (UI and CLI choices)."""
    _load_all()
    paper = paper_explainers()
    rest = sorted(n for n, c in _REGISTRY.items() if n not in paper and not _is_null(c))
    return [(_REGISTRY[n].label, n) for n in [*paper, *rest]]


def _is_null(cls: type[Explainer]) -> bool:
    return cls.null


def null_explainers() -> list[str]:
    """Registry names of the null explainers (baselines that look at nothing real)."""
    _load_all()
    return sorted(n for n, c in _REGISTRY.items() if c.null)


def explainer_label(name: str) -> str:
    """Display label of an explainer (``gradcam`` -> ``Grad-CAM``); unknown names are
    returned as given."""
    try:
        return explainer_class(name).label
    except XaiStudyError:
        return str(name)


def study_explainers() -> dict[str, str]:
    """Study name -> registry name, for every registered explainer."""
    _load_all()
    return {c.study_name: c.name for c in _REGISTRY.values()}


def _squash(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _spellings() -> dict[str, str]:
    out: dict[str, str] = {}
    for cls in _REGISTRY.values():
        for spelling in (cls.name, cls.label, cls.study_name, cls.paper_label):
            if spelling:
                out.setdefault(_squash(spelling), cls.name)
    for alias, target in ALIASES.items():
        out.setdefault(_squash(alias), target)
    return out


def create_explainer(name: str, detector: VideoDetector, **params: Any) -> Explainer:
    """Build the explainer ``name`` for ``detector`` (parameters override its defaults)."""
    return explainer_class(name)(detector, **params)


ALIASES = {"shap": "shap3d", "lime": "lime3d", "ig": "integrated_gradients", "grad-cam": "gradcam"}


def _load_all() -> None:
    # Importing the package imports every explainer module, which registers itself.
    import xai_study.explainers  # noqa: F401


# --------------------------------------------------------------------------- helpers


def clip_frames(clip) -> np.ndarray:
    """The ``(T, H, W, 3)`` uint8 crops of a FaceClip (or of an array)."""
    frames = getattr(clip, "frames", clip)
    arr = np.asarray(frames)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
        raise XaiStudyError(f"expected face crops of shape (T, H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def detector_arch(detector: VideoDetector) -> str | None:
    """``config["arch"]`` of a detector (``None`` when the config does not say)."""
    arch = detector.config.get("arch")
    return str(arch) if arch is not None else None


#: Frames per batch of the gradient explainers (backward passes keep every activation).
GRADIENT_BATCH = 8


def batch_size_of(detector: VideoDetector, cap: int | None = None) -> int:
    """The detector's preferred batch size (``detector.batch_size``), at most ``cap``."""
    size = int(detector.batch_size)
    return min(size, cap) if cap else size


def make_baseline(frames: np.ndarray, kind: str, blur_sigma: float = 0.0) -> np.ndarray:
    """The explainers' reference clip: ``blur`` (Gaussian blur of each frame), ``mean``
    (the clip's mean colour) or ``black`` (:func:`xai_study.detectors.baselines.
    make_baseline`). ``blur_sigma`` 0 picks 1/10 of the crop size."""
    from xai_study.detectors.baselines import explainer_blur_sigma
    from xai_study.detectors.baselines import make_baseline as _make_baseline

    sigma = blur_sigma or explainer_blur_sigma(frames)
    return _make_baseline(frames, kind, sigma, choices=BASELINES)


BASELINES = ("blur", "mean", "black")


_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def detector_lock(detector) -> threading.RLock:
    """One re-entrant lock per detector object. Explanations of the same detector run one
    at a time: Grad-CAM's hooks would otherwise record another thread's forward passes
    (the web demo serves several users with shared, cached detectors)."""
    with _LOCKS_GUARD:
        try:
            lock = _LOCKS.get(detector)
            if lock is None:
                lock = _LOCKS[detector] = threading.RLock()
        except TypeError:  # not weak-referenceable: no sharing to protect
            return threading.RLock()
        return lock


@contextmanager
def _seeded(seed: int):
    """Seed numpy's and torch's global generators; restore numpy's state afterwards."""
    import random

    import torch

    np_state = np.random.get_state()
    py_state = random.getstate()
    np.random.seed(seed % (2**32))
    random.seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


@contextmanager
def _eval_mode(detector: VideoDetector) -> Iterator[None]:
    was_training = detector.training
    detector.eval()
    try:
        yield
    finally:
        if was_training:
            detector.train()


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise XaiStudyError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    try:
        ivalue = int(value)
    except (TypeError, ValueError):
        raise XaiStudyError(f"{name} must be an integer, got {value!r}") from None
    if ivalue < minimum or ivalue != value:
        raise XaiStudyError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return ivalue
