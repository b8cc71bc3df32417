"""docs/results.md and the README's model table, generated from committed data (never typed by hand).

    python -m analysis.report            # write docs/results.md and the README's marked block (make docs)
    python -m analysis.report --check    # exit 1 when either differs from what the data gives (a test runs it)

Sources, all in the repository: the shipped models' cards (`checkpoints/*.json`: validation numbers
on the validation set, the default tau, rule v2's per-clip check) and the JSON files of `SOURCES`,
each with the command that makes it (`make results-json` runs them): the peers on the same clips,
seconds per 720p frame of every method in one run, the whole path at 720p and 1080p (skip vs
no-skip, per stage) and memory. A source that is missing is named with its command, never filled in.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis import peers
from skipsr import checkpoint
from skipsr.evaluation import jod
from skipsr.stream import STAGES as PIPELINE_STAGES

ROOT = Path(__file__).resolve().parents[1]
RESULTS_MD = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
BEGIN, END = "<!-- results:models begin (python -m analysis.report) -->", "<!-- results:models end -->"
MODELS = ("adversarial", "distilled", "multistep")  # shipped models (checkpoint.MODELS), in the tables' order
TABLE_PEERS = "span dat-light basicvsr realesrgan"  # the peers of the README's table (the Makefile's TABLE_PEERS)
SOURCES = {"methods": ("results/methods.json", "python -m analysis.methods --models adversarial distilled "
                                               f"--peers {TABLE_PEERS} --no-speed --json > results/methods.json"),
           "speed": ("results/speed-720p.json", f"python -m analysis.methods --no-quality --peers {TABLE_PEERS} --json "
                                                "> results/speed-720p.json"),
           "bench-720p": ("results/bench-720p.json",
                          "python -m analysis.bench --model adversarial --height 720 --frames 16 --json "
                          "> results/bench-720p.json"),
           "bench-1080p": ("results/bench-1080p.json",
                           "python -m analysis.bench --model adversarial --height 1080 --frames 16 --no-quality --json "
                           "> results/bench-1080p.json"),
           "memory": ("results/memory.json",
                      "python -m analysis.bench --model adversarial --memory --json > results/memory.json")}
RUNS_DIR = "training-state"  # long training runs in progress: their state, card and snapshot selection
DEGRADATION_NAMES = {"bicubic": "clean (bicubic x4)", "realistic": "realistic (blur, noise, H.264)"}
STAGES = (*PIPELINE_STAGES, "total")


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def label(method: str) -> str:
    """A peer's display name ("SPAN x4"); our rows as they are ("adversarial @tau 8")."""
    return peers.PEERS[method].label if method in peers.PEERS else method


def load_sources(root: Path = ROOT) -> dict:
    """{name: parsed JSON or None} for every results source, and the shipped cards under "cards"."""
    out = {name: (json.loads((root / path).read_text()) if (root / path).exists() else None)
           for name, (path, _) in SOURCES.items()}
    out["cards"] = {name: checkpoint.read_card(root / "checkpoints" / checkpoint.MODELS[name].name) for name in MODELS}
    out["runs"] = {d.name: {f: (json.loads((d / f"{f}.json").read_text()) if (d / f"{f}.json").exists() else None)
                            for f in ("model", "select")}
                   for d in sorted((root / RUNS_DIR).glob("*")) if (d / "model.json").exists()}
    return out


def missing(name: str) -> str:
    path, command = SOURCES[name]
    return f"_Not measured: `{path}` is missing; `{command}` makes it._"


def rule_at(card: dict) -> dict | None:
    """Rule v2's check at the card's default tau, or None (tau 0 or an older card)."""
    v = card.get("validation", {})
    return v.get("default_tau_rule", {}).get("checks", {}).get(f"{card.get('default_tau', 0):g}")


def method_row(methods: dict | None, degradation: str, name: str) -> dict:
    return ((methods or {}).get("quality", {}).get(degradation, {}).get(name)) or {}


def quality_cells(q: dict) -> str:
    return " / ".join(fmt(q.get(k), spec) for k, spec in (("jod", ".2f"), ("lpips", ".3f"), ("dists", ".3f"),
                                                         ("psnr_y", ".2f")))


def model_rows(src: dict) -> list[list[str]]:
    """One row per shipped model at its default tau (quality from its card: the validation set's means),
    then one per peer (results/methods.json, the same clips); seconds per 720p frame from one timed run."""
    rows = []
    speed = (src["speed"] or {}).get("s_per_frame_720p", {})
    for name, card in src["cards"].items():
        tau = card.get("default_tau", 0)
        check = rule_at(card) or {}
        summaries = card.get("validation", {}).get("summaries", {})
        run = f"predicted@{tau:g}" if tau > 0 else "noskip"
        cells = [f"`{name}`", f"{tau:g}"] + [quality_cells(summaries.get(d, {}).get(run, {}))
                                             for d in ("bicubic", "realistic")]
        cells.append(" / ".join(fmt(check.get(d, {}).get("skip_ratio"), ".0%") for d in ("bicubic", "realistic")))
        worst = [w for w in (check.get(d, {}).get("max_jod_drop") for d in ("bicubic", "realistic")) if w is not None]
        cells.append(fmt(-max(worst) if worst else None, "+.3f"))
        t_skip, t_noskip = speed.get(f"{name} @tau {tau:g}"), speed.get(f"{name} no-skip")
        cells.append(f"{t_noskip / t_skip:.2f}x" if t_skip and t_noskip else "-")
        cells.append(fmt(t_skip, ".3f"))
        rows.append(cells)
    first = next(iter(src["cards"].values()), {})  # bicubic is the same input for every model: its card's numbers
    bicubic = {d: q.get("bicubic", {}) for d, q in first.get("validation", {}).get("summaries", {}).items()}
    if bicubic:
        rows.append([label("bicubic"), "-"] + [quality_cells(bicubic.get(d, {})) for d in ("bicubic", "realistic")]
                    + ["-", "-", "-", fmt(speed.get("bicubic"), ".3f")])
    methods = src["methods"] or {}
    for peer in methods.get("quality", {}).get("bicubic", {}):
        if peer.split(" ")[0] in MODELS or (peer == "bicubic" and bicubic):
            continue
        cells = [label(peer), "-"] + [quality_cells(method_row(methods, d, peer)) for d in ("bicubic", "realistic")]
        rows.append(cells + ["-", "-", "-", fmt(speed.get(peer), ".3f")])
    return rows


MODEL_HEADER = ["method", "tau", "clean: JOD / LPIPS / DISTS / PSNR-Y", "realistic: JOD / LPIPS / DISTS / PSNR-Y",
                "skipped (clean / realistic)", "skip cost, worst clip (JOD)", "speed-up", "s per 720p frame"]


def model_table(src: dict) -> str:
    """The README's table: shipped models at their default tau, then the peers, on the same clips."""
    lines = [table(MODEL_HEADER, model_rows(src)), ""]
    for key in ("methods", "speed"):
        if src[key] is None:
            lines.append(missing(key))
    if src["methods"] is not None:
        m = src["methods"]
        lines.append(f"Means over the {len(m['clips'])} validation clips ({m['frames']} frames each); JOD "
                     "(ColorVideoVDP, 10 = indistinguishable from the ground truth) higher is better, LPIPS "
                     "and DISTS lower. Our rows and their skip cost (the JOD the skip loses to the same model's "
                     f"no-skip output on the worst validation clip; rule v2 allows {jod.MAX_JOD_DROP:g}) come from the model "
                     "cards (`make evaluate`), the peers' from `results/methods.json`.")
    if src["speed"] is not None:
        sp = src["speed"]
        lines.append(f"Seconds per 1280x720 output frame and the speed-up over the same model's no-skip run: one "
                     f"run of every method, interleaved ({sp['threads']} CPU threads, {sp['device']}, "
                     f"`{sp['command']}`).")
    return "\n".join(lines)


def rule_section(name: str, card: dict) -> str:
    """Rule v2 per tau (worst clip per degradation) and the per-clip table at the default tau."""
    v = card.get("validation", {})
    rule = v.get("default_tau_rule", {})
    if rule.get("version") != 2:
        return f"### `{name}`\n\n_The card predates rule v2: `{v.get('command', 'make evaluate')}` re-measures it._"
    rows = []
    for tau, c in rule["checks"].items():
        cells = [tau, "yes" if c["ok"] else "**no**"]
        for d in rule["degradations"]:
            s = c[d]
            cells.append(f"{fmt(s['skip_ratio'], '.0%')}, worst {fmt(-s['max_jod_drop'], '+.3f')} "
                         f"({s['worst_clip']}), mean {fmt(-s['mean_jod_drop'], '+.3f')}")
        rows.append(cells)
    header = ["tau", "meets the rule"] + [f"{DEGRADATION_NAMES.get(d, d)}: skipped, JOD vs no-skip"
                                          for d in rule["degradations"]]
    parts = [f"### `{name}`: default tau {card.get('default_tau', 0):g}",
             f"`{v.get('command')}` ({v.get('frames')} frames a clip, grain {v.get('grain')} "
             f"{v.get('grain_motion', '')}, {v.get('wall_s', 0) / 60:.0f} min)", table(header, rows)]
    tau = card.get("default_tau", 0)
    runs = ["bicubic", "noskip"] + ([f"predicted@{tau:g}"] if tau > 0 else [])
    mean_rows = [[DEGRADATION_NAMES.get(d, d).split(" ")[0], r, fmt(q.get("skip_ratio"), ".0%") if r.startswith("pred")
                  else "-", fmt(q.get("jod"), ".2f"), fmt(q.get("psnr_y"), ".2f"), fmt(q.get("lpips"), ".4f"),
                  fmt(q.get("dists"), ".4f"), fmt(q.get("warp_error"), ".3f")]
                 for d, runs_q in v.get("summaries", {}).items() for r in runs for q in [runs_q.get(r, {})]]
    parts += ["Means over the validation clips against the ground truth:",
              table(["input", "run", "skipped", "JOD", "PSNR-Y", "LPIPS", "DISTS", "E*warp"], mean_rows)]
    check = rule_at(card)
    if check:
        clip_rows = []
        for d in rule["degradations"]:
            for clip, c in check[d]["clips"].items():
                clip_rows.append([DEGRADATION_NAMES.get(d, d).split(" ")[0], clip, fmt(c["skip_ratio"], ".0%"),
                                  fmt(-c["jod_drop"], "+.3f"), fmt(c["lpips_rise"], "+.4f"),
                                  fmt(c["dists_rise"], "+.4f"),
                                  fmt(-c["psnr_y_drop_db"], "+.2f"), fmt(c["warp_error_rise"], "+.3f")])
        parts += [f"Every clip at tau {card['default_tau']:g} (skip vs the same model's no-skip output):",
                  table(["input", "clip", "skipped", "JOD", "LPIPS", "DISTS", "PSNR-Y dB", "E*warp"], clip_rows)]
    return "\n\n".join(parts)


def quality_section(methods: dict | None, speed: dict | None) -> str:
    """The peers on the validation set (our models: their cards, in the rule's section below)."""
    if methods is None:
        return missing("methods")
    speed = (speed or {}).get("s_per_frame_720p", {})
    parts = [f"`{methods['command']}`: {len(methods['clips'])} validation clips, {methods['frames']} frames each, "
             f"{methods['threads']} threads, {methods['device']} ({methods['wall_s'] / 60:.0f} min). Means over clips; "
             "seconds per output frame at 1280x720 from `results/speed-720p.json`."]
    for d, rows in methods["quality"].items():
        body = [[label(name), fmt(q.get("jod"), ".2f"), fmt(q.get("psnr_y"), ".2f"), fmt(q.get("ssim_y"), ".4f"),
                 fmt(q.get("lpips"), ".4f"), fmt(q.get("dists"), ".4f"), fmt(q.get("warp_error"), ".3f"),
                 fmt(q.get("skip_ratio"), ".0%"), fmt(speed.get(name), ".3f")]
                for name, q in rows.items()]
        parts += [f"**{DEGRADATION_NAMES.get(d, d)}**",
                  table(["method", "JOD", "PSNR-Y", "SSIM-Y", "LPIPS", "DISTS", "E*warp", "skipped", "s/frame 720p"],
                        body)]
    return "\n\n".join(parts)


def speed_section(src: dict) -> str:
    parts = []
    for key in ("bench-720p", "bench-1080p"):
        b = src[key]
        if b is None:
            parts.append(missing(key))
            continue
        rows = []
        for stage in STAGES:
            ts, tn = b.get(f"t_cli_{stage}_skip_s"), b.get(f"t_cli_{stage}_noskip_s")
            if ts is None and tn is None:
                continue
            rows.append([stage, fmt(tn / b["frames"] if tn is not None else None, ".4f"),
                         fmt(ts / b["frames"] if ts is not None else None, ".4f")])
        parts += [f"**{b['out_w']}x{b['out_h']}**, {b['clip']}, model `{b['model']}` at tau {b['tau']:g} "
                  f"({b['mask']} mask, {b['skip_ratio']:.0%} of tokens skipped), {b['frames']} frames, "
                  f"{b['threads']} threads, {b['device']}: transformer {b['speedup_transformer']:.2f}x (ideal "
                  f"{b['ideal_speedup']:.2f}x, efficiency {b['transformer_efficiency']:.2f}), pipeline call "
                  f"{b['speedup_e2e']:.2f}x, whole path from file to file {fmt(b.get('speedup_cli'), '.2f')}x. "
                  "Seconds per output frame in the whole path (medians of interleaved rounds after a warm-up):",
                  table(["stage", "no-skip", "skip"], rows)]
    return "\n\n".join(parts)


def memory_section(m: dict | None) -> str:
    if m is None:
        return missing("memory")
    rows = [[clip, str(r.get("frames", "-")), fmt(r.get("peak_rss_mb"), ".0f")]
            for clip, r in (("short", m["short"]), ("long", m["long"]))]
    return "\n\n".join([f"Peak RSS of the upscale command (720p output) in a fresh process: the long clip needs "
                        f"{m['rss_ratio']:.2f}x the short one's memory.",
                        table(["clip", "frames", "peak RSS (MB)"], rows)])


def clip_changes(before: dict, after: dict, base: str) -> str:
    """The widest JOD gain and loss per degradation of the chosen snapshot over a baseline, per clip."""
    words = []
    for d in ("bicubic", "realistic"):
        delta = {c: after[d][c]["jod"] - before[d][c]["jod"] for c in before.get(d, {}) if c in after.get(d, {})}
        if delta:
            up, down = max(delta, key=delta.get), min(delta, key=delta.get)
            words.append(f"{DEGRADATION_NAMES[d].split(' ')[0]}: {up} {delta[up]:+.2f}, {down} {delta[down]:+.2f}")
    return f"Per clip, the chosen snapshot against `{base}` (widest gain, widest loss in JOD): " + "; ".join(words) + "."


def runs_section(runs: dict) -> str:
    """How far each long training run got (its card) and how its snapshots rank (analysis.select)."""
    if not runs:
        return f"_No training run in progress under `{RUNS_DIR}/`._"
    parts = []
    for name, r in runs.items():
        card, sel = r["model"], r["select"]
        args = card.get("train_args", {})
        m = card.get("machine", {})
        parts.append(f"**`{name}`** (`{RUNS_DIR}/{name}/`, continued by `make train-{name}`): {card.get('stage')}; "
                     f"step {card.get('steps')} of the {args.get('steps')}-step schedule, {card.get('wall_time_s', 0) / 3600:.1f} h "
                     f"of training on {m.get('device')} ({m.get('cpu_count')} cores, {m.get('threads')} threads). "
                     f"Data: {card.get('data')}.")
        if sel:
            rows = [[f"`{c}`" + (" (chosen)" if c == sel["chosen"] else ""),
                     *(fmt(s.get(d, {}).get(k), spec) for d in ("bicubic", "realistic")
                       for k, spec in (("jod", ".3f"), ("dists", ".4f")))]
                    for c, s in sel["scores"].items()]
            parts += [f"Snapshots without skipping on the {len(sel['clips'])} validation clips ({sel['frames']} frames), "
                      f"`{sel['command']}`; the rule: {sel['rule']}.",
                      table(["model", "clean JOD", "clean DISTS", "realistic JOD", "realistic DISTS"], rows)]
            base = next((c for c in sel["scores"] if c != sel["chosen"] and not c.endswith(".safetensors")), None)
            if base:
                parts.append(clip_changes(sel["scores"][base]["per_clip"], sel["scores"][sel["chosen"]]["per_clip"], base))
    return "\n\n".join(parts)


def results_md(src: dict) -> str:
    parts = ["# Results", "Generated by `make docs` (`python -m analysis.report`) from the committed JSON under "
             "`results/` and the model cards under `checkpoints/`: do not edit by hand; rerun the command named "
             "beside each table to re-measure it, then `make docs`. Absolute seconds hold for the machine named; "
             "the ratios are what carries over.",
             "## Shipped models and peers", model_table(src),
             "## The peers on the validation set", quality_section(src["methods"], src["speed"]),
             "## Speed", speed_section(src),
             "## Memory", memory_section(src["memory"]),
             "## Training runs in progress", runs_section(src["runs"]),
             "## No perceptible loss, clip by clip (rule v2)",
             "A tau meets the rule when on every validation clip, clean and realistic, the skip output loses at most "
             f"{jod.MAX_JOD_DROP:g} JOD to the same model's no-skip output (docs/design.md section 8). The default "
             "tau is the largest tau that meets it together with every smaller one."]
    parts += [rule_section(name, card) for name, card in src["cards"].items()]
    return "\n\n".join(parts) + "\n"


def readme_with_table(readme: str, src: dict) -> str:
    """The README with the block between the markers replaced by the model table."""
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"README.md has no {BEGIN} ... {END} block")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{model_table(src)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare: exit 1 when a generated file is stale")
    args = ap.parse_args(argv)
    src = load_sources()
    wanted = {RESULTS_MD: results_md(src), README: readme_with_table(README.read_text(), src)}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} differs from what the committed data gives: run `make docs`", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.write_text(wanted[p])
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
