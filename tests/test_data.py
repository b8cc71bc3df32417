"""Virtual camera determinism and the data split (no fetch needed)."""

import json

import numpy as np
import torch
from PIL import Image

from skipsr import camera, data


def _photo(seed=0, size=(700, 500)):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1] // 20, size[0] // 20, 3), dtype=np.uint8)
    return Image.fromarray(base).resize(size, Image.BICUBIC)


def test_clip_generator_is_deterministic_and_moves():
    cfg = camera.CameraConfig(frames=8, height=64, width=96, pan_px_per_frame=(3.0, 5.0))
    a = camera.make_clip(_photo(), cfg, seed=3)
    b = camera.make_clip(_photo(), cfg, seed=3)
    c = camera.make_clip(_photo(), cfg, seed=4)
    assert a.shape == (8, 3, 64, 96)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert (a[0] - a[-1]).abs().mean() > 0.01  # the camera moved
    assert 0 <= float(a.min()) and float(a.max()) <= 1


def test_camera_path_speed_varies_and_stays_inside_photo():
    cfg = camera.CameraConfig(frames=32, height=64, width=64)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        path = camera.sample_path((400, 600), cfg, rng)
        r = 0.5 * np.hypot(64, 64) * path.px_per_out_px.max()
        assert (path.cx >= r - 1e-6).all() and (path.cx <= 600 - r + 1e-6).all()
        assert (path.cy >= r - 1e-6).all() and (path.cy <= 400 - r + 1e-6).all()
        assert np.abs(np.rad2deg(path.angle_rad)).max() <= cfg.max_rotation_deg
    steps = np.hypot(np.diff(path.cx), np.diff(path.cy))
    assert steps.max() > 1.5 * steps.mean()  # not constant speed


def test_split_is_fixed_by_source():
    assert data.split_of("bikes") == "val"
    ids = [f"pkg/photo{i}" for i in range(400)]
    splits = [data.split_of(i) for i in ids]
    assert splits == [data.split_of(i) for i in ids]
    assert 0.08 < splits.count("val") / 400 < 0.22


def test_make_clips_from_a_manifest_is_idempotent(tmp_path):
    (tmp_path / "photos").mkdir()
    _photo(1).save(tmp_path / "photos" / "p.png")
    manifest = {"packages": [], "real_clips": [], "photos": [
        {"id": "test/p", "path": "photos/p.png", "source": "test", "sha256": "-", "width": 700, "height": 500,
         "split": "train"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    cfg = camera.CameraConfig(frames=4, height=32, width=32)
    first = data.make_clips(tmp_path, cfg, per_photo=2, progress=False)
    assert [c["path"] for c in first] == ["clips/train/test__p_0.mp4", "clips/train/test__p_1.mp4"]
    mtime = (tmp_path / first[0]["path"]).stat().st_mtime_ns
    again = data.make_clips(tmp_path, cfg, per_photo=2, progress=False)
    assert again == first and (tmp_path / first[0]["path"]).stat().st_mtime_ns == mtime
