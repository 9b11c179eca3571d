"""The detector contract: what the explainers, metrics and commands may rely on.

Written once here (like captum's attribution base class); every detector the project
builds or loads implements it: the five architectures of
:mod:`xai_study.detectors.models` (``plain``, ``bonettini``, ``ltpa``, ``xception``,
``mesoinception4``), the icpr2020dfdc networks that :mod:`xai_study.detectors.icpr`
loads (they are ``plain`` / ``bonettini`` detectors) and the known-answer toys of
:mod:`xai_study.explainers.toys`. ``tests/test_detectors_contract.py`` checks each of them
with ``isinstance`` (the protocols are ``runtime_checkable``), and ``tests/test_types.py``
runs mypy over the modules that use them.

A :class:`VideoDetector` is a ``torch.nn.Module`` (the explainers hook into it, take
gradients through it and switch it to eval mode) that classifies face crops as real or
fake with **one logit per image**, ``P(fake) = sigmoid(logit)``:

- ``preprocess(frames)``: uint8 RGB crops ``(T, H, W, 3)`` (or one ``(H, W, 3)``) ->
  float tensor ``(T, 3, S, S)`` on the detector's device: resized to ``input_size`` =
  ``S`` (bilinear, antialiased) and normalised with ``mean`` / ``std`` (per channel,
  on [0, 1] pixel values); :func:`preprocess_frames` is the shared implementation.
- ``detector(x)`` (``forward``): a normalised batch ``(N, 3, S, S)`` -> logits
  ``(N, 1)``; differentiable with respect to ``x``.
- ``frame_logits(frames) -> np.ndarray (T,)``: ``preprocess`` + ``forward`` in eval mode,
  without gradients, in batches of ``batch_size`` frames (:func:`batched_logits`).
- ``aggregate(logits) -> float``: the video-level P(fake) from frame logits, by
  ``config["aggregation"]`` (:func:`aggregate_logits`: ``mean_logit``, the default,
  is the sigmoid of the mean frame logit).
- ``video_score(frames) -> float``: ``aggregate(frame_logits(frames))``.
- ``threshold``: the video P(fake) at or above which the detector calls a video fake
  (0.5 unless a checkpoint stored another), on the *calibrated* scale when the
  checkpoint stores a calibration (``meta["calibration"]``, applied by the callers
  through :func:`xai_study.detectors.calibration.calibration_of`; ``aggregate`` and
  ``video_score`` stay the raw model output).
- ``config``: a JSON-like dict with at least ``arch``, ``backbone``, ``input_size``,
  ``mean``, ``std`` (saved in checkpoints); ``meta``: what the checkpoint says about
  the detector (training data, metrics, threshold; empty for a new one).
- ``gradcam_layer``: the module whose output Grad-CAM weighs (the last convolutional
  feature map).

:class:`AttentionDetector` adds ``attention(x)`` for the detectors with attention
(``bonettini``: one map ``(N, 1, h, w)`` in [0, 1]; ``ltpa``: a list of three maps
``(N, 1, h, w)`` that each sum to 1). The other architectures inherit an ``attention``
that raises :class:`~xai_study.errors.XaiStudyError`; the attention explainers check the
architecture (``config["arch"]``) before they call it.

:class:`FrameClassifier` is the part that :func:`batched_logits` needs: ``preprocess``
and ``forward``.

The helpers below are the one implementation of each step: :func:`sigmoid`,
:func:`batched_logits`, :func:`aggregate_logits` (and its :func:`video_logit`),
:func:`preprocess_frames`,
:func:`detector_device`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from xai_study.errors import XaiStudyError

if TYPE_CHECKING:
    import torch
    from torch import nn

#: Video aggregations of frame logits (``config["aggregation"]``).
AGGREGATIONS = ("mean_logit", "mean_prob", "median")


@runtime_checkable
class FrameClassifier(Protocol):
    """A frame classifier: ``preprocess`` uint8 crops, ``forward`` -> ``(N, 1)`` logits."""

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


@runtime_checkable
class VideoDetector(FrameClassifier, Protocol):
    """The detector contract; see the module docstring for the meaning of each member."""

    config: dict[str, Any]
    meta: dict[str, Any]
    batch_size: int
    training: bool

    @property
    def input_size(self) -> int: ...

    @property
    def mean(self) -> tuple[float, ...]: ...

    @property
    def std(self) -> tuple[float, ...]: ...

    @property
    def threshold(self) -> float: ...

    @property
    def gradcam_layer(self) -> nn.Module: ...

    def frame_logits(self, frames: np.ndarray | torch.Tensor) -> np.ndarray: ...

    def aggregate(self, logits: np.ndarray) -> float: ...

    def video_score(self, frames: np.ndarray | torch.Tensor) -> float: ...

    # the nn.Module methods the explainers use
    def eval(self) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def zero_grad(self, set_to_none: bool = True) -> None: ...


@runtime_checkable
class AttentionDetector(VideoDetector, Protocol):
    """A detector with attention maps (``bonettini``: one tensor, ``ltpa``: three)."""

    def attention(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]: ...


def contract_gaps(obj: object, protocol: type = VideoDetector) -> list[str]:
    """Names of the members of ``protocol`` that ``obj`` lacks (empty: it conforms)."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if cls in (object, Protocol) or cls.__name__ in ("Protocol", "Generic"):
            continue
        names |= {n for n in vars(cls) if not n.startswith("_")}
        names |= set(getattr(cls, "__annotations__", {}))
        if "__call__" in vars(cls):
            names.add("__call__")
    return sorted(n for n in names if not hasattr(obj, n))


def _not_a_detector(obj: object, what: str, protocol: type) -> XaiStudyError:
    gaps = ", ".join(contract_gaps(obj, protocol)) or "?"
    return XaiStudyError(
        f"{what} ({type(obj).__name__}) does not implement the detector contract "
        f"{protocol.__name__} (missing: {gaps})"
    )


def check_detector(obj: object, what: str = "the detector") -> VideoDetector:
    """``obj`` when it implements :class:`VideoDetector`, else a one-line user error."""
    if isinstance(obj, VideoDetector):
        return obj
    raise _not_a_detector(obj, what, VideoDetector)


def check_attention_detector(obj: object, what: str = "the detector") -> AttentionDetector:
    """``obj`` when it implements :class:`AttentionDetector`, else a one-line user error."""
    if isinstance(obj, AttentionDetector):
        return obj
    raise _not_a_detector(obj, what, AttentionDetector)


# ----------------------------------------------------------------------------- helpers


def sigmoid(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """``1 / (1 + exp(-x))`` elementwise, computed in ``dtype`` (float64 unless a caller
    keeps float32 on purpose); a 0-d array for a scalar."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=dtype)))


def aggregate_logits(logits: Sequence[float] | np.ndarray, how: str = "mean_logit") -> float:
    """Video P(fake) from frame logits: ``mean_logit`` (sigmoid of the mean logit),
    ``mean_prob`` (mean of the frame probabilities) or ``median`` (sigmoid of the median
    logit). Computed in float64."""
    arr = np.asarray(logits, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise XaiStudyError("no frame scores to aggregate")
    check_aggregation(how)
    if how == "mean_logit":
        return float(sigmoid(arr.mean()))
    if how == "mean_prob":
        return float(sigmoid(arr).mean())
    return float(sigmoid(np.median(arr)))  # median


def video_logit(logits: Sequence[float] | np.ndarray, how: str = "mean_logit") -> float:
    """The video logit whose sigmoid is :func:`aggregate_logits`: the mean (``mean_logit``)
    or median (``median``) frame logit, or the logit of the mean frame probability
    (``mean_prob``, computed with log-sum-exp so that saturated frames stay finite). The
    calibration (:mod:`xai_study.detectors.calibration`) maps this logit."""
    arr = np.asarray(logits, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise XaiStudyError("no frame scores to aggregate")
    check_aggregation(how)
    if how == "mean_logit":
        return float(arr.mean())
    if how == "median":
        return float(np.median(arr))
    from scipy.special import logsumexp

    # log mean sigmoid(z) - log mean sigmoid(-z), with log sigmoid(z) = -logaddexp(0, -z)
    return float(logsumexp(-np.logaddexp(0.0, -arr)) - logsumexp(-np.logaddexp(0.0, arr)))


def check_aggregation(how: str) -> str:
    """``how`` when it is one of :data:`AGGREGATIONS`, else a one-line user error."""
    if how not in AGGREGATIONS:
        raise XaiStudyError(
            f"unknown video aggregation {how!r}; choose one of {', '.join(AGGREGATIONS)}"
        )
    return how


def detector_device(detector: FrameClassifier) -> torch.device:
    """The device of the detector's first parameter (CPU for a parameter-free model)."""
    import torch

    try:
        return next(detector.parameters()).device
    except StopIteration:
        return torch.device("cpu")


#: Numeric precisions of the batched logit loop: ``float32`` (exact) or ``bfloat16``
#: autocast (faster on CPUs with AVX-512 BF16 or AMX and on recent GPUs; logits differ
#: by about 1e-2). ``auto`` (explainer parameter only) picks ``bfloat16`` where the
#: hardware computes it natively (:func:`native_bfloat16`), else ``float32``.
PRECISIONS = ("float32", "bfloat16")


def native_bfloat16(device: Any = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively, so that autocast speeds it up: a
    CUDA GPU that supports it, or a CPU with AVX-512 BF16 or AMX BF16 instructions.
    Elsewhere bfloat16 is emulated (slower than float32) and this is ``False``."""
    import torch

    device = torch.device(device)
    try:
        if device.type == "cuda":
            return bool(torch.cuda.is_bf16_supported())
        if device.type == "cpu":
            caps = torch.cpu.get_capabilities()
            return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
    except (AttributeError, RuntimeError):  # older torch or no capability report
        return False
    return False


def resolve_precision(precision: str, device: Any = "cpu") -> str:
    """``float32`` or ``bfloat16`` for a requested ``float32`` / ``bfloat16`` / ``auto``."""
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {(*PRECISIONS, 'auto')}, got {precision!r}")
    return precision


def batched_logits(
    detector: FrameClassifier,
    inputs: np.ndarray | torch.Tensor,
    batch_size: int,
    precision: str = "float32",
) -> np.ndarray:
    """The one batched logit loop: ``(N,)`` float32 fake logits, without gradients.

    ``inputs`` are either uint8 crops ``(N, H, W, 3)`` (a numpy array), preprocessed
    ``batch_size`` frames at a time, or an already preprocessed tensor ``(N, 3, S, S)``
    (split into batches of ``batch_size``). Each batch moves to the detector's device,
    goes through ``detector(x)`` and comes back as float32. The detector's mode (eval or
    train) is left as it is: callers choose it. The batch size is explicit because
    convolutions may round differently for different batch sizes. ``precision``
    ``"bfloat16"`` runs the forward pass under ``torch.autocast`` in bfloat16 (an opt-in
    speed-up for the black-box explainers; ``benchmarks/bench_shap_convergence.py
    --precision bfloat16`` measures what it does to the explanation).
    """
    import contextlib

    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = detector_device(detector)
    channels_last = use_channels_last(detector)
    out: list[np.ndarray] = []
    cast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if precision == "bfloat16"
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), cast:
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start : start + batch_size]
            x = chunk if isinstance(chunk, torch.Tensor) else detector.preprocess(chunk)
            x = x.to(device)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(detector(x).reshape(-1).float().cpu().numpy())
    if not out:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(out)


def use_channels_last(detector: FrameClassifier) -> bool:
    """Put a convolutional detector's 4-D weights in channels-last memory format, once,
    and say whether its inputs should follow.

    On the CPU this runs EfficientNet's convolutions about 2x faster than the default
    layout (``benchmarks/bench_memory_format.py``) with the same logits up
    to float rounding (about 1e-6). The weights' values are unchanged, so gradients,
    hooks and later calls with ordinary tensors still work. Modules without 4-D weights
    (toy detectors) are left alone; setting ``detector._xs_channels_last = False`` before
    the first call keeps the default layout.
    """
    import torch

    if getattr(detector, "_xs_channels_last", None) is None:
        params = getattr(detector, "parameters", None)
        weights = [p for p in params() if p.dim() == 4] if callable(params) else []
        flag = bool(weights)
        if flag:
            detector.to(memory_format=torch.channels_last)  # type: ignore[attr-defined]
        try:
            detector._xs_channels_last = flag  # type: ignore[attr-defined]
        except AttributeError:  # objects that refuse new attributes: decide every call
            return flag
    return bool(detector._xs_channels_last)  # type: ignore[attr-defined]


def preprocess_frames(
    frames: np.ndarray | torch.Tensor,
    input_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """uint8 frames ``(T, H, W, 3)`` (or one ``(H, W, 3)``) -> normalised float tensor
    ``(T, 3, S, S)`` on ``device``: ``/ 255``, resized to ``S = input_size`` (bilinear,
    antialiased, only when the size differs), then ``(x - mean) / std``. Float frames in
    [0, 1] are scaled to [0, 255] first; other dtypes are rounded and clipped to uint8."""
    import torch
    import torch.nn.functional as F

    if isinstance(frames, torch.Tensor):
        arr = frames.detach().cpu().numpy()
    else:
        arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise XaiStudyError(f"expected frames shaped (T, H, W, 3), got {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise XaiStudyError("no frames to score")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(arr)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    s = int(input_size)
    if x.shape[-2:] != (s, s):
        x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
    m = torch.tensor(list(mean), device=x.device).view(1, 3, 1, 1)
    sd = torch.tensor(list(std), device=x.device).view(1, 3, 1, 1)
    return (x - m) / sd
