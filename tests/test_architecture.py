"""The layering the architecture promises (#18, #36), checked on the source: every import runs downward."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ndogo"

# The one statement of the layer order (docs/architecture.md draws it): a module may import its own
# layer and those below it, never one above. Every module of the package must fall in a layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("ndogo.console", "ndogo.options", "ndogo.registry", "ndogo.device", "ndogo.locks"),  # import nothing of ndogo
    ("ndogo.data", "ndogo.metrics", "ndogo.models"),
    ("ndogo.tasks",),  # what differs per task: readers, labels, head, decoding, metric
    ("ndogo.train",),
    ("ndogo.compress",),
    ("ndogo.deploy",),
    ("ndogo", "ndogo.evaluate"),  # the package root (`ndogo.load`) and the row of metrics a model gets
    ("ndogo.bench",),  # `ndogo bench`'s measurements beside the rows: serving load, cold start, pairs with F1
    ("ndogo.experiments",),
    ("ndogo.report",),
    ("ndogo.commands",),
    ("ndogo.cli", "ndogo.__main__"),
)


def imports_at(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, at module level or inside functions.

    `from ndogo.x import y` counts as ndogo.x.y when y is a module of the package, so importing a
    submodule through its parent (`from ndogo.deploy import onnx`) is seen for what it is (the
    parent's __init__ runs too, as it does for any `from ndogo.x.y import z`).
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}")]
            found += [(node.lineno, m) for m in subs or [node.module]]
    return found


def imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    return {m for _, m in imports_at(path)}


def _is_module(name: str) -> bool:
    if not name.startswith("ndogo."):
        return False
    rel = SRC.joinpath(*name.split(".")[1:])
    return rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file()


def module_name(path: Path) -> str:
    return ("ndogo." + ".".join(path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")


def layer(module: str) -> int | None:
    """The index of the layer a module of ndogo belongs to (the longest matching prefix wins)."""
    best: tuple[int, int] | None = None
    for i, names in enumerate(LAYERS):
        for name in names:
            if module == name or module.startswith(name + "."):
                if best is None or len(name) > best[1]:
                    best = (i, len(name))
    return None if best is None else best[0]


def upward_imports(src: Path = SRC) -> list[str]:
    """`file:line: a imports b (layer i above j)` for every import of a higher layer."""
    bad = []
    for path in sorted(src.rglob("*.py")):
        here = module_name(path) if src == SRC else "ndogo." + ".".join(path.relative_to(src).with_suffix("").parts)
        mine = layer(here.removesuffix(".__init__"))
        named: set[int] = set()
        for line, target in imports_at(path):
            if line in named or (target != "ndogo" and not target.startswith("ndogo.")):
                continue
            theirs = layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(f"{path.relative_to(src.parent)}:{line}: {here} imports {target}, a higher layer "
                           f"({LAYERS[theirs][0]} is above {LAYERS[mine][0]})")
                named.add(line)  # one line per import statement
    return bad


def test_every_module_has_a_layer() -> None:
    assert [module_name(p) for p in SRC.rglob("*.py") if layer(module_name(p)) is None] == []


def test_every_import_runs_downward() -> None:
    assert upward_imports() == []


def test_an_upward_import_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    pkg = tmp_path / "ndogo"
    (pkg / "data").mkdir(parents=True)
    (pkg / "data" / "x.py").write_text("import os\n\ndef f():\n    from ndogo.report import build\n")
    assert upward_imports(pkg) == ["ndogo/data/x.py:4: ndogo.data.x imports ndogo.report.build, a higher layer "
                                   "(ndogo.report is above ndogo.data)"]


def test_each_command_lives_in_the_module_its_name_says() -> None:
    """`ndogo trim-vocab` in commands/trim.py, `ndogo data stats` in commands/data.py: the first word names the file."""
    import typer

    from ndogo.cli import app

    group = typer.main.get_command(app)
    found = {}
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        for sub in (subcommands or {"": command}).values():
            found[f"{name} {sub.name}".strip() if subcommands else name] = (name, sub.callback.__module__)
    wrong = {shown: module for shown, (name, module) in found.items()
             if module != "ndogo.commands." + name.split("-")[0]}
    assert len(found) > 15 and wrong == {}


def test_cli_only_builds_the_app() -> None:
    """cli.py defines no command of its own: it builds the app and registers those of ndogo.commands."""
    tree = ast.parse((SRC / "cli.py").read_text(encoding="utf-8"))
    decorated = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and any(
        "command" in ast.unparse(d) for d in n.decorator_list)]
    assert decorated == []


def _all_modules() -> list[str]:
    return sorted("ndogo." + ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
                  for p in SRC.rglob("*.py") if p.name != "__main__.py")


def test_every_saved_kind_has_a_loader_table_entry() -> None:
    import importlib

    from ndogo.models.runner import KIND_MODULES, KINDS

    for name in _all_modules():  # every register_kind() call in the code base runs
        importlib.import_module(name.removesuffix(".__init__"))
    assert set(KINDS.loaded()) - {"hf"} == set(KIND_MODULES)


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
