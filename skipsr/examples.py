"""The shipped example clips (`examples/`): which validation source each is rendered from, and the renderer.

    python -m skipsr.data examples [NAME ...]   # re-render them from the data folder (`make data` first)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from skipsr import paths
from skipsr.data import data_root, load_manifest


@dataclass(frozen=True)
class Example:
    """A shipped example HR clip: a virtual-camera pan over a photo, or frames of a real clip."""

    source: str  # photo id or real clip id (validation sources only: no model trained on them)
    seed: int = 0  # camera seed (photos)
    frames: int = 16
    width: int = 1280  # photos: the rendered size; real clips keep theirs
    height: int = 720
    start: int = 0  # real clips: the first frame taken


EXAMPLES = {  # the app lists them in this order; the first 720p one is its default
    "bunny": Example("bigbuckbunny", start=36),  # rendered animation: fur, grass, sky, a character
    "altai": Example("plasma-workspace-wallpapers/Altai", seed=21),  # flat sky and water, low-poly graphics
    "moss": Example("plasma-workspace-wallpapers/OneStandsOut", seed=22),  # fine texture everywhere
    "grey": Example("plasma-workspace-wallpapers/Grey", seed=23),  # architecture: walls, lines, shading
    "meadow": Example("mate-backgrounds/GreenMeadow", seed=11, frames=12, width=384, height=256),
    "water": Example("plasma-workspace-wallpapers/BytheWater", seed=12, frames=12, width=384, height=256),
    "bikes": Example("bikes", frames=12),  # real footage, people (640x272)
}
EXAMPLES_DIR = paths.shipped("examples")


def make_examples(root: str | os.PathLike | None = None, out_dir: Path = EXAMPLES_DIR,
                  names: list[str] | None = None) -> list[Path]:
    """Render the shipped example HR clips from validation sources (so no model trained on them)."""
    from skipsr import resize
    from skipsr.camera import CameraConfig, make_clip
    from skipsr.video import read_video, write_video

    root = data_root(root)
    manifest = load_manifest(root)
    photos = {p["id"]: p for p in manifest["photos"]}
    clips = {c["id"]: c for c in manifest["real_clips"]}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or EXAMPLES:
        ex = EXAMPLES[name]
        item = clips.get(ex.source) or photos[ex.source]
        if item["split"] != "val":
            raise ValueError(f"example {name}: {ex.source} is a training source")
        out = out_dir / f"{name}.mp4"
        if ex.source in clips:
            video = read_video(root / item["path"], max_frames=ex.start + ex.frames)[ex.start:]
            fps = 25
        else:
            with Image.open(root / item["path"]) as im:
                cfg = CameraConfig(frames=ex.frames, height=ex.height, width=ex.width, pan_px_per_frame=(2.0, 4.0))
                video = resize.to_uint8(make_clip(im, cfg, ex.seed))
            fps = 24
        write_video(out, video, fps=fps, crf=12)
        written.append(out)
    return written
