"""Degradations: sizes, determinism, and that they degrade."""

import numpy as np
import pytest
import torch

from media import pattern
from skipsr import degrade, resize


def _hr(t=4, h=64, w=96):
    return resize.to_float(pattern(t, h, w))


@pytest.mark.parametrize("scale", [2, 4])
def test_bicubic_sizes_and_quantisation(scale):
    lr = degrade.bicubic(_hr(), scale)
    assert lr.shape == (4, 3, 64 // scale, 96 // scale)
    assert torch.equal(lr, lr.mul(255).round().div(255))  # 8-bit values


def test_bicubic_mod_crops_sizes_not_divisible_by_scale():
    hr = resize.to_float(pattern(1, 67, 50))
    assert degrade.bicubic(hr, 4).shape == (1, 3, 16, 12)
    with pytest.raises(ValueError, match="scale"):
        degrade.bicubic(hr, 3)


def test_realistic_is_deterministic_per_seed_and_differs_across_seeds():
    hr = _hr()
    a = degrade.realistic(hr, 4, seed=7)
    b = degrade.realistic(hr, 4, seed=7)
    c = degrade.realistic(hr, 4, seed=8)
    assert a.shape == (4, 3, 16, 24)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_realistic_is_worse_than_clean_and_crf_matters():
    hr = _hr(6, 128, 128)
    clean = degrade.bicubic(hr, 4)
    cfg_lo = degrade.RealisticConfig(blur_sigma_px=(0.0, 0.0), noise_std_8bit=(0.0, 0.0), crf=10)
    cfg_hi = degrade.RealisticConfig(blur_sigma_px=(0.0, 0.0), noise_std_8bit=(0.0, 0.0), crf=45)
    err_lo = (degrade.realistic(hr, 4, 0, cfg_lo) - clean).abs().mean()
    err_hi = (degrade.realistic(hr, 4, 0, cfg_hi) - clean).abs().mean()
    assert err_hi > 2 * err_lo
    noisy = degrade.RealisticConfig(noise_std_8bit=(8.0, 8.0), crf=0)
    assert (degrade.realistic(hr, 4, 0, noisy) - clean).abs().mean() > err_lo


def test_h264_roundtrip_keeps_odd_sizes():
    frames = pattern(3, 15, 21)
    out = degrade.h264_roundtrip(frames, crf=18)
    assert out.shape == frames.shape and out.dtype == np.uint8
