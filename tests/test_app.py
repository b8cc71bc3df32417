"""The Gradio app against a launched server: handlers through gradio_client, and a real browser.

The browser test drives Debian's Chromium (/usr/bin/chromium, installed by `make test`) headless
through Playwright; it is never skipped in CI: without Chromium it fails and says so.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from skipsr import checkpoint

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    if (ROOT / "results").exists():  # the committed curves, copied: app runs must not touch them
        for p in (ROOT / "results").glob("shard-*.parquet"):
            shutil.copy(p, results)
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "SKIPSR_RESULTS": str(results),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "app"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("app exited:\n" + proc.stdout.read())
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("app did not start in 120 s")
    yield url, results
    proc.terminate()
    proc.wait(timeout=30)


def test_example_end_to_end_through_the_api(app_url):
    from gradio_client import Client

    url, results = app_url
    client = Client(url, verbose=False)
    t0 = time.time()
    out = client.predict("meadow", None, 4.0, 1, "predicted", 4, 0, "distilled", api_name="/compare")
    elapsed = time.time() - t0
    skip_video, noskip_video, pair, heat, pred_overlay, oracle_overlay, agreement, timings, speed = out[:9]
    for v in (skip_video, noskip_video, pred_overlay, oracle_overlay):
        assert Path(v["video"] if isinstance(v, dict) else v).exists()
    assert "F1" in agreement and "skipped" in speed.lower() and "PSNR-Y" in speed
    from skipsr import metrics

    if metrics.perceptual_reason() is None:  # LPIPS / DISTS per output, the skip cost in words
        assert "LPIPS" in speed and "DISTS" in speed and "loss**" in speed
    assert {r[0] for r in timings["data"]} >= {"transformer", "compose", "total"}
    assert elapsed < 60
    from skipsr.store import ResultsStore

    app_rows = ResultsStore(results).read()
    app_rows = app_rows[app_rows["origin"] == "app"]
    assert len(app_rows) == 2 and set(app_rows["mask_source"]) == {"none", "predicted"}  # every run recorded
    assert all(m.startswith("skipsr-distilled") for m in app_rows["model_id"])  # the model that was picked
    from skipsr.store import NUMBER_COLUMNS, file_hash

    assert set(NUMBER_COLUMNS) <= set(app_rows.columns) and app_rows["psnr_y_detail"].notna().all()  # one record
    assert set(app_rows["clip_hash"]) == {file_hash(ROOT / "examples" / "meadow.mp4")}  # the source file, as the sweep


def test_bad_upload_gets_a_message_not_a_crash(app_url):
    from gradio_client import Client, handle_file

    url, _ = app_url
    client = Client(url, verbose=False)
    bad = Path(tempfile.mkdtemp()) / "broken.mp4"
    bad.write_text("this is not a video\n" * 100)
    with pytest.raises(Exception) as e:
        client.predict(None, handle_file(str(bad)), 4.0, 1, "predicted", 4, 0, "adversarial", api_name="/compare")
    assert "corrupt" in str(e.value) or "not a video" in str(e.value) or "cannot open" in str(e.value)
    with pytest.raises(Exception) as e:
        client.predict("bikes", None, 4.0, 1, "oracle", 2, 0, "no-such-model", api_name="/compare")
    assert "no-such-model" in str(e.value)
    out = client.predict("bikes", None, 4.0, 2, "oracle", 2, 0, "multistep", api_name="/compare")  # still works
    assert "oracle mask used" in out[6] and "skipped" in out[8].lower()


def test_browser_runs_an_example_and_shows_everything(app_url):
    assert Path(CHROMIUM).exists(), "Debian chromium is required for the browser test (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    url, _ = app_url
    user_dir = tempfile.mkdtemp(prefix="chromium-")
    with sync_playwright() as p:
        # A fresh user-data dir (Playwright passes it as --user-data-dir) and the project's flags.
        browser = p.chromium.launch_persistent_context(
            user_dir, executable_path=CHROMIUM, headless=True, viewport={"width": 1400, "height": 2000},
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        page = browser.new_page()
        page.goto(url, wait_until="load", timeout=60_000)
        page.wait_for_selector("#run", timeout=60_000)
        page.locator("#run").click()
        for elem in ("#skip-video video", "#noskip-video video", "#pred-overlay video", "#oracle-overlay video"):
            page.wait_for_selector(elem, timeout=120_000)
        assert "F1" in page.locator("#agreement").inner_text(timeout=30_000)
        page.get_by_role("tab", name="Curves").click()
        for plot in ("#plot-cost-lpips", "#plot-cost-psnr", "#plot-pareto", "#plot-skip"):
            page.wait_for_selector(f"{plot} .js-plotly-plot", timeout=60_000)
        shot = ROOT / "docs" / "screenshot.png"
        if os.environ.get("SKIPSR_SCREENSHOT"):
            shot.parent.mkdir(exist_ok=True)
            page.wait_for_timeout(1500)  # let plotly finish laying out
            page.screenshot(path=str(shot.with_name("curves.png")), full_page=True)
            page.get_by_role("tab", name="Upscale & compare").click()
            page.screenshot(path=str(shot), full_page=True)
        # picking a model sets steps and tau to its card's defaults
        page.get_by_role("tab", name="Upscale & compare").click()
        page.locator("#model input").click()
        page.get_by_role("option", name="multistep").click()
        card = checkpoint.read_card(checkpoint.MODELS["multistep"])
        want = (checkpoint.default_steps(card), float(card["default_tau"]))
        got = None
        for _ in range(40):
            got = (int(float(page.locator("#steps input[type=number]").input_value())),
                   float(page.locator("#tau input[type=number]").input_value()))
            if got == want:
                break
            time.sleep(0.25)
        assert got == want
        browser.close()
