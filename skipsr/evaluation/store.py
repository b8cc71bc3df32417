"""The metrics store (docs/design.md section 8): append-only Parquet shards read with DuckDB.

Every writer writes its own shard file, first under a temporary name, then renamed: a reader sees
whole shards or nothing, so a writer killed mid-write loses only its own unfinished shard and two
writers never touch the same file. Rows carry `schema_version` and the full reproducibility record
(`run_record`). Reading goes through DuckDB (`read_parquet(..., union_by_name=true)`) into pandas.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

SCHEMA_VERSION = 3  # 2: fastpath_id, fastpath_hash and grain (what skipped tokens show); 3: jod, jod_vs_noskip, jod_drop
SHARD_GLOB = "shard-*.parquet"

# Columns that identify a run: a sweep skips work whose key is already in the store. The predictor
# is part of it (a new predictor gives new predicted masks), and so are the fast path and the grain
# strength (what skipped tokens show). A row of schema 1 lacks the last two: None in its key.
KEY_COLUMNS = ("model_hash", "predictor_hash", "fastpath_hash", "grain", "clip_hash", "scale", "frames", "degradation",
               "tau", "mask_source", "steps", "seed")


@functools.cache
def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict:
    """The machine part of the reproducibility record."""
    return {"git_sha": git_sha(), "host": socket.gethostname(), "device": "cpu" if not torch.cuda.is_available()
            else torch.cuda.get_device_name(0), "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "torch_version": torch.__version__}


# The columns every row has (besides the record of `environment()`), in this order: a number that a
# run did not produce is None, and `null_reasons` says why.
NUMBER_COLUMNS = (
    "skip_ratio", "n_tokens", "n_kept", "padding_waste", "peak_rss_mb",
    "jod", "psnr_y", "ssim_y", "lpips", "dists", "warp_error", "temporal_error", "vmaf", "psnr_y_detail",
    "jod_vs_noskip", "jod_drop", "psnr_y_vs_noskip", "lpips_vs_noskip", "dists_vs_noskip", "seam_error",
    "pred_precision", "pred_recall", "pred_f1", "pred_iou", "pred_pred_skip_ratio", "pred_oracle_skip_ratio",
    "t_decode_s", "t_predictor_s", "t_transformer_s", "t_fastpath_s", "t_compose_s", "t_encode_s", "t_total_s",
    "t_oracle_s",
    "t_per_frame_s",
)
# Why a column may be empty (by column prefix); the skip cost of a no-skip run and the perceptual
# metrics without their weights are explained by `explain_nulls` itself.
NULL_REASONS = {
    "pred_": "no predicted mask in this run (mask source is not 'predicted'), or no ground truth to compare with",
    "temporal_error": "a one-frame clip has no temporal difference",
    "warp_error": "a one-frame clip has no temporal difference",
    "seam_error": "no token was skipped, so there is no refined/skipped border",
    "vmaf": "VMAF not requested (--vmaf / without --no-vmaf)",
    "peak_rss_mb": "not measured by this caller",
    "psnr_y_detail": "no ground truth (an upload)",
}


def explain_nulls(row: dict, reasons: dict[str, str] | None = None) -> str:
    """JSON {column: reason} for every None in the row. `reasons`: the caller's own, by column, with
    "*" for every other column it did not measure (checked after the reasons below that always hold)."""
    from skipsr.evaluation import metrics

    perceptual = metrics.perceptual_reason()
    reasons = reasons or {}
    out = {}
    for col, val in row.items():
        if val is not None:
            continue
        if (col.endswith("_vs_noskip") or col == "jod_drop") and row.get("mask_source") == "none":
            out[col] = "this is the no-skip run itself"
        elif col in reasons:
            out[col] = reasons[col]
        elif perceptual and col.startswith(("lpips", "dists")):
            out[col] = perceptual
        elif row.get("degradation") == "upload" and col in ("jod", "jod_drop", "psnr_y", "ssim_y", "lpips", "dists",
                                                           "warp_error", "temporal_error", "vmaf", "psnr_y_detail"):
            out[col] = "no ground truth (an upload)"
        elif "*" in reasons:
            out[col] = reasons["*"]
        else:
            out[col] = next((r for prefix, r in NULL_REASONS.items() if col.startswith(prefix)), "not measured")
    return json.dumps(out, sort_keys=True)


def file_hash(path: str | os.PathLike) -> str:
    """The clip hash of the record: SHA-256 (16 hex digits) of the source file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def array_hash(video: np.ndarray) -> str:
    """The clip hash of a clip that has no file (generated): SHA-256 (16 hex digits) of its pixels."""
    return hashlib.sha256(np.ascontiguousarray(video).tobytes()).hexdigest()[:16]


def clip_fields(clip_id: str, path: str | os.PathLike | None, hr: np.ndarray, degradation: str) -> dict:
    """The clip columns of a row for an HR clip read from `path` (frames, size of `hr` (T, H, W, 3)); a
    generated clip (path None) is identified by its pixels."""
    return {"clip_id": clip_id, "clip_hash": file_hash(path) if path is not None else array_hash(hr), "frames": int(hr.shape[0]), "width": int(hr.shape[2]),
            "height": int(hr.shape[1]), "degradation": degradation}


def model_identity(card: dict, predictor_card: dict, fastpath_card: dict | None = None,
                   grain: float | None = None) -> dict:
    """The model, predictor and fast-path columns of a row (ids and weight hashes) and the grain
    strength: part of the run key. A peer has no predictor, fast path or grain (None)."""
    fastpath_card = fastpath_card or {}
    return {"model_id": card.get("id"), "model_hash": card.get("weights_sha256_16", card.get("id")),
            "predictor_id": predictor_card.get("id"), "predictor_hash": predictor_card.get("weights_sha256_16"),
            "fastpath_id": fastpath_card.get("id"), "fastpath_hash": fastpath_card.get("weights_sha256_16"),
            "grain": None if grain is None else float(grain)}


def pipeline_fields(pipe) -> dict:
    """The `run_record` arguments that a SkipSRPipeline fixes: its cards, its grain and its scale."""
    cards = pipe.cards
    return {"card": cards.model.raw, "predictor_card": cards.predictor.raw,
            "fastpath_card": cards.fastpath.raw if pipe.fastpath is not None else None, "grain": pipe.grain,
            "scale": pipe.cfg.scale}


def run_record(*, origin: str, method: str = "skipsr", card: dict, predictor_card: dict, scale: int, clip_id: str, clip_hash: str,
               frames: int, width: int, height: int, degradation: str, tau: float, mask_source: str, steps: int,
               seed: int, numbers: dict, reasons: dict[str, str] | None = None, fastpath_card: dict | None = None,
               grain: float | None = None) -> dict:
    """One store row: the reproducibility record, then NUMBER_COLUMNS (None where `numbers` lacks one)
    and `null_reasons` (`reasons`: see `explain_nulls`). `method`: "skipsr", or the peer's name
    (analysis/peers.py) whose `card` is {"id": name, "weights_sha256_16": its package==version};
    `fastpath_card`, `grain`: what skipped tokens show (`pipeline_fields`). Every writer (sweep,
    evaluate, bench, app) builds its rows here, so every row has the same columns."""
    unknown = set(numbers) - set(NUMBER_COLUMNS)
    if unknown:
        raise ValueError(f"run_record: columns not in store.NUMBER_COLUMNS: {sorted(unknown)}")
    row = {"run_id": new_run_id(), "time_utc": dt.datetime.now(dt.timezone.utc).isoformat(), "origin": origin,
           "method": method, **model_identity(card, predictor_card, fastpath_card, grain), "clip_id": clip_id,
           "clip_hash": clip_hash, "scale": scale, "frames": int(frames), "width": int(width), "height": int(height),
           "degradation": degradation, "tau": float(tau), "mask_source": mask_source,
           "steps": int(steps), "seed": int(seed), **environment(),
           **{c: numbers.get(c) for c in NUMBER_COLUMNS}}
    row["null_reasons"] = explain_nulls(row, reasons)
    return row


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


class ResultsStore:
    """A results folder of Parquet shards."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob(SHARD_GLOB)) if self.folder.exists() else []

    def append(self, rows: list[dict], compact_over: int | None = None, max_rows: int | None = None) -> Path | None:
        """Write rows as one new shard (temp name, fsync, rename). Returns its path (None if no rows).
        `compact_over`: when the folder then holds more shards than that, `compact(max_rows)`."""
        if not rows:
            return None
        rows = [{"schema_version": SCHEMA_VERSION, **r} for r in rows]
        path = self._write(pa.Table.from_pylist(rows))
        if compact_over is not None and len(self.shards()) > compact_over:
            return self.compact(max_rows)
        return path

    def compact(self, max_rows: int | None = None, drop_models: tuple[str, ...] = (),
                drop_where: str | None = None) -> Path | None:
        """Merge every shard into one (rows deduplicated by run_id; with `max_rows`, only the newest
        that many kept; the rows of the model ids in `drop_models`, superseded models, left out, and
        those for which the SQL condition `drop_where` is true, e.g. a model's rows measured before
        grain was recorded: "model_id = 'x' AND grain IS NULL"), written before the old shards are
        removed, so a crash loses nothing (a rerun removes the duplicates it leaves). A drop that
        matches no row is refused (ValueError) and changes nothing. Returns the new shard (None when
        the store is empty)."""
        old = self.shards()
        if not old:
            return None
        flag = f"({drop_where}) IS TRUE" if drop_where else "false"
        df = self.query(f"SELECT *, {flag} AS _drop FROM results")  # one read of the shards
        if drop_where and not df["_drop"].any():
            raise ValueError(f"no row of {self.folder} matches {drop_where!r}: nothing to drop")
        df = df[~df.pop("_drop").astype(bool)]
        df = df.sort_values("time_utc", kind="stable").drop_duplicates("run_id", keep="last")
        if drop_models:
            unknown = set(drop_models) - set(df.get("model_id", pd.Series(dtype=object)).dropna())
            if unknown:
                raise ValueError(f"no rows of model(s) {sorted(unknown)} in {self.folder}: nothing to drop")
            df = df[~df["model_id"].isin(drop_models)]
        if max_rows is not None:
            df = df.tail(max(int(max_rows), 0))
        path = self._write(pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False))
        for shard in old:
            shard.unlink(missing_ok=True)
        return path

    def _write(self, table: pa.Table) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"shard-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = self.folder / f".tmp-{name}"
        with open(tmp, "wb") as f:
            pq.write_table(table, f)
            f.flush()
            os.fsync(f.fileno())
        final = self.folder / name
        tmp.replace(final)
        return final

    def query(self, sql: str = "SELECT * FROM results") -> pd.DataFrame:
        """Run SQL over the store's rows (table name `results`) with DuckDB; empty frame if no shard."""
        import duckdb

        if not self.shards():
            return pd.DataFrame()
        con = duckdb.connect()
        pattern = str(self.folder / SHARD_GLOB).replace("'", "''")
        con.execute(f"CREATE VIEW results AS SELECT * FROM read_parquet('{pattern}', union_by_name=true)")
        return con.execute(sql).df()

    def read(self) -> pd.DataFrame:
        return self.query()

    def done_keys(self) -> set[tuple]:
        """Keys (KEY_COLUMNS) of the runs already stored."""
        df = self.read()
        if df.empty:
            return set()
        return {run_key(r) for r in df.reindex(columns=list(KEY_COLUMNS)).to_dict("records")}  # absent: None


def run_key(row: dict) -> tuple:
    """A run's identity: the same key means the same computation (timings aside). A missing value
    (None, or NaN as pandas reads a null back) is None."""

    def value(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        return round(v, 6) if isinstance(v, float) else v

    return tuple(value(row.get(k)) for k in KEY_COLUMNS)


def main(argv: list[str] | None = None) -> int:
    from skipsr import cliutil

    return cliutil.guard(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m skipsr.evaluation.store", description="Maintain a results folder.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compact", help="merge the folder's shards into one (optionally only the newest rows)")
    c.add_argument("folder")
    c.add_argument("--max-rows", type=int, help="keep only the newest N rows")
    c.add_argument("--drop-model", nargs="+", default=[], metavar="MODEL_ID",
                   help="leave out the rows of these model ids (superseded models; git keeps the old shards)")
    c.add_argument("--drop-where", metavar="SQL", help="leave out the rows where this DuckDB condition holds "
                   "(columns of the store, e.g. \"model_id = 'x' AND grain IS NULL\")")
    args = ap.parse_args(argv)
    store = ResultsStore(args.folder)
    if not store.folder.is_dir():
        raise FileNotFoundError(f"no results folder at {store.folder}")
    before = len(store.shards())
    path = store.compact(args.max_rows, tuple(args.drop_model), args.drop_where)
    rows = len(store.read())
    print(f"{store.folder}: {before} shard(s) -> {len(store.shards())} ({rows} rows){': ' + path.name if path else ''}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
