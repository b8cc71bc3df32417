"""What every training stage shares: resumable state, EMA, logging, the exported card.

A run folder holds `state.pt` (model, EMA, optimiser, step, RNG states, wall time), rewritten
atomically every `--save-every` steps and on SIGTERM / Ctrl-C, and `log.jsonl` (one line per log
step). Restarting the same command resumes from `state.pt`.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import signal
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

log = logging.getLogger(__name__)


class EMA:
    """Exponential moving average of a model's parameters (evaluation and export use it)."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # warm start
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - d)


class Run:
    """Resumable training state in a folder."""

    def __init__(self, folder: str | Path, model, ema: EMA, opt, rng: np.random.Generator, extras: dict | None = None):
        """extras: more objects with `state_dict` / `load_state_dict` to save and resume (a discriminator
        and its optimiser)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.model, self.ema, self.opt, self.rng = model, ema, opt, rng
        self.extras = extras or {}
        self.step, self.wall_s = 0, 0.0
        self._t0 = time.perf_counter()
        self.stop = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, *_):
        log.warning("signal received: saving state and stopping after this step")
        self.stop = True

    @property
    def state_path(self) -> Path:
        return self.folder / "state.pt"

    def resume(self) -> bool:
        if not self.state_path.exists():
            return False
        st = torch.load(self.state_path, weights_only=False)
        self.model.load_state_dict(st["model"])
        self.ema.model.load_state_dict(st["ema"])
        self.opt.load_state_dict(st["opt"])
        self.step, self.wall_s = st["step"], st["wall_s"]
        self.rng.bit_generator.state = st["rng"]
        for name, obj in self.extras.items():
            obj.load_state_dict(st["extras"][name])
        torch.set_rng_state(st["torch_rng"])
        log.info("resumed %s at step %d (%.0f s trained)", self.folder, self.step, self.wall_s)
        return True

    def elapsed_s(self) -> float:
        return self.wall_s + time.perf_counter() - self._t0

    def save(self) -> None:
        st = {"model": self.model.state_dict(), "ema": self.ema.model.state_dict(), "opt": self.opt.state_dict(),
              "step": self.step, "wall_s": self.elapsed_s(), "rng": self.rng.bit_generator.state,
              "torch_rng": torch.get_rng_state(), "extras": {k: v.state_dict() for k, v in self.extras.items()}}
        tmp = self.state_path.with_suffix(".tmp")
        torch.save(st, tmp)
        tmp.replace(self.state_path)

    def log(self, **row) -> None:
        row = {"step": self.step, "wall_s": round(self.elapsed_s(), 1), **row}
        with open(self.folder / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


def machine() -> dict:
    """Where a checkpoint was trained (goes into the model card)."""
    dev = "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"host": platform.node(), "device": dev, "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "platform": platform.platform()}


def lr_at(step: int, base_lr: float, warmup: int, total: int) -> float:
    """Linear warm-up then cosine decay to 10% of the base rate."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return base_lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * p)))


def add_common_args(ap: argparse.ArgumentParser, run: str, steps: int, log_every: int, val_every: int,
                    save_every: int) -> None:
    """The options every stage has: run folder, data, budget, device, cadence."""
    ap.add_argument("--run", default=run, help="run folder (resumes if it holds state.pt)")
    ap.add_argument("--data", help="data cache folder (default $SKIPSR_DATA or ./data)")
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--minutes", type=float, help="stop (resumably) after this much wall time in this call")
    ap.add_argument("--stop-at", type=int, help="stop (resumably) at this step; the schedule still spans --steps")
    ap.add_argument("--max-clips", type=int, help="use only the first N clips (tests, smoke runs)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=log_every)
    ap.add_argument("--val-every", type=int, default=val_every)
    ap.add_argument("--save-every", type=int, default=save_every)
    ap.add_argument("--keep-every", type=int, metavar="N",
                    help="also keep the exported weights of every N-th step as model-step<N>.safetensors (to select from)")


def setup(args) -> np.random.Generator:
    """Logging, threads and seeds from the common options; returns the run's numpy generator."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return np.random.default_rng(args.seed)


def export(run: Run, args, card: dict) -> None:
    """Save the resumable state and the EMA weights with their model card into the run folder."""
    from skipsr import checkpoint

    run.save()
    card = {**card, "steps": run.step, "wall_time_s": round(run.elapsed_s()), "machine": machine(),
            "train_args": {k: v for k, v in vars(args).items() if k not in ("run", "data")}}
    checkpoint.save(run.ema.model, run.folder / "model.safetensors", card)
    keep_every = getattr(args, "keep_every", None)
    if keep_every and run.step % keep_every == 0:
        checkpoint.save(run.ema.model, run.folder / f"model-step{run.step}.safetensors", card)


def fit(run: Run, args, train_step: Callable[[], dict], validate: Callable[[], dict], card: Callable[[], dict],
        base_lr: float, warmup: int, clip_grad: float | None = None) -> None:
    """The loop every stage shares: lr schedule, one optimiser step, EMA, logs, validation, saving.

    `train_step()` returns {"loss": tensor, **extra floats to log}; it must not step the optimiser.
    Stops at args.steps, on SIGTERM / Ctrl-C, or after args.minutes, always leaving a resumable state.
    """
    t_start = time.perf_counter()
    rows: list[dict] = []
    while run.step < args.steps and not run.stop:
        run.model.train()
        for grp in run.opt.param_groups:
            grp["lr"] = lr_at(run.step, base_lr, warmup, args.steps)
        out = train_step()
        if out is None:  # nothing to learn from in this batch
            continue
        run.opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        if clip_grad:
            out["grad"] = float(torch.nn.utils.clip_grad_norm_(run.model.parameters(), clip_grad))
        run.opt.step()
        run.ema.update(run.model, run.step)
        run.step += 1
        rows.append({k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in out.items()})
        if run.step % args.log_every == 0:
            run.log(**{k: float(np.mean([r[k] for r in rows])) for k in rows[0]}, lr=run.opt.param_groups[0]["lr"])
            rows = []
        if run.step % args.val_every == 0 or run.step == args.steps:
            run.log(**{f"val_{k}": round(v, 4) for k, v in validate().items()})
        if run.step % args.save_every == 0 or run.step == args.steps:
            export(run, args, card())
        if args.stop_at and run.step >= args.stop_at:
            log.info("stopped at step %d (--stop-at); rerun without it to continue", run.step)
            break
        if args.minutes and time.perf_counter() - t_start > 60 * args.minutes:
            log.info("time budget reached at step %d; rerun the same command to resume", run.step)
            break
    export(run, args, card())


def perceptual_loss(weight: float, dev: torch.device):
    """The LPIPS-VGG module for a perceptual term of `weight` (None when 0); BadInput without the weights."""
    if weight <= 0:
        return None
    from skipsr import cliutil
    from skipsr.evaluation import metrics, perceptual

    reason = metrics.perceptual_reason()
    if reason:
        raise cliutil.BadInput(f"--perceptual-weight needs the LPIPS weights: {reason}")
    return perceptual.lpips_model("vgg").to(dev)
