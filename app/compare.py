"""SkipSR vs no-skip on one clip, with everything the app shows (docs/design.md section 10).

    python -m app.compare --example bunny [--degradation realistic] [--frames 16] [--json]

`steps(...)` runs the no-skip and the skip pipeline on the same LR, seed and model by the speed
protocol (`skipsr.evaluation.speed`: warm-up, interleaved rounds, medians), writes every view as an mp4 (the
LR enlarged, bicubic, SkipSR, no-skip, the ground truth, the mask overlays, a split screen), scores
the outputs (PSNR-Y on every frame, LPIPS and DISTS on sampled tiles, ColorVideoVDP JOD on a centre
crop of the first frames: whole 720p frames take ~10 s and ~4 s each on a 2-core CPU) and records
both runs in the metrics store. It yields the comparison three times,
so a caller can show the videos after the first round, the speed after the last, the metrics at the
end; `compare(...)` runs it through. The command prints where one comparison's time goes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from skipsr import cliutil, masks, resize
from skipsr.evaluation import jod, measure, metrics, speed, store
from app import views
from skipsr.pipeline import SkipSRPipeline
from skipsr.video import probe, read_video

log = logging.getLogger("app.compare")

MAX_FRAMES = 48  # caps of the app (the CLI has none)
MAX_LR = (480, 270)  # the largest LR (landscape; a portrait input the other way round)
FITS = ("crop", "downscale")  # what becomes of a larger input: a centre crop, or a downscale, to MAX_LR
METRIC_FRAMES = 2  # LPIPS / DISTS on this many frames (evenly spaced) ...
METRIC_TILE = 256  # ... in 4 tiles of this side (one per quadrant)
OUTPUTS = ("bicubic", "noskip", "skip")  # what is scored against the ground truth
LABELS = {"lr": "LR input (nearest x{s})", "bicubic": "bicubic", "skip": "SkipSR", "noskip": "no-skip",
          "hr": "ground truth"}
APP_STORE = {"compact_over": 16, "max_rows": 2000}  # the app's store: compacted past 16 shards, newest 2000 rows


@dataclass
class Source:
    """What a comparison runs on: an LR clip, with its HR when known (an example)."""

    lr: np.ndarray  # (T, h, w, 3) uint8
    fps: Fraction | float
    clip_id: str
    clip_hash: str
    degradation: str  # "bicubic" | "realistic" (an example, degraded here) | "upload"
    clip: measure.Clip | None = None  # an example: HR, bicubic, detail pixels, perceptual cache
    notes: list[str] = field(default_factory=list)  # what was done to the input, in words

    @property
    def hr(self) -> np.ndarray | None:
        return self.clip.hr if self.clip is not None else None


def example_source(path: str | Path, pipe: SkipSRPipeline, degradation: str = "bicubic", frames: int = 16,
                   seed: int = 0) -> Source:
    """An HR example clip, degraded here (clean bicubic or the seeded real-world chain)."""
    n = _frame_cap(frames)
    hr = read_video(path, max_frames=n)
    clip = measure.prepare_clip(hr, pipe.cfg, degradation, seed=seed)
    check_lr(clip.lr)
    return Source(lr=clip.lr, fps=probe(path).fps, clip_id=Path(path).stem, clip_hash=store.file_hash(path),
                  degradation=degradation, clip=clip)


def upload_source(path: str | Path, frames: int = 16, fit: str = "crop") -> Source:
    """An uploaded LR video: its first `frames` frames, larger frames centre-cropped or downscaled to
    MAX_LR (`fit`); `notes` says what was done."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    info = probe(path)
    n = _frame_cap(frames)
    lr = read_video(path, max_frames=n)
    if len(lr) == 0:
        raise ValueError("the video has 0 frames")
    notes = []
    if info.frames > len(lr):
        notes.append(f"used the first {len(lr)} of {info.frames} frames ({len(lr) / float(info.fps):.1f} of "
                     f"{info.duration_s:.1f} s; the frame limit is {n})")
    lr, note = fit_lr(lr, fit)
    if note:
        notes.append(note)
    return Source(lr=lr, fps=info.fps, clip_id=Path(path).stem, clip_hash=store.file_hash(path),
                  degradation="upload", notes=notes)


def _frame_cap(frames: int) -> int:
    return max(1, min(int(frames), MAX_FRAMES))


def lr_box(h: int, w: int) -> tuple[int, int]:
    """The largest (h, w) within the input and the MAX_LR box of its orientation, with the box's area."""
    bw, bh = MAX_LR if w >= h else MAX_LR[::-1]
    cap = bw * bh
    ch, cw = min(h, bh), min(w, bw)
    if cw < bw:  # narrower than the box: may be taller
        ch = min(h, cap // cw)
    elif ch < bh:  # lower than the box: may be wider
        cw = min(w, cap // ch)
    return ch, cw


def fit_lr(lr: np.ndarray, fit: str) -> tuple[np.ndarray, str | None]:
    """(T, h, w, 3) -> frames within MAX_LR's area: centre-cropped ("crop") or downscaled with
    antialiasing to the same area ("downscale"); even sides. Returns (frames, what was done or None)."""
    t, h, w, _ = lr.shape
    if h * w <= MAX_LR[0] * MAX_LR[1]:
        return lr, None
    what = f"the input is {w}x{h}, over this demo's {MAX_LR[0]}x{MAX_LR[1]} LR cap"
    if fit == "crop":
        ch, cw = lr_box(h, w)
        ch, cw = ch - ch % 2, cw - cw % 2
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        return np.ascontiguousarray(lr[:, y0: y0 + ch, x0: x0 + cw]), f"{what}: centre-cropped to {cw}x{ch}"
    s = np.sqrt(MAX_LR[0] * MAX_LR[1] / (h * w))
    nh, nw = int(h * s) // 2 * 2, int(w * s) // 2 * 2
    return resize.resize_u8(lr, nh, nw), f"{what}: downscaled to {nw}x{nh}"


def check_lr(lr: np.ndarray) -> None:
    """The app's limits, with messages that say what to do."""
    t, h, w, _ = lr.shape
    if t == 0:
        raise ValueError("the video has 0 frames")
    if h * w > MAX_LR[0] * MAX_LR[1]:
        raise ValueError(f"input is {w}x{h}; this demo takes low-resolution inputs up to {MAX_LR[0]}x{MAX_LR[1]} "
                         "(use the CLI `python -m skipsr upscale` for larger videos)")


@dataclass
class Comparison:
    source: Source
    speed: speed.Speed  # final once stage != "videos"
    videos: dict[str, str]  # view -> mp4: lr, bicubic, skip, noskip, [hr], [pred_overlay], [oracle_overlay], split
    stage: str = "videos"  # "videos" (first round), "speed" (all rounds), "done" (metrics and store too)
    agreement: dict | None = None  # predictor vs oracle (F1, IoU, skip ratios) when both exist
    quality: dict = field(default_factory=dict)  # {output: {"psnr_y", "lpips", "dists"}} vs the HR
    skip_cost: dict = field(default_factory=dict)  # the skip output's PSNR-Y / LPIPS / DISTS vs no-skip
    breakdown: dict[str, float] = field(default_factory=dict)  # wall seconds per step (see `steps`)
    rows: list[dict] = field(default_factory=list)  # what was written to the store
    tau: float = 0.0
    mask: str = "predicted"
    steps: int = 1

    @property
    def frames(self) -> int:
        return int(self.source.lr.shape[0])

    def summary(self) -> dict:
        """The numbers of the comparison (the app API's JSON): speed figures only when final and
        reliable (an efficiency above speed.MAX_EFFICIENCY is a busy machine, not a speed-up)."""
        sp = self.speed
        shown = sp.final and sp.reliable
        out = {"clip": self.source.clip_id, "degradation": self.source.degradation, "frames": self.frames,
               "out_w": int(sp.skip.video.shape[2]), "out_h": int(sp.skip.video.shape[1]), "tau": self.tau,
               "mask": self.mask, "steps": self.steps, "skip_ratio": sp.skip.skip_ratio,
               "ideal_speedup": sp.ideal_speedup,
               "speedup_transformer": sp.speedup_transformer if shown else None,
               "speedup_e2e": sp.speedup_e2e if shown else None,
               "transformer_efficiency": sp.transformer_efficiency if shown else None,
               "speed_rounds": sp.rounds, "speed_reliable": sp.reliable if sp.final else None,
               "model_compute_s": sp.model_compute_s, "wall_s": self.breakdown.get("wall_s"),
               "answer_s": self.breakdown.get("answer_s"), "notes": self.source.notes}
        for name in OUTPUTS:
            q = self.quality.get(name, {})
            out[name] = {k: q.get(k) for k in ("jod", "psnr_y", "lpips", "dists")}
        out["skip_vs_noskip"] = dict(self.skip_cost)
        if self.quality:
            cost = metrics.skip_cost(self.quality["skip"], self.quality["noskip"])
            out["verdict"] = {**cost, "prefer_noskip": jod.verdict(cost["jod_drop"])["prefer_noskip"],
                              "text": jod.verdict_text(cost["jod_drop"])}
        return out


def steps(pipe: SkipSRPipeline, out_dir: str | Path, source: Source, *, tau: float | None = None,
          mask: str = "predicted", steps: int | None = None, seed: int = 0, repeats: int = speed.MIN_REPEATS,
          results: str | Path | None = None, with_metrics: bool = True) -> Iterator[Comparison]:
    """Yield the comparison after the first timed round (its videos written: stage "videos"), after
    the last round ("speed") and after scoring and recording ("done"). tau / steps: the model card's
    defaults when None. breakdown (wall seconds from the call): model_compute_s (warm-up and every
    round), encode_s, metrics_s, store_s; answer_s when the videos were written, speed_s when the
    speed figures were final, wall_s in all."""
    tau, steps = pipe.resolve(tau, steps)
    if mask == "oracle" and source.clip is None:
        raise ValueError("the oracle mask needs the ground truth: pick an example clip, or use the predicted mask")
    check_lr(source.lr)
    t0 = time.perf_counter()
    bd: dict[str, float] = {"encode_s": 0.0}
    out_dir = Path(out_dir)
    cmp = None
    warm = min(source.lr.shape[0], pipe.config.chunk_frames, 4)
    for sp in speed.rounds(pipe, source.lr, tau=tau, mask=mask, steps=steps, seed=seed, hr=source.hr,
                           repeats=repeats, warmup_frames=warm):
        if cmp is None:
            t_enc = time.perf_counter()
            cmp = Comparison(source=source, speed=sp, videos=render(pipe, source, sp, out_dir), tau=tau, mask=mask,
                             steps=steps, breakdown=bd)
            bd["encode_s"] = time.perf_counter() - t_enc
            bd["answer_s"] = bd["wall_s"] = time.perf_counter() - t0
            yield cmp
        cmp.speed = sp
    bd["model_compute_s"] = cmp.speed.model_compute_s
    cmp.stage = "speed"
    bd["speed_s"] = bd["wall_s"] = time.perf_counter() - t0
    yield cmp
    skip = cmp.speed.skip
    if skip.pred_skip is not None and skip.oracle_skip is not None:
        cmp.agreement = masks.agreement(skip.pred_skip, skip.oracle_skip)
    t_m = time.perf_counter()
    if with_metrics:
        cmp.quality, cmp.skip_cost = score(source, {"bicubic": source.clip.bicubic if source.clip else None,
                                                    "noskip": cmp.speed.noskip.video, "skip": skip.video})
    bd["metrics_s"] = time.perf_counter() - t_m
    t_s = time.perf_counter()
    if results is not None:
        cmp.rows = record(results, cmp, pipe, seed)
    bd["store_s"] = time.perf_counter() - t_s
    bd["wall_s"] = time.perf_counter() - t0
    cmp.stage = "done"
    yield cmp


def compare(pipe: SkipSRPipeline, out_dir: str | Path, source: Source, **kw) -> Comparison:
    """`steps` run through: the finished comparison."""
    for cmp in steps(pipe, out_dir, source, **kw):
        pass
    return cmp


def render(pipe: SkipSRPipeline, source: Source, sp: speed.Speed, out_dir: Path) -> dict[str, str]:
    """Every view of one round as an mp4 (encoded in parallel)."""
    skip, s = sp.skip, pipe.cfg.scale
    bicubic = (source.clip.bicubic if source.clip is not None  # the pipeline's base, in 8 bits
               else resize.up_u8(torch.from_numpy(source.lr), s).numpy())
    vids = {"lr": views.nearest_up(source.lr, s), "bicubic": bicubic, "skip": skip.video, "noskip": sp.noskip.video,
            "split": views.split_screen(skip.video, bicubic)}
    if source.hr is not None:
        vids["hr"] = source.hr
    for name, m in (("pred_overlay", skip.pred_skip), ("oracle_overlay", skip.oracle_skip)):
        if m is not None:
            vids[name] = masks.overlay(skip.video, m, pipe.cfg.token_px, pipe.cfg.pt)
    return views.encode(vids, out_dir, source.fps)


def metric_tiles(video: np.ndarray) -> np.ndarray:
    """The sample LPIPS / DISTS see: METRIC_FRAMES evenly spaced frames x one METRIC_TILE tile per
    quadrant (smaller frames: half their side). (T, H, W, 3) -> (K * 4, tile, tile, 3)."""
    t, h, w, _ = video.shape
    tile = min(METRIC_TILE, h // 2, w // 2)
    idx = np.unique(np.linspace(0, t - 1, min(METRIC_FRAMES, t)).round().astype(int))
    tiles = [video[i, y: y + tile, x: x + tile] for i in idx
             for y in (h // 4 - tile // 2, 3 * h // 4 - tile // 2) for x in (w // 4 - tile // 2, 3 * w // 4 - tile // 2)]
    return np.stack(tiles)


def metrics_scope(frames: int, h: int, w: int) -> str:
    """What the app's metrics cover, in words."""
    k, tile = min(METRIC_FRAMES, frames), min(METRIC_TILE, h // 2, w // 2)
    return (f"PSNR-Y on every frame; LPIPS and DISTS on 4 tiles of {tile} px in {k} of {frames} frames; JOD "
            f"(ColorVideoVDP) on {jod.sample_scope(frames, h, w)} (samples: `skipsr evaluate` scores whole frames)")


def score(source: Source, outputs: dict[str, np.ndarray | None]) -> tuple[dict, dict]:
    """(quality per output vs the HR, the skip output's distance to no-skip). An upload has no HR:
    only the distance to no-skip."""
    sk, ns = outputs["skip"], outputs["noskip"]
    tiles = {name: metric_tiles(v) for name, v in outputs.items() if v is not None}
    fps = float(source.fps)
    cost = {"psnr_y_vs_noskip": metrics.psnr_y(sk, ns), "jod_vs_noskip": jod.jod(jod.sample(sk), jod.sample(ns), fps)}
    quality = {}
    if source.hr is not None:
        cache = source.clip.features
        hr_tiles = metric_tiles(source.hr)
        for name, v in outputs.items():
            refs = {"hr": hr_tiles, **({"noskip": tiles["noskip"]} if name == "skip" else {})}
            d = metrics.perceptual(tiles[name], refs, cache)
            quality[name] = {"jod": jod.jod(jod.sample(v), jod.sample(source.hr), fps),
                             "psnr_y": metrics.psnr_y(v, source.hr), "lpips": d["hr"]["lpips"], "dists": d["hr"]["dists"]}
            if name == "skip":
                cost.update(lpips_vs_noskip=d["noskip"]["lpips"], dists_vs_noskip=d["noskip"]["dists"])
    else:
        d = metrics.perceptual(tiles["skip"], {"noskip": tiles["noskip"]})["noskip"]
        cost.update(lpips_vs_noskip=d["lpips"], dists_vs_noskip=d["dists"])
    return quality, cost


def record(results: str | Path, cmp: Comparison, pipe: SkipSRPipeline, seed: int) -> list[dict]:
    """Both runs of a comparison as store rows (origin "app"; median timings), through the one record
    builder, into the app's own bounded store."""
    src, sp = cmp.source, cmp.speed
    base = {"origin": "app", **store.pipeline_fields(pipe), "clip_id": src.clip_id,
            "clip_hash": src.clip_hash or hashlib.sha256(src.lr.tobytes()).hexdigest()[:16],
            "frames": cmp.frames, "width": int(sp.skip.video.shape[2]), "height": int(sp.skip.video.shape[1]),
            "degradation": src.degradation, "steps": cmp.steps, "seed": seed}
    reasons = {"*": "not measured by the app (PSNR-Y on every frame, LPIPS / DISTS on sampled tiles, JOD on a crop)"}
    rows = []
    for name, res, t, m in (("noskip", sp.noskip, 0.0, "none"), ("skip", sp.skip, cmp.tau, cmp.mask)):
        numbers = {**measure.run_numbers(res), **{f"t_{k}_s": v for k, v in sp.medians[name].items()},
                   **cmp.quality.get(name, {})}
        if name == "skip":
            numbers.update(cmp.skip_cost)
            if cmp.quality:
                numbers["jod_drop"] = metrics.skip_cost(cmp.quality["skip"], cmp.quality["noskip"])["jod_drop"]
            if cmp.agreement:
                numbers.update({f"pred_{k}": v for k, v in cmp.agreement.items()})
            if src.hr is not None and res.skip.any():
                numbers["seam_error"] = metrics.seam_error(res.video, src.hr, res.skip, pipe.cfg.token_px)
        numbers["t_per_frame_s"] = numbers["t_total_s"] / max(cmp.frames, 1)
        rows.append(store.run_record(**base, tau=t, mask_source=m, numbers=numbers, reasons=reasons))
    store.ResultsStore(results).append(rows, **APP_STORE)
    return rows


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    from skipsr import checkpoint
    from skipsr.examples import EXAMPLES_DIR

    ap = argparse.ArgumentParser(prog="python -m app.compare", description="Where the time of one app comparison "
                                 "goes: model compute (warm-up + interleaved rounds), encoding, metrics, store.")
    ap.add_argument("--example", default="bunny", help="an example clip name (examples/NAME.mp4)")
    ap.add_argument("--upload", help="an LR video instead of an example")
    ap.add_argument("--degradation", choices=("bicubic", "realistic"), default="bicubic")
    ap.add_argument("--fit", choices=FITS, default="crop", help="an upload larger than the LR cap")
    cliutil.add_frames(ap, default=16)
    cliutil.add_tau(ap)
    cliutil.add_mask(ap, choices=("predicted", "oracle", "none"))
    checkpoint.add_model_args(ap, default_name=checkpoint.APP_MODEL)
    ap.add_argument("--no-metrics", action="store_true")
    cliutil.add_json(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cliutil.check_taus(args.tau)
    cliutil.check_files([args.upload], "upload")
    pipe = SkipSRPipeline.from_pretrained(args.checkpoint or checkpoint.APP_MODEL,  # the app's model by default
                                          load_predictor=args.mask == "predicted")
    t0 = time.perf_counter()
    if args.upload:
        source = upload_source(args.upload, args.frames, args.fit)
    else:
        path = EXAMPLES_DIR / f"{args.example}.mp4"
        cliutil.check_files([str(path)], "example")
        source = example_source(path, pipe, args.degradation, args.frames)
    t_input = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="skipsr-compare-") as tmp:
        cmp = compare(pipe, tmp, source, tau=args.tau, mask=args.mask, steps=args.steps,
                      with_metrics=not args.no_metrics)
    bd = {"input_s": t_input, **cmp.breakdown}
    bd["other_s"] = bd["wall_s"] - sum(bd.get(k, 0.0) for k in ("model_compute_s", "encode_s", "metrics_s", "store_s"))
    out = {"breakdown": bd, "summary": cmp.summary()}
    if args.json:
        print(json.dumps(out, default=str))
    else:
        for k, v in bd.items():
            print(f"{k:18s} {v:8.2f} s")
        bound = 2 * bd["model_compute_s"] + 2
        print(f"videos after {bd['answer_s']:.1f} s, speed figures after {bd['speed_s']:.1f} s; the bound "
              f"(2 x model compute + 2 s) is {bound:.1f} s: {'met' if bd['speed_s'] <= bound else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
