"""Stage 4: the mask predictor, regressing log1p(oracle detail score) from the degraded LR.

    python -m skipsr.train.predictor --run runs/predictor --steps 3000

Same samples as stage 1 (clean and real-world degradations), so the predictor learns to ignore
noise and compression that do not mean HR detail. Resumable; exports `model.safetensors` + card.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np
import torch

from skipsr import checkpoint, masks
from skipsr.predictor import MaskPredictor, PredictorConfig
from skipsr.train import data as tdata
from skipsr.train.common import EMA, Run, lr_at, machine

log = logging.getLogger("skipsr.train.predictor")

EVAL_TAUS = (2.0, 4.0, 6.0, 8.0)


def predictor_loss(model: MaskPredictor, b: dict) -> torch.Tensor:
    """MSE between predicted and true log1p(d) over all tokens. b['lr']: (B, T, 3, h, w)."""
    bsz, t = b["lr"].shape[:2]
    pred = model(b["lr"].flatten(0, 1))  # (B*T/pt, Hg, Wg)
    return ((pred - torch.log1p(b["scores"].flatten(0, 1))) ** 2).mean()


@torch.no_grad()
def validate(model: MaskPredictor, val: dict, taus=EVAL_TAUS) -> dict:
    """F1 / IoU / skip ratios of the predicted skip set vs the oracle at each tau."""
    model.eval()
    pred = model(val["lr"].flatten(0, 1))
    scores = val["scores"].flatten(0, 1)
    out = {"loss": float(((pred - torch.log1p(scores)) ** 2).mean())}
    for tau in taus:
        a = masks.agreement(pred < np.log1p(tau), masks.oracle_mask(scores, tau))
        out[f"f1@{tau:g}"] = a["f1"]
        out[f"iou@{tau:g}"] = a["iou"]
        out[f"skip_pred@{tau:g}"] = a["pred_skip_ratio"]
        out[f"skip_oracle@{tau:g}"] = a["oracle_skip_ratio"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m skipsr.train.predictor", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default="runs/predictor")
    ap.add_argument("--data")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--crop", type=int, default=160)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--channels", type=int, default=24)
    ap.add_argument("--max-clips", type=int)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--save-every", type=int, default=250)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    scfg = tdata.SampleConfig(frames=args.frames, size=args.crop)
    try:
        train_clips = tdata.load_clips(args.data, "train", args.max_clips)
        val_clips = tdata.load_clips(args.data, "val", args.max_clips)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    val = tdata.stack(tdata.batch(val_clips, 32, scfg, np.random.default_rng(1234)))
    model = MaskPredictor(PredictorConfig(channels=args.channels))
    ema = EMA(model, decay=0.995)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    run = Run(args.run, model, ema, opt, rng)
    run.resume()
    t_start = time.perf_counter()
    losses = []
    while run.step < args.steps and not run.stop:
        model.train()
        for grp in opt.param_groups:
            grp["lr"] = lr_at(run.step, args.lr, 100, args.steps)
        loss = predictor_loss(model, tdata.stack(tdata.batch(train_clips, args.batch, scfg, rng)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model, run.step)
        run.step += 1
        losses.append(float(loss.detach()))
        if run.step % args.log_every == 0:
            run.log(loss=float(np.mean(losses)))
            losses = []
        if run.step % args.val_every == 0 or run.step == args.steps:
            run.log(**{f"val_{k}": round(v, 4) for k, v in validate(ema.model, val).items()})
        if run.step % args.save_every == 0 or run.step == args.steps:
            save_all(run, args)
        if args.minutes and time.perf_counter() - t_start > 60 * args.minutes:
            break
    save_all(run, args)
    return 0


def save_all(run: Run, args) -> None:
    run.save()
    card = {"id": f"predictor-c{args.channels}-step{run.step}", "stage": "mask predictor (log1p detail score)",
            "steps": run.step, "wall_time_s": round(run.elapsed_s()), "machine": machine(),
            "train_args": {k: v for k, v in vars(args).items() if k not in ("run", "data")},
            "data": "virtual-camera clips + real clips of the train split, clean + real-world degradations"}
    checkpoint.save(run.ema.model, run.folder / "model.safetensors", card)


if __name__ == "__main__":
    sys.exit(main())
