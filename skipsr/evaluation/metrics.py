"""Quality metrics of an output video against the HR ground truth (docs/design.md section 8).

- PSNR-Y and SSIM-Y through pyiqa (Y of YCbCr, the SR convention), averaged over frames.
- PSNR-Y restricted to a pixel mask (e.g. tokens whose oracle detail score >= 4), same Y.
- VMAF through vmaf-torch (an offline PyTorch port of Netflix VMAF, default model).
- LPIPS (AlexNet, v0.1) and DISTS on whole frames, mean over frames (`perceptual.py`), from
  weights converted offline by `make metric-weights`; without them both are None and
  `perceptual_reason()` names the command, never a made-up number.
- ColorVideoVDP in JOD (`jod.py`): the judge of "perceptible", every frame, the clip's fps.
- Temporal consistency: the flow warping error E_warp x 1e3 (`warp.py`, flow on the ground truth)
  and the simpler temporal error mean |(out[t+1] - out[t]) - (hr[t+1] - hr[t])| in 8-bit units
  (flicker the output adds on top of the true motion).

Videos are uint8 numpy arrays (T, H, W, 3). Metric objects are built once and cached.
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np
import torch

from skipsr.evaluation import jod as jodmod
from skipsr.evaluation import metric_weights, warp

log = logging.getLogger(__name__)


def _t(video: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2).float() / 255.0


@functools.cache
def _pyiqa(name: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import pyiqa

    return pyiqa.create_metric(name, test_y_channel=True, color_space="ycbcr", device="cpu")


def luma(video: np.ndarray) -> torch.Tensor:
    """Y of YCbCr (BT.601, 16-235) in 8-bit units, as pyiqa computes it. -> (T, 1, H, W)."""
    from pyiqa.utils.color_util import to_y_channel

    return to_y_channel(_t(video), 1.0, "ycbcr") * 255.0


def _frames(fn, a: np.ndarray, b: np.ndarray, batch: int = 8) -> float:
    if a.shape != b.shape:
        raise ValueError(f"videos differ in shape: {a.shape} vs {b.shape}")
    with torch.no_grad():
        vals = [fn(_t(a[i : i + batch]), _t(b[i : i + batch])) for i in range(0, len(a), batch)]
    return float(torch.cat([v.reshape(-1) for v in vals]).double().mean())


def psnr_y(out: np.ndarray, ref: np.ndarray) -> float:
    """PSNR of the Y channel (dB), mean over frames. Identical frames give inf."""
    if np.array_equal(out, ref):
        return float("inf")
    return _frames(_pyiqa("psnr"), out, ref)


def ssim_y(out: np.ndarray, ref: np.ndarray) -> float:
    return _frames(_pyiqa("ssim"), out, ref)


def psnr_y_masked(out: np.ndarray, ref: np.ndarray, pixel_mask: np.ndarray) -> float | None:
    """PSNR-Y over the pixels where pixel_mask (T, H, W) is True, pooled over the clip. None if empty."""
    m = torch.from_numpy(np.asarray(pixel_mask, bool))[:, None]  # (T, 1, H, W)
    if not m.any():
        return None
    err = (luma(out) - luma(ref))[m]
    mse = float((err.double() ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@functools.cache
def _vmaf():
    from vmaf_torch import VMAF

    return VMAF(temporal_pooling=True, clip_score=True).eval()


def vmaf(out: np.ndarray, ref: np.ndarray) -> float:
    """VMAF (0-100+, default model, with motion) of `out` against `ref`, pooled over frames."""
    if out.shape != ref.shape:
        raise ValueError(f"videos differ in shape: {out.shape} vs {ref.shape}")
    with torch.no_grad():
        return float(_vmaf()(luma(ref), luma(out)))


def temporal_error(out: np.ndarray, ref: np.ndarray) -> float | None:
    """Mean |d_out - d_ref| of consecutive-frame differences, 8-bit units. None for one frame."""
    if len(out) < 2:
        return None
    d_out = np.diff(out.astype(np.float32), axis=0)
    d_ref = np.diff(ref.astype(np.float32), axis=0)
    return float(np.abs(d_out - d_ref).mean())


# "No perceptible loss", rule version 2 (docs/design.md section 8): a skip run loses at most
# jod.MAX_JOD_DROP (0.1 JOD, ~53% of observers preferring no-skip) to the same model's no-skip output,
# on every clip, clean and realistic input. LPIPS, DISTS, PSNR-Y and E*warp rises are reported beside it.
MAX_JOD_DROP = jodmod.MAX_JOD_DROP


def skip_cost(skip: dict, noskip: dict, max_jod_drop: float = MAX_JOD_DROP) -> dict:
    """A skip output's cost from its quality numbers and the no-skip output's (both vs the HR):
    `jod_drop`, `lpips_rise`, `dists_rise`, `psnr_y_drop_db`, `warp_error_rise` (positive = worse;
    None where a number is missing) and `no_perceptible_loss` (jod_drop <= max_jod_drop; None without JOD)."""
    def diff(key: str, sign: int) -> float | None:
        a, b = skip.get(key), noskip.get(key)
        return sign * (a - b) if a is not None and b is not None else None

    cost = {"jod_drop": diff("jod", -1), "lpips_rise": diff("lpips", 1), "dists_rise": diff("dists", 1),
            "psnr_y_drop_db": diff("psnr_y", -1), "warp_error_rise": diff("warp_error", 1)}
    ok = None if cost["jod_drop"] is None else bool(cost["jod_drop"] <= max_jod_drop)
    return {**cost, "no_perceptible_loss": ok}


def perceptual_reason() -> str | None:
    """Why LPIPS / DISTS cannot be computed here (the command that fixes it), or None when they can."""
    return metric_weights.missing_reason()


def perceptual(out: np.ndarray, refs: dict[str, np.ndarray], cache: dict | None = None,
               lpips_net: str = "alex") -> dict[str, dict[str, float | None]]:
    """LPIPS and DISTS of `out` against each named reference (whole frames, mean over frames):
    {ref name: {"lpips": ..., "dists": ...}}; every value None when the weights are absent
    (`perceptual_reason()` says why). `cache`: see perceptual.video_distances."""
    if perceptual_reason() is not None:
        return {name: {"lpips": None, "dists": None} for name in refs}
    from skipsr.evaluation import perceptual as pm

    if "out" in refs:
        raise ValueError("'out' is reserved for the scored video")
    got = pm.video_distances({"out": out, **refs}, [("out", name) for name in refs], lpips_net, cache)
    return {name: got[("out", name)] for name in refs}


def quality(out: np.ndarray, ref: np.ndarray, with_vmaf: bool = False, vs: dict[str, np.ndarray] | None = None,
            cache: dict | None = None, flows: list | None = None, lpips_net: str = "alex", fps: float = 24.0,
            with_jod: bool = True) -> dict:
    """The standard full-reference numbers of one output (uint8 (T, H, W, 3) all): ColorVideoVDP
    JOD (every frame, at `fps`; `with_jod=False` leaves it None), PSNR-Y, SSIM-Y, LPIPS (AlexNet
    v0.1), DISTS, the flow warping error E_warp x 1e3 and the temporal error; VMAF on request. `vs`:
    other videos to measure the output's distance to (e.g. {"noskip": ...} gives `jod_vs_noskip`,
    `psnr_y_vs_noskip`, `lpips_vs_noskip`, `dists_vs_noskip`: the skip cost). `cache` / `flows`: the
    reference's backbone features / flows when already known (perceptual.video_distances,
    warp.reference_flows). `lpips_net="vgg"`: LPIPS on VGG16 instead of the standard AlexNet."""
    vs = vs or {}
    dist = perceptual(out, {"ref": ref, **vs}, cache, lpips_net)
    score = (lambda a, b: jodmod.jod(a, b, fps)) if with_jod else (lambda a, b: None)
    res = {"jod": score(out, ref), "psnr_y": psnr_y(out, ref), "ssim_y": ssim_y(out, ref), **dist["ref"],
           "warp_error": warp.warp_error(out, ref, flows), "temporal_error": temporal_error(out, ref)}
    for name, other in vs.items():
        res.update({f"jod_vs_{name}": score(out, other), f"psnr_y_vs_{name}": psnr_y(out, other),
                    f"lpips_vs_{name}": dist[name]["lpips"], f"dists_vs_{name}": dist[name]["dists"]})
    if with_vmaf:
        res["vmaf"] = vmaf(out, ref)
    return res


def seam_error(out: np.ndarray, ref: np.ndarray, skip: torch.Tensor, token: int) -> float | None:
    """Extra jump at the borders where a refined token meets a skipped one, in 8-bit units.

    Mean |out[x] - out[x-1]| minus mean |ref[x] - ref[x-1]| over the pixel pairs straddling those
    borders (both axes). ~0: no visible seam; > 0: the composition adds an edge. None without such
    borders. skip: (T, Hg, Wg) bool, pt = 1.
    """
    o, r = out.astype(np.float32), ref.astype(np.float32)
    s = skip.numpy().astype(bool)
    jumps_out, jumps_ref = [], []
    for axis in (1, 2):  # rows, columns of the token grid
        a = np.take(s, range(s.shape[axis] - 1), axis=axis)
        b = np.take(s, range(1, s.shape[axis]), axis=axis)
        t_idx, i_idx, j_idx = np.nonzero(a != b)  # mixed borders after token i (axis) / j
        for t, i, j in zip(t_idx, i_idx, j_idx):
            if axis == 1:
                y = (i + 1) * token
                if y >= o.shape[1]:
                    continue
                xs = slice(j * token, (j + 1) * token)
                jumps_out.append(np.abs(o[t, y, xs] - o[t, y - 1, xs]).mean())
                jumps_ref.append(np.abs(r[t, y, xs] - r[t, y - 1, xs]).mean())
            else:
                x = (j + 1) * token
                if x >= o.shape[2]:
                    continue
                ys = slice(i * token, (i + 1) * token)
                jumps_out.append(np.abs(o[t, ys, x] - o[t, ys, x - 1]).mean())
                jumps_ref.append(np.abs(r[t, ys, x] - r[t, ys, x - 1]).mean())
    if not jumps_out:
        return None
    return float(np.mean(jumps_out) - np.mean(jumps_ref))
