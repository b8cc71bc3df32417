"""Plotly figures over the metrics store, shared by the app and the notebook.

Each function takes the store's DataFrame (one row per run) and returns a `plotly` Figure; the
optional `highlight` (a dict with tau, the metric and the time of the current run) marks it.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

QUALITY_LABELS = {"psnr_y": "PSNR-Y (dB)", "ssim_y": "SSIM-Y", "vmaf": "VMAF", "psnr_y_detail": "PSNR-Y, detail tokens (dB)",
                  "psnr_y_vs_noskip": "PSNR-Y vs no-skip output (dB)", "lpips": "LPIPS (lower is better)",
                  "dists": "DISTS (lower is better)", "warp_error": "E*warp x1e-3 (lower is better)",
                  "lpips_vs_noskip": "LPIPS to the no-skip output", "dists_vs_noskip": "DISTS to the no-skip output"}
LOWER_BETTER = {"lpips", "dists", "warp_error", "temporal_error", "lpips_vs_noskip", "dists_vs_noskip"}


def _series(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One line per (clip, model, mask source), sorted by tau, the no-skip run as tau 0 of each."""
    if df.empty:
        return []
    out = []
    skip = df[df["mask_source"] != "none"]
    for (clip, model, mask), g in skip.groupby(["clip_id", "model_id", "mask_source"], sort=True):
        base = df[(df["mask_source"] == "none") & (df["clip_id"] == clip) & (df["model_id"] == model)]
        out.append((f"{clip} / {model} / {mask}", pd.concat([base, g]).sort_values("tau")))
    return out


def _figure(title: str, x: str, y: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white",
                      legend=dict(orientation="h", y=-0.25), margin=dict(l=50, r=20, t=50, b=40))
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
    d = df[df["mask_source"].isin([mask, "none"])]
    cols = [c for c in ("psnr_y", "ssim_y", "lpips", "dists", "warp_error", "vmaf", "psnr_y_vs_noskip",
                        "lpips_vs_noskip", "dists_vs_noskip", "skip_ratio", "t_total_s") if c in d]
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
