"""Long videos across machines: the pipeline's temporal windows as Ray tasks (docs/design.md section 7).

    python -m skipsr upscale IN.mp4 OUT.mp4 --engine ray [--address ADDR] [--workers N]

A `Stream` already processes a video as windows of `chunk_frames` frames overlapping by
`overlap_frames` (`pipeline.windows`) and cross-fades the overlaps. Here each window is a task on
one of N actors (one per CPU of the cluster by default, each holding the model once, one torch
thread each): the actor decodes its own frame range from the input (every worker must see the
path: a shared or copied file), runs `run_window` and returns the frames through Ray's object
store. The driver takes the windows back in order (at most 2 x N in flight, so memory stays
bounded), cross-fades them exactly as a `Stream` does and encodes one mp4 with the input's
audio. A window's output depends only on its frames and its position (the noise is seeded by
it), so the output equals the local run's; floats summed in another order by another thread count
may differ in the last bit (README "Speed" says what was measured).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch

from skipsr.pipeline import SkipSRPipeline
from skipsr.stream import crossfade, windows
from skipsr.streaming import ENCODE_PRESET
from skipsr.video import VideoWriter, iter_chunks, probe

log = logging.getLogger("skipsr.ray_engine")


def read_range(path: str, start: int, n: int) -> np.ndarray:
    """Frames [start, start + n) of a video, decoded from its beginning (LR decoding is cheap)."""
    frames, seen = [], 0
    for chunk in iter_chunks(path, chunk_frames=16, max_frames=start + n):
        lo = max(start - seen, 0)
        if lo < len(chunk):
            frames.append(chunk[lo:])
        seen += len(chunk)
    return np.concatenate(frames)[:n]


class WindowWorker:
    """A Ray actor: one pipeline, loaded once, upscaling windows of a file."""

    def __init__(self, model: str | None, predictor: str | None, fastpath: str | None, chunk_frames: int,
                 precision: str = "fp32", threads: int = 1):
        torch.set_num_threads(threads)
        self.pipe = SkipSRPipeline.from_pretrained(model, predictor, fastpath=fastpath, chunk_frames=chunk_frames,
                                                   precision=precision)

    def run(self, src: str, start: int, n: int, tau: float, mask: str, steps: int, seed: int):
        t0 = time.perf_counter()
        win, timings = self.pipe.run_window(read_range(src, start, n), start, tau, mask, steps, seed)
        return win.video.cpu().numpy(), win.n_tokens, win.n_kept, {**timings, "window_s": time.perf_counter() - t0}


def upscale_ray(src: str, dst: str, *, progress=None, **kw) -> dict:
    """Upscale `src` into `dst` (H.264, the input's fps and audio) on a Ray cluster: `ray_frames`
    encoded. Returns its stats."""
    info = probe(src)  # bad input fails here, before any worker starts
    stats: dict = {}
    with VideoWriter(dst, info.fps, audio_from=src, preset=ENCODE_PRESET) as writer:
        for frames in ray_frames(src, stats=stats, **kw):
            writer.write(frames)
            if progress is not None:
                progress(len(frames))
    return stats


def ray_frames(src: str, *, model: str | None = None, predictor: str | None = None, fastpath: str | None = None,
               tau: float | None = None, mask: str = "predicted", steps: int | None = None, seed: int = 0,
               chunk_frames: int = 16, max_frames: int | None = None, address: str | None = None,
               workers: int | None = None, precision: str = "fp32", stats: dict | None = None):
    """Yield the HR frames (n, H, W, 3) uint8 of `src` in order, computed on a Ray cluster (`address`;
    None: a local `ray.init` with this machine's CPUs) by `workers` actors (default: one per CPU) in
    `precision` (fp32, bf16; auto: native where the worker has it). `stats` receives {"frames",
    "windows", "workers", "skip_ratio", "n_tokens", "n_kept", "wall_s", "window_s" (summed task
    seconds), "tau", "out_w", "out_h"}."""
    import ray

    if mask == "oracle":
        raise ValueError("the Ray engine runs the predicted mask or none (the oracle needs the HR: run locally)")
    info = probe(src)
    src = str(Path(src).resolve())
    if not ray.is_initialized():
        kw = {"address": address} if address else {"num_cpus": os.cpu_count()}
        ray.init(**kw, include_dashboard=False, log_to_driver=False)
    n_workers = workers or max(int(ray.cluster_resources().get("CPU", 1)), 1)
    local = SkipSRPipeline.from_pretrained(model, predictor, fastpath=fastpath, chunk_frames=chunk_frames,
                                           load_predictor=False)  # defaults and geometry only
    tau, steps = local.resolve(tau, steps)
    total = min(info.frames, max_frames) if max_frames else info.frames
    plan = windows(total, chunk_frames, local.config.overlap_frames)
    actor = ray.remote(num_cpus=1)(WindowWorker)
    actors = [actor.remote(model, predictor, fastpath, chunk_frames, precision) for _ in range(n_workers)]
    t0 = time.perf_counter()
    pending: deque = deque()

    def submit(k: int) -> None:
        start, n = plan[k]
        pending.append(actors[k % n_workers].run.remote(src, start, n, tau, mask, steps, seed))

    for k in range(min(len(plan), 2 * n_workers)):
        submit(k)
    ov, tail = local.config.overlap_frames, None
    n_tok = n_kept = written = 0
    window_s = 0.0
    try:
        for k in range(len(plan)):
            out, nt, nk, timings = ray.get(pending.popleft())
            if k + 2 * n_workers < len(plan):
                submit(k + 2 * n_workers)
            out = torch.from_numpy(np.array(out))  # the object store hands out read-only arrays
            if tail is not None:  # exactly as a Stream
                crossfade(tail, out)
            keep = ov if plan[k][1] == chunk_frames and k + 1 < len(plan) else 0
            emit = out[: len(out) - keep]
            tail = out[len(out) - keep:] if keep else None
            n_tok, n_kept, window_s, written = n_tok + nt, n_kept + nk, window_s + timings["window_s"], written + len(emit)
            yield emit.numpy()
    finally:
        for a in actors:
            ray.kill(a)
    if stats is not None:
        stats.update(frames=written, windows=len(plan), workers=n_workers, skip_ratio=1 - n_kept / max(n_tok, 1),
                     n_tokens=n_tok, n_kept=n_kept, wall_s=time.perf_counter() - t0, window_s=window_s, tau=tau,
                     out_w=info.width * local.cfg.scale, out_h=info.height * local.cfg.scale)
