"""Plotly figures over the metrics store, shared by the app and the notebook.

Each function takes the store's DataFrame (one row per run) and returns a `plotly` Figure; the
optional `highlight` (a dict with tau, the metric and the time of the current run) marks it.

The three views a reader needs first (the app's Curves tab):
- `skip_cost_vs_speedup`: x = measured speed-up over the same model's no-skip run on the same clip,
  y = the JOD drop (or the LPIPS rise, the PSNR-Y drop) against that no-skip output; a line per model
  and degradation (mean over clips, min-max band), points labelled with tau; on the JOD view the
  0.1 JOD line of rule v2 and its "no perceptible loss" zone.
- `quality_vs_speed`: quality against seconds per frame for every method: our models at each tau
  (and no-skip) as lines, the peers as labelled markers, the Pareto front dashed.
- `skip_ratio_by_mask`: the share of tokens skipped against tau, predicted mask beside the oracle.
Legends sit to the right of the axes, never over them.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from skipsr.evaluation import metrics

COST_LABELS = {"jod_drop": "JOD drop vs no-skip", "lpips_rise": "LPIPS rise vs no-skip",
               "psnr_y_drop_db": "PSNR-Y drop vs no-skip (dB)"}
QUALITY_LABELS = {"jod": "JOD (ColorVideoVDP; 10 = identical)", "psnr_y": "PSNR-Y (dB)", "ssim_y": "SSIM-Y", "vmaf": "VMAF", "psnr_y_detail": "PSNR-Y, detail tokens (dB)",
                  "psnr_y_vs_noskip": "PSNR-Y vs no-skip output (dB)", "lpips": "LPIPS (lower is better)",
                  "dists": "DISTS (lower is better)", "warp_error": "E*warp x1e-3 (lower is better)",
                  "jod_vs_noskip": "JOD against the no-skip output", "jod_drop": "JOD drop vs no-skip",
                  "lpips_vs_noskip": "LPIPS to the no-skip output", "dists_vs_noskip": "DISTS to the no-skip output"}
LOWER_BETTER = {"lpips", "dists", "warp_error", "temporal_error", "lpips_vs_noskip", "dists_vs_noskip", "jod_drop"}


def _series(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One line per (clip, model, mask source), sorted by tau, the no-skip run as tau 0 of each."""
    if df.empty:
        return []
    df = normalise(df)
    df = df[df["method"] == "skipsr"]
    out = []
    skip = df[df["mask_source"] != "none"]
    for (clip, model, mask), g in skip.groupby(["clip_id", "model_id", "mask_source"], sort=True):
        base = df[(df["mask_source"] == "none") & (df["clip_id"] == clip) & (df["model_id"] == model)]
        out.append((f"{clip} / {model} / {mask}", pd.concat([base, g]).sort_values("tau")))
    return out


def _figure(title: str, x: str, y: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white",
                      legend=dict(x=1.02, y=1, xanchor="left", yanchor="top", font=dict(size=10)),
                      margin=dict(l=50, r=10, t=50, b=40))
    return fig


def _mark(fig: go.Figure, x, y, label: str = "this run") -> None:
    fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers", name=label,
                             marker=dict(size=14, symbol="star", color="crimson", line=dict(width=1))))


def _vs_tau(df: pd.DataFrame, column: str, title: str, y_label: str, highlight: dict | None) -> go.Figure:
    """One line of `column` over tau per series, the current run marked."""
    fig = _figure(title, "tau (8-bit RMSE)", y_label)
    for name, g in _series(df):
        fig.add_trace(go.Scatter(x=g["tau"], y=g[column], mode="lines+markers", name=name))
    if highlight and highlight.get(column) is not None:
        _mark(fig, highlight["tau"], highlight[column])
    return fig


def quality_vs_tau(df: pd.DataFrame, metric: str = "psnr_y", highlight: dict | None = None) -> go.Figure:
    label = QUALITY_LABELS.get(metric, metric)
    return _vs_tau(df, metric, f"{label} vs tau", label, highlight)


def time_vs_tau(df: pd.DataFrame, highlight: dict | None = None) -> go.Figure:
    return _vs_tau(df, "t_total_s", "End-to-end time vs tau", "seconds (this machine)", highlight)


def quality_vs_time(df: pd.DataFrame, metric: str = "psnr_y", highlight: dict | None = None) -> go.Figure:
    """The speed-quality trade-off; the Pareto front of all runs drawn dashed."""
    fig = _figure(f"{QUALITY_LABELS.get(metric, metric)} vs time", "seconds (this machine)",
                  QUALITY_LABELS.get(metric, metric))
    for name, g in _series(df):
        fig.add_trace(go.Scatter(x=g["t_total_s"], y=g[metric], mode="lines+markers", name=name,
                                 text=[f"tau {t:g}" for t in g["tau"]]))
    if not df.empty:
        front = pareto(df, "t_total_s", metric, lower_better=metric in LOWER_BETTER)
        fig.add_trace(go.Scatter(x=front["t_total_s"], y=front[metric], mode="lines", name="Pareto front",
                                 line=dict(dash="dash", color="gray")))
    if highlight and highlight.get(metric) is not None:
        _mark(fig, highlight["t_total_s"], highlight[metric])
    return fig


def skip_ratio_vs_tau(df: pd.DataFrame, highlight: dict | None = None) -> go.Figure:
    return _vs_tau(df, "skip_ratio", "Skip ratio vs tau", "share of tokens skipped", highlight)


def agreement_vs_tau(df: pd.DataFrame) -> go.Figure:
    """Predictor vs oracle: F1 and IoU of the skip set at each tau."""
    fig = _figure("Mask predictor vs oracle", "tau (8-bit RMSE)", "score")
    pred = df[df["mask_source"] == "predicted"] if not df.empty else df
    for (clip, model), g in (pred.groupby(["clip_id", "model_id"]) if not pred.empty else []):
        g = g.sort_values("tau")
        for col in ("pred_f1", "pred_iou"):
            fig.add_trace(go.Scatter(x=g["tau"], y=g[col], mode="lines+markers", name=f"{clip} / {col[5:]}"))
    return fig


def model_means(df: pd.DataFrame, mask: str = "predicted") -> pd.DataFrame:
    """Mean over clips per (model, steps, tau) of the runs with `mask` plus each model's no-skip run (tau 0)."""
    if df.empty:
        return df
    df = normalise(df)
    d = df[(df["method"] == "skipsr") & df["mask_source"].isin([mask, "none"])]
    cols = [c for c in ("jod", "jod_drop", "psnr_y", "ssim_y", "lpips", "dists", "warp_error", "vmaf",
                        "jod_vs_noskip", "psnr_y_vs_noskip", "lpips_vs_noskip", "dists_vs_noskip", "skip_ratio",
                        "t_total_s") if c in d]
    return d.groupby(["model_id", "steps", "tau"])[cols].mean().reset_index()


def models_vs_tau(df: pd.DataFrame, metric: str = "vmaf", mask: str = "predicted") -> go.Figure:
    """One line per model (mean over clips): how each model's quality falls with tau."""
    label = QUALITY_LABELS.get(metric, metric)
    fig = _figure(f"{label} vs tau, by model (mean over clips, {mask} mask)", "tau (8-bit RMSE)", label)
    means = model_means(df, mask)
    if metric not in means or means[metric].isna().all():  # e.g. a sweep run with --no-vmaf
        fig.update_layout(title=f"{label}: not in the store")
        return fig
    for (model, steps), g in (means.groupby(["model_id", "steps"]) if not means.empty else []):
        fig.add_trace(go.Scatter(x=g["tau"], y=g[metric], mode="lines+markers", name=f"{model} ({steps} steps)"))
    return fig


def pareto(df: pd.DataFrame, cost: str, gain: str, lower_better: bool = False) -> pd.DataFrame:
    """Rows not dominated by another (lower cost and better `gain`: higher, or lower with
    `lower_better`), sorted by cost."""
    d = df.dropna(subset=[cost, gain]).sort_values([cost, gain], ascending=[True, lower_better])
    sign = -1 if lower_better else 1
    keep, best = [], float("-inf")
    for idx, r in d.iterrows():
        if sign * r[gain] > best:
            keep.append(idx)
            best = sign * r[gain]
    return d.loc[keep]


# ---- the three views of the Curves tab ---------------------------------------------------------

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
DASH = {"bicubic": "solid", "realistic": "dash"}
RUN_KEY = ["model_id", "degradation", "clip_id", "frames", "steps", "seed"]


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of older schema versions in the current schema's terms: `method` ("skipsr" when absent), seconds per
    frame (t_total_s / frames when absent), degradation ("bicubic" when absent)."""
    if df.empty:
        return df
    df = df.copy()
    df["method"] = df["method"].fillna("skipsr") if "method" in df else "skipsr"
    per_frame = df["t_total_s"] / df["frames"]
    df["t_per_frame_s"] = df["t_per_frame_s"].fillna(per_frame) if "t_per_frame_s" in df else per_frame
    df["degradation"] = df["degradation"].fillna("bicubic") if "degradation" in df else "bicubic"
    return df


def skip_costs(df: pd.DataFrame, mask: str = "predicted") -> pd.DataFrame:
    """Each skip run joined to its model's no-skip run on the same clip: `speedup` (no-skip time /
    skip time, end to end), `jod_drop`, `lpips_rise` and `psnr_y_drop_db` (the skip cost; jod_drop
    None on rows stored before the store had JOD)."""
    df = normalise(df)
    if df.empty:
        return df
    ours = df[df["method"] == "skipsr"]
    for col in ("jod", "lpips"):  # shards written before a metric existed lack its column
        if col not in ours:
            ours = ours.assign(**{col: float("nan")})
    noskip = ours[ours["mask_source"] == "none"][RUN_KEY + ["t_total_s", "jod", "lpips", "psnr_y"]]
    noskip = noskip.drop_duplicates(RUN_KEY, keep="last")
    runs = ours[ours["mask_source"] == mask].merge(noskip, on=RUN_KEY, suffixes=("", "_noskip"))
    runs["speedup"] = runs["t_total_s_noskip"] / runs["t_total_s"]
    runs["jod_drop"] = runs["jod_noskip"] - runs["jod"]
    runs["lpips_rise"] = runs["lpips"] - runs["lpips_noskip"]
    runs["psnr_y_drop_db"] = runs["psnr_y_noskip"] - runs["psnr_y"]
    return runs


def _band(fig: go.Figure, x, lo, hi, color: str, group: str) -> None:
    """A min-max band (over clips) behind a line."""
    fig.add_trace(go.Scatter(x=list(x) + list(x)[::-1], y=list(hi) + list(lo)[::-1], fill="toself", mode="none",
                             fillcolor=color, opacity=0.15, hoverinfo="skip", showlegend=False, legendgroup=group))


def _color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def skip_cost_vs_speedup(df: pd.DataFrame, cost: str = "jod_drop", mask: str = "predicted",
                         highlight: dict | None = None) -> go.Figure:
    """The skip cost against the speed it buys: a line per (model, degradation), mean over clips with
    a min-max band (the band's top is the worst clip, what rule v2 judges), each point labelled with
    its tau; for `jod_drop` the rule's 0.1 JOD line and its "no perceptible loss" zone."""
    if cost not in COST_LABELS:
        raise ValueError(f"cost must be one of {', '.join(COST_LABELS)}, got {cost!r}")
    label = COST_LABELS[cost]
    fig = _figure(f"Skip cost vs speed-up ({mask} mask)", "measured speed-up over no-skip (x)", label)
    runs = skip_costs(df, mask)
    if runs.empty or runs[cost].isna().all():
        fig.update_layout(title=f"{label}: no skip runs with a no-skip partner in the store")
        return fig
    agg = runs.groupby(["model_id", "degradation", "tau"]).agg(
        x=("speedup", "mean"), y=(cost, "mean"), lo=(cost, "min"), hi=(cost, "max")).reset_index()
    for i, (model, g_model) in enumerate(agg.groupby("model_id", sort=True)):
        for degradation, g in g_model.groupby("degradation", sort=True):
            g = g.sort_values("tau")
            group = f"{model}/{degradation}"
            _band(fig, g["x"], g["lo"], g["hi"], _color(i), group)
            fig.add_trace(go.Scatter(x=g["x"], y=g["y"], mode="lines+markers+text", name=f"{model}, {degradation}",
                                     legendgroup=group, text=[f"{t:g}" for t in g["tau"]], textposition="top center",
                                     textfont=dict(size=9), line=dict(color=_color(i), dash=DASH.get(degradation, "dot"))))
    if cost == "jod_drop":
        limit = metrics.MAX_JOD_DROP
        low = min(float(agg["lo"].min()), 0.0)
        fig.add_hrect(y0=low - 0.1 * abs(limit), y1=limit, fillcolor="green", opacity=0.08, line_width=0,
                      annotation_text=f"no perceptible loss (<= {limit:g} JOD)", annotation_position="top left")
        fig.add_hline(y=limit, line=dict(color="green", width=1, dash="dot"))
    else:
        fig.add_hline(y=0.0, line=dict(color="grey", width=1, dash="dot"))
    if highlight and highlight.get(cost) is not None and highlight.get("speedup") is not None:
        _mark(fig, highlight["speedup"], highlight[cost])
    return fig


def _mean_by(d: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    return d.groupby(keys).agg(x=("t_per_frame_s", "mean"), y=(metric, "mean")).reset_index()


def quality_vs_speed(df: pd.DataFrame, metric: str = "lpips", degradation: str = "bicubic",
                     highlight: dict | None = None) -> go.Figure:
    """Quality against seconds per frame (this machine, the sweep's clips) for every method: our models
    at each tau as lines (no-skip is tau 0), the peers as labelled markers, the Pareto front dashed."""
    label = QUALITY_LABELS.get(metric, metric)
    fig = _figure(f"{label} vs seconds per frame ({degradation} input)", "seconds per output frame (log)", label)
    fig.update_xaxes(type="log")
    df = normalise(df)
    if df.empty or metric not in df:
        return fig
    d = df[(df["degradation"] == degradation) & df[metric].notna()]
    ours = d[(d["method"] == "skipsr") & d["mask_source"].isin(["none", "predicted"])]
    points = []
    for i, (model, g) in enumerate(_mean_by(ours, ["model_id", "tau"], metric).groupby("model_id", sort=True)):
        g = g.sort_values("tau")
        fig.add_trace(go.Scatter(x=g["x"], y=g["y"], mode="lines+markers", name=model, line=dict(color=_color(i)),
                                 text=["no-skip" if t == 0 else f"tau {t:g}" for t in g["tau"]],
                                 hovertemplate="%{text}: %{x:.3g} s, %{y:.4g}<extra></extra>"))
        points.append(g)
    peers = _mean_by(d[d["method"] != "skipsr"], ["method"], metric)
    if not peers.empty:
        fig.add_trace(go.Scatter(x=peers["x"], y=peers["y"], mode="markers+text", name="peers", text=peers["method"],
                                 textposition="top center", textfont=dict(size=10),
                                 marker=dict(size=11, symbol="diamond", color="black")))
        points.append(peers)
    if points:
        front = pareto(pd.concat(points, ignore_index=True), "x", "y", lower_better=metric in LOWER_BETTER)
        fig.add_trace(go.Scatter(x=front["x"], y=front["y"], mode="lines", name="Pareto front",
                                 line=dict(dash="dash", color="gray")))
    if highlight and highlight.get(metric) is not None and highlight.get("t_per_frame_s"):
        _mark(fig, highlight["t_per_frame_s"], highlight[metric])
    return fig


def skip_ratio_by_mask(df: pd.DataFrame, highlight: dict | None = None) -> go.Figure:
    """Share of tokens skipped against tau: the predicted mask beside the oracle, per degradation
    (mean over clips, min-max band). The SR model does not change it, so models are pooled."""
    fig = _figure("Skip ratio vs tau: predicted beside oracle", "tau (8-bit RMSE)", "share of tokens skipped")
    df = normalise(df)
    if df.empty:
        return fig
    d = df[(df["method"] == "skipsr") & df["mask_source"].isin(["predicted", "oracle"])]
    per_clip = d.groupby(["mask_source", "degradation", "clip_id", "tau"])["skip_ratio"].mean().reset_index()
    agg = per_clip.groupby(["mask_source", "degradation", "tau"])["skip_ratio"].agg(["mean", "min", "max"]).reset_index()
    for i, ((mask, degradation), g) in enumerate(agg.groupby(["mask_source", "degradation"], sort=True)):
        color = _color(0 if mask == "predicted" else 1)
        _band(fig, g["tau"], g["min"], g["max"], color, f"{mask}/{degradation}")
        fig.add_trace(go.Scatter(x=g["tau"], y=g["mean"], mode="lines+markers", name=f"{mask}, {degradation}",
                                 legendgroup=f"{mask}/{degradation}",
                                 line=dict(color=color, dash=DASH.get(degradation, "dot"))))
    if highlight and highlight.get("skip_ratio") is not None:
        _mark(fig, highlight["tau"], highlight["skip_ratio"])
    return fig


def method_table(df: pd.DataFrame, columns=("t_per_frame_s", "psnr_y", "ssim_y", "lpips", "dists")) -> pd.DataFrame:
    """Mean over clips per (method, degradation): each peer, and each of our models with skipping off
    ("<model> no-skip") and at every tau of the predicted mask ("<model> @tau T")."""
    df = normalise(df)
    if df.empty:
        return df
    d = df[(df["method"] != "skipsr") | df["mask_source"].isin(["none", "predicted"])].copy()
    ours = d["method"] == "skipsr"
    d.loc[ours, "method"] = d.loc[ours].apply(
        lambda r: f"{r['model_id']} no-skip" if r["mask_source"] == "none" else f"{r['model_id']} @tau {r['tau']:g}", axis=1)
    cols = [c for c in columns if c in d]
    return d.groupby(["degradation", "method"])[cols].mean().round(4)
