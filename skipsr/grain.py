"""Grain for skipped tokens: the detail above the LR's Nyquist that a skipped token lacks, as noise.

A skipped token shows the fast path's (or bicubic's) upsample of the LR, which is smooth where the
HR has fine grain (sensor noise, film grain, paper and wall texture). PSNR does not mind; LPIPS does:
on the nearly flat validation clips the no-skip transformer, which turns its noise input into
grain, scores LPIPS 0.016 where bicubic scores 0.080 at a higher PSNR. The
oracle's detail score d of a token is the RMS of exactly that missing part, HR - up(down(HR)), and
the predictor estimates it from the LR. So a skipped token gets noise high-passed the same way,
at RMS `strength` x d_hat: the idea of AV1's film-grain synthesis (send the smooth part, re-create
the grain from its statistics).

    tile (TILE, TILE, 3): white noise n, minus up_s(down_s(n)), scaled to unit RMS (seeded, periodic)
    amp (Tg, Hg, Wg) = strength * d_hat on skipped tokens, 0 on kept ones
    token (t, y, x), frame f of it: pixels += amp[t, y, x] * the tile's token-sized block at
        ((y + by_f) mod TILE/16, (x + bx_f) mod TILE/16)

Motion ("static", the default): the block offset is the same in every frame, so a token position
keeps its grain from frame to frame and a still texture does not flicker. "per-frame" hashes the
offset from the absolute frame index (fresh grain every frame: measured to flicker, kept for the
comparison in `analysis.choose_grain`). Either way the tile is read at absolute token positions, so
chunks, windows and spatial tiles of one video see the same grain, and a run is deterministic. Work
and memory are O(skipped tokens): kept tokens are never read or written.

The shipped models run without grain (strength 0 in their cards): on training clips ColorVideoVDP
and the flow warping error both prefer none (`analysis.choose_grain`, docs/training.md); grain
lowers LPIPS, which rewards noise, but costs JOD on the worst clip.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from skipsr import resize

MOTIONS = ("static", "per-frame")  # how grain moves over time (see above)
MAX_STRENGTH = 4.0  # grain strengths are in [0, MAX_STRENGTH] x the detail score
TILE = 256  # grain tile side in HR pixels (a multiple of every scale); its period is invisible at grain amplitudes


def check_strength(strength: float) -> float:
    """The strength as a float; ValueError (what to pass instead) outside [0, MAX_STRENGTH]."""
    if not 0.0 <= strength <= MAX_STRENGTH:
        raise ValueError(f"grain must be in [0, {MAX_STRENGTH:g}] (a multiple of the detail score), got {strength}")
    return float(strength)


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


def frame_offset(frame: int, seed: int, blocks: int) -> tuple[int, int]:
    """(by, bx) in [0, blocks) for an absolute frame index: a 32-bit integer hash (splitmix-style)."""
    h = (frame * 0x9E3779B1 + seed * 0x85EBCA77 + 0x27D4EB2F) & 0xFFFFFFFF
    for mult in (0x7FEB352D, 0x846CA68B):
        h ^= h >> 16
        h = (h * mult) & 0xFFFFFFFF
    h ^= h >> 16
    return (h & 0xFFFF) % blocks, (h >> 16) % blocks


def add_grain(canvas: torch.Tensor, amp: torch.Tensor, token: int, pt: int, origin: tuple[int, int, int],
              scale: int, seed: int = 0, chunk: int = 2048, motion: str = "static") -> torch.Tensor:
    """Add grain to the tokens of uint8 frames where `amp` > 0, in place, and return the frames.

    canvas: (T, H, W, 3) uint8 with T = Tg pt, H = Hg token, W = Wg token; amp: (Tg, Hg, Wg) grain RMS
    in 8-bit units; origin: the (t, y, x) token of canvas[0, 0, 0] in the whole video's token grid.
    """
    t, h, w, c = canvas.shape
    nb = TILE // token  # tile blocks per side
    tile = grain_tile(scale, seed).to(canvas.device).view(nb, token, nb, token * c)  # (by, row, bx, token*C)
    blocks = canvas.view(t // pt, pt, h // token, token, w // token, token * c)  # (Tg, pt, Hg, row, Wg, token*C)
    if motion not in MOTIONS:
        raise ValueError(f"grain motion must be one of {MOTIONS}, got {motion!r}")
    pos = (amp > 0).nonzero()  # (N, 3) tokens that get grain
    for f in range(pt):
        frames = [(origin[0] + i) * pt + f if motion == "per-frame" else 0 for i in range(t // pt)]
        offsets = torch.tensor([frame_offset(k, seed, nb) for k in frames], device=canvas.device)  # (Tg, 2)
        for s in range(0, pos.shape[0], chunk):
            ti, yi, xi = pos[s : s + chunk].unbind(1)
            by = (yi + origin[1] + offsets[ti, 0]) % nb
            bx = (xi + origin[2] + offsets[ti, 1]) % nb
            noise = tile[by, :, bx, :] * amp[ti, yi, xi][:, None, None]  # (n, token, token*C)
            blocks[ti, f, yi, :, xi, :] = noise.add_(blocks[ti, f, yi, :, xi, :]).round_().clamp_(0, 255).to(torch.uint8)
    return canvas
