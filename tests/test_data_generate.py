"""The demo data-set generator: real clips, face swaps, self-blends, reproduction."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from xai_study.cli import main
from xai_study.data import generate as g
from xai_study.data.checks import diff_inside_mask
from xai_study.video import detect_faces

COMMITTED = Path(__file__).resolve().parents[1] / "study_data" / "demo_data"


def _detect(frames, max_side=640):
    return detect_faces(frames, max_side=max_side)


@pytest.fixture(scope="module")
def photo_faces(data_dir):
    return g.PhotoFaces(data_dir, _detect)


@pytest.fixture(scope="module")
def target_clip(photo_faces):
    img, lm = photo_faces["multi3"]
    frames, lms = g.photo_clip(img, lm, np.random.default_rng(3), n=8)
    return g.RealClip("real_multi3_t", "multi3", frames, lms, "test", "test")


def test_photo_clip_is_deterministic_and_moves(photo_faces):
    img, lm = photo_faces["multi3"]
    a, la = g.photo_clip(img, lm, np.random.default_rng(7), n=6)
    b, lb = g.photo_clip(img, lm, np.random.default_rng(7), n=6)
    assert a.shape == (6, g.SIZE, g.SIZE, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.stack(la), np.stack(lb))
    # a moving camera: the landmarks move between the first and the last frame
    assert np.abs(la[-1] - la[0]).max() > 2


def test_photo_clip_landmarks_match_mtcnn(photo_faces, target_clip):
    """Landmarks are carried through the camera transform exactly: MTCNN on the rendered
    frames finds the eyes, nose and mouth where the generator says they are."""
    det = _detect(target_clip.frames)
    for faces, lm in zip(det, target_clip.landmarks, strict=True):
        assert faces, "no face detected in a rendered photo frame"
        eye_dist = np.linalg.norm(lm[1] - lm[0])
        err = np.linalg.norm(faces[0].landmarks - lm, axis=1).max()
        assert err < 0.15 * eye_dist


def test_face_swap_changes_only_the_masked_face(photo_faces, target_clip):
    src_img, src_lm = photo_faces["multi2"]
    fake, masks = g.face_swap(target_clip, src_img, src_lm)
    assert fake.shape == target_clip.frames.shape and masks.shape == fake.shape[:3]
    assert all(m.max() > 0.99 for m in masks)  # a face on every frame, masked on every frame
    outside = masks == 0
    np.testing.assert_array_equal(fake[outside], target_clip.frames[outside])
    assert diff_inside_mask(fake, target_clip.frames, masks) == pytest.approx(1.0)
    core = masks > 0.9
    change = np.abs(fake.astype(float) - target_clip.frames).mean(-1)[core].mean()
    assert change > 8  # a different face, not a colour shift
    # the swapped face is still a face, and the same size and place as the target's
    det = _detect(fake)
    assert all(det)
    for faces, lm in zip(det, target_clip.landmarks, strict=True):
        assert np.linalg.norm(faces[0].landmarks - lm, axis=1).max() < 0.3 * np.linalg.norm(
            lm[1] - lm[0]
        )


def test_face_swap_does_not_flicker_more_than_the_target(photo_faces, target_clip):
    src_img, src_lm = photo_faces["multi2"]
    fake, masks = g.face_swap(target_clip, src_img, src_lm)
    core = masks.min(0) > 0.9  # pixels inside the mask in every frame

    def flicker(x):
        return np.abs(np.diff(x.astype(float).mean(-1), axis=0))[:, core].mean()

    assert flicker(fake) < 1.5 * flicker(target_clip.frames) + 1.0


def test_self_blend_is_local_and_seeded(target_clip):
    fake, masks = g.self_blend(target_clip, np.random.default_rng(5))
    again, _ = g.self_blend(target_clip, np.random.default_rng(5))
    np.testing.assert_array_equal(fake, again)
    assert all(m.max() > 0.99 for m in masks)
    outside = masks == 0
    np.testing.assert_array_equal(fake[outside], target_clip.frames[outside])
    assert np.abs(fake.astype(float) - target_clip.frames)[~outside].mean() > 0.5


def test_frames_without_a_face_stay_unchanged(photo_faces, target_clip):
    clip = g.RealClip("x", "multi3", target_clip.frames, [None, *target_clip.landmarks[1:]], "test")
    src_img, src_lm = photo_faces["multi2"]
    fake, masks = g.face_swap(clip, src_img, src_lm)
    assert masks[0].max() == 0
    np.testing.assert_array_equal(fake[0], clip.frames[0])
    sb, sbm = g.self_blend(clip, np.random.default_rng(0))
    assert sbm[0].max() == 0
    np.testing.assert_array_equal(sb[0], clip.frames[0])


def test_smooth_landmarks_fills_single_gaps_and_keeps_runs():
    a = np.zeros((5, 2))
    seq = [a, a + 2, None, a + 2, None, None, a + 10]
    out = g.smooth_landmarks(seq)
    assert out[2] is not None and np.allclose(out[2], 2, atol=0.5)
    assert out[4] is None and out[5] is None
    np.testing.assert_allclose(out[6], a + 10)


def test_splits_are_identity_disjoint_and_fixed_for_the_test_media():
    plan, splits = g.build_plan(0)
    assert splits["wolfgang"] == "test" and splits["jin"] == "train"
    assert {splits[f"multi{i}"] for i in range(5)} == {"test"}
    assert sum(s == "val" for s in splits.values()) == 3
    assert g.assign_splits(sorted(splits), 1) != splits  # the seed shuffles the rest
    assert len(plan) == 38 and g.planned_count(0) == 38 * 2 + sum(
        splits[p[3]] == "train" for p in plan
    )


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _same_within_codec_noise(new: Path, old: Path) -> None:
    """Files that differ in bytes: MTCNN's landmarks (floating point, CPU-dependent in
    their last bits) moved a mask edge by a 1/32 blend step somewhere, and the encoder's
    decisions cascaded from there. Decoded, that must stay within codec noise."""
    from xai_study.data import load_masks
    from xai_study.video import read_video

    if new.suffix == ".npz":
        a, b = load_masks(new), load_masks(old)
        assert a.shape == b.shape, new.name
        d = np.abs(a - b)
        assert d.max() <= 2 / 32 + 1e-6 and (d > 0).mean() <= 0.005, new.name
    else:
        a = read_video(new).frames.astype(np.int16)
        b = read_video(old).frames.astype(np.int16)
        assert a.shape == b.shape, new.name
        d = np.abs(a - b)
        assert d.mean() <= 3.0 and (d > 8).mean() <= 0.02, (new.name, d.mean(), (d > 8).mean())


def test_generator_reproduces_the_committed_files(tmp_path, data_dir):
    """A fresh run over the first real clip (from tests/data, offline) gives the committed
    label rows, and the videos and masks bit for bit on the machine that made them
    (elsewhere within codec noise, see ``_same_within_codec_noise``)."""
    out = tmp_path / "demo"
    assert main(
        ["make-demo-data", "--out", str(out), "--sources", str(data_dir), "--limit", "1",
         "--no-selfblend", "--quiet"]
    ) == 0  # fmt: skip
    rows = _rows(out / "labels.csv")
    assert [r["method"] for r in rows] == ["real", "faceswap"]
    committed = {r["video_id"]: r for r in _rows(COMMITTED / "labels.csv")}
    for r in rows:
        assert r == committed[r["video_id"]]
        for key in ("path", "mask_path"):
            if r[key] and (out / r[key]).read_bytes() != (COMMITTED / r[key]).read_bytes():
                _same_within_codec_noise(out / r[key], COMMITTED / r[key])


def test_cli_errors(tmp_path, capsys):
    assert main(["make-demo-data", "--out", str(tmp_path), "--sources", str(tmp_path / "no")]) == 2
    assert "error:" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["make-demo-data", "--out", str(tmp_path / "o"), "--sources", str(empty)]) == 2
    assert "no source media found" in capsys.readouterr().err
    (empty / "multi_face.jpg").write_bytes(
        (COMMITTED.parents[1] / "tests/data/multi_face.jpg").read_bytes()
    )
    assert main(["make-demo-data", "--out", str(tmp_path / "o"), "--sources", str(empty)]) == 2
    assert "WolfgangLanger_Pexels.mp4 is missing from the sources" in capsys.readouterr().err
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "insightface-2.1-py3-none-any.whl").write_bytes(b"not the real wheel")
    assert main(["make-demo-data", "--out", str(tmp_path / "o"), "--sources", str(wheels)]) == 2
    assert "SHA-256" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["make-demo-data", "--out", str(tmp_path), "--limit", "0"])
    assert exc.value.code == 2


def test_write_mp4_is_deterministic_and_playable(tmp_path, target_clip):
    from xai_study.data.encode import write_mp4
    from xai_study.video import read_video
    from xai_study.video.io import probe_codec

    a = write_mp4(target_clip.frames, tmp_path / "a.mp4", fps=12)
    b = write_mp4(target_clip.frames, tmp_path / "b.mp4", fps=12)
    assert a.read_bytes() == b.read_bytes()  # exact within one process
    v = read_video(a, num_frames=None)
    assert v.frames.shape == target_clip.frames.shape and v.fps == pytest.approx(12)
    assert np.abs(v.frames.astype(float) - target_clip.frames).mean() < 4
    info = probe_codec(a)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == 8
    with pytest.raises(ValueError, match="even"):
        write_mp4(np.zeros((2, 5, 6, 3), np.uint8), tmp_path / "c.mp4", fps=12)
