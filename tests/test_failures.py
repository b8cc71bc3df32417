"""analysis.failures: the per-clip gaps to a peer and the per-token helpers (the reruns are slow: the
command itself is run by hand, docs/model.md says how)."""

import json

import numpy as np
import pytest

from analysis import failures
from skipsr.cliutil import BadInput


def numbers(jod, lpips=0.2, dists=0.2):
    return {"jod": jod, "lpips": lpips, "dists": dists, "psnr_y": 30.0}


def test_per_clip_sorts_by_the_jod_gap_and_names_the_content():
    methods = {"per_clip": {"bicubic": {
        "pattern-stripes-1001": {"distilled no-skip": numbers(5.0), "distilled @tau 2": numbers(5.1),
                                 "span": numbers(7.0, 0.1, 0.1)},
        "mate-backgrounds__Aqua_0": {"distilled @tau 2": numbers(8.0), "span": numbers(7.9)}}}}
    rows = failures.per_clip(methods, "distilled", "span")["bicubic"]
    assert [r["clip"] for r in rows] == ["pattern-stripes-1001", "mate-backgrounds__Aqua_0"]
    assert rows[0]["jod_gap"] == pytest.approx(1.9) and rows[1]["jod_gap"] == pytest.approx(-0.1)
    assert rows[0]["lpips_gap"] == pytest.approx(0.1) and rows[0]["content"].startswith("periodic stripes")
    with pytest.raises(BadInput, match="--models adversarial"):
        failures.per_clip(methods, "adversarial", "span")
    with pytest.raises(BadInput, match="per-clip"):
        failures.per_clip({"quality": {}}, "distilled", "span")


def test_token_mean_and_the_worst_window():
    maps = np.zeros((1, 64, 64))
    maps[0, 32:48, 16:32] = 1.0  # one token
    tokens = failures.token_mean(maps, 16)
    assert tokens.shape == (1, 4, 4) and tokens[0, 2, 1] == 1.0 and tokens.sum() == 1.0
    crop = failures.worst_window(tokens[0], 16, 32)
    window = crop(maps[0][..., None])  # (32, 32, 1) around the token where the map is highest
    assert window.shape == (32, 32, 1) and window.sum() == 16 * 16


def test_methods_files_merge_per_clip(tmp_path):
    a = {"per_clip": {"bicubic": {"c1": {"span": numbers(7.0)}}}}
    b = {"per_clip": {"bicubic": {"c1": {"new @tau 2": numbers(7.2)}}}}
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    merged = failures.merge_methods([tmp_path / "a.json", tmp_path / "b.json"])
    rows = failures.per_clip(merged, "new", "span")["bicubic"]
    assert rows[0]["jod_gap"] == pytest.approx(-0.2)
    with pytest.raises(BadInput, match="no "):
        failures.merge_methods([tmp_path / "missing.json"])


def test_capacity_probe_memorises_its_crops(capsys):
    """analysis.capacity on two tiny crops: the copy trained on them gets closer to them than before."""
    from analysis import capacity, peers

    reason = peers.missing_reason("span")
    if reason:
        pytest.skip(reason)
    assert capacity.main(["--crops", "2", "--crop", "64", "--frames", "1", "--steps", "30", "--lr", "1e-3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["psnr_memorised"] > out["psnr_model"] and out["psnr_peer"] > out["psnr_bicubic"]
