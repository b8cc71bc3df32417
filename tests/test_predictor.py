"""The mask predictor: its self-detail prior, shapes, and the skip masks it gives."""

import numpy as np
import torch

from media import pattern
from skipsr import checkpoint, degrade, masks, resize
from skipsr.model import ModelConfig
from skipsr.predictor import MaskPredictor, PredictorConfig


def lr_and_scores(hr_u8: np.ndarray):
    hr = resize.to_float(hr_u8)
    return resize.to_float(resize.to_uint8(degrade.bicubic(hr, 4))), masks.detail_scores(hr, 4, ModelConfig.token_px)


def test_untrained_predictor_is_the_self_detail_prior():
    lr, scores = lr_and_scores(pattern(2, 96, 128, seed=3))
    model = MaskPredictor().eval()
    with torch.no_grad():
        y, prior = model.with_prior(lr)
    assert y.shape == scores.shape == (2, 6, 8)
    expected = torch.log1p(masks.detail_scores(lr, 2, token=4))  # the oracle's formula on the LR at scale 2
    assert torch.allclose(y, expected) and torch.allclose(prior, expected) and torch.equal(model(lr), y)
    # the prior alone separates the textured square from the smooth gradient as the oracle does
    agree = masks.agreement(model.skip_mask(lr, 3.0), masks.oracle_mask(scores, 3.0))
    assert agree["f1"] >= 0.9 and 0.2 < agree["oracle_skip_ratio"] < 0.95


def test_pt_frames_are_max_pooled_and_tau_zero_skips_nothing():
    lr, _ = lr_and_scores(pattern(4, 64, 64, seed=1))
    model = MaskPredictor(PredictorConfig(pt=2)).eval()
    with torch.no_grad():
        per_frame = MaskPredictor().eval().with_prior(lr)[1]
        assert torch.equal(model.with_prior(lr)[1], per_frame.unflatten(0, (2, 2)).amax(1))
    assert model(lr).shape == (2, 4, 4)
    none = model.skip_mask(lr, 0.0)
    assert none.shape == (2, 4, 4) and not none.any()


def test_predictor_prior_by_name_is_the_prior_alone():
    model, card = checkpoint.load_default_predictor(checkpoint.PRIOR)
    assert card["id"] == "self-detail-prior" and card.get("weights_sha256_16") is None
    lr, _ = lr_and_scores(pattern(2, 64, 64, seed=2))
    with torch.no_grad():
        pred, prior = model.with_prior(lr)
    assert torch.equal(pred, prior)


