"""What a pipeline is told: how to run (`PipelineConfig`) and what its checkpoints' cards say (`Cards`).

    config = PipelineConfig(precision="bf16", chunk_frames=32)       # frozen; `replace` makes a variant
    cards = Cards(ModelCard(model_json), Card(predictor_json))       # parsed by SkipSRPipeline.from_pretrained

A card is the JSON written beside a checkpoint (skipsr/checkpoint.py); the typed views read the
fields the pipeline needs and keep the whole JSON as `raw` for the store's records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from skipsr.grain import MOTIONS, check_strength

PRECISIONS = ("fp32", "bf16")
FALLBACK_TAU = 4.0  # for a model whose card has no default tau (a random init)


@dataclass(frozen=True)
class PipelineConfig:
    """How a pipeline runs: device and precision, compilation, temporal windows, spatial tiles, the
    sampler's schedule shift, and grain on skipped tokens (None: the model card's).

    precision: "fp32", "bf16" (the transformer and the fast path under bfloat16 autocast) or "auto"
    (bf16 where the device computes it natively, else fp32). compile: the transformer's per-token
    parts and the fast path's per-frame step through torch.compile (the same numbers within float
    rounding; a compile when the first window runs). Windows of `chunk_frames` frames overlap by
    `overlap_frames` (multiples of the model's `pt`); LR frames larger than `tile_lr_px` are tiled
    with `tile_overlap_lr_px` of overlap."""

    device: str = "cpu"
    precision: str = "fp32"
    compile: bool = False
    chunk_frames: int = 16
    overlap_frames: int = 2
    tile_lr_px: int = 512
    tile_overlap_lr_px: int = 16
    shift: float = 3.0
    grain: float | None = None
    grain_motion: str | None = None

    def __post_init__(self):
        if self.precision not in (*PRECISIONS, "auto"):
            raise ValueError(f"precision must be one of {(*PRECISIONS, 'auto')}, got {self.precision!r}")
        if not 0 <= self.overlap_frames < self.chunk_frames:
            raise ValueError("chunk_frames and overlap_frames must be multiples of pt with overlap < chunk")
        if self.grain is not None:
            check_strength(self.grain)
        if self.grain_motion is not None and self.grain_motion not in MOTIONS:
            raise ValueError(f"grain motion must be one of {MOTIONS}, got {self.grain_motion!r}")

    def replace(self, **changes) -> PipelineConfig:
        return dataclasses.replace(self, **changes)

    def resolved_precision(self) -> str:
        """"fp32" or "bf16": what "auto" means on this config's device."""
        return native_bf16(torch.device(self.device)) if self.precision == "auto" else self.precision


@dataclass(frozen=True)
class Card:
    """A checkpoint's card (`raw`: the JSON as read; treat it as read-only)."""

    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        return self.raw.get("id")

    @property
    def weights_hash(self) -> str | None:
        return self.raw.get("weights_sha256_16")


@dataclass(frozen=True)
class ModelCard(Card):
    """An SR model's card: the defaults every command runs it at."""

    @property
    def default_steps(self) -> int:
        """Sampling steps the model is meant to run at (one-step models: 1)."""
        return int(self.raw.get("default_steps", 1))

    @property
    def default_tau(self) -> float:
        """The tau chosen by `skipsr evaluate` with rule v2 (0 when no tau meets it); FALLBACK_TAU without one."""
        tau = self.raw.get("default_tau")
        return float(tau) if tau is not None else FALLBACK_TAU

    @property
    def grain(self) -> float:
        return check_strength(self.raw.get("grain", 0.0))

    @property
    def grain_motion(self) -> str:
        return self.raw.get("grain_motion", "static")


@dataclass(frozen=True)
class Cards:
    """The cards of a pipeline's model, predictor and fast path, and the companion files it was loaded
    with (`companions`: {"predictor": path or "prior" or None, "fastpath": path or None})."""

    model: ModelCard = field(default_factory=ModelCard)
    predictor: Card = field(default_factory=Card)
    fastpath: Card = field(default_factory=Card)
    companions: dict[str, Path | str | None] = field(default_factory=dict)


def native_bf16(device: torch.device) -> str:
    """"bf16" where the device computes bfloat16 natively (a CPU with AVX512-BF16 or AMX, a CUDA
    GPU that supports it), else "fp32": what precision "auto" picks."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return "fp32"
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "fp32"
