"""The mask predictor (DESIGN section 3): a light CNN on the LR frames that predicts log1p(d).

One network serves every tau: a token is skipped iff expm1(prediction) < tau. It strides down to
the token grid (p = 16 / scale LR pixels per token), so its cost is a small fraction of the
transformer's (budget: < 3%; measured by the benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class PredictorConfig:
    scale: int = 4  # SR factor; the LR token side is p = 16 / scale
    pt: int = 1  # frames per token (scores of pt frames are max-pooled)
    channels: int = 24  # width of the conv layers
    blocks: int = 1  # 3x3 convs at token resolution (receptive field grows by 2 tokens per block)


class MaskPredictor(nn.Module):
    def __init__(self, cfg: PredictorConfig = PredictorConfig()):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        n_down = {4: 2, 2: 3}[cfg.scale]  # stride-2 convs from LR pixels to tokens (p = 4 or 8)
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, stride=2, padding=1), nn.GELU()]
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(c, c, 3, stride=2, padding=1), nn.GELU()]
        for _ in range(cfg.blocks):
            layers += [nn.Conv2d(c, c, 3, padding=1), nn.GELU()]
        layers += [nn.Conv2d(c, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """lr (T, 3, h, w) in [0, 1], h and w multiples of p, T a multiple of pt -> log1p(d) (T/pt, h/p, w/p)."""
        y = self.net(lr * 2 - 1)[:, 0]  # (T, h/p, w/p)
        if self.cfg.pt > 1:
            y = y.unflatten(0, (-1, self.cfg.pt)).amax(1)  # a token is as detailed as its busiest frame
        return y

    @torch.no_grad()
    def skip_mask(self, lr: torch.Tensor, tau_rmse: float) -> torch.Tensor:
        """(Tg, Hg, Wg) bool: True where the predicted detail score is below tau."""
        if tau_rmse <= 0:  # skips nothing: no need to run the network
            p = 16 // self.cfg.scale
            return torch.zeros((lr.shape[0] // self.cfg.pt, lr.shape[2] // p, lr.shape[3] // p), dtype=torch.bool)
        return self.forward(lr) < torch.log1p(torch.tensor(float(tau_rmse)))
