"""Is our model short of training or of capacity? Overfit a few crops and compare with a peer.

    python -m analysis.capacity [--model distilled] [--peer span] [--steps 400] [--json]

A fixed batch of clean crops of what the model handles worst (the training pattern clips: stripes,
text, lines, weave; train.data.pattern_clips, never validation seeds), upscaled by bicubic, by the
peer and by our model. Then a copy of our model is trained on exactly that batch (no skipping,
Charbonnier, Adam) and its PSNR on the batch it memorises is reported as it goes. If the memorised
PSNR stays below the peer's PSNR on those crops, which the peer never saw, more training of this
architecture cannot close the gap there: the limit is the architecture, not the schedule.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time

import numpy as np
import torch

from analysis import peers
from skipsr import checkpoint, cliutil, resize
from skipsr.train import data as tdata
from skipsr.train.adversarial import one_step
from skipsr.train.fidelity import charbonnier

log = logging.getLogger("analysis.capacity")


def psnr(out: torch.Tensor, hr: torch.Tensor) -> float:
    """PSNR in dB of two [0, 1] tensors of one shape, over every pixel and channel."""
    return float(10 * torch.log10(1 / ((out.clamp(0, 1) - hr) ** 2).mean().clamp(min=1e-12)))


def one_step_output(model, b: dict) -> torch.Tensor:
    """(B, T, 3, H, W) output of a one-step model without skipping (noise from a fixed seed)."""
    keep = torch.ones(b["scores"].shape, dtype=torch.bool)
    _, _, fake = one_step(model, b, keep, torch.Generator().manual_seed(0))  # fake: (BT, 3, H, W)
    return fake.unflatten(0, b["hr"].shape[:2])


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.capacity", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="distilled", help="one-step model (name or path)")
    ap.add_argument("--peer", default="span")
    ap.add_argument("--crops", type=int, default=8, help="crops in the batch (the pattern kinds in turn)")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=5e-4)
    cliutil.add_json(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    clips = tdata.pattern_clips(4, frames=8)
    cfg = tdata.SampleConfig(frames=args.frames, size=args.crop, realistic_prob=0.0)
    rng = np.random.default_rng(0)
    samples = [tdata.make_sample(tdata.random_crop([clips[i % len(clips)]], cfg, rng), cfg, rng)
               for i in range(args.crops)]
    b = tdata.stack(samples)  # hr (B, T, 3, H, W), lr, base, scores
    hr = b["hr"]
    peer = peers.load(args.peer, torch.get_num_threads())
    lr_u8 = resize.to_uint8(b["lr"].flatten(0, 1))  # (BT, h, w, 3)
    peer_out = torch.from_numpy(peer(lr_u8)).permute(0, 3, 1, 2).float().div(255).unflatten(0, hr.shape[:2])
    model, card = checkpoint.load(checkpoint.resolve(args.model), torch.device("cpu"))
    with torch.no_grad():
        before = psnr(one_step_output(model.eval(), b), hr)
    student = copy.deepcopy(model).train()
    opt = torch.optim.Adam(student.parameters(), lr=args.lr)
    curve = []
    for step in range(1, args.steps + 1):
        out = one_step_output(student, b)
        loss = charbonnier(out - hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % max(1, args.steps // 8) == 0 or step == args.steps:
            curve.append({"step": step, "psnr": psnr(out.detach(), hr)})
            log.warning("step %d: memorised PSNR %.2f dB", step, curve[-1]["psnr"])
    result = {"model": card.get("id"), "peer": args.peer, "crops": args.crops, "crop": args.crop, "frames": args.frames,
              "psnr_bicubic": psnr(b["base"], hr), "psnr_peer": psnr(peer_out, hr), "psnr_model": before,
              "psnr_memorised": curve[-1]["psnr"], "curve": curve, "steps": args.steps, "lr": args.lr,
              "command": "python -m analysis.capacity " + " ".join(sys.argv[1:] if argv is None else argv),
              "wall_s": round(time.perf_counter() - t0, 1)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"PSNR on {args.crops} pattern crops: bicubic {result['psnr_bicubic']:.2f}, {args.peer} "
              f"{result['psnr_peer']:.2f}, {card.get('id')} {before:.2f}, after memorising them for "
              f"{args.steps} steps {result['psnr_memorised']:.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
