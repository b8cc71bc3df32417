"""The app's comparison without the app: the speed protocol, input fitting, views, sampled metrics,
the streamed stages, the JSON summary and the bounded store."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from media import pattern, write_raw
from models import TINY, tiny_model
from skipsr.evaluation import jod, speed, store
from app import compare, views
from skipsr.pipeline import SkipSRPipeline
from skipsr.video import probe, read_video

ROOT = Path(__file__).resolve().parent.parent


def test_speed_rounds_interleave_and_take_medians():
    pipe = SkipSRPipeline(tiny_model(TINY))
    calls = []
    real = pipe.__call__

    class Spy(SkipSRPipeline):  # records each call's (frames, tau)
        def __call__(self, lr, **kw):
            calls.append((len(lr), kw["tau"]))
            return real(lr, **kw)

    pipe.__class__ = Spy
    lr = pattern(6, 16, 24)
    got = list(speed.rounds(pipe, lr, tau=4.0, mask="none", steps=1, repeats=3, warmup_frames=2))
    assert [s.rounds for s in got] == [1, 2, 3] and got[-1].final and not got[0].final
    assert calls[:2] == [(2, 4.0), (2, 0.0)]  # warm-up on 2 frames, both runs
    order = [tau for _, tau in calls[2:]]
    assert order == [4.0, 0.0, 0.0, 4.0, 4.0, 0.0]  # interleaved: the order alternates each round
    sp = got[-1]
    assert set(sp.medians) == {"skip", "noskip"} and sp.medians["skip"]["total"] > 0
    assert sp.model_compute_s >= sum(sp.medians[k]["total"] for k in ("skip", "noskip"))
    with pytest.raises(ValueError, match="repeats"):
        speed.interleaved(pipe, lr, tau=4.0, mask="none", steps=1, repeats=2)


def test_an_impossible_efficiency_is_flagged_not_shown(tmp_path):
    pipe = SkipSRPipeline(tiny_model(TINY))
    lr = pattern(2, 16, 24)
    sp = speed.interleaved(pipe, lr, tau=1e6, mask="none", steps=1)
    sp.medians["skip"]["transformer"] = sp.medians["noskip"]["transformer"] / 10  # 10x at an ideal of 1x
    assert not sp.reliable
    src = compare.Source(lr=lr, fps=24, clip_id="x", clip_hash="h", degradation="upload")
    cmp = compare.Comparison(source=src, speed=sp, videos={}, stage="speed")
    s = cmp.summary()
    assert s["speedup_transformer"] is None and s["transformer_efficiency"] is None and s["speed_reliable"] is False


@pytest.mark.parametrize("h,w,fit,want", [
    (360, 640, "crop", (270, 480)), (720, 1280, "downscale", (270, 480)), (640, 360, "crop", (480, 270)),
    (200, 1000, "crop", (200, 648)), (270, 480, "crop", (270, 480)), (100, 120, "downscale", (100, 120)),
])
def test_fit_lr_keeps_within_the_cap_and_says_what_it_did(h, w, fit, want):
    lr = pattern(2, h, w)
    out, note = compare.fit_lr(lr, fit)
    assert out.shape[1:3] == want and out.shape[1] * out.shape[2] <= compare.MAX_LR[0] * compare.MAX_LR[1]
    if (h, w) == want:
        assert note is None and out is lr
    else:
        assert f"{w}x{h}" in note and ("centre-cropped" if fit == "crop" else "downscaled") in note
    if fit == "crop" and (h, w) != want:  # the centre, unchanged
        y0, x0 = (h - want[0]) // 2, (w - want[1]) // 2
        assert np.array_equal(out, lr[:, y0: y0 + want[0], x0: x0 + want[1]])


def test_upload_source_trims_and_crops_with_notes(tmp_path):
    path = tmp_path / "big.mp4"
    write_raw(path, pattern(10, 360, 640))
    src = compare.upload_source(path, frames=4, fit="crop")
    assert src.lr.shape == (4, 270, 480, 3) and src.hr is None and src.degradation == "upload"
    assert any("first 4 of 10 frames" in n for n in src.notes) and any("centre-cropped to 480x270" in n for n in src.notes)
    with pytest.raises(ValueError, match="fit"):
        compare.upload_source(path, frames=4, fit="stretch")


def test_views_split_zoom_nearest():
    a, b = np.zeros((2, 8, 10, 3), np.uint8), np.full((2, 8, 10, 3), 100, np.uint8)
    s = views.split_screen(a, b, 0.5)
    assert (s[:, :, :4] == 0).all() and (s[:, :, 6:] == 100).all() and (s[:, :, 4:6] == 255).all()
    up = views.nearest_up(pattern(1, 4, 6), 4)
    assert up.shape == (1, 16, 24, 3) and (up[0, :4, :4] == up[0, 0, 0]).all()
    f = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    z = views.zoom(f, 1.0, 0.0, size=32, factor=2)  # clamped inside the frame: the top-right corner
    assert z.shape == (64, 64, 3) and np.array_equal(z[::2, ::2], f[:32, 168:200])


def test_metric_tiles_sample_frames_and_quadrants():
    v = pattern(16, 720, 1280)
    t = compare.metric_tiles(v)
    assert t.shape == (compare.METRIC_FRAMES * 4, 256, 256, 3)
    assert np.array_equal(t[0], v[0, 180 - 128: 180 + 128, 320 - 128: 320 + 128])
    assert np.array_equal(t[-1], v[15, 540 - 128: 540 + 128, 960 - 128: 960 + 128])
    assert compare.metric_tiles(pattern(1, 64, 96)).shape == (4, 32, 32, 3)  # a small frame: half its side


def test_compare_streams_videos_speed_then_metrics(tmp_path):
    from models import need_weights

    need_weights()
    pipe = SkipSRPipeline(tiny_model(TINY))
    hr = pattern(3, 64, 96)
    hr[:, :, :48] = 120  # a flat half: tokens to skip
    path = tmp_path / "hr.mp4"
    write_raw(path, hr)
    src = compare.example_source(path, pipe, "bicubic", frames=3)
    stages = []
    for cmp in compare.steps(pipe, tmp_path / "out", src, tau=4.0, mask="oracle", steps=1, results=tmp_path / "rows"):
        stages.append(cmp.stage)
        if cmp.stage == "videos":
            assert not cmp.speed.final and not cmp.quality
            assert set(cmp.videos) == {"lr", "bicubic", "skip", "noskip", "hr", "split", "oracle_overlay"}
            assert all(probe(p).frames == 3 for p in cmp.videos.values())
            assert probe(cmp.videos["lr"]).width == 96  # the LR enlarged to the output size
    assert stages == ["videos", "speed", "done"]
    s = cmp.summary()
    for k in ("skip_ratio", "ideal_speedup", "model_compute_s", "wall_s", "speed_reliable"):
        assert s[k] is not None, k
    assert 0 < s["skip_ratio"] < 1 and s["speed_rounds"] == 3
    if s["speed_reliable"]:  # a tiny model's milliseconds are noisy: a busy machine may make them unreliable
        assert s["transformer_efficiency"] <= speed.MAX_EFFICIENCY and s["speedup_e2e"] > 0
    for out in ("bicubic", "noskip", "skip"):
        assert set(s[out]) == {"jod", "psnr_y", "lpips", "dists"} and None not in s[out].values()
        assert s[out]["jod"] <= 10.0
    v = s["verdict"]  # the judge: the skip run's JOD loss to no-skip, the share preferring no-skip, in words
    assert v["jod_drop"] == pytest.approx(s["noskip"]["jod"] - s["skip"]["jod"])
    assert v["no_perceptible_loss"] == (v["jod_drop"] <= jod.MAX_JOD_DROP) and 0.0 <= v["prefer_noskip"] <= 1.0
    assert ("imperceptible" if v["no_perceptible_loss"] else "visible") in v["text"] and "JOD" in v["text"]
    assert s["noskip"]["psnr_y"] == pytest.approx(float(json.loads(json.dumps(s))["noskip"]["psnr_y"]))
    assert cmp.breakdown["answer_s"] <= cmp.breakdown["speed_s"] <= cmp.breakdown["wall_s"]
    rows = store.ResultsStore(tmp_path / "rows").read()
    assert len(rows) == 2 and set(rows["origin"]) == {"app"}
    # what the videos show is what was scored: each decodes closer to its own output than to the other
    from skipsr.evaluation.metrics import psnr_y

    shown = {k: read_video(cmp.videos[k]) for k in ("skip", "noskip")}
    outs = {"skip": cmp.speed.skip.video, "noskip": cmp.speed.noskip.video}
    for k, other in (("skip", "noskip"), ("noskip", "skip")):
        assert psnr_y(shown[k], outs[k]) > max(psnr_y(shown[k], outs[other]), 25)


def test_store_compacts_and_bounds(tmp_path):
    st = store.ResultsStore(tmp_path)
    rows = lambda n: [{"run_id": f"r{n}-{i}", "time_utc": f"2026-01-01T00:00:{n:02d}", "origin": "app", "x": float(i)}
                      for i in range(2)]  # noqa: E731
    for n in range(5):
        st.append(rows(n), compact_over=3, max_rows=6)
    assert len(st.shards()) <= 3
    df = st.read()
    assert len(df) <= 6 + 3 * 2 and "r4-1" in set(df["run_id"])  # bounded: max_rows + the shards before a compaction
    st.compact(max_rows=6)
    assert len(st.read()) == 6 and "r0-0" not in set(st.read()["run_id"])  # the newest kept
    st.append(rows(9))
    st.compact()
    assert len(st.shards()) == 1 and df["run_id"].is_unique


def test_store_compaction_drops_a_superseded_model(tmp_path):
    st = store.ResultsStore(tmp_path)
    st.append([{"run_id": f"r{i}", "time_utc": f"2026-01-01T00:00:0{i}", "model_id": m, "psnr_y": 30.0 + i}
               for i, m in enumerate(["old", "new", "old", None])])
    with pytest.raises(ValueError, match="no rows of model"):
        st.compact(drop_models=("typo",))
    assert len(st.read()) == 4  # a refused drop changes nothing
    st.compact(drop_models=("old",))
    df = st.read()
    assert sorted(df["run_id"]) == ["r1", "r3"] and len(st.shards()) == 1  # a peer row (no model id) stays


def test_store_compaction_drops_the_rows_a_condition_picks(tmp_path):
    """compact(drop_where=SQL): e.g. a model's rows measured before grain was recorded (grain absent)."""
    st = store.ResultsStore(tmp_path)
    st.append([{"run_id": "r0", "time_utc": "2026-01-01T00:00:00", "model_id": "m", "psnr_y": 30.0}])  # schema 1
    st.append([{"run_id": f"r{i}", "time_utc": f"2026-01-01T00:00:0{i}", "model_id": m, "grain": g, "psnr_y": 31.0}
               for i, (m, g) in enumerate([("m", 1.0), ("other", None), (None, None)], start=1)])
    with pytest.raises(ValueError, match="no row"):
        st.compact(drop_where="model_id = 'typo'")
    assert len(st.read()) == 4 and len(st.shards()) == 2  # a refused drop changes nothing
    st.compact(drop_where="model_id = 'm' AND grain IS NULL")
    assert sorted(st.read()["run_id"]) == ["r1", "r2", "r3"] and len(st.shards()) == 1


@pytest.mark.slow
def test_compare_command_prints_the_breakdown():
    res = subprocess.run([sys.executable, "-m", "app.compare", "--example", "meadow", "--frames", "2",
                          "--model", "distilled", "--no-metrics", "--json"], capture_output=True, text=True, cwd=ROOT,
                         check=False)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    bd = out["breakdown"]
    for k in ("input_s", "model_compute_s", "encode_s", "answer_s", "speed_s", "wall_s", "metrics_s", "store_s"):
        assert bd[k] >= 0, k
    assert bd["model_compute_s"] <= bd["wall_s"] and out["summary"]["frames"] == 2
    bad = subprocess.run([sys.executable, "-m", "app.compare", "--example", "no-such-clip"], capture_output=True,
                         text=True, cwd=ROOT, check=False)
    assert bad.returncode == 2 and "no-such-clip" in bad.stderr
