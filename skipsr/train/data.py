"""Training samples: random (T, H, W) crops of HR clips, degraded on the fly.

Sources (from `python -m skipsr.data fetch` + `clips`): the virtual-camera clips of the split and
the real clips of the split; for training, optionally procedural pattern clips (`pattern_clips`:
gratings near the LR's Nyquist, text, thin lines, weaves) rendered through the same virtual camera
from the training seeds, which the validation seeds never meet. A sample is an HR crop plus its LR (clean bicubic or the seeded
real-world chain, half each by default), the 8-bit bicubic base of the LR, and the oracle detail
scores of its tokens. Everything is drawn from one `numpy` generator: a seed fixes the stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from skipsr import data as datamod
from skipsr import degrade, masks, resize
from skipsr.model import ModelConfig
from skipsr.video import read_video

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleConfig:
    frames: int = 4  # T frames per crop
    size: int = 128  # HR crop side (multiple of token_px)
    scale: int = ModelConfig.scale
    token_px: int = ModelConfig.token_px  # HR pixels per token side (the oracle scores' grid)
    realistic_prob: float = 0.5  # share of real-world degradations (the rest: clean bicubic)
    crf_range: tuple[int, int] = (18, 32)  # H.264 CRF of the real-world chain
    zoom_range: tuple[float, float] = (1.0, 1.0)  # HR rescale before cropping (< 1: zoom out, denser detail)
    jitter: float = 0.0  # brightness / contrast jitter amplitude (0 = none)


def load_clips(root: str | Path | None, split: str, max_clips: int | None = None) -> list[np.ndarray]:
    """All HR clips of a split as (T, H, W, 3) uint8 arrays (virtual-camera clips + real clips)."""
    root = datamod.data_root(root)
    index = root / "clips" / "index.json"
    paths = []
    if index.exists():
        import json

        paths += [root / c["path"] for c in json.loads(index.read_text()) if c["split"] == split]
    paths += [root / c["path"] for c in datamod.load_manifest(root)["real_clips"] if c["split"] == split]
    if max_clips:
        paths = paths[:max_clips]
    if not paths:
        raise FileNotFoundError(f"no {split} clips under {root}: run `make data` first")
    clips = [read_video(p, max_frames=64) for p in paths]
    log.info("loaded %d %s clips (%.0f MB)", len(clips), split, sum(c.nbytes for c in clips) / 2**20)
    return clips


def pattern_clips(n: int, frames: int = 16, kinds: tuple[str, ...] | None = None) -> list[np.ndarray]:
    """n procedural clips (T, 256, 256, 3) uint8, the kinds in turn (default: all of patterns.KINDS),
    seeds from patterns.TRAINING_SEEDS."""
    from skipsr.camera import CameraConfig, make_clip
    from skipsr.evaluation import patterns

    kinds = tuple(kinds or patterns.KINDS)
    if n > len(patterns.TRAINING_SEEDS):
        raise ValueError(f"at most {len(patterns.TRAINING_SEEDS)} pattern clips, got {n}")
    out = []
    for i, seed in enumerate(patterns.TRAINING_SEEDS[:n]):
        kind = kinds[i % len(kinds)]
        out.append(resize.to_uint8(make_clip(patterns.pattern_image(kind, seed), CameraConfig(frames=frames), seed)))
    log.info("rendered %d pattern clips (%s)", n, ", ".join(kinds))
    return out


def load_train_val(root: str | Path | None, max_clips: int | None = None,
                   patterns: int = 0, pattern_kinds: tuple[str, ...] | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The train clips (plus `patterns` pattern clips of `pattern_kinds`) and the validation clips
    (FileNotFoundError, saying what to run, if there are none)."""
    return (load_clips(root, "train", max_clips) + pattern_clips(patterns, kinds=pattern_kinds),
            load_clips(root, "val", max_clips))


@dataclass
class Sample:
    hr: torch.Tensor  # (T, 3, H, W) float [0, 1]
    lr: torch.Tensor  # (T, 3, h, w) float [0, 1], 8-bit values
    base: torch.Tensor  # (T, 3, H, W) float [0, 1]: 8-bit bicubic upsample of the LR
    scores: torch.Tensor  # (Tg, Hg, Wg) oracle detail scores (8-bit RMSE units)


def make_sample(hr_u8: np.ndarray, cfg: SampleConfig, rng: np.random.Generator) -> Sample:
    """Degrade one HR crop (T, H, W, 3) uint8 into a training sample."""
    hr = resize.to_float(hr_u8)  # (T, 3, H, W)
    if rng.random() < cfg.realistic_prob:
        rc = degrade.RealisticConfig(crf=int(rng.integers(cfg.crf_range[0], cfg.crf_range[1] + 1)))
        lr = degrade.realistic(hr, cfg.scale, seed=int(rng.integers(2**31)), config=rc)
    else:
        lr = degrade.bicubic(hr, cfg.scale)
    lr_u8 = torch.from_numpy(resize.to_uint8(lr))  # (T, h, w, 3)
    base = resize.up_u8(lr_u8, cfg.scale).permute(0, 3, 1, 2).float() / 255.0  # (T, 3, H, W)
    return Sample(hr=hr, lr=lr, base=base, scores=masks.detail_scores(hr, cfg.scale, cfg.token_px))


def random_crop(clips: list[np.ndarray], cfg: SampleConfig, rng: np.random.Generator) -> np.ndarray:
    """A random (T, size, size) crop of a random clip, randomly flipped in space and time, optionally
    rescaled (antialiased, `zoom_range`), rotated by 90 degrees and brightness/contrast-jittered."""
    clip = clips[int(rng.integers(len(clips)))]
    t0 = int(rng.integers(0, clip.shape[0] - cfg.frames + 1))
    clip = clip[t0 : t0 + cfg.frames]
    zoom = rng.uniform(*cfg.zoom_range)
    if zoom != 1.0:
        x = resize.to_float(np.ascontiguousarray(clip))
        size_hw = (max(cfg.size // 2, round(x.shape[2] * zoom)), max(cfg.size // 2, round(x.shape[3] * zoom)))
        clip = resize.to_uint8(torch.nn.functional.interpolate(x, size=size_hw, mode="bicubic", antialias=True))
    if cfg.jitter:
        gain, bias = 1 + rng.uniform(-cfg.jitter, cfg.jitter), 255 * rng.uniform(-cfg.jitter, cfg.jitter) / 2
        clip = np.clip(clip.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    t, h, w, _ = clip.shape
    size = min(cfg.size, h - h % cfg.token_px, w - w % cfg.token_px)
    y0, x0 = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    crop = clip[:, y0 : y0 + size, x0 : x0 + size]
    if size < cfg.size:  # a small real clip: pad to the batch size by reflection
        crop = np.pad(crop, ((0, 0), (0, cfg.size - size), (0, cfg.size - size), (0, 0)), mode="reflect")
    if rng.random() < 0.5:
        crop = crop[:, :, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1]
    if cfg.zoom_range != (1.0, 1.0) and rng.random() < 0.5:  # with the augmented setting only
        crop = np.rot90(crop, axes=(1, 2))
    return np.ascontiguousarray(crop)


def batch(clips: list[np.ndarray], n: int, cfg: SampleConfig, rng: np.random.Generator) -> list[Sample]:
    return [make_sample(random_crop(clips, cfg, rng), cfg, rng) for _ in range(n)]


def stack(samples: list[Sample]) -> dict[str, torch.Tensor]:
    """(B, ...) tensors of a list of samples."""
    return {k: torch.stack([getattr(s, k) for s in samples]) for k in ("hr", "lr", "base", "scores")}


@torch.no_grad()
def add_fastpath(b: dict[str, torch.Tensor], fastpath, oracle: str = "paper", token_px: int = ModelConfig.token_px,
                 pt: int = 1) -> dict[str, torch.Tensor]:
    """Add b["fast"] (B, T, 3, H, W): what a skipped token shows at inference, the fast path's 8-bit
    output (as `FastPath.upscale_u8`); with oracle "fastpath" the scores become the HR's error against
    it (masks.error_scores) instead of the paper's detail scores. Returns the same dict."""
    if oracle not in masks.ORACLES:
        raise ValueError(f"oracle must be one of {masks.ORACLES}, got {oracle!r}")
    bsz, t = b["lr"].shape[:2]
    lr, base = b["lr"].flatten(0, 1), b["base"].flatten(0, 1)  # (BT, 3, h, w), (BT, 3, H, W)
    fast = base if fastpath is None else (base + fastpath.residual(lr)).mul(255).round().clamp(0, 255) / 255
    b["fast"] = fast.unflatten(0, (bsz, t))  # (B, T, 3, H, W)
    if oracle == "fastpath":
        b["scores"] = torch.stack([masks.error_scores(h, f, token_px, pt) for h, f in zip(b["hr"], b["fast"])])
    return b
