"""An answer of the app: a comparison of SkipSR and no-skip on an example or an upload, as it grows
(videos, then speed, then metrics), from the cache when the settings are an example's defaults.
Models load when first asked for (`pipeline`), so importing this loads none."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from app import cache, compare, present
from app.frames import DEFAULT_VIEW, fresh_folder, view_files
from skipsr import checkpoint, paths
from skipsr.examples import EXAMPLES, EXAMPLES_DIR
from skipsr.evaluation import store
from skipsr.pipeline import SkipSRPipeline

APP_RESULTS = Path(os.environ.get("SKIPSR_APP_RESULTS", paths.writable("app-results")))
KEEP_RUNS = 4  # run folders kept (older ones are deleted when a run starts)
DEFAULT_FRAMES = 16
EXAMPLE_NAMES = [n for n in EXAMPLES if (EXAMPLES_DIR / f"{n}.mp4").exists()]
MODEL_NAMES = [name for name, path in checkpoint.MODELS.items() if path.exists()] or [None]
APP_MODEL = checkpoint.APP_MODEL if checkpoint.APP_MODEL in MODEL_NAMES else MODEL_NAMES[0]
ANSWER_VERSION = 2  # what an answer holds (2: JOD and its verdict): a cached answer of another version is not served


@functools.cache
def pipeline(name: str | None) -> SkipSRPipeline:
    """The pipeline of a shipped model (loaded once, when first asked for), with its companions and the card's
    defaults."""
    return SkipSRPipeline.from_pretrained(name)


def model_defaults(name: str | None) -> tuple[int, float]:
    """(sampling steps, tau) a model is meant to run at: its card's defaults."""
    pipe = pipeline(name)
    return pipe.default_steps, pipe.default_tau


def cache_key(pipe: SkipSRPipeline, example: str, degradation: str, tau: float, steps: int, mask: str, frames: int,
              seed: int) -> str | None:
    """The cache key of an example at the model's default settings; None for any other settings."""
    if (float(tau), int(steps), mask, int(frames), int(seed)) != (pipe.default_tau, pipe.default_steps, "predicted",
                                                                  DEFAULT_FRAMES, 0):
        return None
    cards = [pipe.cards.model.raw, pipe.cards.predictor.raw, pipe.cards.fastpath.raw]
    return cache.key({"answer": ANSWER_VERSION, "weights": [c.get("weights_sha256_16", c.get("id")) for c in cards],
                      "clip": store.file_hash(EXAMPLES_DIR / f"{example}.mp4"), "degradation": degradation,
                      "tau": float(tau), "steps": int(steps), "mask": mask, "frames": int(frames), "seed": int(seed),
                      "grain": pipe.grain, "grain_motion": pipe.grain_motion})  # card settings that change the output


def new_run_dir() -> Path:
    """A fresh folder for one run's videos (the newest KEEP_RUNS are kept)."""
    return fresh_folder("run-", KEEP_RUNS)


def answers(example: str | None, degradation: str, upload: str | None, fit: str, tau: float, steps: int, mask: str,
            frames: int, seed: int, model_name: str | None = None, cache_unreliable: bool = False):
    """Yield the answer (app.present) as it grows: videos, then speed, then metrics; a cached answer
    at once. Bad input raises ValueError / VideoError with a message for the visitor. An answer whose
    speed figure is unreliable (a busy machine) is shown but not cached, so the next click measures
    again, unless `cache_unreliable` (the precompute's last try)."""
    if model_name is not None and model_name not in MODEL_NAMES:
        raise ValueError(f"unknown model {model_name!r}: pick one of {', '.join(map(str, MODEL_NAMES))}")
    pipe = pipeline(model_name or APP_MODEL)
    key = None
    if upload:
        source = compare.upload_source(upload, int(frames), fit)
    elif example:
        if example not in EXAMPLE_NAMES:
            raise ValueError(f"unknown example {example!r}: pick one of {', '.join(EXAMPLE_NAMES)}")
        if degradation not in ("bicubic", "realistic"):
            raise ValueError(f"degradation must be 'bicubic' (clean) or 'realistic', got {degradation!r}")
        key = cache_key(pipe, example, degradation, tau, steps, mask, frames, seed)
        hit = cache.get(key) if key else None
        if hit is not None:
            yield {**hit, "cached": True}
            return
        source = compare.example_source(EXAMPLES_DIR / f"{example}.mp4", pipe, degradation, int(frames), int(seed))
    else:
        raise ValueError("pick an example clip or upload a low-resolution video")
    with cache.COMPUTE:
        hit = cache.get(key) if key else None  # the precompute may have finished it while we waited
        if hit is not None:
            yield {**hit, "cached": True}
            return
        for cmp in compare.steps(pipe, new_run_dir(), source, tau=tau, mask=mask, steps=int(steps), seed=int(seed),
                                 results=APP_RESULTS):
            ans = present.answer(cmp)
            if cmp.stage == "done" and key and (cmp.speed.reliable or cache_unreliable):
                ans["views0"] = view_files({"videos": ans["videos"], "frames": ans["frames"]}, *DEFAULT_VIEW,
                                           folder=Path(ans["videos"]["skip"]).parent)
                ans = cache.put(key, ans)
            yield ans


def precompute_jobs() -> list[tuple[str, dict]]:
    """(cache key, settings) of the default answers to compute at start (SKIPSR_APP_PRECOMPUTE)."""
    which = os.environ.get("SKIPSR_APP_PRECOMPUTE", "all")
    if which not in ("all", "default", "none"):
        raise ValueError(f"SKIPSR_APP_PRECOMPUTE must be all, default or none, got {which!r}")
    names = {"all": EXAMPLE_NAMES, "default": EXAMPLE_NAMES[:1], "none": []}[which]
    return default_jobs(names, ("bicubic",) if which == "default" else ("bicubic", "realistic"))


def default_jobs(names, degradations) -> list[tuple[str, dict]]:
    """(cache key, settings) of these examples x degradations at the app model's default settings."""
    pipe = pipeline(APP_MODEL)
    steps, tau = pipe.default_steps, pipe.default_tau
    jobs = []
    for name in names:
        for deg in degradations:
            settings = {"example": name, "degradation": deg, "upload": None, "fit": "crop", "tau": tau,
                        "steps": steps, "mask": "predicted", "frames": DEFAULT_FRAMES, "seed": 0}
            jobs.append((cache_key(pipe, name, deg, tau, steps, "predicted", DEFAULT_FRAMES, 0),
                         settings))
    return jobs


def drain(last_try: bool = True, **settings) -> None:
    for _ in answers(**settings, cache_unreliable=last_try):
        pass

