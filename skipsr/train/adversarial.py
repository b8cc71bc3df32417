"""Stage 3: adversarial post-training of the one-step model (docs/design.md section 6.3).

    python -m skipsr.train.adversarial --run runs/adversarial --steps 300 [--init distilled] [--adv-weight 0.002]

Generator: the one-step model (t = 1 -> x0), initialised from the distilled checkpoint, trained
with skipping as in stage 1. Discriminator: a small per-frame conv net on HR frames conditioned on
the LR through its bicubic base, one logit per token. Losses (Huang et al. 2024, "The GAN is dead;
long live the GAN!", R3GAN):
    D: softplus(-(D(real) - D(fake)))  + gamma/2 (R1 + R2)     relativistic pairing, zero-centred
    G: softplus(-(D(fake) - D(real)))  * adv_weight  + MSE(x0_hat, HR residual) on kept tokens
where R1 / R2 are the squared input-gradient norms of D at the real / fake frames, computed every
`--reg-every` steps with gamma scaled by that interval (lazy regularisation, as in StyleGAN2; the
logged r1 / r2 are means over steps, zeros included).

Skipping: the skipped tokens of a fake frame are what the pipeline shows there (bicubic, or the fast
path's output with `--fastpath`), and so are those of the real frame it is paired with (its HR
detail is removed there), and the logits of skipped tokens are left out of both losses: the
discriminator only judges what the transformer produced. `--oracle fastpath` skips by the HR's
error against the fast path (masks.error_scores) instead of the paper's detail score.

Perceptual term (`--perceptual-weight`): LPIPS-VGG (the offline weights) between the
composed output frame (kept tokens from the transformer, skipped ones from the fast path) and the
HR, on `--perceptual-frames` frames per clip. It is taken on the whole frame, so the transformer
also learns to meet the skipped regions at their borders. The reported metric is LPIPS-AlexNet:
training on VGG keeps the evaluation's network out of the loss.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from skipsr import cliutil, masks
from skipsr.model import grow_depth, grow_head
from skipsr.tokens import TokenSet, scatter_add
from skipsr.train import data as tdata
from skipsr.train import sr
from skipsr.train.common import EMA, Run, add_common_args, fit, perceptual_loss, setup

log = logging.getLogger("skipsr.train.adversarial")

RESIDUAL_GAIN = 8.0  # the HR residual is small (~0.02 RMS): D sees it amplified


class Discriminator(nn.Module):
    """(N, 3, H, W) frame + (N, 3, H, W) bicubic base -> (N, H/16, W/16) logits, one per token."""

    def __init__(self, channels: int = 16):
        super().__init__()
        c = channels
        widths = [6, c, 2 * c, 4 * c, 4 * c]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):  # four stride-2 convs: 16 HR pixels per logit
            layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(widths[-1], widths[-1], 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(widths[-1], 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, frame: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        x = torch.cat([(frame - base) * RESIDUAL_GAIN, base * 2 - 1], dim=1)  # (N, 6, H, W)
        return self.net(x)[:, 0]


def residual_frames(x0_hat: torch.Tensor, tokens: TokenSet, shape: tuple, pt: int) -> torch.Tensor:
    """Kept-token residuals (N, 3pt, 16, 16) -> residual video (B, T, 3, H, W), zero on skipped tokens."""
    canvas = torch.zeros(shape, dtype=x0_hat.dtype, device=x0_hat.device)
    return scatter_add(canvas, x0_hat, tokens, 16, pt)


def masked_mean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (x * w).sum() / w.sum().clamp(min=1)


def gradient_penalty(disc: Discriminator, frame: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """Mean squared norm of D's gradient w.r.t. the residual it sees (R1 at real frames, R2 at fake
    ones), i.e. w.r.t. (frame - base) * RESIDUAL_GAIN: gamma keeps its usual meaning at that scale."""
    frame = frame.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(frame, base).sum(), frame, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean() / RESIDUAL_GAIN**2


def adversarial_step(gen, disc, d_opt, b: dict, keep: torch.Tensor, adv_weight: float, gamma: float,
                     noise_gen: torch.Generator | None = None, regularise: bool = True, perceptual=None,
                     perceptual_weight: float = 0.0, perceptual_frames: int = 1) -> dict:
    """One discriminator update, then the generator's loss (returned, not stepped).

    b["fast"] (optional, train.data.add_fastpath): what skipped tokens show (default: the bicubic base).
    regularise=False skips R1/R2 on this step (lazy regularisation: pass a gamma scaled by the interval).
    perceptual: an LPIPS module (VGG) for the perceptual term on the first `perceptual_frames` frames."""
    pt = gen.cfg.pt
    x0_hat, real, fake = one_step(gen, b, keep, noise_gen)
    hr, base = b["hr"], b["base"]  # (B, T, 3, H, W)
    base_f = base.flatten(0, 1)
    w = keep.repeat_interleave(pt, 1).flatten(0, 1).float()  # (B*T, Hg, Wg): logits of kept tokens

    disc.requires_grad_(True)
    d_real, d_fake = disc(real, base_f), disc(fake.detach(), base_f)
    d_loss = masked_mean(F.softplus(-(d_real - d_fake)), w)
    zero = torch.zeros((), device=real.device)
    r1, r2 = ((gradient_penalty(disc, real, base_f), gradient_penalty(disc, fake, base_f)) if regularise
              else (zero, zero))
    d_opt.zero_grad(set_to_none=True)
    (d_loss + gamma / 2 * (r1 + r2)).backward()
    d_opt.step()

    disc.requires_grad_(False)
    g_adv = masked_mean(F.softplus(-(disc(fake, base_f) - disc(real, base_f))), w)
    rec = ((x0_hat - sr.training_tokens(b, keep, pt)[1]) ** 2).mean()
    out = {"loss": rec + adv_weight * g_adv, "rec": rec, "g_adv": g_adv, "d_loss": d_loss, "r1": r1, "r2": r2}
    return add_perceptual(out, fake, hr, perceptual, perceptual_weight, perceptual_frames)


def one_step(gen, b: dict, keep: torch.Tensor, noise_gen: torch.Generator | None = None):
    """The one-step model's output on a batch with the keep mask (B, Tg, Hg, Wg) -> (x0_hat (N, 3pt, 16, 16)
    of the kept tokens, real (BT, 3, H, W), fake (BT, 3, H, W)): the fake frame is what the pipeline shows
    (skipped tokens from b["fast"], the fast path, or the bicubic base), the real one the HR with the
    same fill on skipped tokens."""
    pt, px = gen.cfg.pt, gen.cfg.token_px
    tokens = TokenSet.from_keep(keep)
    eps = torch.randn((tokens.n, 3 * pt, px, px), generator=noise_gen, device=b["lr"].device)
    x0_hat = gen(b["lr"], eps, torch.ones(b["lr"].shape[0], device=eps.device), gen.prepare(tokens))
    hr, base = b["hr"], b["base"]  # (B, T, 3, H, W)
    _, t, _, h, w = hr.shape
    kpx = masks.mask_to_pixels(keep, t, h, w, px, pt).float()[:, :, None]  # (B, T, 1, H, W)
    fill = b.get("fast", base)  # (B, T, 3, H, W): what skipped tokens show
    real = (fill + (hr - fill) * kpx).flatten(0, 1)  # HR detail only where tokens are kept
    fake = (fill + (base - fill) * kpx + residual_frames(x0_hat, tokens, hr.shape, pt)).flatten(0, 1)
    return x0_hat, real, fake


def add_perceptual(out: dict, fake: torch.Tensor, hr: torch.Tensor, perceptual, weight: float, frames: int) -> dict:
    """Add weight x LPIPS-VGG(fake, HR) on the first `frames` frames of each clip to out["loss"] (and log
    it as out["lpips_vgg"]). fake: (BT, 3, H, W); hr: (B, T, 3, H, W). Returns out."""
    if perceptual is None or weight <= 0:
        return out
    t = hr.shape[1]
    nf = min(frames, t)
    pick = lambda x: x.unflatten(0, (-1, t))[:, :nf].flatten(0, 1)  # noqa: E731  (B*nf, 3, H, W)
    p = perceptual(pick(fake).clamp(0, 1), pick(hr.flatten(0, 1))).mean()
    out["loss"] = out["loss"] + weight * p
    out["lpips_vgg"] = p
    return out


def add_one_step_args(ap: argparse.ArgumentParser) -> None:
    """The options of a stage that fine-tunes a one-step model with skipping (this one, train.fidelity)."""
    ap.add_argument("--init", default="distilled", help="one-step checkpoint to start from (name or path)")
    ap.add_argument("--fastpath", metavar="NAME|PATH", help="fast-path checkpoint: what skipped tokens show "
                    "(default: bicubic, the paper's choice)")
    ap.add_argument("--oracle", choices=masks.ORACLES, default="paper",
                    help="skip by the paper's detail score or by the HR's error against the fast path")
    ap.add_argument("--perceptual-weight", type=float, default=0.0, help="LPIPS-VGG weight on the composed frames")
    ap.add_argument("--perceptual-frames", type=int, default=1, help="frames per clip the perceptual term sees")
    ap.add_argument("--grow-depth", type=int, metavar="N",
                    help="start from --init grown to N blocks (model.grow_depth: the new blocks start as the identity)")
    ap.add_argument("--grow-head", type=int, metavar="N",
                    help="start from --init with N residual conv blocks in its pixel head (model.grow_head: "
                    "the new blocks start as the identity)")


def load_one_step(args, dev: torch.device):
    """What a one-step fine-tune starts from (options of add_one_step_args): (generator, its card, the
    frozen fast path or None, its card, training clips, validation batch, the LPIPS-VGG module or None)."""
    if args.oracle == "fastpath" and not args.fastpath:
        raise cliutil.BadInput("--oracle fastpath needs --fastpath")
    perceptual = perceptual_loss(args.perceptual_weight, dev)
    [(gen, icard), *fp], train_clips, val = sr.load_inputs(args, dev, args.init, *([args.fastpath] if args.fastpath else []))
    fastpath, fcard = fp[0] if fp else (None, {})
    if args.grow_depth:
        gen = grow_depth(gen, args.grow_depth)
    if args.grow_head:
        gen = grow_head(gen, args.grow_head)
    if fastpath is not None:
        fastpath.requires_grad_(False).eval()
        val = tdata.add_fastpath(val, fastpath, args.oracle, gen.cfg.token_px, gen.cfg.pt)
    return gen, icard, fastpath, fcard, train_clips, val, perceptual


def one_step_card(kind: str, what: str, gen, icard: dict, fcard: dict, args, step: int) -> dict:
    """The card fields of a one-step fine-tune (`kind` names its id, `what` says the stage)."""
    grown = (f"-{gen.cfg.depth}L" if args.grow_depth else "") + (f"-h{gen.cfg.head_blocks}" if args.grow_head else "")
    return {"id": f"skipsr-{kind}-{gen.cfg.dim}d{grown}-step{step}",
            "stage": (f"one-step, {what} of {icard.get('id')}"
                      + (f" grown to {gen.cfg.depth} blocks" if args.grow_depth else "")
                      + (f" grown to {gen.cfg.head_blocks} pixel-head conv blocks" if args.grow_head else "")
                      + (f" with LPIPS-VGG x{args.perceptual_weight:g}" if args.perceptual_weight else "")
                      + (f", skipped tokens from the fast path {fcard.get('id')}" if fcard else "")),
            "init": icard.get("id"), "default_steps": 1, "fastpath": fcard.get("id"), "oracle": args.oracle,
            "data": "virtual-camera clips + real clips of the train split (python -m skipsr.data)" + _patterns_note(args)}


def _patterns_note(args) -> str:
    """What --patterns / --pattern-kinds add to the training data, for a card."""
    if not args.patterns:
        return ""
    kinds = f"; {', '.join(args.pattern_kinds)}" if args.pattern_kinds else ""
    return f" + {args.patterns} procedural pattern clips (training seeds{kinds})"


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="skipsr train adversarial", description=__doc__.split("\n\n")[0])
    add_common_args(ap, run="runs/adversarial", steps=300, log_every=10, val_every=100, save_every=50)
    sr.add_clip_args(ap, batch=4, frames=4, crop=128, lr=2e-5, warmup=20)  # --lr: the generator's
    ap.add_argument("--d-lr", type=float, default=2e-4)
    ap.add_argument("--d-channels", type=int, default=16)
    ap.add_argument("--adv-weight", type=float, default=0.002, help="GAN weight next to the MSE (0.01 painted texture)")
    ap.add_argument("--gamma", type=float, default=0.1, help="R1/R2 weight")
    ap.add_argument("--reg-every", type=int, default=4, help="lazy R1/R2: every N steps, weight x N")
    add_one_step_args(ap)
    args = ap.parse_args(argv)
    rng = setup(args)
    dev = torch.device(args.device)
    gen, icard, fastpath, fcard, train_clips, val, perceptual = load_one_step(args, dev)
    disc = Discriminator(args.d_channels).to(dev)
    d_opt = torch.optim.Adam(disc.parameters(), lr=args.d_lr, betas=(0.0, 0.99))
    opt = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.0, 0.99))
    run = Run(args.run, gen, EMA(gen, decay=0.99), opt, rng, extras={"disc": disc, "d_opt": d_opt})
    run.resume()

    def train_step():
        drawn = sr.draw_batch(train_clips, args, rng, dev, fastpath=(fastpath, args.oracle))
        if drawn is None:
            return None
        lazy = run.step % args.reg_every == 0
        return adversarial_step(gen, disc, d_opt, *drawn, args.adv_weight, args.gamma * args.reg_every,
                                regularise=lazy, perceptual=perceptual, perceptual_weight=args.perceptual_weight,
                                perceptual_frames=args.perceptual_frames)

    card = lambda: one_step_card("adversarial", "adversarial post-training", gen, icard, fcard, args, run.step)  # noqa: E731
    fit(run, args, train_step, lambda: sr.validate(run.ema.model, val, (1,)), card, args.lr, args.warmup, clip_grad=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
