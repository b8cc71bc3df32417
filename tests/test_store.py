"""Metrics, the Parquet/DuckDB store, sweeps (local and Ray), plots and the notebook."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from media import pattern
from skipsr import checkpoint
from skipsr.evaluation import metrics, store
from skipsr.evaluation.store import KEY_COLUMNS, ResultsStore, run_key
from models import TINY as CFG
from models import tiny_model

ROOT = Path(__file__).resolve().parent.parent


def test_metrics_known_values():
    a = np.full((3, 48, 64, 3), 120, np.uint8)
    a[:, 10:30, 10:40] = pattern(3, 20, 30, texture=False).clip(20, 230)  # no overflow below
    assert metrics.psnr_y(a, a) == float("inf")
    assert metrics.ssim_y(a, a) == pytest.approx(1.0)
    b = a + 4  # +4 in R, G and B: Y moves by 4 * (65.481 + 128.553 + 24.966) / 255
    expect = 20 * np.log10(255 / (4 * 219.0 / 255))
    assert metrics.psnr_y(b, a) == pytest.approx(expect, abs=0.01)
    full = np.ones(a.shape[:3], bool)
    assert metrics.psnr_y_masked(b, a, full) == pytest.approx(expect, abs=0.01)
    assert metrics.psnr_y_masked(b, a, ~full) is None
    assert metrics.temporal_error(a, a) == 0 and metrics.temporal_error(a[:1], a[:1]) is None
    assert metrics.vmaf(a, a) > metrics.vmaf(np.clip(a.astype(int) + np.random.default_rng(0).integers(
        -30, 30, a.shape), 0, 255).astype(np.uint8), a)


def test_run_record_has_every_column_and_explains_its_nulls():
    card, pcard = {"id": "m", "weights_sha256_16": "abc"}, {"id": "p", "weights_sha256_16": "def"}
    kw = dict(origin="test", card=card, predictor_card=pcard, scale=4, clip_id="c", clip_hash="h", frames=3, width=64,
              height=48, degradation="bicubic", tau=2.0, mask_source="oracle", steps=1, seed=0)
    row = store.run_record(**kw, numbers={"psnr_y": 30.0, "skip_ratio": 0.5})
    assert set(store.NUMBER_COLUMNS) <= set(row) and row["model_hash"] == "abc" and row["psnr_y"] == 30.0
    reasons = json.loads(row["null_reasons"])
    assert set(reasons) == {k for k, v in row.items() if v is None}
    assert "no predicted mask" in reasons["pred_f1"]
    noskip = store.run_record(**{**kw, "tau": 0.0, "mask_source": "none"}, numbers={})
    assert json.loads(noskip["null_reasons"])["lpips_vs_noskip"] == "this is the no-skip run itself"
    with pytest.raises(ValueError, match="NUMBER_COLUMNS"):
        store.run_record(**kw, numbers={"psnr_typo": 1.0})


def test_append_and_query(tmp_path):
    st = ResultsStore(tmp_path / "r")
    assert st.read().empty
    st.append([{"clip_id": "a", "tau": 2.0, "psnr_y": 30.0}])
    st.append([{"clip_id": "b", "tau": 4.0, "psnr_y": 31.0, "extra": 1}])  # a new column in a later shard
    df = st.read()
    assert len(df) == 2 and set(df["schema_version"]) == {store.SCHEMA_VERSION} and "extra" in df
    assert st.query("SELECT max(psnr_y) AS m FROM results")["m"][0] == 31.0


def test_run_key_tells_predictors_apart_and_reads_nulls_as_none():
    row = {"model_hash": "m", "predictor_hash": "p1", "clip_hash": "c", "scale": 4, "frames": 3,
           "degradation": "bicubic", "tau": 2.0, "mask_source": "predicted", "steps": 1, "seed": 0}
    assert run_key(row) != run_key({**row, "predictor_hash": "p2"})  # a new predictor is measured anew
    assert run_key({**row, "predictor_hash": None}) == run_key({**row, "predictor_hash": float("nan")})
    assert run_key(row) == run_key({**row, "tau": 2.0000000001})


def test_the_fast_path_and_grain_are_part_of_a_runs_identity(tmp_path):
    card, pcard, fcard = {"id": "m", "weights_sha256_16": "abc"}, {"id": "p"}, {"id": "f", "weights_sha256_16": "fp1"}
    kw = dict(origin="test", card=card, predictor_card=pcard, scale=4, clip_id="c", clip_hash="h", frames=3, width=64,
              height=48, degradation="bicubic", tau=2.0, mask_source="predicted", steps=1, seed=0, numbers={})
    row = store.run_record(**kw, fastpath_card=fcard, grain=1.0)
    assert (row["fastpath_id"], row["fastpath_hash"], row["grain"]) == ("f", "fp1", 1.0)
    keys = {run_key(r) for r in (row, store.run_record(**kw, fastpath_card=fcard, grain=0.0),
                                 store.run_record(**kw, fastpath_card={"weights_sha256_16": "fp2"}, grain=1.0),
                                 store.run_record(**kw))}
    assert len(keys) == 4  # another grain, another fast path, none: each is measured anew
    st = ResultsStore(tmp_path / "r")
    old = {k: row[k] for k in KEY_COLUMNS if k not in ("fastpath_hash", "grain")}  # a schema-1 row lacks them
    st.append([old])
    assert st.done_keys() == {run_key(old)} and run_key(old)[KEY_COLUMNS.index("grain")] is None
    st.append([row])
    assert st.done_keys() == {run_key(old), run_key(row)}


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    import pyarrow.parquet as pq
    from skipsr.evaluation.store import ResultsStore
    st = ResultsStore(sys.argv[1])
    st.append([{"clip_id": "early", "tau": 1.0}])
    real = pq.write_table
    def slow(table, f, **kw):
        f.write(b"PAR1" + b"x" * 1000)  # half a file...
        f.flush()
        print("writing", flush=True)
        time.sleep(60)  # ...and killed here
    pq.write_table = slow
    st.append([{"clip_id": "late", "tau": 2.0}])
""")


def test_writer_killed_mid_write_loses_nothing_earlier(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())  # the unfinished shard exists...
    df = ResultsStore(tmp_path).read()  # ...but is invisible: no partial row
    assert df["clip_id"].tolist() == ["early"]


WRITER = "import sys; from skipsr.evaluation.store import ResultsStore\n" \
         "for i in range(20): ResultsStore(sys.argv[1]).append([{'writer': sys.argv[2], 'i': i}])"


def test_two_writers_at_once_lose_nothing(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), w], cwd=ROOT) for w in ("a", "b")]
    assert all(p.wait() == 0 for p in procs)
    df = ResultsStore(tmp_path).read()
    assert len(df) == 40 and sorted(df.groupby("writer")["i"].apply(sorted).tolist()) == [list(range(20))] * 2


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory, tiny_checkpoint):
    d = tmp_path_factory.mktemp("sweep")
    for name, seed in (("c1", 1), ("c2", 2)):
        frames = pattern(3, 64, 96, seed)
        frames[:, :, 64:] = 100  # a flat strip on the right; the texture stays
        from skipsr.video import write_video

        write_video(d / f"{name}.mp4", frames, 24, crf=10)
    shutil.copy(tiny_checkpoint, d / "m.safetensors")
    shutil.copy(tiny_checkpoint.with_suffix(".json"), d / "m.json")
    return d


def sweep_cmd(d, results, engine="local"):
    return [sys.executable, "-m", "analysis.sweep", "--clips", str(d / "c1.mp4"), str(d / "c2.mp4"),
            "--tau", "2", "4", "--mask", "oracle", "--engine", engine, "--frames", "3", "--no-vmaf", "--json",
            "--checkpoint", str(d / "m.safetensors"), "--results", str(results)]


@pytest.mark.slow
def test_sweep_writes_one_row_per_run_and_resumes(tiny_setup):
    results = tiny_setup / "results_local"
    res = subprocess.run(sweep_cmd(tiny_setup, results), capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.strip().splitlines()[-1])["rows_written"] == 6  # 2 clips x (no-skip + 2 taus)
    df = ResultsStore(results).read()
    assert len(df) == 6 and len(ResultsStore(results).shards()) == 2  # one shard per clip task
    record = ["run_id", "time_utc", "git_sha", "host", "device", "torch_version", "model_id", "model_hash",
              "clip_id", "clip_hash", "scale", "frames", "width", "height", "tau", "mask_source", "steps", "seed",
              "skip_ratio", "t_total_s", "t_transformer_s", "peak_rss_mb", "psnr_y", "ssim_y", "schema_version"]
    assert not df[record].isna().any().any()
    for _, row in df.iterrows():  # every empty cell is explained
        reasons = json.loads(row["null_reasons"])
        assert set(reasons) == {c for c in df.columns if row[c] is None or (isinstance(row[c], float) and np.isnan(row[c]))}
    skip = df[df["mask_source"] == "oracle"]
    assert skip["psnr_y_vs_noskip"].notna().all() and (skip["skip_ratio"] > 0).all()
    if metrics.perceptual_reason() is None:  # make test converts the weights: then every row has them
        assert df[["lpips", "dists", "warp_error"]].notna().all().all()
        assert skip[["lpips_vs_noskip", "dists_vs_noskip"]].notna().all().all()
    noskip = df[df["mask_source"] == "none"].iloc[0]
    assert json.loads(noskip["null_reasons"])["lpips_vs_noskip"] == "this is the no-skip run itself"
    again = subprocess.run(sweep_cmd(tiny_setup, results), capture_output=True, text=True, cwd=ROOT)
    assert json.loads(again.stdout.strip().splitlines()[-1])["rows_written"] == 0
    assert len(ResultsStore(results).read()) == 6


@pytest.mark.slow
def test_ray_engine_gives_the_same_rows(tiny_setup):
    local = ResultsStore(tiny_setup / "results_local").read()
    if local.empty:
        subprocess.run(sweep_cmd(tiny_setup, tiny_setup / "results_local"), check=True, cwd=ROOT, capture_output=True)
        local = ResultsStore(tiny_setup / "results_local").read()
    res = subprocess.run(sweep_cmd(tiny_setup, tiny_setup / "results_ray", "ray"), capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    ray_df = ResultsStore(tiny_setup / "results_ray").read()
    cols = list(KEY_COLUMNS) + ["clip_id", "skip_ratio", "n_kept", "psnr_y", "ssim_y", "psnr_y_vs_noskip"]
    a = local[cols].sort_values(["clip_id", "mask_source", "tau"]).reset_index(drop=True)
    b = ray_df[cols].sort_values(["clip_id", "mask_source", "tau"]).reset_index(drop=True)
    exact = list(KEY_COLUMNS) + ["clip_id", "skip_ratio", "n_kept"]
    assert a[exact].equals(b[exact])
    # Ray tasks run one thread each: float reductions may differ in the last digits
    for col in ("psnr_y", "ssim_y", "psnr_y_vs_noskip"):
        assert np.allclose(a[col].astype(float), b[col].astype(float), rtol=1e-5, equal_nan=True), col


@pytest.mark.slow
def test_plots_and_notebook_run_on_a_store(tiny_setup):
    from analysis import plots

    results = tiny_setup / "results_local"
    if not ResultsStore(results).shards():
        subprocess.run(sweep_cmd(tiny_setup, results), check=True, cwd=ROOT, capture_output=True)
    df = ResultsStore(results).read()
    fig = plots.quality_vs_tau(df, "psnr_y", highlight={"tau": 2.0, "psnr_y": 30.0})
    assert len(fig.data) == 2 * 1 + 1  # a line per clip x model x mask, plus the highlight
    assert len(plots.quality_vs_time(df).data) == 3 and len(plots.skip_ratio_vs_tau(df).data) == 2
    front = plots.pareto(df, "t_total_s", "psnr_y")
    assert front["t_total_s"].is_monotonic_increasing and front["psnr_y"].is_monotonic_increasing

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / "quality_analysis.ipynb", as_version=4)
    os.environ["SKIPSR_RESULTS"] = str(results)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        del os.environ["SKIPSR_RESULTS"]
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "6 runs from" in text


def test_seam_error_sees_an_edge_the_composition_adds():
    import torch

    ref = np.full((2, 32, 48, 3), 100, np.uint8)
    out = ref.copy()
    out[:, :, 16:32] += 10  # the refined middle column of tokens came out brighter
    skip = torch.tensor([[[True, False, True], [True, False, True]]] * 2)
    assert metrics.seam_error(out, ref, skip, 16) == pytest.approx(10.0)
    assert metrics.seam_error(ref, ref, skip, 16) == 0.0
    assert metrics.seam_error(out, ref, torch.zeros_like(skip), 16) is None


@pytest.mark.slow
def test_sweep_over_several_models_keeps_each_at_its_default_steps(tiny_setup):
    from analysis import plots

    checkpoint.save(tiny_model(CFG, seed=7), tiny_setup / "m2.safetensors", {"id": "tiny-two-step", "default_steps": 2})
    results = tiny_setup / "results_models"
    cmd = [sys.executable, "-m", "analysis.sweep", "--clips", str(tiny_setup / "c1.mp4"), "--taus", "2",
           "--mask", "oracle", "--frames", "3", "--no-vmaf", "--results", str(results),
           "--models", str(tiny_setup / "m.safetensors"), str(tiny_setup / "m2.safetensors")]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    df = ResultsStore(results).read()
    assert len(df) == 4  # 2 models x (no-skip + tau 2)
    assert dict(df.groupby("model_id")["steps"].first()) == {"tiny": 1, "tiny-two-step": 2}
    assert len(plots.models_vs_tau(df, "psnr_y", mask="oracle").data) == 2  # one line per model
    assert set(plots.model_means(df, "oracle")["tau"]) == {0.0, 2.0}
    assert len(plots.models_vs_tau(df, "vmaf").data) == 0  # not measured (--no-vmaf): an empty figure


@pytest.mark.slow
def test_bench_and_evaluate_write_rows_like_the_sweep(tiny_setup):
    """One record builder: the bench's and evaluate's rows have the sweep's columns, nulls explained."""
    from skipsr.evaluation import evaluate
    from skipsr.pipeline import SkipSRPipeline
    from skipsr.evaluation.valset import ValClip
    from skipsr.video import read_video

    sweep = tiny_setup / "results_cols"
    subprocess.run(sweep_cmd(tiny_setup, sweep), check=True, cwd=ROOT, capture_output=True)
    bench = tiny_setup / "results_bench"
    res = subprocess.run([sys.executable, "-m", "analysis.bench", "--clip", str(tiny_setup / "c1.mp4"), "--frames", "3",
                          "--tau", "4", "--mask", "oracle", "--checkpoint", str(tiny_setup / "m.safetensors"),
                          "--no-quality", "--json", "--results", str(bench)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    pipe = SkipSRPipeline.from_pretrained(str(tiny_setup / "m.safetensors"), load_predictor=False)
    path = tiny_setup / "c2.mp4"
    hr = read_video(path)
    runs = evaluate.evaluate_clip(pipe, hr, [4.0], 1, 0, "bicubic", oracle=True)
    ev_rows = evaluate.store_rows(pipe, runs, ValClip("c2", hr, 24.0, path), "bicubic", 1, 0)
    assert [(r["mask_source"], r["tau"]) for r in ev_rows] == [("none", 0.0), ("oracle", 4.0)]
    b = ResultsStore(bench).read()
    assert sorted(b["origin"]) == ["bench", "bench"] and set(b["mask_source"]) == {"none", "oracle"}
    assert b["clip_hash"].nunique() == 1 and b["clip_hash"].iloc[0] == ResultsStore(sweep).read().query(
        "clip_id == 'c1'")["clip_hash"].iloc[0]  # the same file hashes the same in every writer
    columns = set(ResultsStore(sweep).read().columns) - {"schema_version"}
    for row in [*b.to_dict("records"), *ev_rows]:
        assert set(row) - {"schema_version"} == columns
        nulls = {k for k, v in row.items() if v is None or (isinstance(v, float) and np.isnan(v))}
        assert set(json.loads(row["null_reasons"])) == nulls
