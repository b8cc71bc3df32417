"""Detail scores and oracle masks (docs/design.md section 2), mask statistics, overlay."""

import math

import numpy as np
import pytest
import torch

from skipsr import masks, resize

TOKEN = 16  # HR pixels per token side: the hand-computed numbers below are for 16


def test_token_rmse_hand_computed():
    # 1 frame, 3 channels, 2x2 tokens of 16 px; errors in 8-bit units.
    err = torch.zeros(1, 3, 32, 32)
    err[:, :, :16, :16] = 3.0  # token (0,0): 3 everywhere -> RMSE 3
    err[:, 0, :16, 16:24] = 4.0  # token (0,1): channel 0, left half -> sqrt(16 * 128 / 768) = sqrt(8/3)
    err[:, :, 16:, :16] = torch.tensor([1.0, -1.0]).repeat(128)[None].view(16, 16)  # +-1 -> 1
    got = masks.token_rmse(err, (32, 32), TOKEN)
    assert got.shape == (1, 2, 2)
    assert got[0, 0, 0] == pytest.approx(3.0)
    assert got[0, 0, 1] == pytest.approx(math.sqrt(8 / 3))
    assert got[0, 1, 0] == pytest.approx(1.0)
    assert got[0, 1, 1] == 0.0


def test_token_rmse_ignores_padding_and_pools_pt_frames():
    err = torch.zeros(2, 1, 16, 32)
    err[0, :, :10, :] = 2.0  # frame 0, rows 0-9 real; rows 10-15 will be declared padding
    err[:, :, 10:, :] = 100.0  # padding, must not count
    got = masks.token_rmse(err, (10, 32), TOKEN, pt=2)  # 2 frames pooled into 1 token row
    # real samples per token: 2 frames x 10 rows x 16 cols; frame 0 carries 4.0 each -> sqrt(4 * 160 / 320)
    assert got.shape == (1, 1, 2)
    assert torch.allclose(got, torch.full((1, 1, 2), math.sqrt(2.0)))


def test_constant_video_scores_zero():
    hr = torch.full((3, 3, 40, 56), 0.37)
    s = masks.detail_scores(hr, 4, TOKEN)
    assert s.shape == (3, 3, 4)  # ceil(40/16), ceil(56/16)
    assert torch.all(s.abs() < 1e-4)


def test_detail_score_matches_its_definition_on_a_small_case():
    """Recompute d for a 32x32 frame by the formula: RMSE(HR, up(down(HR))) * 255 per 16x16 token."""
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(1, 3, 32, 32, generator=g)
    hr[..., :, :16] = 0.5  # left column of tokens: flat
    lr = torch.nn.functional.interpolate(hr, size=(8, 8), mode="bicubic", antialias=True, align_corners=False)
    rec = torch.nn.functional.interpolate(lr, size=(32, 32), mode="bicubic", align_corners=False)
    diff2 = ((hr - rec) * 255) ** 2
    expect = torch.tensor([[diff2[0, :, :16, :16].mean(), diff2[0, :, :16, 16:].mean()],
                           [diff2[0, :, 16:, :16].mean(), diff2[0, :, 16:, 16:].mean()]]).sqrt()
    got = masks.detail_scores(hr, 4, TOKEN)[0]
    assert torch.allclose(got, expect, rtol=1e-5, atol=1e-4)
    assert got[:, 1].min() > 20 and got[:, 1].min() > 3 * got[:, 0].max()  # noise >> flat (+ seam)


def test_fastpath_oracle_scores_the_error_a_skipped_token_would_show():
    """error_scores(HR, approx) is the paper's score when approx = up(down(HR)), and sees noise the
    approximation keeps, which the paper's score (the HR alone) cannot."""
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 40, 56, generator=g)
    hr[..., :, :16] = 0.4
    rec = resize.up(resize.down(resize.pad_to_multiple(hr, TOKEN), 4), 4)[..., :40, :56]
    assert torch.allclose(masks.error_scores(hr, rec, TOKEN), masks.detail_scores(hr, 4, TOKEN), atol=1e-4)
    noisy = hr + 0.02 * torch.randn(hr.shape, generator=g)  # 5 levels of noise left on every token
    err = masks.error_scores(hr, noisy, TOKEN, pt=2)
    assert err.shape == (1, 3, 4) and torch.allclose(err, torch.full_like(err, 0.02 * 255), rtol=0.1)
    with pytest.raises(ValueError, match="shape"):
        masks.error_scores(hr, noisy[:, :, :32], TOKEN)


def test_scores_of_any_size_and_pt2():
    hr = torch.rand(5, 3, 37, 23)
    s = masks.detail_scores(hr, 4, TOKEN, pt=2)
    assert s.shape == masks.token_grid(5, 37, 23, TOKEN, pt=2) == (3, 3, 2)
    assert masks.detail_scores(torch.rand(1, 3, 5, 7), 2, TOKEN).shape == (1, 1, 1)  # tinier than a token


def test_oracle_mask_threshold_and_tau_zero():
    scores = torch.tensor([[[0.0, 1.0], [3.99, 4.0]]])
    assert masks.oracle_mask(scores, 0).sum() == 0  # tau = 0 skips nothing, not even d = 0
    assert masks.oracle_mask(scores, 4).tolist() == [[[True, True], [True, False]]]
    assert masks.skip_ratio(masks.oracle_mask(scores, 4)) == 0.75
    with pytest.raises(ValueError):
        masks.oracle_mask(scores, -1)


def test_agreement_statistics():
    o = torch.tensor([1, 1, 1, 0, 0, 0, 0, 1], dtype=torch.bool)
    p = torch.tensor([1, 1, 0, 1, 0, 0, 0, 0], dtype=torch.bool)
    a = masks.agreement(p, o)  # tp 2, fp 1, fn 2
    assert a["precision"] == pytest.approx(2 / 3)
    assert a["recall"] == pytest.approx(2 / 4)
    assert a["f1"] == pytest.approx(4 / 7)
    assert a["iou"] == pytest.approx(2 / 5)
    assert a["pred_skip_ratio"] == 3 / 8 and a["oracle_skip_ratio"] == 4 / 8
    none = torch.zeros(4, dtype=torch.bool)
    assert masks.agreement(none, none)["f1"] == 1.0
    assert masks.agreement(none, ~none)["f1"] == 0.0
    with pytest.raises(ValueError):
        masks.agreement(none, torch.zeros(5, dtype=torch.bool))


def test_overlay_tints_only_skipped_tokens():
    frames = np.full((2, 20, 40, 3), 200, np.uint8)
    skip = torch.zeros(2, 2, 3, dtype=torch.bool)
    skip[:, 0, 0] = True
    out = masks.overlay(frames, skip, TOKEN, grid=False)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert (out[:, :16, :16] != 200).all()  # tinted
    assert (out[:, 16:, :] == 200).all() and (out[:, :, 16:] == 200).all()


def test_flat_regions_skip_textured_regions_kept():
    hr = torch.full((1, 3, 64, 64), 0.5)
    hr[..., 32:, 32:] = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    skip = masks.oracle_mask(masks.detail_scores(hr, 4, TOKEN), tau_rmse=2.0)
    assert not skip[0, 2:, 2:].any()  # noise tokens kept
    assert skip[0, :1, :1].all() and skip.float().mean() >= 0.5
