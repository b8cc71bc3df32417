"""The mask predictor (docs/design.md section 3): a light CNN on the LR frames that predicts log1p(d).

One network serves every tau: a token is skipped iff expm1(prediction) < tau. It strides down to
the token grid (p = 16 / scale LR pixels per token), so its cost is a small fraction of the
transformer's (budget: < 3%; measured by the benchmark).

Prior: natural images look alike across scales, so the detail the HR has above the LR's Nyquist
frequency (the oracle score) follows the detail the LR has above *its* half-Nyquist. That LR
self-detail score s (the oracle's own formula applied to the LR at scale 2, per token) enters the
network twice: as an input channel at token resolution, and as the output's starting point, so
the convs learn a correction of log1p(s) (noise, compression, texture classes) rather than the
score from scratch. Untrained (`--predictor prior`), s alone predicts the skip set about as well as the
trained correction does (`skipsr evaluate --predictor prior` measures it; docs/training.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from skipsr import masks
from skipsr.model import ModelConfig

SELF_SCALE = 2  # the LR's self-detail: RMSE(LR, up2(down2(LR))) per token


@dataclass(frozen=True)
class PredictorConfig:
    scale: int = 4  # SR factor; the LR token side is p = token_px / scale
    token_px: int = ModelConfig.token_px  # HR pixels per token side: the SR model's
    pt: int = 1  # frames per token (scores of pt frames are max-pooled)
    channels: int = 32  # width of the conv layers
    blocks: int = 3  # 3x3 convs at token resolution (receptive field grows by 2 tokens per block)


class MaskPredictor(nn.Module):
    def __init__(self, cfg: PredictorConfig = PredictorConfig()):
        super().__init__()
        self.cfg = cfg
        self.p = cfg.token_px // cfg.scale  # LR pixels per token side
        c = cfg.channels
        n_down = {4: 2, 2: 3}[cfg.scale]  # stride-2 convs from LR pixels to tokens (p = 4 or 8)
        down: list[nn.Module] = [nn.Conv2d(3, c, 3, stride=2, padding=1), nn.GELU()]
        for _ in range(n_down - 1):
            down += [nn.Conv2d(c, c, 3, stride=2, padding=1), nn.GELU()]
        self.down = nn.Sequential(*down)
        trunk: list[nn.Module] = [nn.Conv2d(c + 1, c, 1), nn.GELU()]  # + the self-detail channel
        for _ in range(cfg.blocks):
            trunk += [nn.Conv2d(c, c, 3, padding=1), nn.GELU()]
        self.trunk = nn.Sequential(*trunk)
        self.out = nn.Conv2d(c, 1, 1)
        nn.init.zeros_(self.out.weight)  # starts as log1p(s): the convs learn the correction
        nn.init.zeros_(self.out.bias)

    def self_detail(self, lr: torch.Tensor) -> torch.Tensor:
        """log1p of the LR's own detail score per token. lr (T, 3, h, w) -> (T, h/p, w/p)."""
        return torch.log1p(masks.detail_scores(lr, SELF_SCALE, token=self.p))

    def _pool_time(self, y: torch.Tensor) -> torch.Tensor:
        """(T, h/p, w/p) -> (T/pt, h/p, w/p): a token is as detailed as its busiest frame."""
        return y.unflatten(0, (-1, self.cfg.pt)).amax(1) if self.cfg.pt > 1 else y

    def with_prior(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(prediction, prior) from one computation of the self-detail score; the prior is the prediction
        without the convs' correction, log1p(s). lr (T, 3, h, w) -> each (T/pt, h/p, w/p)."""
        s = self.self_detail(lr)[:, None]  # (T, 1, h/p, w/p)
        h = self.trunk(torch.cat([self.down(lr * 2 - 1), s], 1))  # (T, c, h/p, w/p)
        return self._pool_time((self.out(h) + s)[:, 0]), self._pool_time(s[:, 0])

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """lr (T, 3, h, w) in [0, 1], h and w multiples of p, T a multiple of pt -> log1p(d) (T/pt, h/p, w/p)."""
        return self.with_prior(lr)[0]

    @torch.no_grad()
    def skip_mask(self, lr: torch.Tensor, tau_rmse: float) -> torch.Tensor:
        """(Tg, Hg, Wg) bool: True where the predicted detail score is below tau."""
        return self.skip_and_detail(lr, tau_rmse)[0]

    @torch.no_grad()
    def skip_and_detail(self, lr: torch.Tensor, tau_rmse: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(skip mask, predicted detail score d_hat in 8-bit RMSE units), each (Tg, Hg, Wg), from one run."""
        grid = (lr.shape[0] // self.cfg.pt, lr.shape[2] // self.p, lr.shape[3] // self.p)
        if tau_rmse <= 0:  # skips nothing: no need to run the network
            return torch.zeros(grid, dtype=torch.bool), torch.zeros(grid)
        y = self.forward(lr)  # (Tg, Hg, Wg) log1p(d_hat)
        return y < torch.log1p(torch.tensor(float(tau_rmse))), torch.expm1(y)
