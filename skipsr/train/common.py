"""What every training stage shares: resumable state, EMA, logging, the exported card.

A run folder holds `state.pt` (model, EMA, optimiser, step, RNG states, wall time), rewritten
atomically every `--save-every` steps and on SIGTERM / Ctrl-C, and `log.jsonl` (one line per log
step). Restarting the same command resumes from `state.pt`.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import platform
import signal
import time
from pathlib import Path

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

    def __init__(self, folder: str | Path, model, ema: EMA, opt, rng: np.random.Generator):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.model, self.ema, self.opt, self.rng = model, ema, opt, rng
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
        torch.set_rng_state(st["torch_rng"])
        log.info("resumed %s at step %d (%.0f s trained)", self.folder, self.step, self.wall_s)
        return True

    def elapsed_s(self) -> float:
        return self.wall_s + time.perf_counter() - self._t0

    def save(self) -> None:
        st = {"model": self.model.state_dict(), "ema": self.ema.model.state_dict(), "opt": self.opt.state_dict(),
              "step": self.step, "wall_s": self.elapsed_s(), "rng": self.rng.bit_generator.state,
              "torch_rng": torch.get_rng_state()}
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
