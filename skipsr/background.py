"""Decode and encode beside the compute (docs/design.md section 7): a producer or a consumer in a
daemon thread with a bounded queue, so at most `depth` chunks wait and memory stays flat.

The decoder (PyAV) and the encoder (x264) release the GIL, so they overlap the transformer. Errors
in the thread surface in the caller at the next item (or at close); a caller that stops early stops
the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

_END = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put unless stopped (checked every 0.1 s); False when stopped."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate `items` in a daemon thread, at most `depth` items ahead of the caller."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work():
        try:
            for item in items:
                if not _put(q, item, stop):
                    return
            _put(q, _END, stop)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            _put(q, _Failed(e), stop)

    t = threading.Thread(target=work, name="skipsr-prefetch", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


class BackgroundWriter:
    """Calls writer.write(item) in a daemon thread, at most `depth` items queued; `close()` drains
    the queue, then closes the writer. Use as a context manager (an exception drops the writer's
    output through its own __exit__)."""

    def __init__(self, writer: Any, depth: int = 2):
        self.writer = writer
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="skipsr-encode", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._q.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self.writer.write(item)
                except BaseException as e:  # noqa: BLE001 - raised in the caller
                    self._error = e

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, item) -> None:
        self._check()
        _put(self._q, item, self._stop)

    def close(self) -> None:
        _put(self._q, _END, self._stop)
        self._thread.join()
        self._check()
        self.writer.close()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        while True:  # what is queued is dropped with the output
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        self._q.put(_END)
        self._thread.join(timeout=30)
        self.writer.__exit__(exc_type, exc, tb)
