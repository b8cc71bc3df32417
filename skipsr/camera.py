"""A seeded virtual camera that turns a still photo into a video clip (docs/design.md section 6).

The camera pans, zooms and rotates slightly over the photo along a path whose speed varies
(accelerations, near-stops). Frames are resampled with bicubic interpolation at a sampling ratio
near 1 photo pixel per output pixel, after an antialiased pre-scale of the photo, so HR frames stay
sharp. Everything is a pure function of (photo, config, seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


@dataclass(frozen=True)
class CameraConfig:
    frames: int = 32  # clip length
    height: int = 256  # output frame height (HR pixels)
    width: int = 256  # output frame width (HR pixels)
    photo_scale: tuple[float, float] = (1.8, 2.6)  # photo short side after pre-scale, in output short sides
    px_per_out_px: tuple[float, float] = (0.8, 1.25)  # photo pixels per output pixel (zoom range)
    max_rotation_deg: float = 5.0  # |camera roll| bound
    pan_px_per_frame: tuple[float, float] = (0.0, 5.0)  # mean pan speed, in output pixels per frame


@dataclass(frozen=True)
class CameraPath:
    """Per-frame camera state, in pre-scaled photo pixel units."""

    cx: np.ndarray  # (T,) view centre x
    cy: np.ndarray  # (T,) view centre y
    px_per_out_px: np.ndarray  # (T,) zoom: photo pixels per output pixel
    angle_rad: np.ndarray  # (T,) roll


def _progress(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Monotone progress in [0, 1] over the clip with a smoothly varying speed (may nearly stop)."""
    raw = rng.lognormal(0.0, 0.8, size=frames + 4)
    speed = np.convolve(raw, np.ones(5) / 5, mode="valid")[:frames]  # (T,) smoothed, > 0
    if rng.random() < 0.3:  # a near-stop somewhere in the clip
        a = rng.integers(0, frames)
        speed[a : a + frames // 4] *= 0.05
    p = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    return p / max(p[-1], 1e-8)


def sample_path(photo_hw: tuple[int, int], config: CameraConfig, rng: np.random.Generator) -> CameraPath:
    """Draw a camera path over a (pre-scaled) photo of size photo_hw."""
    hp, wp = photo_hw
    t = config.frames
    p = _progress(rng, t)
    z0, z1 = rng.uniform(*config.px_per_out_px, size=2)
    a0, a1 = np.deg2rad(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg, size=2))
    zoom = z0 + (z1 - z0) * p
    angle = a0 + (a1 - a0) * p
    # Keep the rotated view inside the photo: its half diagonal at the widest zoom.
    r = 0.5 * math.hypot(config.height, config.width) * max(z0, z1)
    lo_x, hi_x = min(r, wp / 2), max(wp - r, wp / 2)
    lo_y, hi_y = min(r, hp / 2), max(hp - r, hp / 2)
    pan = rng.uniform(*config.pan_px_per_frame) * t * float(np.mean(zoom))
    theta = rng.uniform(0, 2 * math.pi)
    dx, dy = pan * math.cos(theta), pan * math.sin(theta)
    sx = rng.uniform(lo_x + max(0, -dx), max(lo_x + max(0, -dx), hi_x - max(0, dx)))
    sy = rng.uniform(lo_y + max(0, -dy), max(lo_y + max(0, -dy), hi_y - max(0, dy)))
    cx = np.clip(sx + dx * p, lo_x, hi_x)
    cy = np.clip(sy + dy * p, lo_y, hi_y)
    return CameraPath(cx=cx, cy=cy, px_per_out_px=zoom, angle_rad=angle)


def prescale(photo: Image.Image, config: CameraConfig, rng: np.random.Generator, upscale: bool = False) -> torch.Tensor:
    """Antialiased (Lanczos) resize of the photo so the camera samples it near 1:1. -> (3, Hp, Wp) in [0, 1].

    A photo smaller than the target is kept as is (the camera then magnifies and mirrors at the
    borders) unless `upscale`, which enlarges it (softer frames, but no mirrored borders).
    """
    photo = photo.convert("RGB")
    short_out = min(config.height, config.width)
    target_short = short_out * rng.uniform(*config.photo_scale)
    s = target_short / min(photo.size)
    if not upscale:
        s = min(1.0, s)
    size = (max(1, round(photo.width * s)), max(1, round(photo.height * s)))
    photo = photo.resize(size, Image.LANCZOS) if s != 1 else photo
    return torch.from_numpy(np.asarray(photo, dtype=np.float32) / 255.0).permute(2, 0, 1)  # (3, Hp, Wp)


def render(photo: torch.Tensor, path: CameraPath, height: int, width: int) -> torch.Tensor:
    """Render the views of a camera path. photo (3, Hp, Wp) -> video (T, 3, H, W) in [0, 1]."""
    _, hp, wp = photo.shape
    ys = torch.arange(height, dtype=torch.float64) + 0.5 - height / 2  # (H,) output offsets
    xs = torch.arange(width, dtype=torch.float64) + 0.5 - width / 2  # (W,)
    yo, xo = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
    grids = []
    for cx, cy, z, a in zip(path.cx, path.cy, path.px_per_out_px, path.angle_rad):
        c, s = math.cos(a), math.sin(a)
        x = cx + z * (c * xo - s * yo)  # (H, W) photo pixel coordinates
        y = cy + z * (s * xo + c * yo)
        grids.append(torch.stack([2 * x / wp - 1, 2 * y / hp - 1], dim=-1))  # (H, W, 2) normalised
    grid = torch.stack(grids).float()  # (T, H, W, 2)
    src = photo[None].expand(len(grids), -1, -1, -1)  # (T, 3, Hp, Wp)
    out = F.grid_sample(src, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
    return out.clamp(0, 1)  # (T, 3, H, W)


def make_clip(photo: Image.Image, config: CameraConfig, seed: int) -> torch.Tensor:
    """Photo -> seeded virtual-camera clip (T, 3, H, W) in [0, 1]."""
    rng = np.random.default_rng(seed)
    src = prescale(photo, config, rng)
    path = sample_path(tuple(src.shape[-2:]), config, rng)
    return render(src, path, config.height, config.width)
