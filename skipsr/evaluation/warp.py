"""Flow warping error: temporal consistency as the video literature measures it.

E_warp (Lai et al. 2018, "Learning Blind Video Temporal Consistency"): for each pair of
consecutive frames, optical flow t -> t+1 is estimated on the GROUND TRUTH; output frame t+1 is
warped back to t along it; the error is the mean squared RGB difference (values in [0, 1]) between
output frame t and the warped frame, over the pixels that are visible in both frames (not
occluded, not flowing out of the frame); averaged over frame pairs. Reported x 1e3 (as "E*warp
(x1e-3)" in VSR papers). A perfectly consistent output has the error that the ground truth itself
has under its own flow: compare with the `warp_error` of the ground truth (or bicubic), not with 0.

Flow: OpenCV's DIS (Kroeger et al. 2016), weight-free, on the luma of the ground truth. Occlusion:
the forward-backward consistency check of Sundaram et al. 2010.
"""

from __future__ import annotations

import cv2
import numpy as np


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def optical_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow from frame a to frame b (uint8 (H, W, 3)): (H, W, 2) float32 (dx, dy) in pixels,
    so that a[y, x] ~ b[y + dy, x + dx]."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_gray(a), _gray(b), None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: out[y, x] = image[y + dy, x + dx] (bilinear, border replicated). (H, W, C) float32."""
    h, w = flow.shape[:2]
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image.astype(np.float32), xx + flow[..., 0], yy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def visible_mask(fwd: np.ndarray, bwd: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels of frame t whose flow t -> t+1 lands inside frame t+1 and agrees with the
    flow back (|f + b(x + f)|^2 < 0.01 (|f|^2 + |b(x + f)|^2) + 0.5, Sundaram et al. 2010)."""
    h, w = fwd.shape[:2]
    bwd_at = warp(bwd, fwd)  # (H, W, 2): backward flow read where the forward flow lands
    err = ((fwd + bwd_at) ** 2).sum(-1)
    bound = 0.01 * ((fwd**2).sum(-1) + (bwd_at**2).sum(-1)) + 0.5
    xx, yy = np.meshgrid(np.arange(w), np.arange(h))
    x1, y1 = xx + fwd[..., 0], yy + fwd[..., 1]
    inside = (x1 >= 0) & (x1 <= w - 1) & (y1 >= 0) & (y1 <= h - 1)
    return (err < bound) & inside


def reference_flows(ref: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per consecutive pair of the ground truth (T, H, W, 3): (flow t -> t+1 (H, W, 2), visible (H, W))."""
    out = []
    for t in range(len(ref) - 1):
        fwd, bwd = optical_flow(ref[t], ref[t + 1]), optical_flow(ref[t + 1], ref[t])
        out.append((fwd, visible_mask(fwd, bwd)))
    return out


def warp_error(out: np.ndarray, ref: np.ndarray, flows: list | None = None) -> float | None:
    """E_warp x 1e3 of `out` with flow from `ref` (both uint8 (T, H, W, 3)). None for < 2 frames.
    `flows`: `reference_flows(ref)` when already computed (scoring several outputs of one clip)."""
    if out.shape != ref.shape:
        raise ValueError(f"videos differ in shape: {out.shape} vs {ref.shape}")
    if len(out) < 2:
        return None
    errors = []
    for t, (fwd, visible) in enumerate(flows if flows is not None else reference_flows(ref)):
        if not visible.any():
            continue
        warped = warp(out[t + 1], fwd) / 255.0  # (H, W, 3): frame t+1 brought back to t
        sq = ((out[t].astype(np.float32) / 255.0 - warped) ** 2).sum(-1)  # (H, W)
        errors.append(float(sq[visible].mean()))
    return 1e3 * float(np.mean(errors)) if errors else None
