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
DOCS = ["README.md", "docs/results.md", "docs/tasks.md", "docs/students.md", "docs/architecture.md",
        "docs/lab/results-log-2026-11-to-12.md"]
# what a timed command runs under: the sweeps paused, a lower or higher priority, the timing lock, the session's
# autogroup priority
WRAPPERS = re.compile(r"(?:bench/quiet\.sh|nice -n -?\d+|flock \S+|echo -?\d+ > /proc/self/autogroup;)\s+")


def documented_commands() -> list[tuple[str, list[str]]]:
    """(doc, argv) of every line of a fenced code block that starts with `ndogo `."""
    out = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip().removeprefix("$ ")
                while wrapper := WRAPPERS.match(line):  # `bench/quiet.sh ndogo bench ...` is an ndogo command too
                    line = line[wrapper.end():]
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
    # what bench/*.py measured is a command now, and the lab log's commands that made the committed results say so
    assert {tuple(argv[:2]) for _, argv in COMMANDS} >= {("bench", "cold-start"), ("bench", "batch-invariance"),
                                                         ("bench", "compare"), ("bench", "serve-load"),
                                                         ("data", "stats")}
    assert any("--table" in argv for _, argv in COMMANDS) and any("--check-cost-model" in argv for _, argv in COMMANDS)


def test_a_subcommand_in_the_docs_has_its_own_options_parsed() -> None:
    """A group's subcommand (`ndogo bench compare`) is parsed with its own options, not only the group's."""
    with pytest.raises(pytest.fail.Exception, match="No such option: --no-such-option"):
        test_documented_command_parses("README.md", ["bench", "compare", "--row", "a|b|c|d", "--no-such-option"])


@pytest.mark.parametrize(("doc", "argv"), COMMANDS, ids=[f"{d}:{' '.join(a)[:60]}" for d, a in COMMANDS])
def test_documented_command_parses(doc: str, argv: list[str]) -> None:
    root = typer.main.get_command(app)
    command = root.commands[argv[0]]  # type: ignore[attr-defined]
    args = [a for a in argv[1:] if a != "--help"]
    while getattr(command, "commands", None):  # a group (`ndogo data stats`, `ndogo bench compare`): its command's
        command, args = command.commands[args[0]], args[1:]  # type: ignore[attr-defined]  # own options are parsed
    try:
        command.make_context(argv[0], args)  # parses and converts every option; runs nothing
    except click.exceptions.UsageError as err:
        pytest.fail(f"{doc}: ndogo {' '.join(argv)}: {err}")
