"""The speed protocol that every speed figure we print follows (docs/design.md section 9).

Skip and no-skip run the same model on the same input in the same process: a warm-up of both, then
`repeats` (>= 3) timed rounds, interleaved (the order alternates each round, so drift in the
machine's speed hits both alike); each stage's time is the median over the rounds. The benchmark
(`analysis.bench`) and the app (`skipsr.compare`) call it (`interleaved`, or `rounds` to see the
outputs of the first round early); neither times anything else.

A skip run does the transformer's work on the kept tokens only, so its transformer speed-up cannot
exceed the ideal n_tokens / n_kept: an efficiency (measured / ideal) above MAX_EFFICIENCY means the
measurement is wrong (a cold run, a busy machine), and `Speed.reliable` says so.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from skipsr.pipeline import SkipSRPipeline, SkipSRResult

MIN_REPEATS = 3
MAX_EFFICIENCY = 1.1  # above this a figure is a measurement bug, never shown as a speed-up


@dataclass
class Speed:
    skip: SkipSRResult  # the last timed run of each (the outputs: seeded, so every run gives the same)
    noskip: SkipSRResult
    medians: dict[str, dict[str, float]]  # {"skip": {stage: s}, "noskip": {stage: s}}: medians of the rounds
    rounds: int  # timed rounds so far
    repeats: int  # timed rounds in all: the figures are final when rounds == repeats
    model_compute_s: float  # wall seconds of every pipeline call, the warm-up included

    @property
    def ideal_speedup(self) -> float:
        return self.skip.n_tokens / max(self.skip.n_kept, 1)

    def speedup(self, stage: str) -> float:
        """No-skip over skip median time of a stage ("transformer", "total")."""
        return self.medians["noskip"][stage] / max(self.medians["skip"][stage], 1e-9)

    @property
    def speedup_transformer(self) -> float:
        return self.speedup("transformer")

    @property
    def speedup_e2e(self) -> float:
        return self.speedup("total")

    @property
    def transformer_efficiency(self) -> float:
        return self.speedup_transformer / self.ideal_speedup

    @property
    def final(self) -> bool:
        return self.rounds == self.repeats

    @property
    def reliable(self) -> bool:
        """False when a figure is impossible (efficiency above MAX_EFFICIENCY): the machine was busy."""
        return self.transformer_efficiency <= MAX_EFFICIENCY and self.speedup_e2e / self.ideal_speedup <= MAX_EFFICIENCY


def interleaved(pipe: SkipSRPipeline, lr: np.ndarray, *, tau: float, mask: str, steps: int, seed: int = 0,
                hr: np.ndarray | None = None, repeats: int = MIN_REPEATS, warmup_frames: int | None = None) -> Speed:
    """Time skip (tau, mask) against no-skip on `lr` (T, h, w, 3) uint8: the last of `rounds`."""
    for sp in rounds(pipe, lr, tau=tau, mask=mask, steps=steps, seed=seed, hr=hr, repeats=repeats,
                     warmup_frames=warmup_frames):
        pass
    return sp


def rounds(pipe: SkipSRPipeline, lr: np.ndarray, *, tau: float, mask: str, steps: int, seed: int = 0,
           hr: np.ndarray | None = None, repeats: int = MIN_REPEATS, warmup_frames: int | None = None) -> Iterator[Speed]:
    """The protocol on the pipeline call, yielding a `Speed` after each timed round (medians over the
    rounds so far; the last one, `rounds == repeats`, is the measurement). `hr`: the ground truth,
    given to the skip runs (the oracle mask needs it; with the predicted mask the pipeline computes
    the oracle mask beside it, timed apart, not in "total"). Warm-up: both runs once on the first
    `warmup_frames` frames (None: the whole clip), untimed. A caller may show the first round's
    outputs while the other rounds run: time spent between yields is in no figure."""

    def run(name: str, n: int | None) -> SkipSRResult:
        skip = name == "skip"
        return pipe(lr[:n], tau=tau if skip else 0.0, mask=mask if skip else "none", steps=steps, seed=seed,
                    hr=hr[:n] if (skip and hr is not None) else None)

    wn = None if warmup_frames is None else max(pipe.cfg.pt, warmup_frames - warmup_frames % pipe.cfg.pt)
    yield from rounds_of(run, repeats, wn)


def rounds_of(run: Callable[[str, int | None], SkipSRResult], repeats: int = MIN_REPEATS,
              warmup_frames: int | None = None) -> Iterator[Speed]:
    """The protocol on any run: run(name, n_frames) does the "skip" or "noskip" run on the first
    n_frames frames (None: all) and returns a result with per-stage `timings` (the pipeline call,
    or `streaming.upscale_file`, the whole path from file to file)."""
    if repeats < MIN_REPEATS:
        raise ValueError(f"repeats must be >= {MIN_REPEATS} (medians of at least {MIN_REPEATS} runs)")
    compute = 0.0  # wall seconds inside the runs

    def timed(name: str, n: int | None = None) -> SkipSRResult:
        nonlocal compute
        t0 = time.perf_counter()
        res = run(name, n)
        compute += time.perf_counter() - t0
        return res

    for name in ("skip", "noskip"):
        timed(name, warmup_frames)
    runs: dict[str, list[SkipSRResult]] = {"skip": [], "noskip": []}
    for i in range(repeats):
        for name in ("skip", "noskip") if i % 2 == 0 else ("noskip", "skip"):
            runs[name].append(timed(name))
        medians = {name: {stage: statistics.median(r.timings[stage] for r in rs) for stage in rs[0].timings}
                   for name, rs in runs.items()}
        yield Speed(skip=runs["skip"][-1], noskip=runs["noskip"][-1], medians=medians, rounds=i + 1,
                    repeats=repeats, model_compute_s=compute)
