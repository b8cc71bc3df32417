"""A heap that does not creep: glibc's malloc settings for long streaming runs.

glibc raises its mmap threshold as large blocks are freed, after which tensors of varying size come
from the heap and fragment it. With the transformer's temporaries in fixed-size row slices (model.py)
a 300-frame 720p upscale peaks 5-9% above a 30-frame one (the same settings give 1.052 one run and
1.089 the next), mostly the scatter of the windows' peaks plus slow fragmentation (`heap_stats_mb`,
analysis/memtrace.py; README "Speed", memory items 5-6). Fixing the mmap and
trim thresholds (and two arenas) kept it flatter (1.03-1.05x, measured before the row slices) at a
cost in speed (large tensors are mapped afresh: 14-38% slower here). Opt-in: `upscale --bounded-memory`,
`bench --memory --bounded-memory`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # mallopt parameters (malloc.h)


@functools.cache
def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None


def trim_heap() -> bool:
    """Hand the heap's free pages back to the system (glibc `malloc_trim(0)`): called after each
    streamed window, it lowers how much free-but-resident heap builds up with a video's length (it
    does not stop the growth: README "Speed"). True when pages
    were released; False when none were or the C library has no malloc_trim."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


class _MallInfo2(ctypes.Structure):  # glibc >= 2.33 (malloc.h)
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def heap_stats_mb() -> dict:
    """glibc's heap over all arenas (`mallinfo2`), in MB: arena size, mapped blocks, bytes in use and
    free bytes; {} where the C library has no mallinfo2."""
    fn = getattr(_libc(), "mallinfo2", None)
    if fn is None:
        return {}
    fn.restype = _MallInfo2
    m = fn()
    return {"arena_mb": m.arena / 2**20, "mapped_mb": m.hblkhd / 2**20, "in_use_mb": m.uordblks / 2**20,
            "free_mb": m.fordblks / 2**20}


def bound_heap(threshold_bytes: int = 4 << 20, arenas: int = 2) -> bool:
    """Fix glibc's mmap and trim thresholds at `threshold_bytes` and its arenas at `arenas` for the
    rest of the process. False (and nothing changed) where the C library is not glibc."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        log.warning("no glibc mallopt here: the heap is left as it is")
        return False
    ok = all(mallopt(p, v) == 1 for p, v in ((M_MMAP_THRESHOLD, threshold_bytes), (M_TRIM_THRESHOLD, threshold_bytes),
                                            (M_ARENA_MAX, arenas)))
    return ok
