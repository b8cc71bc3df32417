"""Small generated media files for the tests (nothing is downloaded)."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern(t: int, h: int, w: int, seed: int = 0, texture: bool = True) -> np.ndarray:
    """(T, H, W, 3) uint8 frames: a moving gradient plus a textured square (not compressible to flat)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.empty((t, h, w, 3), np.uint8)
    tex = rng.integers(0, 256, size=(h, w, 3))
    for i in range(t):
        base = (xx * 255 / max(w - 1, 1) + 3 * i) % 256
        f = np.stack([base, yy * 255 / max(h - 1, 1), np.full_like(base, 128)], -1)
        y0, x0 = (2 * i) % max(h // 2, 1), (3 * i) % max(w // 2, 1)
        if texture:
            f[y0 : y0 + h // 3, x0 : x0 + w // 3] = tex[: h // 3, : w // 3]
        frames[i] = f.astype(np.uint8)
    return frames


def write_raw(path: Path, frames: np.ndarray, fps=Fraction(24), codec="libx264", pix_fmt="yuv420p",
              fmt: str | None = None, pts: list[int] | None = None, time_base: Fraction | None = None,
              audio_s: float = 0.0, options: dict | None = None, in_format: str = "rgb24",
              codec_options: dict | None = None) -> Path:
    """Write frames with full control of codec / pixel format / timestamps / audio (for edge cases)."""
    c = av.open(str(path), "w", format=fmt, options=options or {})
    s = c.add_stream(codec, rate=fps)
    s.height, s.width = frames.shape[1:3]
    s.pix_fmt = pix_fmt
    s.options = codec_options or {}
    if time_base is not None:
        s.codec_context.time_base = time_base
    a = None
    if audio_s:
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
    for i, img in enumerate(frames):
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=in_format)
        f.pts = pts[i] if pts is not None else i
        c.mux(s.encode(f))
    c.mux(s.encode(None))
    if a is not None:
        n = int(audio_s * 48000)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)
        for k in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(tone[None, k : k + 1024], format="flt", layout="mono")
            af.sample_rate = 48000
            af.pts = k
            c.mux(a.encode(af))
        c.mux(a.encode(None))
    c.close()
    return path


def set_mp4_rotation(path: Path, degrees_cw: int) -> None:
    """Patch the display matrix in the video track's tkhd box (how phones store rotation)."""
    data = bytearray(path.read_bytes())
    i = data.find(b"tkhd")
    assert i > 0
    version = data[i + 4]
    matrix_at = i + 4 + 4 + (32 if version == 1 else 20) + 8 + 8
    one, minus = 0x00010000, 0xFFFF0000
    a, b, c, d = {90: (0, one, minus, 0), 180: (minus, 0, 0, minus), 270: (0, minus, one, 0)}[degrees_cw]
    data[matrix_at : matrix_at + 36] = struct.pack(">9I", a, b, 0, c, d, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
