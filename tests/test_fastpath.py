"""The fast path for skipped tokens: bicubic at init, only skipped tokens change, a checkpoint kind."""

import numpy as np
import pytest
import torch

from media import pattern
from models import TINY, tiny_model
from skipsr import checkpoint, degrade, masks, resize
from skipsr.fastpath import FastPath, FastPathConfig
from skipsr.pipeline import SkipSRPipeline


def lr_clip():
    hr = pattern(2, 64, 96, seed=3)
    hr[:, :, 48:] = 90  # a flat strip: tokens there are skipped
    return hr, resize.to_uint8(degrade.bicubic(resize.to_float(hr), 4))


def randomised(fp: FastPath) -> FastPath:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in fp.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return fp.eval()


def test_a_fresh_fast_path_is_bicubic():
    _, lr = lr_clip()
    fp = FastPath(FastPathConfig()).eval()
    lr_u8 = torch.from_numpy(lr)
    assert torch.equal(fp.upscale_u8(lr_u8), resize.up_u8(lr_u8, 4))
    model = tiny_model(TINY)
    plain = SkipSRPipeline(model)(lr, tau=4.0, mask="oracle", hr=lr_clip()[0], steps=1)
    with_fp = SkipSRPipeline(model, fastpath=fp)(lr, tau=4.0, mask="oracle", hr=lr_clip()[0], steps=1)
    assert np.array_equal(plain.video, with_fp.video) and with_fp.timings["fastpath"] > 0


def test_the_fast_path_replaces_bicubic_on_skipped_tokens_only():
    hr, lr = lr_clip()
    model, fp = tiny_model(TINY), randomised(FastPath(FastPathConfig(channels=8, blocks=1)))
    plain = SkipSRPipeline(model)(lr, tau=4.0, mask="oracle", hr=hr, steps=1)
    res = SkipSRPipeline(model, fastpath=fp)(lr, tau=4.0, mask="oracle", hr=hr, steps=1)
    assert 0 < res.skip_ratio < 1 and torch.equal(res.skip, plain.skip)
    skipped = masks.mask_to_pixels(res.skip, *hr.shape[:3], TINY.token_px).numpy()  # (T, H, W) bool
    assert np.array_equal(res.video[~skipped], plain.video[~skipped])  # kept: bicubic + residual, unchanged
    fast = fp.upscale_u8(torch.from_numpy(lr)).numpy()
    assert np.array_equal(res.video[skipped], fast[skipped]) and not np.array_equal(fast[skipped], plain.video[skipped])


def test_the_8_bit_upscale_is_the_float_network_rounded():
    """upscale_u8 (the tail reordered so no pixel-shuffle pass is needed, one frame at a time) gives
    the float network's output, bicubic_u8 + 255 x residual, rounded: at most 1 level off where float
    sums round the other way, at both scales and both tail kernels."""
    _, lr = lr_clip()
    lr_u8 = torch.from_numpy(lr)
    for scale, k in ((4, 3), (2, 3), (4, 1)):
        fp = randomised(FastPath(FastPathConfig(scale=scale, channels=8, blocks=2, tail_kernel=k)))
        base = resize.up_u8(lr_u8, scale)  # (T, sH, sW, 3) uint8
        with torch.no_grad():
            res = fp.residual(lr_u8.permute(0, 3, 1, 2).float() / 255).permute(0, 2, 3, 1)  # (T, sH, sW, 3)
        expect = (base.float() + 255 * res).round().clamp(0, 255)
        diff = (fp.upscale_u8(lr_u8, base).float() - expect).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3 and res.abs().max() > 0.05


def test_fast_path_checkpoint_round_trip_and_bad_settings(tmp_path):
    fp = randomised(FastPath(FastPathConfig(channels=8, blocks=2)))
    checkpoint.save(fp, tmp_path / "fp.safetensors", {"id": "fp-test"})
    loaded, card = checkpoint.load(tmp_path / "fp.safetensors")
    assert card["kind"] == "fastpath" and isinstance(loaded, FastPath) and loaded.cfg == fp.cfg
    lr = torch.from_numpy(lr_clip()[1])
    assert torch.equal(loaded.upscale_u8(lr), fp.upscale_u8(lr))
    with pytest.raises(ValueError, match="x2"):
        SkipSRPipeline(tiny_model(TINY), fastpath=FastPath(FastPathConfig(scale=2)))  # a x4 model with a x2 fast path


def test_a_model_card_names_the_fast_path_it_runs_with(tmp_path):
    """from_pretrained loads the card's companions (fast path); "none" overrides it; a companion that
    is missing is an error that names it."""
    fp = randomised(FastPath(FastPathConfig(channels=8, blocks=1)))
    checkpoint.save(fp, tmp_path / "fp.safetensors", {"id": "fp-test"})
    checkpoint.save(tiny_model(TINY), tmp_path / "m.safetensors", {"id": "m-test",
                    "companions": {"fastpath": str(tmp_path / "fp.safetensors")}})
    pipe = SkipSRPipeline.from_pretrained(str(tmp_path / "m.safetensors"), load_predictor=False)
    assert pipe.cards.fastpath.id == "fp-test" and pipe.fastpath is not None
    assert pipe.cards.companions["fastpath"] == tmp_path / "fp.safetensors"
    plain = SkipSRPipeline.from_pretrained(str(tmp_path / "m.safetensors"), load_predictor=False, fastpath="none")
    assert plain.fastpath is None and plain.cards.fastpath.id is None
    checkpoint.update_card(tmp_path / "m.safetensors", {"companions": {"fastpath": "gone.safetensors"}})
    with pytest.raises(FileNotFoundError, match="gone.safetensors"):
        SkipSRPipeline.from_pretrained(str(tmp_path / "m.safetensors"), load_predictor=False)
    assert checkpoint.companion_name(checkpoint.CHECKPOINT_DIR / "fastpath_cpu.safetensors") == "fastpath_cpu.safetensors"
    assert checkpoint.companion_name(tmp_path / "fp.safetensors") == str((tmp_path / "fp.safetensors").resolve())
    assert checkpoint.companion_name(None) is None and checkpoint.companion_name("prior") == "prior"


@pytest.mark.slow
def test_the_compiled_frame_step_gives_the_same_bytes():
    """`compile_frames` (torch.compile of the per-frame step, `upscale --compile`): the same uint8 output."""
    from torch._dynamo.utils import counters

    _, lr = lr_clip()
    lr_u8 = torch.from_numpy(lr)
    fp = randomised(FastPath(FastPathConfig(scale=4, channels=8, blocks=2, tail_kernel=1)))
    eager = fp.upscale_u8(lr_u8)
    before = counters["stats"]["unique_graphs"]
    compiled = fp.compile_frames().upscale_u8(lr_u8)
    assert counters["stats"]["unique_graphs"] > before  # it ran compiled
    assert (compiled.int() - eager.int()).abs().max() <= 1 and (compiled != eager).float().mean() < 1e-3
