"""Validation: quality of bicubic, no-skip and skip (several taus), and predictor agreement.

    python -m skipsr.evaluation.evaluate [--model NAME|PATH] [--predictor P] [--clips N] [--frames 8] --json [--write-card]
        [--results DIR]   # also every run as a store row (docs/design.md section 8)
    python -m skipsr.evaluation.evaluate --model multistep --choose-steps 1 2 4 [--write-card]   # its default steps

Clips: the validation set (`skipsr/valset.py`: smooth photos, fine texture, foliage, lines, periodic
patterns, text, real footage, fur), each degraded twice: clean bicubic x4 and the seeded real-world
chain (blur, noise, H.264; `--degradations` picks). For each clip: ColorVideoVDP JOD, PSNR-Y,
SSIM-Y, LPIPS, DISTS and the flow warping error (VMAF with --vmaf) of bicubic, of the no-skip output
and of the skip output at each tau (predicted mask, and the oracle mask with --oracle); PSNR-Y on
tokens whose oracle detail score >= 4 ("detail tokens"); the predictor's precision / recall / F1 /
IoU of the skip set vs the oracle; the skip output's distance to the no-skip output (JOD, PSNR-Y,
LPIPS, DISTS) and its JOD loss `jod_drop`. Tables show means over clips; the rule is per clip.

The default tau follows rule v2 of "no perceptible loss": the largest tau whose predicted-mask
output loses at most 0.1 JOD to the same model's no-skip output on EVERY clip, clean AND
realistic (`choose_default_tau`). `--write-card` stores the numbers, the per-clip check and that tau
in the checkpoint's model card.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from skipsr import checkpoint, cliutil, degrade, grain, resize
from skipsr.evaluation import measure, metrics, store, valset
from skipsr.examples import EXAMPLES_DIR
from skipsr.pipeline import SkipSRPipeline
from skipsr.video import read_video

log = logging.getLogger("skipsr.evaluation.evaluate")

TAUS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
DEGRADATIONS = ("bicubic", "realistic")



def evaluate_clip(pipe: SkipSRPipeline, hr: np.ndarray, taus, steps: int, seed: int, degradation: str,
                  oracle: bool, with_vmaf: bool = False, fps: float = 24.0) -> dict:
    """Bicubic, no-skip and skip runs of one clip -> {run name: numbers}."""
    clip = measure.prepare_clip(hr, pipe.cfg, degradation, seed, fps)
    noskip_row, noskip = measure.measure_run(pipe, clip, 0.0, "none", steps, seed, with_vmaf=with_vmaf)
    row = {"bicubic": measure.quality_of(clip.bicubic, clip, with_vmaf), "noskip": noskip_row}
    for name in ("bicubic", "noskip"):
        row[name] = {k: v for k, v in row[name].items() if "_vs_" not in k}  # they are the references
    sources = (["predicted"] if pipe.predictor is not None else []) + (["oracle"] if oracle else [])
    for tau in taus:
        for src in sources:
            row[f"{src}@{tau:g}"] = measure.measure_run(pipe, clip, tau, src, steps, seed, noskip.video, with_vmaf,
                                                        noskip_row)[0]
    return row


def store_rows(pipe: SkipSRPipeline, runs: dict, clip: valset.ValClip, degradation: str, steps: int,
               seed: int) -> list[dict]:
    """The no-skip and skip runs of one evaluated clip as store rows (origin "evaluate"); bicubic is not a run."""
    base = {"origin": "evaluate", **store.pipeline_fields(pipe), **store.clip_fields(clip.id, clip.path, clip.hr,
            degradation), "steps": steps, "seed": seed}
    rows = []
    for name, numbers in runs.items():
        if name == "bicubic":
            continue
        mask, tau = ("none", 0.0) if name == "noskip" else (name.split("@")[0], float(name.split("@")[1]))
        rows.append(store.run_record(**base, tau=tau, mask_source=mask, numbers=numbers))
    return rows


def mean_rows(rows: list[dict]) -> dict:
    """Mean of every numeric leaf over clips (None and inf left out of the mean, counted)."""
    out: dict = {}
    for key in rows[0]:
        out[key] = {}
        for metric in rows[0][key]:
            vals = [r[key][metric] for r in rows if r[key].get(metric) is not None and np.isfinite(r[key][metric])]
            out[key][metric] = float(np.mean(vals)) if vals else None
    return out


def skip_cost(summary: dict, run: str) -> dict:
    """A skip run's cost against the same model's no-skip output (means over clips)."""
    return metrics.skip_cost(summary[run], summary["noskip"])


COST_KEYS = ("jod_drop", "lpips_rise", "dists_rise", "psnr_y_drop_db", "warp_error_rise")


def choose_default_tau(per_clip: dict[str, dict[str, dict]], taus,
                       max_jod_drop: float = metrics.MAX_JOD_DROP) -> tuple[float, dict]:
    """The default tau by rule v2 ("no perceptible loss", docs/design.md section 8), and the check of every tau.

    per_clip: {degradation: {clip id: {run name: numbers}}} (`evaluate_clip`'s rows). A tau passes
    when on EVERY clip of every degradation its predicted-mask run loses at most `max_jod_drop` JOD
    to the same model's no-skip run (the worst case, not the mean). The default is the largest tau
    that passes together with every smaller tau; 0 (skip nothing) when the smallest fails, which the
    returned checks make plain (`meets_rule` False). Each check also reports the mean and the worst
    clip of the LPIPS, DISTS, PSNR-Y and E*warp rises, and every clip's numbers. No JOD: ValueError.
    """
    checks = {}
    for tau in sorted(taus):
        run = f"predicted@{tau:g}"
        if not all(run in r for clips in per_clip.values() for r in clips.values()):
            continue
        per = {}
        for degradation, clips in per_clip.items():
            costs = {}
            for clip_id, r in clips.items():
                cost = metrics.skip_cost(r[run], r["noskip"], max_jod_drop)
                if cost["jod_drop"] is None:
                    raise ValueError(f"no JOD for {clip_id} ({degradation}): the rule needs ColorVideoVDP (cvvdp)")
                costs[clip_id] = {**{k: cost[k] for k in COST_KEYS}, "skip_ratio": r[run]["skip_ratio"]}
            worst = max(costs, key=lambda c: costs[c]["jod_drop"])
            summary = {"ok": all(c["jod_drop"] <= max_jod_drop for c in costs.values()), "worst_clip": worst,
                       "skip_ratio": float(np.mean([c["skip_ratio"] for c in costs.values()]))}
            for k in COST_KEYS:
                vals = [c[k] for c in costs.values() if c[k] is not None]
                summary[f"mean_{k}"] = float(np.mean(vals)) if vals else None
                summary[f"max_{k}"] = float(np.max(vals)) if vals else None
            per[degradation] = {**summary, "clips": costs}
        checks[f"{tau:g}"] = {"ok": all(c["ok"] for c in per.values()), **per}
    tau = 0.0
    for t, c in checks.items():  # ascending: stop at the first failing tau
        if not c["ok"]:
            break
        tau = float(t)
    rule = {"version": 2, "max_jod_drop": max_jod_drop, "over": "every clip", "degradations": list(per_clip),
            "mask": "predicted", "meets_rule": tau > 0, "checks": checks}
    return tau, rule


def per_clip_table(rule: dict, tau: float) -> str:
    """One tau's check as markdown: a row per clip and degradation (skip ratio, JOD drop, the rises)."""
    check = rule["checks"].get(f"{tau:g}")
    if check is None:
        return f"(tau {tau:g} was not evaluated)"
    lines = ["| clip | input | skip ratio | JOD drop | LPIPS rise | DISTS rise | PSNR-Y drop (dB) | E*warp rise |",
             "|---|---|---|---|---|---|---|---|"]
    fmt = {"jod_drop": ".3f", "lpips_rise": "+.4f", "dists_rise": "+.4f", "psnr_y_drop_db": "+.2f",
           "warp_error_rise": "+.3f"}
    for degradation in rule["degradations"]:
        for clip_id, c in check[degradation]["clips"].items():
            cells = [format(c[k], f) if c[k] is not None else "-" for k, f in fmt.items()]
            lines.append(f"| {clip_id} | {degradation} | {c['skip_ratio']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def steps_sweep(pipe: SkipSRPipeline, clips, steps_list, seed: int, with_vmaf: bool = False) -> tuple[int, dict]:
    """No-skip quality (mean over clips) at each step count -> (the step count with the best PSNR-Y, numbers)."""
    prepared = [measure.prepare_clip(c.hr, pipe.cfg, "bicubic", seed, c.fps) for c in clips]
    out = {}
    for steps in steps_list:
        rows = [measure.measure_run(pipe, clip, 0.0, "none", steps, seed, with_vmaf=with_vmaf)[0] for clip in prepared]
        out[str(steps)] = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr_y", "lpips", "dists", "vmaf", "t_total_s")
                           if all(r.get(k) is not None for r in rows)}
    best = max(steps_list, key=lambda s: out[str(s)]["psnr_y"])
    return best, out


TABLE_COLUMNS = (("skip_ratio", "skip ratio", 2), ("jod", "JOD", 2), ("jod_drop", "JOD drop", 3),
                 ("psnr_y", "PSNR-Y", 2), ("ssim_y", "SSIM-Y", 3),
                 ("lpips", "LPIPS", 4), ("dists", "DISTS", 4), ("lpips_rise", "LPIPS rise", 4),
                 ("psnr_y_drop_db", "PSNR-Y drop", 3), ("lpips_vs_noskip", "LPIPS to no-skip", 4),
                 ("psnr_y_detail", "PSNR-Y detail tokens", 2), ("warp_error", "E*warp", 3), ("vmaf", "VMAF", 1),
                 ("pred_f1", "predictor F1", 3), ("seam_error", "seam error", 2))


def markdown_table(summary: dict) -> str:
    """One degradation's validation summary as a markdown table; skip runs with their cost vs no-skip.
    Columns nobody measured (e.g. VMAF without --vmaf) are left out."""
    rows = {}
    for run, numbers in summary.items():
        cost = skip_cost(summary, run) if "@" in run else {}
        rows[run] = {"skip_ratio": 1.0 if run == "bicubic" else None, **numbers, **cost}
    columns = [c for c in TABLE_COLUMNS if any(r.get(c[0]) is not None for r in rows.values())]
    lines = ["| run | " + " | ".join(label for _, label, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for run, numbers in rows.items():
        cells = [f"{numbers[k]:.{d}f}" if numbers.get(k) is not None else "-" for k, _, d in columns]
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def card_tables(validation: dict) -> str:
    """A card's `validation` as markdown: a header line, then one table per degradation."""
    head = (f"{validation['model']} at {validation['steps']} step(s), predictor {validation['predictor']}, default "
            f"tau {validation['default_tau']:g}; {validation['command']}")
    parts = [head]
    for degradation, summary in validation["summaries"].items():
        parts.append(f"{degradation} (means over the clips):\n\n{markdown_table(summary)}")
    rule = validation.get("default_tau_rule", {})
    if rule.get("version") == 2:
        tau = validation["default_tau"] or min(float(t) for t in rule["checks"])
        parts.append(f"Rule v2 per clip at tau {tau:g} (the default; the smallest tau evaluated when none passes):"
                     f"\n\n{per_clip_table(rule, tau)}")
    return "\n\n".join(parts)


REFERENCE_CLIP = EXAMPLES_DIR / "meadow.mp4"  # shipped: the test re-measures these numbers
REFERENCE_FRAMES = 6


def reference_numbers(pipe: SkipSRPipeline, tau: float, steps: int = 1, seed: int = 0) -> dict:
    """Quick numbers on the shipped reference clip (clean x4): what the model card's test re-measures."""
    hr = read_video(REFERENCE_CLIP, max_frames=REFERENCE_FRAMES)
    lr = resize.to_uint8(degrade.bicubic(resize.to_float(hr), pipe.cfg.scale))
    noskip = pipe(lr, tau=0.0, mask="none", steps=steps, seed=seed)
    cache: dict = {}  # the HR's backbone features, computed once for both outputs
    out = {"clip": REFERENCE_CLIP.name, "frames": REFERENCE_FRAMES, "tau": tau, "steps": steps, "seed": seed,
           "psnr_y_bicubic": metrics.psnr_y(resize.up_u8(torch.from_numpy(lr), pipe.cfg.scale).numpy(), hr),
           "psnr_y_noskip": metrics.psnr_y(noskip.video, hr),
           "lpips_noskip": metrics.perceptual(noskip.video, {"hr": hr}, cache)["hr"]["lpips"]}
    if pipe.predictor is not None:
        skip = pipe(lr, tau=tau, mask="predicted", steps=steps, seed=seed)
        out.update(psnr_y_skip=metrics.psnr_y(skip.video, hr), skip_ratio=skip.skip_ratio,
                   lpips_skip=metrics.perceptual(skip.video, {"hr": hr}, cache)["hr"]["lpips"])
    return out


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="skipsr evaluate", description=__doc__.split("\n\n")[0])
    checkpoint.add_model_args(ap)
    ap.add_argument("--predictor", help=checkpoint.PREDICTOR_HELP)
    cliutil.add_data(ap)
    ap.add_argument("--clips", type=int, help="only the first N clips of the validation set (skipsr/valset.py; "
                    "default: all) or N training clips with --split train (default 8)")
    cliutil.add_frames(ap, default=8, help="frames per clip")
    cliutil.add_tau(ap, several=True, default=list(TAUS), help="thresholds to evaluate (8-bit RMSE units)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--degradations", nargs="+", default=list(DEGRADATIONS), choices=DEGRADATIONS,
                    help="input degradations to evaluate (default: both; the default tau needs both)")
    ap.add_argument("--realistic", action="store_true", help="only the real-world degradation (= --degradations realistic)")
    ap.add_argument("--oracle", action="store_true", help="also evaluate the oracle mask")
    ap.add_argument("--fastpath", metavar="PATH", help="a fast-path checkpoint for skipped tokens, or 'none' for "
                    "bicubic (default: the one the model card names, else bicubic)")
    ap.add_argument("--grain", type=float, help="grain on skipped tokens at this multiple of their detail score "
                    "(skipsr/grain.py; default: the model card's grain, else 0; written to the card with --write-card)")
    ap.add_argument("--grain-motion", choices=grain.MOTIONS,
                    help="how grain moves over time (default: the model card's, else 'static'; written to the card)")
    ap.add_argument("--split", default="val", choices=("val", "train"),
                    help="evaluate on the training clips instead (to choose settings; never written to a card)")
    ap.add_argument("--vmaf", action="store_true", help="also compute VMAF (slow; a secondary number)")
    ap.add_argument("--write-card", action="store_true", help="store the summary in the checkpoint's model card")
    ap.add_argument("--table", action="store_true",
                    help="print the validation numbers stored in the model's card as markdown tables (no run)")
    ap.add_argument("--choose-steps", type=int, nargs="+", metavar="N",
                    help="instead: no-skip quality at each step count; the best PSNR-Y becomes the card's "
                         "default_steps with --write-card")
    cliutil.add_results(ap, help="also write every no-skip and skip run as a store row into this folder")
    cliutil.add_json(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cliutil.check_taus(args.tau)
    if args.grain is not None:
        grain.check_strength(args.grain)  # before any model loads
    if args.write_card and args.split != "val":
        raise cliutil.BadInput("--write-card takes the validation split's numbers only (drop --split train)")
    args.taus = args.tau
    if args.table:
        card = checkpoint.read_card(checkpoint.resolve(args.checkpoint))
        v = card.get("validation")
        if not v or "summaries" not in v:
            raise cliutil.BadInput(f"the card of {card.get('id')} has no validation numbers in this format: run "
                                   f"`skipsr evaluate --model {args.checkpoint or 'multistep'} --write-card` first")
        print(card_tables(v))
        return 0
    degradations = ["realistic"] if args.realistic else list(dict.fromkeys(args.degradations))
    if args.write_card and not args.choose_steps and set(degradations) != set(DEGRADATIONS):
        raise cliutil.BadInput("--write-card needs both degradations (the default tau is chosen on both)")
    cliutil.check_folder(args.data, "data folder")
    cliutil.check_files([args.fastpath if args.fastpath != checkpoint.NONE else None], "fast-path checkpoint")
    pipe = SkipSRPipeline.from_pretrained(args.checkpoint, args.predictor, fastpath=args.fastpath,
                                          chunk_frames=max(16, args.frames), grain=args.grain,
                                          grain_motion=args.grain_motion)
    clips = (valset.validation_set(args.data, args.clips, args.frames) if args.split == "val"
             else valset.training_clips(args.data, args.clips or 8, args.frames))
    reason = metrics.perceptual_reason()
    if reason and not args.choose_steps:
        raise cliutil.BadInput(f"{reason}; the cards report LPIPS and DISTS beside JOD")
    card, pcard = pipe.cards.model.raw, pipe.cards.predictor.raw
    args.steps = pipe.resolve(None, args.steps)[1]  # the card's default steps unless given
    command = "skipsr evaluate " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.choose_steps:
        best, numbers = steps_sweep(pipe, clips, args.choose_steps, args.seed, args.vmaf)
        result = {"model": card.get("id"), "default_steps": best, "steps_validation": numbers}
        if args.write_card:
            checkpoint.update_card(checkpoint.resolve(args.checkpoint), {**result, "steps_command": command})
        print(json.dumps(result, indent=None if args.json else 1))
        return 0
    t0 = time.perf_counter()
    per_clip: dict[str, dict] = {d: {} for d in degradations}
    with tqdm(total=len(clips) * len(degradations), desc="evaluate", disable=args.json or None) as bar:
        for degradation in degradations:
            for clip in clips:
                row = evaluate_clip(pipe, clip.hr, args.taus, args.steps, args.seed, degradation, args.oracle,
                                    args.vmaf, clip.fps)
                per_clip[degradation][clip.id] = row
                if args.results:
                    store.ResultsStore(args.results).append(store_rows(pipe, row, clip, degradation, args.steps,
                                                                       args.seed))
                bar.update(1)
    summaries = {d: mean_rows(list(rows.values())) for d, rows in per_clip.items()}
    default_tau, rule = choose_default_tau(per_clip, args.taus)
    result = {"model": card.get("id"), "predictor": pcard.get("id"), "steps": args.steps,
              "fastpath": pipe.cards.fastpath.id, "grain": pipe.grain,
              "grain_motion": pipe.grain_motion, "split": args.split,
              "degradations": degradations, "clips": [c.id for c in clips], "frames": args.frames, "taus": args.taus,
              "default_tau": default_tau, "default_tau_rule": rule, "summaries": summaries, "per_clip": per_clip,
              "command": command, "wall_s": round(time.perf_counter() - t0, 1)}
    if not rule["meets_rule"]:
        log.warning("no tau in %s meets the no-perceptible-loss rule: default tau 0 (skip nothing)", args.taus)
    result["reference"] = reference_numbers(pipe, default_tau, args.steps, args.seed)
    if args.write_card:
        model_path = checkpoint.resolve(args.checkpoint)
        # the predictor's card keeps the numbers it was validated with: those of the default model
        paths = [model_path] + ([args.predictor or checkpoint.DEFAULT_PREDICTOR]
                                if model_path == checkpoint.DEFAULT_MODEL and args.predictor != checkpoint.PRIOR
                                else [])  # the prior has no card
        validation = {k: v for k, v in result.items() if k not in ("per_clip", "reference")}
        # the card names what its numbers were measured with: the model runs with them by default
        companions = {k: checkpoint.companion_name(v) for k, v in pipe.cards.companions.items()}
        for path in paths:
            checkpoint.update_card(path, {"validation": validation, "default_tau": default_tau,
                                          "reference": result["reference"]})
        checkpoint.update_card(model_path, {"companions": {k: v for k, v in companions.items() if v},
                                            "grain": pipe.grain,
                                            "grain_motion": pipe.grain_motion})
    if args.json:
        print(json.dumps(result))
    else:
        print(card_tables(result) + f"\n\ndefault tau {default_tau:g} (meets the rule: {rule['meets_rule']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
