"""A comparison as the app shows it: markdown, tables and the JSON summary, as one JSON-able
`answer` dict, so a fresh run and a cached one are shown by the same code (app/cache.py stores it).

answer = {"stage", "speed_md", "agreement_md", "quality_md", "metrics": [rows], "timings": [rows],
          "summary": {...}, "videos": {view: path}, "frames": n}
"""

from __future__ import annotations

from skipsr.evaluation import jod, metrics, speed
from app.compare import OUTPUTS, Comparison, metrics_scope

OUTPUT_LABELS = {"bicubic": "bicubic", "noskip": "no-skip", "skip": "SkipSR"}


def _num(v, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def speed_md(cmp: Comparison) -> str:
    """The speed line: skip share and ideal at once; measured figures when the protocol is done."""
    sp = cmp.speed
    head = f"**Skipped {100 * sp.skip.skip_ratio:.1f}% of tokens** - ideal speed-up {sp.ideal_speedup:.2f}x"
    if sp.skip.skip_ratio == 1.0:
        head = "**Every token skipped**: the output is the fast path's (lower tau to refine some tokens)"
    if not sp.final:
        body = (f"measuring speed: round {sp.rounds} of {sp.repeats} (skip and no-skip interleaved, after a "
                "warm-up)...")
    elif not sp.reliable:
        body = (f"speed not shown: the measured efficiency {sp.transformer_efficiency:.2f} exceeds "
                f"{speed.MAX_EFFICIENCY} (a skip run cannot beat the ideal; the machine was busy): run again; "
                f"model compute {sp.model_compute_s:.1f} s")
    else:
        body = (f"transformer {sp.speedup_transformer:.2f}x (efficiency {sp.transformer_efficiency:.2f} of the "
                f"ideal), end to end {sp.speedup_e2e:.2f}x; medians of {sp.repeats} interleaved rounds after a "
                f"warm-up, this machine; model compute {sp.model_compute_s:.1f} s")
    lines = [f"{head}; {body}"]
    lines += [f"Input: {n}" for n in cmp.source.notes]
    return "  \n".join(lines)


def quality_md(cmp: Comparison) -> str:
    """JOD / PSNR-Y / LPIPS / DISTS per output and the skip cost in words, judged in JOD (rule v2:
    "imperceptible" within 0.1 JOD of no-skip, "visible" beyond), with the other metrics beside it."""
    if cmp.stage != "done":
        return "scoring the outputs (JOD, PSNR-Y, LPIPS, DISTS)..."
    lines = []
    q, c = cmp.quality, cmp.skip_cost
    if q:
        lines.append(" | ".join(f"{OUTPUT_LABELS[k]}: JOD {_num(q[k].get('jod'), '.2f')}, PSNR-Y "
                                f"{_num(q[k]['psnr_y'], '.2f')} dB, LPIPS {_num(q[k]['lpips'], '.4f')}, DISTS "
                                f"{_num(q[k]['dists'], '.4f')}" for k in OUTPUTS))
        cost = metrics.skip_cost(q["skip"], q["noskip"])
        if cost["no_perceptible_loss"] is not None:
            beside = [f"LPIPS {cost['lpips_rise']:+.4f}" if cost["lpips_rise"] is not None else None,
                      f"DISTS {cost['dists_rise']:+.4f}" if cost["dists_rise"] is not None else None,
                      f"PSNR-Y {-cost['psnr_y_drop_db']:+.2f} dB"]
            lines.append(f"Skip cost: **{jod.verdict_text(cost['jod_drop'])}**; beside it "
                         f"{', '.join(b for b in beside if b)} vs no-skip (the bar: at most {metrics.MAX_JOD_DROP:g} "
                         "JOD below no-skip; 10 JOD = indistinguishable from the ground truth)")
    if c.get("lpips_vs_noskip") is not None:
        lines.append(f"SkipSR vs no-skip: JOD {_num(c.get('jod_vs_noskip'), '.2f')}, LPIPS {c['lpips_vs_noskip']:.4f}, "
                     f"DISTS {c['dists_vs_noskip']:.4f}, PSNR-Y {c['psnr_y_vs_noskip']:.1f} dB")
    elif metrics.perceptual_reason():
        lines.append(f"LPIPS / DISTS unavailable: {metrics.perceptual_reason()}")
    if not q:
        lines.append("An upload has no ground truth: only the skip cost (SkipSR vs no-skip) is known.")
    out = cmp.speed.skip.video
    lines.append(f"({metrics_scope(cmp.frames, out.shape[1], out.shape[2])})")
    return "  \n".join(lines)


def agreement_md(cmp: Comparison) -> str:
    if cmp.agreement is not None:
        a = cmp.agreement
        return (f"predicted vs oracle skip set: F1 {a['f1']:.3f}, IoU {a['iou']:.3f}, skip ratio predicted "
                f"{a['pred_skip_ratio']:.3f} / oracle {a['oracle_skip_ratio']:.3f}")
    if cmp.source.clip is None:
        return "no oracle mask: an upload has no ground truth"
    return {"oracle": "oracle mask used (the predictor was not run)", "none": "mask source 'none': nothing skipped",
            "predicted": "comparing the predicted mask with the oracle..."}[cmp.mask]


def metrics_rows(cmp: Comparison) -> list[dict]:
    rows = [{"output": OUTPUT_LABELS[k], **{m: _round(cmp.quality[k].get(m)) for m in ("jod", "psnr_y", "lpips", "dists")}}
            for k in OUTPUTS if k in cmp.quality]
    if cmp.skip_cost:
        c = cmp.skip_cost
        rows.append({"output": "SkipSR vs no-skip", "jod": _round(c.get("jod_vs_noskip")),
                     "psnr_y": _round(c.get("psnr_y_vs_noskip")),
                     "lpips": _round(c.get("lpips_vs_noskip")), "dists": _round(c.get("dists_vs_noskip"))})
    return rows


def timings_rows(cmp: Comparison) -> list[dict]:
    med = cmp.speed.medians
    return [{"stage": k, "no-skip (s)": round(med["noskip"].get(k, 0.0), 3), "SkipSR (s)": round(v, 3)}
            for k, v in med["skip"].items()]


def _round(v, nd: int = 4):
    return None if v is None else round(float(v), nd)


def answer(cmp: Comparison) -> dict:
    """Everything the app shows of a comparison at its current stage, JSON-able."""
    return {"stage": cmp.stage, "speed_md": speed_md(cmp), "quality_md": quality_md(cmp),
            "agreement_md": agreement_md(cmp), "metrics": metrics_rows(cmp) if cmp.stage == "done" else [],
            "timings": timings_rows(cmp), "summary": cmp.summary(), "videos": dict(cmp.videos), "frames": cmp.frames}
