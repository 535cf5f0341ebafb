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


def test_every_saved_kind_has_a_loader_table_entry() -> None:
    import ndogo.compress  # registers every stage's kinds
    import ndogo.deploy.onnx  # noqa: F401
    from ndogo.models.runner import KIND_MODULES, LOADERS

    assert set(LOADERS) - {"hf"} == set(KIND_MODULES)
