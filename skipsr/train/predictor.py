"""Stage 4: the mask predictor, regressing log1p(oracle detail score) from the degraded LR.

    python -m skipsr.train.predictor --run runs/predictor --steps 1000 [--oracle fastpath --fastpath PATH]

Same samples as stage 1 (clean and real-world degradations), so the predictor learns to ignore
noise and compression that do not mean HR detail. Resumable; exports `model.safetensors` + card.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np
import torch

from skipsr import checkpoint, cliutil, masks
from skipsr.predictor import MaskPredictor, PredictorConfig
from skipsr.train import data as tdata
from skipsr.train.common import EMA, Run, add_common_args, fit, setup

log = logging.getLogger("skipsr.train.predictor")

EVAL_TAUS = (2.0, 4.0, 6.0, 8.0)


def predictor_loss(model: MaskPredictor, b: dict, kind: str = "l1", shrink: float = 0.0,
                   quantile: float = 0.5) -> torch.Tensor:
    """Error between predicted and true log1p(d) over all tokens. b['lr']: (B, T, 3, h, w).

    "l1" regresses the conditional median: a token is then skipped iff it is more likely than not
    below tau, at every tau at once (the decision the mask makes). "mse" regresses the mean, which
    the long tail of detailed tokens pulls up, so flat-looking tokens get skipped too rarely.
    "pinball" regresses the conditional `quantile` (Koenker & Bassett 1978): with quantile q > 0.5 a
    token is skipped only if it is below tau with probability q, so tokens whose detail the LR
    hides (noise, blocks) are skipped less than clearly flat ones; q = 0.5 is "l1" / 2.
    `shrink` adds shrink * |correction| (the network's departure from the self-detail prior): with
    the L1 loss a token's correction then moves only where more than (1 + shrink) / 2 of the
    training tokens like it agree on its direction.
    """
    pred, prior = model.with_prior(b["lr"].flatten(0, 1))  # (B*T/pt, Hg, Wg) each
    err = pred - torch.log1p(b["scores"].flatten(0, 1))
    if kind == "pinball":  # err = pred - target: over-prediction costs (1 - q), under-prediction q
        loss = torch.maximum(-quantile * err, (1 - quantile) * err).mean()
    else:
        loss = err.abs().mean() if kind == "l1" else (err**2).mean()
    return loss + shrink * (pred - prior).abs().mean() if shrink else loss


@torch.no_grad()
def validate(model: MaskPredictor, val: dict, taus=EVAL_TAUS) -> dict:
    """F1 / IoU / skip ratios of the predicted skip set vs the oracle at each tau."""
    model.eval()
    pred, prior = model.with_prior(val["lr"].flatten(0, 1))
    scores = val["scores"].flatten(0, 1)
    err = pred - torch.log1p(scores)
    prior_err = prior - torch.log1p(scores)
    out = {"mse": float((err**2).mean()), "l1": float(err.abs().mean()),
           "l1_prior": float(prior_err.abs().mean())}  # the untrained self-detail prior, for reference
    for tau in taus:
        a = masks.agreement(pred < np.log1p(tau), masks.oracle_mask(scores, tau))
        out[f"f1@{tau:g}"] = a["f1"]
        out[f"iou@{tau:g}"] = a["iou"]
        out[f"skip_pred@{tau:g}"] = a["pred_skip_ratio"]
        out[f"skip_oracle@{tau:g}"] = a["oracle_skip_ratio"]
    return out


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="skipsr train predictor", description=__doc__.split("\n\n")[0])
    add_common_args(ap, run="runs/predictor", steps=1000, log_every=50, val_every=500, save_every=250)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--crop", type=int, default=160)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=3, help="3x3 convs at token resolution")
    ap.add_argument("--loss", choices=("l1", "mse", "pinball"), default="l1")
    ap.add_argument("--quantile", type=float, default=0.5, help="the quantile --loss pinball regresses")
    ap.add_argument("--shrink", type=float, default=0.5, help="L1 penalty on the departure from the self-detail prior")
    ap.add_argument("--zoom-min", type=float, default=0.5, help="augmentation: HR rescale in [zoom-min, 1]")
    ap.add_argument("--jitter", type=float, default=0.1, help="augmentation: brightness/contrast jitter")
    ap.add_argument("--oracle", choices=masks.ORACLES, default="paper",
                    help="the score to predict: the paper's detail score, or the HR's error against the fast path")
    ap.add_argument("--fastpath", metavar="NAME|PATH", help="fast-path checkpoint (with --oracle fastpath)")
    args = ap.parse_args(argv)
    rng = setup(args)
    if (args.oracle == "fastpath") != bool(args.fastpath):
        raise cliutil.BadInput("--oracle fastpath and --fastpath go together")
    fastpath = checkpoint.load(checkpoint.resolve(args.fastpath))[0].requires_grad_(False) if args.fastpath else None
    target = lambda b: tdata.add_fastpath(b, fastpath, args.oracle) if fastpath is not None else b  # noqa: E731
    scfg = tdata.SampleConfig(frames=args.frames, size=args.crop, zoom_range=(args.zoom_min, 1.0), jitter=args.jitter)
    train_clips, val_clips = tdata.load_train_val(args.data, args.max_clips)
    val = target(tdata.stack(tdata.batch(val_clips, 32, tdata.SampleConfig(frames=args.frames, size=args.crop),
                                         np.random.default_rng(1234))))  # validation without augmentation
    model = MaskPredictor(PredictorConfig(channels=args.channels, blocks=args.blocks))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    run = Run(args.run, model, EMA(model, decay=0.995), opt, rng)
    run.resume()

    def train_step():
        b = target(tdata.stack(tdata.batch(train_clips, args.batch, scfg, rng)))
        return {"loss": predictor_loss(model, b, args.loss, args.shrink, args.quantile)}

    card = lambda: {"id": f"predictor-sd-c{args.channels}b{args.blocks}-{args.loss}{args.quantile if args.loss == 'pinball' else ''}-shrink{args.shrink:g}-step{run.step}",  # noqa: E731
                    "stage": "mask predictor (log1p detail score): LR self-detail prior + learned correction",
                    "oracle": args.oracle, "fastpath": args.fastpath,
                    "data": "virtual-camera clips + real clips of the train split, clean + real-world degradations"}
    fit(run, args, train_step, lambda: validate(run.ema.model, val), card, args.lr, warmup=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
