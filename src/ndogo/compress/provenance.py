"""The model-directory contract: one provenance header in every saved model's ndogo.json.

A stage writes its model and its own extras (a pruning's achieved sparsity, an
export's logit check). What made the model is written once, here, by the code that
runs stages (`compress.recipe.run_stage`, which the chain and every single-stage
command call; `recipe.write_header` formats the call): the stage, the one-line
recipe call and the `ndogo` command that redo it, its config, the model it read,
the kind it saved, the ndogo version. `ndogo ship` follows `provenance.source` back and prints each stored command, so
the card's rebuild commands are the ones that made the model, not a guess.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any

from ndogo.models.loading import read_meta, write_meta

HEADER = "provenance"
# Fields the chain sets (where a stage reads and writes) and fields that change how a stage
# runs, not what it makes: neither is part of the call that reproduces it.
NOT_OPTIONS = frozenset({"model", "run", "out", "threads", "save_every", "eval_batch_size", "show_progress",
                         "keep_checkpoint", "device", "method"})
# The command that runs each stage alone, and how it is told the model to read.
COMMANDS = {"finetune": "ndogo finetune --model {src}", "prune": "ndogo prune {src}",
            "quantize": "ndogo quantize {src}", "trim": "ndogo trim-vocab {src}",
            "distill": "ndogo distill --teacher {src}", "export": "ndogo export {src}"}


def field_default(f: dataclasses.Field) -> Any:
    """A dataclass field's default value (its factory's product), or MISSING."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def chosen_options(config: Any) -> list[tuple[dataclasses.Field, Any]]:
    """(field, value) of every option `config` sets away from its default: what the stage was asked to do."""
    chosen = []
    for f in dataclasses.fields(config):
        if not f.init or f.name in NOT_OPTIONS:
            continue
        value = getattr(config, f.name)
        if isinstance(value, dict) and not value:
            continue
        if isinstance(value, tuple):
            value = list(value)
        default = field_default(f)
        if isinstance(default, tuple):
            default = list(default)
        if value != default:
            chosen.append((f, value))
    return chosen


def call_options(config: Any) -> dict[str, Any]:
    """The options of the one-line recipe call that makes this output from its input (the method first)."""
    method = getattr(config, "method", None)
    options = {"method": method} if isinstance(method, str) and method else {}
    options.update({f.name: v for f, v in chosen_options(config) if not isinstance(v, dict)})
    return options


def _word(f: dataclasses.Field, value: Any) -> str:
    flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    if isinstance(value, list):
        sep = f.metadata.get("sep")
        if sep:
            return f"{flag} {shlex.quote(sep.join(map(str, value)))}"
        return " ".join(f"{flag} {shlex.quote(str(v))}" for v in value)
    return f"{flag} {shlex.quote(str(value))}"


def stage_command(stage: str, config: Any, source: str | Path, out: str | Path, call: str) -> str:
    """The `ndogo` command line that makes `out` from `source` with this config.

    A stage with no command of its own (a plugin's) is redone by `ndogo compress` with its one-line call.
    """
    src, dst = shlex.quote(str(source)), shlex.quote(str(out))
    if stage not in COMMANDS:
        return f"ndogo compress {src} --recipe {shlex.quote(call)} --out {dst}"
    words = [COMMANDS[stage].format(src=src)]
    method = getattr(config, "method", None)
    if isinstance(method, str) and method:
        words.append(f"--method {shlex.quote(method)}")
    words += [_word(f, v) for f, v in chosen_options(config) if not isinstance(v, dict)]
    return " ".join([*words, f"--out {dst}"])


def ndogo_version() -> str:
    """The installed ndogo's version (read from its metadata: the package root is above this layer)."""
    from importlib import metadata

    try:
        return metadata.version("ndogo")
    except metadata.PackageNotFoundError:
        return "unknown"


def source_of(source: str | Path) -> str:
    """The input as recorded: an absolute path for a local directory, else the name as given (`minilm`)."""
    path = Path(str(source)).expanduser()
    return str(path.resolve()) if path.exists() else str(source)


def header(stage: str, config: Any, source: str | Path, out: str | Path, kind: str, call: str) -> dict[str, Any]:
    """The provenance header of a saved model (see the module's docstring); `call` is the one-line recipe stage."""
    src, path = source_of(source), str(Path(out).resolve())
    values = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("model", "run", "out")}
    method = getattr(config, "method", None)
    if isinstance(method, str) and method:
        values = {"method": method, **values}  # a method's name is its config class, not one of its fields
    return {"stage": stage, "call": call, "command": stage_command(stage, config, src, path, call),
            "config": values, "source": src, "path": path, "kind": kind, "ndogo_version": ndogo_version()}


def write_provenance(out: str | Path, stage: str, config: Any, source: str | Path, call: str,
                     at: str | Path | None = None) -> dict[str, Any]:
    """Add the header to the ndogo.json the stage wrote in `out` (every other key kept as the stage wrote it).

    `at` is where `out` will be once its writer moves it (the chain's `.partial` folder is renamed).
    """
    meta = read_meta(out)
    if Path(str(source)).is_dir():
        # what the model does is its source's, whatever the stage did: the task, and what its output is
        # (read by code that has no task module, such as the torch-free runtime)
        for key, value in read_meta(source).items():
            if key in ("task", "output") and key not in meta:
                meta[key] = value
    meta[HEADER] = header(stage, config, source, at if at is not None else out, str(meta.get("kind", "hf")), call)
    write_meta(out, meta)
    return meta[HEADER]
