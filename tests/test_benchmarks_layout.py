"""The benchmarks' layout: the harness imports no script, no module imports itself in a circle,
each module imports on its own, and the wheel leaves the benchmarks out."""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    _module_name(path): path
    for path in sorted([*BENCHMARKS.rglob("*.py"), *(ROOT / "wrappers" / "opponents").glob("*.py")])
    if "results" not in path.parts
}


def _imports(path: Path) -> set[str]:
    """Every project module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in MODULES)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (circle := visit(target)):
                return circle
        state[module] = "done"
        stack.pop()
        return None

    for module in sorted(graph):
        if module not in state and (circle := visit(module)):
            return circle
    return None


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def test_the_layout_is_as_documented():
    harness = {"suites", "runner", "tasks", "evaluation", "report", "stats", "zoo", "rlzoo", "muzero_config"}
    assert {f"benchmarks.harness.{name}" for name in harness | {"progress", "pool"}} <= set(MODULES)
    scripts = {"cartpole", "boardgame_play", "engine_games", "search", "shogi_speed"}
    assert {f"benchmarks.{name}" for name in scripts} <= set(MODULES)
    diagnostics = {
        "connect_four_diagnostics",
        "connect_four_losses",
        "tictactoe_diagnostics",
        "model_rewards",
    }
    assert {f"benchmarks.diagnostics.{name}" for name in diagnostics} <= set(MODULES)
    assert (BENCHMARKS / "muzero.yml").is_file() and not (BENCHMARKS / "negamax.py").exists()


def test_no_import_circle():
    circle = _cycle(GRAPH)
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_the_harness_imports_no_script_and_no_diagnostic():
    for module, targets in GRAPH.items():
        if module.startswith("benchmarks.harness"):
            outside = {
                t for t in targets if t.startswith("benchmarks") and not t.startswith("benchmarks.harness")
            }
            assert not outside, f"{module} imports {outside}"
        if module.startswith("wrappers"):
            assert not {t for t in targets if t.startswith("benchmarks")}, f"{module} imports the benchmarks"


def test_each_module_imports_on_its_own():
    """Each module imported first, in one fresh interpreter (the benchmarks' modules forgotten
    between two imports), so no module depends on another having been imported before it."""
    names = sorted(
        name for name in MODULES if name.startswith("benchmarks") and name != "benchmarks.__main__"
    )
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'benchmarks' or m.startswith('benchmarks.')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_wheel_installs_neither_benchmarks_nor_tests():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not [pattern for pattern in include if pattern.startswith(("benchmarks", "tests"))], include
    scripts = project["project"].get("scripts", {})
    assert not [target for target in scripts.values() if target.startswith("benchmarks")], scripts
    assert "benchmarks" not in project["tool"]["setuptools"].get("package-data", {})
