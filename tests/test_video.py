"""Video I/O: round trips, odd inputs, every bad input, streaming memory."""

import hashlib
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from media import pattern, set_mp4_rotation, write_raw
from skipsr.video import VideoError, VideoWriter, iter_chunks, probe, read_video, write_video


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def test_round_trip_keeps_fps_count_size_and_audio(tmp_path):
    src = write_raw(tmp_path / "src.mp4", pattern(30, 64, 96), fps=Fraction(30000, 1001), audio_s=1.0)
    info = probe(src)
    assert info.fps == Fraction(30000, 1001) and info.frames == 30 and (info.width, info.height) == (96, 64)
    assert info.has_audio
    frames = read_video(src)
    out = tmp_path / "out.mp4"
    write_video(out, frames, fps=info.fps, audio_from=src, crf=10)
    back = probe(out)
    assert back.fps == Fraction(30000, 1001)
    assert back.frames == 30 and (back.width, back.height) == (96, 64)
    assert back.has_audio
    assert psnr(read_video(out), frames) > 35
    with av.open(str(out)) as c:  # audio is cut to the video's length (1.0 s of audio, ~1.0 s video)
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac"
        assert float(a.duration * a.time_base) == pytest.approx(30 * 1001 / 30000, abs=0.05)


def test_streaming_chunks_cover_every_frame_in_order(tmp_path):
    frames = pattern(23, 32, 48)
    src = write_raw(tmp_path / "v.mp4", frames, codec="libx264rgb", pix_fmt="rgb24", codec_options={"crf": "0"})
    chunks = list(iter_chunks(src, chunk_frames=5))
    assert [c.shape[0] for c in chunks] == [5, 5, 5, 5, 3]
    assert psnr(np.concatenate(chunks), frames) > 40
    assert sum(c.shape[0] for c in iter_chunks(src, chunk_frames=4, max_frames=9)) == 9


@pytest.mark.parametrize("h,w", [(33, 47), (31, 64), (64, 31)])
def test_odd_sizes_round_trip_exactly_sized(tmp_path, h, w):
    frames = pattern(4, h, w)
    write_video(tmp_path / "odd.mp4", frames, fps=24)
    back = read_video(tmp_path / "odd.mp4")
    assert back.shape == frames.shape
    assert psnr(back, frames) > 30


@pytest.mark.parametrize("deg", [90, 180, 270])
def test_rotation_metadata_is_applied(tmp_path, deg):
    frames = pattern(3, 32, 64)
    path = write_raw(tmp_path / "r.mp4", frames, codec="libx264rgb", pix_fmt="rgb24", codec_options={"crf": "0"})
    set_mp4_rotation(path, deg)
    info = probe(path)
    assert info.rotation == deg
    expect = np.rot90(frames, k=-deg // 90, axes=(1, 2))
    assert (info.height, info.width) == expect.shape[1:3]
    back = read_video(path)
    assert back.shape == expect.shape
    assert psnr(back, expect) > 40


def test_variable_frame_rate_keeps_every_frame(tmp_path):
    frames = pattern(12, 32, 32)
    pts = [0, 1, 2, 4, 5, 8, 9, 10, 13, 14, 15, 17]  # irregular gaps, time base 1/60
    path = write_raw(tmp_path / "vfr.mp4", frames, fps=Fraction(30), pts=pts, time_base=Fraction(1, 60))
    info = probe(path)
    assert info.frames == 12
    back = read_video(path)
    assert back.shape == frames.shape


@pytest.mark.parametrize(
    "codec,pix_fmt,in_format,fmt,ext",
    [
        ("libx264", "yuv444p10le", "rgb48le", "mp4", "mp4"),  # 10-bit
        ("png", "rgba", "rgba", "mov", "mov"),  # alpha
        ("ffv1", "gray", "gray", "matroska", "mkv"),  # grayscale
    ],
)
def test_deep_alpha_gray_inputs_become_rgb8(tmp_path, codec, pix_fmt, in_format, fmt, ext):
    rgb = pattern(3, 32, 48, texture=False)  # smooth: 4:2:0 chroma keeps it
    if in_format == "rgb48le":
        src = rgb.astype(np.uint16) * 257
    elif in_format == "rgba":
        src = np.concatenate([rgb, np.full(rgb.shape[:3] + (1,), 200, np.uint8)], -1)
    else:
        src = rgb[..., 0]
    path = write_raw(tmp_path / f"v.{ext}", src, codec=codec, pix_fmt=pix_fmt, in_format=in_format, fmt=fmt,
                     codec_options={"crf": "0"} if codec == "libx264" else {})
    back = read_video(path)
    assert back.dtype == np.uint8 and back.shape == (3, 32, 48, 3)
    ref = np.repeat(rgb[..., :1], 3, -1) if pix_fmt == "gray" else rgb
    assert psnr(back, ref) > 30


def _bad_files(tmp: Path) -> dict[str, Path]:
    good = write_raw(tmp / "good.mp4", pattern(20, 32, 32))
    files = {}
    files["missing"] = tmp / "nope.mp4"
    (tmp / "empty.mp4").write_bytes(b"")
    files["empty"] = tmp / "empty.mp4"
    (tmp / "text.mp4").write_text("this is not a video\n" * 50)
    files["not a video"] = tmp / "text.mp4"
    (tmp / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    files["corrupt"] = tmp / "noise.mp4"
    data = good.read_bytes()
    (tmp / "cut.mp4").write_bytes(data[: len(data) // 2])
    files["truncated (index at end)"] = tmp / "cut.mp4"
    fast = write_raw(tmp / "fast.mp4", pattern(60, 64, 64), options={"movflags": "faststart"})
    data = fast.read_bytes()
    (tmp / "cutfast.mp4").write_bytes(data[: len(data) // 3])
    files["truncated (index at start)"] = tmp / "cutfast.mp4"
    (tmp / "zero.y4m").write_bytes(b"YUV4MPEG2 W32 H32 F24:1 Ip A1:1 C420jpeg\n")  # header, no frames
    files["zero frames"] = tmp / "zero.y4m"
    audio = av.open(str(tmp / "audio.m4a"), "w", format="mp4")
    a = audio.add_stream("aac", rate=48000)
    af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
    af.sample_rate, af.pts = 48000, 0
    audio.mux(a.encode(af))
    audio.mux(a.encode(None))
    audio.close()
    files["audio only"] = tmp / "audio.m4a"
    files["directory"] = tmp
    return files


def test_every_bad_input_raises_video_error_with_a_message(tmp_path):
    for kind, path in _bad_files(tmp_path).items():
        with pytest.raises(VideoError) as e:
            probe(path)
            list(iter_chunks(path))
        assert len(str(e.value)) > 20, kind
        assert "Traceback" not in str(e.value)


def test_bad_input_messages_name_the_problem(tmp_path):
    files = _bad_files(tmp_path)
    expect = {"missing": "not found", "empty": "empty", "zero frames": "0 decodable frames",
              "audio only": "no video stream", "truncated (index at start)": "truncated", "directory": "directory"}
    for kind, words in expect.items():
        with pytest.raises(VideoError, match=words):
            list(iter_chunks(files[kind]))


def test_writer_leaves_no_partial_file_on_error(tmp_path):
    out = tmp_path / "o.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 24) as w:
            w.write(pattern(3, 32, 32))
            raise RuntimeError("boom")
    assert not out.exists()
    with pytest.raises(ValueError, match="uint8"):
        write_video(out, np.zeros((2, 8, 8, 3), np.float32), 24)


STREAM_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from skipsr.video import iter_chunks, VideoWriter
    n = 0
    with VideoWriter(sys.argv[2], 24, preset="ultrafast") as w:
        for chunk in iter_chunks(sys.argv[1], chunk_frames=8):
            w.write(chunk)
            n += len(chunk)
    print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """
)


def _stream_peak_mb(src: Path, out: Path) -> tuple[int, int]:
    res = subprocess.run([sys.executable, "-c", STREAM_SCRIPT, str(src), str(out)],
                         capture_output=True, text=True, check=True)
    n, mb = res.stdout.split()
    return int(n), int(mb)


def test_streaming_memory_does_not_grow_with_length(tmp_path):
    """Decode + re-encode 40 vs 400 frames of 640x360: peak RSS may not grow with the length.

    Held in memory whole, 400 frames would be 276 MB; streaming keeps the difference small.
    """
    frame = pattern(1, 360, 640)[0]
    for n in (40, 400):
        with VideoWriter(tmp_path / f"long{n}.mp4", 24, preset="ultrafast") as w:
            for i in range(n):
                w.write(np.roll(frame, 4 * i, axis=1))
    n_short, short_mb = _stream_peak_mb(tmp_path / "long40.mp4", tmp_path / "o1.mp4")
    n_long, long_mb = _stream_peak_mb(tmp_path / "long400.mp4", tmp_path / "o2.mp4")
    assert (n_short, n_long) == (40, 400)
    assert long_mb < short_mb + 60, (short_mb, long_mb)



def test_deterministic_encodes_are_bit_identical(tmp_path):
    """x264 in the deterministic mode (one thread, no macroblock tree): the same frames give the same
    bytes, every time, for several contents (identical input was seen to encode differently with
    mbtree on, even single-threaded)."""

    for seed in range(4):
        frames = pattern(12, 72, 96, seed=seed)
        noisy = np.clip(frames.astype(int) + np.random.default_rng(seed).integers(-9, 10, frames.shape), 0, 255)
        digests = set()
        for k in range(3):
            path = tmp_path / f"c{seed}_{k}.mp4"
            write_video(path, noisy.astype(np.uint8), 24, crf=28, deterministic=True)
            digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
        assert len(digests) == 1, f"clip {seed}: {len(digests)} different encodings"


def test_rgb_to_yuv420_is_bt601_limited_range_with_2x2_chroma_means():
    """The encoder's conversion (OpenCV) against the formula in float64: Y per pixel, U and V of each
    2x2 block's mean; a level off in at most a few pixels per million (float rounding at ties)."""
    from skipsr.video import rgb_to_yuv420

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)
    rgb[:20] = [[0, 0, 0]] * 320  # black -> Y 16, U = V = 128
    rgb[20:40] = [[255, 255, 255]] * 320  # white -> Y 235
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    u, v = (p.reshape(90, 2, 160, 2).mean((1, 3)) for p in (u, v))
    want = np.clip(np.rint(np.concatenate([y.ravel(), u.ravel(), v.ravel()])), 0, 255).reshape(270, 320)
    got = rgb_to_yuv420(rgb)
    assert got.dtype == np.uint8 and got.shape == (270, 320)
    assert (got[:20] == 16).all() and (got[20:40] == 235).all() and (got[180:190, :] == 128).all()
    diff = np.abs(got.astype(int) - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-4
