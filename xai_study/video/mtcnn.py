"""MTCNN face detection (Zhang et al. 2016): three small CNNs and the cascade around them.

The networks are the published P-Net (12×12 proposal, fully convolutional), R-Net
(24×24 refinement) and O-Net (48×48 output, with five landmarks). Their pretrained
weights ship next to this file in ``mtcnn_weights.npz``; ``MTCNN_WEIGHTS.md`` says where
they come from and under which licence. Nothing is downloaded.

The cascade follows the numerical conventions of facenet-pytorch 2.6.0 (the detector
this project used before), so that boxes, probabilities and landmarks agree with it
(``tests/test_video_mtcnn.py`` compares the two on the demo videos):

1. an image pyramid from ``12 / min_face_size`` down by ``factor`` while the short side
   is at least 12 px, each level resized with area interpolation and scaled to
   ``(x - 127.5) / 128``;
2. P-Net on every level; cells with face probability ``>= thresholds[0]`` become 12 px
   windows mapped back to the image, NMS (IoU 0.5) per level, then NMS (IoU 0.7) over
   all levels, box regression (offsets times the box side) and squaring;
3. R-Net on 24×24 area-resampled crops (clipped to the image), kept when the probability
   is ``> thresholds[1]``, NMS (IoU 0.7), regression (offsets times side + 1), squaring;
4. O-Net on 48×48 crops, kept when ``> thresholds[2]``; landmarks are placed in the
   O-Net input box, then the box is regressed and a final NMS keeps a box unless it
   overlaps a better one by more than 0.7 of the smaller box's area.

All NMS is per image of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

WEIGHTS_FILE = Path(__file__).with_name("mtcnn_weights.npz")
DEFAULT_FACTOR = 0.709
# R-Net / O-Net inputs are evaluated in chunks of this many crops (bounds GPU memory).
CHUNK = 512


def _conv_prelu(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel_size=k), nn.PReLU(cout)]


class PNet(nn.Module):
    """Proposal net: (N, 3, H, W) -> box offsets (N, 4, h, w), probabilities (N, 2, h, w)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_prelu(3, 10, 3),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            *_conv_prelu(10, 16, 3),
            *_conv_prelu(16, 32, 3),
        )
        self.prob = nn.Conv2d(32, 2, kernel_size=1)
        self.offsets = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.offsets(h), torch.softmax(self.prob(h), dim=1)


def _flatten_whc(x: torch.Tensor) -> torch.Tensor:
    # The pretrained dense layers expect features in (width, height, channel) order.
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class RNet(nn.Module):
    """Refinement net: (N, 3, 24, 24) -> offsets (N, 4), probabilities (N, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_prelu(3, 28, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv_prelu(28, 48, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv_prelu(48, 64, 2),
        )
        self.dense = nn.Sequential(nn.Linear(576, 128), nn.PReLU(128))
        self.prob = nn.Linear(128, 2)
        self.offsets = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.dense(_flatten_whc(self.body(x)))
        return self.offsets(h), torch.softmax(self.prob(h), dim=1)


class ONet(nn.Module):
    """Output net: (N, 3, 48, 48) -> offsets (N, 4), landmarks (N, 10), probabilities (N, 2).

    The landmarks are five x's then five y's, as fractions of the input box.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_prelu(3, 32, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv_prelu(32, 64, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv_prelu(64, 64, 3),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            *_conv_prelu(64, 128, 2),
        )
        self.dense = nn.Sequential(nn.Linear(1152, 256), nn.PReLU(256))
        self.prob = nn.Linear(256, 2)
        self.offsets = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.dense(_flatten_whc(self.body(x)))
        return self.offsets(h), self.landmarks(h), torch.softmax(self.prob(h), dim=1)


def load_weights(nets: dict[str, nn.Module], path: str | Path = WEIGHTS_FILE) -> None:
    """Fill ``{"pnet": ..., "rnet": ..., "onet": ...}`` from the ``.npz`` weight file.

    The file's keys are ``<net>.<parameter>`` of these modules' state dicts; every
    parameter must be present with its exact shape.
    """
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for name, net in nets.items():
        state = {
            k[len(name) + 1 :]: torch.from_numpy(v)
            for k, v in arrays.items()
            if k.startswith(name + ".")
        }
        net.load_state_dict(state, strict=True)


class MTCNN(nn.Module):
    """The three pretrained nets and the cascade (:meth:`detect`)."""

    def __init__(self, factor: float = DEFAULT_FACTOR, weights: str | Path | None = WEIGHTS_FILE):
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.factor = float(factor)
        if weights is not None:
            load_weights({"pnet": self.pnet, "rnet": self.rnet, "onet": self.onet}, weights)
        self.eval()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.inference_mode()
    def detect(
        self,
        images: np.ndarray | torch.Tensor,
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Faces in equally sized RGB images (N×H×W×3, values 0-255).

        Returns per image an (n, 5) float32 array of x1, y1, x2, y2, probability (sorted
        by decreasing probability) and the (n, 5, 2) landmarks (x, y of left eye, right
        eye, nose, left and right mouth corner), in image pixels.
        """
        if len(thresholds) != 3:
            raise ValueError("thresholds must be three numbers (P-, R-, O-Net)")
        if min_face_size < 1:
            raise ValueError("min_face_size must be at least 1")
        x = torch.as_tensor(np.asarray(images), device=self.device)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected images of shape (N, H, W, 3), got {tuple(x.shape)}")
        x = x.permute(0, 3, 1, 2).to(next(self.parameters()).dtype)
        n = x.shape[0]
        empty = (
            [np.zeros((0, 5), np.float32) for _ in range(n)],
            [np.zeros((0, 5, 2), np.float32) for _ in range(n)],
        )
        boxes, owner = self._propose(x, min_face_size, float(thresholds[0]))
        if len(boxes):
            boxes, owner = self._refine(x, boxes, owner, float(thresholds[1]))
        if not len(boxes):
            return empty
        boxes, points, owner = self._output(x, boxes, owner, float(thresholds[2]))
        out_boxes, out_points = [], []
        owner_np = owner.cpu().numpy()
        boxes_np = boxes.cpu().numpy().astype(np.float32)
        points_np = points.cpu().numpy().astype(np.float32)
        for i in range(n):
            sel = np.flatnonzero(owner_np == i)
            out_boxes.append(boxes_np[sel].reshape(-1, 5))
            out_points.append(points_np[sel].reshape(-1, 5, 2))
        return out_boxes, out_points

    # --- the three stages ---------------------------------------------------------------

    def _propose(
        self, x: torch.Tensor, min_face_size: int, threshold: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 1: squared candidate boxes (k, 5: x1 y1 x2 y2 p) and their image index."""
        from torchvision.ops import batched_nms

        h, w = x.shape[2:]
        scales = pyramid_scales(h, w, min_face_size, self.factor)
        found, owners = [], []
        for scale in scales:
            level = F.interpolate(x, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
            offsets, probs = self.pnet(_normalise(level))
            p = probs[:, 1]
            hits = (p >= threshold).nonzero()  # (k, 3): image, row, column
            score = p[hits[:, 0], hits[:, 1], hits[:, 2]]
            reg = offsets[hits[:, 0], :, hits[:, 1], hits[:, 2]]
            cell = hits[:, [2, 1]].to(offsets.dtype)  # x, y of the output cell
            top_left = ((2 * cell + 1) / scale).floor()
            bottom_right = ((2 * cell + 12) / scale).floor()
            cand = torch.cat([top_left, bottom_right, score[:, None], reg], dim=1)
            keep = batched_nms(cand[:, :4], cand[:, 4], hits[:, 0], 0.5)
            found.append(cand[keep])
            owners.append(hits[keep, 0])
        if not found:
            return x.new_zeros((0, 5)), torch.zeros(0, dtype=torch.long, device=x.device)
        cand, owner = torch.cat(found), torch.cat(owners)
        keep = batched_nms(cand[:, :4], cand[:, 4], owner, 0.7)
        cand, owner = cand[keep], owner[keep]
        side = cand[:, 2:4] - cand[:, 0:2]  # width, height
        corners = cand[:, :4] + cand[:, 5:9] * side.repeat(1, 2)
        boxes = torch.cat([corners, cand[:, 4:5]], dim=1)
        return _square(boxes), owner

    def _refine(
        self, x: torch.Tensor, boxes: torch.Tensor, owner: torch.Tensor, threshold: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 2: R-Net on 24×24 crops, NMS, regression, squaring."""
        from torchvision.ops import batched_nms

        crops, boxes, owner = _crops(x, boxes, owner, 24)
        offsets, probs = _chunked(self.rnet, crops)
        score = probs[:, 1]
        ok = score > threshold
        boxes = torch.cat([boxes[ok, :4], score[ok, None]], dim=1)
        owner, offsets = owner[ok], offsets[ok]
        keep = batched_nms(boxes[:, :4], boxes[:, 4], owner, 0.7)
        boxes = _regress(boxes[keep], offsets[keep])
        return _square(boxes), owner[keep]

    def _output(
        self, x: torch.Tensor, boxes: torch.Tensor, owner: torch.Tensor, threshold: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stage 3: O-Net on 48×48 crops: final boxes, landmarks, 'Min'-overlap NMS."""
        crops, boxes, owner = _crops(x, boxes, owner, 48)
        offsets, marks, probs = _chunked(self.onet, crops)
        score = probs[:, 1]
        ok = score > threshold
        boxes = torch.cat([boxes[ok, :4], score[ok, None]], dim=1)
        owner, offsets, marks = owner[ok], offsets[ok], marks[ok]
        size = boxes[:, 2:4] - boxes[:, 0:2] + 1  # width, height (inclusive pixels)
        px = size[:, 0:1] * marks[:, :5] + boxes[:, 0:1] - 1
        py = size[:, 1:2] * marks[:, 5:] + boxes[:, 1:2] - 1
        points = torch.stack([px, py], dim=2)  # (k, 5, 2)
        boxes = _regress(boxes, offsets)
        keep = torch.as_tensor(
            _nms_min(boxes.cpu().numpy(), owner.cpu().numpy(), 0.7),
            dtype=torch.long,
            device=boxes.device,
        )
        return boxes[keep], points[keep], owner[keep]


# --- helpers ----------------------------------------------------------------------------


def pyramid_scales(h: int, w: int, min_face_size: int, factor: float) -> list[float]:
    """Scales at which a 12 px window matches faces from ``min_face_size`` upwards."""
    scale = 12.0 / min_face_size
    short = min(h, w) * scale
    scales = []
    while short >= 12:
        scales.append(scale)
        scale *= factor
        short *= factor
    return scales


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square of its longer side, about the same centre."""
    out = boxes.clone()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Move the corners by ``offsets`` times the inclusive box size."""
    out = boxes.clone()
    size = (boxes[:, 2:4] - boxes[:, 0:2] + 1).repeat(1, 2)
    out[:, :4] = boxes[:, :4] + offsets * size
    return out


def _crops(
    x: torch.Tensor, boxes: torch.Tensor, owner: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised ``size``×``size`` crops of the boxes, clipped to the image.

    Box coordinates are truncated to integers and read as 1-based inclusive pixel
    ranges; boxes that lie wholly outside the image are dropped (with their rows of
    ``boxes`` and ``owner``).
    """
    h, w = x.shape[2:]
    b = boxes[:, :4].trunc().to(torch.int64).cpu().numpy()
    x1 = np.maximum(b[:, 0], 1)
    y1 = np.maximum(b[:, 1], 1)
    x2 = np.minimum(b[:, 2], w)
    y2 = np.minimum(b[:, 3], h)
    valid = np.flatnonzero((x2 > x1 - 1) & (y2 > y1 - 1))
    owners = owner.cpu().numpy()
    pieces = [
        F.interpolate(
            x[owners[k] : owners[k] + 1, :, y1[k] - 1 : y2[k], x1[k] - 1 : x2[k]],
            size=(size, size),
            mode="area",
        )
        for k in valid
    ]
    sel = torch.as_tensor(valid, dtype=torch.long, device=boxes.device)
    if not pieces:
        return x.new_zeros((0, 3, size, size)), boxes[sel], owner[sel]
    return _normalise(torch.cat(pieces)), boxes[sel], owner[sel]


def _chunked(net: nn.Module, crops: torch.Tensor) -> tuple[torch.Tensor, ...]:
    if len(crops) == 0:
        # run once on nothing to get outputs of the right widths
        return tuple(o[:0] for o in net(crops.new_zeros((1, *crops.shape[1:]))))
    parts = [net(crops[i : i + CHUNK]) for i in range(0, len(crops), CHUNK)]
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


def _nms_min(boxes: np.ndarray, owner: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS per image; overlap is intersection over the smaller (inclusive) area.

    ``boxes`` is (k, 5) with the score last. Returns the kept indices, best first.
    """
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    order = np.argsort(-boxes[:, 4], kind="stable")
    keep: list[int] = []
    alive = np.ones(len(boxes), dtype=bool)
    for pos, i in enumerate(order):
        if not alive[i]:
            continue
        keep.append(int(i))
        rest = order[pos + 1 :]
        rest = rest[alive[rest] & (owner[rest] == owner[i])]
        if not len(rest):
            continue
        iw = np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]) + 1
        ih = np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]) + 1
        inter = np.maximum(0.0, iw) * np.maximum(0.0, ih)
        overlap = inter / np.minimum(area[i], area[rest])
        alive[rest[overlap > threshold]] = False
    return np.asarray(keep, dtype=np.int64)
