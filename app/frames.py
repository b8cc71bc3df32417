"""The frame views of an answer: the slider's two frames, the |SkipSR - no-skip| heatmap, zoomed crops of
every view and the split-screen video of two picked views, written as files Gradio serves."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np

from app import views

RUNS = Path(tempfile.gettempdir()) / f"skipsr-app-runs-{os.getpid()}"  # each run's videos; removed at exit
VIEW_LABELS = {"skip": "SkipSR", "bicubic": "bicubic", "noskip": "no-skip", "hr": "ground truth", "lr": "LR input"}
LABEL_VIEWS = {v: k for k, v in VIEW_LABELS.items()}
DEFAULT_VIEW = (0, "SkipSR", "bicubic", 0.5, 0.5)  # (frame, left, right, zoom x, zoom y) an answer opens with
# The slider's whole frames are JPEG at quality 95 without chroma subsampling: 42.7 dB PSNR against
# the frame (which the H.264 video it is decoded from already holds at ~43 dB), 1/4 of the PNG's
# bytes and 1/5 of its decoding time in the browser. The heatmap and the zoomed crops stay exact (PNG).
# Written here rather than handed to Gradio as arrays, which it would save as WebP at quality 80.
VIEW_FORMAT = {"left": "jpg", "right": "jpg"}
VIEW_SAVE = {"jpg": {"quality": 95, "subsampling": 0}, "png": {"compress_level": 1}}
KEEP_VIEW_SETS = 32  # views picked after an answer (images, re-rendered split screens): Gradio copies what it serves


def fresh_folder(prefix: str, keep: int) -> Path:
    """A new folder RUNS/<prefix>...; all but the newest keep - 1 earlier ones of that prefix are removed."""
    RUNS.mkdir(parents=True, exist_ok=True)
    old = sorted((p for p in RUNS.glob(f"{prefix}*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for p in old[: max(len(old) - (keep - 1), 0)]:
        shutil.rmtree(p, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=RUNS))


atexit.register(shutil.rmtree, RUNS, ignore_errors=True)


@functools.lru_cache(maxsize=32)
def _frame(path: str, index: int) -> np.ndarray:
    return views.frame_of(path, index)


def frame_views(state: dict, index: int, left: str, right: str, zx: float, zy: float):
    """(slider pair, |SkipSR - no-skip| heatmap, zoomed crops of every view) of one frame, as arrays."""
    vids, i = state["videos"], int(np.clip(index, 0, state["frames"] - 1))

    def pick(label: str) -> np.ndarray:  # a view the clip lacks (an upload's ground truth) shows SkipSR
        return _frame(vids.get(LABEL_VIEWS.get(label), vids["skip"]), i)

    heat = views.heatmap(_frame(vids["skip"], i), _frame(vids["noskip"], i))
    crops = [(views.zoom(_frame(vids[v], i), zx, zy), label) for v, label in VIEW_LABELS.items() if v in vids]
    return (pick(left), pick(right)), heat, crops


def view_files(state: dict, *view, folder: Path) -> dict[str, str]:
    """frame_views as image files in `folder`: {"left", "right", "heat", "crop-<view>"}."""
    from PIL import Image

    (a, b), heat, crops = frame_views(state, *view)
    images = {"left": a, "right": b, "heat": heat, **{f"crop-{LABEL_VIEWS[label]}": crop for crop, label in crops}}
    files = {}
    for name, img in images.items():
        fmt = VIEW_FORMAT.get(name, "png")
        files[name] = str(folder / f"view-{name}.{fmt}")
        Image.fromarray(img).save(files[name], **VIEW_SAVE[fmt])
    return files


def new_view_set() -> Path:
    """A fresh folder for one set of picked views (the newest KEEP_VIEW_SETS are kept)."""
    return fresh_folder("views-", KEEP_VIEW_SETS)


def shown_views(files: dict[str, str]):
    """(slider pair, heatmap, crops with their labels) of view_files' images, as the components take them."""
    crops = [(files[f"crop-{v}"], label) for v, label in VIEW_LABELS.items() if f"crop-{v}" in files]
    return (files["left"], files["right"]), files["heat"], crops


def picked_views(state: dict | None, index: int, left: str, right: str, zx: float, zy: float):
    """The views of a picked frame, side pair and zoom centre (the controls' handler)."""
    if not state:
        return None, None, None
    return shown_views(view_files(state, index, left, right, zx, zy, folder=new_view_set()))


def first_views(ans: dict, left: str, right: str, zx: float, zy: float):
    """(slider pair, heatmap, crops) of frame 0: the cached images when the view is the default."""
    files = ans.get("views0")
    if files and (0, left, right, zx, zy) == DEFAULT_VIEW:
        return shown_views(files)
    return picked_views({"videos": ans["videos"], "frames": ans["frames"]}, 0, left, right, zx, zy)


def split_video(state: dict | None, left: str, right: str):
    """The split-screen video of the two picked views (left | right), playing in sync."""
    if not state:
        return None
    vids = state["videos"]
    a, b = LABEL_VIEWS.get(left, "skip"), LABEL_VIEWS.get(right, "bicubic")
    if a not in vids or b not in vids:
        raise gr.Error(f"no {left if a not in vids else right} view for this clip (an upload has no ground truth)")
    if (a, b) == ("skip", "bicubic"):
        return vids["split"]
    from skipsr.video import probe, read_video

    frames = views.split_screen(read_video(vids[a]), read_video(vids[b]))
    return views.encode({f"split-{a}-{b}": frames}, new_view_set(), probe(vids[a]).fps)[f"split-{a}-{b}"]

