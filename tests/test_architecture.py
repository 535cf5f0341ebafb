"""The layering the architecture promises (#18), checked on the source: a ground floor that imports nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ndogo"
GROUND = ("models", "data", "metrics")
ABOVE = ("ndogo.compress", "ndogo.experiments", "ndogo.report", "ndogo.commands", "ndogo.cli")


def imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_ground_floor_imports_nothing_above_it() -> None:
    bad = [(str(p.relative_to(SRC)), m) for floor in GROUND for p in (SRC / floor).rglob("*.py")
           for m in imports(p) if m.startswith(ABOVE)]
    assert bad == []


def test_only_the_command_line_imports_cli() -> None:
    bad = [(str(p.relative_to(SRC)), m) for p in SRC.rglob("*.py")
           if "commands" not in p.parts and p.name not in ("cli.py", "__main__.py")
           for m in imports(p) if m == "ndogo.cli" or m.startswith("ndogo.cli.")]
    assert bad == []


def _all_modules() -> list[str]:
    return sorted("ndogo." + ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
                  for p in SRC.rglob("*.py") if p.name != "__main__.py")


def test_every_saved_kind_has_a_loader_table_entry() -> None:
    import importlib

    from ndogo.models.runner import KIND_MODULES, LOADERS

    for name in _all_modules():  # every register_kind() call in the code base runs
        importlib.import_module(name.removesuffix(".__init__"))
    assert set(LOADERS) - {"hf"} == set(KIND_MODULES)


def test_no_two_modules_import_each_other() -> None:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = "ndogo." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        graph[name] = {m for m in imports(path) if m.startswith("ndogo.")}
    pairs = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps
                    if b != a and a in graph.get(b, set())})
    assert pairs == []


def test_loading_a_quantized_model_imports_no_other_stage(int8_model: Path) -> None:
    import json
    import subprocess
    import sys

    code = ("import sys; from ndogo.models.runner import load_runner; load_runner(sys.argv[1]); "
            "import json; print(json.dumps(sorted(m for m in sys.modules if m.startswith('ndogo.'))))")
    out = subprocess.run([sys.executable, "-c", code, str(int8_model)], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert not [m for m in loaded if m.split(".")[2:3] and m.split(".")[2] in ("distill", "trim", "recipe", "mlm")]
