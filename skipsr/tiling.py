"""Spatial tiling with overlap for frames too large to process at once (docs/design.md section 7).

Tiles are placed on the LR frame, aligned to the token size so every tile's token grid is a
sub-grid of the frame's; neighbouring tiles overlap by `overlap` LR pixels and their HR outputs are
cross-faded with linear ramps over the overlap.
"""

from __future__ import annotations

import torch


def tile_starts(size: int, tile: int, overlap: int, align: int) -> list[int]:
    """Start offsets covering [0, size) with tiles of `tile` (multiples of `align`) overlapping by >= `overlap`."""
    if size <= tile:
        return [0]
    stride = max(align, (tile - overlap) // align * align)
    starts = list(range(0, size - tile, stride))
    last = (size - tile + align - 1) // align * align  # last tile flush with the end, aligned
    return starts + [min(last, size - 1)] if last > starts[-1] else starts


def tiles(h: int, w: int, tile: int, overlap: int, align: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) LR boxes covering an h x w frame."""
    return [(y, min(y + tile, h), x, min(x + tile, w))
            for y in tile_starts(h, tile, overlap, align) for x in tile_starts(w, tile, overlap, align)]


def ramp(n: int, lo: int, hi: int) -> torch.Tensor:
    """(n,) weights: linear ramps of length lo at the start and hi at the end, 1 in between."""
    wgt = torch.ones(n)
    if lo:
        wgt[:lo] = torch.arange(1, lo + 1) / (lo + 1)
    if hi:
        wgt[n - hi:] = torch.minimum(wgt[n - hi:], torch.arange(hi, 0, -1) / (hi + 1))
    return wgt


def blend_weights(box, full_hw, overlap_hr: int, scale: int) -> torch.Tensor:
    """(H_tile, W_tile) HR weights for a tile: ramps only on sides that border another tile."""
    y0, y1, x0, x1 = box
    h, w = full_hw
    wy = ramp((y1 - y0) * scale, overlap_hr if y0 > 0 else 0, overlap_hr if y1 < h else 0)
    wx = ramp((x1 - x0) * scale, overlap_hr if x0 > 0 else 0, overlap_hr if x1 < w else 0)
    return wy[:, None] * wx[None, :]
