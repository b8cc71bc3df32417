"""The peers (analysis/peers.py): each upscales a real clip x4 better than nearest neighbour; a
missing one is skipped with its reason; the curves draw with and without peer rows."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import peers, plots
from skipsr import degrade, resize
from skipsr.evaluation import metrics
from skipsr.evaluation.store import ResultsStore
from skipsr.video import read_video

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def clip():
    """A 64x96 crop of a shipped example (real content) and its clean x4 LR."""
    hr = read_video(ROOT / "examples" / "meadow.mp4", max_frames=3)[:, 96:160, 96:192]
    return hr, resize.to_uint8(degrade.bicubic(resize.to_float(hr), 4))


@pytest.mark.parametrize("name", list(peers.PEERS))
def test_peer_upscales_x4_better_than_nearest_neighbour(name, clip):
    reason = peers.missing_reason(name)
    if reason:
        if os.environ.get("CI"):  # `make test` installs the peers: missing there is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    hr, lr = clip
    out = peers.load(name, threads=2)(lr)
    assert out.shape == hr.shape and out.dtype == np.uint8
    nearest = lr.repeat(4, 1).repeat(4, 2)
    assert metrics.psnr_y(out, hr) > metrics.psnr_y(nearest, hr), name  # GANs (Real-ESRGAN) by little
    if name != "basicvsr":  # frame by frame: one frame alone gives the same output
        assert np.array_equal(peers.load(name, threads=2)(lr[1:2])[0], out[1])


def test_peers_sharing_a_package_have_distinct_run_keys():
    """Real-ESRGAN and animevideov3 ship in one package: their identity (the store's model hash, part
    of the run key) must still differ, or the sweep would take one's row for the other's."""
    identities = [peers.PEERS[n].identity() for n in peers.PEERS]
    assert len(set(identities)) == len(identities)


def test_a_missing_peer_is_skipped_with_its_reason(monkeypatch):
    monkeypatch.setattr(peers, "package_dir", lambda name: None)
    reason = peers.missing_reason("span")
    assert "not installed" in reason and peers.INSTALL in reason
    assert peers.missing_reason("bicubic") is None  # needs nothing
    runnable, skipped = peers.select(["bicubic", "span"])
    assert runnable == ["bicubic"] and set(skipped) == {"span"}
    with pytest.raises(ValueError, match="unknown peer"):
        peers.select(["nope"])
    with pytest.raises(ValueError, match="not installed"):
        peers.load("dat-light")


@pytest.mark.slow
def test_sweep_writes_peer_rows_and_the_curves_draw_with_and_without_them(tmp_path, clip, tiny_checkpoint):
    from skipsr.video import write_video

    hr, _ = clip
    write_video(tmp_path / "c.mp4", hr, 24, crf=10)
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "analysis.sweep", "--clips", str(tmp_path / "c.mp4"), "--tau", "2", "4", "--mask",
           "oracle", "--frames", "3", "--no-vmaf", "--json", "--checkpoint", str(tiny_checkpoint),
           "--degradation", "bicubic", "realistic", "--results", str(results)]
    without = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert without.returncode == 0, without.stderr[-3000:]
    ours = ResultsStore(results).read()
    figs = (plots.skip_cost_vs_speedup(ours, mask="oracle"), plots.quality_vs_speed(ours),
            plots.skip_ratio_by_mask(ours))
    assert [len(f.data) > 0 for f in figs] == [True, True, True]
    assert not any(t.name == "peers" for t in figs[1].data)

    res = subprocess.run(cmd + ["--peers", "bicubic"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.strip().splitlines()[-1])["rows_written"] == 2  # the model's rows were there
    df = ResultsStore(results).read()
    peer_rows = df[df["method"] == "bicubic"]
    assert sorted(peer_rows["degradation"]) == ["bicubic", "realistic"]
    assert peer_rows[["psnr_y", "ssim_y", "lpips", "dists", "warp_error", "t_per_frame_s"]].notna().all().all()
    assert (peer_rows["model_hash"] == "bicubic").all() and (df[df["method"] == "skipsr"]["model_id"] == "tiny").all()
    fig = plots.quality_vs_speed(df, "psnr_y", "realistic")
    peer_trace = next(t for t in fig.data if t.name == "peers")
    assert list(peer_trace.text) == ["bicubic"]
    cost = plots.skip_costs(df, "oracle")
    assert len(cost) == 2 * 2 and cost["speedup"].gt(0).all()  # 2 taus x 2 degradations, each with its no-skip
    assert plots.skip_cost_vs_speedup(pd.DataFrame()).data == ()


def test_the_pareto_front_of_quality_vs_speed_is_monotone():
    """Points from several traces (repeated index labels) still give one front: time up, LPIPS down."""
    rows = [{"method": "skipsr", "model_id": "m", "mask_source": "none", "tau": 0.0, "t_per_frame_s": 1.0, "lpips": 0.2},
            {"method": "skipsr", "model_id": "m", "mask_source": "predicted", "tau": 2.0, "t_per_frame_s": 0.5, "lpips": 0.21},
            {"method": "fast", "model_id": "fast", "mask_source": "none", "tau": 0.0, "t_per_frame_s": 0.1, "lpips": 0.3},
            {"method": "slow", "model_id": "slow", "mask_source": "none", "tau": 0.0, "t_per_frame_s": 5.0, "lpips": 0.25}]
    df = pd.DataFrame([{**r, "degradation": "bicubic", "clip_id": "c", "frames": 1, "t_total_s": r["t_per_frame_s"]}
                       for r in rows])
    front = next(t for t in plots.quality_vs_speed(df).data if t.name == "Pareto front")
    assert list(front.x) == [0.1, 0.5, 1.0] and list(front.y) == [0.3, 0.21, 0.2]
