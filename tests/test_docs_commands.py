"""Every `ndogo ...` command in the docs' code blocks still parses: options that were renamed or
dropped (say, when options became generated from the configs) would make a documented result
impossible to reproduce."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer import _click as click

from ndogo.cli import app

ROOT = Path(__file__).resolve().parents[1]
# the lab log is history, but its commands still parse: a reader who reruns an old experiment can
DOCS = ["README.md", "docs/results.md", "docs/architecture.md", "docs/lab/results-log-2026-11-to-12.md"]


def documented_commands() -> list[tuple[str, list[str]]]:
    """(doc, argv) of every line of a fenced code block that starts with `ndogo `."""
    out = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip().removeprefix("$ ")
                if not line.startswith("ndogo ") or "..." in line or "…" in line:
                    continue  # elided examples are not meant to run
                argv = shlex.split(line, comments=True)[1:]
                for op in ("&&", ";", "|", ">", "2>&1"):
                    if op in argv:
                        argv = argv[: argv.index(op)]
                out.append((doc, argv))
    return out


COMMANDS = documented_commands()


def test_the_docs_hold_commands() -> None:
    assert len(COMMANDS) >= 30 and {argv[0] for _, argv in COMMANDS} >= {"finetune", "sweep", "prune-sweep",
                                                                         "distill", "quantize", "trim-vocab"}


@pytest.mark.parametrize(("doc", "argv"), COMMANDS, ids=[f"{d}:{' '.join(a)[:60]}" for d, a in COMMANDS])
def test_documented_command_parses(doc: str, argv: list[str]) -> None:
    root = typer.main.get_command(app)
    command = root.commands[argv[0]]  # type: ignore[attr-defined]
    args = [a for a in argv[1:] if a != "--help"]
    if argv[0] == "data":
        command, args = command.commands[args[0]], args[1:]  # type: ignore[attr-defined]
    try:
        command.make_context(argv[0], args)  # parses and converts every option; runs nothing
    except click.exceptions.UsageError as err:
        pytest.fail(f"{doc}: ndogo {' '.join(argv)}: {err}")
