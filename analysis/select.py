"""Choose among training snapshots by JOD and DISTS on the validation set (docs/training.md).

    python -m analysis.select runs/fidelity/model-step*.safetensors [--baseline distilled adversarial] [--json]
    python -m analysis.select distilled --split train --residual-gain 1 1.3 1.6 2   # is it only too soft?

Each candidate (and each baseline, a shipped name) runs without skipping on every validation clip,
clean and realistic (seeded degradations, as `skipsr evaluate`), scored by ColorVideoVDP JOD and
DISTS against the ground truth. The choice: the highest mean JOD over both degradations; among the
candidates within `--jod-tie` of it, the lowest mean DISTS. A snapshot is chosen on its no-skip output;
its skip cost and default tau come afterwards from `skipsr evaluate --write-card`.

`--split train` scores on training-split clips instead (for settings chosen without the validation
set); `--residual-gain K ...` scores each model with its predicted residual (output - bicubic) scaled
by K, a test of whether a model is only too soft (K > 1 sharpens what it predicts, adds no structure).
`--keep DIR` writes the ranking to DIR/select.json and copies the chosen snapshot and its card to
DIR/chosen.safetensors and DIR/chosen.json (a long run's committed folder, training-state/NAME).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from skipsr import cliutil
from skipsr.evaluation import jod, measure, metrics, valset
from skipsr.evaluation.evaluate import DEGRADATIONS
from skipsr.model import ModelConfig
from skipsr.pipeline import SkipSRPipeline

log = logging.getLogger("analysis.select")


def score(pipe: SkipSRPipeline, clips: list, seed: int = 0) -> dict:
    """{degradation: {"jod", "dists"} means over clips, no skipping; "per_clip": {degradation: {clip: {...}}}}."""
    out, per_clip = {}, {}
    for degradation in DEGRADATIONS:
        rows = {}
        for c in clips:
            clip = measure.prepare_clip(c.hr, ModelConfig(), degradation, seed, c.fps)
            video = pipe(clip.lr, tau=0.0, mask="none", steps=pipe.default_steps, seed=seed).video
            rows[c.id] = {"jod": jod.jod(video, clip.hr, clip.fps),
                          "dists": metrics.perceptual(video, {"ref": clip.hr})["ref"]["dists"]}
        per_clip[degradation] = rows
        out[degradation] = {k: float(np.mean([r[k] for r in rows.values()])) for k in ("jod", "dists")}
    return {**out, "per_clip": per_clip}


@contextlib.contextmanager
def residual_gain(model, k: float):
    """The model with its residual output scaled by k (the head's last conv is linear), restored afterwards."""
    conv = model.head.conv2
    w, b = conv.weight.data.clone(), conv.bias.data.clone()
    conv.weight.data.mul_(k), conv.bias.data.mul_(k)
    try:
        yield model
    finally:
        conv.weight.data.copy_(w), conv.bias.data.copy_(b)


def choose(scores: dict[str, dict], jod_tie: float) -> str:
    """The candidate with the highest mean JOD over degradations; within jod_tie of it, the lowest DISTS."""
    mean = lambda s, k: float(np.mean([s[d][k] for d in DEGRADATIONS]))  # noqa: E731
    best = max(mean(s, "jod") for s in scores.values())
    near = [name for name, s in scores.items() if mean(s, "jod") >= best - jod_tie]
    return min(near, key=lambda name: mean(scores[name], "dists"))


def keep(result: dict, folder: str | Path) -> None:
    """Write the ranking to folder/select.json and copy the chosen checkpoint (and the card beside it)
    to folder/chosen.safetensors (.json). A chosen shipped name is not copied."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "select.json").write_text(json.dumps(result) + "\n")
    weights = Path(result["chosen"])
    if weights.suffix != ".safetensors" or not weights.is_file():
        return
    shutil.copyfile(weights, folder / "chosen.safetensors")
    if weights.with_suffix(".json").is_file():
        shutil.copyfile(weights.with_suffix(".json"), folder / "chosen.json")


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.select", description=__doc__.split("\n\n")[0])
    ap.add_argument("candidates", nargs="+", help="one-step model checkpoints (.safetensors paths or shipped names)")
    ap.add_argument("--baseline", nargs="*", default=[], help="shipped models scored beside them (not chosen)")
    ap.add_argument("--jod-tie", type=float, default=0.02, help="JOD within which DISTS decides")
    ap.add_argument("--clips", type=int, help="only the first N clips (default: all validation clips, 6 training ones)")
    ap.add_argument("--split", choices=("val", "train"), default="val",
                    help="validation clips, or training-split clips (valset.training_clips)")
    ap.add_argument("--residual-gain", type=float, nargs="+", default=[1.0], metavar="K",
                    help="score each model with its residual scaled by each K (named 'MODEL xK' when K != 1)")
    ap.add_argument("--keep", metavar="DIR", help="write select.json there and copy the chosen snapshot to "
                    "DIR/chosen.safetensors (.json)")
    cliutil.add_frames(ap, default=8, help="frames per clip")
    cliutil.add_data(ap)
    cliutil.add_json(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    if args.split == "train":
        clips = valset.training_clips(args.data, args.clips or 6, args.frames)
    else:
        clips = valset.validation_set(args.data, args.clips, args.frames)
    scores, candidates = {}, []
    for name in tqdm([*args.baseline, *args.candidates], desc="models", unit="model"):
        pipe = SkipSRPipeline.from_pretrained(name, load_predictor=False)
        for k in args.residual_gain:
            key = name if k == 1 else f"{name} x{k:g}"
            with residual_gain(pipe.model, k):
                scores[key] = score(pipe, clips)
            if name in args.candidates:
                candidates.append(key)
    chosen = choose({k: scores[k] for k in candidates}, args.jod_tie)
    result = {"clips": [c.id for c in clips], "split": args.split, "frames": args.frames, "scores": scores, "chosen": chosen,
              "rule": f"highest mean JOD over {', '.join(DEGRADATIONS)}; within {args.jod_tie:g} JOD of it, lowest DISTS",
              "command": "python -m analysis.select " + " ".join(sys.argv[1:] if argv is None else argv),
              "wall_s": round(time.perf_counter() - t0, 1)}
    if args.keep:
        keep(result, args.keep)
    if args.json:
        print(json.dumps(result))
    else:
        for name, s in scores.items():
            mark = " <- chosen" if name == chosen else ""
            print(f"{name}: " + ", ".join(f"{d} JOD {s[d]['jod']:.3f} DISTS {s[d]['dists']:.4f}" for d in DEGRADATIONS) + mark)
    return 0


if __name__ == "__main__":
    sys.exit(main())
