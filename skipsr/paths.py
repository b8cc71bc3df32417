"""Where SkipSR Studio's files are, from a source tree or from an installed package.

The shipped checkpoints, example clips and store rows live in the repository's `checkpoints/`,
`examples/` and `results/`; `pip install .` copies them into the package as `skipsr/shipped/...`
(pyproject.toml). What we write (data caches, the app's store rows) goes to the source tree when we
run from one, else under `~/.cache/skipsr`.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SOURCE_TREE = PACKAGE.parent if (PACKAGE.parent / "pyproject.toml").exists() else None


def shipped(folder: str) -> Path:
    """A shipped folder ("checkpoints", "examples", "results"): the installed copy, else the source tree's."""
    installed = PACKAGE / "shipped" / folder
    return installed if installed.is_dir() else PACKAGE.parent / folder


def writable(folder: str) -> Path:
    """Where to write a folder of ours ("data", "results"): the source tree's, else ~/.cache/skipsr/<folder>."""
    if SOURCE_TREE is not None:
        return SOURCE_TREE / folder
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "skipsr" / folder
