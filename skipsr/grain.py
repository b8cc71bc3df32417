"""Grain for skipped tokens: the detail above the LR's Nyquist that a skipped token lacks, as noise.

A skipped token shows the fast path's (or bicubic's) upsample of the LR, which is smooth where the
HR has fine grain (sensor noise, film grain, paper and wall texture). PSNR does not mind; LPIPS does:
on the nearly flat validation clips the no-skip transformer, which turns its noise input into
grain, scores LPIPS 0.016 where bicubic scores 0.080 at a higher PSNR (checkpoints/README.md). The
oracle's detail score d of a token is the RMS of exactly that missing part, HR - up(down(HR)), and
the predictor estimates it from the LR. So a skipped token gets noise high-passed the same way,
at RMS `strength` x d_hat: the idea of AV1's film-grain synthesis (send the smooth part, re-create
the grain from its statistics).

    tile (TILE, TILE, 3): white noise n, minus up_s(down_s(n)), scaled to unit RMS (seeded, periodic)
    amp (Tg, Hg, Wg) = strength * d_hat on skipped tokens, 0 on kept ones
    frame t: canvas += bilinear(amp[t // pt]) * tile[(y + dy_t) % TILE, (x + dx_t) % TILE]

The tile is read at absolute pixel positions with an offset hashed from the absolute frame index,
so chunks, windows and spatial tiles of one video see the same grain, and a run is deterministic.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from skipsr import resize

TILE = 256  # grain tile side in HR pixels (a multiple of every scale); its period is invisible at grain amplitudes


@functools.cache
def grain_tile(scale: int, seed: int = 0) -> torch.Tensor:
    """(TILE, TILE, 3) float32: periodic white noise without its part below the LR's Nyquist, unit RMS."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randn(1, 3, TILE, TILE, generator=g)
    pad = 4 * scale  # circular margin, so the high-pass is periodic too
    wide = F.pad(n, (pad, pad, pad, pad), mode="circular")  # (1, 3, TILE + 2 pad, ...)
    high = (wide - resize.up(resize.down(wide, scale), scale))[..., pad:-pad, pad:-pad]  # (1, 3, TILE, TILE)
    high = high / high.pow(2).mean().sqrt()
    return high[0].permute(1, 2, 0).contiguous()


def frame_offset(frame: int, seed: int) -> tuple[int, int]:
    """(dy, dx) in [0, TILE) for an absolute frame index: a 32-bit integer hash (splitmix-style)."""
    h = (frame * 0x9E3779B1 + seed * 0x85EBCA77 + 0x27D4EB2F) & 0xFFFFFFFF
    for mult in (0x7FEB352D, 0x846CA68B):
        h ^= h >> 16
        h = (h * mult) & 0xFFFFFFFF
    h ^= h >> 16
    return (h & 0xFFFF) % TILE, (h >> 16) % TILE


def add_grain(canvas: torch.Tensor, amp: torch.Tensor, token: int, pt: int, origin_px: tuple[int, int, int],
              scale: int, seed: int = 0) -> torch.Tensor:
    """Add grain to uint8 frames in place and return them.

    canvas: (T, H, W, 3) uint8, H and W multiples of `token`; amp: (T/pt, H/token, W/token) grain RMS
    in 8-bit units (0 where nothing is added); origin_px: (frame, y, x) of canvas[0, 0, 0] in the
    whole video (absolute positions fix the grain).
    """
    t, h, w, _ = canvas.shape
    tile = grain_tile(scale, seed).to(canvas.device)
    f0, y0, x0 = origin_px
    rows = torch.arange(y0, y0 + h, device=canvas.device)
    cols = torch.arange(x0, x0 + w, device=canvas.device)
    for i in range(t):
        a = amp[i // pt]  # (Hg, Wg)
        if not bool((a > 0).any()):
            continue
        a_px = F.interpolate(a[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]  # (H, W)
        a_px *= (a > 0).repeat_interleave(token, 0).repeat_interleave(token, 1)  # kept tokens stay as computed
        dy, dx = frame_offset(f0 + i, seed)
        noise = tile[((rows + dy) % TILE)[:, None], ((cols + dx) % TILE)[None, :]]  # (H, W, 3)
        canvas[i] = noise.mul_(a_px[..., None]).add_(canvas[i]).round_().clamp_(0, 255)
    return canvas
