"""Stage 1: the flow-matching SR model, trained WITH skipping (docs/design.md section 6.1).

    python -m skipsr.train.sr --run runs/sr --steps 6000 [--minutes 120] [--device cpu]

Per clip a random tau (tau = 0, i.e. no skipping, for `--p-noskip` of the clips); the oracle-skipped
tokens are dropped before the model sees the batch, so it learns ragged windows; the loss is on
kept tokens. The run folder is resumable (`state.pt`); `model.safetensors` + `model.json` (card)
are exported from the EMA weights at every save.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np
import torch

from skipsr import checkpoint, cliutil, diffusion
from skipsr.evaluation import patterns
from skipsr.model import SIZES, SkipSRNet
from skipsr.tokens import TokenSet, gather
from skipsr.train import data as tdata
from skipsr.train.common import EMA, Run, add_common_args, fit, setup

log = logging.getLogger("skipsr.train.sr")


def draw_keep(scores: torch.Tensor, rng: np.random.Generator, p_noskip: float, tau_max: float) -> tuple[torch.Tensor, list[float]]:
    """Per clip tau (0 with prob p_noskip, else uniform in (0, tau_max]) -> keep (B, Tg, Hg, Wg), taus."""
    taus = [0.0 if rng.random() < p_noskip else float(rng.uniform(0.5, tau_max)) for _ in range(scores.shape[0])]
    keep = scores >= torch.tensor(taus).view(-1, 1, 1, 1)
    return keep, taus


def add_clip_args(ap: argparse.ArgumentParser, batch: int, frames: int, crop: int, lr: float, warmup: int) -> None:
    """The options of every stage that trains an SR model on clip crops with skipping (stages 1-3)."""
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--frames", type=int, default=frames)
    ap.add_argument("--crop", type=int, default=crop)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--p-noskip", type=float, default=0.25, help="share of clips trained without skipping")
    ap.add_argument("--tau-max", type=float, default=12.0, help="per clip tau is drawn in [0.5, tau-max]")
    ap.add_argument("--patterns", type=int, default=0, metavar="N",
                    help="add N procedural pattern clips to the training clips (train.data.pattern_clips)")
    ap.add_argument("--pattern-kinds", nargs="+", choices=patterns.KINDS, metavar="KIND",
                    help=f"the kinds of those clips, in turn (default: all of {', '.join(patterns.KINDS)})")


def load_inputs(args, dev: torch.device, *refs: str):
    """What a stage (1-3) starts from: the checkpoints `refs` (names or paths) as [(model, card)], the
    train clips and the fixed validation batch (8 crops, seed 1234). FileNotFoundError (saying what to
    run) when a checkpoint or the data is missing."""
    models = [checkpoint.load(checkpoint.resolve(r), dev) for r in refs]
    train_clips, val_clips = tdata.load_train_val(args.data, args.max_clips, args.patterns, args.pattern_kinds)
    scfg = tdata.SampleConfig(frames=args.frames, size=args.crop)
    val = tdata.stack(tdata.batch(val_clips, 8, scfg, np.random.default_rng(1234)))
    return models, train_clips, {k: v.to(dev) for k, v in val.items()}


def draw_batch(train_clips: list[np.ndarray], args, rng: np.random.Generator, dev: torch.device,
               fastpath: tuple = (None, "paper")):
    """A training batch and its keep mask (B, Tg, Hg, Wg) drawn as in stage 1; None if nothing is kept.
    fastpath: (FastPath or None, oracle): adds b["fast"] and, with oracle "fastpath", its scores
    (train.data.add_fastpath)."""
    scfg = tdata.SampleConfig(frames=args.frames, size=args.crop)
    b = {k: v.to(dev) for k, v in tdata.stack(tdata.batch(train_clips, args.batch, scfg, rng)).items()}
    if fastpath[0] is not None:
        b = tdata.add_fastpath(b, fastpath[0], fastpath[1], scfg.token_px)
    keep, _ = draw_keep(b["scores"], rng, args.p_noskip, args.tau_max)
    return (b, keep) if keep.any() else None


def training_tokens(b: dict, keep: torch.Tensor, pt: int) -> tuple[TokenSet, torch.Tensor]:
    """Kept tokens of a batch and their x0 targets (HR minus the 8-bit bicubic base): (N, 3pt, 16, 16)."""
    tokens = TokenSet.from_keep(keep)
    return tokens, gather(b["hr"] - b["base"], tokens, 16, pt)


def loss_on_batch(model: SkipSRNet, b: dict, keep: torch.Tensor, t: torch.Tensor, gen: torch.Generator | None = None):
    """Flow-matching x0 loss on the kept tokens of one batch. t: (B,) per clip."""
    tokens, x0 = training_tokens(b, keep, model.cfg.pt)
    eps = torch.randn(x0.shape, generator=gen, device=x0.device)
    t_tok = t[tokens.pos[:, 0]].view(-1, 1, 1, 1)  # (N, 1, 1, 1)
    xt = diffusion.add_noise(x0, eps, t_tok)
    x0_hat = model(b["lr"], xt, t, model.prepare(tokens))
    return diffusion.flow_matching_loss(x0_hat, x0)


@torch.no_grad()
def sample_kept(model: SkipSRNet, lr: torch.Tensor, noise: torch.Tensor, prep: dict, steps: int) -> torch.Tensor:
    """Euler sampling of the kept tokens' residuals, as the pipeline does (shifted schedule).

    lr: (B, T, 3, h, w); noise: (N, 3pt, 16, 16) at t = 1, the tokens `prep` was made for -> (N, 3pt, 16, 16).
    """
    bsz = lr.shape[0]

    def denoise(xt: torch.Tensor, t_now: float) -> torch.Tensor:
        return model(lr, xt, torch.full((bsz,), t_now, device=lr.device), prep)

    return diffusion.sample_euler(denoise, noise, diffusion.schedule(steps))


@torch.no_grad()
def validate(model: SkipSRNet, val: dict, steps_list=(1, 4), seed: int = 0, detail_tau: float = 4.0) -> dict:
    """PSNR (RGB, whole crops, no skipping) of bicubic and of the model at each step count, and on
    tokens whose oracle detail score >= detail_tau; and the residual energy on those tokens relative
    to the true HR residual's (1 = as much detail as the HR, < 1 = smoother: what GAN training raises)."""
    model.eval()
    hr, base = val["hr"], val["base"]
    keep = torch.ones(val["scores"].shape, dtype=torch.bool)
    tokens = TokenSet.from_keep(keep)
    prep = model.prepare(tokens)
    detail = (val["scores"] >= detail_tau).reshape(-1)

    target = gather(hr - base, tokens, 16, model.cfg.pt)  # (N, 3pt, 16, 16)

    def psnr_tokens(pred_res: torch.Tensor, rows: torch.Tensor) -> float:
        mse = ((pred_res[rows].clamp(-1, 1) - target[rows]) ** 2).mean()
        return float(10 * torch.log10(1 / mse.clamp(min=1e-12)))

    zero = torch.zeros((tokens.n, 3 * model.cfg.pt, 16, 16))
    everything = torch.ones(tokens.n, dtype=torch.bool)
    out = {"psnr_bicubic": psnr_tokens(zero, everything), "psnr_bicubic_detail": psnr_tokens(zero, detail)}
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(zero.shape, generator=g)
    for steps in steps_list:
        res = sample_kept(model, val["lr"], noise.clone(), prep, steps)
        out[f"psnr_{steps}step"] = psnr_tokens(res, everything)
        out[f"psnr_{steps}step_detail"] = psnr_tokens(res, detail)
        out[f"energy_{steps}step_detail"] = float(res[detail].pow(2).mean() / target[detail].pow(2).mean())
    return out


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="skipsr train sr", description=__doc__.split("\n\n")[0])
    add_common_args(ap, run="runs/sr", steps=6000, log_every=20, val_every=250, save_every=100)
    ap.add_argument("--size-name", default="cpu", choices=sorted(SIZES))
    add_clip_args(ap, batch=8, frames=4, crop=128, lr=4e-4, warmup=200)
    ap.add_argument("--p-t1", type=float, default=0.15, help="share of clips trained at t = 1 (one-step end)")
    ap.add_argument("--init", metavar="NAME|PATH", help="start from this checkpoint's weights (fine-tuning)")
    args = ap.parse_args(argv)
    rng = setup(args)
    dev = torch.device(args.device)
    inputs = load_inputs(args, dev, *([args.init] if args.init else []))
    inits, train_clips, val = inputs
    model, init_card = inits[0] if inits else (SkipSRNet(SIZES[args.size_name]).to(dev), {})
    if args.init:
        log.info("initialised from %s", init_card.get("id"))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.99))
    run = Run(args.run, model, EMA(model), opt, rng)
    run.resume()
    log.info("model %.2fM parameters; training steps %d..%d", sum(p.numel() for p in model.parameters()) / 1e6,
             run.step, args.steps)

    def train_step():
        drawn = draw_batch(train_clips, args, rng, dev)
        if drawn is None:
            return None
        b, keep = drawn
        t = diffusion.sample_t(args.batch)
        t = torch.where(torch.rand(args.batch) < args.p_t1, torch.ones_like(t), t).to(dev)
        return {"loss": loss_on_batch(model, b, keep, t), "kept": float(keep.float().mean())}

    card = lambda: {"id": f"skipsr-{args.size_name}{'-ft' if args.init else ''}-step{run.step}",  # noqa: E731
                    "stage": "sr (flow matching, trained with skipping)", "init": init_card.get("id"),
                    "data": "virtual-camera clips + real clips of the train split (python -m skipsr.data)"}
    fit(run, args, train_step, lambda: validate(run.ema.model, val), card, args.lr, args.warmup, clip_grad=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
