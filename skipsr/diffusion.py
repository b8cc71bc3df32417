"""Rectified flow (docs/design.md section 5): loss, timestep schedules and samplers as pure functions.

Rectified flow (Liu et al. 2022; Esser et al. 2024, "Scaling Rectified Flow Transformers"):
    x_t = (1 - t) x0 + t eps,    t = 1 is pure noise.
The network predicts x0 (here: the HR residual over bicubic); the velocity follows from it:
    v = (x_t - x0_hat) / t.
Samplers share the k-diffusion-style signature `sample_x(denoise, x, ts, callback=None)` where
`denoise(x_t, t) -> x0_hat` closes over the condition and `ts` runs from 1 down to 0.
"""

from __future__ import annotations

from typing import Callable

import torch

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]


def add_noise(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t eps. t broadcasts against x0 (e.g. shape (N, 1, 1, 1))."""
    return (1 - t) * x0 + t * eps


def sample_t(n: int, generator: torch.Generator | None = None, shift: float = 3.0) -> torch.Tensor:
    """Training timesteps: logit-normal, then shifted towards noise (SD3's resolution shift). -> (n,)."""
    u = torch.sigmoid(torch.randn(n, generator=generator))
    return shift_t(u, shift)


def shift_t(u: torch.Tensor, shift: float) -> torch.Tensor:
    """Timestep shift t = s u / (1 + (s - 1) u): spends more steps at high noise for s > 1."""
    return shift * u / (1 + (shift - 1) * u)


def schedule(steps: int, shift: float = 3.0) -> torch.Tensor:
    """Sampling times from 1 to 0, `steps` + 1 values, shifted. steps = 1 gives [1, 0] (one step)."""
    if not 1 <= steps <= 50:
        raise ValueError(f"steps must be in 1..50, got {steps}")
    return shift_t(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), shift).float()


def flow_matching_loss(x0_hat: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the x0 prediction over the kept tokens (the only ones computed).

    Unweighted x0 loss rather than the velocity loss (which weights it by 1/t^2): it keeps the
    t = 1 end, which the one-step mode uses, as well trained as the low-noise end.
    """
    return ((x0_hat - x0) ** 2).mean()


@torch.no_grad()
def sample_euler(denoise: Denoiser, x: torch.Tensor, ts: torch.Tensor,
                 callback: Callable[[int, float, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Euler sampler for the rectified-flow ODE, x0-parameterised.

    x: noise at ts[0] (= 1). Each step: x0_hat = denoise(x, t); v = (x - x0_hat) / t;
    x <- x + (t_next - t) v. With ts = [1, 0] this is the one-step model x0_hat = denoise(eps, 1).
    """
    for i in range(len(ts) - 1):
        t, t_next = float(ts[i]), float(ts[i + 1])
        x0_hat = denoise(x, t)
        x = x0_hat if t_next == 0 else x + (t_next - t) * (x - x0_hat) / t
        if callback is not None:
            callback(i, t, x0_hat)
    return x


def token_noise(keep: torch.Tensor, seed: int, origin: tuple[int, int, int], full_width_tokens: int | None,
                cfg) -> torch.Tensor:
    """Gaussian noise for the kept tokens, fixed by (seed, absolute token position).

    keep: (Tg, Hg, Wg) bool of a chunk/tile whose first token sits at `origin` (t, y, x) of the whole
    video's grid. Each token row (t, y) has its own generator stream over the full frame width, so a
    token's noise does not depend on which other tokens are skipped, on temporal chunking or on
    spatial tiling: skip vs no-skip isolates the skip error. Rows without kept tokens cost nothing.
    Returns (N, 3pt, 16, 16) in the row-major order of `keep.nonzero()`.
    """
    tg, hg, wg = keep.shape
    width = full_width_tokens or origin[2] + wg
    per_token = 3 * cfg.pt * cfg.token_px**2
    rows = keep.any(dim=2).nonzero().tolist()  # (t, y) rows holding kept tokens
    g = torch.Generator()
    out = []
    for t, y in rows:
        g.manual_seed((seed * 1_000_003 + (origin[0] + t)) * 100_003 + origin[1] + y)
        row = torch.randn(width, per_token, generator=g)[origin[2] : origin[2] + wg]  # (Wg, per_token)
        out.append(row[keep[t, y]])
    if not out:
        return torch.zeros((0, 3 * cfg.pt, cfg.token_px, cfg.token_px))
    return torch.cat(out).view(-1, 3 * cfg.pt, cfg.token_px, cfg.token_px)
