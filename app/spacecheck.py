"""The Hugging Face Space, checked the way a Space runs it.

    python -m app.spacecheck [--json] [--page-s 60] [--answer-s 5]   # make space-check

A fresh venv with requirements.txt alone (what a Space installs), the repository's files (tracked
and not ignored) copied into an empty folder, an empty HOME, `python space.py`. Then, as a first
visitor: (a) the page must come up within `--page-s` of the start, (b) the default example (the
first one, clean, at the defaults) must be answered through the `compare` API within `--answer-s`
of the page being up, (c) that answer must carry JOD, LPIPS and DISTS for every output. Then 20
concurrent clients ask for it (`app.load`) while the app precomputes the other examples in the
background, as a Space does after its start. Reported beside them: the install time, the load test
and the app's peak resident memory, which must stay under a CPU Space's 16 GB. Exit status 0 when
all of it holds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from app.load import load, rss_mb

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("jod", "lpips", "dists")
SPACE_MEMORY_MB = 16 * 1024  # a CPU Space (cpu-basic): 2 vCPU, 16 GB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_tree(dest: Path) -> int:
    """The repository's tracked and untracked-but-not-ignored files into dest (no venv, data or caches)."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    n = 0
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
            n += 1
    return n


def build_venv(venv: Path, requirements: Path) -> float:
    """A fresh venv with requirements.txt only; returns the seconds it took."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # with pip, as a Space has it
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                    str(requirements)], check=True)
    return time.perf_counter() - t0


def wait_for_page(url: str, proc: subprocess.Popen, limit_s: float) -> float | None:
    """Seconds until the page answers 200 (from the call), None past limit_s or when the app exits."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        if proc.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.25)
    return None


def first_answer(url: str, example: str) -> tuple[float, dict]:
    """(seconds, JSON summary) of the default example's answer through the API, as a visitor's first click."""
    from gradio_client import Client

    t0 = time.perf_counter()
    client = Client(url, verbose=False, download_files=False)
    summary = client.predict(example, "bicubic", None, "crop", api_name="/compare")[-1]
    return time.perf_counter() - t0, summary


def missing_metrics(summary: dict) -> list[str]:
    """'output.metric' for each of JOD / LPIPS / DISTS that the summary lacks (bicubic, no-skip, SkipSR)."""
    outputs = {k: v for k, v in summary.items() if isinstance(v, dict) and "psnr_y" in v}
    if not outputs:
        return ["no per-output quality in the summary"]
    return [f"{name}.{m}" for name, q in outputs.items() for m in METRICS if q.get(m) is None]


def check(page_limit_s: float, answer_limit_s: float, log_path: Path | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="skipsr-spacecheck-"))
    repo, home, venv = tmp / "repo", tmp / "home", tmp / "venv"
    repo.mkdir()
    home.mkdir()
    files = copy_tree(repo)
    print(f"copied {files} files; building a fresh venv from requirements.txt...", file=sys.stderr)
    install_s = build_venv(venv, repo / "requirements.txt")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "HF_HUB_OFFLINE": "1",
           "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    log = open(log_path or tmp / "space.log", "w")
    print(f"installed in {install_s:.0f} s; starting `python space.py` on {url}", file=sys.stderr)
    proc = subprocess.Popen([str(venv / "bin" / "python"), "space.py"], cwd=repo, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    out = {"files": files, "install_s": round(install_s, 1), "page_limit_s": page_limit_s,
           "answer_limit_s": answer_limit_s}
    try:
        page_s = wait_for_page(url, proc, max(page_limit_s, 180.0))
        out["page_s"] = None if page_s is None else round(page_s, 2)
        if page_s is not None:
            answer_s, summary = first_answer(url, "bunny")
            out.update(answer_s=round(answer_s, 2), missing_metrics=missing_metrics(summary),
                       verdict=(summary.get("verdict") or {}).get("text"))
            lt = load(url, 20, "bunny", 300.0, proc.pid)
            out["load"] = {k: lt[k] for k in ("served", "refused", "failed", "alive_after", "max_served_s")}
            out.update(rss_mb(proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    out["log_tail"] = (log_path or tmp / "space.log").read_text()[-2000:]
    shutil.rmtree(tmp, ignore_errors=True)
    out["page_ok"] = out.get("page_s") is not None and out["page_s"] <= page_limit_s
    out["answer_ok"] = out.get("answer_s") is not None and out["answer_s"] <= answer_limit_s
    out["metrics_ok"] = out.get("missing_metrics") == []
    lt = out.get("load", {})
    out["load_ok"] = (lt.get("failed") == 0 and bool(lt.get("alive_after"))
                      and out.get("peak_rss_mb", 1e9) < SPACE_MEMORY_MB)
    out["ok"] = out["page_ok"] and out["answer_ok"] and out["metrics_ok"] and out["load_ok"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m app.spacecheck", description=__doc__.split("\n\n")[0])
    ap.add_argument("--page-s", type=float, default=60.0, help="the page must be up within this many seconds")
    ap.add_argument("--answer-s", type=float, default=5.0,
                    help="the default example must be answered within this many seconds of the page")
    ap.add_argument("--log", type=Path, help="keep the app's output here")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = check(args.page_s, args.answer_s, args.log)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"page {out.get('page_s')} s (<= {args.page_s:g}: {out['page_ok']}), default answer "
              f"{out.get('answer_s')} s (<= {args.answer_s:g}: {out['answer_ok']}), JOD / LPIPS / DISTS present: "
              f"{out['metrics_ok']} {out.get('missing_metrics') or ''}; 20 clients {out.get('load')}; install "
              f"{out['install_s']} s, peak RSS {out.get('peak_rss_mb', 0):.0f} MB "
              f"(< {SPACE_MEMORY_MB} MB: {out['load_ok']})")
        if not out["ok"]:
            print(out["log_tail"], file=sys.stderr)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
