"""The layers of docs/design.md section 0: the core never loads the evaluation stack, the app or analysis."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("gradio", "duckdb", "pyarrow", "pandas", "plotly", "pyiqa", "cvvdp", "ray")
OURS_ABOVE = ("app", "analysis", "skipsr.evaluation", "skipsr.train")


def loaded_after(statement: str) -> list[str]:
    code = (f"import sys\n{statement}\n"
            "print('\\n'.join(sorted(sys.modules)))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return res.stdout.split()


def offenders(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(OURS_ABOVE))


def test_importing_the_pipeline_loads_nothing_above_the_core():
    mods = loaded_after("from skipsr.pipeline import SkipSRPipeline")
    assert "skipsr.pipeline" in mods and "torch" in mods  # the import really ran
    assert offenders(mods) == []


def test_the_cli_loads_a_command_module_only_when_that_command_runs():
    assert offenders(loaded_after("import skipsr.cli")) == []


def test_core_modules_do_not_import_the_layers_above():
    """Static check of every core module's imports (also the ones inside functions)."""
    bad = []
    for path in sorted((ROOT / "skipsr").glob("*.py")):
        if path.name == "cli.py":  # the command dispatcher imports each command's module when it runs
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            allowed = ("ray",) if path.name == "ray_engine.py" else ()  # the Ray engine imports Ray when it runs
            bad += [f"{path.name}: {n}" for n in names
                    if n.startswith(OURS_ABOVE) or (n.split(".")[0] in HEAVY and n.split(".")[0] not in allowed)]
    assert bad == []
