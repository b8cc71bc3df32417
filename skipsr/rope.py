"""3D rotary position embedding on integer (t, y, x) token positions of the FULL grid.

The head dimension is split into three even parts (time, height, width); each part rotates its
channel pairs by `position * frequency`. Because positions are the tokens' original grid
coordinates, a kept token keeps its embedding when its neighbours are skipped ("mask-aware RoPE"),
and attention scores depend only on relative offsets within a window.
"""

from __future__ import annotations

import torch


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Split head_dim into (t, y, x) parts, each even, spatial axes getting the remainder."""
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
    pairs = head_dim // 2
    t = max(1, pairs // 4)
    y = (pairs - t) // 2
    return 2 * t, 2 * y, 2 * (pairs - t - y)


def rope_angles(pos: torch.Tensor, head_dim: int, theta: float = 100.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables for positions pos (N, 3) -> two (N, head_dim / 2) float tensors."""
    parts = []
    for a, d in enumerate(axis_dims(head_dim)):
        freqs = theta ** (-torch.arange(0, d, 2, dtype=torch.float64, device=pos.device) / d)  # (d/2,)
        parts.append(pos[:, a, None].double() * freqs)  # (N, d/2)
    ang = torch.cat(parts, dim=1)  # (N, head_dim/2)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2i, 2i+1). x: (N, heads, head_dim); cos, sin: (N, head_dim/2)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (N, heads, hd/2) each
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1).flatten(-2)  # (N, heads, hd)
