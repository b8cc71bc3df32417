"""Load test of a running app: concurrent API clients on `compare`.

    python -m app.load http://127.0.0.1:7860/ [--clients 20] [--example bunny] [--pid APP_PID] [--json]

Every client asks at once for an example at the default settings (answered from the cache when the
app has it, else computed: one at a time, the queue holding the rest). A call is "served" (its
summary came back), "refused" (the app said why: a full queue, bad input) or "failed" (no answer:
a dropped connection, a timeout, a crash). Afterwards the app must still answer; with --pid the
app's resident memory is read before and after (/proc/PID/status: VmRSS, and VmHWM, the peak).
Exit status 0 when nothing failed, the app is alive and its memory grew less than --max-rss-growth-mb.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path


def rss_mb(pid: int) -> dict[str, float]:
    """{"rss_mb", "peak_rss_mb"} of a process (Linux /proc)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[{"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb"}[key]] = int(value.split()[0]) / 1024
    return fields


def call(url: str, example: str, timeout_s: float) -> tuple[str, float, str]:
    """(outcome, seconds, detail) of one compare call at the app's defaults."""
    from gradio_client import Client

    t0 = time.perf_counter()
    try:
        client = Client(url, verbose=False, download_files=False)
        job = client.submit(example, "bicubic", None, "crop", api_name="/compare")
        summary = job.result(timeout=timeout_s)[-1]
        ok = isinstance(summary, dict) and "skip_ratio" in summary
        return ("served" if ok else "failed"), time.perf_counter() - t0, "" if ok else f"no summary: {summary!r:.200}"
    except Exception as e:  # noqa: BLE001 - classified below
        msg = f"{type(e).__name__}: {e}"
        clean = type(e).__name__ in ("AppError", "QueueError") or "queue" in msg.lower()
        return ("refused" if clean else "failed"), time.perf_counter() - t0, msg[:300]


def load(url: str, clients: int, example: str, timeout_s: float, pid: int | None = None) -> dict:
    before = rss_mb(pid) if pid else {}
    results: list[tuple[str, float, str]] = []
    lock = threading.Lock()

    def one():
        r = call(url, example, timeout_s)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    alive = call(url, example, timeout_s)
    after = rss_mb(pid) if pid else {}
    served = [s for o, s, _ in results if o == "served"]
    out = {"clients": clients, "served": len(served), "refused": sum(o == "refused" for o, _, _ in results),
           "failed": sum(o == "failed" for o, _, _ in results), "wall_s": wall,
           "median_served_s": statistics.median(served) if served else None, "max_served_s": max(served, default=None),
           "alive_after": alive[0] == "served", "details": sorted({d for o, _, d in results if d})[:5]}
    if pid:
        out.update(rss_before_mb=before["rss_mb"], rss_after_mb=after["rss_mb"], peak_rss_mb=after["peak_rss_mb"],
                   rss_growth_mb=after["rss_mb"] - before["rss_mb"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m app.load", description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="the app's address, e.g. http://127.0.0.1:7860/")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--example", default="bunny")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds a client waits for its answer")
    ap.add_argument("--pid", type=int, help="the app's process id: report its memory before and after")
    ap.add_argument("--max-rss-growth-mb", type=float, default=500.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.clients < 1:
        print("error: --clients must be >= 1", file=sys.stderr)
        return 2
    out = load(args.url, args.clients, args.example, args.timeout, args.pid)
    print(json.dumps(out) if args.json else "\n".join(f"{k:18s} {v}" for k, v in out.items()))
    ok = out["failed"] == 0 and out["alive_after"] and out.get("rss_growth_mb", 0.0) < args.max_rss_growth_mb
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
