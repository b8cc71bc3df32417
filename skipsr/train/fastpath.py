"""Train the fast path for skipped tokens (skipsr/fastpath.py): restore and upsample the LR.

    python -m skipsr.train.fastpath --run runs/fastpath --steps 4000 [--minutes 60]   # resumable

Data as every stage: crops of the train split's clips, half clean bicubic, half the seeded
real-world chain (blur, noise, H.264), so the network learns to remove what bicubic keeps. Loss:
Charbonnier (L1-like) against the HR, plus `--perceptual-weight` x LPIPS-VGG (the offline weights)
when asked. Validation on a fixed batch: PSNR-Y and LPIPS of the fast path beside bicubic's.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from skipsr import cliutil
from skipsr.evaluation import metrics
from skipsr.fastpath import FastPath, FastPathConfig
from skipsr.train import data as tdata
from skipsr.train.common import EMA, Run, add_common_args, fit, perceptual_loss, setup


def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((x - y) ** 2 + eps**2).mean()


def frames(b: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch's (B, T, 3, ...) tensors as frames: lr (BT, 3, h, w), base and hr (BT, 3, H, W)."""
    return b["lr"].flatten(0, 1), b["base"].flatten(0, 1), b["hr"].flatten(0, 1)


def loss_of(model: FastPath, b: dict, perceptual=None, weight: float = 0.0) -> dict:
    lr, base, hr = frames(b)
    out = model(lr, base)
    loss = charbonnier(out, hr)
    parts = {"charbonnier": loss.detach()}
    if perceptual is not None and weight > 0:
        p = perceptual(out.clamp(0, 1), hr).mean()
        parts["lpips_vgg"] = p.detach()
        loss = loss + weight * p
    return {"loss": loss, **parts}


@torch.no_grad()
def validate(model: FastPath, val: dict) -> dict:
    """PSNR-Y and LPIPS (AlexNet, the reported metric) of the fast path and of bicubic on the batch."""
    lr, base, hr = frames(val)
    out = model(lr, base).clamp(0, 1)
    to_u8 = lambda x: (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # noqa: E731
    hr8, out8, base8 = to_u8(hr), to_u8(out), to_u8(base)
    res = {"psnr_y": metrics.psnr_y(out8, hr8), "psnr_y_bicubic": metrics.psnr_y(base8, hr8)}
    if metrics.perceptual_reason() is None:
        cache: dict = {}  # the HR's features, computed once for both
        res["lpips"] = metrics.perceptual(out8, {"hr": hr8}, cache)["hr"]["lpips"]
        res["lpips_bicubic"] = metrics.perceptual(base8, {"hr": hr8}, cache)["hr"]["lpips"]
    return res


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="skipsr train fastpath", description=__doc__.split("\n\n")[0])
    add_common_args(ap, run="runs/fastpath", steps=4000, log_every=50, val_every=500, save_every=250)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--channels", type=int, default=FastPathConfig.channels)
    ap.add_argument("--blocks", type=int, default=FastPathConfig.blocks)
    ap.add_argument("--tail-kernel", type=int, choices=(1, 3), default=FastPathConfig.tail_kernel,
                    help="the tail conv's kernel (1: about a third cheaper at 24 channels)")
    ap.add_argument("--perceptual-weight", type=float, default=0.0, help="weight of LPIPS-VGG in the loss (0: none)")
    args = ap.parse_args(argv)
    rng = setup(args)
    scfg = tdata.SampleConfig(frames=args.frames, size=args.crop)
    train_clips, val_clips = tdata.load_train_val(args.data, args.max_clips)
    val = tdata.stack(tdata.batch(val_clips, 16, scfg, np.random.default_rng(1234)))
    model = FastPath(FastPathConfig(channels=args.channels, blocks=args.blocks, tail_kernel=args.tail_kernel))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    run = Run(args.run, model, EMA(model, decay=0.995), opt, rng)
    run.resume()
    perceptual = perceptual_loss(args.perceptual_weight, torch.device("cpu"))

    def train_step():
        b = tdata.stack(tdata.batch(train_clips, args.batch, scfg, rng))
        return loss_of(model, b, perceptual, args.perceptual_weight)

    name = f"fastpath-c{args.channels}b{args.blocks}{'-t1' if args.tail_kernel == 1 else ''}-p{args.perceptual_weight:g}"
    card = lambda: {"id": f"{name}-step{run.step}",  # noqa: E731
                    "stage": "fast path for skipped tokens: bicubic + a learned LR residual",
                    "data": "virtual-camera clips + real clips of the train split, clean + real-world degradations"}
    fit(run, args, train_step, lambda: validate(run.ema.model, val), card, args.lr, warmup=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
