"""The answers that ship in the repository (`app/answers/`): the default example, clean and realistic.

    python -m app.ship            # compute the missing ones (the app model's defaults), drop stale ones
    python -m app.ship --check    # exit 1 when they do not match the shipped weights and examples

A fresh install (a Hugging Face Space) serves them on its first click instead of computing for a
minute. An answer's folder is named by its cache key (`app.answers.cache_key`: the weights' hashes, the
example file's hash, the settings), so after a model or an example changes the old folder is stale:
never served, reported by `--check` (a test) and replaced here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

SHIPPED_DEGRADATIONS = ("bicubic", "realistic")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m app.ship", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare the shipped answers with their keys")
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="skipsr-ship-")
    os.environ["SKIPSR_APP_CACHE"] = work  # computed answers land here first (read when app.cache is imported)
    from app import answers, cache

    jobs = answers.default_jobs(answers.EXAMPLE_NAMES[:1], SHIPPED_DEGRADATIONS)
    keys = {k for k, _ in jobs}
    present = {p.name for p in cache.SHIPPED.iterdir() if p.is_dir()} if cache.SHIPPED.exists() else set()
    missing, stale = sorted(keys - present), sorted(present - keys)
    if args.check:
        for k in missing:
            print(f"app/answers/ lacks {k} ({dict(jobs)[k]['example']}, {dict(jobs)[k]['degradation']}): "
                  "run `python -m app.ship`", file=sys.stderr)
        for k in stale:
            print(f"app/answers/{k} is stale (other weights or settings): run `python -m app.ship`", file=sys.stderr)
        return 1 if missing or stale else 0
    cache.precompute([(k, s) for k, s in jobs if k in missing], answers.drain).join()
    cache.SHIPPED.mkdir(exist_ok=True)
    for k in missing:
        if not (Path(work) / k).exists():
            print(f"error: the answer {k} was not computed (see the log above)", file=sys.stderr)
            return 1
        shutil.copytree(Path(work) / k, cache.SHIPPED / k)
        print(f"shipped app/answers/{k}")
    for k in stale:
        shutil.rmtree(cache.SHIPPED / k)
        print(f"removed the stale app/answers/{k}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
