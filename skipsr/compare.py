"""SkipSR vs no-skip on one clip, with everything the app shows (docs/design.md section 10).

`compare(...)` runs the no-skip and the skip pipeline on the same LR, seed and model, writes the
two outputs and the mask overlays as mp4s, renders the |SkipSR - no-skip| heatmap, measures the
speed-up and (when the HR is known) the quality and mask agreement, and records both runs in the
metrics store. The app's handler is a thin call to it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from skipsr import masks, measure, metrics, store
from skipsr.pipeline import SkipSRPipeline
from skipsr.video import write_video

MAX_FRAMES = 48  # caps of the app (the CLI has none)
MAX_LR_PIXELS = 480 * 270


@dataclass
class Comparison:
    skip_video: str  # mp4 paths
    noskip_video: str
    pred_overlay: str | None
    oracle_overlay: str | None
    skip_frames: np.ndarray  # (T, H, W, 3) uint8
    noskip_frames: np.ndarray
    heatmap: np.ndarray  # (T, H, W, 3) uint8: |skip - noskip| (x8, inferno colour map)
    timings: dict[str, dict[str, float]]  # {"skip": {...}, "noskip": {...}} seconds per stage
    skip_ratio: float
    ideal_speedup: float
    speedup_e2e: float
    speedup_transformer: float
    agreement: dict | None  # predictor vs oracle (F1, IoU, skip ratios) when both exist
    quality: dict = field(default_factory=dict)  # {"skip": {...}, "noskip": {...}, "bicubic": {...}} vs the HR
    skip_cost: dict = field(default_factory=dict)  # the skip output's PSNR-Y / LPIPS / DISTS vs the no-skip one
    rows: list[dict] = field(default_factory=list)  # what was written to the store


def heatmap(a: np.ndarray, b: np.ndarray, gain: float = 8.0) -> np.ndarray:
    """|a - b| (mean over channels, x gain, clipped) through the inferno colour map -> uint8 RGB."""
    from matplotlib import colormaps

    diff = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(-1) * gain / 255.0  # (T, H, W)
    return (colormaps["inferno"](np.clip(diff, 0, 1))[..., :3] * 255).astype(np.uint8)


def check_input(lr: np.ndarray) -> None:
    """The app's limits, with messages that say what to do."""
    t, h, w, _ = lr.shape
    if t == 0:
        raise ValueError("the video has 0 frames")
    if h * w > MAX_LR_PIXELS:
        raise ValueError(f"input is {w}x{h}; this demo takes low-resolution inputs up to 480x270 "
                         "(use the CLI `python -m skipsr upscale` for larger videos)")


def compare(pipe: SkipSRPipeline, out_dir: str | Path, *, hr: np.ndarray | None = None, lr: np.ndarray | None = None,
            fps: Fraction | float = 24, tau: float | None = None, mask: str = "predicted", steps: int | None = None,
            seed: int = 0, max_frames: int = 8, clip_id: str = "upload", clip_hash: str | None = None,
            results: str | Path | None = None) -> Comparison:
    """Run no-skip and skip on one clip. Give `hr` (an example: LR made by bicubic x scale, oracle
    and full-reference metrics available) or `lr` (an upload: predicted or no mask only). tau / steps:
    the model card's defaults when None. `clip_hash`: the store's hash of the source file
    (`store.file_hash`; default: a hash of the LR frames)."""
    tau, steps = pipe.resolve(tau, steps)
    if (hr is None) == (lr is None):
        raise ValueError("give exactly one of hr (an HR example) or lr (an LR upload)")
    if mask == "oracle" and hr is None:
        raise ValueError("the oracle mask needs the ground truth: pick an example clip, or use the predicted mask")
    n = max(1, min(int(max_frames), MAX_FRAMES))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clip = measure.prepare_clip(hr[:n], pipe.cfg) if hr is not None else None
    lr_in = clip.lr if clip is not None else lr[:n]
    check_input(lr_in)
    noskip = pipe(lr_in, tau=0.0, mask="none", steps=steps, seed=seed)  # warm and reference
    skip = pipe(lr_in, tau=tau, mask=mask, steps=steps, seed=seed, hr=clip.hr if clip is not None else None)
    paths = {name: str(out_dir / f"{name}.mp4") for name in ("skip", "noskip", "pred_overlay", "oracle_overlay")}
    write_video(paths["skip"], skip.video, fps)
    write_video(paths["noskip"], noskip.video, fps)
    if skip.pred_skip is not None:
        write_video(paths["pred_overlay"], masks.overlay(skip.video, skip.pred_skip, pipe.cfg.token_px, pipe.cfg.pt), fps)
    if skip.oracle_skip is not None:
        write_video(paths["oracle_overlay"], masks.overlay(skip.video, skip.oracle_skip, pipe.cfg.token_px, pipe.cfg.pt), fps)
    agreement = (masks.agreement(skip.pred_skip, skip.oracle_skip)
                 if skip.pred_skip is not None and skip.oracle_skip is not None else None)
    quality = {}
    if clip is not None:  # the HR's features and flows are computed once (the clip keeps them)
        quality = {"bicubic": measure.quality_of(clip.bicubic, clip), "noskip": measure.quality_of(noskip.video, clip),
                   "skip": measure.quality_of(skip.video, clip, noskip=noskip.video)}
        cost = {k: quality["skip"][k] for k in ("psnr_y_vs_noskip", "lpips_vs_noskip", "dists_vs_noskip")}
    else:  # an upload: no ground truth, but the skip cost (distance to no-skip) is known
        dist = metrics.perceptual(skip.video, {"noskip": noskip.video})["noskip"]
        cost = {"psnr_y_vs_noskip": metrics.psnr_y(skip.video, noskip.video), "lpips_vs_noskip": dist["lpips"],
                "dists_vs_noskip": dist["dists"]}
    ideal = skip.n_tokens / max(skip.n_kept, 1)
    cmp = Comparison(
        skip_video=paths["skip"], noskip_video=paths["noskip"],
        pred_overlay=paths["pred_overlay"] if skip.pred_skip is not None else None,
        oracle_overlay=paths["oracle_overlay"] if skip.oracle_skip is not None else None,
        skip_frames=skip.video, noskip_frames=noskip.video, heatmap=heatmap(skip.video, noskip.video),
        timings={"skip": skip.timings, "noskip": noskip.timings}, skip_ratio=skip.skip_ratio, ideal_speedup=ideal,
        speedup_e2e=noskip.timings["total"] / max(skip.timings["total"], 1e-9),
        speedup_transformer=noskip.timings["transformer"] / max(skip.timings["transformer"], 1e-9),
        agreement=agreement, quality=quality, skip_cost=cost)
    if results is not None:
        cmp.rows = _record(results, cmp, lr_in, clip_id, clip_hash, tau, mask, steps, seed, pipe, skip, noskip,
                           clip.hr if clip is not None else None)
    return cmp


def _record(results, cmp: Comparison, lr_in, clip_id, clip_hash, tau, mask, steps, seed, pipe, skip, noskip,
            hr: np.ndarray | None):
    """Both runs of a comparison as store rows (origin 'app'), through the one record builder."""
    base = {"origin": "app", "card": pipe.card, "predictor_card": pipe.predictor_card, "scale": pipe.cfg.scale,
            "clip_id": clip_id, "clip_hash": clip_hash or hashlib.sha256(lr_in.tobytes()).hexdigest()[:16],
            "frames": int(lr_in.shape[0]), "width": int(cmp.skip_frames.shape[2]),
            "height": int(cmp.skip_frames.shape[1]), "degradation": "bicubic" if cmp.quality else "upload",
            "steps": steps, "seed": seed}
    rows = []
    for name, res, t, m in (("noskip", noskip, 0.0, "none"), ("skip", skip, tau, mask)):
        numbers = {**measure.run_numbers(res), **cmp.quality.get(name, {})}
        if name == "skip":
            numbers.update(cmp.skip_cost)
            if cmp.agreement:
                numbers.update({f"pred_{k}": v for k, v in cmp.agreement.items()})
            if hr is not None and res.skip.any():
                numbers["seam_error"] = metrics.seam_error(res.video, hr, res.skip, pipe.cfg.token_px)
        rows.append(store.run_record(**base, tau=t, mask_source=m, numbers=numbers))
    store.ResultsStore(results).append(rows)
    return rows
