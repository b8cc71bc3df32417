"""Tiny random models for the tests (shared helpers, like media.py; nothing is downloaded)."""

import os

import pytest
import torch

from skipsr.evaluation import metric_weights

from skipsr.model import ModelConfig, SkipSRNet

TINY = ModelConfig(dim=32, heads=2, depth=2, stem_channels=8, window=(2, 4, 4))


def tiny_model(cfg=TINY, seed=0) -> SkipSRNet:
    """A tiny model whose zero-initialised layers are randomised, so every path carries signal."""
    torch.manual_seed(seed)
    m = SkipSRNet(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return m


def need_weights():
    """The converted weights are made by `make test` (make metric-weights). Without them the tests
    that need them skip with the reason, except in CI, where a missing calibration is a failure."""
    reason = metric_weights.missing_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
