"""The detectors of a run: one resolver, one set.

Explainers name the architecture they need (``requires``: ``ltpa``, ``bonettini``, or
``None`` for any detector, which means ``plain``). A :class:`DetectorSet` maps each
architecture to a loaded detector. Its entries come from a *spec*: a demo name
(``plain``, ``bonettini``, ``ltpa``: the checkpoints in ``models/``), a project checkpoint
path, an icpr2020dfdc state-dict path, or a ready detector object (tests, the demo's
shared models). Every command resolves detectors through :func:`resolve_detector`, which
loads each (spec, device) once per process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from xai_study.devices import resolve_device
from xai_study.errors import XaiStudyError

#: The architecture that explainers with ``requires = None`` run on, and whose score is
#: the verdict.
VERDICT_ARCH = "plain"

_CACHE: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return resolve_device("auto")


def check_device(device: str | None) -> str:
    """``device`` (``None`` or ``auto``: the GPU when there is one), checked: a clear
    error for an unknown device or a CUDA device on a machine without one."""
    return resolve_device(device)


def _file_key(spec: str | os.PathLike) -> tuple:
    """The checkpoint file's identity (path, size, modification time), so that a file
    replaced or rewritten (``--save-threshold``) is loaded again."""
    from xai_study.detectors.checkpoint import resolve_model

    try:
        path = resolve_model(spec)
        st = path.stat()
    except (XaiStudyError, OSError):
        return (str(spec),)  # load_detector reports the error
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def resolve_detector(
    spec: str | os.PathLike | Any, device: str | None = None, batch_size: int | None = None
):
    """A loaded detector for ``spec`` (see the module docstring), loaded once per process,
    device, batch size and checkpoint file version; a ready detector object is returned
    as it is (with ``batch_size`` set on it when one is given). ``batch_size`` is the
    number of frames per forward pass (default: the detector's own, 32)."""
    if batch_size is not None and int(batch_size) < 1:
        raise XaiStudyError(f"the batch size must be at least 1, got {batch_size}")
    if not isinstance(spec, str | os.PathLike):
        if batch_size is not None:
            spec.batch_size = int(batch_size)
        return spec
    device = check_device(device)
    key = (*_file_key(spec), device, batch_size)
    with _LOCK:
        if key not in _CACHE:
            from xai_study.detectors import load_detector

            detector = load_detector(spec, device=device)
            if batch_size is not None:
                detector.batch_size = int(batch_size)
            _CACHE[key] = detector
        return _CACHE[key]


def describe(detector, fallback: str = "") -> str:
    """``"plain efficientnet_lite0 224px"``: architecture, backbone and input size."""
    cfg = getattr(detector, "config", {}) or {}
    parts = [str(cfg.get("arch", fallback))]
    if cfg.get("backbone"):
        parts.append(str(cfg["backbone"]))
    if cfg.get("input_size"):
        parts.append(f"{cfg['input_size']}px")
    return " ".join(parts)


def arch_for(explainer: str) -> str:
    """The architecture explainer ``explainer`` runs on."""
    from xai_study.explainers import explainer_class

    return explainer_class(explainer).requires or VERDICT_ARCH


def check_role(arch: str, detector, spec: Any, option: str = "--model") -> None:
    """An attention explainer's role (``ltpa``, ``bonettini``) needs a detector of that
    architecture: a one-line error for, e.g., ``--model ltpa=plain.pt``. The verdict role
    (``plain``) takes a detector of any architecture."""
    if arch == VERDICT_ARCH:
        return
    have = (getattr(detector, "config", None) or {}).get("arch")
    if have is not None and have != arch:
        raise XaiStudyError(
            f"{option} {arch}={spec}: that is a {have} detector; the {arch} explainer "
            "needs a detector of its own architecture"
        )


class DetectorSet:
    """Architecture -> detector, loaded on first use from the specs given (default: the
    demo checkpoint of the same name) on ``device`` (default: the GPU when present), with
    ``batch_size`` frames per forward pass (default: each detector's own)."""

    def __init__(
        self,
        specs: Mapping[str, Any] | None = None,
        device: str | None = None,
        batch_size: int | None = None,
    ):
        self.specs: dict[str, Any] = dict(specs or {})
        self.device = device
        self.batch_size = batch_size
        self._loaded: dict[str, Any] = {}

    def spec(self, arch: str) -> Any:
        return self.specs.get(arch, arch)

    def get(self, arch: str):
        if arch not in self._loaded:
            spec = self.spec(arch)
            detector = resolve_detector(spec, self.device, self.batch_size)
            if isinstance(spec, str | os.PathLike):
                check_role(arch, detector, spec)
            self._loaded[arch] = detector
        return self._loaded[arch]

    __getitem__ = get

    def for_explainer(self, explainer: str):
        return self.get(arch_for(explainer))

    def load(self, archs: Iterable[str]) -> DetectorSet:
        """Load ``archs`` now (so that a wrong name fails before any slow work)."""
        for arch in dict.fromkeys(archs):
            self.get(arch)
        return self

    def for_explainers(self, explainers: Iterable[str]) -> DetectorSet:
        """Load the verdict detector and every detector ``explainers`` need."""
        return self.load([VERDICT_ARCH, *(arch_for(e) for e in explainers)])

    @property
    def verdict(self):
        return self.get(VERDICT_ARCH)

    def describe(self, arch: str) -> str:
        return describe(self.get(arch), arch)

    def names(self) -> dict[str, str]:
        """Architecture -> spec as text, for what was loaded (run metadata)."""
        return {a: str(self.spec(a)) for a in self._loaded}

    def content_id(self, archs: Iterable[str] | None = None) -> str:
        """Identifies the detectors by the content of their checkpoint files (SHA-256),
        for caches of results: a replaced checkpoint (or a new threshold saved in it)
        gives a new id. ``archs`` defaults to every role."""
        from xai_study.detectors.checkpoint import file_sha256, resolve_model

        parts = []
        for arch in archs if archs is not None else detector_roles():
            spec = self.spec(arch)
            if isinstance(spec, str | os.PathLike):
                try:
                    digest = file_sha256(resolve_model(spec))[:12]
                except (XaiStudyError, OSError):
                    digest = "missing"
            else:
                digest = f"object-{id(spec):x}"
            parts.append(f"{arch}={digest}")
        return "detectors:" + ",".join(parts)


def detector_set(
    detectors: DetectorSet | Mapping[str, Any] | None,
    device: str | None = None,
    batch_size: int | None = None,
) -> DetectorSet:
    """A :class:`DetectorSet` from a set (returned as it is), a mapping of specs, or None
    (the demo models)."""
    if isinstance(detectors, DetectorSet):
        return detectors
    return DetectorSet(detectors, device, batch_size)


def detector_roles() -> list[str]:
    """The architectures a run can be given a detector for: the verdict detector's and
    every architecture a registered explainer requires."""
    from xai_study.explainers import explainer_class, list_explainers

    needed = {explainer_class(n).requires for n in list_explainers()} - {None}
    return [VERDICT_ARCH, *sorted(str(a) for a in needed)]


def parse_detector_specs(items: Iterable[str], option: str = "--model") -> dict[str, str]:
    """``ARCH=SPEC`` items (comma-separated or repeated; a bare ``SPEC`` is the verdict
    detector) as ``{arch: spec}``, with a clear error for an unknown architecture."""
    roles = detector_roles()
    specs: dict[str, str] = {}
    for text in items:
        for item in filter(None, (s.strip() for s in str(text).split(","))):
            arch, eq, spec = item.partition("=")
            arch, spec = (arch.strip(), spec.strip()) if eq else (VERDICT_ARCH, item)
            if arch not in roles:
                raise XaiStudyError(
                    f"{option}: unknown detector role {arch!r} (choose from: {', '.join(roles)})"
                )
            if not spec:
                raise XaiStudyError(f"{option}: {item!r} names no detector (ARCH=NAME_OR_PATH)")
            if arch in specs and specs[arch] != spec:
                raise XaiStudyError(
                    f"{option}: two detectors for {arch} ({specs[arch]} and {spec}); give one"
                )
            specs[arch] = spec
    return specs
