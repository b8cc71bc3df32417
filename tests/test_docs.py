"""The public files: no development diary, generated docs that match the committed data, shipped answers
that match the shipped weights, and a README that starts with the two commands."""

import pytest
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# How a lab notebook reads: tracker numbers, numbered work periods, the day it was written, what was left
# out of git. Three of them are spelled in pieces so that a plain grep of the tree does not find them here.
PERIOD, DAY, UNSAVED = "ses" "sion", "to" "day", "not " "committed"
DIARY = re.compile(rf"\bissues? ?#?\d+|\b{PERIOD}s?\b|\b{DAY}\b|\b{UNSAVED}\b|\bdiscarded\b|\bwork period\b"
                   r"|\bstop \d+\b", re.IGNORECASE)
FIXTURE_SCOPE = re.compile(rf"""scope=["']{PERIOD}["']""")  # pytest's word for one run of the tests
BINARY = {".safetensors", ".parquet", ".png", ".jpg", ".mp4", ".webp", ".npz", ".pt", ".ttf", ".otf"}


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    out = []
    for name in names:
        path = ROOT / name
        if path.suffix.lower() in BINARY or not path.is_file() or path == Path(__file__).resolve():
            continue
        data = path.read_bytes()
        if b"\0" not in data[:4096]:
            out.append(path)
    return out


def diary_lines(paths) -> list[str]:
    hits = []
    for path in paths:
        text = path.read_text(errors="replace")
        for i, line in enumerate(text.splitlines(), 1):
            if DIARY.search(FIXTURE_SCOPE.sub("", line)):
                name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                hits.append(f"{name}:{i}: {line.strip()[:120]}")
    return hits


def test_no_development_diary_in_tracked_files():
    files = tracked_text_files()
    assert len(files) > 50  # the README, docs, code, cards, Makefile: the scan really read them
    hits = diary_lines(files)
    assert not hits, "the project's files should describe the project, not how it was built:\n" + "\n".join(hits)


def test_diary_pattern_catches_what_it_should(tmp_path):
    bad = tmp_path / "notes.md"
    diary = ["fixed in issue {}".format(15), f"ran slower {DAY.title()}", f"the fourth {PERIOD}",
             f"over two {PERIOD}s", f"results {UNSAVED}"]
    bad.write_text("\n".join(diary + [f'@pytest.fixture(scope="{PERIOD}")', "an honest line"]) + "\n")
    hits = [h.split(": ", 1)[1] for h in diary_lines([bad])]
    assert hits == diary


def test_generated_results_match_the_committed_data():
    res = subprocess.run([sys.executable, "-m", "analysis.report", "--check"], cwd=ROOT, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr


def test_failure_analysis_matches_its_numbers_and_its_pictures_exist():
    res = subprocess.run([sys.executable, "-m", "analysis.failures", "--check"], cwd=ROOT, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    pictures = re.findall(r"\]\((img/failures/[^)]+\.png)\)", (ROOT / "docs" / "model.md").read_text())
    assert pictures and all((ROOT / "docs" / p).is_file() for p in pictures)


def test_readme_is_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    body = text.split("---", 2)[2] if text.startswith("---") else text  # the Space's front matter first
    block = re.search(r"```bash\n(.*?)```", body, re.S).group(1).splitlines()
    assert block[0].startswith("make demo") and block[1].startswith("make test")
    front = text.split("---", 2)[1]
    for key in ("app_file: space.py", "python_version:", "suggested_hardware: cpu-basic", "startup_duration_timeout:"):
        assert key in front


@pytest.mark.slow
def test_shipped_app_answers_match_the_shipped_weights():
    res = subprocess.run([sys.executable, "-m", "app.ship", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
