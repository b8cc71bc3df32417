"""Degradations that make the low-resolution (LR) input from a high-resolution (HR) video.

- `bicubic`: antialiased bicubic x2 / x4 (the clean setting).
- `realistic`: a seeded real-world chain: Gaussian blur of the HR, bicubic downsampling, Gaussian
  noise, 8-bit quantisation, then H.264 compression of the LR at a given CRF.

HR frames whose size is not a multiple of the scale are mod-cropped (bottom/right) first, as
SR benchmarks do, so that LR * scale == the (cropped) HR size.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from skipsr import resize
from skipsr.video import read_yuv420_exact, write_video

SCALES = (2, 4)


def _check_scale(scale: int) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale}")


def bicubic(hr: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """Clean degradation. (T, C, H, W) in [0, 1] -> (T, C, H/s, W/s), quantised to 8 bit."""
    _check_scale(scale)
    lr = resize.down(resize.mod_crop(hr, scale), scale)
    return lr.clamp(0, 1).mul(255).round().div(255)


@dataclass(frozen=True)
class RealisticConfig:
    """Ranges of the seeded real-world chain (each value drawn uniformly per clip)."""

    blur_sigma_px: tuple[float, float] = (0.2, 1.2)  # Gaussian blur std on the HR, in HR pixels
    noise_std_8bit: tuple[float, float] = (0.0, 6.0)  # additive Gaussian noise std on the LR, 0-255 units
    crf: int = 28  # H.264 constant rate factor of the LR compression (0 = lossless, 51 = worst)


def _gaussian_blur(video: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding. (T, C, H, W) -> same."""
    if sigma <= 0:
        return video
    radius = max(1, int(round(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=video.dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    c = video.shape[1]
    h_kernel = k.view(1, 1, 1, -1).repeat(c, 1, 1, 1)  # (C, 1, 1, K)
    v_kernel = k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)  # (C, 1, K, 1)
    mode = "reflect" if radius < min(video.shape[-2:]) else "replicate"
    out = F.conv2d(F.pad(video, (radius, radius, 0, 0), mode=mode), h_kernel, groups=c)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode=mode), v_kernel, groups=c)


def h264_roundtrip(frames: np.ndarray, crf: int, fps: int = 24) -> np.ndarray:
    """Compress (T, H, W, 3) uint8 frames with H.264 (yuv420p) at `crf` and decode them back.

    Odd sizes are edge-padded to even for 4:2:0 and cropped back afterwards.
    """
    t, h, w, _ = frames.shape
    padded = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    with tempfile.TemporaryDirectory(prefix="skipsr-h264-") as tmp:
        path = Path(tmp) / "lr.mp4"
        write_video(path, padded, fps=fps, crf=crf, deterministic=True)  # seeded chain: bit-identical
        out = read_yuv420_exact(path)  # swscale's decode would darken the LR by ~1.2 levels
    return out[:, :h, :w]


def realistic_params(seed: int, config: RealisticConfig = RealisticConfig()) -> tuple[float, float, torch.Generator]:
    """Draw (blur_sigma_px, noise_std_8bit) for one clip and the generator for its noise."""
    g = torch.Generator().manual_seed(seed)
    draw = lambda lo, hi: lo + (hi - lo) * torch.rand((), generator=g).item()  # noqa: E731
    return draw(*config.blur_sigma_px), draw(*config.noise_std_8bit), g


def blur_down_noise(
    hr: torch.Tensor, scale: int, blur_sigma_px: float, noise_std_8bit: float, generator: torch.Generator
) -> np.ndarray:
    """Blur, downsample, add noise, quantise. (T, C, H, W) in [0, 1] -> (T, h, w, 3) uint8 (no compression)."""
    _check_scale(scale)
    lr = resize.down(_gaussian_blur(resize.mod_crop(hr, scale), blur_sigma_px), scale)  # (T, C, h, w)
    lr = lr + torch.randn(lr.shape, generator=generator) * (noise_std_8bit / 255.0)
    return resize.to_uint8(lr)


def realistic(
    hr: torch.Tensor, scale: int = 4, seed: int = 0, config: RealisticConfig = RealisticConfig()
) -> torch.Tensor:
    """Seeded real-world degradation. (T, C, H, W) in [0, 1] -> (T, C, H/s, W/s) in [0, 1].

    The same (hr, scale, seed, config) always gives the same LR on the CPU.
    """
    sigma, noise, g = realistic_params(seed, config)
    frames = blur_down_noise(hr, scale, sigma, noise, g)  # (T, h, w, 3) uint8
    return resize.to_float(h264_roundtrip(frames, crf=config.crf))
