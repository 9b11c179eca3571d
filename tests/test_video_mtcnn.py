"""Our MTCNN (xai_study.video.mtcnn) against facenet-pytorch 2.6.0's on real demo frames.

facenet-pytorch is a dev dependency only: it is the reference the cascade was written to
agree with. Tolerances: boxes and landmarks within 1e-3 px, probabilities within 1e-5
(measured: 1e-4 px and 1.2e-7, float32 rounding of the same arithmetic), and the same
number of faces in every frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xai_study.video.io import read_video
from xai_study.video.mtcnn import MTCNN, WEIGHTS_FILE, _nms_min, pyramid_scales

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT / "study_data" / "demo_data" / "videos"
BOX_TOL = 1e-3
PROB_TOL = 1e-5


@pytest.fixture(scope="module")
def ours():
    return MTCNN()


@pytest.fixture(scope="module")
def reference():
    facenet = pytest.importorskip("facenet_pytorch")
    model = facenet.MTCNN(keep_all=True, device=torch.device("cpu"))
    model.eval()
    return model


def _reference_detect(model, frames, min_face_size, thresholds):
    from facenet_pytorch.models.utils.detect_face import detect_face

    with torch.inference_mode():
        boxes, points = detect_face(
            frames,
            min_face_size,
            model.pnet,
            model.rnet,
            model.onet,
            list(thresholds),
            model.factor,
            torch.device("cpu"),
        )
    return (
        [np.asarray(b, np.float32).reshape(-1, 5) for b in boxes],
        [np.asarray(p, np.float32).reshape(-1, 5, 2) for p in points],
    )


# real videos: single faces, several people, faces entering and leaving the picture
CASES = [
    "real_anc_photo0.mp4",
    "real_group2_photo1.mp4",
    "real_multi1_photo0.mp4",
    "real_jin_face_noface_00.mp4",
    "real_jin_single_face_00.mp4",
]


@pytest.mark.parametrize("name", CASES)
def test_same_faces_as_facenet_pytorch(ours, reference, name):
    frames = read_video(VIDEOS / name, num_frames=6).frames
    torch.set_num_threads(1)
    for min_face_size, thresholds in [(20, (0.6, 0.7, 0.7)), (40, (0.5, 0.6, 0.8))]:
        got_b, got_p = ours.detect(frames, min_face_size=min_face_size, thresholds=thresholds)
        ref_b, ref_p = _reference_detect(reference, frames, min_face_size, thresholds)
        assert len(got_b) == len(frames)
        for gb, gp, rb, rp in zip(got_b, got_p, ref_b, ref_p, strict=True):
            assert gb.shape == rb.shape and gp.shape == rp.shape
            np.testing.assert_allclose(gb[:, :4], rb[:, :4], atol=BOX_TOL, rtol=0)
            np.testing.assert_allclose(gb[:, 4], rb[:, 4], atol=PROB_TOL, rtol=0)
            np.testing.assert_allclose(gp, rp, atol=BOX_TOL, rtol=0)
    assert sum(len(b) for b in got_b) > 0  # the comparison is not vacuous


def test_same_weights_as_facenet_pytorch(ours, reference):
    """Every pretrained tensor of facenet-pytorch is in our file, bit for bit."""
    ref = {
        f"{net}:{tuple(v.shape)}:{v.double().sum().item():.10e}"
        for net in ("pnet", "rnet", "onet")
        for v in getattr(reference, net).state_dict().values()
    }
    got = {
        f"{net}:{tuple(v.shape)}:{v.double().sum().item():.10e}"
        for net in ("pnet", "rnet", "onet")
        for v in getattr(ours, net).state_dict().values()
    }
    assert got == ref


def test_weights_file_is_package_data():
    assert WEIGHTS_FILE.parent == ROOT / "xai_study" / "video"
    with np.load(WEIGHTS_FILE, allow_pickle=False) as data:
        assert {k.split(".")[0] for k in data.files} == {"pnet", "rnet", "onet"}


def test_blank_and_tiny_images_have_no_faces(ours):
    boxes, points = ours.detect(np.zeros((2, 64, 80, 3), np.uint8))
    assert [b.shape for b in boxes] == [(0, 5), (0, 5)]
    assert [p.shape for p in points] == [(0, 5, 2), (0, 5, 2)]
    # smaller than one P-Net window at the first scale: no pyramid level at all
    assert pyramid_scales(10, 10, 20, 0.709) == []
    boxes, _ = ours.detect(np.full((1, 10, 10, 3), 128, np.uint8))
    assert boxes[0].shape == (0, 5)


def test_bad_input_is_a_clear_error(ours):
    with pytest.raises(ValueError, match="N, H, W, 3"):
        ours.detect(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="three numbers"):
        ours.detect(np.zeros((1, 32, 32, 3), np.uint8), thresholds=(0.5, 0.5))


def test_min_overlap_nms_known_answer():
    boxes = np.array(
        [
            [0, 0, 9, 9, 0.9],  # kept (best)
            [2, 2, 5, 5, 0.8],  # inside the first: overlap 1 of the smaller box -> dropped
            [20, 20, 29, 29, 0.7],  # apart -> kept
            [0, 0, 9, 9, 0.95],  # same place, other image -> kept
        ],
        np.float64,
    )
    owner = np.array([0, 0, 0, 1])
    assert _nms_min(boxes, owner, 0.7).tolist() == [3, 0, 2]
