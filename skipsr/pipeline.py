"""The end-to-end SkipSR pipeline (docs/design.md section 7).

    pipe = SkipSRPipeline.from_pretrained("adversarial")                 # model, predictor, fast path, cards
    result = pipe(lr_frames, tau=4, mask="predicted", steps=1, seed=0, hr=None)   # a frozen SkipSRResult

Per window of frames: mask (predicted from the LR, oracle from the HR, or none) -> the transformer
samples the x0 residual of KEPT tokens only (noise, model, Euler steps all in token space) ->
compose: what a skipped token shows (the fast path's upsample, or bicubic) everywhere, and on kept
tokens the 8-bit bicubic upsample plus the residual. Long inputs stream through `stream` in
temporal windows with overlap and linear blending (memory bounded by one window; skipsr/stream.py);
large frames are tiled with overlap (`tiling.py`). `streaming.upscale_file` adds file decode /
encode keeping fps and audio. How it runs (precision, windows, tiles, grain) is a frozen
`PipelineConfig`; what its checkpoints' cards say is `Cards` (skipsr/config.py).

`encode` / `decode` are the latent seam (identity here: pixel-space tokens, docs/design.md section 1).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable

import numpy as np
import torch

from skipsr import diffusion, masks, resize, tiling
from skipsr.config import Card, Cards, ModelCard, PipelineConfig
from skipsr.fastpath import FastPath
from skipsr.grain import add_grain
from skipsr.model import SkipSRNet
from skipsr.predictor import MaskPredictor
from skipsr.stream import Masks, SkipSRResult, Stream, Timer, WindowOut
from skipsr.tokens import TokenSet, add_residual_u8

log = logging.getLogger(__name__)

MASK_SOURCES = ("predicted", "oracle", "none")


class SkipSRPipeline:
    """The model, its mask predictor and fast path, how they run, and the cards' defaults. `tau` /
    `steps` left as None in a call take the model card's (`default_tau`, `default_steps`)."""

    def __init__(self, model: SkipSRNet, predictor: MaskPredictor | None = None, fastpath: FastPath | None = None,
                 config: PipelineConfig = PipelineConfig(), cards: Cards = Cards()):
        """fastpath: a network that replaces bicubic on skipped tokens (None: bicubic, the paper's choice)."""
        self.config, self.cards, self.cfg = config, cards, model.cfg
        self.device = torch.device(config.device)
        self.precision = config.resolved_precision()
        if config.chunk_frames % self.cfg.pt or config.overlap_frames % self.cfg.pt:
            raise ValueError("chunk_frames and overlap_frames must be multiples of pt with overlap < chunk")
        if fastpath is not None and fastpath.cfg.scale != model.cfg.scale:
            raise ValueError(f"the fast path is x{fastpath.cfg.scale}, the model x{model.cfg.scale}")
        if predictor is not None and (predictor.cfg.scale, predictor.cfg.token_px) != (model.cfg.scale, model.cfg.token_px):
            raise ValueError(f"the predictor's token geometry (x{predictor.cfg.scale}, {predictor.cfg.token_px} px) is not "
                             f"the model's (x{model.cfg.scale}, {model.cfg.token_px} px)")
        self.model = model.to(self.device).eval()
        self.predictor = predictor.to(self.device).eval() if predictor is not None else None
        self.fastpath = fastpath.to(self.device).eval() if fastpath is not None else None
        if config.compile:  # once per network: a pipeline made by `with_config` shares them
            if not getattr(self.model, "rows_compiled", False):
                self.model.compile_rows()
            if self.fastpath is not None and not getattr(self.fastpath, "frames_compiled", False):
                self.fastpath.compile_frames()
        card = cards.model
        self.grain = card.grain if config.grain is None else config.grain
        self.grain_motion = card.grain_motion if config.grain_motion is None else config.grain_motion
        self.default_steps, self.default_tau = card.default_steps, card.default_tau

    @classmethod
    def from_pretrained(cls, name_or_path: str | None = None, predictor: str | None = None,
                        fastpath: str | None = None, load_predictor: bool = True,
                        config: PipelineConfig | None = None, **config_fields) -> SkipSRPipeline:
        """A shipped model by name ("multistep", "distilled", "adversarial"; None: the default) or a
        .safetensors path, with its card's defaults and the companions its card names (the mask
        predictor and fast path it was validated with). `predictor`: a path or "prior" instead;
        `fastpath`: a fast-path checkpoint, or "none" for bicubic on skipped tokens. How it runs:
        `config`, or PipelineConfig's fields as keywords. FileNotFoundError for a missing path."""
        from skipsr import checkpoint

        config = (config or PipelineConfig()).replace(**config_fields)
        model, card = checkpoint.load_default_model(name_or_path)
        predictor = predictor or checkpoint.companion(card, "predictor")
        pred, pcard = checkpoint.load_default_predictor(predictor) if load_predictor else (None, {})
        fastpath = checkpoint.companion(card, "fastpath") if fastpath is None else fastpath
        fp, fcard = checkpoint.load(fastpath) if fastpath and str(fastpath) != checkpoint.NONE else (None, {})
        cards = Cards(ModelCard(card), Card(pcard), Card(fcard),
                      companions={"predictor": (predictor or checkpoint.DEFAULT_PREDICTOR) if load_predictor else None,
                                  "fastpath": fastpath if fp is not None else None})
        return cls(model, pred, fp, config, cards)

    def with_config(self, **changes) -> SkipSRPipeline:
        """The same networks and cards under a changed config (windows, grain, precision...)."""
        return SkipSRPipeline(self.model, self.predictor, self.fastpath, self.config.replace(**changes), self.cards)

    def resolve(self, tau: float | None, steps: int | None) -> tuple[float, int]:
        """(tau, steps) with None replaced by the model's defaults."""
        return (self.default_tau if tau is None else float(tau)), (self.default_steps if steps is None else int(steps))

    # -- the latent seam (identity for pixel-space tokens) --------------------------------------
    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        return lr

    def decode(self, hr: torch.Tensor) -> torch.Tensor:
        return hr

    # -- one window -------------------------------------------------------------------------------
    def skipped_view(self, lr_u8: torch.Tensor, bicubic: torch.Tensor | None = None) -> torch.Tensor:
        """What a skipped token shows: (T, h, w, 3) uint8 LR -> (T, H, W, 3) uint8, the fast path's output
        (bicubic without one). `bicubic`: the LR's 8-bit bicubic upsample when the caller has it."""
        bicubic = resize.up_u8(lr_u8, self.cfg.scale) if bicubic is None else bicubic
        if self.fastpath is None:
            return bicubic
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return self.fastpath.upscale_u8(lr_u8, bicubic)

    def oracle_scores(self, hr_u8: torch.Tensor) -> torch.Tensor:
        """The oracle's detail scores (Tg, Hg, Wg) of an HR window (T, H, W, 3) uint8, computed a token's
        `pt` frames at a time: float temporaries of one frame group, not the window's."""
        cfg = self.cfg
        scores = []
        for i in range(0, hr_u8.shape[0], cfg.pt):
            hr = hr_u8[i : i + cfg.pt].permute(0, 3, 1, 2).float().div_(255.0)  # (pt, 3, H, W)
            scores.append(masks.detail_scores(hr, cfg.scale, cfg.token_px, cfg.pt))
        return torch.cat(scores)  # (Tg, Hg, Wg)

    def _skip_mask(self, lr: torch.Tensor, hr_u8: torch.Tensor | None, tau: float, mask: str,
                   timings: dict) -> tuple[Masks, torch.Tensor | None]:
        """The masks (Tg, Hg, Wg) bool and the detail scores behind the one used (None for mask="none")."""
        cfg = self.cfg
        grid = masks.token_grid(lr.shape[0], lr.shape[2] * cfg.scale, lr.shape[3] * cfg.scale, cfg.token_px, cfg.pt)
        pred = oracle = d_pred = d_oracle = None
        if mask == "predicted":
            if self.predictor is None:
                raise ValueError("mask='predicted' needs a mask predictor; load one or use mask='oracle'/'none'")
            with Timer(timings, "predictor"), torch.no_grad():
                pred, d_pred = self.predictor.skip_and_detail(lr, tau)
        if hr_u8 is not None:  # evaluation only (it reads the HR): timed apart and left out of the total
            with Timer(timings, "oracle"):
                d_oracle = self.oracle_scores(hr_u8)
                oracle = masks.oracle_mask(d_oracle, tau)
        if mask == "oracle" and oracle is None:
            raise ValueError("mask='oracle' needs the HR video (hr=...)")
        used = {"predicted": pred, "oracle": oracle, "none": torch.zeros(grid, dtype=torch.bool)}[mask]
        return Masks(used, pred, oracle), {"predicted": d_pred, "oracle": d_oracle, "none": None}[mask]

    @torch.no_grad()
    def _run_chunk(self, lr_frames: np.ndarray, hr_frames: np.ndarray | None, tau: float, mask: str,
                   steps: int, seed: int, timings: dict, origin: tuple[int, int, int] = (0, 0, 0),
                   full_width_tokens: int | None = None) -> WindowOut:
        """LR (T, h, w, 3) uint8 -> HR (T, H, W, 3) uint8 tensor with its masks and token counts.

        origin: (t, y, x) of this window's first token in the whole video's token grid (fixes its noise).
        """
        cfg, dev = self.cfg, self.device
        t, h, w, _ = lr_frames.shape
        H, W = h * cfg.scale, w * cfg.scale
        with Timer(timings, "decode"):
            lr_u8 = torch.from_numpy(resize.pad_frames_u8(lr_frames, cfg.lr_patch, cfg.pt)).to(dev)  # (T', h', w', 3)
            lr = self.encode(lr_u8.permute(0, 3, 1, 2).float().div_(255.0))  # (T', 3, h', w')
            hr_u8 = None  # (T', H', W', 3) uint8 when given
            if hr_frames is not None:
                if hr_frames.shape[1] < H or hr_frames.shape[2] < W:
                    raise ValueError(f"HR frames {hr_frames.shape[2]}x{hr_frames.shape[1]} are smaller than "
                                     f"{cfg.scale} x the LR ({w}x{h})")
                hr_u8 = torch.from_numpy(resize.pad_frames_u8(hr_frames[:, :H, :W], cfg.token_px, cfg.pt)).to(dev)
        window_masks, detail = self._skip_mask(lr, hr_u8, tau, mask, timings)
        skip = window_masks.skip
        with Timer(timings, "transformer"):
            tokens = TokenSet.from_keep(~skip)
            prep = self.model.prepare(tokens)
            x = diffusion.token_noise(~skip.cpu(), seed, origin, full_width_tokens, cfg).to(dev)  # (N, 3pt, 16, 16)
            lr_b = lr[None]  # (1, T', 3, h', w')

            def denoise(xt: torch.Tensor, t_now: float) -> torch.Tensor:
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                    return self.model(lr_b, xt, torch.full((1,), t_now, device=dev), prep).float()

            schedule = diffusion.schedule(steps, self.config.shift)
            residual = diffusion.sample_euler(denoise, x, schedule) if tokens.n else x
        with Timer(timings, "compose"):
            bicubic = resize.up_u8(lr_u8, cfg.scale)[None]  # (1, T', H', W', 3) uint8
        canvas = bicubic  # skipped tokens: bicubic, or the fast path's restoration
        if self.fastpath is not None and tokens.n < tokens.n_total:  # only when some token is skipped
            with Timer(timings, "fastpath"):
                canvas = self.skipped_view(lr_u8, bicubic[0])[None]  # (1, T', H', W', 3) uint8
        with Timer(timings, "compose"):
            if tokens.n:  # kept tokens: bicubic + residual, in 8 bit
                add_residual_u8(canvas, bicubic, residual, tokens, cfg.token_px, cfg.pt)  # canvas[kept] = bicubic + res
        if self.grain > 0 and tokens.n < tokens.n_total:  # skipped tokens get the grain they lack (grain.py)
            with Timer(timings, "fastpath"):
                amp = self.grain * detail.to(dev) * skip.to(dev)  # (Tg, Hg, Wg) grain RMS, 0 on kept tokens
                add_grain(canvas[0], amp, cfg.token_px, cfg.pt, origin, cfg.scale, seed, motion=self.grain_motion)
        with Timer(timings, "compose"):
            out = self.decode(canvas[0, :t, :H, :W])  # (T, H, W, 3) uint8
        waste = float(np.mean([p.padding_waste for p in prep["plans"]])) if tokens.n else 0.0
        return WindowOut(out, window_masks, tokens.n_total, tokens.n, waste)

    def _run_tiled(self, lr_frames: np.ndarray, hr_frames: np.ndarray | None, tau, mask, steps, seed, timings,
                   t_token0: int = 0) -> WindowOut:
        """`_run_chunk` over overlapping spatial tiles when the LR frame exceeds `tile_lr_px`."""
        cfg, conf = self.cfg, self.config
        t, h, w, _ = lr_frames.shape
        s, p = cfg.scale, cfg.lr_patch
        width_tokens = -(-w // p)
        if max(h, w) <= conf.tile_lr_px:
            return self._run_chunk(lr_frames, hr_frames, tau, mask, steps, seed, timings, (t_token0, 0, 0), width_tokens)
        boxes = tiling.tiles(h, w, conf.tile_lr_px, conf.tile_overlap_lr_px, p)
        acc = torch.zeros((t, h * s, w * s, 3))
        wsum = torch.zeros((h * s, w * s, 1))
        grid = masks.token_grid(t, h * s, w * s, cfg.token_px, cfg.pt)
        full: dict[str, torch.Tensor | None] = {"skip": None, "pred": None, "oracle": None}  # on the full grid
        n_tok = n_kept = 0
        wastes = []
        for box in boxes:
            y0, y1, x0, x1 = box
            hr_tile = hr_frames[:, y0 * s : y1 * s, x0 * s : x1 * s] if hr_frames is not None else None
            tile = self._run_chunk(lr_frames[:, y0:y1, x0:x1], hr_tile, tau, mask, steps, seed, timings,
                                   (t_token0, y0 // p, x0 // p), width_tokens)
            with Timer(timings, "compose"):
                wgt = tiling.blend_weights(box, (h, w), conf.tile_overlap_lr_px * s // 2, s)[..., None]
                acc[:, y0 * s : y1 * s, x0 * s : x1 * s] += tile.video.float() * wgt
                wsum[y0 * s : y1 * s, x0 * s : x1 * s] += wgt
            for key in full:
                m = getattr(tile.masks, key)
                if m is not None:
                    full[key] = full[key] if full[key] is not None else torch.zeros(grid, dtype=torch.bool)
                    full[key][:, y0 // p : y0 // p + m.shape[1], x0 // p : x0 // p + m.shape[2]] = m
            n_tok, n_kept = n_tok + tile.n_tokens, n_kept + tile.n_kept
            wastes.append(tile.padding_waste)
        with Timer(timings, "compose"):
            out = (acc / wsum).round_().clamp_(0, 255).to(torch.uint8)
        return WindowOut(out, Masks(**full), n_tok, n_kept, float(np.mean(wastes)))

    # -- whole videos -----------------------------------------------------------------------------
    def stream(self, lr_chunks: Iterable[np.ndarray], hr_chunks: Iterable[np.ndarray] | None = None,
               tau: float | None = None, mask: str = "predicted", steps: int | None = None, seed: int = 0,
               progress: Callable[[int], None] | None = None, timings: dict | None = None) -> Stream:
        """LR frames (any chunking) -> a `Stream` of HR uint8 frames (n, H, W, 3), in order; its
        `result()` after the last. `timings`: a dict the stream adds its stage times to (the caller's own)."""
        tau, steps = self.resolve(tau, steps)
        if mask not in MASK_SOURCES:
            raise ValueError(f"mask must be one of {MASK_SOURCES}, got {mask!r}")
        if tau < 0:
            raise ValueError(f"tau must be >= 0 (8-bit RMSE units), got {tau}")
        return Stream(self, lr_chunks, hr_chunks, tau, mask, steps, seed, progress, timings)

    def run_window(self, lr_frames: np.ndarray, start: int, tau: float | None = None, mask: str = "predicted",
                   steps: int | None = None, seed: int = 0) -> tuple[WindowOut, dict]:
        """One temporal window as a `Stream` computes it (frames from `start` of the video: the noise is
        seeded by position) and its stage timings. The Ray engine's unit of work."""
        tau, steps = self.resolve(tau, steps)
        timings: dict[str, float] = {}
        return self._run_tiled(lr_frames, None, tau, mask, steps, seed, timings, start // self.cfg.pt), timings

    def __call__(self, video: np.ndarray, tau: float | None = None, mask: str = "predicted", steps: int | None = None,
                 seed: int = 0, hr: np.ndarray | None = None) -> SkipSRResult:
        """Upscale an in-memory LR video (T, h, w, 3) uint8. `hr` (T, H, W, 3) enables the oracle mask."""
        if not isinstance(video, np.ndarray) or video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
            raise ValueError(f"expected uint8 LR frames (T, h, w, 3), got {getattr(video, 'dtype', type(video))} "
                             f"{getattr(video, 'shape', '')}")
        if video.shape[0] == 0:
            raise ValueError("the video has 0 frames")
        t0 = time.perf_counter()
        stream = self.stream([video], [hr] if hr is not None else None, tau, mask, steps, seed)
        frames = np.concatenate(list(stream))
        return stream.result(frames, total_s=time.perf_counter() - t0)
