"""Choose the grain strength on TRAINING clips (never the validation clips the cards report).

    python -m analysis.choose_grain --model adversarial --clips 12 --tau 1.5 2 --grain 0 1 [--fastpath PATH] [--json]

For each training clip (spread over the split, 8 frames), clean and realistic, the no-skip output
once, then skip runs at every tau x grain strength with the predicted mask: the mean LPIPS, DISTS
and PSNR-Y of skip minus no-skip, and the skip share. The strength goes into the card through
`skipsr evaluate --grain K --write-card`, which measures it on the validation clips.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from tqdm import tqdm

from skipsr import checkpoint, cliutil, grain, measure
from skipsr.evaluate import DEGRADATIONS, validation_clips
from skipsr.pipeline import SkipSRPipeline


def sweep(pipe: SkipSRPipeline, clips, taus, strengths, steps: int | None = None, seed: int = 0,
          progress=None) -> dict:
    """{"degradation@tau/gK": mean rises over the clips} (skip minus the same model's no-skip); clips:
    (id, path, HR (T, H, W, 3) uint8) as `validation_clips` gives them. Leaves pipe.grain as it was."""
    rows: dict[tuple, list[dict]] = {}
    steps = pipe.default_steps if steps is None else steps
    grain0 = pipe.grain
    try:
        for degradation in DEGRADATIONS:
            for _, _, hr in clips:
                clip = measure.prepare_clip(hr, pipe.cfg, degradation, seed)
                ref, noskip = measure.measure_run(pipe, clip, 0.0, "none", steps, seed)
                for tau in taus:
                    for k in strengths:
                        pipe.grain = k
                        r, _ = measure.measure_run(pipe, clip, tau, "predicted", steps, seed, noskip.video)
                        rows.setdefault((degradation, tau, k), []).append(
                            {"lpips_rise": r["lpips"] - ref["lpips"], "dists_rise": r["dists"] - ref["dists"],
                             "psnr_y_rise_db": r["psnr_y"] - ref["psnr_y"], "skip_ratio": r["skip_ratio"]})
                if progress is not None:
                    progress(1)
    finally:  # also when a run fails: the caller's pipeline keeps its grain
        pipe.grain = grain0
    return {f"{d}@{t:g}/g{k:g}": {m: float(np.mean([x[m] for x in v])) for m in v[0]} for (d, t, k), v in rows.items()}


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
    cliutil.add_json(ap)
    args = ap.parse_args(argv)
    cliutil.check_taus(args.tau)
    for k in args.grain:
        grain.check_strength(k)  # before any model loads
    cliutil.check_folder(args.data, "data folder")
    pipe = SkipSRPipeline.from_pretrained(args.checkpoint, fastpath=args.fastpath, chunk_frames=16)
    clips = validation_clips(args.data, args.clips, 8, split="train")
    with tqdm(total=len(clips) * len(DEGRADATIONS), desc="choose grain", disable=args.json or None) as bar:
        out = sweep(pipe, clips, args.tau, args.grain, args.steps, progress=bar.update)
    if args.json:
        print(json.dumps({"model": pipe.card.get("id"), "fastpath": pipe.fastpath_card.get("id"),
                          "clips": [c for c, _, _ in clips], "rises": out}))
    else:
        print("| run | skip ratio | LPIPS rise | DISTS rise | PSNR-Y rise dB |\n|---|---|---|---|---|")
        for name, r in out.items():
            print(f"| {name} | {r['skip_ratio']:.2f} | {r['lpips_rise']:+.4f} | {r['dists_rise']:+.4f} | "
                  f"{r['psnr_y_rise_db']:+.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
