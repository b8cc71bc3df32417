"""What a comparison shows, as frames and files (docs/design.md section 10): the LR enlarged, a
split-screen of two outputs, the |a - b| heatmap, zoomed crops, and the parallel mp4 encode.

Every function takes and returns uint8 (T, H, W, 3) RGB frames (or one (H, W, 3) frame); nothing
here runs a model.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

from skipsr.video import VideoWriter, read_video

ENCODE_CRF = 16  # near-transparent at 720p (PSNR-Y ~43 dB against the frames), ~0.5 s per 16 frames
ENCODE_PRESET = "superfast"  # measured at 720p x 16 frames: ultrafast 0.49 s / 1.3 MB, superfast 0.53 s / 0.6 MB


def nearest_up(lr: np.ndarray, scale: int) -> np.ndarray:
    """(T, h, w, 3) -> (T, h*scale, w*scale, 3): each LR pixel a scale x scale block (what the input holds)."""
    return lr.repeat(scale, axis=1).repeat(scale, axis=2)


def split_screen(left: np.ndarray, right: np.ndarray, at: float = 0.5) -> np.ndarray:
    """Frames whose left part (up to `at` of the width) is `left`'s and the rest `right`'s, with a
    white 2-pixel divider: a comparison slider frozen at `at`, whose two sides play in sync."""
    if left.shape != right.shape:
        raise ValueError(f"split screen of two videos of different shapes {left.shape} and {right.shape}")
    x = int(round(np.clip(at, 0, 1) * left.shape[2]))
    out = right.copy()
    out[:, :, :x] = left[:, :, :x]
    out[:, :, max(x - 1, 0): x + 1] = 255
    return out


def heatmap(a: np.ndarray, b: np.ndarray, gain: float = 8.0) -> np.ndarray:
    """|a - b| (mean over channels, x gain, clipped) through the inferno colour map -> uint8 RGB."""
    from matplotlib import colormaps

    diff = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(-1) * gain / 255.0  # (..., H, W)
    return (colormaps["inferno"](np.clip(diff, 0, 1))[..., :3] * 255).astype(np.uint8)


def zoom(frame: np.ndarray, cx: float, cy: float, size: int = 128, factor: int = 3) -> np.ndarray:
    """A size x size crop of one (H, W, 3) frame centred at (cx, cy) (fractions of the width and
    height; clamped inside the frame), enlarged `factor` times by pixel repetition."""
    h, w = frame.shape[:2]
    size = min(size, h, w)
    x0 = int(np.clip(round(cx * w - size / 2), 0, w - size))
    y0 = int(np.clip(round(cy * h - size / 2), 0, h - size))
    crop = frame[y0: y0 + size, x0: x0 + size]
    return crop.repeat(factor, axis=0).repeat(factor, axis=1)


def encode(videos: dict[str, np.ndarray], out_dir: str | Path, fps: Fraction | float, workers: int = 2) -> dict[str, str]:
    """Write each named video to out_dir/<name>.mp4 (H.264, ENCODE_CRF), `workers` at a time (the
    encoder releases the GIL). Returns {name: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(item):
        name, frames = item
        path = out_dir / f"{name}.mp4"
        with VideoWriter(path, fps, crf=ENCODE_CRF, preset=ENCODE_PRESET) as w:
            w.write(frames)
        return name, str(path)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        return dict(pool.map(one, videos.items()))


def frame_of(path: str | Path, index: int) -> np.ndarray:
    """Frame `index` (clamped to the last) of an mp4, decoded: (H, W, 3) uint8."""
    frames = read_video(path, max_frames=max(int(index), 0) + 1)
    return frames[min(max(int(index), 0), len(frames) - 1)]
