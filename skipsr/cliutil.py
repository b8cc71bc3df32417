"""One convention for every command line of the project.

- The same option for the same thing: `--tau` (8-bit RMSE; several where a command sweeps them),
  `--mask` (predicted | oracle | none, default predicted), `--frames` (how many frames to read),
  `--data` (the data cache folder), `--model` / `--steps` (a model and its sampling steps, the
  card's defaults when not given), `--json` (one JSON object on stdout) on every command that
  reports numbers. Older spellings stay as aliases (`--taus`, `--max-frames`, `--root`,
  `--checkpoint`).
- Bad input (a missing file or folder, a negative tau, an unreadable video, a value out of range)
  ends with exit code 2 and ONE line on stderr, `error: what was wrong ...; what to do`, never a
  traceback: each command's `main` runs its body through `guard`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Iterable

BAD_INPUT = 2  # exit code of bad input, in every command


class BadInput(ValueError):
    """Bad input found by a command's own checks (the message says what to do)."""


def guard(body: Callable[[], int]) -> int:
    """Run a command's body; bad input -> one `error: ...` line on stderr and exit code 2."""
    from skipsr.video import VideoError

    try:
        return body()
    except (BadInput, VideoError, FileNotFoundError, NotADirectoryError, ValueError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)  # one line
        return BAD_INPUT


def check_taus(taus: float | Iterable[float] | None, option: str = "--tau") -> None:
    """Negative thresholds are bad input (0 skips nothing)."""
    values = [] if taus is None else [taus] if isinstance(taus, (int, float)) else list(taus)
    if any(t < 0 for t in values):
        raise BadInput(f"{option} values must be >= 0 (8-bit RMSE units; 0 skips nothing)")


def check_files(paths: Iterable[str | Path | None], what: str = "file") -> None:
    """Every given path must be an existing file (None is skipped)."""
    for p in paths:
        if p is not None and not Path(p).is_file():
            raise BadInput(f"{what} not found: {p}" if not Path(p).exists() else f"expected a {what}, got a folder: {p}")


def check_folder(path: str | Path | None, what: str = "folder") -> None:
    if path is not None and not Path(path).is_dir():
        raise BadInput(f"{what} not found: {path}")


def add_tau(ap: argparse.ArgumentParser, several: bool = False, default=None, help: str = "") -> None:
    """--tau (one value, or several with `several`; alias --taus for the plural)."""
    names = ("--tau", "--taus") if several else ("--tau",)
    ap.add_argument(*names, dest="tau", type=float, nargs="+" if several else None, default=default,
                    help=help or "skip threshold(s), 8-bit RMSE units (0 = skip nothing; default: the model card's)")


def add_mask(ap: argparse.ArgumentParser, choices=("predicted", "oracle", "none")) -> None:
    ap.add_argument("--mask", default="predicted", choices=choices, help="mask source (default: predicted)")


def add_frames(ap: argparse.ArgumentParser, default: int | None = None, help: str = "") -> None:
    """--frames N (alias --max-frames): how many frames to read."""
    ap.add_argument("--frames", "--max-frames", dest="frames", type=int, default=default,
                    help=help or "read only the first N frames")


def add_data(ap: argparse.ArgumentParser) -> None:
    """--data DIR (alias --root): the data cache folder."""
    ap.add_argument("--data", "--root", dest="data", help="data cache folder (default $SKIPSR_DATA or ./data)")


def add_results(ap: argparse.ArgumentParser, default: str | None = None, help: str = "") -> None:
    """--results DIR: the metrics store folder rows are written to."""
    ap.add_argument("--results", default=default, metavar="DIR", help=help or "metrics store folder")


def add_json(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--json", action="store_true", help="print one JSON object")
