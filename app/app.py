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

import functools
import logging
import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr
import pandas as pd

from analysis import plots
from app import answers as ans_mod
from app import cache, compare, frames
from app.answers import APP_MODEL, DEFAULT_FRAMES, EXAMPLE_NAMES, MODEL_NAMES, answers, model_defaults, pipeline
from skipsr import paths
from skipsr.evaluation import metric_weights, metrics, store
from skipsr.video import VideoError

log = logging.getLogger("skipsr.app")

CURVE_RESULTS = Path(os.environ.get("SKIPSR_RESULTS", paths.shipped("results")))
MAX_UPLOAD_MB = 50
VIDEO_OUTPUTS = ("lr", "bicubic", "hr", "skip", "noskip", "split", "pred_overlay", "oracle_overlay")


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


def comparison_updates(example, degradation, upload, fit, tau, steps, mask, frames_limit, seed, model_name=None,
                       left="SkipSR", right="bicubic", zx=0.5, zy=0.5):
    """Upscale & compare as {output name: value}, yielded as the answer grows: the videos and frame views
    once, the texts and tables at every stage, the run's curve point and the JSON summary at the end. An
    output a stage leaves alone is not in its dict."""
    first = True
    try:
        for ans in answers(example, degradation, upload, fit, tau, steps, mask, frames_limit, seed, model_name):
            cached = "  \n*(answered from the cache of default settings)*" if ans.get("cached") else ""
            out = {"speed": ans["speed_md"] + cached, "agreement": ans["agreement_md"], "quality": ans["quality_md"],
                   "metrics": pd.DataFrame(ans["metrics"], columns=["output", "jod", "psnr_y", "lpips", "dists"]),
                   "timings": pd.DataFrame(ans["timings"], columns=["stage", "no-skip (s)", "SkipSR (s)"]),
                   "state": {"videos": ans["videos"], "frames": ans["frames"]}, "summary": ans["summary"]}
            if first:  # the videos are sent once; later updates leave them alone
                v = ans["videos"]
                (out["slider"], out["heat"], out["zoom"]) = frames.first_views(ans, left, right, float(zx), float(zy))
                out.update({name: v.get(name) for name in VIDEO_OUTPUTS})
                out["frame"] = gr.update(maximum=max(ans["frames"] - 1, 1), value=0)
                first = False
            if ans["stage"] == "done":
                out["highlight"] = curve_highlight(ans)
            yield out
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



def build() -> gr.Blocks:
    pipe = pipeline(APP_MODEL)  # the app's model: loaded here, not when the module is imported
    default_steps, default_tau = pipe.default_steps, pipe.default_tau
    df = store_frame(None, None)
    clips = sorted(df["clip_id"].unique()) if not df.empty else []
    ours = plots.normalise(df)
    models = sorted(ours[ours["method"] == "skipsr"]["model_id"].dropna().unique()) if not df.empty else []
    side_choices = list(frames.VIEW_LABELS.values())
    default_model = pipe.cards.model.id if pipe.cards.model.id in models else None
    curves(None, default_model, "bicubic", None)  # drawn now, so a page load does not wait (or hold the CPU) for it
    with gr.Blocks(title="SkipSR Studio", delete_cache=(900, 1800)) as demo:
        gr.Markdown(f"# SkipSR Studio\nDiffusion video super-resolution x{pipe.cfg.scale} that skips the tokens of "
                    f"low-detail patches. Default model `{pipe.cards.model.id}` ({APP_MODEL}), predictor "
                    f"`{pipe.cards.predictor.id}`, skipped tokens from "
                    f"{'the fast path `' + (pipe.cards.fastpath.id or '?') + '`' if pipe.fastpath else 'bicubic'}"
                    f"{f' with grain x{pipe.grain:g} of their detail score' if pipe.grain else ''}, "
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
                    tau = gr.Slider(0, 12, value=default_tau, step=0.5, elem_id="tau",
                                    label="tau (skip threshold; set to the model's default when you pick one)")
                    model_name = gr.Dropdown(MODEL_NAMES, value=APP_MODEL, label="model", elem_id="model")
                    steps = gr.Slider(1, 8, value=default_steps, step=1, elem_id="steps",
                                      label="sampling steps (set to the model's default when you pick one)")
                    mask = gr.Radio(["predicted", "oracle", "none"], value="predicted", label="mask source")
                    frames_limit = gr.Slider(1, compare.MAX_FRAMES, value=DEFAULT_FRAMES, step=1, label="frame limit",
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
        model_name.change(model_defaults, [model_name], [steps, tau], api_visibility="private")
        # the compare API's outputs, in the order a client receives them (gr.State ones are not sent)
        outputs = {"speed": speed, "lr": lr_video, "bicubic": bicubic_video, "hr": hr_video, "skip": skip_video,
                   "noskip": noskip_video, "split": split, "slider": slider, "heat": heat, "zoom": zoom,
                   "pred_overlay": pred_overlay, "oracle_overlay": oracle_overlay, "agreement": agreement,
                   "quality": quality, "metrics": metrics_df, "timings": timings, "state": state, "frame": frame_idx,
                   "highlight": highlight, "summary": summary}

        def compare_handler(*inputs):
            for update in comparison_updates(*inputs):
                yield {outputs[name]: value for name, value in update.items()}

        compare_handler.__doc__ = comparison_updates.__doc__
        run.click(compare_handler,
                  [example, degradation, upload, fit, tau, steps, mask, frames_limit, seed, model_name, left, right, zx,
                   zy], list(outputs.values()), concurrency_limit=2, api_name="compare",
                  show_progress_on=[speed])  # one progress box (the first output), not 20 repainting overlays
        view_inputs = [state, frame_idx, left, right, zx, zy]
        for control in (frame_idx, left, right, zx, zy):
            control.change(frames.picked_views, view_inputs, [slider, heat, zoom], api_visibility="private")
        for control in (left, right):
            control.change(frames.split_video, [state, left, right], [split], api_visibility="private")
        for f in (clip_f, model_f, degr_f):
            f.change(curves, [clip_f, model_f, degr_f, highlight], [p1, p2, p3, p4], api_visibility="private")
        # drawn when the tab opens, not at page load: a visitor's first click shares the CPU with nothing
        curves_tab.select(curves, [clip_f, model_f, degr_f, highlight], [p1, p2, p3, p4], api_visibility="private")
    return demo.queue(max_size=16, default_concurrency_limit=2)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a terminated app still removes its run folders (atexit)
    demo = build()
    fetching = metric_weights.fetch_in_background()  # a fresh install (a Space) has no LPIPS / DISTS weights yet
    cache.precompute(ans_mod.precompute_jobs(), ans_mod.drain, after=fetching)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
                max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=True,
                allowed_paths=[str(cache.ROOT), str(cache.SHIPPED), str(frames.RUNS)])


if __name__ == "__main__":
    main()
