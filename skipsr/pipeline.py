"""The end-to-end SkipSR pipeline (docs/design.md section 7).

    result = SkipSRPipeline(model, predictor)(lr_frames, tau=4, mask="predicted", steps=1, seed=0, hr=None)

Per chunk of frames: mask (predicted from the LR, oracle from the HR, or none) -> the transformer
samples the x0 residual of KEPT tokens only (noise, model, Euler steps all in token space) ->
compose: bicubic upsample of the LR everywhere, plus the residual on kept tokens. Long inputs
stream through `run_stream` in temporal chunks with overlap and linear blending (memory bounded
by one chunk); large frames are tiled with overlap (`tiling.py`). `upscale_file` adds file decode /
encode keeping fps and audio.

`encode` / `decode` are the latent seam (identity here: pixel-space tokens, docs/design.md section 1).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from skipsr import diffusion, heap, masks, resize, tiling
from skipsr.model import SkipSRNet
from skipsr.fastpath import FastPath
from skipsr.grain import add_grain, check_strength
from skipsr.predictor import MaskPredictor
from skipsr.tokens import TokenSet, add_residual_u8

log = logging.getLogger(__name__)

MASK_SOURCES = ("predicted", "oracle", "none")
STAGES = ("decode", "predictor", "transformer", "fastpath", "compose", "encode")
RESIDUAL_BASES = ("bicubic", "fastpath")  # what the transformer's residual is added to on kept tokens
PRECISIONS = ("fp32", "bf16")


@dataclass
class SkipSRResult:
    video: np.ndarray | None  # (T, H, W, 3) uint8 output (None when streamed to a file)
    skip: torch.Tensor  # (Tg, Hg, Wg) bool: skipped tokens (the mask that was used)
    pred_skip: torch.Tensor | None  # (Tg, Hg, Wg) bool: predicted mask (when a predictor ran)
    oracle_skip: torch.Tensor | None  # (Tg, Hg, Wg) bool: oracle mask (when the HR was given)
    n_tokens: int  # tokens processed (overlap frames count twice: that is the real cost)
    n_kept: int
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage + "total"
    padding_waste: float = 0.0  # share of padded attention rows (ragged windows)
    frames: int = 0  # output frames
    out_w: int = 0  # output width in pixels
    out_h: int = 0  # output height in pixels

    @property
    def skip_ratio(self) -> float:
        return 1.0 - self.n_kept / max(self.n_tokens, 1)


class _Timer:
    def __init__(self, timings: dict[str, float], stage: str):
        self.timings, self.stage = timings, stage

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + time.perf_counter() - self.t0


def token_noise(keep: torch.Tensor, seed: int, origin: tuple[int, int, int], full_width_tokens: int | None,
                cfg) -> torch.Tensor:
    """Gaussian noise for the kept tokens, fixed by (seed, absolute token position).

    keep: (Tg, Hg, Wg) bool of a chunk/tile whose first token sits at `origin` (t, y, x) of the whole
    video's grid. Each token row (t, y) has its own generator stream over the full frame width, so a
    token's noise does not depend on which other tokens are skipped, on temporal chunking or on
    spatial tiling: skip vs no-skip isolates the skip error. Rows without kept tokens cost nothing.
    Returns (N, 3pt, 16, 16) in the row-major order of `keep.nonzero()`.
    """
    tg, hg, wg = keep.shape
    width = full_width_tokens or origin[2] + wg
    per_token = 3 * cfg.pt * cfg.token_px**2
    rows = keep.any(dim=2).nonzero().tolist()  # (t, y) rows holding kept tokens
    g = torch.Generator()
    out = []
    for t, y in rows:
        g.manual_seed((seed * 1_000_003 + (origin[0] + t)) * 100_003 + origin[1] + y)
        row = torch.randn(width, per_token, generator=g)[origin[2] : origin[2] + wg]  # (Wg, per_token)
        out.append(row[keep[t, y]])
    if not out:
        return torch.zeros((0, 3 * cfg.pt, cfg.token_px, cfg.token_px))
    return torch.cat(out).view(-1, 3 * cfg.pt, cfg.token_px, cfg.token_px)


class SkipSRPipeline:
    """The model, its mask predictor and its defaults. `tau` / `steps` left as None in a call take
    the model card's defaults (`default_tau`, `default_steps`; 4.0 and 1 for a model without a card)."""

    def __init__(self, model: SkipSRNet, predictor: MaskPredictor | None = None, device: str | torch.device = "cpu",
                 chunk_frames: int = 16, overlap_frames: int = 2, shift: float = 3.0,
                 tile_lr_px: int = 512, tile_overlap_lr_px: int = 16, card: dict | None = None,
                 predictor_card: dict | None = None, fastpath: FastPath | None = None,
                 residual_base: str = "bicubic", fastpath_card: dict | None = None, oracle: str | None = None,
                 mask_guard: float | None = None, precision: str = "fp32", grain: float | None = None,
                 compiled: bool = False):
        """fastpath: a FastPath network that replaces bicubic on skipped tokens (None: bicubic, the
        paper's choice); residual_base: whether kept tokens add the transformer's residual to bicubic
        (what the models were trained with) or to the fast path's output; oracle: the oracle mask's
        score (masks.py): "paper" (HR detail) or "fastpath" (the HR's error against what a skipped
        token shows: the fast path, or bicubic without one; None: the model card's `oracle`, else the
        predictor card's, else "paper"); mask_guard: the predicted mask's neighbourhood guard
        (`predictor.neighbourhood_guard`; None: the model card's `mask_guard`, else 0); grain: skipped
        tokens get grain at RMS grain x their detail score (grain.py; None: the card's `grain`, else 0); precision:
        "bf16" runs the transformer and the fast path under bfloat16 autocast (README "Speed":
        measured cost and gain),
        "auto" bf16 where the device has it natively (`native_bf16`), else fp32; compiled: the transformer's
        per-token parts and the fast path's per-frame step through torch.compile (`SkipSRNet.compile_rows`,
        `FastPath.compile_frames`: faster per frame, a compile when the first window runs)."""
        if precision not in (*PRECISIONS, "auto"):
            raise ValueError(f"precision must be one of {(*PRECISIONS, 'auto')}, got {precision!r}")
        self.device = torch.device(device)
        self.precision = native_bf16(self.device) if precision == "auto" else precision
        from skipsr import checkpoint

        if residual_base not in RESIDUAL_BASES or (residual_base == "fastpath" and fastpath is None):
            raise ValueError(f"residual_base must be one of {RESIDUAL_BASES} ('fastpath' needs a fast path), "
                             f"got {residual_base!r}")
        self.card, self.predictor_card = card or {}, predictor_card or {}
        # the model card's oracle (what it was trained to skip by), else the predictor card's, else the paper's
        self.oracle = oracle or self.card.get("oracle") or self.predictor_card.get("oracle") or "paper"
        if self.oracle not in masks.ORACLES:
            raise ValueError(f"oracle must be one of {masks.ORACLES}, got {self.oracle!r}")
        self.companion_paths: dict = {}  # set by from_pretrained
        if fastpath is not None and fastpath.cfg.scale != model.cfg.scale:
            raise ValueError(f"the fast path is x{fastpath.cfg.scale}, the model x{model.cfg.scale}")
        self.fastpath = fastpath.to(device).eval() if fastpath is not None else None
        self.residual_base, self.fastpath_card = residual_base, fastpath_card or {}

        self.default_steps = checkpoint.default_steps(self.card)  # 1 without a card
        self.default_tau = checkpoint.default_tau(self.card)  # checkpoint.FALLBACK_TAU without a card
        self.mask_guard = float(self.card.get("mask_guard", 0.0) if mask_guard is None else mask_guard)
        if not 0.0 <= self.mask_guard <= 1.0:
            raise ValueError(f"mask_guard must be in [0, 1], got {self.mask_guard}")
        self.grain = check_strength(self.card.get("grain", 0.0) if grain is None else grain)
        self.grain_motion = self.card.get("grain_motion", "static")  # grain.MOTIONS
        self.model = model.to(device).eval()
        if compiled:
            self.model.compile_rows()
            if self.fastpath is not None:
                self.fastpath.compile_frames()
        self.compiled = compiled
        self.predictor = predictor.to(device).eval() if predictor is not None else None
        if predictor is not None and (predictor.cfg.scale, predictor.cfg.token_px) != (model.cfg.scale, model.cfg.token_px):
            raise ValueError(f"the predictor's token geometry (x{predictor.cfg.scale}, {predictor.cfg.token_px} px) is not "
                             f"the model's (x{model.cfg.scale}, {model.cfg.token_px} px)")
        self.cfg = model.cfg
        self.chunk_frames, self.overlap_frames, self.shift = chunk_frames, overlap_frames, shift
        self.tile_lr_px, self.tile_overlap_lr_px = tile_lr_px, tile_overlap_lr_px
        pt = self.cfg.pt
        if chunk_frames % pt or overlap_frames % pt or not 0 <= overlap_frames < chunk_frames:
            raise ValueError("chunk_frames and overlap_frames must be multiples of pt with overlap < chunk")

    @classmethod
    def from_pretrained(cls, name_or_path: str | None = None, predictor: str | None = None,
                        device: str | torch.device = "cpu", load_predictor: bool = True,
                        fastpath: str | None = None, **kw) -> "SkipSRPipeline":
        """A shipped model by name ("multistep", "distilled", "adversarial"; None: the default) or a
        .safetensors path, with the card's default steps and tau and the companions its card names
        (`companions`: the mask predictor and fast path it was validated with). `predictor`: a path
        or "prior" instead (default: the card's, else the shipped one); `fastpath`: a fast-path
        checkpoint for skipped tokens, or "none" for bicubic (default: the card's, else bicubic).
        FileNotFoundError for a missing path."""
        from skipsr import checkpoint

        model, card = checkpoint.load_default_model(name_or_path)
        predictor = predictor or checkpoint.companion(card, "predictor")
        pred, pcard = checkpoint.load_default_predictor(predictor) if load_predictor else (None, {})
        fastpath = checkpoint.companion(card, "fastpath") if fastpath is None else fastpath
        fp, fcard = checkpoint.load(fastpath) if fastpath and str(fastpath) != checkpoint.NONE else (None, None)
        pipe = cls(model, pred, device=device, card=card, predictor_card=pcard, fastpath=fp, fastpath_card=fcard, **kw)
        pipe.companion_paths = {"predictor": (predictor or checkpoint.DEFAULT_PREDICTOR) if load_predictor else None,
                                "fastpath": fastpath if fp is not None else None}  # what a card's companions name
        return pipe

    def resolve(self, tau: float | None, steps: int | None) -> tuple[float, int]:
        """(tau, steps) with None replaced by the model's defaults."""
        return (self.default_tau if tau is None else float(tau)), (self.default_steps if steps is None else int(steps))

    # -- the latent seam (identity for pixel-space tokens) --------------------------------------
    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        return lr

    def decode(self, hr: torch.Tensor) -> torch.Tensor:
        return hr

    # -- one chunk --------------------------------------------------------------------------------
    def skipped_view(self, lr_u8: torch.Tensor, bicubic: torch.Tensor | None = None) -> torch.Tensor:
        """What a skipped token shows: (T, h, w, 3) uint8 LR -> (T, H, W, 3) uint8, the fast path's output
        (bicubic without one). `bicubic`: the LR's 8-bit bicubic upsample when the caller has it."""
        bicubic = resize.up_u8(lr_u8, self.cfg.scale) if bicubic is None else bicubic
        if self.fastpath is None:
            return bicubic
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return self.fastpath.upscale_u8(lr_u8, bicubic)

    def oracle_scores(self, hr_u8: torch.Tensor, lr_u8: torch.Tensor) -> torch.Tensor:
        """The oracle's detail scores (Tg, Hg, Wg) of an HR chunk (T, H, W, 3) uint8 (its LR: lr_u8),
        computed a token's `pt` frames at a time: float temporaries of one frame group, not the chunk's."""
        cfg = self.cfg
        scores = []
        for i in range(0, hr_u8.shape[0], cfg.pt):
            hr = hr_u8[i : i + cfg.pt].permute(0, 3, 1, 2).float().div_(255.0)  # (pt, 3, H, W)
            if self.oracle == "paper":
                scores.append(masks.detail_scores(hr, cfg.scale, cfg.token_px, cfg.pt))
            else:
                approx = self.skipped_view(lr_u8[i : i + cfg.pt]).permute(0, 3, 1, 2).float() / 255.0  # (pt, 3, H, W)
                scores.append(masks.error_scores(hr, approx, cfg.token_px, cfg.pt))
        return torch.cat(scores)  # (Tg, Hg, Wg)

    def _skip_mask(self, lr: torch.Tensor, lr_u8: torch.Tensor, hr_u8: torch.Tensor | None, tau: float, mask: str,
                   timings) -> tuple:
        """Returns (skip used, predicted skip or None, oracle skip or None), each (Tg, Hg, Wg) bool, and
        the detail scores behind the mask used (Tg, Hg, Wg) float (None for mask="none")."""
        cfg = self.cfg
        grid = masks.token_grid(lr.shape[0], lr.shape[2] * cfg.scale, lr.shape[3] * cfg.scale, cfg.token_px, cfg.pt)
        pred = oracle = d_pred = d_oracle = None
        if mask == "predicted":
            if self.predictor is None:
                raise ValueError("mask='predicted' needs a mask predictor; load one or use mask='oracle'/'none'")
            with _Timer(timings, "predictor"), torch.no_grad():
                pred, d_pred = self.predictor.skip_and_detail(lr, tau, self.mask_guard)
        if hr_u8 is not None:  # evaluation only (it reads the HR): timed apart and left out of the total
            with _Timer(timings, "oracle"):
                d_oracle = self.oracle_scores(hr_u8, lr_u8)
                oracle = masks.oracle_mask(d_oracle, tau)
        if mask == "oracle" and oracle is None:
            raise ValueError("mask='oracle' needs the HR video (hr=...)")
        used = {"predicted": pred, "oracle": oracle, "none": torch.zeros(grid, dtype=torch.bool)}[mask]
        return used, pred, oracle, {"predicted": d_pred, "oracle": d_oracle, "none": None}[mask]

    @torch.no_grad()
    def _run_chunk(self, lr_frames: np.ndarray, hr_frames: np.ndarray | None, tau: float, mask: str,
                   steps: int, seed: int, timings: dict, origin: tuple[int, int, int] = (0, 0, 0),
                   full_width_tokens: int | None = None) -> tuple[torch.Tensor, tuple, int, int, float]:
        """LR (T, h, w, 3) uint8 -> HR (T, H, W, 3) uint8 tensor, masks, token counts, padding waste.

        origin: (t, y, x) of this chunk's first token in the whole video's token grid (fixes its noise).
        """
        cfg, dev = self.cfg, self.device
        t, h, w, _ = lr_frames.shape
        H, W = h * cfg.scale, w * cfg.scale
        with _Timer(timings, "decode"):
            lr_u8 = torch.from_numpy(resize.pad_frames_u8(lr_frames, cfg.lr_patch, cfg.pt)).to(dev)  # (T', h', w', 3)
            lr = self.encode(lr_u8.permute(0, 3, 1, 2).float().div_(255.0))  # (T', 3, h', w')
            hr_u8 = None  # (T', H', W', 3) uint8 when given
            if hr_frames is not None:
                if hr_frames.shape[1] < H or hr_frames.shape[2] < W:
                    raise ValueError(f"HR frames {hr_frames.shape[2]}x{hr_frames.shape[1]} are smaller than "
                                     f"{cfg.scale} x the LR ({w}x{h})")
                hr_u8 = torch.from_numpy(resize.pad_frames_u8(hr_frames[:, :H, :W], cfg.token_px, cfg.pt)).to(dev)
        skip, pred, oracle, detail = self._skip_mask(lr, lr_u8, hr_u8, tau, mask, timings)
        with _Timer(timings, "transformer"):
            tokens = TokenSet.from_keep(~skip)
            prep = self.model.prepare(tokens)
            x = token_noise(~skip.cpu(), seed, origin, full_width_tokens, cfg).to(dev)  # (N, 3pt, 16, 16)
            lr_b = lr[None]  # (1, T', 3, h', w')

            def denoise(xt: torch.Tensor, t_now: float) -> torch.Tensor:
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                    return self.model(lr_b, xt, torch.full((1,), t_now, device=dev), prep).float()

            residual = diffusion.sample_euler(denoise, x, diffusion.schedule(steps, self.shift)) if tokens.n else x
        with _Timer(timings, "compose"):
            bicubic = resize.up_u8(lr_u8, cfg.scale)[None]  # (1, T', H', W', 3) uint8
        canvas = bicubic  # skipped tokens: bicubic, or the fast path's restoration
        if self.fastpath is not None and tokens.n < tokens.n_total:  # only when some token is skipped
            with _Timer(timings, "fastpath"):
                canvas = self.skipped_view(lr_u8, bicubic[0])[None]  # (1, T', H', W', 3) uint8
        with _Timer(timings, "compose"):
            if tokens.n:  # kept tokens: base + residual, in 8 bit
                source = canvas if self.residual_base == "fastpath" else bicubic
                add_residual_u8(canvas, source, residual, tokens, cfg.token_px, cfg.pt)  # canvas[kept] = source + res
        if self.grain > 0 and tokens.n < tokens.n_total:  # skipped tokens get the grain they lack (grain.py)
            with _Timer(timings, "fastpath"):
                amp = self.grain * detail.to(dev) * skip.to(dev)  # (Tg, Hg, Wg) grain RMS, 0 on kept tokens
                add_grain(canvas[0], amp, cfg.token_px, cfg.pt, origin, cfg.scale, seed, motion=self.grain_motion)
        with _Timer(timings, "compose"):
            out = self.decode(canvas[0, :t, :H, :W])  # (T, H, W, 3) uint8
        waste = float(np.mean([p.padding_waste for p in prep["plans"]])) if tokens.n else 0.0
        return out, (skip, pred, oracle), tokens.n_total, tokens.n, waste

    def _run_tiled(self, lr_frames: np.ndarray, hr_frames: np.ndarray | None, tau, mask, steps, seed, timings,
                   t_token0: int = 0):
        """`_run_chunk` over overlapping spatial tiles when the LR frame exceeds `tile_lr_px`."""
        cfg = self.cfg
        t, h, w, _ = lr_frames.shape
        s, p = cfg.scale, cfg.lr_patch
        width_tokens = -(-w // p)
        if max(h, w) <= self.tile_lr_px:
            return self._run_chunk(lr_frames, hr_frames, tau, mask, steps, seed, timings, (t_token0, 0, 0), width_tokens)
        boxes = tiling.tiles(h, w, self.tile_lr_px, self.tile_overlap_lr_px, p)
        acc = torch.zeros((t, h * s, w * s, 3))
        wsum = torch.zeros((h * s, w * s, 1))
        grid = masks.token_grid(t, h * s, w * s, cfg.token_px, cfg.pt)
        full = [None, None, None]  # skip, pred, oracle on the full grid
        n_tok = n_kept = 0
        wastes = []
        for box in boxes:
            y0, y1, x0, x1 = box
            hr_tile = hr_frames[:, y0 * s : y1 * s, x0 * s : x1 * s] if hr_frames is not None else None
            out, tile_masks, nt, nk, waste = self._run_chunk(lr_frames[:, y0:y1, x0:x1], hr_tile, tau, mask, steps,
                                                             seed, timings, (t_token0, y0 // p, x0 // p), width_tokens)
            with _Timer(timings, "compose"):
                wgt = tiling.blend_weights(box, (h, w), self.tile_overlap_lr_px * s // 2, s)[..., None]
                acc[:, y0 * s : y1 * s, x0 * s : x1 * s] += out.float() * wgt
                wsum[y0 * s : y1 * s, x0 * s : x1 * s] += wgt
            for i, m in enumerate(tile_masks):
                if m is not None:
                    full[i] = full[i] if full[i] is not None else torch.zeros(grid, dtype=torch.bool)
                    full[i][:, y0 // p : y0 // p + m.shape[1], x0 // p : x0 // p + m.shape[2]] = m
            n_tok, n_kept = n_tok + nt, n_kept + nk
            wastes.append(waste)
        with _Timer(timings, "compose"):
            out = (acc / wsum).round_().clamp_(0, 255).to(torch.uint8)
        return out, tuple(full), n_tok, n_kept, float(np.mean(wastes))

    # -- streaming over chunks --------------------------------------------------------------------
    def run_stream(self, lr_chunks: Iterable[np.ndarray], hr_chunks: Iterable[np.ndarray] | None = None,
                   tau: float | None = None, mask: str = "predicted", steps: int | None = None, seed: int = 0,
                   stats: dict | None = None, progress: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
        """Stream LR frames (any chunking) -> HR uint8 frames (n, H, W, 3), in order.

        Windows of `chunk_frames` frames overlap by `overlap_frames`, blended linearly. Memory holds
        one window. `stats` (a dict) receives masks, counts and timings as they accrue.
        """
        tau, steps = self.resolve(tau, steps)
        if mask not in MASK_SOURCES:
            raise ValueError(f"mask must be one of {MASK_SOURCES}, got {mask!r}")
        if tau < 0:
            raise ValueError(f"tau must be >= 0 (8-bit RMSE units), got {tau}")
        stats = stats if stats is not None else {}
        stats.update(timings={}, skip=[], pred=[], oracle=[], n_tokens=0, n_kept=0, waste=[])
        tc, ov, pt = self.chunk_frames, self.overlap_frames, self.cfg.pt
        hr_iter = iter(hr_chunks) if hr_chunks is not None else None
        lr_buf: list[np.ndarray] = []
        hr_buf: list[np.ndarray] = []
        tail: torch.Tensor | None = None  # outputs of the previous window's last `ov` frames
        first = True
        frame0 = 0  # index of lr_buf[0] in the whole video

        def process(n_frames: int) -> Iterator[np.ndarray]:
            nonlocal tail, first, lr_buf, hr_buf, frame0
            hr_win = np.stack(hr_buf[:n_frames]) if hr_iter is not None else None
            out, (skip, pred, oracle), n_tok, n_kept, waste = self._run_tiled(
                np.stack(lr_buf[:n_frames]), hr_win, tau, mask, steps, seed, stats["timings"], frame0 // pt)
            own = 0 if first else ov // pt  # token rows this window owns (the rest overlap the previous)
            for key, m in (("skip", skip), ("pred", pred), ("oracle", oracle)):
                if m is not None:
                    stats[key].append(m[own:])
            stats["n_tokens"] += n_tok
            stats["n_kept"] += n_kept
            stats["waste"].append(waste)
            with _Timer(stats["timings"], "encode"):
                if tail is not None:
                    crossfade(tail, out)
                keep_tail = ov if n_frames == tc else 0
                done = n_frames - keep_tail
                emitted = out[:done].cpu().numpy()
                tail = out[done:] if keep_tail else None
            lr_buf, hr_buf = lr_buf[done:], hr_buf[done:]
            frame0 += done
            del out, skip, pred, oracle
            heap.trim_heap()  # the window's freed heap pages go back to the system (lowers, not stops, growth with length)
            first = False
            if progress is not None:
                progress(done)
            yield emitted

        for chunk in lr_chunks:
            lr_buf.extend(chunk)
            if hr_iter is not None:
                while len(hr_buf) < len(lr_buf):
                    nxt = next(hr_iter, None)
                    if nxt is None:
                        raise ValueError("the HR video has fewer frames than the LR video")
                    hr_buf.extend(nxt)
            while len(lr_buf) >= tc:
                yield from process(tc)
        if len(lr_buf) > (ov if tail is not None else 0):
            yield from process(len(lr_buf))
        elif tail is not None:
            yield tail.cpu().numpy()

    def run_window(self, lr_frames: np.ndarray, start: int, tau: float | None = None, mask: str = "predicted",
                   steps: int | None = None, seed: int = 0) -> tuple[np.ndarray, int, int, dict]:
        """One temporal window as `run_stream` computes it (frames from `start` of the video: the
        noise is seeded by position): (HR uint8 frames, n_tokens, n_kept, timings). The Ray engine's
        unit of work."""
        tau, steps = self.resolve(tau, steps)
        timings: dict[str, float] = {}
        out, _, n_tok, n_kept, _ = self._run_tiled(lr_frames, None, tau, mask, steps, seed, timings,
                                                   start // self.cfg.pt)
        return out.cpu().numpy(), n_tok, n_kept, timings

    def __call__(self, video: np.ndarray, tau: float | None = None, mask: str = "predicted", steps: int | None = None,
                 seed: int = 0, hr: np.ndarray | None = None) -> SkipSRResult:
        """Upscale an in-memory LR video (T, h, w, 3) uint8. `hr` (T, H, W, 3) enables the oracle mask."""
        if not isinstance(video, np.ndarray) or video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
            raise ValueError(f"expected uint8 LR frames (T, h, w, 3), got {getattr(video, 'dtype', type(video))} "
                             f"{getattr(video, 'shape', '')}")
        if video.shape[0] == 0:
            raise ValueError("the video has 0 frames")
        stats: dict = {}
        t0 = time.perf_counter()
        frames = list(self.run_stream([video], [hr] if hr is not None else None, tau, mask, steps, seed, stats))
        total = time.perf_counter() - t0 - stats["timings"].get("oracle", 0.0)
        res = self._result(np.concatenate(frames), stats, total)
        res.frames, res.out_h, res.out_w = res.video.shape[:3]
        return res

    @staticmethod
    def _result(video: np.ndarray | None, stats: dict, total_s: float) -> SkipSRResult:
        cat = lambda key: torch.cat(stats[key]) if stats[key] else None  # noqa: E731
        timings = {k: stats["timings"].get(k, 0.0) for k in STAGES}
        timings["total"] = total_s  # wall clock less the oracle (evaluation only: it reads the HR)
        timings["oracle"] = stats["timings"].get("oracle", 0.0)
        return SkipSRResult(video=video, skip=cat("skip"), pred_skip=cat("pred"), oracle_skip=cat("oracle"),
                            n_tokens=stats["n_tokens"], n_kept=stats["n_kept"], timings=timings,
                            padding_waste=float(np.mean(stats["waste"])) if stats["waste"] else 0.0)


def native_bf16(device: torch.device) -> str:
    """"bf16" where the device computes bfloat16 natively (a CPU with AVX512-BF16 or AMX, a CUDA
    GPU that supports it), else "fp32": what precision "auto" picks."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return "fp32"
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "fp32"


def crossfade(tail: torch.Tensor, out: torch.Tensor) -> None:
    """Linear cross-fade of a window's first k frames (in place) with the previous window's last k
    (`tail`), both uint8 (k / n, H, W, 3): the overlap of temporal windows."""
    k = tail.shape[0]
    wgt = torch.arange(1, k + 1, dtype=torch.float32).view(k, 1, 1, 1) / (k + 1)
    out[:k] = ((1 - wgt) * tail.float() + wgt * out[:k].float()).round_().to(torch.uint8)


def windows(total: int, chunk_frames: int, overlap_frames: int) -> list[tuple[int, int]]:
    """(first frame, frames) of the temporal windows `run_stream` processes a `total`-frame video in:
    full windows every chunk - overlap frames, then the rest when it holds more than the overlap."""
    out, start = [], 0
    while start + chunk_frames <= total:
        out.append((start, chunk_frames))
        start += chunk_frames - overlap_frames
    rest = total - start
    if rest > (overlap_frames if out else 0):
        out.append((start, rest))
    return out
