"""Procedural images of the content a 4x upscaler finds hardest (validation and training data).

The virtual camera (camera.py) turns each into a clip as it does a photo. Every image is a pure
function of (kind, seed); the fonts come from matplotlib (DejaVu, a registry package).

- "stripes": sinusoidal and square-wave gratings at several angles, with periods of 7-16 HR pixels
  after the camera's scaling: around the LR's Nyquist period at 4x (8 HR px), where bicubic turns
  stripes into moire.
- "text": lines of text at several sizes and colours on a paper-like background.
- "lines": thin lines (1-3 px) at random angles, a fine grid and concentric rings: wires, fences.
- "weave": two or three crossed gratings multiplied (fabric, mesh, tiles), periods 6-20 HR pixels;
  a training-only kind (the validation set has none of it), so the model does not learn only the
  validation generators.

Seeds: the validation set keeps VALIDATION_SEEDS; training draws from TRAINING_SEEDS (disjoint).
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

KINDS = ("stripes", "text", "lines", "weave")
VALIDATION_SEEDS = range(1000, 2000)
TRAINING_SEEDS = range(0, 1000)
SIZE = 640  # image side in pixels (the camera pre-scales its short side to 1.8-2.6 x 256)
WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly box jackdaws near fjords "
         "SkipSR video super resolution 0123456789 pack my box with five dozen liquor jugs").split()


def _smooth_colour(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float in [0, 1]: a slowly varying colour field (two random colours blended)."""
    a, b = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, 2 * np.pi)
    w = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) * rng.uniform(0.3, 1.0))
    return a * w[..., None] + b * (1 - w[..., None])


def stripes(seed: int, size: int = SIZE) -> Image.Image:
    """Gratings in 2-4 regions (split by a random line), each its own angle, period and profile."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.zeros((size, size, 3))
    region = np.zeros((size, size), int)
    for k in range(1, rng.integers(2, 5)):  # random half-planes label the regions
        nx, ny = rng.normal(size=2)
        region += ((xx - size / 2) * nx + (yy - size / 2) * ny > rng.uniform(-0.3, 0.3) * size).astype(int) * k
    for r in np.unique(region):
        angle, period = rng.uniform(0, np.pi), rng.uniform(9.0, 16.0)
        phase = 2 * np.pi * ((np.cos(angle) * xx + np.sin(angle) * yy) / period)
        wave = 0.5 + 0.5 * np.sin(phase)
        if rng.random() < 0.5:
            wave = (wave > 0.5).astype(np.float64)  # square wave: harmonics above Nyquist too
        lo, hi = _smooth_colour(rng, size), _smooth_colour(rng, size)
        contrast = rng.uniform(0.4, 1.0)
        m = region == r
        out[m] = (lo * (1 - contrast * wave[..., None]) + hi * contrast * wave[..., None])[m]
    return Image.fromarray((out.clip(0, 1) * 255).round().astype(np.uint8))


@functools.cache
def _font_path(bold: bool) -> str:
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return str(__import__("pathlib").Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name)


def text(seed: int, size: int = SIZE) -> Image.Image:
    """Lines of words at 9-28 px on a lightly textured paper tone."""
    rng = np.random.default_rng(seed)
    paper = (rng.uniform(0.8, 1.0, 3) * 255)[None, None] + rng.normal(0, 3, (size, size, 1))
    im = Image.fromarray(paper.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    y = int(rng.integers(0, 8))
    while y < size:
        px = int(rng.choice([9, 11, 13, 16, 20, 28]))
        font = ImageFont.truetype(_font_path(bool(rng.random() < 0.3)), px)
        ink = tuple(int(v) for v in rng.integers(0, 110, 3))
        line = " ".join(rng.choice(WORDS, 14))
        draw.text((int(rng.integers(-40, 8)), y), line, fill=ink, font=font)
        y += int(px * rng.uniform(1.2, 1.7))
    return im


def lines(seed: int, size: int = SIZE) -> Image.Image:
    """Thin straight lines, a fine grid patch and concentric rings on a smooth background."""
    rng = np.random.default_rng(seed)
    im = Image.fromarray((_smooth_colour(rng, size) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    g0, step = int(rng.integers(0, size // 2)), int(rng.integers(6, 12))  # grid patch
    ink = tuple(int(v) for v in rng.integers(0, 256, 3))
    for k in range(0, size // 2, step):
        draw.line([(g0 + k, g0), (g0 + k, g0 + size // 2)], fill=ink, width=1)
        draw.line([(g0, g0 + k), (g0 + size // 2, g0 + k)], fill=ink, width=1)
    cx, cy = rng.integers(0, size, 2)
    for r in range(4, size // 3, int(rng.integers(5, 10))):  # rings
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=ink, width=1)
    for _ in range(60):  # lines
        x0, y0, x1, y1 = (int(v) for v in rng.integers(-size // 4, size + size // 4, 4))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(1, 4)))
    return im


def weave(seed: int, size: int = SIZE) -> Image.Image:
    """Two or three crossed gratings multiplied, each its own angle and period, on a smooth colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    pattern = np.ones((size, size))
    base_angle = rng.uniform(0, np.pi)
    for k in range(int(rng.integers(2, 4))):
        angle = base_angle + k * np.pi / 2 + rng.normal(0, 0.15)
        period = rng.uniform(6.0, 20.0)
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period)
        pattern *= (wave > rng.uniform(0.3, 0.7)) * 0.7 + 0.3 if rng.random() < 0.5 else 0.4 + 0.6 * wave
    lo, hi = _smooth_colour(rng, size), _smooth_colour(rng, size)
    out = lo + (hi - lo) * pattern[..., None]
    return Image.fromarray((out.clip(0, 1) * 255).round().astype(np.uint8))


GENERATORS = {"stripes": stripes, "text": text, "lines": lines, "weave": weave}


def pattern_image(kind: str, seed: int, size: int = SIZE) -> Image.Image:
    """The procedural image `kind` (one of KINDS) for `seed`, RGB."""
    if kind not in GENERATORS:
        raise ValueError(f"pattern kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return GENERATORS[kind](seed, size).convert("RGB")
