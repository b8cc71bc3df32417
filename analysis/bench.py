"""Speed benchmark of skip vs no-skip (docs/design.md section 9).

    python -m analysis.bench [--clip HR.mp4] [--height 720|1080] [--frames 8] [--tau T] [--mask predicted|oracle] --json
    python -m analysis.bench --memory [--frames-short 30 --frames-long 300]
    python -m analysis.bench ... --results DIR   # also the two runs as store rows (origin "bench")

Skip and no-skip run the same model in the same process by the one speed protocol
(`skipsr.evaluation.speed`: a warm-up of both, then interleaved rounds; times are medians of `--repeats` >= 3),
twice: on the pipeline call on decoded frames (mask, transformer, fast path, compose: `speedup_e2e`)
and on the upscale command's whole path from file to file (decode, the same, encode:
`speedup_cli`, `s_per_frame_*`). Without --clip a clip with a known share of flat tokens is
generated (`skipsr.synth`), so this runs on a fresh machine; --clip takes real content (the HR,
degraded here), --height resizes it. Absolute seconds mean something only on this machine in this
run: the ratios are what we track."""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from skipsr import checkpoint, cliutil, degrade, resize
from skipsr.evaluation import jod, metrics, speed, store
from skipsr.model import ModelConfig
from skipsr.pipeline import SkipSRPipeline
from skipsr.streaming import ENCODE_PRESET
from skipsr.synth import flat_textured_clip
from skipsr.video import probe, read_video

log = logging.getLogger("analysis.bench")


def call_times(fn, n: int = 3) -> list[float]:
    """Wall seconds of n calls of fn(), one after the other."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def quality(skip: np.ndarray, noskip: np.ndarray, hr: np.ndarray, with_quality: bool = True,
            fps: float = 24.0) -> dict:
    """PSNR-Y, JOD (ColorVideoVDP on `jod.sample`), LPIPS and DISTS of both outputs against the HR,
    the skip output's distance to the no-skip one, the skip cost (jod_drop, lpips_rise), and the
    seconds LPIPS + DISTS take for one frame of one output against one reference at this resolution
    (both images through both backbones)."""
    out = {"psnr_y_noskip": metrics.psnr_y(noskip, hr), "psnr_y_skip": metrics.psnr_y(skip, hr),
           "psnr_y_skip_vs_noskip": metrics.psnr_y(skip, noskip)}
    if not with_quality:
        return out
    sk, ns, ref = jod.sample(skip), jod.sample(noskip), jod.sample(hr)
    out.update(jod_noskip=jod.jod(ns, ref, fps), jod_skip=jod.jod(sk, ref, fps), jod_skip_vs_noskip=jod.jod(sk, ns, fps),
               jod_scope=jod.sample_scope(*hr.shape[:3]))
    out["jod_drop"] = out["jod_noskip"] - out["jod_skip"]
    reason = metrics.perceptual_reason()
    if reason:
        return {**out, "perceptual_null_reason": reason}
    times = call_times(lambda: metrics.perceptual(noskip[:1], {"hr": hr[:1]}))
    out["t_lpips_dists_per_frame_s"] = statistics.median(times[1:])  # the first call builds the networks: warm-up
    cache: dict = {}
    ns, sk = metrics.perceptual(noskip, {"hr": hr}, cache)["hr"], metrics.perceptual(skip, {"hr": hr, "noskip": noskip},
                                                                                     cache)
    out.update(lpips_noskip=ns["lpips"], dists_noskip=ns["dists"], lpips_skip=sk["hr"]["lpips"],
               dists_skip=sk["hr"]["dists"], lpips_skip_vs_noskip=sk["noskip"]["lpips"],
               dists_skip_vs_noskip=sk["noskip"]["dists"], lpips_rise=sk["hr"]["lpips"] - ns["lpips"])
    return out


def bench(hr: np.ndarray, pipe: SkipSRPipeline, tau: float, mask: str, steps: int, repeats: int, seed: int = 0,
          with_quality: bool = True, fps: float = 24.0) -> dict:
    """Interleaved skip / no-skip runs on one HR clip (LR made by bicubic x scale), then the quality
    of both (`quality`)."""
    s = pipe.cfg.scale
    lr = resize.to_uint8(degrade.bicubic(resize.to_float(hr), s))
    hr = hr[:, : lr.shape[1] * s, : lr.shape[2] * s]
    sp = speed.interleaved(pipe, lr, tau=tau, mask=mask, steps=steps, seed=seed,
                           hr=hr if mask == "oracle" else None, repeats=repeats)
    med = lambda name, key: sp.medians[name].get(key, 0.0)  # noqa: E731
    skip, noskip = sp.skip, sp.noskip
    ideal, sp_tr, sp_e2e = sp.ideal_speedup, sp.speedup_transformer, sp.speedup_e2e
    return {
        "skip_ratio": skip.skip_ratio, "n_tokens": skip.n_tokens, "n_kept": skip.n_kept,
        "ideal_speedup": ideal, "speedup_transformer": sp_tr, "transformer_efficiency": sp_tr / ideal,
        "speedup_e2e": sp_e2e, "e2e_efficiency": sp_e2e / ideal,
        "t_e2e_noskip_s": med("noskip", "total"), "t_e2e_skip_s": med("skip", "total"),
        "t_transformer_noskip_s": med("noskip", "transformer"), "t_transformer_skip_s": med("skip", "transformer"),
        "t_predictor_s": med("skip", "predictor"), "predictor_share_of_noskip_transformer":
            med("skip", "predictor") / med("noskip", "transformer"),
        "t_fastpath_s": med("skip", "fastpath"), "fastpath_share_of_noskip_transformer":
            med("skip", "fastpath") / med("noskip", "transformer"),
        "t_compose_skip_s": med("skip", "compose"), "padding_waste": skip.padding_waste,
        "frames": int(hr.shape[0]), "out_w": int(hr.shape[2]), "out_h": int(hr.shape[1]),
        "tau": tau, "mask": mask, "steps": steps, "repeats": repeats,
        "threads": torch.get_num_threads(), **quality(skip.video, noskip.video, hr, with_quality, fps),
    }


def whole_path(hr: np.ndarray, pipe: SkipSRPipeline, tau: float, mask: str, steps: int, repeats: int,
               seed: int = 0) -> dict:
    """The upscale command's path, file to file (decode -> predictor -> transformer -> fast path ->
    compose -> encode; `streaming.upscale_file`), skip vs no-skip by the same protocol. The LR input is
    the HR degraded by bicubic x scale and stored losslessly (x264 crf 0), as a user's file would be
    read. Interpreter start-up and model loading are outside (once per command, whatever tau). It runs
    the command's windows (`UPSCALE_WINDOW_FRAMES`), so a clip longer than one window is encoded beside
    the compute, as the command does, not all after it."""
    from skipsr.streaming import UPSCALE_WINDOW_FRAMES, upscale_file
    from skipsr.video import VideoWriter

    command = pipe.with_config(chunk_frames=UPSCALE_WINDOW_FRAMES)  # the same networks, the command's window
    s = pipe.cfg.scale
    lr = resize.to_uint8(degrade.bicubic(resize.to_float(hr), s))
    hr = hr[:, : lr.shape[1] * s, : lr.shape[2] * s]
    with tempfile.TemporaryDirectory(prefix="skipsr-bench-") as tmp:
        lr_path, hr_path = Path(tmp) / "lr.mp4", Path(tmp) / "hr.mp4"
        with VideoWriter(lr_path, 24, crf=0, preset="ultrafast") as w:
            w.write(lr)
        if mask == "oracle":
            with VideoWriter(hr_path, 24, crf=0, preset="ultrafast") as w:
                w.write(hr)

        def run(name: str, n: int | None):
            skip = name == "skip"
            return upscale_file(command, str(lr_path), str(Path(tmp) / f"{name}.mp4"), tau=tau if skip else 0.0,
                                mask=mask if skip else "none", steps=steps, seed=seed, max_frames=n,
                                hr=str(hr_path) if (skip and mask == "oracle") else None)

        sp = None
        for sp in speed.rounds_of(run, repeats, warmup_frames=min(command.config.chunk_frames, len(lr))):
            pass
    frames = len(lr)
    return {"speedup_cli": sp.speedup("total"), "cli_efficiency": sp.speedup("total") / sp.ideal_speedup,
            "s_per_frame_skip": sp.medians["skip"]["total"] / frames,
            "s_per_frame_noskip": sp.medians["noskip"]["total"] / frames,
            **{f"t_cli_{k}_{name}_s": v for name in ("skip", "noskip") for k, v in sp.medians[name].items()}}


PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")


def encode_presets(frames: np.ndarray, fps: float = 24, crf: int = 18) -> list[dict]:
    """What each x264 preset costs and gives on these frames (the upscale command's encode at its
    CRF): seconds per frame (median of 3; the RGB to I420 conversion included), kB per frame, PSNR-Y of
    the decoded frames. The first row is the conversion alone (`video.rgb_to_yuv420`, median of 3)."""
    from skipsr.video import VideoWriter, rgb_to_yuv420

    times = call_times(lambda: [rgb_to_yuv420(f) for f in frames])
    out = [{"preset": "conversion only", "s_per_frame": statistics.median(times) / len(frames)}]
    with tempfile.TemporaryDirectory(prefix="skipsr-presets-") as tmp:
        for preset in PRESETS:
            path = Path(tmp) / f"{preset}.mp4"

            def encode():
                with VideoWriter(path, fps, crf=crf, preset=preset) as w:
                    w.write(frames)

            times = call_times(encode)
            out.append({"preset": preset, "s_per_frame": statistics.median(times) / len(frames),
                        "kb_per_frame": path.stat().st_size / 1024 / len(frames),
                        "psnr_y": metrics.psnr_y(read_video(path), frames)})
    return out


def precision_check(hr: np.ndarray, pipe: SkipSRPipeline, tau: float, mask: str, steps: int, repeats: int) -> dict:
    """bf16 autocast against fp32 on the same skip run: the transformer time of each by the speed
    protocol (rounds alternate, medians) and LPIPS / DISTS / PSNR-Y of each against the HR."""
    s = pipe.cfg.scale
    lr = resize.to_uint8(degrade.bicubic(resize.to_float(hr), s))
    hr = hr[:, : lr.shape[1] * s, : lr.shape[2] * s]

    def run(name: str, n: int | None):  # "skip" stands for bf16, "noskip" for fp32 (both skip at tau)
        pipe.precision = "bf16" if name == "skip" else "fp32"
        try:
            return pipe(lr[:n], tau=tau, mask=mask, steps=steps)
        finally:
            pipe.precision = "fp32"

    sp = None
    for sp in speed.rounds_of(run, repeats, warmup_frames=min(4, len(lr))):
        pass
    q = {name: metrics.perceptual(v, {"hr": hr})["hr"] for name, v in (("bf16", sp.skip.video), ("fp32", sp.noskip.video))}
    return {"bf16_speedup_transformer": sp.speedup("transformer"), "bf16_speedup_e2e": sp.speedup("total"),
            "lpips_fp32": q["fp32"]["lpips"], "lpips_bf16": q["bf16"]["lpips"],
            "lpips_bf16_minus_fp32": q["bf16"]["lpips"] - q["fp32"]["lpips"] if q["fp32"]["lpips"] is not None else None,
            "dists_fp32": q["fp32"]["dists"], "dists_bf16": q["bf16"]["dists"],
            "psnr_y_fp32": metrics.psnr_y(sp.noskip.video, hr), "psnr_y_bf16": metrics.psnr_y(sp.skip.video, hr),
            "psnr_y_bf16_vs_fp32": metrics.psnr_y(sp.skip.video, sp.noskip.video)}


def fit_height(hr: np.ndarray, height: int, scale: int) -> np.ndarray:
    """HR frames resized (antialiased bicubic) to `height`, the width by the aspect; both sides
    multiples of 2 x scale (even LR sides)."""
    t, h, w, _ = hr.shape
    m = 2 * scale
    nh, nw = height // m * m, int(round(w * height / h / m)) * m
    if (nh, nw) == (h, w):
        return hr
    return resize.resize_u8(hr, nh, nw)


def store_rows(out: dict, pipe: SkipSRPipeline, clip_id: str, clip_hash: str, hr: np.ndarray) -> list[dict]:
    """The bench's no-skip and skip runs as store rows (medians of the timed repeats)."""
    base = {"origin": "bench", **store.pipeline_fields(pipe), "clip_id": clip_id, "clip_hash": clip_hash,
            "frames": out["frames"], "width": out["out_w"], "height": out["out_h"], "degradation": "bicubic",
            "steps": out["steps"], "seed": 0}
    reasons = {"*": "not measured by the bench (it times the runs and scores PSNR-Y, JOD, LPIPS and DISTS)"}
    if "jod_skip" not in out:
        reasons.update(dict.fromkeys(("jod", "jod_vs_noskip", "jod_drop"), "--no-quality"))
    if "lpips_skip" not in out:
        reasons.update(dict.fromkeys(("lpips", "dists", "lpips_vs_noskip", "dists_vs_noskip"),
                                     out.get("perceptual_null_reason", "--no-quality")))
    rows = []
    for name in ("noskip", "skip"):
        numbers = {"psnr_y": out[f"psnr_y_{name}"], "jod": out.get(f"jod_{name}"), "lpips": out.get(f"lpips_{name}"), "dists": out.get(f"dists_{name}"),
                   "t_transformer_s": out[f"t_transformer_{name}_s"], "t_total_s": out[f"t_e2e_{name}_s"]}
        if name == "skip":
            numbers.update(skip_ratio=out["skip_ratio"], n_tokens=out["n_tokens"], n_kept=out["n_kept"],
                           padding_waste=out["padding_waste"], t_predictor_s=out["t_predictor_s"],
                           t_fastpath_s=out["t_fastpath_s"],
                           t_compose_s=out["t_compose_skip_s"], psnr_y_vs_noskip=out["psnr_y_skip_vs_noskip"],
                           lpips_vs_noskip=out.get("lpips_skip_vs_noskip"), dists_vs_noskip=out.get("dists_skip_vs_noskip"),
                           jod_vs_noskip=out.get("jod_skip_vs_noskip"), jod_drop=out.get("jod_drop"))
        else:
            numbers.update(skip_ratio=0.0, n_tokens=out["n_tokens"], n_kept=out["n_tokens"])
        rows.append(store.run_record(**base, tau=out["tau"] if name == "skip" else 0.0,
                                     mask_source=out["mask"] if name == "skip" else "none", numbers=numbers,
                                     reasons=reasons))
    return rows


MEMORY_SCRIPT = """
import contextlib, json, resource, sys
from skipsr.heap import bound_heap
if sys.argv[6] == "1":
    bound_heap()
from analysis.memtrace import WindowTrace, trend
from skipsr.pipeline import SkipSRPipeline
from skipsr.streaming import upscale_file
pipe = SkipSRPipeline.from_pretrained(sys.argv[4] or None, load_predictor=False, chunk_frames=8)
trace = WindowTrace(pipe) if sys.argv[7] == "1" else None
with trace or contextlib.nullcontext():
    res = upscale_file(pipe, sys.argv[1], sys.argv[2], tau=float(sys.argv[3]), mask="oracle", hr=sys.argv[5])
out = {"frames": res.frames, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "skip_ratio": res.skip_ratio, "total_s": res.timings["total"]}
if trace:
    out.update(windows=trace.windows, trend=trend(trace.windows))
print(json.dumps(out))
"""


def memory(frames_short: int, frames_long: int, tau: float, checkpoint_path: str | None,
           bounded: bool = False, window_trace: bool = False) -> dict:
    """Peak RSS of streaming a 720p-output upscale of a short and a long clip, each in a fresh process.
    window_trace: also each window's peak and the trend of the peaks (analysis/memtrace.py)."""
    from skipsr.video import VideoWriter

    out = {}
    with tempfile.TemporaryDirectory(prefix="skipsr-bench-") as tmp:
        for n in (frames_short, frames_long):
            hr_path, lr_path = Path(tmp) / f"hr{n}.mp4", Path(tmp) / f"lr{n}.mp4"
            with VideoWriter(hr_path, 24, preset="ultrafast") as whr, VideoWriter(lr_path, 24, preset="ultrafast") as wlr:
                for t0 in range(0, n, 10):  # generated in pieces: the bench itself stays small
                    # the long clip repeats the short one's content: what is measured is length, not content
                    hr, _ = flat_textured_clip(min(10, n - t0), 720, 1280, ModelConfig.token_px, seed=t0 % frames_short)
                    whr.write(hr)
                    wlr.write(resize.to_uint8(degrade.bicubic(resize.to_float(hr), 4)))
            res = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(lr_path), str(Path(tmp) / f"o{n}.mp4"),
                                  str(tau), checkpoint_path or "", str(hr_path), "1" if bounded else "0",
                                  "1" if window_trace else "0"],
                                 capture_output=True, text=True, check=False)
            if res.returncode:
                raise RuntimeError(res.stderr[-2000:])
            out[n] = json.loads(res.stdout.strip().splitlines()[-1])
    return {"short": out[frames_short], "long": out[frames_long],
            "rss_ratio": out[frames_long]["peak_rss_mb"] / out[frames_short]["peak_rss_mb"], "bounded_memory": bounded}


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="skipsr bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", help="HR clip (default: a generated 1280x720 clip with 60%% flat tokens)")
    cliutil.add_frames(ap, default=8)
    cliutil.add_tau(ap)
    cliutil.add_mask(ap, choices=("predicted", "oracle"))
    ap.add_argument("--height", type=int, choices=(540, 720, 1080, 1440, 2160),
                    help="HR height: the clip resized to it (aspect kept); default: the clip's own (generated: 720)")
    ap.add_argument("--no-whole-path", dest="whole_path_off", action="store_true",
                    help="time only the pipeline call, not also the upscale path from file to file (speedup_cli)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--flat-share", type=float, default=0.6)
    checkpoint.add_model_args(ap)
    ap.add_argument("--predictor", help=checkpoint.PREDICTOR_HELP)
    ap.add_argument("--fastpath", metavar="PATH", help="a fast-path checkpoint for skipped tokens, or 'none' for "
                    "bicubic (default: the one the model card names, else bicubic)")
    ap.add_argument("--memory", action="store_true", help="peak-memory check instead (short vs long clip)")
    ap.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                    help="the transformer's arithmetic (auto: bf16 where native, as `upscale` runs)")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the transformer's per-token parts and the fast path (both runs; the "
                         "compile happens in the warm-up, outside the timings)")
    ap.add_argument("--precision-check", action="store_true",
                    help="bf16 autocast vs fp32 instead: transformer speed-up and LPIPS / DISTS / PSNR-Y of each")
    ap.add_argument("--presets", action="store_true",
                    help="x264 presets on the clip's HR frames instead: seconds, size and PSNR-Y per frame")
    ap.add_argument("--frames-short", type=int, default=30)
    ap.add_argument("--frames-long", type=int, default=300)
    ap.add_argument("--bounded-memory", action="store_true", help="with --memory: glibc heap bounded (skipsr.heap)")
    ap.add_argument("--window-trace", action="store_true",
                    help="with --memory: also the peak of every window and their trend (analysis/memtrace.py)")
    ap.add_argument("--no-quality", action="store_true", help="skip LPIPS / DISTS (PSNR-Y only)")
    cliutil.add_results(ap, help="also write the no-skip and skip runs as store rows into this folder")
    cliutil.add_json(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.repeats < speed.MIN_REPEATS:
        raise cliutil.BadInput(f"--repeats must be >= {speed.MIN_REPEATS} (medians of at least {speed.MIN_REPEATS} runs)")
    cliutil.check_taus(args.tau)
    cliutil.check_files([args.clip], "clip")
    if args.results and (args.precision_check or args.presets or args.memory):
        raise cliutil.BadInput("--results stores the skip / no-skip runs of the speed bench, not the other checks")
    if args.presets:
        hr = read_video(args.clip, max_frames=args.frames) if args.clip else flat_textured_clip(
            args.frames, 720, 1280, ModelConfig.token_px, args.flat_share)[0]
        out = {"clip": Path(args.clip).name if args.clip else "synthetic-720p", "out_w": int(hr.shape[2]),
               "out_h": int(hr.shape[1]), "presets": encode_presets(hr), "chosen": ENCODE_PRESET}
    elif args.memory:
        out = memory(args.frames_short, args.frames_long, args.tau if args.tau is not None else 4.0, args.checkpoint,
                     args.bounded_memory, args.window_trace)
    else:
        cliutil.check_files([args.fastpath if args.fastpath != checkpoint.NONE else None], "fast-path checkpoint")
        pipe = SkipSRPipeline.from_pretrained(args.checkpoint, args.predictor, load_predictor=args.mask == "predicted",
                                              chunk_frames=max(16, args.frames), fastpath=args.fastpath,
                                              precision=args.precision, compile=args.compile)
        if args.clip:
            hr, fps = read_video(args.clip, max_frames=args.frames), float(probe(args.clip).fps)
            clip_id = Path(args.clip).name
            source_size = (int(hr.shape[2]), int(hr.shape[1]))
            if args.height:
                hr = fit_height(hr, args.height, pipe.cfg.scale)
        else:
            height = args.height or 720
            hr, textured = flat_textured_clip(args.frames, height, height * 16 // 9 // 16 * 16, ModelConfig.token_px,
                                              args.flat_share)
            clip_id, fps = f"synthetic-{height}p-flat{args.flat_share:g}", 24.0
        tau, steps = pipe.resolve(args.tau, args.steps)  # the card's defaults unless given
        out = {"clip": clip_id, "model": pipe.cards.model.id, "precision": pipe.precision, "compiled": pipe.config.compile,
               **store.environment()}
        if args.precision_check:
            out.update(precision_check(hr, pipe, tau, args.mask, steps, args.repeats), tau=tau, frames=len(hr))
            args.whole_path_off = True
        else:
            out.update(bench(hr, pipe, tau, args.mask, steps, args.repeats, with_quality=not args.no_quality, fps=fps))
        if not args.whole_path_off:
            out.update(whole_path(hr, pipe, tau, args.mask, steps, args.repeats))
        if not args.clip:
            out["generated_flat_share"] = float(1 - textured.mean())
        elif args.height:
            out["clip_size"] = source_size
        if args.results:
            clip_hash = store.file_hash(args.clip) if args.clip else store.array_hash(hr)
            store.ResultsStore(args.results).append(store_rows(out, pipe, clip_id.rsplit(".", 1)[0], clip_hash, hr))
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:40s} {v:.4g}" if isinstance(v, float) else f"{k:40s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
