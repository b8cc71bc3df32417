"""LPIPS and DISTS on offline weights (docs: README "Metrics").

- LPIPS v0.1 (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
  Metric"): unit-normalised AlexNet (default) or VGG16 features of both images, squared
  difference, learned 1x1 heads, spatial mean, summed over 5 layers. Inputs scaled to [-1, 1], then
  the LPIPS scaling layer.
- DISTS (Ding et al. 2020, "Image Quality Assessment: Unifying Structure and Texture
  Similarity"): VGG16 with L2 pooling instead of max pooling; per channel, a texture term
  (global means) and a structure term (global variances and covariance), weighted by the learned
  alpha / beta; 1 - similarity.

Both follow pyiqa's implementations layer by layer (the calibration test reproduces pyiqa's
published scores); the weights come from `skipsr.metric_weights`. Each metric splits into
`features(x)` and `distance(f0, f1)`, so a video compared with several references is passed
through the backbone once per frame (`video_distances`).

Images: float (N, 3, H, W) RGB in [0, 1].
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from skipsr.evaluation import metric_weights

LPIPS_NETS = ("alex", "vgg")
# torchvision `features` slices whose outputs LPIPS reads (relu1..relu5 / relu1_2..relu5_3)
LPIPS_SLICES = {"alex": (2, 5, 8, 10, 12), "vgg": (4, 9, 16, 23, 30)}


def _backbone(net: str) -> nn.Sequential:
    """torchvision's AlexNet / VGG16 `features` (no weights from a hub), loaded from the converted cache."""
    name = {"alex": "alexnet", "vgg": "vgg16"}[net]
    features = (torchvision.models.alexnet if net == "alex" else torchvision.models.vgg16)(weights=None).features
    features.load_state_dict(metric_weights.load(name))
    return features.eval().requires_grad_(False)


class LPIPS(nn.Module):
    """LPIPS v0.1. forward(x, y) -> (N,) distances."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        if net not in LPIPS_NETS:
            raise ValueError(f"LPIPS net must be one of {LPIPS_NETS}, got {net!r}")
        self.net = net
        features = _backbone(net)
        ends = LPIPS_SLICES[net]
        self.slices = nn.ModuleList(features[a:b] for a, b in zip((0, *ends[:-1]), ends))
        heads = metric_weights.load(f"lpips_{net}")
        self.heads = nn.ModuleList(nn.Conv2d(w.shape[1], 1, 1, bias=False) for w in
                                   (heads[f"lin{i}.weight"] for i in range(len(ends))))
        for i, head in enumerate(self.heads):
            head.weight.data.copy_(heads[f"lin{i}.weight"])
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) in [0, 1] -> unit-normalised features of the 5 layers, each (N, C_k, H_k, W_k)."""
        h = ((2 * x - 1) - self.shift) / self.scale
        out = []
        for block in self.slices:
            h = block(h)
            out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def distance(self, f0: list[torch.Tensor], f1: list[torch.Tensor]) -> torch.Tensor:
        """Features of two batches -> (N,) LPIPS."""
        return sum(head((a - b) ** 2).mean((1, 2, 3)) for head, a, b in zip(self.heads, f0, f1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(x), self.features(y))

    def spatial(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) pair -> (N, H, W) LPIPS map (each layer's term upsampled to the input size and
        summed: its mean over pixels is close to `forward`)."""
        size = x.shape[-2:]
        terms = (head((a - b) ** 2) for head, a, b in zip(self.heads, self.features(x), self.features(y)))
        return sum(nn.functional.interpolate(d, size=size, mode="bilinear", align_corners=False) for d in terms)[:, 0]


class L2Pooling(nn.Module):
    """DISTS's anti-aliased pooling: sqrt(hanning-blur(x^2)), stride 2 (replaces VGG's max pooling)."""

    def __init__(self, channels: int):
        super().__init__()
        a = np.hanning(5)[1:-1]
        g = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
        self.register_buffer("filter", (g / g.sum())[None, None].repeat(channels, 1, 1, 1))  # (C, 1, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x**2, self.filter, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTS(nn.Module):
    """DISTS. forward(x, y) -> (N,) distances."""

    CHANNELS = (3, 64, 128, 256, 512, 512)

    def __init__(self):
        super().__init__()
        vgg = _backbone("vgg")
        # stages end at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; each max pool -> L2 pooling
        self.stages = nn.ModuleList([
            vgg[0:4],
            nn.Sequential(L2Pooling(64), vgg[5:9]),
            nn.Sequential(L2Pooling(128), vgg[10:16]),
            nn.Sequential(L2Pooling(256), vgg[17:23]),
            nn.Sequential(L2Pooling(512), vgg[24:30]),
        ])
        w = metric_weights.load("dists")
        total = w["alpha"].sum() + w["beta"].sum()
        self.register_buffer("alpha", w["alpha"] / total)  # (1, 1475, 1, 1)
        self.register_buffer("beta", w["beta"] / total)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) in [0, 1] -> [x, relu1_2, relu2_2, relu3_3, relu4_3, relu5_3]."""
        h = (x - self.mean) / self.std
        out = [x]
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    def distance(self, f0: list[torch.Tensor], f1: list[torch.Tensor]) -> torch.Tensor:
        """Features of two batches -> (N,) DISTS."""
        alphas = torch.split(self.alpha, self.CHANNELS, dim=1)
        betas = torch.split(self.beta, self.CHANNELS, dim=1)
        c1 = c2 = 1e-6
        sim = 0.0
        for a, b, alpha, beta in zip(f0, f1, alphas, betas):
            a_mean, b_mean = a.mean((2, 3), keepdim=True), b.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
            texture = (2 * a_mean * b_mean + c1) / (a_mean**2 + b_mean**2 + c1)
            a_var = ((a - a_mean) ** 2).mean((2, 3), keepdim=True)
            b_var = ((b - b_mean) ** 2).mean((2, 3), keepdim=True)
            cov = (a * b).mean((2, 3), keepdim=True) - a_mean * b_mean
            structure = (2 * cov + c2) / (a_var + b_var + c2)
            sim = sim + (alpha * texture).sum(1) + (beta * structure).sum(1)  # (N, 1, 1)
        return 1 - sim.reshape(-1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(x), self.features(y))


@functools.cache
def lpips_model(net: str = "alex") -> LPIPS:
    return LPIPS(net)


@functools.cache
def dists_model() -> DISTS:
    return DISTS()


def _frame(video: np.ndarray, i: int) -> torch.Tensor:
    """Frame i of a (T, H, W, 3) uint8 video -> (1, 3, H, W) float in [0, 1], channels-last (faster convs)."""
    x = torch.from_numpy(np.array(video[i])).permute(2, 0, 1)[None].float() / 255.0  # a copy: inputs may be read-only
    return x.contiguous(memory_format=torch.channels_last)


def fingerprint(video: np.ndarray) -> str:
    """A short content hash of a video (cache key)."""
    return hashlib.blake2b(np.ascontiguousarray(video).data, digest_size=12).hexdigest() + str(video.shape)


def video_distances(videos: dict[str, np.ndarray], pairs: list[tuple[str, str]], lpips_net: str = "alex",
                    cache: dict | None = None) -> dict[tuple[str, str], dict[str, float]]:
    """LPIPS and DISTS of each (a, b) pair of equally shaped uint8 (T, H, W, 3) videos, means over frames.

    Every video is passed through each backbone once per frame, however many pairs it is in.
    `cache` (optional, a dict the caller keeps, e.g. one per clip): the features of the REFERENCE
    videos (second of a pair), keyed by the video's content and the frame, so a ground truth scored
    against many outputs goes through the backbones once. Memory: ~0.5 GB of features per 720p
    frame and video while a frame is scored, plus what the cache keeps (the same per reference frame).
    Raises metric_weights.MissingWeights when the converted weights are absent.
    """
    names = sorted({n for pair in pairs for n in pair})
    shapes = {videos[n].shape for n in names}
    if len(shapes) != 1:
        raise ValueError(f"videos differ in shape: {sorted(shapes)}")
    lp, ds = lpips_model(lpips_net), dists_model()
    refs = {b for _, b in pairs}
    keys = {n: fingerprint(videos[n]) for n in refs} if cache is not None else {}
    sums = {pair: {"lpips": 0.0, "dists": 0.0} for pair in pairs}
    t_frames = next(iter(shapes))[0]
    with torch.inference_mode():
        for i in range(t_frames):
            feats = {}
            for n in names:
                key = (keys.get(n), lpips_net, i)
                if n in keys and key in cache:
                    feats[n] = cache[key]
                    continue
                x = _frame(videos[n], i)
                feats[n] = (lp.features(x), ds.features(x))
                if n in keys:
                    cache[key] = feats[n]
            for a, b in pairs:
                sums[(a, b)]["lpips"] += float(lp.distance(feats[a][0], feats[b][0]))
                sums[(a, b)]["dists"] += float(ds.distance(feats[a][1], feats[b][1]))
    return {pair: {k: v / t_frames for k, v in s.items()} for pair, s in sums.items()}
