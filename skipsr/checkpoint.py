"""Checkpoints: safetensors weights + a JSON model card beside them (same stem, `.json`).

The card holds `kind` ("skipsr", "predictor" or "fastpath"), `config` (the dataclass fields), and whatever
the trainer measured (data, steps, wall time, machine, validation numbers, default tau). The
shipped CPU models live in `checkpoints/` and are what the CLI, benchmark and app load by default;
without them everything falls back to a seeded random init (and says so).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from skipsr import paths
from skipsr.fastpath import FastPath, FastPathConfig
from skipsr.model import ModelConfig, SkipSRNet
from skipsr.predictor import MaskPredictor, PredictorConfig

log = logging.getLogger(__name__)

CHECKPOINT_DIR = paths.shipped("checkpoints")
MODELS = {  # the shipped SR models by name (stages 1-3 of docs/design.md section 6)
    "multistep": CHECKPOINT_DIR / "skipsr_cpu.safetensors",
    "distilled": CHECKPOINT_DIR / "skipsr_distilled_cpu.safetensors",
    "adversarial": CHECKPOINT_DIR / "skipsr_adversarial_cpu.safetensors",
}
DEFAULT_MODEL = MODELS["multistep"]
APP_MODEL = "adversarial"  # the app's default: see the README ("Models") for why
DEFAULT_PREDICTOR = CHECKPOINT_DIR / "predictor_cpu.safetensors"


def resolve(name_or_path: str | Path | None) -> Path:
    """A shipped model's name (see MODELS) or a path -> the weights' path (None: the default model)."""
    if name_or_path is None:
        return DEFAULT_MODEL
    return MODELS.get(str(name_or_path), Path(name_or_path))


def model_help(default: str = "the shipped multi-step model") -> str:
    """--model's help text, naming what the command runs without it."""
    return "SR model: a shipped name (" + ", ".join(MODELS) + f") or a .safetensors path (default: {default})"


MODEL_HELP = model_help()
STEPS_HELP = "Euler steps (default: the model card's default_steps; 1 = one-step)"


def add_model_args(ap, default_name: str | None = None) -> None:
    """--model (alias --checkpoint) and --steps, as every command that runs an SR model has them.
    `default_name`: the shipped model the command runs without --model, when not the multi-step one."""
    helptext = MODEL_HELP if default_name is None else model_help(f"the shipped {default_name!r} model, the app's")
    ap.add_argument("--model", "--checkpoint", dest="checkpoint", metavar="NAME|PATH", help=helptext)
    ap.add_argument("--steps", type=int, help=STEPS_HELP)


def card_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def weights_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# What a card's `kind` loads: (network, its config dataclass).
KINDS = {"skipsr": (SkipSRNet, ModelConfig), "predictor": (MaskPredictor, PredictorConfig),
         "fastpath": (FastPath, FastPathConfig)}


def save(model: torch.nn.Module, path: str | Path, card: dict) -> None:
    """Write weights and card atomically (temp names, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = next(k for k, cls in KINDS.items() if isinstance(model, cls[0]))
    card = {"kind": kind, "config": dataclasses.asdict(model.cfg), **card}
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(path)
    card["weights_sha256_16"] = weights_hash(path)
    _write_card(path, card)


def _write_card(path: str | Path, card: dict) -> None:
    """Write the card beside the weights at `path` atomically (temp name, then rename)."""
    final = card_path(path)
    tmp = final.with_name(final.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=1))
    tmp.replace(final)


def read_card(path: str | Path) -> dict:
    p = card_path(path)
    if not p.exists():
        raise FileNotFoundError(f"model card {p} is missing next to the weights {path}")
    return json.loads(p.read_text())


def update_card(path: str | Path, fields: dict) -> None:
    """Set `fields` in the card of the weights at `path` (the rest of the card is kept)."""
    _write_card(path, {**read_card(path), **fields})


def load(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Load a checkpoint written by `save` -> (model in eval mode, card)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    card = read_card(path)
    net, config = KINDS[card.get("kind", "skipsr")]
    model: torch.nn.Module = net(config(**card["config"]))
    model.load_state_dict(load_file(str(path), device=str(device)))
    return model.to(device).eval(), card


def _load_default(path, default: Path, fresh: Callable[[], torch.nn.Module], kind: str, seed: int, what: str):
    path = Path(path) if path else default
    if path.exists():
        return load(path)
    if path != default:
        raise FileNotFoundError(f"checkpoint not found: {path}")
    log.warning("no trained %s at %s: using a seeded random init (%s)", kind, path, what)
    torch.manual_seed(seed)
    model = fresh().eval()
    return model, {"kind": kind, "id": f"random-init-seed{seed}", "config": dataclasses.asdict(model.cfg)}


def load_default_model(path: str | Path | None = None, seed: int = 0) -> tuple[SkipSRNet, dict]:
    """The shipped SR model (or `path`); a seeded random init with a warning when none exists."""
    return _load_default(resolve(path), DEFAULT_MODEL, lambda: SkipSRNet(ModelConfig()), "skipsr", seed,
                         "outputs ~ bicubic")


NONE = "none"  # --fastpath none: bicubic on skipped tokens even where the model's card names a fast path


def companion(card: dict, kind: str) -> Path | str | None:
    """The checkpoint a model is meant to run with: its card's `companions[kind]` ("predictor" or
    "fastpath"), a file name in the shipped checkpoints folder (or a path). None when it names none."""
    name = card.get("companions", {}).get(kind)
    if not name or name == PRIOR:
        return name or None
    path = CHECKPOINT_DIR / name if not Path(name).is_absolute() else Path(name)
    if not path.exists():
        raise FileNotFoundError(f"the card of {card.get('id')} names the {kind} {name}, which is missing at {path}")
    return path


PRIOR = "prior"  # --predictor prior: the untrained predictor, i.e. the LR self-detail prior alone
PREDICTOR_HELP = ("mask predictor: a .safetensors path, or 'prior' for the LR self-detail prior without "
                  "the learned correction (default: the shipped one)")


def companion_name(path: str | Path | None) -> str | None:
    """How a card names a companion checkpoint: its file name when it is a shipped one, else its path."""
    if path is None or str(path) == PRIOR:
        return None if path is None else PRIOR
    path = Path(path).resolve()
    return path.name if path.parent == CHECKPOINT_DIR.resolve() else str(path)


def load_default_predictor(path: str | Path | None = None, seed: int = 0) -> tuple[MaskPredictor, dict]:
    """The shipped mask predictor, `path`, or "prior" (the self-detail prior without a learned
    correction: a fresh predictor, whose output layer starts at zero); a fresh predictor (the prior)
    with a warning when the shipped one is missing."""
    if str(path) == PRIOR:
        model = MaskPredictor().eval()
        return model, {"kind": "predictor", "id": "self-detail-prior", "config": dataclasses.asdict(model.cfg)}
    return _load_default(path, DEFAULT_PREDICTOR, lambda: MaskPredictor(PredictorConfig()), "predictor", seed,
                         "the LR self-detail prior alone")
