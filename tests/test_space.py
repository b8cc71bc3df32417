"""The Hugging Face Space on first visit, checked the way a Space runs it (app/spacecheck.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app import spacecheck

ROOT = Path(__file__).resolve().parents[1]


def test_missing_metrics_names_each_absent_number():
    full = {"bicubic": {"jod": 6.9, "psnr_y": 32.2, "lpips": 0.28, "dists": 0.18},
            "skip": {"jod": 7.3, "psnr_y": 32.6, "lpips": 0.17, "dists": None}, "skip_ratio": 0.6}
    assert spacecheck.missing_metrics(full) == ["skip.dists"]
    assert spacecheck.missing_metrics({"skip_ratio": 0.6}) == ["no per-output quality in the summary"]


@pytest.mark.slow
def test_space_works_on_first_visit():
    """A fresh venv from requirements.txt alone, an empty home, `python space.py`: the page within 60 s, the
    default example answered within 5 s of it, JOD / LPIPS / DISTS in the answer."""
    res = subprocess.run([sys.executable, "-m", "app.spacecheck", "--json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=1500)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    print({k: v for k, v in out.items() if k != "log_tail"})
    assert out["page_ok"], f"page after {out.get('page_s')} s:\n{out['log_tail']}"
    assert out["answer_ok"], f"default answer after {out.get('answer_s')} s:\n{out['log_tail']}"
    assert out["metrics_ok"], out.get("missing_metrics")
    assert out["load_ok"], (out.get("load"), out.get("peak_rss_mb"))  # 20 clients served, under a Space's 16 GB
    assert res.returncode == 0
