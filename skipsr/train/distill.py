"""Stage 2: a one-step model distilled from the multi-step model (docs/design.md section 6.2).

    python -m skipsr.train.distill --run runs/distill --steps 500 [--teacher multistep] [--teacher-steps 2]

The student starts as a copy of the teacher. Per batch both see the same kept tokens (skipping as
in stage 1: per clip a random tau, sometimes 0) and the same noise; the teacher samples with its
multi-step Euler schedule, the student maps the noise to the teacher's output in one step
(t = 1 -> x0). The loss is the MSE on the kept tokens. The run is resumable like every stage; the
exported card says `default_steps: 1`.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch

from skipsr import cliutil
from skipsr.tokens import TokenSet
from skipsr.train import sr
from skipsr.train.common import EMA, Run, add_common_args, fit, setup

log = logging.getLogger("skipsr.train.distill")


def distill_loss(student, teacher, b: dict, keep: torch.Tensor, teacher_steps: int,
                 gen: torch.Generator | None = None) -> torch.Tensor:
    """MSE between the student's one-step output and the teacher's multi-step output from the same noise."""
    tokens = TokenSet.from_keep(keep)
    prep = student.prepare(tokens)  # the same config: the teacher reuses the tables
    eps = torch.randn((tokens.n, 3 * student.cfg.pt, 16, 16), generator=gen, device=b["lr"].device)
    target = sr.sample_kept(teacher, b["lr"], eps.clone(), prep, teacher_steps)  # (N, 3pt, 16, 16)
    x0_hat = student(b["lr"], eps, torch.ones(b["lr"].shape[0], device=eps.device), prep)
    return ((x0_hat - target) ** 2).mean()


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="skipsr train distill", description=__doc__.split("\n\n")[0])
    add_common_args(ap, run="runs/distill", steps=500, log_every=20, val_every=250, save_every=100)
    ap.add_argument("--teacher", default="multistep", help="multi-step checkpoint (name or path)")
    ap.add_argument("--teacher-steps", type=int, help="Euler steps of the teacher (default: its card's default_steps)")
    sr.add_clip_args(ap, batch=6, frames=6, crop=160, lr=1e-4, warmup=50)
    args = ap.parse_args(argv)
    rng = setup(args)
    dev = torch.device(args.device)
    inputs = sr.load_inputs(args, dev, args.teacher, args.teacher)  # the student starts as the teacher
    [(teacher, tcard), (student, _)], train_clips, val = inputs
    teacher.requires_grad_(False)
    teacher_steps = args.teacher_steps or tcard.get("default_steps", 4)
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.99))
    run = Run(args.run, student, EMA(student, decay=0.995), opt, rng)
    run.resume()
    teacher_val = sr.validate(teacher, val, (teacher_steps,))
    log.info("teacher %s at %d steps: %s", tcard.get("id"), teacher_steps, teacher_val)

    def train_step():
        drawn = sr.draw_batch(train_clips, args, rng, dev)
        if drawn is None:
            return None
        b, keep = drawn
        return {"loss": distill_loss(student, teacher, b, keep, teacher_steps), "kept": float(keep.float().mean())}

    def validate():
        out = sr.validate(run.ema.model, val, (1,))
        return {**out, f"teacher_psnr_{teacher_steps}step": teacher_val[f"psnr_{teacher_steps}step"]}

    card = lambda: {"id": f"skipsr-distilled-{student.cfg.dim}d-step{run.step}",  # noqa: E731
                    "stage": f"one-step, distilled from {tcard.get('id')} at {teacher_steps} steps",
                    "teacher": tcard.get("id"), "teacher_steps": teacher_steps, "default_steps": 1,
                    "data": "virtual-camera clips + real clips of the train split (python -m skipsr.data)"}
    fit(run, args, train_step, validate, card, args.lr, args.warmup, clip_grad=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
