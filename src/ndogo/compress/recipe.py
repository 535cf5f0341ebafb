"""Recipes: a chain of compression stages, written once, checked before any work, resumable.

A recipe is an ordered list of stage calls such as finetune → prune → quantize.
Each stage follows the contract of this package, `verb(run, out, config) -> Path`,
with one config dataclass per stage, so a recipe is nothing but names and options:

    one line (command line, sweep configs):
        prune:sparsity=0.5 | quantize:method=onnx-int8

    TOML (YAML is the same shape):
        name = "prune50-int8"
        [[stages]]
        stage = "prune"
        sparsity = 0.5
        [[stages]]
        stage = "quantize"
        method = "onnx-int8"

Stages are found by name and imported lazily (`ndogo.compress.<name>`), and a
stage's options are checked against `dataclasses.fields` of its config class
before the first stage runs: a typo in the third stage must not cost an hour of
fine-tuning in the first. Options a run knows better than the recipe (the
language, the data, the seed, the threads) are filled in from the run's context
for every stage whose config has a field of that name.

Every finished stage leaves a small JSON marker keyed by a hash of everything
that decides its output (its input, its name, its config). A chain that is
killed and run again skips the stages already done, and two recipes that share
a prefix (prune, then prune → quantize) share its outputs when they share a
work directory, as the cells of a sweep do. A `finetune` stage also reuses an
existing fine-tuned run with the same settings instead of training again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
import tomllib
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ndogo.locks import file_lock
from ndogo.models.names import ModelError, resolve_model
from ndogo.options import OptionError, bind, convert, required
from ndogo.registry import Registry
from ndogo.train.config import LATER_DEFAULTS, FinetuneConfig, FinetuneStageConfig

# Where each stage lives, by convention `ndogo.compress.<module>` with a function named
# like the verb. Stages that other work adds later slot in here by name.
KNOWN_STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "finetune": ("ndogo.compress.recipe", ("finetune_stage",)),
    "prune": ("ndogo.compress.prune", ("prune",)),
    "distill": ("ndogo.compress.distill", ("distill",)),
    "quantize": ("ndogo.compress.quantize", ("quantize",)),
    "trim": ("ndogo.compress.trim", ("trim", "trim_vocab")),
    "export": ("ndogo.deploy.export", ("export",)),
}
ALIASES = {"distil": "distill", "quantise": "quantize", "trim-vocab": "trim", "trim_vocab": "trim"}

# Options filled from the run (a sweep cell, or `ndogo compress --lang/--data/--seed`)
# when a stage's config has a field of that name and the recipe left it out.
CONTEXT_FIELDS = ("data", "lang", "langs", "seed", "threads", "device")
# Fields the chain itself sets (where a stage reads and writes); a recipe may not.
CHAIN_FIELDS = ("model", "run", "out")
# Fields that change how a stage runs but not what it produces: left out of the key
# that decides whether a finished stage can be reused.
NOT_IDENTITY = frozenset({"threads", "save_every", "eval_batch_size", "show_progress", "keep_checkpoint",
                          "device", *CHAIN_FIELDS})


class RecipeError(ValueError):
    """A recipe or stage option that cannot work, named by where it is written."""


@dataclass(frozen=True)
class Stage:
    """A stage resolved to its function and config class."""

    name: str
    function: Callable[..., Any]
    config_cls: type
    # Returns an existing output equivalent to running the stage (e.g. a matching
    # fine-tuned run), or None; called before the stage would run.
    find_existing: Callable[[str, Any, Sequence[str]], Path | None] | None = None
    # A stage that resumes its own interrupted output (finetune's checkpoint) keeps it.
    resumable: bool = False


def register_stage(name: str, function: Callable[..., Any], config_cls: type | None = None,
                   *, find_existing: Callable[[str, Any, Sequence[str]], Path | None] | None = None,
                   resumable: bool = False) -> None:
    """Make a stage usable in recipes under `name` (e.g. a stage living outside ndogo).

    `config_cls` defaults to the annotation of the function's `config` parameter.
    """
    STAGES.add(name, Stage(name, function, config_cls or _config_class(name, function), find_existing, resumable))


def stage_names() -> list[str]:
    """Every stage name a recipe may use (whether or not this version has it)."""
    return sorted(STAGES.names())


def canonical_name(name: str) -> str:
    """The stage name an alias stands for, so `trim-vocab` and `trim` key and resume as one stage."""
    return STAGES.canonical(name)


def _config_class(name: str, function: Callable[..., Any]) -> type:
    hints = typing.get_type_hints(function)
    cls = hints.get("config")
    # a stage with methods (quantize, prune) takes the base class of its methods' configs
    if not (isinstance(cls, type) and (dataclasses.is_dataclass(cls) or getattr(cls, "registry", None))):
        raise RecipeError(f"stage {name!r}: {function.__qualname__} has no `config: <dataclass>` parameter")
    return cls


def _stage_from_module(name: str, module: ModuleType) -> Stage:
    """The stage `name` of its module in KNOWN_STAGES: the function named there, its config from its signature."""
    function_names = KNOWN_STAGES[name][1]
    function = next((getattr(module, f) for f in function_names if callable(getattr(module, f, None))), None)
    if function is None:
        raise RecipeError(f"stage {name!r} is not available in this version "
                          f"({module.__name__} has no {' or '.join(function_names)}())")
    finetune = name == "finetune"
    return Stage(name, function, _config_class(name, function),
                 find_existing=find_finetuned if finetune else None, resumable=finetune)


# The stages by name: those of KNOWN_STAGES are built from their module when a recipe first
# names them (the one registry style of stages, methods and kinds: `ndogo.registry`).
STAGES: Registry[Stage] = Registry("stage", modules={n: m for n, (m, _) in KNOWN_STAGES.items()},
                                   aliases=ALIASES, on_import=_stage_from_module)


def resolve_stage(name: str) -> Stage:
    """The stage called `name`, importing its module only now (stages pull in heavy libraries)."""
    name = canonical_name(name)
    try:
        return STAGES.get(name)
    except ModuleNotFoundError as err:
        if err.name != STAGES.modules.get(name):
            raise
        raise RecipeError(f"stage {name!r} is not available in this version ({err.name} is absent)") from None
    except RecipeError:
        raise
    except ValueError as err:
        raise RecipeError(str(err)) from None


# ----------------------------------------------------------------------------------------------
# Parsing


@dataclass(frozen=True)
class StageCall:
    """One step of a recipe as written: a stage name and its options."""

    stage: str
    options: dict[str, Any] = field(default_factory=dict)

    def one_line(self) -> str:
        if not self.options:
            return self.stage
        return f"{self.stage}:" + ",".join(f"{k}={_format_value(v)}" for k, v in self.options.items())


@dataclass(frozen=True)
class Recipe:
    """An ordered chain of stage calls; `start` says whether it starts from the fine-tuned
    model of its run (the usual case) or from the pretrained encoder (e.g. prune before fine-tuning)."""

    stages: tuple[StageCall, ...] = ()
    name: str | None = None
    start: str = "finetuned"

    def one_line(self) -> str:
        """The recipe in its one-line form (round-trips through `parse_recipe`)."""
        return " | ".join(s.one_line() for s in self.stages)

    def __str__(self) -> str:
        return self.one_line() or "(no stages)"


RECIPE_SUFFIXES = (".toml", ".yaml", ".yml", ".json")
STARTS = ("finetuned", "pretrained")


def parse_recipe(text: str | Path, where: str = "recipe") -> Recipe:
    """A recipe from a file (TOML, YAML, JSON) or from its one-line form."""
    text = str(text)
    if text.endswith(RECIPE_SUFFIXES):
        path = Path(text).expanduser()
        if not path.is_file():
            raise RecipeError(f"{where}: no such recipe file {path}")
        return recipe_from_data(load_document(path), str(path))
    return parse_one_line(text, where)


def load_document(path: Path) -> Any:
    """A TOML, YAML or JSON document, with a parse error that names the file and line."""
    from ndogo.data.conll import DataError, decode

    try:
        raw = decode(path)  # names the line of a byte that is not UTF-8
    except DataError as err:
        raise RecipeError(str(err)) from None
    try:
        if path.suffix == ".toml":
            return tomllib.loads(raw)
        if path.suffix == ".json":
            return json.loads(raw)
        import yaml

        return yaml.safe_load(raw)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise RecipeError(f"{path}: {err}") from None
    except Exception as err:  # yaml.YAMLError carries the line in its message
        if type(err).__module__.startswith("yaml"):
            raise RecipeError(f"{path}: {err}") from None
        raise


def recipe_from_data(data: Any, where: str) -> Recipe:
    """A recipe from parsed TOML/YAML: a one-line string, a list of stages, or a table with `stages`."""
    if data is None:
        return Recipe()
    if isinstance(data, str):
        return parse_one_line(data, where)
    name = None
    start = "finetuned"
    if isinstance(data, dict):
        unknown = set(data) - {"name", "stages", "from"}
        if unknown:
            raise RecipeError(f"{where}: unknown key {sorted(unknown)[0]!r} (a recipe has name, from, stages)")
        name = data.get("name")
        start = data.get("from", "finetuned")
        if start not in STARTS:
            raise RecipeError(f"{where}.from: {start!r} is not one of {', '.join(STARTS)}")
        data = data.get("stages", [])
        if isinstance(data, str):
            return dataclasses.replace(parse_one_line(data, f"{where}.stages"), name=name, start=start)
    if not isinstance(data, list):
        raise RecipeError(f"{where}: expected a one-line recipe, a list of stages or a table with `stages`")
    calls = []
    for i, item in enumerate(data, 1):
        at = f"{where}.stages[{i}]"
        if isinstance(item, str):
            calls.extend(parse_one_line(item, at).stages)
            continue
        if not isinstance(item, dict) or "stage" not in item:
            raise RecipeError(f"{at}: expected a table with a `stage` key (e.g. stage = \"prune\")")
        options = {k: v for k, v in item.items() if k != "stage"}
        calls.append(StageCall(_stage_name(item["stage"], at), options))
    return Recipe(tuple(calls), name, start)


def _stage_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise RecipeError(f"{where}.stage: expected a stage name ({', '.join(stage_names())})")
    name = canonical_name(name)
    if name not in STAGES:
        raise RecipeError(f"{where}.stage: unknown stage {name!r}; stages: {', '.join(stage_names())}")
    return name


def parse_one_line(text: str, where: str = "recipe") -> Recipe:
    """`stage:key=value,key=value | stage ...`; values are TOML literals or bare words.

    An empty string is the empty recipe (the model as it is).
    """
    calls = []
    parts = [p.strip() for p in _split_top(text, "|")]
    if parts == [""]:
        return Recipe()
    for i, part in enumerate(parts, 1):
        at = f"{where} stage {i}"
        if not part:
            raise RecipeError(f"{at}: empty stage (two `|` in a row?)")
        name, _, opts = part.partition(":")
        name = _stage_name(name, at)
        options: dict[str, Any] = {}
        for item in (x.strip() for x in _split_top(opts, ",")) if opts.strip() else ():
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise RecipeError(f"{at} ({name}): expected key=value, got {item!r}")
            key = key.strip()
            if key in options:
                raise RecipeError(f"{at} ({name}).{key}: given twice")
            options[key] = _parse_value(value.strip())
        calls.append(StageCall(name, options))
    return Recipe(tuple(calls))


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside brackets and quotes (so lists and quoted strings may hold it)."""
    out, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return out


def _parse_value(raw: str) -> Any:
    """A TOML literal (0.5, true, "x", [1, 2]) or else the bare word itself (onnx-int8)."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return value if value and _parse_value(value) == value and not set(value) & set(",|=[]{}\"' ") \
            else json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


# ----------------------------------------------------------------------------------------------
# Validation


@dataclass(frozen=True)
class BoundStage:
    """A stage call checked and turned into its config object."""

    stage: Stage
    call: StageCall
    config: Any

    def identity(self) -> dict[str, Any]:
        """What decides the stage's output, for the reuse key."""
        identity = getattr(self.config, "identity", None)  # a method's config adds its method name
        values = identity() if callable(identity) else dataclasses.asdict(self.config)
        return {k: v for k, v in values.items() if k not in NOT_IDENTITY}


def bind_recipe(recipe: Recipe, context: dict[str, Any] | None = None, where: str = "recipe") -> list[BoundStage]:
    """Resolve every stage and build every config, so all errors surface before any work."""
    context = normal_context(context or {})
    return [bind_stage(call, context, f"{where} stage {i} ({call.stage})")
            for i, call in enumerate(recipe.stages, 1)]


def normal_context(context: dict[str, Any]) -> dict[str, Any]:
    """Drop unset values, derive `langs` from `lang`, and resolve a local data path."""
    ctx = {k: v for k, v in context.items() if v is not None}
    if "lang" in ctx and "langs" not in ctx:
        ctx["langs"] = [ctx["lang"]]
    if "data" in ctx and Path(str(ctx["data"])).expanduser().exists():
        # the same corpus named two ways must give the same reuse key
        ctx["data"] = str(Path(str(ctx["data"])).expanduser().resolve())
    return ctx


def bind_stage(call: StageCall, context: dict[str, Any], where: str) -> BoundStage:
    """Build a stage's config from its recipe options and the context, failing with `where` named.

    Binding every stage before the first runs is what lets a bad last stage fail
    in seconds instead of after an hour of fine-tuning. The options go through
    `ndogo.options.bind`, as every other source of settings does.
    """
    stage = resolve_stage(call.stage)
    cls, options, takes = stage.config_cls, dict(call.options), call.stage
    registry = getattr(cls, "registry", None)
    also: tuple[str, ...] = ()
    if registry is not None:
        # a stage with methods: `method` picks the method's config class, which holds its options
        key = next((k for k in registry.selectors if k in options), "method")  # (distillation's `mode`)
        try:
            cls = registry.config_class(registry.pick(options))
        except ValueError as err:
            raise RecipeError(f"{where}.{key}: {err}") from None
        takes, also = f"{call.stage} method {cls.method}", ("method",)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for key in options:
        if key in CHAIN_FIELDS and key in fields:
            raise RecipeError(f"{where}.{key}: set by the chain (the previous stage's output), not by a recipe")
    # placeholders: the chain sets these when the stage runs
    chain = {name: "" for name in CHAIN_FIELDS if name in fields and required(fields[name])}
    try:
        for key in CONTEXT_FIELDS:
            if key in fields and key not in options and key in context:
                options[key] = convert(context[key], hints.get(key, Any), f"{where}.{key} (from the run)")
        config = bind(cls, options, where, fixed=chain, hidden=CHAIN_FIELDS, also=also, takes=takes)
    except OptionError as err:
        raise RecipeError(str(err)) from None
    return BoundStage(stage, call, config)


# ----------------------------------------------------------------------------------------------
# Running


@dataclass
class StageRecord:
    """What one stage of a chain did: for rows, logs and reproduction."""

    stage: str
    options: dict[str, Any]
    path: str
    seconds: float
    reused: str = ""  # "" (ran now), "done" (finished before), or "existing" (an equivalent run found)


@dataclass
class ChainResult:
    """The final model of a chain and what each stage did (ran, was done already, or was reused)."""

    path: Path
    stages: list[StageRecord]


def source_key(source: str | Path) -> str:
    """What the chain starts from, resolved so one model named two ways keys the same."""
    try:
        return f"src:{Path(resolve_model(source)).resolve() if Path(str(source)).expanduser().exists() else source}"
    except ModelError:
        return f"src:{source}"


def stage_key(previous: str, bound: BoundStage) -> str:
    """A hash of the stage and everything before it: the name of its output, so a rerun finds it done."""
    blob = json.dumps([previous, bound.stage.name, bound.identity()], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write then rename: a reader (or a rerun after a kill) sees the old file or the new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def run_chain(source: str | Path, bound: list[BoundStage], workdir: str | Path, out: str | Path | None = None,
              reuse: Sequence[str] = (), on_stage: Callable[[int, BoundStage], None] | None = None,
              adopt_only: int | None = None) -> ChainResult:
    """Run bound stages in order from `source`; each stage's output is the next stage's input.

    Outputs go to `<workdir>/<stage>-<key>`, except the last one's when `out` is
    given. A stage whose marker says it finished (same key) is skipped, so a
    killed chain resumes; `reuse` lists existing runs a stage may adopt instead
    of running (fine-tuned baselines). The stage at index `adopt_only` must be
    adopted from `reuse` and is never run (baselines trained elsewhere, e.g. on a GPU).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    current: str | Path = source
    key = source_key(source)
    records: list[StageRecord] = []
    for i, b in enumerate(bound):
        key = stage_key(key, b)
        name = f"{b.stage.name}-{key[:12]}"
        marker = workdir / f"{name}.json"
        last = i == len(bound) - 1
        target = Path(out) if (last and out is not None) else workdir / name
        if on_stage:
            on_stage(i, b)
        with file_lock(workdir / f".{name}.lock"):
            record = _finished(marker)
            if record is not None:
                record.reused = "done"
            else:
                record = _build(b, current, target, reuse, adopt_only == i)
                write_json_atomic(marker, {"key": key, "input": str(current), **dataclasses.asdict(record),
                                           "config": dataclasses.asdict(b.config), "finished": time.time()})
        records.append(record)
        current = Path(record.path)
    return ChainResult(Path(current), records)


def _finished(marker: Path) -> StageRecord | None:
    if not marker.is_file():
        return None
    saved = json.loads(marker.read_text())
    if not Path(saved["path"]).is_dir():
        return None  # its output was deleted since: run it again
    return StageRecord(saved["stage"], saved["options"], saved["path"], saved["seconds"], saved["reused"])


def _build(b: BoundStage, current: str | Path, target: Path, reuse: Sequence[str], adopt_only: bool) -> StageRecord:
    options = dict(b.call.options)
    if b.stage.find_existing is not None and reuse:
        found = b.stage.find_existing(str(current), b.config, reuse)
        if found is not None:
            return StageRecord(b.stage.name, options, str(found), 0.0, "existing")
    if adopt_only:
        raise RecipeError(f"{b.stage.name}: no finished run with these settings ({b.call.one_line()}, from "
                          f"{current}) among {', '.join(reuse) or 'no candidates'}, and it may not be run here")
    partial = target.with_name(target.name + ".partial")
    if partial.exists() and not b.stage.resumable:
        shutil.rmtree(partial)  # left by a killed run; this stage cannot resume it
    config = _with_chain_fields(b.config, current, partial)
    t0 = time.perf_counter()
    produced = run_stage(b.stage, current, partial, config, at=target)
    seconds = time.perf_counter() - t0
    if produced.resolve() != partial.resolve():
        raise RecipeError(f"stage {b.stage.name} wrote {produced}, not the directory it was given ({partial})")
    if target.exists():
        shutil.rmtree(target)
    os.replace(partial, target)  # atomic: `target` is either absent or complete
    return StageRecord(b.stage.name, options, str(target), round(seconds, 3))


def run_stage(stage: Stage | str, run: str | Path, out: str | Path, config: Any, at: str | Path | None = None) -> Path:
    """Run one stage and write the provenance header into what it saved: the one door every stage output passes.

    The chain and the single-stage commands (`ndogo prune`, `quantize`, `distill`, `trim-vocab`,
    `export`) all call this, so every saved model records the same header (`compress/provenance.py`)
    and a stage writes only its own extras. `at` is where the output will live when the caller
    moves it after (the chain writes `<key>.partial`, then renames it).
    """
    stage = resolve_stage(stage) if isinstance(stage, str) else stage
    produced = Path(stage.function(run, out, config))
    if produced.is_dir():
        write_header(produced, stage.name, config, run, at=at)
    return produced


def write_header(out: str | Path, stage: str, config: Any, source: str | Path,
                 at: str | Path | None = None) -> dict[str, Any]:
    """Write the provenance header of a stage's output (`compress/provenance.py`), its call in recipe form."""
    from ndogo.compress.provenance import call_options, write_provenance

    call = StageCall(stage, call_options(config)).one_line()
    return write_provenance(out, stage, config, source, call, at=at)


def _with_chain_fields(config: Any, run: str | Path, out: Path) -> Any:
    names = {f.name for f in dataclasses.fields(config)}
    values: dict[str, Any] = {"model": str(run), "run": str(run), "out": str(out)}
    if os.environ.get("NDOGO_PROGRESS") == "0":  # a sweep cell: progress bars would only clutter its log
        values["show_progress"] = False
    return dataclasses.replace(config, **{k: v for k, v in values.items() if k in names})


def compress(run: str | Path, recipe: Recipe, out: str | Path, context: dict[str, Any] | None = None,
             reuse: Sequence[str] = ()) -> ChainResult:
    """Apply a recipe to `run` and save the result in `out` (the API behind `ndogo compress`).

    Intermediate outputs and markers go to `<out>.stages/`, so running the same
    command again after an interruption continues where it stopped.
    """
    out = Path(out)
    bound = bind_recipe(recipe, context)
    if not bound:
        raise RecipeError("recipe: no stages")
    if out.exists() and any(out.iterdir()):
        raise RecipeError(f"{out}: already exists and is not empty; choose another --out or delete it")
    result = run_chain(run, bound, out.with_name(out.name + ".stages"), out, reuse)
    if result.path.resolve() != out.resolve():
        # the last stage adopted an existing run: give the user their own copy
        if out.exists():
            out.rmdir()
        shutil.copytree(result.path, out, ignore=shutil.ignore_patterns("checkpoint", "checkpoint.tmp"))
        result = ChainResult(out, result.stages)
    return result


# ----------------------------------------------------------------------------------------------
# The finetune stage: the foundation's fine-tuning loop under the stage contract.


def plain_finetune(config: FinetuneStageConfig) -> tuple[FinetuneConfig, dict[str, Any]]:
    """The foundation's FinetuneConfig for a stage config, and the hooks that prune before fine-tuning.

    The pruning settings end up in `extra["prune"]` (as `ndogo finetune` records
    them), so a run trained either way has the same saved config and can be reused.
    """
    names = {f.name for f in dataclasses.fields(FinetuneConfig)}
    cfg = FinetuneConfig(**{k: v for k, v in dataclasses.asdict(config).items() if k in names})
    cfg.extra = dict(cfg.extra)
    if not config.prune_sparsity:
        return cfg, {}
    from ndogo.compress.prune.magnitude import finetune_pruning

    return cfg, finetune_pruning(cfg, config.prune_sparsity, config.prune_schedule, config.prune_scope,
                                 config.prune_include_embeddings)


def finetune_stage(run: str | Path, out: str | Path, config: FinetuneStageConfig) -> Path:
    """Fine-tune `run` (a pretrained encoder, or a compressed model to recover) into `out`.

    A recipe takes exactly the options `ndogo finetune` takes (`model` and `out`
    come from the chain), plus the prune_* options for pruning before fine-tuning.
    """
    from ndogo.train.finetune import CHECKPOINT, finetune

    cfg, hooks = plain_finetune(dataclasses.replace(config, model=str(run), out=str(out)))
    if not cfg.langs:
        raise RecipeError("finetune: no language (give langs=[...] or run it with a language)")
    finetune(cfg, show_progress=os.environ.get("NDOGO_PROGRESS", "1") != "0", **hooks)
    # The checkpoint (optimizer state, three times the model) only serves to resume this
    # stage; the chain's marker now records it as finished, so it is dead weight.
    shutil.rmtree(Path(out) / CHECKPOINT, ignore_errors=True)
    return Path(out)


def find_finetuned(source: str, config: Any, candidates: Sequence[str]) -> Path | None:
    """An existing fine-tuned run with the same settings as `config` from `source`, if any.

    Candidates are run directories (or folders of them); `{lang}` and `{seed}` in a
    candidate are filled from the config. A run matches when its metrics.json records
    the same model, languages, data and training settings, and training finished.
    """
    want = _finetune_identity(plain_finetune(dataclasses.replace(config, model=source))[0])
    for cand in candidates:
        cand = cand.format(lang="+".join(config.langs), seed=config.seed)
        base = Path(cand).expanduser()
        dirs = [base] + (sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else [])
        for d in dirs:
            metrics = d / "metrics.json"
            if not (metrics.is_file() and (d / "config.json").is_file()):
                continue
            try:
                saved = json.loads(metrics.read_text())
            except json.JSONDecodeError:
                continue  # being written right now
            have = saved.get("config", {})
            try:
                same = _finetune_identity(have) == want
            except (ModelError, TypeError, KeyError):
                continue
            if same and _training_finished(saved):
                return d.resolve()  # absolute: rows and workers must not depend on the working directory
    return None


def _finetune_identity(cfg: Any) -> dict[str, Any]:
    values = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    values = {k: v for k, v in values.items() if k not in NOT_IDENTITY or k == "model"}
    for key, default in LATER_DEFAULTS.items():
        if values.get(key, default) == default:
            values.pop(key, None)  # runs saved before the field existed behaved as its default
    model = str(values["model"])
    values["model"] = str(Path(resolve_model(model)).resolve()) if Path(model).expanduser().exists() \
        else resolve_model(model)
    data = values.get("data")
    if data and Path(data).expanduser().exists():
        values["data"] = str(Path(data).expanduser().resolve())
    values["langs"] = list(values.get("langs") or [])
    values.pop("out", None)
    return values


def _training_finished(metrics: dict[str, Any]) -> bool:
    cfg = metrics.get("config", {})
    if cfg.get("max_steps"):
        return metrics.get("steps", 0) >= cfg["max_steps"]
    if metrics.get("epochs_run", 0) >= cfg.get("epochs", 10**9):
        return True
    patience, best = cfg.get("patience"), metrics.get("best_epoch")
    return bool(patience and best and metrics.get("epochs_run", 0) - best >= patience)
