"""Samplers, the end-to-end pipeline, streaming, tiling, the upscale CLI and the benchmark."""

import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

from media import pattern, write_raw
from skipsr import degrade, diffusion, resize
from skipsr.config import PipelineConfig
from skipsr.pipeline import SkipSRPipeline
from skipsr.streaming import upscale_file
from skipsr.predictor import MaskPredictor
from skipsr.video import probe
from models import TINY as CFG
from models import tiny_model


def lr_hr(t=5, h=64, w=96, seed=0):
    hr = pattern(t, h, w, seed)
    hr[:, :, : w // 2] = 120  # a flat half
    lr = resize.to_uint8(degrade.bicubic(resize.to_float(hr), 4))
    return lr, hr


def test_schedule_and_one_step_sampler():
    ts = diffusion.schedule(4, shift=3.0)
    assert ts[0] == 1 and ts[-1] == 0 and torch.all(ts[1:] < ts[:-1])
    assert diffusion.schedule(1).tolist() == [1.0, 0.0]
    calls = []
    x0 = torch.full((2, 3), 0.25)
    out = diffusion.sample_euler(lambda x, t: calls.append(t) or x0, torch.randn(2, 3), diffusion.schedule(1))
    assert calls == [1.0] and torch.equal(out, x0)
    # with a perfect denoiser every Euler step lands on the straight path: x_t = (1 - t) x0 + t eps
    eps = torch.randn(2, 3)
    out = diffusion.sample_euler(lambda x, t: x0, eps.clone(), diffusion.schedule(7),
                                 callback=lambda i, t, x0_hat: None)
    torch.testing.assert_close(out, x0)
    with pytest.raises(ValueError):
        diffusion.schedule(0)


def test_seeded_runs_are_bit_identical_and_seed_matters():
    pipe = SkipSRPipeline(tiny_model(CFG))
    lr, hr = lr_hr()
    a = pipe(lr, tau=3, mask="oracle", steps=3, seed=7, hr=hr)
    b = pipe(lr, tau=3, mask="oracle", steps=3, seed=7, hr=hr)
    c = pipe(lr, tau=3, mask="oracle", steps=3, seed=8, hr=hr)
    assert np.array_equal(a.video, b.video)
    assert not np.array_equal(a.video, c.video)


def test_compose_skipped_tokens_are_bicubic_and_kept_tokens_refined():
    pipe = SkipSRPipeline(tiny_model(CFG))
    lr, hr = lr_hr()
    res = pipe(lr, tau=4, mask="oracle", steps=2, hr=hr)
    assert res.video.shape == hr.shape and res.frames == 5 and (res.out_h, res.out_w) == hr.shape[1:3]
    assert 0.3 < res.skip_ratio < 0.9 and res.n_tokens == 5 * 4 * 6
    base = resize.up_u8(torch.from_numpy(lr), 4).numpy()
    px = res.skip.repeat_interleave(16, 1).repeat_interleave(16, 2).numpy()  # (T, H, W)
    assert np.array_equal(res.video[px], base[px])  # skipped: exactly the 8-bit bicubic
    assert not np.array_equal(res.video[~px], base[~px])  # kept: the model's residual added
    none = pipe(lr, tau=4, mask="none", steps=2)
    assert none.skip_ratio == 0 and none.timings["predictor"] == 0
    assert np.array_equal(none.video, pipe(lr, tau=0, mask="oracle", steps=2, hr=hr).video)  # tau 0 = no skip


def test_predicted_mask_and_timings():
    torch.manual_seed(0)
    pipe = SkipSRPipeline(tiny_model(CFG), MaskPredictor())
    lr, hr = lr_hr()
    res = pipe(lr, tau=1e6, mask="predicted", hr=hr)
    assert res.skip_ratio == 1.0 and res.pred_skip.all() and res.oracle_skip is not None
    assert res.timings["predictor"] > 0 and res.timings["transformer"] >= 0
    assert set(res.timings) >= {"decode", "predictor", "transformer", "compose", "encode", "total"}
    with pytest.raises(ValueError, match="HR"):
        pipe(lr, mask="oracle")
    with pytest.raises(ValueError, match="uint8"):
        pipe(lr.astype(np.float32))
    with pytest.raises(ValueError, match="tau"):
        pipe(lr, tau=-1, mask="none")


def test_streaming_overlap_covers_every_frame_once():
    pipe = SkipSRPipeline(tiny_model(CFG), config=PipelineConfig(chunk_frames=4, overlap_frames=2))
    lr, hr = lr_hr(t=11)
    whole = pipe(lr, tau=3, mask="oracle", hr=hr)
    assert whole.video.shape[0] == 11
    assert whole.skip.shape[0] == 11  # masks of the frames each window owns
    # windows [0,4) [2,6) [4,8) [6,10) [8,11): 4+4+4+4+3 frames of tokens processed
    assert whole.n_tokens == (4 * 4 + 3) * 4 * 6
    pieces = list(pipe.stream([lr[:3], lr[3:7], lr[7:]], [hr[:5], hr[5:]], tau=3, mask="oracle"))
    assert np.array_equal(np.concatenate(pieces), whole.video)  # chunking of the input does not matter


def test_tiling_matches_untiled_closely():
    model = tiny_model(CFG)
    lr, hr = lr_hr(t=2, h=128, w=192)
    whole = SkipSRPipeline(model)(lr, tau=0, mask="none")
    tiled = SkipSRPipeline(model, config=PipelineConfig(tile_lr_px=24, tile_overlap_lr_px=8))(lr, tau=0, mask="none")
    assert tiled.n_tokens > whole.n_tokens  # overlaps are computed twice
    mse = np.mean((tiled.video.astype(float) - whole.video.astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 25


def test_upscale_file_keeps_fps_audio_and_frame_count(tmp_path):
    lr, hr = lr_hr(t=7)
    src = write_raw(tmp_path / "lr.mp4", lr, fps=Fraction(30000, 1001), audio_s=0.3, codec_options={"crf": "0"})
    res = upscale_file(SkipSRPipeline(tiny_model(CFG), config=PipelineConfig(chunk_frames=4)), str(src), str(tmp_path / "out.mp4"),
                       tau=0, mask="none")
    info = probe(tmp_path / "out.mp4")
    assert (info.frames, info.width, info.height, info.fps, info.has_audio) == (7, 96, 64, Fraction(30000, 1001), True)
    assert res.frames == 7 and res.video is None and res.timings["encode"] > 0


def run_cli(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True)


@pytest.mark.slow
def test_upscale_cli_json(tmp_path):
    lr, hr = lr_hr(t=3)
    src = write_raw(tmp_path / "lr.mp4", lr, codec_options={"crf": "0"})
    hr_path = write_raw(tmp_path / "hr.mp4", hr, codec_options={"crf": "0"})
    model = tmp_path / "m.safetensors"
    from skipsr import checkpoint

    checkpoint.save(tiny_model(CFG), model, {"id": "tiny-test"})
    res = run_cli("-m", "skipsr", "upscale", src, tmp_path / "o.mp4", "--scale", 4, "--tau", 4, "--mask", "oracle",
                  "--hr", hr_path, "--steps", 1, "--seed", 0, "--checkpoint", model, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert {"skip_ratio", "n_tokens", "n_kept", "frames", "out_w", "out_h", "timings"} <= set(out)
    assert (out["frames"], out["out_w"], out["out_h"], out["n_tokens"]) == (3, 96, 64, 3 * 4 * 6)
    assert out["n_kept"] == round(out["n_tokens"] * (1 - out["skip_ratio"]))
    assert out["model"] == "tiny-test" and out["timings"]["total"] > 0
    bad = run_cli("-m", "skipsr", "upscale", src, tmp_path / "o2.mp4", "--mask", "oracle", "--checkpoint", model)
    assert bad.returncode == 2 and "--hr" in bad.stderr
    bad = run_cli("-m", "skipsr", "upscale", src, tmp_path / "o3.mp4", "--scale", 2, "--checkpoint", model)
    assert bad.returncode == 2 and "x4 model" in bad.stderr


def test_checkpoint_save_load_round_trip(tmp_path):
    from skipsr import checkpoint

    model = tiny_model(CFG)
    checkpoint.save(model, tmp_path / "m.safetensors", {"id": "x", "steps": 3})
    loaded, card = checkpoint.load(tmp_path / "m.safetensors")
    assert card["steps"] == 3 and card["kind"] == "skipsr" and loaded.cfg == model.cfg
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "missing.safetensors")


@pytest.mark.slow
def test_bench_command_reports_ratios():
    res = run_cli("-m", "analysis.bench", "--frames", 2, "--repeats", 3, "--tau", 4, "--no-quality", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for key in ("skip_ratio", "ideal_speedup", "speedup_transformer", "transformer_efficiency", "speedup_e2e",
                "speedup_cli", "s_per_frame_skip", "s_per_frame_noskip", "t_e2e_noskip_s", "t_e2e_skip_s", "frames",
                "out_w", "out_h", "tau"):
        assert key in out
    assert (out["out_w"], out["out_h"], out["frames"]) == (1280, 720, 2)
    assert 0.5 < out["skip_ratio"] < 0.7
    assert out["ideal_speedup"] == pytest.approx(1 / (1 - out["skip_ratio"]))
    # the whole path (file to file) does the pipeline's work and more, partly overlapped: not much faster
    assert out["s_per_frame_noskip"] * out["frames"] >= 0.8 * out["t_e2e_noskip_s"]
    assert out["t_cli_transformer_noskip_s"] > 0 and out["t_cli_encode_skip_s"] >= 0


@pytest.mark.slow
def test_bench_takes_a_clip_at_a_height(tmp_path):
    clip = tmp_path / "hr.mp4"
    write_raw(clip, pattern(2, 180, 320))
    res = run_cli("-m", "analysis.bench", "--clip", clip, "--height", 540, "--frames", 2, "--no-quality",
                  "--no-whole-path", "--model", "distilled", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert (out["out_w"], out["out_h"]) == (960, 536) and out["clip_size"] == [320, 180]  # sides: multiples of 8
    assert "speedup_cli" not in out


@pytest.mark.slow
def test_bench_presets_time_the_conversion_and_every_preset(tmp_path):
    """`bench --presets`: the RGB to I420 conversion alone first, then each x264 preset's time, size and
    PSNR-Y; faster presets make bigger files at CRF 18 (ultrafast vs medium)."""
    clip = tmp_path / "hr.mp4"
    write_raw(clip, pattern(2, 180, 320))
    res = run_cli("-m", "analysis.bench", "--presets", "--clip", clip, "--frames", 2, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    rows = {r["preset"]: r for r in out["presets"]}
    assert out["presets"][0]["preset"] == "conversion only" and out["chosen"] in rows
    assert set(rows) == {"conversion only", "ultrafast", "superfast", "veryfast", "faster", "fast", "medium"}
    assert all(r["s_per_frame"] > 0 for r in rows.values())
    assert rows["ultrafast"]["kb_per_frame"] > rows["medium"]["kb_per_frame"] and rows["medium"]["psnr_y"] > 35


def test_bf16_autocast_runs_close_to_fp32():
    lr, _ = lr_hr(t=2)
    model = tiny_model(CFG)
    fp32 = SkipSRPipeline(model)(lr, tau=4, mask="none", steps=1)
    bf16 = SkipSRPipeline(model, config=PipelineConfig(precision="bf16"))(lr, tau=4, mask="none", steps=1)
    from skipsr.evaluation.metrics import psnr_y

    assert 30 < psnr_y(bf16.video, fp32.video) < 99  # rounded differently, and close
    with pytest.raises(ValueError, match="precision"):
        PipelineConfig(precision="fp8")


def test_windows_cover_the_video_as_a_stream_does():
    from skipsr.stream import windows

    assert windows(20, 8, 2) == [(0, 8), (6, 8), (12, 8)]  # the last 2 frames are the third window's
    assert windows(23, 8, 2) == [(0, 8), (6, 8), (12, 8), (18, 5)]
    assert windows(5, 8, 2) == [(0, 5)] and windows(8, 8, 2) == [(0, 8)]


@pytest.mark.slow
def test_ray_engine_equals_the_local_stream_bit_for_bit(tmp_path, tiny_checkpoint):
    """Each window on a Ray actor (1 torch thread), cross-faded by the driver: the frames equal the
    local stream's at the same thread count, and the command writes the same frame count."""
    from skipsr.ray_engine import ray_frames

    lr = pattern(21, 24, 32)
    src = tmp_path / "lr.mp4"
    write_raw(src, lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pipe = SkipSRPipeline.from_pretrained(str(tiny_checkpoint), load_predictor=False, chunk_frames=8)
        from skipsr.video import iter_chunks

        local = np.concatenate(list(pipe.stream(iter_chunks(str(src), chunk_frames=5), None, 4.0, "none", 1, 3)))
    finally:
        torch.set_num_threads(threads)
    stats = {}
    remote = np.concatenate(list(ray_frames(str(src), model=str(tiny_checkpoint), tau=4.0, mask="none", steps=1,
                                            seed=3, chunk_frames=8, workers=2, stats=stats)))
    assert remote.shape == local.shape == (21, 96, 128, 3)
    assert np.array_equal(remote, local)
    assert stats["windows"] == 4 and stats["workers"] == 2 and stats["frames"] == 21  # (0,8) (6,8) (12,8) (18,3)
    res = run_cli("-m", "skipsr", "upscale", src, tmp_path / "out.mp4", "--engine", "ray", "--model", tiny_checkpoint,
                  "--mask", "none", "--chunk-frames", 8, "--workers", 2, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["frames"] == 21 and probe(tmp_path / "out.mp4").frames == 21
    bad = run_cli("-m", "skipsr", "upscale", src, tmp_path / "o2.mp4", "--engine", "ray", "--mask", "oracle")
    assert bad.returncode == 2 and "oracle" in bad.stderr


def test_bounded_heap_sets_glibc_malloc_options():
    res = run_cli("-c", "from skipsr.heap import bound_heap; print(bound_heap())")
    assert res.returncode == 0 and res.stdout.strip() == "True", res.stderr


def test_window_trace_records_every_window_and_the_trend_finds_a_slope():
    """analysis.memtrace: one record per streamed window (its kept tokens as the stream counts them,
    a peak at or above the RSS before it); the pipeline is itself again afterwards; the trend
    recovers a known slope and scatter, and needs enough windows past the warm-up."""
    from analysis.memtrace import WindowTrace, trend

    pipe = SkipSRPipeline(tiny_model(CFG), config=PipelineConfig(chunk_frames=4, overlap_frames=2))
    lr, hr = lr_hr(t=11)
    with WindowTrace(pipe) as tr:
        stream = pipe.stream([lr], [hr], tau=3, mask="oracle")
        frames = sum(len(f) for f in stream)
    assert frames == 11 and len(tr.windows) == 5  # windows [0,4) [2,6) [4,8) [6,10) [8,11)
    assert sum(w["n_kept"] for w in tr.windows) == stream.result().n_kept
    assert all(w["peak_mb"] >= w["rss_before_mb"] > 0 for w in tr.windows)
    assert "_run_tiled" not in vars(pipe)

    rng = np.random.default_rng(0)
    windows = [{"peak_mb": 1000 + 2.0 * i + rng.normal(0, 5)} for i in range(60)]
    t = trend(windows, warmup=3)
    assert t["windows"] == 57 and abs(t["peak_slope_mb_per_window"] - 2.0) < 0.2
    assert 3 < t["peak_scatter_sd_mb"] < 7
    assert trend(windows[:5], warmup=3) == {}
