"""From file to file: a video streamed through the pipeline into an H.264 mp4 (the `upscale` command).

Decoding runs ahead of the compute and encoding behind it in background threads with bounded queues
(skipsr/background.py), so memory holds one window of frames whatever the video's length. The
stages' times (decode and encode: the waits on them) go into the result beside the pipeline's.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

from skipsr.pipeline import SkipSRPipeline
from skipsr.stream import SkipSRResult, Timer

ENCODE_PRESET = "veryfast"  # x264 preset of upscale_file (measured: docs/results.md, "Speed")
UPSCALE_WINDOW_FRAMES = 16  # the upscale command's window (`--chunk-frames`)


class _TimedIter:
    """Wraps an iterator and adds the time spent in next() to timings[stage]."""

    def __init__(self, it, timings: dict, stage: str):
        self.it, self.timings, self.stage = iter(it), timings, stage

    def __iter__(self):
        return self

    def __next__(self):
        with Timer(self.timings, self.stage):
            return next(self.it)


def upscale_file(pipe: SkipSRPipeline, src: str, dst: str, tau: float | None = None, mask: str = "predicted",
                 steps: int | None = None, seed: int = 0, hr: str | None = None, max_frames: int | None = None,
                 progress: Callable[[int], None] | None = None) -> SkipSRResult:
    """Stream a video file through the pipeline into an H.264 mp4 that keeps fps and audio.

    Memory is bounded by one chunk of frames whatever the length. Returns the result without the
    video (`video=None`); timings include file decode and encode.
    """
    from skipsr.background import BackgroundWriter, prefetch
    from skipsr.video import VideoWriter, iter_chunks, probe

    info = probe(src)
    timings: dict[str, float] = {}  # the pipeline's stages and the waits on file decode and encode
    t0 = time.perf_counter()
    window = pipe.config.chunk_frames
    # decode and encode run in background threads (bounded queues): "decode" / "encode" time the waits
    lr_iter = _TimedIter(prefetch(iter_chunks(src, chunk_frames=window, max_frames=max_frames)), timings, "decode")
    # The HR is read for evaluation only (oracle mask): its decode time counts as "oracle".
    hr_iter = _TimedIter(iter_chunks(hr, chunk_frames=window, max_frames=max_frames), timings, "oracle") if hr else None
    writer = VideoWriter(dst, info.fps, audio_from=src, preset=ENCODE_PRESET)
    encoder = BackgroundWriter(writer)
    stream = pipe.stream(lr_iter, hr_iter, tau, mask, steps, seed, progress, timings)
    try:
        for frames in stream:
            with Timer(timings, "encode"):
                encoder.write(frames)
    except BaseException:
        encoder.__exit__(*sys.exc_info())  # drops the partial file
        raise
    with Timer(timings, "encode"):
        encoder.close()
    scale = pipe.cfg.scale
    res = stream.result(out_size=(info.width * scale, info.height * scale), total_s=time.perf_counter() - t0)
    assert res.frames == writer.frames_written
    return res
