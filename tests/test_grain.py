"""Grain for skipped tokens (skipsr/grain.py): its spectrum, its amplitude, and that it is fixed by position."""

import numpy as np
import pytest
import torch

from models import TINY, tiny_model
from skipsr import grain, masks, resize
from skipsr.config import PipelineConfig
from skipsr.pipeline import SkipSRPipeline
from skipsr.evaluation.valset import ValClip


def test_tile_is_unit_rms_detail_above_the_lr_nyquist():
    tile = grain.grain_tile(4)  # (TILE, TILE, 3)
    assert tile.shape == (grain.TILE, grain.TILE, 3)
    assert float(tile.pow(2).mean().sqrt()) == pytest.approx(1.0, abs=1e-4)
    x = tile.permute(2, 0, 1)[None]  # (1, 3, TILE, TILE)
    low = resize.up(resize.down(x, 4), 4)
    assert float(low.pow(2).mean().sqrt()) < 0.2  # almost nothing is left below the LR's Nyquist
    # the oracle's detail score of grain at RMS a is about a: it is the detail the score measures
    d = masks.detail_scores((0.5 + 3.0 / 255 * x).clamp(0, 1), 4, 16)
    assert float(d.mean()) == pytest.approx(3.0, rel=0.15)


def test_grain_amplitude_and_kept_tokens_untouched():
    canvas = torch.full((2, 64, 64, 3), 128, dtype=torch.uint8)
    amp = torch.zeros(2, 4, 4)
    amp[:, :2] = 4.0  # top half skipped, grain RMS 4 levels
    out = grain.add_grain(canvas.clone(), amp, 16, 1, (0, 0, 0), 4)
    assert torch.equal(out[:, 32:], canvas[:, 32:])  # amplitude 0: unchanged
    added = out[:, :32].float() - 128
    assert float(added.pow(2).mean().sqrt()) == pytest.approx(4.0, rel=0.15)
    two = grain.add_grain(torch.full((4, 64, 64, 3), 128, dtype=torch.uint8), amp, 16, 2, (0, 0, 0), 4)
    assert torch.equal(two[0], two[1]) and torch.equal(two[:, 32:], canvas[:1, 32:].expand(4, -1, -1, -1))


def test_grain_is_fixed_by_absolute_position():
    """Chunks, windows and tiles of one video get the same grain: split it in time and space."""
    canvas = torch.full((4, 64, 96, 3), 100, dtype=torch.uint8)
    amp = torch.full((4, 4, 6), 2.5)
    whole = grain.add_grain(canvas.clone(), amp, 16, 1, (10, 0, 0), 4, seed=3)
    part = grain.add_grain(canvas[2:, :, 48:].clone(), amp[2:, :, 3:], 16, 1, (12, 0, 3), 4, seed=3)
    assert torch.equal(part, whole[2:, :, 48:])
    assert torch.equal(whole[0], whole[1])  # static: a still texture keeps its grain from frame to frame
    other = grain.add_grain(canvas.clone(), amp, 16, 1, (10, 0, 0), 4, seed=4)
    assert not torch.equal(other, whole)
    moving = grain.add_grain(canvas.clone(), amp, 16, 1, (10, 0, 0), 4, seed=3, motion="per-frame")
    part = grain.add_grain(canvas[2:, :, 48:].clone(), amp[2:, :, 3:], 16, 1, (12, 0, 3), 4, seed=3, motion="per-frame")
    assert torch.equal(part, moving[2:, :, 48:]) and not torch.equal(moving[0], moving[1])  # fresh grain per frame
    with pytest.raises(ValueError, match="motion"):
        grain.add_grain(canvas.clone(), amp, 16, 1, (0, 0, 0), 4, motion="random")


def test_pipeline_grain_changes_skipped_tokens_only():
    g = np.random.default_rng(0)
    lr = np.full((4, 16, 24, 3), 120, np.uint8)
    lr[:, :8] = g.integers(0, 255, (4, 8, 24, 3))  # top: detail (kept); bottom: flat (skipped)
    hr = resize.to_uint8(resize.up(resize.to_float(lr), 4))  # (T, 64, 96, 3)
    hr[:, 32:] = np.clip(hr[:, 32:] + g.normal(0, 1.5, hr[:, 32:].shape).round(), 0, 255)  # faint grain: d < tau
    model = tiny_model(TINY)
    base = SkipSRPipeline(model)(lr, tau=4.0, mask="oracle", hr=hr)
    grainy = SkipSRPipeline(model, config=PipelineConfig(grain=1.0))(lr, tau=4.0, mask="oracle", hr=hr)
    skip = masks.mask_to_pixels(base.skip, 4, 64, 96, 16).numpy()  # (T, H, W)
    assert skip[:, 48:].all() and not skip[:, :32].any()
    assert np.array_equal(base.video[~skip], grainy.video[~skip])
    added = grainy.video[:, 52:60, 8:88].astype(float) - base.video[:, 52:60, 8:88]  # inside skipped tokens
    assert 0.8 < np.sqrt((added**2).mean()) < 2.5  # about the HR's own grain (RMS 1.5 on top of the upsample)
    with pytest.raises(ValueError, match="grain"):
        PipelineConfig(grain=-1.0)


def test_choose_grain_sweeps_strengths_against_one_noskip_run():
    """analysis.choose_grain: one no-skip run per clip and input, skip runs per tau x strength; grain
    changes only the skip runs' numbers, and the pipeline's own grain is restored."""
    from analysis.choose_grain import sweep
    from models import need_weights
    from skipsr.predictor import MaskPredictor

    need_weights()
    g = np.random.default_rng(1)
    hr = np.full((2, 64, 96, 3), 110, np.uint8)
    hr[:, :32] = g.integers(0, 255, (2, 32, 96, 3))  # detail on top, faint grain below
    hr[:, 32:] = np.clip(hr[:, 32:] + g.normal(0, 2, hr[:, 32:].shape).round(), 0, 255)
    pipe = SkipSRPipeline(tiny_model(TINY), MaskPredictor(), config=PipelineConfig(grain=0.5))
    out = sweep(pipe, [ValClip("c", hr, 24.0, None)], [3.0], [0.0, 1.0], motions=("static", "per-frame"))
    names = ("g0", "g1-static", "g1-per-frame")
    assert set(out) == {f"{d}@3/{n}" for d in ("bicubic", "realistic") for n in names} and pipe.grain == 0.5
    assert pipe.grain_motion == "static"
    for d in ("bicubic", "realistic"):
        a, b, c = (out[f"{d}@3/{n}"] for n in names)
        assert a["skip_ratio"] == b["skip_ratio"] == c["skip_ratio"] > 0  # the same tokens are skipped
        assert a["psnr_y_rise_db"] != b["psnr_y_rise_db"]  # grain changed the skipped tokens
        assert b["psnr_y_rise_db"] != c["psnr_y_rise_db"]  # the motion changed the second frame's grain
        assert a["max_jod_drop"] is not None
