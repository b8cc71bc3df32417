"""Shared fixtures. Helpers that are plain functions (generated media, tiny models) live in media.py
and models.py and import by name: pytest puts this folder on the path for test modules that are not
in a package."""

import os

import pytest

# Tests never download: a model hub is not reachable here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random SkipSR checkpoint (id "tiny") saved once per pytest run: its path."""
    from models import TINY, tiny_model
    from skipsr import checkpoint

    path = tmp_path_factory.mktemp("tiny-checkpoint") / "m.safetensors"
    checkpoint.save(tiny_model(TINY), path, {"id": "tiny"})
    return path
