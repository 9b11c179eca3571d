"""Training a detector on face crops of labelled videos.

Face crops of every video (``frames_per_video`` evenly spaced frames) are extracted once
and cached (:mod:`xai_study.detectors.data`). Each epoch shuffles the training frames,
augments them (horizontal flip, small random crop, colour jitter, Gaussian blur, JPEG
re-compression), and minimises class-balanced binary cross-entropy with AdamW and a
cosine learning-rate schedule. After every epoch the validation split is scored (loss,
frame/video AUC, balanced accuracy); the best epoch (video AUC, then frame AUC, then
loss) is saved as the checkpoint, with a JSON/CSV history and ROC/DET plots.
"""

from __future__ import annotations

import csv
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from xai_study.errors import XaiStudyError


@dataclass
class TrainConfig:
    arch: str = "plain"
    backbone: str = "efficientnet_lite0"
    data: str = ""
    out: str = ""
    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    size: int = 160
    seed: int = 0
    frames_per_video: int = 16
    val_frames_per_video: int = 16
    pretrained: bool = True
    freeze_stages: int = 0
    dropout: float = 0.2
    max_minutes: float | None = None
    device: str = "auto"
    cache_dir: str | None = ".xai_study_cache/faces"
    half: bool = False
    aug: bool = True
    aug_copies: int = 3
    sbi_copies: int = 0
    init: str | None = None
    feature_cache: bool = True
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------- augmentation
def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One augmented copy of a uint8 ``(S, S, 3)`` face crop."""
    import cv2

    s = img.shape[0]
    out = img
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.5:  # small random crop, resized back
        scale = rng.uniform(0.85, 1.0)
        c = max(8, int(round(s * scale)))
        y0, x0 = rng.integers(0, s - c + 1, size=2)
        out = cv2.resize(
            np.ascontiguousarray(out[y0 : y0 + c, x0 : x0 + c]),
            (s, s),
            interpolation=cv2.INTER_AREA,
        )
    f = out.astype(np.float32)
    if rng.random() < 0.8:  # brightness, contrast, saturation
        f = f * rng.uniform(0.8, 1.2)
        mean = f.mean()
        f = (f - mean) * rng.uniform(0.8, 1.2) + mean
        grey = f.mean(axis=2, keepdims=True)
        f = (f - grey) * rng.uniform(0.8, 1.2) + grey
    out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        sigma = rng.uniform(0.3, 1.5)
        out = cv2.GaussianBlur(np.ascontiguousarray(out), (0, 0), sigma)
    if rng.random() < 0.3:
        q = int(rng.integers(40, 96))
        ok, enc = cv2.imencode(
            ".jpg", np.ascontiguousarray(out[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q]
        )
        if ok:
            out = cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1]
    return np.ascontiguousarray(out)


# ------------------------------------------------------------------------------ helpers
def pick_device(name: str = "auto") -> torch.device:
    """``--device`` (auto, cpu, cuda, cuda:N) as a torch device; see
    :func:`xai_study.devices.resolve_device`."""
    from xai_study.devices import resolve_device

    return torch.device(resolve_device(name))


def freeze_early(model, stages: int) -> list[torch.nn.Module]:
    """Freeze the stem and the first ``stages`` EfficientNet stages (weights and BN
    statistics). Returns the frozen modules (to keep them in eval mode)."""
    if stages <= 0:
        return []
    bb = getattr(model, "backbone", None)
    if bb is None or not hasattr(bb, "blocks"):
        raise XaiStudyError("--freeze-stages works with EfficientNet detectors only")
    if stages > len(bb.blocks):
        raise XaiStudyError(f"--freeze-stages must be at most {len(bb.blocks)}")
    mods = [bb.conv_stem, bb.bn1, *list(bb.blocks[:stages])]
    for m in mods:
        for p in m.parameters():
            p.requires_grad_(False)
    return mods


def _split_val(items, rng_seed: int):
    """No ``val`` split in the CSV: hold out ~15 % of training identities."""
    rng = np.random.default_rng(rng_seed)
    groups = sorted({it.identity or it.video_id for it in items})
    rng.shuffle(groups)
    n_val = max(1, int(round(0.15 * len(groups))))
    val_groups = set(groups[:n_val])
    train = [it for it in items if (it.identity or it.video_id) not in val_groups]
    val = [it for it in items if (it.identity or it.video_id) in val_groups]
    return train, val


def trunk_features(
    model,
    frames: np.ndarray,
    stages: int,
    copies: int,
    seed: int,
    aug: bool,
    cache_dir: str | None,
    batch_size: int = 64,
    progress: bool = True,
    desc: str = "frozen trunk",
) -> torch.Tensor:
    """float16 outputs ``(copies, N, C, h, w)`` of the frozen stem + first ``stages``
    stages for every frame: copy 0 unaugmented, the others augmented (``augment``).
    Cached on disk (keyed by the frames, weights of the trunk and settings), so the three
    demo detectors, which share the ImageNet trunk, compute it once."""
    from tqdm import tqdm

    h = hashlib.sha1()
    h.update(np.ascontiguousarray(frames).tobytes())
    for k, v in model.state_dict().items():  # trunk weights
        if k.startswith(("backbone.conv_stem", "backbone.bn1")) or any(
            k.startswith(f"backbone.blocks.{i}.") for i in range(stages)
        ):
            h.update(k.encode())
            h.update(v.detach().cpu().float().numpy().tobytes())
    h.update(f"{stages}|{copies}|{seed}|{aug}|{model.config['input_size']}|v1".encode())
    path = Path(cache_dir) / "features" / f"{h.hexdigest()[:24]}.pt" if cache_dir else None
    if path is not None and path.exists():
        try:
            return torch.load(path, weights_only=True)
        except Exception:
            path.unlink(missing_ok=True)
    rng = np.random.default_rng(seed + 7919)
    out = None
    n = len(frames)
    model.eval()
    with torch.no_grad():
        for c in range(copies):
            for i in tqdm(
                range(0, n, batch_size),
                desc=f"{desc} {c + 1}/{copies}",
                unit="batch",
                disable=not progress,
                leave=False,
            ):
                imgs = frames[i : i + batch_size]
                if c > 0 and aug:
                    imgs = np.stack([augment(im, rng) for im in imgs])
                f = model.trunk(model.preprocess(imgs), stages).half().cpu()
                if out is None:
                    out = torch.empty((copies, n, *f.shape[1:]), dtype=torch.float16)
                out[c, i : i + len(f)] = f
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(out, tmp)
        tmp.replace(path)
    return out


def _bce(logits: torch.Tensor, y: torch.Tensor, pos_weight: float) -> torch.Tensor:
    w = torch.where(y > 0.5, torch.full_like(y, pos_weight), torch.ones_like(y))
    return (F.binary_cross_entropy_with_logits(logits, y, reduction="none") * w).mean()


# --------------------------------------------------------------------------------- main
def train_detector(
    cfg: TrainConfig, progress: bool = True, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Train, validate every epoch, save the best checkpoint; returns a summary dict."""
    from tqdm import tqdm

    from xai_study.detectors.checkpoint import file_sha256, save_checkpoint
    from xai_study.detectors.contract import sigmoid
    from xai_study.detectors.data import build_faceset, read_labels, select_split
    from xai_study.detectors.evaluate import (
        dump_json,
        evaluate_faceset,
        plot_roc_det,
        score_faceset,
    )
    from xai_study.detectors.models import create_detector

    log = log or (lambda msg: None)
    if cfg.epochs < 1:
        raise XaiStudyError("--epochs must be at least 1")
    if cfg.batch_size < 2:
        raise XaiStudyError("--batch-size must be at least 2")
    if cfg.sbi_copies < 0:
        raise XaiStudyError("--sbi-copies must be 0 or more")
    if not cfg.lr > 0:
        raise XaiStudyError("--lr must be positive")
    if not 32 <= cfg.size <= 1024:
        raise XaiStudyError("--size must be in 32..1024")
    out = Path(cfg.out)
    if out.suffix != ".pt":
        raise XaiStudyError(f"--out must end in .pt, got {out}")
    if cfg.init:
        from xai_study.detectors.checkpoint import resolve_model

        resolve_model(cfg.init)  # a missing --init file fails now, not after the crops
    data = Path(cfg.data)
    items = read_labels(data)
    train_items = select_split(items, "train", str(data))
    val_items = [it for it in items if it.split == "val"]
    if not val_items:
        train_items, val_items = _split_val(train_items, cfg.seed)
        log("no 'val' split in the labels: holding out 15% of training identities")
    if len({it.label for it in train_items}) < 2:
        raise XaiStudyError("the training split needs both real and fake videos")

    rng = np.random.default_rng(cfg.seed)
    device = pick_device(cfg.device)

    train_set = build_faceset(
        train_items,
        cfg.frames_per_video,
        cfg.size,
        cache_dir=cfg.cache_dir,
        progress=progress,
        desc="faces (train)",
        device=str(device),
    )
    val_set = build_faceset(
        val_items,
        cfg.val_frames_per_video,
        cfg.size,
        cache_dir=cfg.cache_dir,
        progress=progress,
        desc="faces (val)",
        device=str(device),
    )
    for s in train_set.skipped + val_set.skipped:
        log(f"skipped {s}")
    train_frames, train_labels = train_set.frames, train_set.labels
    n_sbi = 0
    if cfg.sbi_copies > 0:
        from xai_study.detectors.sbi import self_blend_crop

        real = train_frames[train_labels == 0]
        srng = np.random.default_rng(cfg.seed + 104729)
        sbi = [self_blend_crop(im, srng)[0] for _ in range(cfg.sbi_copies) for im in real]
        if sbi:
            n_sbi = len(sbi)
            train_frames = np.concatenate([train_frames, np.stack(sbi)])
            train_labels = np.concatenate([train_labels, np.ones(n_sbi, train_labels.dtype)])
        log(f"added {n_sbi} self-blended crops ({cfg.sbi_copies} per real training frame)")

    # seeded here, after the face crops: extracting uncached crops builds MTCNN, whose
    # layer initialisation draws from torch's global generator, so seeding earlier made
    # the head initialisation and dropout depend on the state of the face cache
    torch.manual_seed(cfg.seed)
    model = create_detector(
        cfg.arch, cfg.backbone, cfg.size, pretrained=cfg.pretrained, dropout=cfg.dropout
    ).to(device)
    init_info = None
    if cfg.init:
        from xai_study.detectors.checkpoint import warm_start

        init_info = warm_start(model, cfg.init)
        log(
            f"initialised {init_info['copied']} of {init_info['total']} weight tensors from "
            f"{cfg.init}; new: {', '.join(init_info['new']) or 'none'}"
        )
    frozen = freeze_early(model, cfg.freeze_stages)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(train_frames)
    steps_per_epoch = max(1, n // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warm = max(1, min(total // 10, steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda k: (
            (k + 1) / warm
            if k < warm
            else 0.5 * (1 + math.cos(math.pi * (k - warm) / max(1, total - warm)))
        ),
    )
    k = cfg.freeze_stages
    use_cache = bool(cfg.feature_cache and k > 0 and hasattr(model, "forward_from"))
    if use_cache:
        copies = max(1, cfg.aug_copies if cfg.aug else 1)
        feats = trunk_features(
            model,
            train_frames,
            k,
            copies,
            cfg.seed,
            cfg.aug,
            cfg.cache_dir,
            progress=progress,
            desc="frozen trunk (train)",
        )
        val_feats = trunk_features(
            model,
            val_set.frames,
            k,
            1,
            cfg.seed,
            False,
            cfg.cache_dir,
            progress=progress,
            desc="frozen trunk (val)",
        )[0]
        log(f"training on cached trunk features: stem + {k} frozen stages, {copies} copies")
    n_fake = int(train_labels.sum())
    pos_weight = (n - n_fake) / max(1, n_fake)

    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    best_key = None
    started = time.time()
    stem = out.with_suffix("")
    meta_base = {
        "training_data": {
            "labels": str(data),
            "labels_sha256": file_sha256(data),
            "train_videos": len(train_set.items),
            "val_videos": len(val_set.items),
            "train_frames": n,
            "self_blended_frames": n_sbi,
            "val_frames": len(val_set.frames),
            "frames_per_video": cfg.frames_per_video,
            "skipped": train_set.skipped + val_set.skipped,
        },
        "command": cfg.command,
        "init": init_info,
        "train_config": {k: v for k, v in asdict(cfg).items() if k not in ("extra", "command")},
        "versions": {"torch": torch.__version__},
    }
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        for m in frozen:
            m.eval()
        order = rng.permutation(n)
        losses = []
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch}/{cfg.epochs}",
            unit="batch",
            disable=not progress,
            leave=False,
        )
        for b in bar:
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            y = torch.from_numpy(train_labels[idx].astype(np.float32)).to(device)
            if use_cache:
                pick = rng.integers(0, feats.shape[0], size=len(idx))
                h = feats[torch.from_numpy(pick), torch.from_numpy(idx)].float().to(device)
                if cfg.aug and rng.random() < 0.5:
                    h = h.flip(-1)
                logits = model.forward_from(h, k).reshape(-1)
            else:
                imgs = train_frames[idx]
                if cfg.aug:
                    imgs = np.stack([augment(im, rng) for im in imgs])
                logits = model(model.preprocess(imgs)).reshape(-1)
            loss = _bce(logits, y, pos_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        bar.close()
        model.eval()
        if use_cache:
            with torch.no_grad():
                vlogits = torch.cat(
                    [
                        model.forward_from(val_feats[i : i + 64].float().to(device), k)
                        .reshape(-1)
                        .cpu()
                        for i in range(0, len(val_feats), 64)
                    ]
                ).numpy()
        else:
            vlogits = score_faceset(model, val_set, progress=False)
        res = evaluate_faceset(model, val_set, logits=vlogits)
        vy = val_set.labels.astype(np.float32)
        vloss = float(_bce(torch.from_numpy(vlogits), torch.from_numpy(vy), pos_weight).item())
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val_loss": vloss,
            "val_frame_auc": res["frame"]["auc"],
            "val_video_auc": res["video"]["auc"],
            "val_frame_balanced_accuracy": res["frame"]["balanced_accuracy"],
            "val_video_balanced_accuracy": res["video"]["balanced_accuracy"],
            "lr": float(opt.param_groups[0]["lr"]),
            "seconds": round(time.time() - started, 1),
        }
        history.append(row)
        log(
            f"epoch {epoch}: train loss {row['train_loss']:.4f}, val loss {vloss:.4f}, "
            f"val video AUC {_fmt(row['val_video_auc'])}, frame AUC {_fmt(row['val_frame_auc'])}"
        )
        key = (
            row["val_video_auc"] if row["val_video_auc"] is not None else -1.0,
            row["val_frame_auc"] if row["val_frame_auc"] is not None else -1.0,
            -vloss,
        )
        if best_key is None or key > best_key:
            best_key = key
            best = {"epoch": epoch, "val": {"frame": res["frame"], "video": res["video"]}}
            meta = dict(
                meta_base,
                epoch=epoch,
                metrics={"val": best["val"]},
                history=history,
                trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            save_checkpoint(model, out, meta=meta, half=cfg.half)
            plot_roc_det(
                val_set.video_labels(),
                res["video_scores"],
                stem.with_name(stem.name + ".val"),
                title=f"{cfg.arch} val (video)",
            )
        _write_history(history, stem)
        if cfg.max_minutes is not None and (time.time() - started) / 60 > cfg.max_minutes:
            log(f"stopping after epoch {epoch}: over --max-minutes {cfg.max_minutes}")
            break
    # keep the final history inside the best checkpoint too
    from xai_study.detectors.checkpoint import read_checkpoint

    obj = read_checkpoint(out)
    obj["meta"]["history"] = history
    torch.save(obj, out)
    summary = {
        "checkpoint": str(out),
        "best_epoch": best["epoch"] if best else None,
        "val": best["val"] if best else None,
        "history": history,
        "frame_p_fake_mean": float(sigmoid(vlogits).mean()),
    }
    dump_json(summary, stem.with_name(stem.name + ".history.json"))
    return summary


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _write_history(history: list[dict], stem: Path) -> None:
    path = stem.with_name(stem.name + ".history.csv")
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(history[0]))
        w.writeheader()
        for row in history:
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
