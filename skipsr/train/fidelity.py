"""Fidelity fine-tune of a one-step model: a robust L1 on what the pipeline shows (docs/training.md).

    python -m skipsr.train.fidelity --run runs/fidelity --init distilled --patterns 60 \\
        --fastpath checkpoints/fastpath_cpu.safetensors --steps 20000 --minutes 90

The one-step model (t = 1 -> x0) is regressed straight onto the HR with the Charbonnier loss
sqrt(d^2 + eps^2) (the L1 that CNN upscalers such as SPAN are trained with; MSE, which stages 1-3
use, averages fine texture away), skipping as in stage 3: per clip a random tau, the skipped tokens
show the fast path's output and the loss is on the kept ones. `--patterns N` adds N procedural clips
(gratings near the LR's Nyquist, text, thin lines, weaves; train.data.pattern_clips) to the training
clips, the content where the model loses most to SPAN. An optional LPIPS-VGG term
(`--perceptual-weight`) is taken on the composed frames as in stage 3.

Meant for long runs spread over several calls: `--steps` sets the schedule of the whole run,
`--minutes` the budget of one call (rerun the same command to resume), `--keep-every` keeps
snapshots to select from by JOD and DISTS on the validation set (`skipsr evaluate --model PATH`).
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch

from skipsr import cliutil
from skipsr.train import sr
from skipsr.train.adversarial import add_one_step_args, add_perceptual, load_one_step, one_step, one_step_card
from skipsr.train.common import EMA, Run, add_common_args, fit, setup

log = logging.getLogger("skipsr.train.fidelity")


def charbonnier(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean of sqrt(x^2 + eps^2) - eps: L1 away from 0, smooth at 0."""
    return (x.pow(2) + eps**2).sqrt().mean() - eps


def fidelity_step(gen, b: dict, keep: torch.Tensor, perceptual=None, perceptual_weight: float = 0.0,
                  perceptual_frames: int = 1) -> dict:
    """The loss of one batch (not stepped): Charbonnier on the kept tokens' residuals, plus the
    optional perceptual term on the composed frames."""
    x0_hat, _, fake = one_step(gen, b, keep)
    rec = charbonnier(x0_hat - sr.training_tokens(b, keep, gen.cfg.pt)[1])
    out = {"loss": rec, "l1": rec, "kept": float(keep.float().mean())}
    return add_perceptual(out, fake, b["hr"], perceptual, perceptual_weight, perceptual_frames)


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="skipsr train fidelity", description=__doc__.split("\n\n")[0])
    add_common_args(ap, run="runs/fidelity", steps=20000, log_every=20, val_every=500, save_every=100)
    sr.add_clip_args(ap, batch=4, frames=4, crop=128, lr=1e-4, warmup=100)
    add_one_step_args(ap)
    ap.add_argument("--ema", type=float, default=0.995, help="EMA decay of the exported weights")
    args = ap.parse_args(argv)
    rng = setup(args)
    dev = torch.device(args.device)
    gen, icard, fastpath, fcard, train_clips, val, perceptual = load_one_step(args, dev)
    opt = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.9, 0.99))
    run = Run(args.run, gen, EMA(gen, decay=args.ema), opt, rng)
    run.resume()

    def train_step():
        drawn = sr.draw_batch(train_clips, args, rng, dev, fastpath=(fastpath, args.oracle))
        if drawn is None:
            return None
        return fidelity_step(gen, *drawn, perceptual, args.perceptual_weight, args.perceptual_frames)

    card = lambda: one_step_card("fidelity", "fidelity fine-tune (Charbonnier)", gen, icard, fcard, args,  # noqa: E731
                                 run.step)
    fit(run, args, train_step, lambda: sr.validate(run.ema.model, val, (1,)), card, args.lr, args.warmup, clip_grad=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
