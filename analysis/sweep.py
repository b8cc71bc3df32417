"""Tau sweeps into the metrics store (docs/design.md section 8), locally or on Ray.

    python -m analysis.sweep --clips examples/*.mp4 --taus 2 4 6 8 [--mask predicted oracle] \\
        [--models multistep distilled adversarial] [--engine local|ray] [--frames 8] --results results/ \\
        [--degradation bicubic realistic] [--peers span dat-light basicvsr realesrgan animevideov3 bicubic]

Every model x clip x tau x mask source, plus the no-skip run of each model and clip, becomes one
row with the full reproducibility record; each model runs at its card's default steps unless
--steps says otherwise. One task per (clip, model) (its no-skip output is the reference of its
skip runs' distance); each task writes its own shard. Rows already in the store (same model, clip, scale,
frames, degradation, tau, mask, steps, seed) are skipped, so an interrupted sweep resumes.

`--peers` adds one row per (peer, clip, degradation) (analysis/peers.py; `method` is the peer's
name), timed in this process with this process's threads and scored like our runs; a peer that is
not installed is skipped with its reason. Peers run in this process even with `--engine ray`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from skipsr import checkpoint, cliutil
from skipsr.config import ModelCard
from skipsr.evaluation import measure, store
from skipsr.model import ModelConfig
from skipsr.pipeline import SkipSRPipeline
from skipsr.video import probe, read_video

log = logging.getLogger("analysis.sweep")

SWEEP_TAUS = (1.0, 2.0, 4.0, 6.0, 8.0)  # plus each model's default tau


def sweep_taus(taus: list[float] | None, card: dict) -> list[float]:
    """The taus a model is swept at: the given ones, or SWEEP_TAUS plus the model's default tau."""
    if taus:
        return [float(t) for t in taus]
    return sorted({*SWEEP_TAUS, ModelCard(card).default_tau} - {0.0})


def runs_per_clip(taus: list[float] | None, model_path: str | None, mask_sources: list[str]) -> int:
    """How many runs a (clip, model) task asks for: its no-skip run plus taus x mask sources."""
    try:
        card = checkpoint.read_card(checkpoint.resolve(model_path))
    except FileNotFoundError:  # a random init (no shipped model): no default tau of its own
        card = {}
    return 1 + len(sweep_taus(taus, card)) * len(mask_sources)


def sweep_clip(clip_path: str, taus: list[float] | None, mask_sources: list[str], steps: int | None, seed: int, frames: int,
               degradation: str, results: str, model_path: str | None, predictor_path: str | None,
               with_vmaf: bool = True, progress=None) -> int:
    """All runs of one clip that the store lacks; writes one shard. Returns the number of rows written."""
    pipe = SkipSRPipeline.from_pretrained(model_path, predictor_path, load_predictor="predicted" in mask_sources,
                                          chunk_frames=max(16, frames))
    card, pcard, model = pipe.cards.model.raw, pipe.cards.predictor.raw, pipe.model
    steps = pipe.resolve(None, steps)[1]  # the card's default steps unless given
    taus = sweep_taus(taus, card)
    res_store = store.ResultsStore(results)
    done = res_store.done_keys()
    hr = read_video(clip_path, max_frames=frames)
    clip = measure.prepare_clip(hr, model.cfg, degradation, seed, fps=float(probe(clip_path).fps))
    base = {"origin": "sweep", **store.pipeline_fields(pipe),
            **store.clip_fields(Path(clip_path).stem, clip_path, clip.hr, degradation), "steps": steps, "seed": seed}
    key = {**store.model_identity(card, pcard, base["fastpath_card"], base["grain"]), **base}
    runs = [(0.0, "none")] + [(float(t), m) for t in taus for m in mask_sources]
    todo = [(t, m) for t, m in runs if store.run_key({**key, "tau": t, "mask_source": m}) not in done]
    if not todo:
        return 0
    noskip_row, noskip = measure.measure_run(pipe, clip, 0.0, "none", steps, seed, with_vmaf=with_vmaf)
    rows = []
    for tau, mask in todo:
        if mask == "none":
            numbers = noskip_row
        else:
            numbers = measure.measure_run(pipe, clip, tau, mask, steps, seed, noskip.video, with_vmaf, noskip_row)[0]
        rows.append(store.run_record(**base, tau=tau, mask_source=mask, numbers=numbers))
        if progress is not None:
            progress(1)
    res_store.append(rows)
    return len(rows)


def sweep_peer(clip_path: str, name: str, seed: int, frames: int, degradation: str, results: str,
               with_vmaf: bool = True, threads: int | None = None) -> int:
    """The row of one peer on one clip (if the store lacks it); one shard. Returns rows written."""
    from analysis import peers

    res_store = store.ResultsStore(results)
    hr = read_video(clip_path, max_frames=frames)
    clip = measure.prepare_clip(hr, ModelConfig(), degradation, seed, fps=float(probe(clip_path).fps))
    base = {"origin": "sweep", **store.clip_fields(Path(clip_path).stem, clip_path, clip.hr, degradation), "seed": seed,
            **peers.record_fields(name)}
    key = {**store.model_identity(base["card"], {}), **base}
    if store.run_key(key) in res_store.done_keys():
        return 0
    numbers = measure.measure_upscaler(peers.load(name, threads or torch.get_num_threads()), clip, with_vmaf)
    res_store.append([store.run_record(**base, numbers=numbers)])
    return 1


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="skipsr sweep", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", nargs="+", required=True, help="HR clips (the LR is made from them)")
    cliutil.add_tau(ap, several=True,
                    help=f"thresholds (default: {' '.join(f'{t:g}' for t in SWEEP_TAUS)} plus each model's default tau)")
    ap.add_argument("--mask", nargs="+", default=["predicted"], choices=("predicted", "oracle"),
                    help="mask sources (default: predicted)")
    ap.add_argument("--engine", default="local", choices=("local", "ray"))
    ap.add_argument("--steps", type=int, help=checkpoint.STEPS_HELP)
    ap.add_argument("--seed", type=int, default=0)
    cliutil.add_frames(ap, default=8, help="frames per clip")
    ap.add_argument("--degradation", "--degradations", dest="degradation", nargs="+", default=["bicubic"],
                    choices=("bicubic", "realistic"), help="input degradations (several: one after the other)")
    ap.add_argument("--peers", nargs="+", default=[], metavar="NAME",
                    help="also these peers (analysis/peers.py: span realesrgan animevideov3 dat-light basicvsr bicubic)")
    ap.add_argument("--models", "--checkpoint", dest="models", nargs="+", default=[None], metavar="NAME|PATH",
                    help=checkpoint.MODEL_HELP + "; several run one after the other, each at its default steps")
    ap.add_argument("--predictor", help=checkpoint.PREDICTOR_HELP)
    ap.add_argument("--no-vmaf", action="store_true")
    cliutil.add_results(ap, default="results")
    cliutil.add_json(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cliutil.check_files(args.clips, "clip")
    cliutil.check_taus(args.tau)
    args.taus = args.tau
    from analysis import peers

    runnable, skipped = peers.select(args.peers)
    peer_jobs = [(c, p, d) for d in args.degradation for p in runnable for c in args.clips]
    jobs = [(c, m) for m in args.models for c in args.clips]
    n_runs = len(args.degradation) * sum(runs_per_clip(args.taus, m, args.mask) for _, m in jobs) + len(peer_jobs)
    kw = dict(taus=args.taus, mask_sources=args.mask, steps=args.steps, seed=args.seed, frames=args.frames,
              results=args.results, predictor_path=args.predictor, with_vmaf=not args.no_vmaf)
    written = 0
    with tqdm(total=n_runs, desc=f"sweep ({args.engine})", unit="run") as bar:
        for degradation in args.degradation:
            if args.engine == "local":
                written += sum(sweep_clip(c, model_path=m, degradation=degradation, progress=bar.update, **kw)
                               for c, m in jobs)
            else:
                written += run_on_ray(jobs, {**kw, "degradation": degradation}, bar)
        for c, p, d in peer_jobs:
            written += sweep_peer(c, p, args.seed, args.frames, d, args.results, not args.no_vmaf)
            bar.update(1)
    summary = {"rows_written": written, "runs_requested": n_runs, "results": args.results,
               "peers_skipped": skipped}
    print(json.dumps(summary) if args.json else
          f"wrote {written} rows to {args.results} ({n_runs - written} of {n_runs} runs were already there)")
    return 0


def _ray_sweep_clip(clip: str, model_path: str | None, **kw) -> int:
    import torch

    torch.set_num_threads(1)  # one core per task: tasks run side by side
    return sweep_clip(clip, model_path=model_path, **kw)


def run_on_ray(jobs: list[tuple[str, str | None]], kw: dict, bar) -> int:
    """One Ray task per (clip, model), each writing its own shard; a local Ray is started if none is running."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1)(_ray_sweep_clip)
    pending = {task.remote(c, m, **kw): (c, m) for c, m in jobs}
    written = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        n = ray.get(ready[0])
        written += n
        bar.update(runs_per_clip(kw["taus"], pending[ready[0]][1], kw["mask_sources"]))
        del pending[ready[0]]
    return written


if __name__ == "__main__":
    sys.exit(main())
