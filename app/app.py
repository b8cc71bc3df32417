"""SkipSR Studio: SkipSR vs no-skip side by side, every view, skip masks, speed-quality curves
(docs/design.md section 10).

    skipsr app                   # http://127.0.0.1:7860 (also `python -m app`; a Space runs space.py)

Handlers are thin: a comparison is `app.compare.steps` (videos after the first timed round,
speed after the last, metrics at the end), shown through `app.present`; the default settings of
every example are answered from `app.cache` (precomputed in the background at start). Frame views
(slider, heatmap, zoom) are decoded from the answer's videos, so cached and fresh answers show alike.

Environment: SKIPSR_RESULTS (the rows the curves read; default: the shipped results/),
SKIPSR_APP_RESULTS (the app's own rows; bounded), SKIPSR_APP_CACHE (cached answers),
SKIPSR_APP_SHIPPED (the answers shipped in the repository; default app/answers),
SKIPSR_APP_PRECOMPUTE = all | default | none (which default answers to compute at start).
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr
import numpy as np
import pandas as pd

from analysis import plots
from app import cache, present
from skipsr import checkpoint, paths
from skipsr.evaluation import metric_weights, metrics, store
from app import compare, views
from skipsr.data import EXAMPLES, EXAMPLES_DIR
from skipsr.pipeline import SkipSRPipeline
from skipsr.video import VideoError

log = logging.getLogger("skipsr.app")

CURVE_RESULTS = Path(os.environ.get("SKIPSR_RESULTS", paths.shipped("results")))
APP_RESULTS = Path(os.environ.get("SKIPSR_APP_RESULTS", paths.writable("app-results")))
RUNS = Path(tempfile.gettempdir()) / f"skipsr-app-runs-{os.getpid()}"  # each run's videos; removed at exit
KEEP_RUNS = 4  # run folders kept (older ones are deleted when a run starts)
MAX_UPLOAD_MB = 50
DEFAULT_FRAMES = 16
EXAMPLE_NAMES = [n for n in EXAMPLES if (EXAMPLES_DIR / f"{n}.mp4").exists()]
VIEW_LABELS = {"skip": "SkipSR", "bicubic": "bicubic", "noskip": "no-skip", "hr": "ground truth", "lr": "LR input"}
LABEL_VIEWS = {v: k for k, v in VIEW_LABELS.items()}

MODEL_NAMES = [name for name, path in checkpoint.MODELS.items() if path.exists()] or [None]
APP_MODEL = checkpoint.APP_MODEL if checkpoint.APP_MODEL in MODEL_NAMES else MODEL_NAMES[0]
_PIPES: dict = {}


def pipeline(name: str | None) -> SkipSRPipeline:
    """The pipeline of a shipped model (loaded once), with its companions and the card's defaults."""
    if name not in _PIPES:
        _PIPES[name] = SkipSRPipeline.from_pretrained(name)
    return _PIPES[name]


def model_defaults(name: str | None) -> tuple[int, float]:
    """(sampling steps, tau) a model is meant to run at: its card's defaults."""
    pipe = pipeline(name)
    return pipe.default_steps, pipe.default_tau


PIPE = pipeline(APP_MODEL)
MODEL_CARD, PREDICTOR_CARD = PIPE.cards.model.raw, PIPE.cards.predictor.raw
APP_MODEL_ID = MODEL_CARD.get("id")
DEFAULT_STEPS, DEFAULT_TAU = model_defaults(APP_MODEL)


ANSWER_VERSION = 2  # what an answer holds (2: JOD and its verdict): a cached answer of another version is not served


def cache_key(pipe: SkipSRPipeline, example: str, degradation: str, tau: float, steps: int, mask: str, frames: int,
              seed: int) -> str | None:
    """The cache key of an example at the model's default settings; None for any other settings."""
    if (float(tau), int(steps), mask, int(frames), int(seed)) != (pipe.default_tau, pipe.default_steps, "predicted",
                                                                  DEFAULT_FRAMES, 0):
        return None
    cards = [pipe.cards.model.raw, pipe.cards.predictor.raw, pipe.cards.fastpath.raw]
    return cache.key({"answer": ANSWER_VERSION, "weights": [c.get("weights_sha256_16", c.get("id")) for c in cards],
                      "clip": store.file_hash(EXAMPLES_DIR / f"{example}.mp4"), "degradation": degradation,
                      "tau": float(tau), "steps": int(steps), "mask": mask, "frames": int(frames), "seed": int(seed),
                      "grain": pipe.grain, "grain_motion": pipe.grain_motion})  # card settings that change the output


def fresh_folder(prefix: str, keep: int) -> Path:
    """A new folder RUNS/<prefix>...; all but the newest keep - 1 earlier ones of that prefix are removed."""
    RUNS.mkdir(parents=True, exist_ok=True)
    old = sorted((p for p in RUNS.glob(f"{prefix}*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for p in old[: max(len(old) - (keep - 1), 0)]:
        shutil.rmtree(p, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=RUNS))


def new_run_dir() -> Path:
    """A fresh folder for one run's videos (the newest KEEP_RUNS are kept)."""
    return fresh_folder("run-", KEEP_RUNS)


atexit.register(shutil.rmtree, RUNS, ignore_errors=True)


def answers(example: str | None, degradation: str, upload: str | None, fit: str, tau: float, steps: int, mask: str,
            frames: int, seed: int, model_name: str | None = None, cache_unreliable: bool = False):
    """Yield the answer (app.present) as it grows: videos, then speed, then metrics; a cached answer
    at once. Bad input raises ValueError / VideoError with a message for the visitor. An answer whose
    speed figure is unreliable (a busy machine) is shown but not cached, so the next click measures
    again, unless `cache_unreliable` (the precompute's last try)."""
    if model_name is not None and model_name not in MODEL_NAMES:
        raise ValueError(f"unknown model {model_name!r}: pick one of {', '.join(map(str, MODEL_NAMES))}")
    pipe = pipeline(model_name or APP_MODEL)
    key = None
    if upload:
        source = compare.upload_source(upload, int(frames), fit)
    elif example:
        if example not in EXAMPLE_NAMES:
            raise ValueError(f"unknown example {example!r}: pick one of {', '.join(EXAMPLE_NAMES)}")
        if degradation not in ("bicubic", "realistic"):
            raise ValueError(f"degradation must be 'bicubic' (clean) or 'realistic', got {degradation!r}")
        key = cache_key(pipe, example, degradation, tau, steps, mask, frames, seed)
        hit = cache.get(key) if key else None
        if hit is not None:
            yield {**hit, "cached": True}
            return
        source = compare.example_source(EXAMPLES_DIR / f"{example}.mp4", pipe, degradation, int(frames), int(seed))
    else:
        raise ValueError("pick an example clip or upload a low-resolution video")
    with cache.COMPUTE:
        hit = cache.get(key) if key else None  # the precompute may have finished it while we waited
        if hit is not None:
            yield {**hit, "cached": True}
            return
        for cmp in compare.steps(pipe, new_run_dir(), source, tau=tau, mask=mask, steps=int(steps), seed=int(seed),
                                 results=APP_RESULTS):
            ans = present.answer(cmp)
            if cmp.stage == "done" and key and (cmp.speed.reliable or cache_unreliable):
                ans["views0"] = view_files({"videos": ans["videos"], "frames": ans["frames"]}, *DEFAULT_VIEW,
                                           folder=Path(ans["videos"]["skip"]).parent)
                ans = cache.put(key, ans)
            yield ans


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


DEFAULT_VIEW = (0, "SkipSR", "bicubic", 0.5, 0.5)  # (frame, left, right, zoom x, zoom y) an answer opens with
# The slider's whole frames are JPEG at quality 95 without chroma subsampling: 42.7 dB PSNR against
# the frame (which the H.264 video it is decoded from already holds at ~43 dB), 1/4 of the PNG's
# bytes and 1/5 of its decoding time in the browser. The heatmap and the zoomed crops stay exact (PNG).
# Written here rather than handed to Gradio as arrays, which it would save as WebP at quality 80.
VIEW_FORMAT = {"left": "jpg", "right": "jpg"}
VIEW_SAVE = {"jpg": {"quality": 95, "subsampling": 0}, "png": {"compress_level": 1}}
KEEP_VIEW_SETS = 32  # views picked after an answer (images, re-rendered split screens): Gradio copies what it serves


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


def curve_highlight(ans: dict) -> dict:
    """The run's point on the Curves tab (the keys analysis.plots marks): tau, skip ratio, speed-up,
    seconds, the skip output's quality and its cost against no-skip."""
    s = ans["summary"]
    t_total = next((r["SkipSR (s)"] for r in ans["timings"] if r["stage"] == "total"), None)
    verdict = s.get("verdict") or {}
    return {"tau": s["tau"], "skip_ratio": s["skip_ratio"], "speedup": s["speedup_e2e"], "t_total_s": t_total,
            "t_per_frame_s": t_total / max(s["frames"], 1) if t_total is not None else None, **s["skip"],
            "jod_drop": verdict.get("jod_drop"), "lpips_rise": verdict.get("lpips_rise"),
            "psnr_y_drop_db": verdict.get("psnr_y_drop_db")}


def run_comparison(example, degradation, upload, fit, tau, steps, mask, frames, seed, model_name=None,
                   left="SkipSR", right="bicubic", zx=0.5, zy=0.5):
    """Upscale & compare (the `compare` API): yields every output as the answer grows; the last output
    is the JSON summary."""
    shown_videos = False
    try:
        for ans in answers(example, degradation, upload, fit, tau, steps, mask, frames, seed, model_name):
            state = {"videos": ans["videos"], "frames": ans["frames"]}
            v = ans["videos"]
            first = not shown_videos
            if first:  # the videos are sent once; later updates leave them alone
                slider, heat, crops = first_views(ans, left, right, float(zx), float(zy))
                videos = (v["lr"], v["bicubic"], v.get("hr"), v["skip"], v["noskip"], v["split"], slider, heat, crops,
                          v.get("pred_overlay"), v.get("oracle_overlay"))
                shown_videos = True
            else:
                videos = tuple(gr.skip() for _ in range(11))
            done = ans["stage"] == "done"
            s = ans["summary"]
            highlight = curve_highlight(ans) if done else gr.skip()
            yield (ans["speed_md"] + ("  \n*(answered from the cache of default settings)*" if ans.get("cached") else ""),
                   *videos, ans["agreement_md"], ans["quality_md"],
                   pd.DataFrame(ans["metrics"], columns=["output", "psnr_y", "lpips", "dists"]),
                   pd.DataFrame(ans["timings"], columns=["stage", "no-skip (s)", "SkipSR (s)"]), state,
                   gr.update(maximum=max(ans["frames"] - 1, 1), value=0) if first else gr.skip(),
                   highlight, s)
    except (VideoError, ValueError) as e:
        raise gr.Error(str(e)) from e


@functools.lru_cache(maxsize=4)
def _store_rows(folder: str, signature: tuple) -> pd.DataFrame:
    df = store.ResultsStore(folder).read()
    if not df.empty and "origin" in df:
        df = df[df["origin"].fillna("sweep") != "app"]
    return df


def store_signature() -> tuple:
    """(name, mtime) of every shard of the curves' store: it changes when the store does."""
    return tuple((p.name, p.stat().st_mtime) for p in store.ResultsStore(CURVE_RESULTS).shards())


def store_frame(clip: str | None, model: str | None) -> pd.DataFrame:
    """The curves' rows (sweep, evaluate, bench, peers; never the app's), read once per change of the store."""
    df = _store_rows(str(CURVE_RESULTS), store_signature())
    if clip and not df.empty:
        df = df[df["clip_id"] == clip]
    if model and not df.empty:
        df = df[df["model_id"] == model]
    return df


def curves(clip: str | None, model: str | None, degradation: str | None, highlight: dict | None):
    """The Curves tab: skip cost (LPIPS rise, PSNR-Y drop) vs speed-up, quality vs seconds per frame
    with the peers, skip ratio by mask source. `model` filters our models (the peers always show).
    Without a run to mark, the figures are drawn once per change of the store (each opening of the tab asks)."""
    if highlight is None:
        return _unmarked_curves(clip, model, degradation, store_signature())
    return _draw_curves(clip, model, degradation, highlight)


@functools.lru_cache(maxsize=16)
def _unmarked_curves(clip: str | None, model: str | None, degradation: str | None, signature: tuple):
    return _draw_curves(clip, model, degradation, None)


def _draw_curves(clip: str | None, model: str | None, degradation: str | None, highlight: dict | None):
    df = plots.normalise(store_frame(clip, None))
    if model and not df.empty:
        df = df[(df["model_id"] == model) | (df["method"] != "skipsr")]
    metric = next((m for m in ("jod", "lpips") if m in df and df[m].notna().any()), "psnr_y")  # the judge when stored
    return (plots.skip_cost_vs_speedup(df, "jod_drop", highlight=highlight),
            plots.skip_cost_vs_speedup(df, "lpips_rise", highlight=highlight),
            plots.quality_vs_speed(df, metric, degradation or "bicubic", highlight),
            plots.skip_ratio_by_mask(df, highlight))


def precompute_jobs() -> list[tuple[str, dict]]:
    """(cache key, settings) of the default answers to compute at start (SKIPSR_APP_PRECOMPUTE)."""
    which = os.environ.get("SKIPSR_APP_PRECOMPUTE", "all")
    if which not in ("all", "default", "none"):
        raise ValueError(f"SKIPSR_APP_PRECOMPUTE must be all, default or none, got {which!r}")
    names = {"all": EXAMPLE_NAMES, "default": EXAMPLE_NAMES[:1], "none": []}[which]
    return default_jobs(names, ("bicubic",) if which == "default" else ("bicubic", "realistic"))


def default_jobs(names, degradations) -> list[tuple[str, dict]]:
    """(cache key, settings) of these examples x degradations at the app model's default settings."""
    jobs = []
    for name in names:
        for deg in degradations:
            settings = {"example": name, "degradation": deg, "upload": None, "fit": "crop", "tau": DEFAULT_TAU,
                        "steps": DEFAULT_STEPS, "mask": "predicted", "frames": DEFAULT_FRAMES, "seed": 0}
            jobs.append((cache_key(PIPE, name, deg, DEFAULT_TAU, DEFAULT_STEPS, "predicted", DEFAULT_FRAMES, 0),
                         settings))
    return jobs


def _drain(last_try: bool = True, **settings) -> None:
    for _ in answers(**settings, cache_unreliable=last_try):
        pass


def build() -> gr.Blocks:
    df = store_frame(None, None)
    clips = sorted(df["clip_id"].unique()) if not df.empty else []
    ours = plots.normalise(df)
    models = sorted(ours[ours["method"] == "skipsr"]["model_id"].dropna().unique()) if not df.empty else []
    side_choices = list(VIEW_LABELS.values())
    default_model = APP_MODEL_ID if APP_MODEL_ID in models else None
    curves(None, default_model, "bicubic", None)  # drawn now, so a page load does not wait (or hold the CPU) for it
    with gr.Blocks(title="SkipSR Studio", delete_cache=(900, 1800)) as demo:
        gr.Markdown(f"# SkipSR Studio\nDiffusion video super-resolution x{PIPE.cfg.scale} that skips the tokens of "
                    f"low-detail patches. Default model `{MODEL_CARD.get('id')}` ({APP_MODEL}), predictor "
                    f"`{PREDICTOR_CARD.get('id')}`, skipped tokens from "
                    f"{'the fast path `' + (PIPE.cards.fastpath.id or '?') + '`' if PIPE.fastpath else 'bicubic'}"
                    f"{f' with grain x{PIPE.grain:g} of their detail score' if PIPE.grain else ''}, "
                    "CPU. tau is in 8-bit RMSE units; tau 0 skips nothing. Examples at the default settings answer "
                    "from a cache; other settings compute (videos first, then speed, then metrics).")
        state = gr.State(None)
        highlight = gr.State(None)
        with gr.Tab("Upscale & compare"):
            with gr.Row():
                with gr.Column(scale=1):
                    example = gr.Dropdown(EXAMPLE_NAMES, value=EXAMPLE_NAMES[0] if EXAMPLE_NAMES else None,
                                          label="Example (HR clip, degraded here)", elem_id="example")
                    degradation = gr.Radio([("clean (bicubic)", "bicubic"), ("realistic (blur, noise, H.264)",
                                                                             "realistic")],
                                           value="bicubic", label="degradation of the example", elem_id="degradation")
                    upload = gr.Video(label=f"...or upload an LR video (larger than {compare.MAX_LR[0]}x"
                                      f"{compare.MAX_LR[1]}: cropped or downscaled; longer: its first frames)",
                                      sources=["upload"], elem_id="upload")
                    fit = gr.Radio(list(compare.FITS), value="crop", label="a larger upload is", elem_id="fit")
                    tau = gr.Slider(0, 12, value=DEFAULT_TAU, step=0.5, elem_id="tau",
                                    label="tau (skip threshold; set to the model's default when you pick one)")
                    model_name = gr.Dropdown(MODEL_NAMES, value=APP_MODEL, label="model", elem_id="model")
                    steps = gr.Slider(1, 8, value=DEFAULT_STEPS, step=1, elem_id="steps",
                                      label="sampling steps (set to the model's default when you pick one)")
                    mask = gr.Radio(["predicted", "oracle", "none"], value="predicted", label="mask source")
                    frames = gr.Slider(1, compare.MAX_FRAMES, value=DEFAULT_FRAMES, step=1, label="frame limit",
                                       elem_id="frames")
                    seed = gr.Number(0, precision=0, label="seed")
                    run = gr.Button("Upscale", variant="primary", elem_id="run")
                with gr.Column(scale=3):
                    speed = gr.Markdown(elem_id="speed")
                    quality = gr.Markdown(elem_id="quality")
                    with gr.Row():
                        lr_video = gr.Video(label="LR input (nearest-neighbour enlarged)", elem_id="lr-video",
                                            interactive=False)
                        bicubic_video = gr.Video(label="bicubic", elem_id="bicubic-video", interactive=False)
                        hr_video = gr.Video(label="ground truth", elem_id="hr-video", interactive=False)
                    with gr.Row():
                        skip_video = gr.Video(label="SkipSR", elem_id="skip-video", interactive=False)
                        noskip_video = gr.Video(label="No-skip", elem_id="noskip-video", interactive=False)
                    with gr.Row():
                        left = gr.Dropdown(side_choices, value="SkipSR", label="compare (left side)", elem_id="left")
                        right = gr.Dropdown(side_choices, value="bicubic", label="with (right side)", elem_id="right")
                    split = gr.Video(label="split screen: left | right, in sync", elem_id="split-video",
                                     interactive=False)
                    frame_idx = gr.Slider(0, DEFAULT_FRAMES - 1, value=0, step=1, label="frame", elem_id="frame")
                    with gr.Row():
                        slider = gr.ImageSlider(label="frame: left | right (drag)", elem_id="frame-slider")
                        heat = gr.Image(label="|SkipSR - no-skip| x8", elem_id="heatmap")
                    with gr.Row():
                        zx = gr.Slider(0, 1, value=0.5, step=0.01, label="zoom centre x", elem_id="zoom-x")
                        zy = gr.Slider(0, 1, value=0.5, step=0.01, label="zoom centre y", elem_id="zoom-y")
                    zoom = gr.Gallery(label="zoom (128 px, x3) of every view", columns=5, elem_id="zoom")
                    with gr.Row():
                        pred_overlay = gr.Video(label="predicted mask (skipped tokens tinted)", elem_id="pred-overlay",
                                                interactive=False)
                        oracle_overlay = gr.Video(label="oracle mask", elem_id="oracle-overlay", interactive=False)
                    agreement = gr.Markdown(elem_id="agreement")
                    metrics_df = gr.Dataframe(label="quality vs the ground truth", elem_id="metrics")
                    timings = gr.Dataframe(label="timings per stage (medians)", elem_id="timings")
                    summary = gr.JSON(label="summary (the API's last output)", elem_id="summary")
        with gr.Tab("Curves") as curves_tab:
            gr.Markdown("Our models: mean over the clips with a min-max band (pick a clip for one clip; clear the "
                        "model for all models). The judge is ColorVideoVDP (JOD; 10 = indistinguishable from the "
                        "ground truth): the shaded zone is \"no perceptible loss\", at most "
                        f"{metrics.MAX_JOD_DROP:g} JOD below the same model's no-skip output (about 53% of viewers "
                        "would prefer no-skip), on every clip (the band's top). The LPIPS rise is shown beside it. "
                        "Seconds are this machine's, from the sweep.")
            with gr.Row():
                clip_f = gr.Dropdown([None, *clips], value=None, label="clip (empty: all, aggregated)")
                model_f = gr.Dropdown([None, *models], value=default_model, label="model (empty: all)")
                degr_f = gr.Dropdown(["bicubic", "realistic"], value="bicubic", label="input (quality vs speed)")
            with gr.Row():
                p1, p2 = gr.Plot(elem_id="plot-cost-jod"), gr.Plot(elem_id="plot-cost-lpips")
            with gr.Row():
                p3, p4 = gr.Plot(elem_id="plot-pareto"), gr.Plot(elem_id="plot-skip")
        model_name.change(model_defaults, [model_name], [steps, tau], api_name=False)
        run.click(run_comparison,
                  [example, degradation, upload, fit, tau, steps, mask, frames, seed, model_name, left, right, zx, zy],
                  [speed, lr_video, bicubic_video, hr_video, skip_video, noskip_video, split, slider, heat, zoom,
                   pred_overlay, oracle_overlay, agreement, quality, metrics_df, timings, state, frame_idx, highlight,
                   summary], concurrency_limit=2, api_name="compare",
                  show_progress_on=[speed])  # one progress box (the first output), not 20 repainting overlays
        view_inputs = [state, frame_idx, left, right, zx, zy]
        for control in (frame_idx, left, right, zx, zy):
            control.change(picked_views, view_inputs, [slider, heat, zoom], api_name=False)
        for control in (left, right):
            control.change(split_video, [state, left, right], [split], api_name=False)
        for f in (clip_f, model_f, degr_f):
            f.change(curves, [clip_f, model_f, degr_f, highlight], [p1, p2, p3, p4], api_name=False)
        # drawn when the tab opens, not at page load: a visitor's first click shares the CPU with nothing
        curves_tab.select(curves, [clip_f, model_f, degr_f, highlight], [p1, p2, p3, p4], api_name=False)
    return demo.queue(max_size=16, default_concurrency_limit=2)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a terminated app still removes its run folders (atexit)
    demo = build()
    fetching = metric_weights.fetch_in_background()  # a fresh install (a Space) has no LPIPS / DISTS weights yet
    cache.precompute(precompute_jobs(), _drain, after=fetching)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
                max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=True, allowed_paths=[str(cache.ROOT), str(cache.SHIPPED), str(RUNS)])


if __name__ == "__main__":
    main()
