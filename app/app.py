"""SkipSR Studio: SkipSR vs no-skip side by side, skip masks, speed-quality curves (docs/design.md section 10).

    skipsr app                   # http://127.0.0.1:7860 (also `python -m app`; a Space runs space.py)

Handlers are thin: each calls one function of `skipsr` (compare, frame views) or `analysis` (plots).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr
import numpy as np
import pandas as pd

from analysis import plots
from skipsr import checkpoint, metrics, paths
from skipsr.compare import MAX_FRAMES, compare
from skipsr.data import EXAMPLES_DIR
from skipsr.pipeline import SkipSRPipeline
from skipsr.store import ResultsStore, file_hash
from skipsr.video import VideoError, probe, read_video

log = logging.getLogger("skipsr.app")

# The app's own rows go to RESULTS; the curves read the sweep rows of CURVE_RESULTS (the same folder
# in a source tree; the installed copy of results/ when installed).
RESULTS = Path(os.environ.get("SKIPSR_RESULTS", paths.writable("results")))
CURVE_RESULTS = Path(os.environ.get("SKIPSR_RESULTS", paths.shipped("results")))
MAX_UPLOAD_MB = 50
MAX_UPLOAD_S = 20.0
EXAMPLES = sorted(p.stem for p in EXAMPLES_DIR.glob("*.mp4"))

MODEL_NAMES = [name for name, path in checkpoint.MODELS.items() if path.exists()] or [None]
APP_MODEL = checkpoint.APP_MODEL if checkpoint.APP_MODEL in MODEL_NAMES else MODEL_NAMES[0]
_PIPES: dict = {}


def pipeline(name: str | None) -> SkipSRPipeline:
    """The pipeline of a shipped model (loaded once), with the shipped predictor and the card's defaults."""
    if name not in _PIPES:
        _PIPES[name] = SkipSRPipeline.from_pretrained(name)
    return _PIPES[name]


def model_defaults(name: str | None) -> tuple[int, float]:
    """(sampling steps, tau) a model is meant to run at: its card's defaults."""
    pipe = pipeline(name)
    return pipe.default_steps, pipe.default_tau


PIPE = pipeline(APP_MODEL)
MODEL_CARD, PREDICTOR_CARD = PIPE.card, PIPE.predictor_card
APP_MODEL_ID = MODEL_CARD.get("id")
DEFAULT_STEPS, DEFAULT_TAU = model_defaults(APP_MODEL)


def run_comparison(example: str | None, upload: str | None, tau: float, steps: int, mask: str, frames: int,
                   seed: int, model_name: str | None = None, progress=gr.Progress()):
    """Upscale & compare: one call to skipsr.compare.compare; the rest is formatting."""
    progress(0.05, desc="reading the video")
    try:
        if upload:
            info = probe(upload)
            if info.duration_s > MAX_UPLOAD_S:
                raise gr.Error(f"the upload is {info.duration_s:.1f} s long; this demo takes up to {MAX_UPLOAD_S:g} s")
            src = {"lr": read_video(upload, max_frames=frames), "fps": info.fps, "clip_id": Path(upload).stem,
                   "clip_hash": file_hash(upload)}
        elif example:
            path = EXAMPLES_DIR / f"{example}.mp4"
            src = {"hr": read_video(path, max_frames=frames), "fps": probe(path).fps, "clip_id": example,
                   "clip_hash": file_hash(path)}
        else:
            raise gr.Error("pick an example clip or upload a low-resolution video")
        if model_name is not None and model_name not in MODEL_NAMES:
            raise gr.Error(f"unknown model {model_name!r}: pick one of {', '.join(map(str, MODEL_NAMES))}")
        pipe = pipeline(model_name or APP_MODEL)
        progress(0.2, desc="no-skip and SkipSR runs")
        out = compare(pipe, tempfile.mkdtemp(prefix="skipsr-app-"), tau=tau, mask=mask, steps=int(steps),
                      seed=int(seed), max_frames=int(frames), results=RESULTS, **src)
    except (VideoError, ValueError) as e:
        raise gr.Error(str(e)) from e
    progress(0.95, desc="rendering")
    timings = pd.DataFrame([{"stage": k, "no-skip (s)": round(out.timings["noskip"][k], 3),
                             "SkipSR (s)": round(out.timings["skip"][k], 3)} for k in out.timings["skip"]])
    speed = (f"**Skipped {100 * out.skip_ratio:.1f}% of tokens** - ideal speed-up {out.ideal_speedup:.2f}x, "
             f"transformer {out.speedup_transformer:.2f}x, end to end {out.speedup_e2e:.2f}x (this machine, one run)")
    if out.skip_ratio == 1.0:
        speed = "**Every token skipped**: the output is the bicubic upsample (lower tau to refine some tokens)"
    speed += "  \n" + quality_text(out)
    if out.agreement is not None:
        agree = (f"predicted vs oracle skip set: F1 {out.agreement['f1']:.3f}, IoU {out.agreement['iou']:.3f}, "
                 f"skip ratio predicted {out.agreement['pred_skip_ratio']:.3f} / oracle "
                 f"{out.agreement['oracle_skip_ratio']:.3f}")
    elif "lr" in src:
        agree = "no oracle mask: an upload has no ground truth"
    else:
        agree = {"oracle": "oracle mask used (the predictor was not run)", "none": "mask source 'none': nothing skipped"}[mask]
    state = {"skip": out.skip_frames, "noskip": out.noskip_frames, "heat": out.heatmap}
    skip_q, noskip_q = out.quality.get("skip", {}), out.quality.get("noskip", {})
    highlight = {"tau": tau, "skip_ratio": out.skip_ratio, "t_total_s": out.timings["skip"]["total"],
                 "t_per_frame_s": out.timings["skip"]["total"] / max(len(out.skip_frames), 1),
                 "speedup": out.speedup_e2e, **skip_q}
    if skip_q.get("lpips") is not None and noskip_q.get("lpips") is not None:
        highlight.update(lpips_rise=skip_q["lpips"] - noskip_q["lpips"], psnr_y_drop_db=noskip_q["psnr_y"] - skip_q["psnr_y"])
    n = len(out.skip_frames)
    return (out.skip_video, out.noskip_video, frame_pair(state, 0), out.heatmap[0], out.pred_overlay,
            out.oracle_overlay, agree, timings, speed, state, gr.update(maximum=n - 1, value=0), highlight,
            *curves(None, APP_MODEL_ID, "bicubic", highlight))


def _num(v, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def quality_text(out) -> str:
    """PSNR-Y / LPIPS / DISTS per output (examples) and the skip cost in words."""
    c = out.skip_cost
    lines = []
    if out.quality:  # an example: the ground truth is known
        q = out.quality
        lines.append(" | ".join(f"{label}: PSNR-Y {_num(q[k]['psnr_y'], '.2f')} dB, LPIPS {_num(q[k]['lpips'], '.4f')}, "
                                f"DISTS {_num(q[k]['dists'], '.4f')}"
                                for k, label in (("bicubic", "bicubic"), ("noskip", "no-skip"), ("skip", "SkipSR"))))
        cost = metrics.skip_cost(q["skip"], q["noskip"])
        if cost["no_perceptible_loss"] is not None:
            verdict = "**no perceptible loss**" if cost["no_perceptible_loss"] else "**visible loss**"
            lines.append(f"Skip cost: {verdict} (LPIPS {cost['lpips_rise']:+.4f}, PSNR-Y {-cost['psnr_y_drop_db']:+.2f} dB "
                         f"vs no-skip; the bar is LPIPS <= +{metrics.MAX_LPIPS_RISE} and PSNR-Y >= "
                         f"-{metrics.MAX_PSNR_Y_DROP_DB} dB)")
    if c.get("lpips_vs_noskip") is not None:
        lines.append(f"SkipSR vs no-skip: LPIPS {c['lpips_vs_noskip']:.4f}, DISTS {c['dists_vs_noskip']:.4f}, PSNR-Y "
                     f"{c['psnr_y_vs_noskip']:.1f} dB")
    elif metrics.perceptual_reason():
        lines.append(f"LPIPS / DISTS unavailable: {metrics.perceptual_reason()}")
    return "  \n".join(lines)


def frame_pair(state: dict | None, index: int):
    """(SkipSR frame, no-skip frame) for the slider comparison."""
    if not state:
        return None
    i = int(np.clip(index, 0, len(state["skip"]) - 1))
    return state["skip"][i], state["noskip"][i]


def frame_views(state: dict | None, index: int):
    if not state:
        return None, None
    return frame_pair(state, index), state["heat"][int(np.clip(index, 0, len(state["heat"]) - 1))]


def store_frame(clip: str | None, model: str | None) -> pd.DataFrame:
    df = ResultsStore(CURVE_RESULTS).read()
    if df.empty:
        return df
    if "origin" in df:
        df = df[df["origin"].fillna("sweep") != "app"]
    if clip:
        df = df[df["clip_id"] == clip]
    if model:
        df = df[df["model_id"] == model]
    return df


def curves(clip: str | None, model: str | None, degradation: str | None, highlight: dict | None):
    """The Curves tab: skip cost (LPIPS rise, PSNR-Y drop) vs speed-up, quality vs seconds per frame
    with the peers, skip ratio by mask source. `model` filters our models (the peers always show)."""
    df = plots.normalise(store_frame(clip, None))
    if model and not df.empty:
        df = df[(df["model_id"] == model) | (df["method"] != "skipsr")]
    metric = "lpips" if "lpips" in df and df["lpips"].notna().any() else "psnr_y"  # perceptual when the store has it
    return (plots.skip_cost_vs_speedup(df, "lpips_rise", highlight=highlight),
            plots.skip_cost_vs_speedup(df, "psnr_y_drop_db", highlight=highlight),
            plots.quality_vs_speed(df, metric, degradation or "bicubic", highlight),
            plots.skip_ratio_by_mask(df, highlight))


def build() -> gr.Blocks:
    df = store_frame(None, None)
    clips = sorted(df["clip_id"].unique()) if not df.empty else []
    ours = plots.normalise(df)
    models = sorted(ours[ours["method"] == "skipsr"]["model_id"].dropna().unique()) if not df.empty else []
    with gr.Blocks(title="SkipSR Studio") as demo:
        gr.Markdown(f"# SkipSR Studio\nDiffusion video super-resolution x{PIPE.cfg.scale} that skips the tokens of "
                    f"low-detail patches. Default model `{MODEL_CARD.get('id')}` ({APP_MODEL}), predictor "
                    f"`{PREDICTOR_CARD.get('id')}`, skipped tokens from "
                    f"{'the fast path `' + PIPE.fastpath_card.get('id', '?') + '`' if PIPE.fastpath else 'bicubic'}, "
                    "CPU. tau is in 8-bit RMSE units; tau 0 skips nothing.")
        state = gr.State(None)
        highlight = gr.State(None)
        with gr.Tab("Upscale & compare"):
            with gr.Row():
                with gr.Column(scale=1):
                    example = gr.Dropdown(EXAMPLES, value=EXAMPLES[0] if EXAMPLES else None, label="Example (HR clip, "
                                          "degraded on the fly)")
                    upload = gr.Video(label=f"...or upload an LR video (<= {MAX_UPLOAD_S:g} s, <= 480x270)",
                                      sources=["upload"])
                    tau = gr.Slider(0, 12, value=DEFAULT_TAU, step=0.5, elem_id="tau",
                                    label="tau (skip threshold; set to the model's default when you pick one)")
                    model_name = gr.Dropdown(MODEL_NAMES, value=APP_MODEL, label="model", elem_id="model")
                    steps = gr.Slider(1, 8, value=DEFAULT_STEPS, step=1, elem_id="steps",
                                      label="sampling steps (set to the model's default when you pick one)")
                    mask = gr.Radio(["predicted", "oracle", "none"], value="predicted", label="mask source")
                    frames = gr.Slider(1, MAX_FRAMES, value=8, step=1, label="frame limit")
                    seed = gr.Number(0, precision=0, label="seed")
                    run = gr.Button("Upscale", variant="primary", elem_id="run")
                with gr.Column(scale=3):
                    speed = gr.Markdown(elem_id="speed")
                    with gr.Row():
                        skip_video = gr.Video(label="SkipSR", elem_id="skip-video", interactive=False)
                        noskip_video = gr.Video(label="No-skip", elem_id="noskip-video", interactive=False)
                    frame_idx = gr.Slider(0, 7, value=0, step=1, label="frame")
                    with gr.Row():
                        slider = gr.ImageSlider(label="SkipSR | no-skip", elem_id="frame-slider")
                        heat = gr.Image(label="|SkipSR - no-skip| x8", elem_id="heatmap")
                    with gr.Row():
                        pred_overlay = gr.Video(label="predicted mask (skipped tokens tinted)", elem_id="pred-overlay",
                                                interactive=False)
                        oracle_overlay = gr.Video(label="oracle mask", elem_id="oracle-overlay", interactive=False)
                    agreement = gr.Markdown(elem_id="agreement")
                    timings = gr.Dataframe(label="timings per stage", elem_id="timings")
        with gr.Tab("Curves"):
            gr.Markdown("Our models: mean over the clips with a min-max band (pick a clip for one clip; clear the "
                        "model for all models). The shaded zone is \"no perceptible loss\": LPIPS at most "
                        f"+{metrics.MAX_LPIPS_RISE:g} and PSNR-Y at most {metrics.MAX_PSNR_Y_DROP_DB:g} dB below the "
                        "same model's no-skip output. Seconds are this machine's, from the sweep.")
            with gr.Row():
                clip_f = gr.Dropdown([None, *clips], value=None, label="clip (empty: all, aggregated)")
                model_f = gr.Dropdown([None, *models], value=APP_MODEL_ID if APP_MODEL_ID in models else None,
                                      label="model (empty: all)")
                degr_f = gr.Dropdown(["bicubic", "realistic"], value="bicubic", label="input (quality vs speed)")
            with gr.Row():
                p1, p2 = gr.Plot(elem_id="plot-cost-lpips"), gr.Plot(elem_id="plot-cost-psnr")
            with gr.Row():
                p3, p4 = gr.Plot(elem_id="plot-pareto"), gr.Plot(elem_id="plot-skip")
        model_name.change(model_defaults, [model_name], [steps, tau], api_name=False)
        run.click(run_comparison, [example, upload, tau, steps, mask, frames, seed, model_name],
                  [skip_video, noskip_video, slider, heat, pred_overlay, oracle_overlay, agreement, timings, speed,
                   state, frame_idx, highlight, p1, p2, p3, p4], concurrency_limit=1, api_name="compare")
        frame_idx.change(frame_views, [state, frame_idx], [slider, heat], api_name=False)
        for f in (clip_f, model_f, degr_f):
            f.change(curves, [clip_f, model_f, degr_f, highlight], [p1, p2, p3, p4], api_name=False)
        demo.load(curves, [clip_f, model_f, degr_f, highlight], [p1, p2, p3, p4], api_name=False)
    return demo.queue(max_size=8, default_concurrency_limit=1)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    build().launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   server_port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
                   max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=True)


if __name__ == "__main__":
    main()
