"""The command line: JSON contract of `mask`, overlay output, `degrade`, clear errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from media import pattern, write_raw
from skipsr.video import probe, read_video
from skipsr.config import ModelCard


def run(*args):
    return subprocess.run([sys.executable, "-m", "skipsr", *map(str, args)], capture_output=True, text=True)


def test_mask_json_and_overlay(tmp_path):
    frames = pattern(6, 72, 100)
    frames[:, :, :48] = 90  # a flat left part: those tokens must be skipped at any tau > 0
    src = write_raw(tmp_path / "hr.mp4", frames, codec_options={"crf": "0"}, audio_s=0.5)
    res = run("mask", src, "--scale", 4, "--tau", 2, 4, 8, "--json", "--overlay", tmp_path / "ov.mp4")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["taus"] == [2, 4, 8]
    assert out["grid"] == [6, 5, 7] and out["tokens"] == 6 * 5 * 7
    r = out["skip_ratio"]
    assert len(r) == 3 and r[0] <= r[1] <= r[2]
    assert r[0] >= 6 * 5 * 3 / out["tokens"] - 1e-9  # at least the flat columns
    ov = probe(tmp_path / "ov.mp4")
    assert (ov.frames, ov.width, ov.height, ov.has_audio) == (6, 100, 72, True)
    tinted = read_video(tmp_path / "ov.mp4")[:, 20:30, 5:40].astype(int)
    assert tinted[..., 2].mean() > tinted[..., 0].mean() + 20  # flat grey region tinted blue


@pytest.mark.slow
def test_degrade_clean_and_realistic(tmp_path):
    src = write_raw(tmp_path / "hr.mp4", pattern(5, 64, 96), audio_s=0.4)
    assert run("degrade", src, tmp_path / "lr.mp4", "--scale", 4).returncode == 0
    info = probe(tmp_path / "lr.mp4")
    assert (info.width, info.height, info.frames, info.has_audio) == (24, 16, 5, True)
    for name in ("a", "b"):
        res = run("degrade", src, tmp_path / f"{name}.mp4", "--scale", 2, "--realistic", "--crf", 30, "--seed", 3)
        assert res.returncode == 0, res.stderr
    a, b = read_video(tmp_path / "a.mp4"), read_video(tmp_path / "b.mp4")
    assert a.shape == (5, 32, 48, 3) and np.array_equal(a, b)


@pytest.mark.slow
def test_bad_input_gets_a_one_line_error(tmp_path):
    (tmp_path / "x.mp4").write_text("not a video")
    for args in (("mask", tmp_path / "x.mp4"), ("mask", tmp_path / "missing.mp4"),
                 ("degrade", tmp_path / "x.mp4", tmp_path / "o.mp4")):
        res = run(*args)
        assert res.returncode == 2
        assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert not (tmp_path / "o.mp4").exists()
    src = write_raw(tmp_path / "hr.mp4", pattern(2, 32, 32))
    res = run("mask", src, "--tau", -1)
    assert res.returncode == 2 and "tau" in res.stderr


@pytest.mark.slow
def test_upscale_picks_a_shipped_model_by_name_at_its_default_steps(tmp_path):
    from skipsr import checkpoint

    lr = write_raw(tmp_path / "lr.mp4", pattern(2, 32, 48), codec_options={"crf": "0"})
    for name in checkpoint.MODELS:
        res = run("upscale", lr, tmp_path / f"{name}.mp4", "--model", name, "--tau", 4, "--json")
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        card = checkpoint.read_card(checkpoint.MODELS[name])
        assert out["model"] == card["id"] and out["steps"] == ModelCard(card).default_steps
    res = run("upscale", lr, tmp_path / "x.mp4", "--model", "no-such-model")
    assert res.returncode == 2 and "no-such-model" in res.stderr


@pytest.mark.slow
def test_skipsr_console_script_runs_every_command_from_any_folder(tmp_path):
    """`make setup` installs the package (editable) with its `skipsr` command."""
    import shutil
    from pathlib import Path

    exe = shutil.which("skipsr", path=str(Path(sys.executable).parent))
    assert exe, "the `skipsr` console script is not installed: run `make setup` (pip install -e .)"
    res = subprocess.run([exe, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0
    for cmd in ("mask", "degrade", "upscale", "evaluate", "bench", "sweep", "data", "train", "metric-weights", "app"):
        assert cmd in res.stdout, cmd
    res = subprocess.run([exe, "evaluate", "--table", "--model", "adversarial"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 0 and "realistic (means over the clips)" in res.stdout and "LPIPS rise" in res.stdout
    res = subprocess.run([exe, "train"], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and "needs a stage" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def _one_line_error(res):
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    return res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ")


@pytest.mark.slow
def test_every_command_says_bad_input_in_one_line_with_exit_code_2(tmp_path):
    """The convention of skipsr/cliutil.py: a missing file or folder and a negative tau end with exit
    code 2 and one `error: ...` line, in every command that takes them."""
    from skipsr.video import write_video

    clip = tmp_path / "hr.mp4"
    write_video(clip, pattern(2, 64, 64), 24)
    nope, nodir = tmp_path / "nope.mp4", tmp_path / "no-such-folder"
    missing = [
        ["mask", nope], ["degrade", nope, tmp_path / "o.mp4"], ["upscale", nope, tmp_path / "o.mp4"],
        ["upscale", clip, tmp_path / "o.mp4", "--hr", nope], ["evaluate", "--data", nodir], ["bench", "--clip", nope],
        ["sweep", "--clips", nope], ["methods", "--data", nodir], ["evaluate", "--fastpath", nope], ["bench", "--fastpath", nope], ["sweep", "--clips", clip, "--peers", "nope"],
        ["data", "clips", "--data", nodir], ["data", "render", tmp_path / "o.mp4", "--photo", nope],
        *[["train", stage, "--data", nodir] for stage in ("sr", "distill", "adversarial", "predictor")],
    ]
    negative_tau = [["mask", clip, "--tau", -1], ["upscale", clip, tmp_path / "o.mp4", "--tau", -1],
                    ["evaluate", "--tau", -1], ["bench", "--tau", -1], ["sweep", "--clips", clip, "--tau", -1]]
    bad_settings = [["evaluate", "--grain", -1], ["evaluate", "--split", "train", "--write-card"]]
    for args in missing + negative_tau + bad_settings:
        res = run(*args)
        assert _one_line_error(res), (args, res.returncode, res.stderr[-2000:])
    assert "not found" in run("mask", nope).stderr and ">= 0" in run("bench", "--tau", -1).stderr


def test_pyproject_installs_every_package_and_the_shipped_files():
    """`pip install .` lists its packages by hand (the shipped folders are mapped into skipsr/shipped):
    every package of the tree must be in that list, and each shipped folder must hold what it ships."""
    import tomllib
    from pathlib import Path

    from setuptools import find_packages

    root = Path(__file__).resolve().parent.parent
    tool = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tool["packages"])
    tree = set(find_packages(root, include=["skipsr*", "analysis*", "app*"]))
    assert tree <= listed, f"packages missing from pyproject.toml: {sorted(tree - listed)}"
    for package, folder in tool["package-dir"].items():
        assert package in listed
        files = [p for pattern in tool["package-data"][package] for p in (root / folder).glob(pattern)]
        assert files, f"{folder}/ ships nothing"


@pytest.mark.slow
def test_installed_package_upscales_outside_the_source_tree(tmp_path):
    """A built wheel (not the editable tree) installed into a folder: `python -m skipsr upscale` from
    another folder finds the shipped model in the installed package."""
    import os
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    src = tmp_path / "src"  # a copy: building in the tree would leave build/ there
    shutil.copytree(root, src, ignore=shutil.ignore_patterns(".*", "data", "runs", "build", "*.egg-info", "tests",
                                                             "notebooks", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                    "-w", str(wheels)], check=True, capture_output=True, cwd=tmp_path)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    *map(str, wheels.glob("*.whl"))], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    write_raw(work / "lr.mp4", pattern(2, 32, 48))
    code = ("import runpy, sys, skipsr; assert 'site' in skipsr.__file__, skipsr.__file__; "
            "sys.argv = ['skipsr', 'upscale', 'lr.mp4', 'out.mp4', '--json']; runpy.run_module('skipsr', run_name='__main__')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=work, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["model"] and not out["model"].startswith("random-init") and (out["out_w"], out["out_h"]) == (192, 128)


def test_design_layers_name_every_module_and_the_readme_every_folder():
    """docs/design.md section 0 names every module of each package under its folder, and the README's
    layout table every tracked top-level entry."""
    import re
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    block = (root / "docs" / "design.md").read_text().split("## 0. Layers", 1)[1].split("```", 2)[1]
    named: dict[str, set[str]] = {}
    folder = None
    for line in block.splitlines():
        head = re.match(r"^(\S+/)", line)
        if head:
            folder = head.group(1)
            named[folder] = set()
        elif folder:
            named[folder] |= set(re.findall(r"\b[a-z_]+\b", line.split("   ")[0]))
    for pkg in ("skipsr", "skipsr/evaluation", "skipsr/train", "app", "analysis"):
        modules = {p.stem for p in (root / pkg).glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
        missing = sorted(modules - named.get(pkg + "/", set()))
        assert not missing, f"modules of {pkg}/ missing from docs/design.md section 0: {missing}"
    readme = (root / "README.md").read_text()
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    top_named = {n.split("/")[0] + ("/" if "/" in n else "") for n in re.findall(r"`([^`]+)`", table)}
    ignored = set(subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--directory"],
                                 cwd=root, capture_output=True, text=True, check=False).stdout.split())
    entries = {p.name + ("/" if p.is_dir() else "") for p in root.iterdir() if not p.name.startswith(".")}
    top = {e for e in entries - ignored  # what make demo / make test leave is ignored
           if e.rstrip("/") not in ("data", "runs", "build", "demo_out", "README.md", "Makefile", "pytest.ini",
                                    "skipsr_studio.egg-info")}
    assert not sorted(top - top_named), f"top-level entries missing from the layout table: {sorted(top - top_named)}"
