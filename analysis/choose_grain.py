"""Choose the grain strength and motion on TRAINING clips (never the validation clips the cards report).

    python -m analysis.choose_grain --model adversarial --clips 12 --tau 4 8 --grain 0 1 \
        --motion static per-frame [--fastpath PATH] [--json]

For each training clip (spread over the split, 8 frames), clean and realistic, the no-skip output
once, then skip runs at every tau x grain variant with the predicted mask (a variant: strength 0, or
a strength > 0 with each motion of `skipsr.grain.MOTIONS`): the skip cost against that no-skip run,
as rule v2 judges it (the worst clip's JOD drop, and the mean) with the mean rises of E*warp, LPIPS,
DISTS and PSNR-Y beside it. The choice goes into the card through
`skipsr evaluate --grain K --write-card`, which measures it on the validation clips.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from tqdm import tqdm

from skipsr import checkpoint, cliutil, grain
from skipsr.evaluation import measure, metrics, valset
from skipsr.evaluation.evaluate import DEGRADATIONS
from skipsr.pipeline import SkipSRPipeline


def variants(strengths, motions) -> list[tuple[float, str]]:
    """(strength, motion) pairs: strength 0 once (no grain moves), every other strength x motion."""
    return [(float(k), m) for k in strengths for m in (motions if k > 0 else motions[:1])]


def variant_name(strength: float, motion: str) -> str:
    return "g0" if strength == 0 else f"g{strength:g}-{motion}"


def sweep(pipe: SkipSRPipeline, clips, taus, strengths, steps: int | None = None, seed: int = 0,
          progress=None, motions=("static",)) -> dict:
    """{"degradation@tau/variant": cost summary over the clips} (skip vs the same model's no-skip);
    clips: valset.ValClip. Each variant runs on `pipe.with_config(grain=..., grain_motion=...)`."""
    rows: dict[tuple, list[dict]] = {}
    steps = pipe.default_steps if steps is None else steps
    grainy = {(k, motion): pipe.with_config(grain=k, grain_motion=motion) for k, motion in variants(strengths, motions)}
    for degradation in DEGRADATIONS:
        for c in clips:
            clip = measure.prepare_clip(c.hr, pipe.cfg, degradation, seed, c.fps)
            ref, noskip = measure.measure_run(pipe, clip, 0.0, "none", steps, seed)
            for tau in taus:
                for (k, motion), variant in grainy.items():
                    r, _ = measure.measure_run(variant, clip, tau, "predicted", steps, seed, noskip.video)
                    cost = metrics.skip_cost(r, ref)
                    rows.setdefault((degradation, tau, variant_name(k, motion)), []).append(
                        {**{key: cost[key] for key in ("jod_drop", "warp_error_rise", "lpips_rise", "dists_rise")},
                         "psnr_y_rise_db": r["psnr_y"] - ref["psnr_y"], "skip_ratio": r["skip_ratio"]})
            if progress is not None:
                progress(1)
    out = {}
    for (d, t, name), v in rows.items():
        summary = {m: float(np.mean([x[m] for x in v if x[m] is not None])) if any(x[m] is not None for x in v)
                   else None for m in v[0]}
        jod = [x["jod_drop"] for x in v if x["jod_drop"] is not None]
        summary["max_jod_drop"] = float(np.max(jod)) if jod else None
        out[f"{d}@{t:g}/{name}"] = summary
    return out


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.choose_grain", description=__doc__.split("\n\n")[0])
    checkpoint.add_model_args(ap)
    ap.add_argument("--fastpath", metavar="PATH", help="fast-path checkpoint (default: the card's companion)")
    cliutil.add_data(ap)
    ap.add_argument("--clips", type=int, default=12, help="training clips, spread over the split")
    cliutil.add_tau(ap, several=True, default=[1.5, 2.0], help="thresholds (8-bit RMSE units)")
    ap.add_argument("--grain", type=float, nargs="+", default=[0.0, 1.0], help="grain strengths to compare")
    ap.add_argument("--motion", nargs="+", default=list(grain.MOTIONS), choices=grain.MOTIONS,
                    help="grain motions to compare (strengths above 0)")
    cliutil.add_json(ap)
    args = ap.parse_args(argv)
    cliutil.check_taus(args.tau)
    for k in args.grain:
        grain.check_strength(k)  # before any model loads
    cliutil.check_folder(args.data, "data folder")
    pipe = SkipSRPipeline.from_pretrained(args.checkpoint, fastpath=args.fastpath, chunk_frames=16)
    clips = valset.training_clips(args.data, args.clips, 8)
    with tqdm(total=len(clips) * len(DEGRADATIONS), desc="choose grain", disable=args.json or None) as bar:
        out = sweep(pipe, clips, args.tau, args.grain, args.steps, progress=bar.update, motions=args.motion)
    if args.json:
        print(json.dumps({"model": pipe.cards.model.id, "fastpath": pipe.cards.fastpath.id,
                          "clips": [c.id for c in clips], "costs": out}))
    else:
        print("| run | skip ratio | JOD drop, worst clip | JOD drop, mean | E*warp rise | LPIPS rise | DISTS rise | "
              "PSNR-Y rise dB |\n|---|---|---|---|---|---|---|---|")
        f = lambda v, fmt: "-" if v is None else format(v, fmt)  # noqa: E731
        for name, r in out.items():
            print(f"| {name} | {r['skip_ratio']:.2f} | {f(r['max_jod_drop'], '+.3f')} | {f(r['jod_drop'], '+.3f')} | "
                  f"{f(r['warp_error_rise'], '+.3f')} | {f(r['lpips_rise'], '+.4f')} | {f(r['dists_rise'], '+.4f')} | "
                  f"{r['psnr_y_rise_db']:+.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
