"""Time a running app in a real browser: the click on "Upscale" until every view of the answer is shown.

    python -m app.browser http://127.0.0.1:7860/ [--clicks 5] [--json]

Each click is made in a fresh Chromium (Debian's /usr/bin/chromium, headless, the project's flags, a
new user-data dir: nothing cached) on a freshly loaded page, at the page's default settings (the
default example: an answer from the cache once the app has precomputed it). "Shown" is checked in
the page on every animation frame (`SHOWN`): every view has a box and its content (a video its
metadata, an image decoded) and the speed box says the answer came from the cache. The browser test
(tests/test_app.py) uses the same check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 2400}  # the whole "Upscale & compare" tab in view
VIEWS = ["#lr-video video", "#bicubic-video video", "#hr-video video", "#skip-video video", "#noskip-video video",
         "#split-video video", "#pred-overlay video", "#oracle-overlay video", "#frame-slider img", "#heatmap img",
         "#zoom img"]
SHOWN = """(views) => views.every(sel => {
    const all = [...document.querySelectorAll(sel)];
    return all.length > 0 && all.every(e => {
        const r = e.getBoundingClientRect();
        return r.width > 0 && r.height > 0 &&
            (e.tagName === 'VIDEO' ? e.readyState >= 1 : e.complete && e.naturalWidth > 0);
    });
}) && document.querySelector('#speed').innerText.includes('from the cache')"""


def launch(p, user_dir: str | None = None):
    """A Chromium context with the project's flags and a fresh user-data dir (Playwright's sync API `p`)."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: apt-get install chromium (make browser)")
    return p.chromium.launch_persistent_context(user_dir or tempfile.mkdtemp(prefix="chromium-"),
                                                executable_path=CHROMIUM, headless=True, viewport=VIEWPORT,
                                                args=FLAGS)


def open_app(context, url: str):
    """A new page of `context` on the app at `url`, loaded and ready for a click on "Upscale"."""
    page = context.new_page()
    page.goto(url, wait_until="load", timeout=60_000)
    page.wait_for_selector("#run", timeout=60_000)
    return page


def click_until_shown(page, timeout_ms: int = 30_000) -> float:
    """Seconds from the click on "Upscale" until every view of a cached answer is shown."""
    t0 = time.perf_counter()
    page.locator("#run").click()
    page.wait_for_function(SHOWN, arg=VIEWS, polling="raf", timeout=timeout_ms)
    return time.perf_counter() - t0


def time_clicks(url: str, clicks: int) -> list[float]:
    """click_until_shown in `clicks` fresh browsers, one after the other."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        for i in range(clicks):
            browser = launch(p)
            try:
                times.append(click_until_shown(open_app(browser, url)))
            finally:
                browser.close()
            print(f"click {i + 1}/{clicks}: {times[-1]:.2f} s", file=sys.stderr, flush=True)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--clicks", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.clicks < 1:
        ap.error("--clicks must be at least 1")
    times = time_clicks(args.url, args.clicks)
    out = {"clicks": len(times), "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
           "times_s": [round(t, 3) for t in times]}
    print(json.dumps(out) if args.json else f"every view shown after {out['median_s']:.2f} s "
          f"(median of {len(times)}; {out['min_s']:.2f}-{out['max_s']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
