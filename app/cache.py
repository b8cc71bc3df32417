"""Answers of the default settings, kept on disk so the first click on an example answers at once.

An entry is a folder named by the hash of everything that decides the output (the weights of the
model, predictor and fast path, the example file, degradation, tau, steps, mask, frames, seed):
`answer.json` (app/present.py's answer, its file paths relative), the mp4s and the images of
frame 0's views (so a cache hit decodes and encodes nothing). It is written to a
temporary name and renamed, so a half-written entry is never read. `precompute` fills it for
every example x degradation at the model's defaults in a background thread, the default example
first; the app's runs and the precompute take turns on the CPU through one lock.

The default example's answers also ship in the repository (`app/answers/`, the same layout, read
only), so a fresh install such as a Hugging Face Space answers its first click at once. Their keys
hold the weights' hashes, so a shipped answer of other weights is never served:
`python -m app.cache ship` recomputes them (after a model changes; a test fails while they are stale).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from pathlib import Path

from skipsr import paths

log = logging.getLogger("app.cache")

ROOT = Path(os.environ.get("SKIPSR_APP_CACHE", paths.writable("app-cache")))
# the default example's answers, in the repository (SKIPSR_APP_SHIPPED: another folder, e.g. an empty one)
SHIPPED = Path(os.environ.get("SKIPSR_APP_SHIPPED", Path(__file__).resolve().parent / "answers"))
FILE_GROUPS = ("videos", "views0")  # the answer's files: {name: path} each (views0: frame 0's images)
PRECOMPUTE_TRIES = 3  # measurements of one default answer before an unreliable speed figure is cached
COMPUTE = threading.Lock()  # one model computation at a time (precompute or a visitor's run)


def key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def get(k: str) -> dict | None:
    """The cached answer (video paths absolute), or None: the app's cache first, then the shipped answers."""
    return _read(ROOT / k) or _read(SHIPPED / k)


def _read(folder: Path) -> dict | None:
    try:
        ans = json.loads((folder / "answer.json").read_text())
    except (OSError, ValueError):
        return None
    for group in FILE_GROUPS:
        ans[group] = {name: str(folder / rel) for name, rel in ans.get(group, {}).items()}
    if not all(Path(p).exists() for group in FILE_GROUPS for p in ans[group].values()):
        return None
    return ans


def put(k: str, ans: dict) -> dict:
    """Store a finished answer (its files copied in); returns it as `get` will."""
    ROOT.mkdir(parents=True, exist_ok=True)
    tmp = ROOT / f".tmp-{k}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    stored = dict(ans)
    for group in FILE_GROUPS:
        stored[group] = {}
        for name, path in ans.get(group, {}).items():
            rel = f"{group}-{name}{Path(path).suffix}"
            shutil.copy(path, tmp / rel)
            stored[group][name] = rel
    (tmp / "answer.json").write_text(json.dumps(stored, default=str))
    final = ROOT / k
    if final.exists():  # a concurrent writer finished first: theirs is as good
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(final)
    return get(k)


def size_mb() -> float:
    return sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file()) / 2**20 if ROOT.exists() else 0.0


def precompute(jobs: list[tuple[str, dict]], run, tries: int = PRECOMPUTE_TRIES,
               after: threading.Thread | None = None) -> threading.Thread:
    """Start a daemon thread that calls run(last_try=..., **settings) for each (cache key, settings)
    not cached yet. `run` computes and stores one answer (the app's handler, drained); it stores an
    answer whose speed was measured on a busy machine only on the last of `tries`. `after`: a thread
    to wait for first (the metric weights' fetch, so that the answers carry LPIPS and DISTS)."""

    def work():
        if after is not None:
            after.join()
        for k, settings in jobs:
            for attempt in range(tries):
                if get(k) is not None:
                    break
                try:
                    run(last_try=attempt == tries - 1, **settings)
                except Exception:  # a failed precompute only means a slower first click
                    log.exception("precompute of %s failed", settings)
                    break
            log.info("precompute of %s: %s", settings, "cached" if get(k) is not None else "not cached")

    t = threading.Thread(target=work, name="skipsr-precompute", daemon=True)
    t.start()
    return t
