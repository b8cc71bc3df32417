"""Synthetic test clips with a known share of flat tokens (for the benchmark and tests).

A clip is a smooth colour gradient (bicubic reproduces it: detail score ~ 0) with textured
patches taken from a real photo on a chosen share of the token cells, grouped in blobs so that few
flat tokens border texture. The textured content pans slowly so frames differ.
"""

from __future__ import annotations

import numpy as np
from PIL import Image



def texture_source(seed: int = 0) -> np.ndarray:
    """A real photo (shipped with scikit-image) as (H, W, 3) uint8; random noise if unavailable."""
    from skipsr.data import default_photo

    try:
        with Image.open(default_photo()) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, FileNotFoundError):
        return np.random.default_rng(seed).integers(0, 256, (512, 512, 3), dtype=np.uint8)


def flat_textured_clip(frames: int, height: int, width: int, token: int, flat_share: float = 0.6,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """-> (clip (T, H, W, 3) uint8, textured cells (Hg, Wg) bool). ~flat_share of the token cells
    (token x token HR pixels: the model's `token_px`) are flat."""
    rng = np.random.default_rng(seed)
    hg, wg = -(-height // token), -(-width // token)
    # blobs: threshold a smooth random field at the quantile that gives the wanted share
    coarse = rng.standard_normal((max(2, hg // 4), max(2, wg // 4)))
    field = np.asarray(Image.fromarray(coarse.astype(np.float32)).resize((wg, hg), Image.BICUBIC))
    textured = field > np.quantile(field, flat_share)  # (Hg, Wg)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    tex = texture_source(seed)
    tex = np.asarray(Image.fromarray(tex).resize((width + 4 * frames, height), Image.LANCZOS))
    cell = np.kron(textured, np.ones((token, token), bool))[:height, :width, None]  # (H, W, 1)
    clip = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        grad = np.stack([60 + 120 * xx / width + 2 * t, 80 + 90 * yy / height, 150 - 50 * xx / width + t], -1)
        moving = tex[:, 4 * t : 4 * t + width].astype(np.float32)
        clip[t] = np.where(cell, moving, grad).clip(0, 255).astype(np.uint8)
    return clip, textured
