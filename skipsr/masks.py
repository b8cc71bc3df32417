"""Detail scores, oracle skip masks, mask statistics and the mask overlay (docs/design.md section 2).

Detail score of a token: d = RMSE(HR, up_s(down_s(HR))) over the token's HR pixels, all channels,
in 8-bit units (0-255). A token covers `pt x token x token` HR pixels. Oracle mask at tau: skip a
token iff d < tau (tau = 0 skips nothing). This is the paper's oracle ("paper"): it asks how much
detail the HR has above the LR's Nyquist frequency.

The fast-path oracle ("fastpath", `error_scores`) asks instead what skipping a token would lose:
d = RMSE(HR, F(LR)) where F is what a skipped token receives (the fast path's restoration of the
degraded LR). It sees the noise and blocks a skipped token would keep, which the paper's score,
computed on the clean HR alone, cannot.

Padding rules (frames of any size):
- spatially the HR is reflect-padded (bottom/right) to a multiple of the token size (edge
  replication for frames too small to reflect) before down/up sampling, so the token grid is
  (ceil(H/16), ceil(W/16));
- temporally it is padded to a multiple of `pt` by repeating the last frame;
- the RMSE of a border token is taken over its *real* pixels only: padding never counts.

All functions here are pure: tensors in, tensors out, no I/O.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from skipsr import resize

ORACLES = ("paper", "fastpath")  # the oracle's score: `detail_scores` (the paper's) or `error_scores`


def token_grid(frames: int, height: int, width: int, token: int, pt: int = 1) -> tuple[int, int, int]:
    """(T/pt, H/token, W/token) token grid of a video, each rounded up (padding rules above)."""
    return (-(-frames // pt), -(-height // token), -(-width // token))


def token_rmse(err: torch.Tensor, valid_hw: tuple[int, int], token: int, pt: int = 1) -> torch.Tensor:
    """Per-token RMSE of an error video over its valid pixels.

    err: (T', C, H', W') with T' % pt == 0 and H', W' multiples of `token`; pixels at rows >= valid_hw[0]
    or columns >= valid_hw[1] are padding and are ignored. Returns (T'/pt, H'/token, W'/token).
    """
    tp, c, hp, wp = err.shape
    valid = torch.zeros(1, 1, hp, wp, dtype=err.dtype, device=err.device)
    valid[..., : valid_hw[0], : valid_hw[1]] = 1.0
    sq = (err**2 * valid).sum(1)  # (T', H', W'), summed over channels
    sq = sq.view(tp // pt, pt, hp, wp).sum(1)  # (Tg, H', W')
    n = valid[0, 0] * (c * pt)  # (H', W') samples per pixel position
    sq_tok = F.avg_pool2d(sq[:, None], token, divisor_override=1)[:, 0]  # (Tg, Hg, Wg)
    n_tok = F.avg_pool2d(n[None, None], token, divisor_override=1)[0, 0]  # (Hg, Wg)
    return (sq_tok / n_tok.clamp(min=1)).sqrt()


def detail_scores(hr: torch.Tensor, scale: int, token: int, pt: int = 1) -> torch.Tensor:
    """Detail score d per token in 8-bit RMSE units. hr: (T, C, H, W) in [0, 1] -> (T/pt, H/token, W/token).
    scale and token (HR pixels per token side) come from the model's config (`ModelConfig`)."""
    if hr.ndim != 4:
        raise ValueError(f"expected a video tensor (T, C, H, W), got shape {tuple(hr.shape)}")
    if token % scale:
        raise ValueError(f"token size {token} must be a multiple of the scale {scale}")
    t, c, h, w = hr.shape
    x = resize.pad_time(resize.pad_to_multiple(hr.float(), token), pt)  # (T', C, H', W')
    residual = x - resize.up(resize.down(x, scale), scale)  # (T', C, H', W')
    return token_rmse(residual * 255.0, (h, w), token=token, pt=pt)


def error_scores(hr: torch.Tensor, approx: torch.Tensor, token: int, pt: int = 1) -> torch.Tensor:
    """Fast-path oracle score per token: RMSE(HR, approx) in 8-bit units, where `approx` is what a
    skipped token would show. hr, approx: (T, C, H, W) in [0, 1] -> (T/pt, H/token, W/token)."""
    if hr.shape != approx.shape:
        raise ValueError(f"HR {tuple(hr.shape)} and its approximation {tuple(approx.shape)} differ in shape")
    t, c, h, w = hr.shape
    err = resize.pad_time(resize.pad_to_multiple(hr.float() - approx.float(), token), pt)  # (T', C, H', W')
    return token_rmse(err * 255.0, (h, w), token=token, pt=pt)


def oracle_mask(scores: torch.Tensor, tau_rmse: float) -> torch.Tensor:
    """Skip mask: True where the token is skipped (d < tau). Same shape as `scores`."""
    if tau_rmse < 0:
        raise ValueError(f"tau must be >= 0 (8-bit RMSE units), got {tau_rmse}")
    return scores < tau_rmse


def skip_ratio(skip: torch.Tensor) -> float:
    """Share of skipped tokens in a boolean skip mask."""
    return float(skip.float().mean()) if skip.numel() else 0.0


def agreement(pred_skip: torch.Tensor, oracle_skip: torch.Tensor) -> dict[str, float]:
    """Precision, recall, F1 and IoU of the predicted skip set against the oracle skip set.

    Positives are *skipped* tokens. Where a ratio's denominator is zero it is 1.0 if both sets are
    empty (perfect agreement on "skip nothing") and 0.0 otherwise.
    """
    if pred_skip.shape != oracle_skip.shape:
        raise ValueError(f"mask shapes differ: {tuple(pred_skip.shape)} vs {tuple(oracle_skip.shape)}")
    p, o = pred_skip.bool(), oracle_skip.bool()
    tp = int((p & o).sum())
    fp = int((p & ~o).sum())
    fn = int((~p & o).sum())
    both_empty = tp + fp + fn == 0

    def ratio(num: int, den: int) -> float:
        return num / den if den else (1.0 if both_empty else 0.0)

    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "iou": ratio(tp, tp + fp + fn),
        "pred_skip_ratio": skip_ratio(p),
        "oracle_skip_ratio": skip_ratio(o),
    }


def mask_to_pixels(skip: torch.Tensor, frames: int, height: int, width: int, token: int, pt: int = 1) -> torch.Tensor:
    """Token mask (..., Tg, Hg, Wg) -> pixel mask (..., T, H, W), cropped to the real video size."""
    m = skip.repeat_interleave(pt, -3).repeat_interleave(token, -2).repeat_interleave(token, -1)
    return m[..., :frames, :height, :width]


def overlay(
    frames: np.ndarray,
    skip: torch.Tensor,
    token: int,
    pt: int = 1,
    color: tuple[int, int, int] = (20, 40, 160),
    alpha: float = 0.6,
    grid: bool = True,
) -> np.ndarray:
    """Tint the skipped tokens of (T, H, W, 3) uint8 frames; kept tokens keep their colours.

    Skipped regions are blended towards `color` (dark blue, as the paper shows skipped regions
    dark); with `grid` the token borders of kept tokens are drawn faintly. Returns uint8 frames.
    """
    t, h, w, _ = frames.shape
    m = mask_to_pixels(skip.bool().cpu(), t, h, w, token, pt).numpy()[..., None]  # (T, H, W, 1)
    out = frames.astype(np.float32)
    tint = np.asarray(color, np.float32)
    out = np.where(m, (1 - alpha) * out + alpha * tint, out)
    if grid:
        lines = np.zeros((h, w, 1), bool)
        lines[::token] = True
        lines[:, ::token] = True
        out = np.where(lines & ~m, 0.75 * out + 0.25 * 255.0, out)
    return out.round().clip(0, 255).astype(np.uint8)
