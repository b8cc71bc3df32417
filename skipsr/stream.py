"""A video through the pipeline window by window, and what comes back (docs/design.md section 7).

    stream = pipe.stream(lr_chunks, hr_chunks, tau=4, mask="predicted")   # any chunking of the frames
    for frames in stream:                                                 # (n, H, W, 3) uint8, in order
        ...
    result = stream.result()                                              # masks, counts, stage timings

Windows of `chunk_frames` frames overlap by `overlap_frames`, cross-faded linearly; memory holds one
window. Each window's output is a `WindowOut`; the stream gathers them into a frozen `SkipSRResult`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np
import torch

from skipsr import heap

if TYPE_CHECKING:
    from skipsr.pipeline import SkipSRPipeline

STAGES = ("decode", "predictor", "transformer", "fastpath", "compose", "encode")


class Timer:
    """`with Timer(timings, "stage"):` adds the block's wall time to timings["stage"]."""

    def __init__(self, timings: dict[str, float], stage: str):
        self.timings, self.stage = timings, stage

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + time.perf_counter() - self.t0


@dataclass(frozen=True)
class Masks:
    """(Tg, Hg, Wg) bool skip masks: the one used, the predicted one and the oracle one (None when not computed)."""

    skip: torch.Tensor | None
    pred: torch.Tensor | None = None
    oracle: torch.Tensor | None = None


@dataclass(frozen=True)
class WindowOut:
    """One window (or one tile of it): HR (T, H, W, 3) uint8, its masks, token counts, padding waste."""

    video: torch.Tensor
    masks: Masks
    n_tokens: int
    n_kept: int
    padding_waste: float


@dataclass(frozen=True)
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


class Stream:
    """An iterator over a video's output frames; once exhausted, `result()` says what it computed.
    `timings` may be shared with the caller, who adds its own stages (file decode and encode)."""

    def __init__(self, pipe: SkipSRPipeline, lr_chunks: Iterable[np.ndarray], hr_chunks: Iterable[np.ndarray] | None,
                 tau: float, mask: str, steps: int, seed: int, progress: Callable[[int], None] | None = None,
                 timings: dict[str, float] | None = None):
        self.pipe, self.lr_chunks, self.hr_chunks = pipe, lr_chunks, hr_chunks
        self.tau, self.mask, self.steps, self.seed, self.progress = tau, mask, steps, seed, progress
        self.timings = timings if timings is not None else {}
        self._masks: dict[str, list[torch.Tensor]] = {"skip": [], "pred": [], "oracle": []}
        self._wastes: list[float] = []
        self.n_tokens = self.n_kept = self.frames = 0
        self._t0 = None

    def __iter__(self) -> Iterator[np.ndarray]:
        self._t0 = time.perf_counter()
        cfg = self.pipe.config
        tc, ov, pt = cfg.chunk_frames, cfg.overlap_frames, self.pipe.cfg.pt
        hr_iter = iter(self.hr_chunks) if self.hr_chunks is not None else None
        lr_buf: list[np.ndarray] = []
        hr_buf: list[np.ndarray] = []
        tail: torch.Tensor | None = None  # outputs of the previous window's last `ov` frames
        first = True
        frame0 = 0  # index of lr_buf[0] in the whole video

        def process(n_frames: int) -> Iterator[np.ndarray]:
            nonlocal tail, first, lr_buf, hr_buf, frame0
            hr_win = np.stack(hr_buf[:n_frames]) if hr_iter is not None else None
            win = self.pipe._run_tiled(np.stack(lr_buf[:n_frames]), hr_win, self.tau, self.mask, self.steps,
                                       self.seed, self.timings, frame0 // pt)
            own = 0 if first else ov // pt  # token rows this window owns (the rest overlap the previous)
            for key in ("skip", "pred", "oracle"):
                m = getattr(win.masks, key)
                if m is not None:
                    self._masks[key].append(m[own:])
            self.n_tokens += win.n_tokens
            self.n_kept += win.n_kept
            self._wastes.append(win.padding_waste)
            out = win.video
            with Timer(self.timings, "encode"):
                if tail is not None:
                    crossfade(tail, out)
                keep_tail = ov if n_frames == tc else 0
                done = n_frames - keep_tail
                emitted = out[:done].cpu().numpy()
                tail = out[done:] if keep_tail else None
            lr_buf, hr_buf = lr_buf[done:], hr_buf[done:]
            frame0 += done
            del out, win
            heap.trim_heap()  # the window's freed heap pages go back to the system (lowers, not stops, growth with length)
            first = False
            if self.progress is not None:
                self.progress(done)
            self.frames += len(emitted)
            yield emitted

        for chunk in self.lr_chunks:
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
            self.frames += len(tail)
            yield tail.cpu().numpy()

    def result(self, video: np.ndarray | None = None, out_size: tuple[int, int] | None = None,
               total_s: float | None = None) -> SkipSRResult:
        """What the exhausted stream computed. `video`: the frames when the caller kept them; `out_size`:
        (width, height) of the output when it did not. "total": `total_s`, else the wall time since the
        stream began; either way less the oracle's time (evaluation only: it reads the HR)."""
        cat = lambda key: torch.cat(self._masks[key]) if self._masks[key] else None  # noqa: E731
        total = (time.perf_counter() - self._t0 if total_s is None else total_s) - self.timings.get("oracle", 0.0)
        timings = {k: self.timings.get(k, 0.0) for k in STAGES}
        timings["total"] = total
        timings["oracle"] = self.timings.get("oracle", 0.0)
        if video is not None:
            frames, out_h, out_w = video.shape[:3]
        else:
            (out_w, out_h), frames = out_size or (0, 0), self.frames
        return SkipSRResult(video=video, skip=cat("skip"), pred_skip=cat("pred"), oracle_skip=cat("oracle"),
                            n_tokens=self.n_tokens, n_kept=self.n_kept, timings=timings,
                            padding_waste=float(np.mean(self._wastes)) if self._wastes else 0.0,
                            frames=frames, out_w=out_w, out_h=out_h)


def crossfade(tail: torch.Tensor, out: torch.Tensor) -> None:
    """Linear cross-fade of a window's first k frames (in place) with the previous window's last k
    (`tail`), both uint8 (k / n, H, W, 3): the overlap of temporal windows."""
    k = tail.shape[0]
    wgt = torch.arange(1, k + 1, dtype=torch.float32).view(k, 1, 1, 1) / (k + 1)
    out[:k] = ((1 - wgt) * tail.float() + wgt * out[:k].float()).round_().to(torch.uint8)


def windows(total: int, chunk_frames: int, overlap_frames: int) -> list[tuple[int, int]]:
    """(first frame, frames) of the temporal windows a `Stream` processes a `total`-frame video in:
    full windows every chunk - overlap frames, then the rest when it holds more than the overlap."""
    out, start = [], 0
    while start + chunk_frames <= total:
        out.append((start, chunk_frames))
        start += chunk_frames - overlap_frames
    rest = total - start
    if rest > (overlap_frames if out else 0):
        out.append((start, rest))
    return out
