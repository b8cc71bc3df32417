"""Frame tensors and resampling: uint8 <-> float, bicubic down/up, padding to a multiple.

Convention: on the model side a video is a float32 tensor (T, C, H, W) with values in [0, 1];
on the I/O side it is a uint8 numpy array (T, H, W, 3). `down` is antialiased bicubic (the
`down_s` of docs/design.md section 2), `up` plain bicubic (`up_s`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_float(frames: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32 in [0, 1]."""
    if frames.dtype != np.uint8 or frames.ndim != 4:
        raise ValueError(f"expected uint8 frames (T, H, W, C), got {frames.dtype} {frames.shape}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)  # (T, H, W, C)
    return x.permute(0, 3, 1, 2).float().div_(255.0)  # (T, C, H, W)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8 (rounded, clamped)."""
    x = video.detach().clamp(0, 1).mul(255.0).round_().to(torch.uint8)  # (T, C, H, W)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def down(video: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic downsampling by an integer factor. (T, C, H, W) -> (T, C, H/s, W/s).

    H and W must be multiples of `scale` (see `mod_crop` / `pad_to_multiple`).
    """
    t, c, h, w = video.shape
    if h % scale or w % scale:
        raise ValueError(f"frame size {w}x{h} is not a multiple of the scale {scale}")
    return F.interpolate(video, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)


def up(video: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling by an integer factor. (T, C, h, w) -> (T, C, h*s, w*s)."""
    t, c, h, w = video.shape
    return F.interpolate(video, size=(h * scale, w * scale), mode="bicubic", align_corners=False)


def up_u8(frames: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling of 8-bit frames in 8-bit arithmetic (several times faster than float).

    frames: (T, h, w, 3) uint8 -> (T, h*s, w*s, 3) uint8. This is the base the pipeline composes
    on (skipped tokens show it as is) and the base the model's residual is trained against.
    """
    t, h, w, c = frames.shape
    x = frames.permute(0, 3, 1, 2)  # (T, 3, h, w), channels-last memory
    y = F.interpolate(x, size=(h * scale, w * scale), mode="bicubic", align_corners=False)
    return y.permute(0, 2, 3, 1)  # (T, H, W, 3) uint8


def resize_u8(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, h, w, 3) uint8 -> (T, height, width, 3) uint8: antialiased bicubic, rounded."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # (T, 3, h, w)
    y = F.interpolate(x, size=(height, width), mode="bicubic", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def pad_frames_u8(frames: np.ndarray, multiple: int, time_multiple: int = 1) -> np.ndarray:
    """(T, h, w, 3) uint8 -> padded to multiples (reflect, edge for tiny frames; last frame repeated)."""
    t, h, w, _ = frames.shape
    ph, pw, pt = -h % multiple, -w % multiple, -t % time_multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "edge"
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)
    if pt:
        frames = np.concatenate([frames, np.repeat(frames[-1:], pt, axis=0)])
    return frames


def mod_crop(video: torch.Tensor, multiple: int) -> torch.Tensor:
    """Crop H and W down to multiples of `multiple` (bottom/right), the SR benchmarks' convention."""
    h, w = video.shape[-2:]
    return video[..., : h - h % multiple, : w - w % multiple]


def pad_to_multiple(video: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad H and W (bottom/right) to multiples of `multiple`. (T, C, H, W) -> (T, C, H', W').

    Reflect padding, falling back to edge replication where a frame is too small to reflect
    (reflect needs pad < size).
    """
    h, w = video.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return video
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(video, (0, pw, 0, ph), mode=mode)


def pad_time(video: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the frame axis to a multiple by repeating the last frame. (T, ...) -> (T', ...)."""
    pt = -video.shape[0] % multiple
    if pt == 0:
        return video
    return torch.cat([video, video[-1:].expand(pt, *video.shape[1:])], dim=0)
