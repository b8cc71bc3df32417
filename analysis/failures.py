"""Where a model of ours loses to a peer: per clip and per token (docs/model.md).

    python -m analysis.failures [--methods results/methods.json] [--model distilled] [--peer span] \\
        [--pictures 4] [--out docs] [--json results/failures.json]

Per clip: the JOD, LPIPS and DISTS of our model at its card's tau and of the peer, on both
degradations, from the per-clip numbers that `analysis.methods` wrote (results/methods.json); sorted
by the clean JOD gap (peer - ours: positive = the peer is better).
Per token: for the `--pictures` clips with the widest clean gap (and the widest realistic one), both
are rerun on the clip as the validation runs them (seeded degradation, predicted mask at the card's
tau) and compared with the HR through ColorVideoVDP's raw difference map and LPIPS-Alex's spatial
map, each averaged over the 16 x 16 HR pixels of a token. A picture per clip shows the first frame:
HR, bicubic, ours, the peer, 64 px zooms of HR, ours and the peer where ours loses most, and the two token maps of (ours - peer), red where ours is worse.
The share of the gap that lies on detail tokens (oracle score >= 4) says whether it is the texture
or the flat regions that lose.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from analysis import peers
from skipsr import cliutil, masks, resize
from skipsr.evaluation import jod, measure, perceptual, valset
from skipsr.model import ModelConfig
from skipsr.pipeline import SkipSRPipeline

log = logging.getLogger("analysis.failures")

CONTENT = (  # clip id substring -> what the clip shows (the validation set's kinds, skipsr/evaluation/valset.py)
    ("freespace", "smooth photo"), ("Aqua", "smooth photo (water)"), ("FreshFlower", "smooth photo (flowers)"),
    ("Garden", "smooth photo (garden)"), ("OneStandsOut", "fine texture (moss)"),
    ("mamurk", "fine texture (paper scan)"), ("WaterColor", "fine texture (watercolour paper)"),
    ("GreenMeadow", "foliage"), ("Grey", "lines, architecture"), ("motorcycle", "metal, lines"),
    ("stripes", "periodic stripes near Nyquist"), ("text", "text"), ("lines", "thin lines, grid, rings"),
    ("bikes", "real footage, people"), ("bigbuckbunny", "fur, CG animation"),
)
ZOOM_PX = 64  # side of the zoomed crops, around the window where ours loses most
DETAIL_TAU = 4.0  # oracle detail score (8-bit RMSE) above which a token counts as texture
DEGRADATION_LABEL = {"bicubic": "clean", "realistic": "realistic"}


def content_of(clip_id: str) -> str:
    return next((label for key, label in CONTENT if key in clip_id), "other")


def ours_row(rows: dict, model: str) -> str:
    """The methods row of `model` at its card's tau ("<model> @tau N")."""
    names = [n for n in rows if n.startswith(f"{model} @tau")]
    if not names:
        raise cliutil.BadInput(f"no '{model} @tau' rows in the methods file: rerun analysis.methods with --models {model}")
    return names[0]


def per_clip(methods: dict, model: str, peer: str) -> dict:
    """{degradation: [{clip, content, ours, peer, gaps} ...] sorted by the JOD gap, widest first}."""
    out = {}
    for degradation, clips in methods.get("per_clip", {}).items():
        rows = []
        for clip_id, runs in clips.items():
            if peer not in runs:
                raise cliutil.BadInput(f"no {peer} rows in the methods file: rerun analysis.methods with --peers {peer}")
            ours = runs[ours_row(runs, model)]
            theirs = runs[peer]
            rows.append({"clip": clip_id, "content": content_of(clip_id),
                         "ours": {k: ours[k] for k in ("jod", "lpips", "dists", "psnr_y")},
                         "peer": {k: theirs[k] for k in ("jod", "lpips", "dists", "psnr_y")},
                         "jod_gap": theirs["jod"] - ours["jod"], "lpips_gap": ours["lpips"] - theirs["lpips"],
                         "dists_gap": ours["dists"] - theirs["dists"]})
        out[degradation] = sorted(rows, key=lambda r: -r["jod_gap"])
    if not out:
        raise cliutil.BadInput("the methods file has no per-clip numbers: rerun analysis.methods (it writes them)")
    return out


def merge_methods(paths: list[Path]) -> dict:
    """The per-clip rows of several analysis.methods files as one {"per_clip": ...} (later rows join)."""
    merged: dict = {"per_clip": {}}
    for path in paths:
        if not path.exists():
            raise cliutil.BadInput(f"no {path}: run `python -m analysis.methods --json > {path}` first")
        for degradation, clips in json.loads(path.read_text()).get("per_clip", {}).items():
            for clip_id, rows in clips.items():
                merged["per_clip"].setdefault(degradation, {}).setdefault(clip_id, {}).update(rows)
    return merged


def token_mean(maps: np.ndarray, px: int) -> np.ndarray:
    """(T, H, W) -> (T, H/px, W/px): the mean over each token's pixels."""
    t, h, w = maps.shape
    return maps[:, : h - h % px, : w - w % px].reshape(t, h // px, px, w // px, px).mean((2, 4))


def token_maps(out: np.ndarray, ref: np.ndarray, fps: float, lpips_net) -> dict[str, np.ndarray]:
    """Per-token (T, Hg, Wg) ColorVideoVDP difference and LPIPS of `out` against `ref`."""
    x, y = resize.to_float(out), resize.to_float(ref)  # (T, 3, H, W)
    with torch.no_grad():
        lp = lpips_net.spatial(x, y).numpy()  # (T, H, W)
    px = ModelConfig.token_px
    return {"jod_map": token_mean(jod.jod_map(out, ref, fps), px), "lpips_map": token_mean(lp, px)}


def worst_window(d: np.ndarray, px: int, side: int):
    """A crop function (H, W, 3) -> (side, side, 3) around the token window of `side` HR pixels where
    the token map d (Hg, Wg) sums highest (where ours loses most)."""
    k = side // px
    sums = np.lib.stride_tricks.sliding_window_view(d, (min(k, d.shape[0]), min(k, d.shape[1]))).sum((2, 3))
    gy, gx = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return lambda frame: frame[gy * px: gy * px + side, gx * px: gx * px + side]


def picture(path: Path, title: str, frames: dict[str, np.ndarray], diffs: dict[str, np.ndarray]) -> None:
    """One row: the first frame of each video, then each token map of (ours - peer) on a red-blue scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(frames) + len(diffs)
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.9), constrained_layout=True)
    for ax, (name, frame) in zip(axes, frames.items()):
        ax.imshow(frame, interpolation="nearest")
        ax.set_title(name, fontsize=9)
    for ax, (name, d) in zip(axes[len(frames):], diffs.items()):
        lim = max(float(np.abs(d).max()), 1e-6)
        im = ax.imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def analyse_clip(clip, degradation: str, pipe: SkipSRPipeline, peer_fn, lpips_net, img: Path, label: str) -> dict:
    """Rerun ours and the peer on one clip; token maps, the gap's share on detail tokens, the picture."""
    c = measure.prepare_clip(clip.hr, ModelConfig(), degradation, 0, clip.fps)
    ours = pipe(c.lr, tau=pipe.default_tau, mask="predicted", steps=pipe.default_steps, seed=0).video
    theirs = peer_fn(c.lr)
    m_ours, m_peer = token_maps(ours, c.hr, c.fps, lpips_net), token_maps(theirs, c.hr, c.fps, lpips_net)
    detail = masks.detail_scores(resize.to_float(c.hr), ModelConfig.scale, ModelConfig.token_px).numpy()  # (T, Hg, Wg)
    detail = detail[:, : m_ours["jod_map"].shape[1], : m_ours["jod_map"].shape[2]] >= DETAIL_TAU
    out = {"detail_token_share": float(detail.mean())}
    diffs = {}
    for key, name in (("jod_map", "CVVDP map"), ("lpips_map", "LPIPS map")):
        d = m_ours[key] - m_peer[key]  # (T, Hg, Wg): > 0 where ours is worse
        worse = np.clip(d, 0, None)
        out[f"{key}_gap_on_detail_share"] = float(worse[detail].sum() / max(worse.sum(), 1e-12))
        out[f"{key}_ours"], out[f"{key}_peer"] = float(m_ours[key].mean()), float(m_peer[key].mean())
        diffs[f"{name}: ours - {label}"] = d[0]
    zoom = worst_window(next(iter(diffs.values())), ModelConfig.token_px, ZOOM_PX)
    frames = {"HR": c.hr[0], "bicubic": c.bicubic[0], f"ours (tau {pipe.default_tau:g})": ours[0], label: theirs[0]}
    frames |= {f"{k}, zoom": zoom(v) for k, v in (("HR", c.hr[0]), ("ours", ours[0]), (label, theirs[0]))}
    name = f"{clip.id}-{DEGRADATION_LABEL[degradation]}.png"
    picture(img / name, f"{clip.id} ({DEGRADATION_LABEL[degradation]})", frames, diffs)
    out["picture"] = f"img/failures/{name}"
    return out


def markdown(result: dict) -> str:
    """docs/model.md: the per-clip tables and the pictures."""
    model, peer = result["model"], result["peer_label"]
    lines = [f"# Where `{model}` loses to {peer}", "",
             f"Generated by `{result['command']}` from `{result['methods']}` (the per-clip numbers of "
             "`python -m analysis.methods`); do not edit by hand.", "",
             f"Our model at its card's tau (predicted mask) against {peer} on the validation set "
             "(docs/usage.md), both degradations. Gap = peer - ours in JOD (positive: the peer is better; "
             "0.3 JOD is about 60% of viewers preferring it), and ours - peer in LPIPS and DISTS.", ""]
    for degradation, rows in result["per_clip"].items():
        lines += [f"## {DEGRADATION_LABEL[degradation]} input", "",
                  f"| clip | content | JOD ours | JOD {peer} | JOD gap | LPIPS gap | DISTS gap |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['clip']} | {r['content']} | {r['ours']['jod']:.2f} | {r['peer']['jod']:.2f} | "
                         f"{r['jod_gap']:+.2f} | {r['lpips_gap']:+.3f} | {r['dists_gap']:+.3f} |")
        gaps = [r["jod_gap"] for r in rows]
        lines += ["", f"Mean gap {np.mean(gaps):+.2f} JOD; the peer is better on {sum(g > 0 for g in gaps)} of "
                  f"{len(gaps)} clips.", ""]
    lines += ["## Per token", "",
              "First frame; the maps are (ours - peer) per 16 x 16 token: red where our output differs more "
              "visibly from the HR (ColorVideoVDP's raw difference map) or more in LPIPS-Alex. "
              "'On detail' = the share of the positive gap that lies on tokens whose oracle detail score is >= 4 "
              "(the textured tokens, which a skip never drops).", "",
              "| clip | input | detail tokens | CVVDP gap on detail | LPIPS gap on detail |", "|---|---|---|---|---|"]
    for p in result["pictures"]:
        lines.append(f"| {p['clip']} | {DEGRADATION_LABEL[p['degradation']]} | {100 * p['detail_token_share']:.0f}% | "
                     f"{100 * p['jod_map_gap_on_detail_share']:.0f}% | {100 * p['lpips_map_gap_on_detail_share']:.0f}% |")
    lines.append("")
    for p in result["pictures"]:
        lines += [f"![{p['clip']} {DEGRADATION_LABEL[p['degradation']]}]({p['picture']})", ""]
    cap = result.get("capacity")
    if cap:
        lines += ["## Capacity or training?", "",
                  f"`{cap['command']}` (results/capacity.json): on {cap['crops']} clean {cap['crop']} px crops of the "
                  "training pattern clips (stripes, text, lines, weave), bicubic reaches "
                  f"{cap['psnr_bicubic']:.2f} dB PSNR, {peer} {cap['psnr_peer']:.2f} dB and `{cap['model']}` "
                  f"{cap['psnr_model']:.2f} dB. Trained on exactly those crops for {cap['steps']} steps, a copy of our "
                  f"model reaches {cap['psnr_memorised']:.2f} dB on them. "
                  + ("So the network can represent these outputs well beyond what the peer gets on crops it never "
                     "saw: what it lacks on this content is training (data and steps) more than capacity. "
                     "Memorising a few crops is a weak test of capacity (it says nothing about generalising), "
                     "so this bounds the architecture from below only."
                     if cap["psnr_memorised"] > cap["psnr_peer"] else
                     "Even memorised, our model stays below the peer on crops the peer never saw: on this content "
                     "the architecture, not the schedule, is the limit."), ""]
    return "\n".join(lines)


def render(numbers: Path, capacity: Path, md: Path, check: bool = False) -> int:
    """Write (or with check, compare) model.md from the numbers of a run and the capacity probe's JSON."""
    if not numbers.exists():
        raise cliutil.BadInput(f"no {numbers}: run `python -m analysis.failures` first")
    result = json.loads(numbers.read_text())
    result["capacity"] = json.loads(capacity.read_text()) if capacity.exists() else None
    text = markdown(result)
    if check:
        if not md.exists() or md.read_text() != text:
            print(f"{md} differs from what {numbers} gives: run `python -m analysis.failures --render`")
            return 1
        return 0
    md.write_text(text)
    print(f"wrote {md}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.failures", description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=["results/methods.json"],
                    help="JSONs of analysis.methods (with per_clip); the rows of later files join those of earlier ones")
    ap.add_argument("--model", default="distilled", help="our model (a row of the methods file, loaded by name)")
    ap.add_argument("--peer", default="span", help="the peer to compare with")
    ap.add_argument("--pictures", type=int, default=4, help="clips with the widest clean gap to picture (+1 realistic)")
    ap.add_argument("--out", default="docs", help="folder of model.md and img/failures/")
    ap.add_argument("--json", default="results/failures.json", help="write the numbers here")
    ap.add_argument("--capacity", default="results/capacity.json",
                    help="the JSON of analysis.capacity to report beside the gaps (skipped when missing)")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite model.md from the --json and --capacity files (no runs)")
    ap.add_argument("--check", action="store_true", help="fail if model.md differs from what --render writes")
    cliutil.add_data(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    if args.render or args.check:
        return render(Path(args.json), Path(args.capacity), out / "model.md", args.check)
    table = per_clip(merge_methods([Path(p) for p in args.methods]), args.model, args.peer)
    picks = [("bicubic", r["clip"]) for r in table.get("bicubic", [])[: args.pictures]]
    picks += [("realistic", r["clip"]) for r in table.get("realistic", [])[:1]]
    clips = {c.id: c for c in valset.validation_set(args.data)}
    pipe = SkipSRPipeline.from_pretrained(args.model, chunk_frames=32)
    peer_fn, label = peers.load(args.peer, torch.get_num_threads()), peers.PEERS[args.peer].label
    lpips_net = perceptual.lpips_model("alex")
    pictures = []
    for degradation, clip_id in picks:
        log.warning("per-token maps: %s (%s)", clip_id, degradation)
        pictures.append({"clip": clip_id, "degradation": degradation,
                         **analyse_clip(clips[clip_id], degradation, pipe, peer_fn, lpips_net, out / "img" / "failures", label)})
    result = {"model": args.model, "peer": args.peer, "peer_label": label, "methods": ", ".join(args.methods),
              "per_clip": table, "pictures": pictures,
              "command": "python -m analysis.failures " + " ".join(sys.argv[1:] if argv is None else argv)}
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    render(Path(args.json), Path(args.capacity), out / "model.md")
    print(f"wrote {out / 'model.md'}, {args.json} and {len(pictures)} pictures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
