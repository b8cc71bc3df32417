"""Peak memory window by window: what grows with a video's length, and what only scatters.

`WindowTrace(pipe)` samples the process's resident memory every millisecond in a thread and records,
for every window the pipeline runs, the RSS before it, the peak inside it and glibc's heap
(`skipsr.heap.heap_stats_mb`: arena size, bytes in use, bytes free). `trend(windows)` fits a line to
the peaks after the warm-up: a slope of MB per window is growth; the scatter around it is what makes
a long video's peak (the highest of many windows) exceed a short one's without any growth.
`python -m analysis.bench --memory --window-trace --json` prints both for the short and the long run.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from skipsr.heap import heap_stats_mb

WARMUP_WINDOWS = 3  # the first windows fill the decoder, the encoder and glibc's dynamic thresholds
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_mb() -> float:
    """The process's resident set now (Linux /proc), in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_MB


class WindowTrace:
    """Wraps `pipe._run_tiled` (one call per streamed window) while active; `windows` holds one dict
    per window: n_kept, rss_before_mb, peak_mb, and the heap after it (before the window's trim)."""

    def __init__(self, pipe, interval_s: float = 0.001):
        self.pipe, self.interval_s, self.windows = pipe, interval_s, []
        self._peak, self._stop, self._lock = 0.0, threading.Event(), threading.Lock()

    def _sample(self) -> None:
        while not self._stop.is_set():
            now = rss_mb()
            with self._lock:  # a reset between the read and the write is not undone
                self._peak = max(self._peak, now)
            time.sleep(self.interval_s)

    def _reset(self) -> float:
        with self._lock:
            self._peak = rss_mb()
            return self._peak

    def __enter__(self) -> WindowTrace:
        run = self.pipe._run_tiled

        def traced(*args, **kwargs):
            before = self._reset()
            out = run(*args, **kwargs)
            with self._lock:
                peak = max(self._peak, rss_mb())
            self.windows.append({"n_kept": int(out.n_kept), "rss_before_mb": round(before, 1), "peak_mb": round(peak, 1),
                                 **{k: round(v, 1) for k, v in heap_stats_mb().items()}})
            return out

        self.pipe._run_tiled = traced
        self._thread = threading.Thread(target=self._sample, name="skipsr-memtrace", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        del self.pipe._run_tiled  # the class's method again


def trend(windows: list[dict], warmup: int = WARMUP_WINDOWS) -> dict:
    """Peaks after the warm-up: slope (MB per window, least squares), median and standard deviation
    of the scatter around the line. Needs warmup + 3 windows; {} with fewer."""
    peaks = np.array([w["peak_mb"] for w in windows[warmup:]], dtype=float)
    if len(peaks) < 3:
        return {}
    x = np.arange(len(peaks), dtype=float)
    slope, icept = np.polyfit(x, peaks, 1)
    return {"windows": len(peaks), "peak_slope_mb_per_window": round(float(slope), 2),
            "peak_median_mb": round(float(np.median(peaks)), 1),
            "peak_scatter_sd_mb": round(float(np.std(peaks - (slope * x + icept), ddof=2)), 1)}
