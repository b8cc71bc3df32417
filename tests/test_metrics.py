"""Perceptual metrics (LPIPS, DISTS) on offline weights, their calibration, the warping error, the skip-cost rule."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from media import pattern
from models import need_weights
from skipsr.evaluation import evaluate, metric_weights, metrics, perceptual, warp



def calibration_pairs():
    import pyiqa

    root = Path(pyiqa.__file__).resolve().parent.parent / "ResultsCalibra"  # shipped in pyiqa's wheel
    return root


# pyiqa's published scores of its five TID2013 calibration pairs (ResultsCalibra summary)
PYIQA_LPIPS = {"I03": 0.7237, "I04": 0.2572, "I06": 0.0508, "I08": 0.0521, "I19": 0.4253}
PYIQA_DISTS = {"I03": 0.4742, "I04": 0.1424, "I06": 0.0682, "I08": 0.0287, "I19": 0.3123}


@pytest.mark.slow
def test_converted_weights_reproduce_pyiqa_calibration():
    need_weights()
    from PIL import Image

    root = calibration_pairs()
    got_l, got_d = {}, {}
    for name in PYIQA_LPIPS:
        ref = np.asarray(Image.open(root / "ref_dir" / f"{name}.bmp").convert("RGB"))[None]
        dist = np.asarray(Image.open(root / "dist_dir" / f"{name}.bmp").convert("RGB"))[None]
        d = metrics.perceptual(dist, {"ref": ref})["ref"]
        got_l[name], got_d[name] = d["lpips"], d["dists"]
    for name in PYIQA_LPIPS:
        assert got_l[name] == pytest.approx(PYIQA_LPIPS[name], abs=1e-3), (name, got_l)
        assert got_d[name] == pytest.approx(PYIQA_DISTS[name], abs=1e-3), (name, got_d)


def test_flax_kernels_are_transposed_into_torch_convs():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)  # Flax HWIO
    params = {f"Conv_{i}": {"kernel": kernel, "bias": np.arange(4, dtype=np.float32)} for i in range(13)}
    sd = metric_weights.flax_features(params, "vgg16")
    assert sd["0.weight"].shape == (4, 2, 3, 3) and sd["28.bias"].tolist() == [0, 1, 2, 3]
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    out = torch.nn.functional.conv2d(torch.from_numpy(x), sd["0.weight"], sd["0.bias"])  # (1, 4, 3, 3)
    # output channel o at (0, 0): sum over (ky, kx, i) of x[i, ky, kx] * kernel[ky, kx, i, o] + bias[o]
    want = np.einsum("iyx,yxio->o", x[0, :, :3, :3], kernel) + np.arange(4)
    assert np.allclose(out[0, :, 0, 0].numpy(), want, atol=1e-5)


def test_perceptual_metrics_order_distortions_and_share_features():
    need_weights()
    ref = pattern(2, 64, 96, seed=3)
    rng = np.random.default_rng(0)
    mild = np.clip(ref.astype(int) + rng.integers(-6, 7, ref.shape), 0, 255).astype(np.uint8)
    strong = np.clip(ref.astype(int) + rng.integers(-60, 61, ref.shape), 0, 255).astype(np.uint8)
    same = metrics.perceptual(ref, {"ref": ref})["ref"]
    assert same["lpips"] == pytest.approx(0, abs=1e-6) and same["dists"] == pytest.approx(0, abs=1e-4)
    cache = {}
    d_mild = metrics.perceptual(mild, {"ref": ref}, cache)["ref"]
    d_strong = metrics.perceptual(strong, {"ref": ref, "mild": mild}, cache)
    assert 0 < d_mild["lpips"] < d_strong["ref"]["lpips"] and 0 < d_mild["dists"] < d_strong["ref"]["dists"]
    assert len(cache) == 2 * 2  # the references' features (ref, mild) x 2 frames, nothing else
    again = metrics.perceptual(mild, {"ref": ref}, cache)["ref"]  # from the cache: the same numbers
    assert again == pytest.approx(d_mild, abs=1e-7)
    vgg = perceptual.video_distances({"a": mild, "b": ref}, [("a", "b")], lpips_net="vgg")[("a", "b")]
    assert vgg["lpips"] > 0 and vgg["dists"] == pytest.approx(d_mild["dists"], abs=1e-6)  # DISTS is VGG either way
    x, y = (torch.from_numpy(v).permute(0, 3, 1, 2).float() / 255 for v in (strong, ref))
    net = perceptual.lpips_model("alex")
    spatial = net.spatial(x, y)  # (T, H, W): its mean is close to the scalar LPIPS
    assert spatial.shape == (2, 64, 96)
    assert spatial.mean((1, 2)) == pytest.approx(net(x, y), rel=0.1)


def test_missing_weights_give_null_with_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIPSR_METRIC_WEIGHTS", str(tmp_path / "empty"))
    a = pattern(2, 32, 48)
    q = metrics.quality(a, a)
    assert q["lpips"] is None and q["dists"] is None and q["psnr_y"] == float("inf")
    assert metric_weights.SETUP_COMMAND in metrics.perceptual_reason()
    with pytest.raises(metric_weights.MissingWeights, match="make metric-weights"):
        metric_weights.load("alexnet")


def test_quality_reports_every_number_and_the_skip_cost():
    need_weights()
    ref = pattern(3, 48, 64, seed=1)
    out = np.clip(ref.astype(int) + 5, 0, 255).astype(np.uint8)
    other = ref.copy()
    q = metrics.quality(out, ref, vs={"noskip": other})
    for key in ("jod", "psnr_y", "ssim_y", "lpips", "dists", "warp_error", "temporal_error", "jod_vs_noskip",
                "psnr_y_vs_noskip", "lpips_vs_noskip", "dists_vs_noskip"):
        assert q[key] is not None, key
    assert "vmaf" not in q and q["lpips_vs_noskip"] == pytest.approx(q["lpips"])  # other == ref
    assert q["jod_vs_noskip"] == q["jod"] < 10.0
    assert metrics.quality(out, ref, with_jod=False)["jod"] is None


def shifted(base: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """base moved by (dx, dy) px (bicubic, reflected border): frame b with a[y, x] = b[y + dy, x + dx]."""
    h, w = base.shape[:2]
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(base, xx - dx, yy - dy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("dx,dy", [(2.0, 0.0), (2.5, -1.25), (-3.3, 4.7)])
def test_dis_flow_recovers_synthetic_shifts(dx, dy):
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur((rng.random((160, 200, 3)) * 255).astype(np.float32), (0, 0), 2.0)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)
    a, b = base.clip(0, 255).astype(np.uint8), shifted(base, dx, dy).clip(0, 255).astype(np.uint8)
    flow = warp.optical_flow(a, b)[16:-16, 16:-16]  # away from the borders
    epe = np.sqrt(((flow - [dx, dy]) ** 2).sum(-1)).mean()
    assert epe < 0.5


def test_warp_error_sees_flicker_and_not_motion():
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur((rng.random((96, 128, 3)) * 255).astype(np.float32), (0, 0), 2.0)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)
    hr = np.stack([shifted(base, 1.5 * t, 0.5 * t) for t in range(4)]).clip(0, 255).astype(np.uint8)  # a pan
    flicker = np.clip(hr.astype(int) + np.array([0, 12, -12, 12])[:, None, None, None], 0, 255).astype(np.uint8)
    e_hr, e_flicker = warp.warp_error(hr, hr), warp.warp_error(flicker, hr)
    assert e_hr < 1.0  # the motion itself is followed by the flow: little error
    assert e_flicker > 20 * e_hr and e_flicker > 5.0
    assert warp.warp_error(hr[:1], hr[:1]) is None


def test_default_tau_follows_rule_v2_on_every_clip():
    """Rule v2: a tau passes when NO clip (clean or realistic) loses more than 0.1 JOD to no-skip;
    a mean that passes does not save a clip that fails. LPIPS rises never decide."""
    def clip(drops, lpips_rise=0.05):
        r = {"noskip": {"jod": 8.0, "lpips": 0.2, "dists": 0.1, "psnr_y": 30.0, "warp_error": 1.0, "skip_ratio": 0.0}}
        for tau, drop in zip((1, 2, 3), drops):
            r[f"predicted@{tau:g}"] = {"jod": 8.0 - drop, "lpips": 0.2 + lpips_rise, "dists": 0.1, "psnr_y": 29.0,
                                       "warp_error": 1.2, "skip_ratio": tau / 4}
        return r

    good = {"a": clip([0.0, 0.05, 0.08]), "b": clip([-0.2, -0.1, 0.0])}
    one_bad = {"a": clip([0.0, 0.05, 0.08]), "b": clip([0.02, 0.12, -0.5])}  # mean at tau 2 passes, clip b fails
    tau, rule = evaluate.choose_default_tau({"bicubic": good, "realistic": good}, [1, 2, 3])
    assert tau == 3.0 and rule["meets_rule"] and rule["version"] == 2
    tau, rule = evaluate.choose_default_tau({"bicubic": good, "realistic": one_bad}, [1, 2, 3])
    assert tau == 1.0  # tau 3 passes on every clip again, but tau 2 failed below it
    assert [rule["checks"][t]["ok"] for t in ("1", "2", "3")] == [True, False, True]
    check = rule["checks"]["2"]["realistic"]
    assert check["worst_clip"] == "b" and check["max_jod_drop"] == pytest.approx(0.12)
    assert check["mean_jod_drop"] == pytest.approx(0.085) and check["max_lpips_rise"] == pytest.approx(0.05)
    assert check["clips"]["a"]["warp_error_rise"] == pytest.approx(0.2)
    bad = {"a": clip([0.3, 0.4, 0.5])}
    tau, rule = evaluate.choose_default_tau({"bicubic": bad}, [1, 2, 3])
    assert tau == 0.0 and not rule["meets_rule"]  # nothing passes: skip nothing, and say so
    table = evaluate.per_clip_table(rule, 1.0)
    assert "| a | bicubic | 0.25 | 0.300 | +0.0500 |" in table
    cost = metrics.skip_cost({"jod": 7.95, "lpips": 0.3}, {"jod": 8.0, "lpips": 0.2})
    assert cost["no_perceptible_loss"] and cost["jod_drop"] == pytest.approx(0.05)  # LPIPS does not decide
    assert metrics.skip_cost({"lpips": 0.2}, {"lpips": 0.2})["no_perceptible_loss"] is None  # no JOD: no verdict
