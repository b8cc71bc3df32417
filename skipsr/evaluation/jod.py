"""ColorVideoVDP: the judge of "perceptible" (docs/design.md section 8).

ColorVideoVDP (Mantiuk, Hanji, Ashraf, Asano, Chapiro, "ColorVideoVDP: A visual difference predictor
for image, video and display distortions", SIGGRAPH 2024) is a full-reference video metric built on
a model of human spatio-temporal colour vision (contrast sensitivity, masking, flicker) and fitted
to human quality ratings. It reports quality in JOD (just-objectionable-difference) units:
10 = indistinguishable from the reference; a difference of 1 JOD between two videos means 75% of
observers prefer the better one. We run the `cvvdp` package (its parameters ship in the wheel;
nothing is downloaded) on the CPU with the display model `standard_fhd` (a 24-inch 1080p monitor,
200 cd/m^2, office light, 0.6 m away) and the clip's frame rate.

    jod(out, ref, fps)          # (T, H, W, 3) uint8 both -> JOD of `out` against `ref`
    prefer_share(jod_gap)       # a JOD gap -> the share of observers who prefer the better video
    sample(video)               # the first SAMPLE_FRAMES frames, a centre crop: what quick commands score

A skip run's cost is `jod_drop` = JOD(no-skip vs GT) - JOD(skip vs GT): positive = the skip run is
worse. "No perceptible loss" (rule version 2): jod_drop <= MAX_JOD_DROP on every clip.
"""

from __future__ import annotations

import functools
import logging
import math
import os

import numpy as np
import torch

log = logging.getLogger(__name__)

DISPLAY = "standard_fhd"  # the display model every JOD of this project is computed for
MAX_JOD_DROP = 0.1  # rule v2: a skip may lose at most this much JOD to no-skip, on every clip (~53% prefer)
SAMPLE_FRAMES = 8  # quick commands (the app, the bench) score the first frames (consecutive: flicker is temporal)
SAMPLE_CROP = 384  # ... in a centre crop of at most this side: a whole 720p frame takes ~4 s on a 2-core CPU
JOD_PER_SD = 1.0 / 0.6744897501960817  # 1 JOD = 75% preference: the JOD scale's unit in standard deviations


@functools.cache
def _metric(display: str, heatmap: str | None = None):
    """The package's metric for `display` on the CPU; heatmap="raw" also returns the difference map."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.getLogger("pycvvdp").setLevel(logging.WARNING)
    import pycvvdp

    return pycvvdp.cvvdp(display_name=display, device=torch.device("cpu"), quiet=True, heatmap=heatmap)


def jod(out: np.ndarray, ref: np.ndarray, fps: float = 24.0, display: str = DISPLAY) -> float:
    """ColorVideoVDP quality of `out` against `ref` in JOD (10 = identical), every frame scored.

    out, ref: (T, H, W, 3) uint8 RGB (sRGB-encoded, as shown on the display); T = 1 is scored as an
    image. fps: the clip's frame rate (the temporal channels and flicker depend on it)."""
    if out.shape != ref.shape:
        raise ValueError(f"videos differ in shape: {out.shape} vs {ref.shape}")
    if out.ndim != 4 or out.shape[-1] != 3 or out.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 videos, got {out.shape} {out.dtype}")
    if np.array_equal(out, ref):
        return 10.0
    test = torch.from_numpy(np.ascontiguousarray(out))
    reference = torch.from_numpy(np.ascontiguousarray(ref))
    if len(out) == 1:
        test, reference, dims, rate = test[0], reference[0], "HWC", 0  # an image
    else:
        dims, rate = "FHWC", float(fps)
    with torch.no_grad():
        q, _ = _metric(display).predict(test, reference, dim_order=dims, frames_per_second=rate)
    return float(q)


def jod_map(out: np.ndarray, ref: np.ndarray, fps: float = 24.0, display: str = DISPLAY) -> np.ndarray:
    """ColorVideoVDP's raw difference map of `out` against `ref`: (T, H, W) float, 0 = no visible
    difference, larger = more visible (1 - the local JOD / 10). Same inputs as `jod`."""
    if out.shape != ref.shape or out.ndim != 4:
        raise ValueError(f"expected two (T, H, W, 3) videos of one shape, got {out.shape} and {ref.shape}")
    test, reference = (torch.from_numpy(np.ascontiguousarray(v)) for v in (out, ref))
    with torch.no_grad():
        _, stats = _metric(display, "raw").predict(test, reference, dim_order="FHWC", frames_per_second=float(fps))
    return stats["heatmap"][0, 0].float().numpy()  # (T, H, W)


def sample(video: np.ndarray, frames: int = SAMPLE_FRAMES, crop: int = SAMPLE_CROP) -> np.ndarray:
    """(T, H, W, 3) -> (min(T, frames), min(H, crop), min(W, crop), 3): the first frames, centre-cropped."""
    t, h, w, _ = video.shape
    ch, cw = min(h, crop), min(w, crop)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(video[:frames, y0: y0 + ch, x0: x0 + cw])


def sample_scope(frames: int, h: int, w: int) -> str:
    """What `sample` keeps of a (frames, h, w) video, in words."""
    return f"a {min(w, SAMPLE_CROP)}x{min(h, SAMPLE_CROP)} centre crop of the first {min(frames, SAMPLE_FRAMES)} frames"


def prefer_share(jod_gap: float) -> float:
    """The share of observers who prefer the better of two videos JOD_GAP apart (0.5 at 0, 0.75 at 1 JOD)."""
    return 0.5 * (1.0 + math.erf(abs(jod_gap) / JOD_PER_SD / math.sqrt(2.0)))


def verdict(jod_drop: float | None) -> dict:
    """A skip cost in JOD as the app and the store say it: {"perceptible", "jod_drop", "prefer_noskip"}
    (the share of observers expected to prefer the no-skip output; 0.5 when the skip run is better)."""
    if jod_drop is None or not math.isfinite(jod_drop):
        return {"perceptible": None, "jod_drop": None, "prefer_noskip": None}
    share = prefer_share(jod_drop) if jod_drop > 0 else 1.0 - prefer_share(jod_drop)
    return {"perceptible": bool(jod_drop > MAX_JOD_DROP), "jod_drop": float(jod_drop), "prefer_noskip": share}


def verdict_text(jod_drop: float | None) -> str:
    """'imperceptible (-0.03 JOD, about 51% would prefer no-skip)' or 'visible (-0.40 JOD, about 61%)'."""
    v = verdict(jod_drop)
    if v["perceptible"] is None:
        return "no JOD verdict (no ground truth)"
    word = "visible" if v["perceptible"] else "imperceptible"
    return f"{word} ({-v['jod_drop']:+.2f} JOD, about {100 * v['prefer_noskip']:.0f}% would prefer no-skip)"
