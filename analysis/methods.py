"""Our models and the peers, on the same clips in one run: the README's comparison table.

    python -m analysis.methods [--clips N] [--frames 8] [--models multistep distilled adversarial] \\
        [--peers span realesrgan animevideov3 dat-light basicvsr bicubic] [--results DIR] --json

Quality: the validation set (`skipsr/valset.py`, as `skipsr evaluate`; --clips N takes the first N),
clean bicubic x4 and realistic (blur, noise, H.264); each of our models with skipping off and at
its card's default tau (predicted mask), each peer; JOD, PSNR-Y, SSIM-Y, LPIPS, DISTS, E*warp,
means over clips.
Speed: seconds per output frame at 1280x720 on a virtual-camera clip rendered from a validation
photo, in this process with this process's threads: a warm-up call of each, then 3 rounds in which
every method runs once (interleaved); the median (our models: the pipeline call, mask included).
`--no-quality` times only (run it on a quiet machine), `--models` with no name scores the peers only. With --results every quality run
is also a store row (the common record; `method` names the peer).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from analysis import peers
from skipsr import cliutil, degrade, resize
from skipsr.evaluation import measure, store, valset
from skipsr import data as datamod
from skipsr.evaluation.evaluate import DEGRADATIONS, mean_rows
from skipsr.model import ModelConfig
from skipsr.pipeline import SkipSRPipeline
from skipsr.video import read_video

log = logging.getLogger("analysis.methods")

MODELS = ("multistep", "distilled", "adversarial")
COLUMNS = (("s_per_frame_720p", "s/frame 720p", 3), ("skip_ratio", "skipped", 2), ("jod", "JOD", 2),
           ("psnr_y", "PSNR-Y", 2), ("ssim_y", "SSIM-Y", 4), ("lpips", "LPIPS", 4), ("dists", "DISTS", 4),
           ("warp_error", "E*warp", 3))
QUALITY = ("jod", "psnr_y", "ssim_y", "lpips", "dists", "warp_error", "skip_ratio")
SPEED_FRAMES = 3
SPEED_PHOTO = "mate-backgrounds/GreenMeadow"  # a validation photo (the meadow example's source)


def method_runs(models: list[str], peer_names: list[str], threads: int) -> dict[str, tuple[str, object]]:
    """{row name: (kind, runner)}: "<model>" (no skip), "<model>@tau" (default tau) and each peer."""
    runs: dict[str, tuple[str, object]] = {}
    for name in models:
        pipe = SkipSRPipeline.from_pretrained(name, chunk_frames=32)
        runs[f"{name} no-skip"] = ("ours", (pipe, 0.0))
        runs[f"{name} @tau {pipe.default_tau:g}"] = ("ours", (pipe, pipe.default_tau))
    for name in peer_names:
        runs[name] = ("peer", peers.load(name, threads))
    return runs


def upscaler(kind: str, runner) -> callable:
    """One call LR (T, h, w, 3) uint8 -> SR uint8 for either kind (what the speed table times)."""
    if kind == "peer":
        return runner
    pipe, tau = runner
    return lambda lr: pipe(lr, tau=tau, mask="predicted" if tau > 0 else "none", steps=pipe.default_steps, seed=0).video


def quality_table(runs: dict, clips, degradations, results: str | None, seed: int = 0) -> tuple[dict, dict]:
    """({degradation: {row name: mean numbers over clips}}, {degradation: {clip id: {row name: numbers}}});
    with `results` every run is also a store row."""
    out, by_clip = {}, {}
    with tqdm(total=len(degradations) * len(clips) * len(runs), desc="quality", unit="run") as bar:
        for degradation in degradations:
            per_clip: list[dict[str, dict]] = []  # {row name: numbers} per clip
            for c in clips:
                clip = measure.prepare_clip(c.hr, ModelConfig(), degradation, seed, c.fps)
                rows, numbers_of = [], {}
                for name, (kind, runner) in runs.items():
                    if kind == "peer":
                        numbers = measure.measure_upscaler(runner, clip)
                    else:
                        pipe, tau = runner
                        numbers = measure.measure_run(pipe, clip, tau, "predicted" if tau > 0 else "none",
                                                      pipe.default_steps, seed)[0]
                    numbers_of[name] = numbers
                    rows.append(record(name, kind, runner, c.id, c.path, clip, degradation, seed, numbers))
                    bar.update(1)
                per_clip.append(numbers_of)
                by_clip.setdefault(degradation, {})[c.id] = {
                    name: {k: n.get(k) for k in QUALITY} for name, n in numbers_of.items()}
                if results:
                    store.ResultsStore(results).append(rows)
            means = mean_rows(per_clip)
            out[degradation] = {name: {k: m.get(k) for k in QUALITY} for name, m in means.items()}
    return out, by_clip


def record(name: str, kind: str, runner, clip_id: str, path: Path | None, clip, degradation: str, seed: int,
           numbers: dict) -> dict:
    """A quality run as a store row."""
    keep = {k: v for k, v in numbers.items() if k in store.NUMBER_COLUMNS}
    base = {"origin": "methods", **store.clip_fields(clip_id, path, clip.hr, degradation), "seed": seed}
    if kind == "peer":
        return store.run_record(**base, **peers.record_fields(name), numbers=keep)
    pipe, tau = runner
    return store.run_record(**base, **store.pipeline_fields(pipe), tau=tau,
                            mask_source="predicted" if tau > 0 else "none", steps=pipe.default_steps, numbers=keep,
                            reasons={"*": "not measured by analysis.methods (quality and time only)"})


def speed_clip(data=None) -> np.ndarray:
    """A 1280x720 virtual-camera clip (SPEED_FRAMES frames) from a validation photo, as HR uint8."""
    root = datamod.data_root(data)
    photos = {p["id"]: p for p in datamod.load_manifest(root)["photos"]}
    if SPEED_PHOTO not in photos:
        raise FileNotFoundError(f"no {SPEED_PHOTO} under {root}: run `make data` first")
    with tempfile.TemporaryDirectory(prefix="skipsr-methods-") as tmp:
        out = Path(tmp) / "speed720p.mp4"
        datamod.render_clip(str(out), str(root / photos[SPEED_PHOTO]["path"]), 1280, 720, SPEED_FRAMES, 24, seed=7)
        return read_video(out)


def speed_table(runs: dict, hr: np.ndarray, repeats: int = 3) -> dict:
    """{row name: seconds per 720p output frame}: every method warmed up, then `repeats` rounds in which
    each method runs once (interleaved, so a busy spell of the machine touches all alike); the median."""
    lr = resize.to_uint8(degrade.bicubic(resize.to_float(hr), peers.SCALE))
    fns = {name: upscaler(kind, runner) for name, (kind, runner) in runs.items()}
    for fn in tqdm(fns.values(), desc="warm-up at 720p", unit="method"):
        fn(lr[:2])  # first-call allocations, thread pools, ncnn pipeline build
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in tqdm(range(repeats), desc="timed rounds at 720p", unit="round"):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(lr)
            times[name].append((time.perf_counter() - t0) / len(lr))
    return {name: statistics.median(t) for name, t in times.items()}


def markdown(result: dict) -> str:
    """One table per degradation: a row per method, s/frame at 720p beside the quality means."""
    parts = []
    for degradation, rows in result["quality"].items():
        lines = ["| method | " + " | ".join(label for _, label, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
        for name, numbers in rows.items():
            numbers = {**numbers, "s_per_frame_720p": result["s_per_frame_720p"].get(name)}
            label = peers.PEERS[name].label if name in peers.PEERS else name
            cells = [f"{numbers[k]:.{d}f}" if numbers.get(k) is not None else "-" for k, _, d in COLUMNS]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        parts.append(f"{degradation}:\n\n" + "\n".join(lines))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="skipsr methods", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, help="only the first N clips of the validation set (default: all)")
    cliutil.add_frames(ap, default=8, help="frames per clip")
    ap.add_argument("--models", nargs="*", default=list(MODELS), help="shipped models (names or paths; none: peers only)")
    ap.add_argument("--peers", nargs="+", default=list(peers.PEERS), metavar="NAME",
                    help=f"peers (default: all available of {', '.join(peers.PEERS)})")
    ap.add_argument("--degradations", nargs="+", default=list(DEGRADATIONS), choices=DEGRADATIONS)
    ap.add_argument("--no-speed", action="store_true", help="skip the 720p timing")
    ap.add_argument("--no-quality", action="store_true", help="only the 720p timing (on a quiet machine)")
    cliutil.add_data(ap)
    cliutil.add_results(ap, help="also write every quality run as a store row into this folder")
    cliutil.add_json(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cliutil.check_folder(args.data, "data folder")
    runnable, skipped = peers.select(args.peers)
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    runs = method_runs(args.models, runnable, threads)
    clips = valset.validation_set(args.data, args.clips, args.frames)
    quality, per_clip = ({}, {}) if args.no_quality else quality_table(runs, clips, args.degradations, args.results)
    result = {"clips": [c.id for c in clips], "frames": args.frames, "threads": threads,
              "peers_skipped": skipped, **store.environment(), "quality": quality, "per_clip": per_clip,
              "s_per_frame_720p": {} if args.no_speed else speed_table(runs, speed_clip(args.data)),
              "command": "python -m analysis.methods " + " ".join(sys.argv[1:] if argv is None else argv)}
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
