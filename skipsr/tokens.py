"""Token bookkeeping: which tokens are kept, where they sit, and moving pixels in and out of them.

A token covers `pt` frames x `16 x 16` HR pixels, i.e. `pt x p x p` LR pixels with p = 16 / scale.
Kept tokens are addressed by (b, t, y, x): the clip b of a batch and the integer (t, y, x) on the
FULL token grid. Positions never change when other tokens are skipped (they feed RoPE and the
window assignment).

All gathers and scatters cost O(kept tokens), never O(all tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TokenSet:
    """The kept tokens of one chunk. Build it with `TokenSet.from_keep`."""

    batch: int  # B clips
    grid: tuple[int, int, int]  # (Tg, Hg, Wg) full token grid of each clip
    pos: torch.Tensor  # (N, 4) long: (b, t, y, x) of each kept token, row-major order

    @staticmethod
    def from_keep(keep: torch.Tensor) -> "TokenSet":
        """keep: (B, Tg, Hg, Wg) or (Tg, Hg, Wg) bool, True = the token goes through the transformer."""
        if keep.ndim == 3:
            keep = keep[None]
        if keep.ndim != 4 or keep.dtype != torch.bool:
            raise ValueError(f"keep must be a (B, Tg, Hg, Wg) bool tensor, got {keep.dtype} {tuple(keep.shape)}")
        return TokenSet(batch=keep.shape[0], grid=tuple(keep.shape[1:]), pos=keep.nonzero())  # (N, 4)

    @staticmethod
    def full(grid: tuple[int, int, int], batch: int = 1) -> "TokenSet":
        return TokenSet.from_keep(torch.ones((batch, *grid), dtype=torch.bool))

    @property
    def n(self) -> int:
        return int(self.pos.shape[0])

    @property
    def n_total(self) -> int:
        return self.batch * self.grid[0] * self.grid[1] * self.grid[2]

    @property
    def keep(self) -> torch.Tensor:
        """(B, Tg, Hg, Wg) bool mask of kept tokens."""
        m = torch.zeros((self.batch, *self.grid), dtype=torch.bool)
        m[tuple(self.pos.T)] = True
        return m


def _pixel_index(pos: torch.Tensor, patch: int, size: int, pt: int):
    """Advanced-index tensors selecting each token's (pt, size, size) pixel block. pos: (N, 4).

    In a frame padded by `halo` on each side, the block of a token with its halo starts at the
    token's unpadded origin, so the same formula serves halo and no halo.
    """
    dev = pos.device
    r = torch.arange(size, device=dev)
    b = pos[:, 0, None, None, None]  # (N, 1, 1, 1) clip index
    f = pos[:, 1, None] * pt + torch.arange(pt, device=dev)  # (N, pt) frame index
    ys = pos[:, 2, None] * patch + r  # (N, size)
    xs = pos[:, 3, None] * patch + r  # (N, size)
    return b, f[:, :, None, None], ys[:, None, :, None], xs[:, None, None, :]


def _blocks_cl(video: torch.Tensor, patch: int, pt: int) -> torch.Tensor:
    """A view of channels-last video (B, T, H, W, C) as token blocks (B, Tg, pt, Hg, p, Wg, p*C).

    Indexing it with (b, t, y, x) tensors moves whole rows of p*C values per token, instead of the
    per-pixel index arithmetic of `_pixel_index` (3-4x faster for uint8 video)."""
    b, t, h, w, c = video.shape
    return video.view(b, t // pt, pt, h // patch, patch, w // patch, patch * c)


def add_residual_u8(canvas: torch.Tensor, source: torch.Tensor, residual: torch.Tensor, tokens: TokenSet,
                    patch: int, pt: int = 1, chunk: int = 2048) -> torch.Tensor:
    """canvas[kept] = uint8(round(source[kept] + 255 * residual)), clamped to [0, 255], in place.

    canvas, source: (B, T, H, W, 3) uint8 (may be the same tensor); residual: (N, pt*3*p*p) float in
    the model's token layout (pt, 3, p, p). Runs `chunk` tokens at a time so each pass stays in cache.
    """
    blocks_in, blocks_out = _blocks_cl(source, patch, pt), _blocks_cl(canvas, patch, pt)
    for s in range(0, tokens.n, chunk):
        bi, ti, yi, xi = tokens.pos[s : s + chunk].unbind(1)
        base = blocks_in[bi, ti, :, yi, :, xi, :]  # (n, pt, p, p*3) uint8
        res = residual[s : s + chunk].view(-1, pt, 3, patch, patch).permute(0, 1, 3, 4, 2)  # (n, pt, p, p, 3)
        res = res.reshape(base.shape).float().mul_(255.0).add_(base)  # float, the same sum as base + 255 res
        blocks_out[bi, ti, :, yi, :, xi, :] = res.round_().clamp_(0, 255).to(torch.uint8)
    return canvas


def gather(video: torch.Tensor, tokens: TokenSet, patch: int, pt: int = 1, halo: int = 0) -> torch.Tensor:
    """Pixel blocks of the kept tokens, with `halo` extra pixels around each.

    video: (B, T, C, H, W) with T = Tg*pt, H = Hg*patch, W = Wg*patch. Borders are reflect-padded
    (edge replication for tiny frames). Returns (N, pt*C, patch + 2*halo, patch + 2*halo).
    """
    bsz, t, c, h, w = video.shape
    if halo:
        mode = "reflect" if halo < min(h, w) else "replicate"
        video = F.pad(video.flatten(0, 1), (halo, halo, halo, halo), mode=mode).unflatten(0, (bsz, t))
    size = patch + 2 * halo
    bi, fi, yi, xi = _pixel_index(tokens.pos, patch, size, pt)
    blocks = video.permute(0, 1, 3, 4, 2)[bi, fi, yi, xi]  # (N, pt, size, size, C)
    return blocks.permute(0, 1, 4, 2, 3).reshape(tokens.n, pt * c, size, size)


def scatter_add(canvas: torch.Tensor, values: torch.Tensor, tokens: TokenSet, patch: int, pt: int = 1) -> torch.Tensor:
    """Add per-token pixel blocks into a video in place. canvas: (B, T, C, H, W); values: (N, pt*C, patch, patch)."""
    c = canvas.shape[2]
    bi, fi, yi, xi = _pixel_index(tokens.pos, patch, patch, pt)
    v = values.reshape(tokens.n, pt, c, patch, patch).permute(0, 1, 3, 4, 2)  # (N, pt, p, p, C)
    view = canvas.permute(0, 1, 3, 4, 2)  # (B, T, H, W, C) view of the same storage
    view.index_put_((bi, fi, yi, xi), v, accumulate=True)
    return canvas
