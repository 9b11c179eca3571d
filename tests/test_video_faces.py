"""MTCNN detection on real photos, tracking (known answers), geometry of the crops."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from xai_study.video.clip import crop_square, smooth_boxes, square_crop_box
from xai_study.video.faces import Face, box_iou, build_tracks, detect_faces, get_mtcnn, track_faces


def _image(data_dir, name):
    return np.asarray(Image.open(data_dir / name).convert("RGB"))


def _face(x1, y1, x2, y2, prob=0.999):
    box = np.array([x1, y1, x2, y2], np.float32)
    w, h = x2 - x1, y2 - y1
    lms = np.array(
        [[x1 + 0.3 * w, y1 + 0.4 * h], [x1 + 0.7 * w, y1 + 0.4 * h], [x1 + 0.5 * w, y1 + 0.6 * h]]
        + [[x1 + 0.35 * w, y1 + 0.8 * h], [x1 + 0.65 * w, y1 + 0.8 * h]],
        np.float32,
    )
    return Face(box=box, prob=prob, landmarks=lms)


def test_single_face_photo(data_dir):
    img = _image(data_dir, "single_face.jpg")
    (faces,) = detect_faces(img)
    assert len(faces) == 1
    f = faces[0]
    assert f.prob > 0.99
    np.testing.assert_allclose(f.box, [191, 145, 373, 402], atol=6)
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = f.landmarks
    assert lx < nx < rx and mlx < mrx  # left/right order in the image
    assert max(ly, ry) < ny < min(mly, mry)  # eyes above nose above mouth
    x1, y1, x2, y2 = f.box
    assert np.all((f.landmarks[:, 0] > x1) & (f.landmarks[:, 0] < x2))
    assert np.all((f.landmarks[:, 1] > y1) & (f.landmarks[:, 1] < y2))


def test_group_photo_and_confidence_order(data_dir):
    img = _image(data_dir, "multi_face.jpg")
    (faces,) = detect_faces(img)
    assert len(faces) == 5
    probs = [f.prob for f in faces]
    assert probs == sorted(probs, reverse=True) and min(probs) >= 0.9
    # five different people: no two boxes overlap much
    for i in range(5):
        for j in range(i + 1, 5):
            assert box_iou(faces[i].box, faces[j].box) < 0.2


def test_downscaled_detection_maps_back_to_source_pixels(data_dir):
    img = _image(data_dir, "single_face.jpg")  # 562 x 572
    full = detect_faces(img, max_side=None)[0][0]
    small = detect_faces(img, max_side=256)[0][0]  # detection at < half resolution
    assert box_iou(full.box, small.box) > 0.8
    err = np.abs(full.landmarks - small.landmarks).max()
    assert err < 0.06 * full.size


def test_batches_of_mixed_sizes_equal_single_calls(data_dir):
    a = _image(data_dir, "single_face.jpg")
    b = _image(data_dir, "multi_face.jpg")
    together = detect_faces([a, b, a], batch_size=2)
    alone_a, alone_b = detect_faces(a)[0], detect_faces(b)[0]
    assert [len(x) for x in together] == [1, 5, 1]
    np.testing.assert_allclose(together[0][0].box, alone_a[0].box, atol=0.5)
    np.testing.assert_allclose(together[2][0].box, alone_a[0].box, atol=0.5)
    np.testing.assert_allclose(
        sorted(f.box[0] for f in together[1]), sorted(f.box[0] for f in alone_b), atol=0.5
    )


def test_blank_frames_have_no_face():
    frames = np.zeros((3, 120, 160, 3), np.uint8)
    frames[1] = 128
    assert detect_faces(frames) == [[], [], []]
    # frames too small for the smallest MTCNN window (12 px) are simply faceless
    assert detect_faces(np.zeros((2, 10, 10, 3), np.uint8)) == [[], []]
    assert detect_faces([np.zeros((1, 1, 3), np.uint8)]) == [[]]


def test_model_is_loaded_once_and_threads_agree(data_dir):
    img = _image(data_dir, "single_face.jpg")
    expected = detect_faces(img)[0][0].box
    results, models = [], []

    def work():
        models.append(get_mtcnn())
        results.append(detect_faces(img)[0][0].box)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(m is models[0] for m in models)
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-3)


def test_detect_faces_rejects_bad_shapes():
    with pytest.raises(ValueError):
        detect_faces(np.zeros((2, 10, 10), np.uint8))


def test_box_iou_known_answers():
    a = np.array([0, 0, 10, 10])
    assert box_iou(a, a) == 1.0
    assert box_iou(a, np.array([5, 0, 15, 10])) == pytest.approx(50 / 150)
    assert box_iou(a, np.array([20, 20, 30, 30])) == 0.0


def test_track_follows_one_person_when_another_enters():
    # Person A sits left through all 6 frames and drifts right; person B (bigger, more
    # confident) appears on the right in frames 2-4 only.
    det = []
    for t in range(6):
        frame = [_face(100 + 8 * t, 100, 200 + 8 * t, 220, prob=0.995)]
        if 2 <= t <= 4:
            frame.insert(0, _face(400, 80, 560, 270, prob=0.9999))
        det.append(frame)
    track = track_faces(det)
    assert all(f is not None for f in track)
    assert [float(f.box[0]) for f in track] == [100 + 8 * t for t in range(6)]
    tracks = build_tracks(det)
    assert len(tracks) == 2
    # the first track is seeded by the most confident face (person B)
    assert [f is not None for f in tracks[0]] == [False, False, True, True, True, False]


def test_track_gaps_and_no_jump_to_a_far_face():
    det = [
        [_face(100, 100, 200, 220)],
        [],  # missed detection
        [_face(115, 104, 215, 224)],
        [_face(500, 100, 600, 220)],  # someone else, far away: not the same person
        [_face(120, 100, 220, 220), _face(500, 100, 600, 220)],
    ]
    track = track_faces(det)
    assert track[1] is None and track[3] is None
    assert [float(f.box[0]) for f in (track[0], track[2], track[4])] == [100, 115, 120]


def test_track_rejects_implausible_size_change():
    det = [[_face(100, 100, 200, 200)], [_face(90, 90, 400, 400)], [_face(102, 100, 202, 200)]]
    track = track_faces(det)
    assert track[1] is None and track[0] is not None and track[2] is not None


def test_track_of_nothing():
    assert track_faces([[], []]) == [None, None]


def test_square_crop_box_known_answer():
    np.testing.assert_allclose(square_crop_box(np.array([10, 20, 50, 100]), 1.5), [-30, 0, 90, 120])


def test_crop_square_pads_black_outside_the_frame():
    frame = np.full((100, 200, 3), 200, np.uint8)
    crop = crop_square(frame, np.array([-20, -20, 60, 60], np.float32), 80)  # no resize
    assert crop.shape == (80, 80, 3)
    assert np.all(crop[:20] == 0) and np.all(crop[:, :20] == 0)
    assert np.all(crop[20:, 20:] == 200)
    resized = crop_square(frame, np.array([-20, -20, 60, 60], np.float32), 40)
    assert resized.shape == (40, 40, 3)
    assert np.all(resized[:9, :] == 0) and np.all(resized[11:, 11:] == 200)
    outside = crop_square(frame, np.array([300, 300, 350, 350], np.float32), 16)
    assert np.all(outside == 0)


def test_smoothing_removes_jitter_but_keeps_real_motion():
    rng = np.random.default_rng(0)
    x = 100 + rng.normal(0, 3, 20)  # jitter of a few pixels around a still face
    jitter = np.stack([x, np.full(20, 50.0), x + 100, np.full(20, 150.0)], axis=1)
    sm = smooth_boxes(jitter)
    assert np.diff(sm[:, 0]).std() < 0.7 * np.diff(jitter[:, 0]).std()
    moving = np.array([[0, 0, 100, 100], [200, 0, 300, 100], [400, 0, 500, 100]], float)
    np.testing.assert_allclose(smooth_boxes(moving), moving)  # big jumps are real motion


def test_torch_threads_are_restored():
    import torch

    from xai_study.video.faces import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        with torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    # detection in a worker thread (as in the web app) leaves this thread's setting alone
    seen = []

    def worker():
        with torch_threads(1):
            seen.append(torch.get_num_threads())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [1] and torch.get_num_threads() == before


def test_thread_count_does_not_change_detections(data_dir):
    img = _image(data_dir, "multi_face.jpg")
    one = detect_faces(img, threads=1)[0]
    default = detect_faces(img, threads=None)[0]
    assert len(one) == len(default) == 5
    for a, b in zip(one, default, strict=True):
        np.testing.assert_allclose(a.box, b.box, atol=0.05)
