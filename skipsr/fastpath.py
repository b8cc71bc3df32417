"""The fast path for skipped tokens: a small convolutional restore-and-upsample network on the LR.

The paper sends skipped tokens through bicubic upsampling. On realistic input (blur, noise, H.264)
bicubic keeps the noise and the blocks, so skipped regions look worse than the restored regions
around them. This network replaces bicubic on skipped tokens: bicubic(LR) plus a learned residual,
computed at LR resolution and pixel-shuffled up (ESPCN-style), small enough to cost a few percent
of the transformer (docs/design.md section 3b).

    lr (N, 3, h, w) in [0, 1] --conv3x3--> (N, C, h, w) --[conv3x3, ReLU] x blocks (+skip)-->
        --conv kxk (k = tail_kernel)--> (N, 3 s^2, h, w) --pixel_shuffle(s)--> residual (N, 3, sh, sw)
    out = bicubic(lr) + residual                                           (N, 3, sh, sw)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from skipsr import resize


@dataclass(frozen=True)
class FastPathConfig:
    scale: int = 4
    channels: int = 16  # width at LR resolution (cost ~ channels^2 x blocks per LR pixel)
    blocks: int = 3  # 3x3 conv + ReLU layers between the head and the tail
    tail_kernel: int = 3  # the tail's kernel (3 or 1): it makes 3 s^2 channels, the costliest layer at 3


class FastPath(nn.Module):
    def __init__(self, cfg: FastPathConfig = FastPathConfig()):
        super().__init__()
        self.cfg = cfg
        c, s = cfg.channels, cfg.scale
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.Sequential(*[m for _ in range(cfg.blocks) for m in (nn.Conv2d(c, c, 3, padding=1), nn.ReLU())])
        k = cfg.tail_kernel
        self.tail = nn.Conv2d(c, 3 * s * s, k, padding=k // 2)
        nn.init.zeros_(self.tail.weight)  # starts as bicubic: training learns the restoration
        nn.init.zeros_(self.tail.bias)

    def features(self, lr: torch.Tensor) -> torch.Tensor:
        """lr (N, 3, h, w) in [0, 1] -> the tail's input (N, C, h, w)."""
        x = F.relu(self.head(lr))  # (N, C, h, w)
        return x + self.body(x)

    def residual(self, lr: torch.Tensor) -> torch.Tensor:
        """lr (N, 3, h, w) in [0, 1] -> the learned residual over bicubic (N, 3, sh, sw)."""
        return F.pixel_shuffle(self.tail(self.features(lr)), self.cfg.scale)  # (N, 3, sh, sw)

    def _tail_pixel_major(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The tail's weight and bias with its output channels reordered from pixel_shuffle's
        (colour, row, column) to (row, column, colour) and scaled to 8-bit units: then its
        channels-last output, read as (h, w, s, s * 3), holds each LR pixel's s x s output pixels
        row by row, and the upsample is a strided add instead of a shuffle pass."""
        s, c, k = self.cfg.scale, self.cfg.channels, self.cfg.tail_kernel
        weight = self.tail.weight.view(3, s, s, c, k, k).permute(1, 2, 0, 3, 4, 5).reshape(3 * s * s, c, k, k)
        bias = self.tail.bias.view(3, s, s).permute(1, 2, 0).reshape(3 * s * s)
        return weight * 255.0, bias * 255.0

    def forward(self, lr: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """lr (N, 3, h, w), base (N, 3, sh, sw) its bicubic upsample, both in [0, 1] -> (N, 3, sh, sw)."""
        return base + self.residual(lr)

    @torch.no_grad()
    def upscale_u8(self, lr_u8: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """(T, h, w, 3) uint8 -> (T, sh, sw, 3) uint8: the 8-bit bicubic upsample (`base` when the
        caller has it) plus the residual. One frame at a time: a frame's activations fit in cache,
        the whole clip's do not (3x faster at 720p output on a 2-core CPU)."""
        s = self.cfg.scale
        base = resize.up_u8(lr_u8, s) if base is None else base  # (T, sh, sw, 3) uint8
        t, h, w, _ = lr_u8.shape
        weight, bias = self._tail_pixel_major()  # (3 s^2, C, k, k), (3 s^2,)
        out = torch.empty_like(base)
        for i in range(t):
            out[i].view(h, s, w, s * 3).copy_(self._frame(lr_u8[i : i + 1], base[i], weight, bias))
        return out

    def _frame(self, lr_u8: torch.Tensor, base: torch.Tensor, weight: torch.Tensor,
               bias: torch.Tensor) -> torch.Tensor:
        """One frame: lr_u8 (1, h, w, 3), base (sh, sw, 3) uint8 -> (h, s, w, s * 3) uint8, the frame's
        rows as the pixel-major tail lays them out."""
        s, (h, w) = self.cfg.scale, lr_u8.shape[1:3]
        lr = lr_u8.permute(0, 3, 1, 2).float().div_(255.0)  # (1, 3, h, w), channels-last memory
        y = F.conv2d(self.features(lr), weight, bias, padding=self.cfg.tail_kernel // 2)  # (1, 3 s^2, h, w)
        y = y.float()  # float also under bf16 autocast
        y = y.permute(0, 2, 3, 1).reshape(h, w, s, s * 3).transpose(1, 2)  # (h, s, w, s * 3): 8-bit residual
        acc = base.view(h, s, w, s * 3).float()  # (h, s, w, s * 3): the frame's rows, as the residual's
        return acc.add_(y).round_().clamp_(0, 255).to(torch.uint8)

    def compile_frames(self) -> FastPath:
        """torch.compile (inductor) the per-frame step of `upscale_u8`: the pointwise work around the
        convolutions fuses (~25% faster on this CPU, the same bytes; README "Speed"). One static shape
        per frame size. Returns self."""
        self._frame = torch.compile(self._frame, dynamic=False)
        self.frames_compiled = True
        return self
