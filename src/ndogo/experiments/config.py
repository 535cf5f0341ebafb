"""Sweep configs: models × languages × recipes × seeds, read and checked before any work.

A sweep config is a TOML (or YAML) document:

    name = "quickstart"
    languages = ["hau"]
    seeds = [42]
    # data = "../shared/data/masakhaner"   # else --data, then $NDOGO_DATA, then the hub

    [models.minilm]
    model = "minilm"                         # hub id, local directory or short name
    baselines = ["runs/minilm-{lang}"]       # fine-tuned runs to reuse when their settings match
    # finetuned = "runs/minilm-{lang}"       # or: start from these fine-tuned models as they are
    # train = false                          # never fine-tune here: use `baselines` or fail saying so
    finetune = { epochs = 3, lr = 1e-4 }     # defaults of every finetune stage of this model

    [recipes]
    baseline = ""                            # the fine-tuned model as it is
    prune50 = "prune:sparsity=0.5"
    prune50-int8 = "prune:sparsity=0.5 | quantize:method=onnx-int8"
    [recipes.prune-before]                   # a recipe that starts from the pretrained encoder
    from = "pretrained"
    stages = "prune:sparsity=0.6 | finetune"

    [evaluate]
    split = "test"
    speed = true                             # latency and throughput (batch 1 and 32)
    # transfer = true                        # also score each model zero-shot on the other languages
    # keep_models = false                    # delete each cell's model once scored (training stages stay)
    # skip_empty_baselines = false           # compress even a baseline that found no entity on dev
    # min_baseline_dev_f1 = 0.2              # nor compress one whose dev F1 is this low (0-1; default 0)

    [resources]
    cpus = 2                                 # per cell: torch threads, and Ray's CPU request
    gpus = 0

Each cell starts from its model fine-tuned on its language with its seed (one
`finetune` stage with the model's settings, shared by every cell of that
model, language and seed and reused from `baselines` when one matches), then
applies its recipe. A model with `finetuned` instead starts from those runs as
they are (no finetune stage; its baseline is the run itself), whatever trained
them. Every error names the key where it is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ndogo.compress.recipe import (
    Recipe,
    RecipeError,
    StageCall,
    bind_stage,
    load_document,
    normal_context,
    recipe_from_data,
)
from ndogo.data.corpus import is_hub_name, lang_dir, resolve_data
from ndogo.experiments.row import BASELINE
from ndogo.models.loading import SHORT_NAMES, ModelError, resolve_model
from ndogo.options import OptionError, bind, option

# Stage options that name files a stage reads (checked to exist when a sweep starts).
PATH_OPTIONS = ("corpus", "unlabeled")
SPLITS = ("train", "dev", "test")


class ConfigError(ValueError):
    """A sweep config that cannot work, naming the file and key."""


@dataclass(frozen=True)
class ModelSpec:
    """A model of the grid, its `[models.NAME]` table: what to fine-tune, how, and which existing runs may stand in."""

    name: str = option(help="The table's name ([models.NAME]): the model's name in rows and cell labels.")
    model: str = option(help="Hub id, local directory or short name (default: the table's name).")
    finetune: dict[str, Any] = option({}, help="Defaults of every finetune stage of this model (a table of "
                                      "`ndogo finetune` options, e.g. { epochs = 3, lr = 1e-4 }).")
    baselines: tuple[str, ...] = option((), help="Fine-tuned runs ({lang}, {seed}) to reuse when their settings "
                                        "match instead of fine-tuning again.")
    train: bool = option(True, help="false: never fine-tune here; cells use a matching run from `baselines` or "
                         "fail saying so.")
    finetuned: str | None = option(None, help="A fine-tuned model per language ({lang}, {seed}) that cells start "
                                   "from as it is, however it was trained (excludes `baselines`).")

    def check(self) -> None:
        """What one key says about another (the types, by the binder)."""
        _no_repeats(self.baselines, "baselines")
        if not self.train and not self.baselines and self.finetuned is None:
            raise OptionError("false needs `baselines`, the fine-tuned runs to use instead", key="train")
        if self.finetuned is not None and self.baselines:
            raise OptionError("`finetuned` (start from these runs as they are) and `baselines` (reuse runs "
                              "whose settings match) exclude each other")

    def finetuned_run(self, lang: str, seed: int) -> str | None:
        """The run `finetuned` names for a language and seed (absolute where it exists), else None."""
        if self.finetuned is None:
            return None
        path = Path(self.finetuned.format(lang=lang, seed=seed)).expanduser()
        return str(path.resolve()) if path.exists() else str(path)

    def identity(self) -> dict[str, Any]:
        """What of the model decides a cell's result (unset newer keys left out, so older ids stay)."""
        values = dataclasses.asdict(self)
        if values["finetuned"] is None:
            del values["finetuned"]
        return values


@dataclass(frozen=True)
class RecipeSpec:
    """A named recipe of a sweep and the CPUs/GPUs each of its cells reserves (for the Ray executor)."""

    name: str
    recipe: Recipe
    cpus: int
    gpus: float


@dataclass(frozen=True)
class EvalSpec:
    """How each cell's result is measured, the `[evaluate]` table (the columns of `ndogo evaluate`)."""

    split: str = option("test", choices=SPLITS, help="The split each cell is scored on.")
    speed: bool = option(True, help="Latency and throughput (batch 1 and 32).")
    batch_size: int = option(32, min=1, help="Sentences per batch when scoring.")
    sample: int = option(200, min=1, help="Sentences timed for the speed columns.")
    lock: str | None = option(None, help="A lock file held while a cell is measured, so timings on a shared "
                              "machine do not overlap (its folder must exist).")
    # in the table: true (every language of the sweep), false, or a list; here, the languages
    transfer: bool | tuple[str, ...] = option((), help="Languages each model is also scored on zero-shot (the row's "
                                              "`transfer` column): true for every language of the sweep.")
    keep_models: bool = option(True, help="false: a cell's model is deleted once scored, unless its last stage "
                               "trains (finetune, distill).")
    # When a baseline finds no entity on dev (F1 0, e.g. a tokenizer that cannot read the language),
    # the cells built on it are recorded as not run, with the reason, instead of scoring 0.
    skip_empty_baselines: bool = option(True, help="Record the cells built on a baseline that found no entity "
                                        "on dev as not run, saying why, instead of scoring 0.")
    # 0 (the default) means only one that found nothing; a floor is opt-in, for grids where a budget
    # can fail on a language (me5s's 3 epochs are 123 steps on luo).
    min_baseline_dev_f1: float = option(0.0, help="With skip_empty_baselines: nor compress a baseline whose dev "
                                        "F1 (0 <= F1 < 1; 0.2 is 20 points; the task's headline metric: accuracy for "
                                        "POS and topic) is at or below this floor.")

    def check(self) -> None:
        """What the declarations cannot say: a half-open range, a folder that must exist, no language twice."""
        if not 0.0 <= self.min_baseline_dev_f1 < 1.0:
            raise OptionError(f"expected an F1 between 0 and 1 (0.2 is 20 points), got {self.min_baseline_dev_f1!r}",
                              key="min_baseline_dev_f1")
        if self.lock is not None and not Path(self.lock).expanduser().parent.is_dir():
            # the lock is taken when a cell is timed, after its training
            raise OptionError(f"{self.lock}: its folder {Path(self.lock).expanduser().parent} does not exist",
                              key="lock")
        if not isinstance(self.transfer, bool):
            _no_repeats(self.transfer, "transfer")


@dataclass(frozen=True)
class Resources:
    """What each cell reserves, the `[resources]` table (or a recipe's own `resources`): for the Ray executor."""

    cpus: int | None = option(None, min=1, help="Per cell: torch threads, and Ray's CPU request (default: every "
                              "core of this machine).")
    gpus: float = option(0.0, min=0.0, help="Per cell: Ray's GPU request (cells here run on the CPU without one).")


def _no_repeats(values: tuple[Any, ...], key: str) -> None:
    if any(v == "" for v in values):
        raise OptionError(f"expected non-empty strings, got {list(values)!r}", key=key)
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise OptionError(f"listed twice: {twice[0]}", key=key)


@dataclass(frozen=True)
class SweepTable:
    """The top level of a sweep config: the grid's axes. Its tables are bound to their own classes
    (ModelSpec, recipes, EvalSpec, Resources), by the functions that read them."""

    languages: tuple[str, ...] = option((), help='Language codes, e.g. ["hau", "swa"].')
    name: str | None = option(None, help="The sweep's name (default: the file's name).")
    seeds: tuple[int, ...] = option((42,), help="Seeds (0 to 2**32 - 1): each cell runs once per seed.")
    data: str | None = option(None, help="The corpus: a folder or a hub name (else --data, then $NDOGO_DATA, then "
                              "the hub's MasakhaNER); --data wins.")
    models: Any = option(None, help="[models.NAME] tables (ModelSpec), or a list of model names.")
    recipes: Any = option(None, help="Named recipes: one-line strings or [recipes.NAME] tables.")
    evaluate: Any = option({}, help="The [evaluate] table (EvalSpec).")
    resources: Any = option({}, help="The [resources] table (Resources).")

    def check(self) -> None:
        """What a type cannot say: at least one language and seed, seeds in range, nothing twice."""
        if not self.languages:
            raise OptionError('expected a non-empty list of language codes, e.g. ["hau", "swa"]', key="languages")
        _no_repeats(self.languages, "languages")
        if not self.seeds:
            raise OptionError("expected a non-empty list of integers", key="seeds")
        bad = [s for s in self.seeds if not 0 <= s < 2**32]
        if bad:
            raise OptionError(f"{bad[0]} is not between 0 and 2**32 - 1", key="seeds")
        _no_repeats(self.seeds, "seeds")


@dataclass(frozen=True)
class Cell:
    """One experiment of the grid: everything a worker needs to produce one row."""

    id: str
    model: ModelSpec
    lang: str
    recipe: RecipeSpec
    seed: int
    data: str
    evaluate: EvalSpec
    source: str  # what the chain starts from (the pretrained model)
    chain: Recipe  # the finetune stage (for cells from the fine-tuned model) + the recipe
    needs: str | None = None  # id of the baseline cell this one builds on

    def context(self) -> dict[str, Any]:
        """Values stages take from the cell when their recipe leaves them out."""
        return {"lang": self.lang, "langs": [self.lang], "data": self.data, "seed": self.seed,
                "threads": self.recipe.cpus}

    def label(self) -> str:
        return f"{self.model.name}/{self.lang}/{self.recipe.name}/seed {self.seed}"


@dataclass
class SweepConfig:
    """A checked sweep config; `text` is kept verbatim so the report records exactly what was run."""

    name: str
    path: str
    text: str
    languages: list[str]
    seeds: list[int]
    data: str
    models: list[ModelSpec]
    recipes: list[RecipeSpec]
    evaluate: EvalSpec

    def only_languages(self, languages: list[str]) -> SweepConfig:
        """The same grid restricted to some of its languages (their cells keep their ids)."""
        unknown = [x for x in languages if x not in self.languages]
        if not languages or unknown:
            raise ConfigError(f"{self.path}: --lang {','.join(languages) or '(empty)'}: the config's languages are "
                              f"{', '.join(self.languages)}" + (f"; not {', '.join(unknown)}" if unknown else ""))
        return dataclasses.replace(self, languages=[x for x in self.languages if x in languages])

    def only_seeds(self, seeds: list[int]) -> SweepConfig:
        """The same grid restricted to some of its seeds (their cells keep their ids)."""
        unknown = [x for x in seeds if x not in self.seeds]
        if not seeds or unknown:
            not_these = f"; not {', '.join(map(str, unknown))}" if unknown else ""
            raise ConfigError(f"{self.path}: --seed {','.join(map(str, seeds)) or '(empty)'}: the config's seeds are "
                              f"{', '.join(map(str, self.seeds))}{not_these}")
        return dataclasses.replace(self, seeds=[x for x in self.seeds if x in seeds])

    def only_recipes(self, names: list[str]) -> SweepConfig:
        """The same grid restricted to some of its recipes (and the baseline those that need one)."""
        known = [r.name for r in self.recipes]
        unknown = [x for x in names if x not in known]
        if not names or unknown:
            raise ConfigError(f"{self.path}: --recipe {','.join(names) or '(empty)'}: the config's recipes are "
                              f"{', '.join(known)}" + (f"; not {', '.join(unknown)}" if unknown else ""))
        keep = set(names)
        if any(r.name in keep and r.recipe.start == "finetuned" for r in self.recipes):
            keep.add(BASELINE)  # their cells wait on the baseline's
        return dataclasses.replace(self, recipes=[r for r in self.recipes if r.name in keep])

    def check_runs(self, cells: list[Cell]) -> None:
        """Files the cells about to start read fail now, not as a failed row per cell.

        A model's `finetuned` run, and the text a stage reads (trim's and distill's
        `corpus`, distill's `unlabeled`). Checked when the sweep starts rather than when
        the config is read: a config names paths of the machine it is meant for, and
        reading it elsewhere (`ndogo report`, the committed configs' test) must still work.
        """
        for cell in cells:
            if cell.model.finetuned is not None and cell.recipe.recipe.start == "finetuned" \
                    and not Path(cell.source).is_dir():
                raise ConfigError(f"{self.path}: models.{cell.model.name}.finetuned: no fine-tuned model for "
                                  f"{cell.lang} at {cell.source}")
            for i, call in enumerate(cell.chain.stages):
                for key in PATH_OPTIONS:
                    value = call.options.get(key)
                    for item in [value] if isinstance(value, str) else value or []:
                        if isinstance(item, str) and not Path(item).expanduser().exists():
                            raise ConfigError(f"{stage_key(self.path, cell, i, call)}.{key}: {item}: no such "
                                              "file or folder")

    def cells(self) -> list[Cell]:
        """The grid in run order: for each model, language and seed, the baseline first."""
        out = []
        for model in self.models:
            for lang in self.languages:
                for seed in self.seeds:
                    base_id = None
                    for recipe in self.recipes:
                        cell = make_cell(model, lang, recipe, seed, self.data, self.evaluate, base_id)
                        if recipe.name == BASELINE:
                            base_id = cell.id
                        out.append(cell)
        return out


def make_cell(model: ModelSpec, lang: str, recipe: RecipeSpec, seed: int, data: str, evaluate: EvalSpec,
              baseline_id: str | None) -> Cell:
    """One cell, its id a hash of everything that decides its result, so a resumed sweep recognises it."""
    stages = list(recipe.recipe.stages)
    source = model.model
    if recipe.recipe.start == "finetuned":
        finetuned = model.finetuned_run(lang, seed)
        if finetuned is None:
            stages.insert(0, StageCall("finetune", {}))
        else:
            source = finetuned  # the user's fine-tuned model, as it is
    # the model's fine-tuning settings are the defaults of every finetune stage of its cells
    stages = [StageCall(s.stage, {**model.finetune, **s.options}) if s.stage == "finetune" else s for s in stages]
    chain = Recipe(tuple(stages), recipe.name, "pretrained")
    identity = {"model": model.identity(), "lang": lang, "chain": chain.one_line(), "seed": seed,
                "data": data, "split": evaluate.split, "speed": evaluate.speed}
    others = [x for x in evaluate.transfer if x != lang]
    if others:  # scored on more languages: another row (left out when empty, so older ids stay)
        identity["transfer"] = others
    cell_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    needs = baseline_id if recipe.recipe.start == "finetuned" and recipe.name != BASELINE else None
    return Cell(cell_id, model, lang, recipe, seed, data, evaluate, source, chain, needs)


def load_sweep_config(path: str | Path, data: str | None = None, only: list[str] | None = None,
                      this_machine: bool = True) -> SweepConfig:
    """Read a sweep config and check everything that can be checked without running anything.

    `data` (the --data option) wins over the config's `data`, which wins over
    $NDOGO_DATA and the hub's MasakhaNER. `only` (the --lang option) restricts the
    grid to some of its languages, and the corpus need only hold those; a language the
    config does not list runs with its recipes and seeds when a local corpus holds its
    folder: a new language's directory alone runs a seventeen-language config's cells for it.
    With `this_machine` (all but a sweep on a Ray cluster, whose nodes may be
    larger), a cell may not ask for more CPUs or GPUs than this machine has:
    the cell would otherwise start and fail (torch's threads) or wait forever
    (Ray's request).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: no such sweep config")
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise ConfigError(f"{path}: a sweep config is a .toml, .yaml or .json file")
    try:
        doc = load_document(path)
    except RecipeError as err:
        raise ConfigError(str(err)) from None
    where = str(path)
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a table of settings")
    keys = [f.name for f in dataclasses.fields(SweepTable)]
    unknown = set(doc) - set(keys)
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; keys: {', '.join(sorted(keys))}")
    try:
        top = bind(SweepTable, doc, takes="a sweep config", noun="key")
    except OptionError as err:
        raise ConfigError(f"{where}: {err}") from None
    name, languages, seeds = top.name or path.stem, list(top.languages), list(top.seeds)
    data_value = resolve_data(data or top.data)
    if Path(data_value).expanduser().exists():
        data_value = str(Path(data_value).expanduser().resolve())
        # A language the config does not list, whose folder the corpus holds, joins the grid with the
        # config's recipes and seeds: a new language needs its directory, not an edited config.
        # (A misspelt one has no folder, and lang_dir below names the languages there.)
        languages += [x for x in only or [] if x not in languages]
        for lang in languages if only is None else [x for x in only if x in languages]:
            try:
                lang_dir(Path(data_value), lang)
            except ValueError as err:
                raise ConfigError(f"{where}: languages: {err}") from None
    elif not is_hub_name(data_value):
        # Otherwise every cell would start, fail on the missing corpus, and be stored as failed.
        raise ConfigError(f"{where}: data: {data_value}: no such folder (and not a hub corpus name such as "
                          "'masakhaner')")

    evaluate = _eval_spec(top.evaluate, f"{where}: evaluate", languages)
    if Path(data_value).exists():
        for lang in evaluate.transfer:
            try:
                lang_dir(Path(data_value), lang)
            except ValueError as err:
                raise ConfigError(f"{where}: evaluate.transfer: {err}") from None
    limits = machine_limits() if this_machine else None
    cpus, gpus = _resources(top.resources, f"{where}: resources", limits)
    models = _models(top.models, f"{where}: models", this_machine)
    recipes = _recipes(top.recipes, f"{where}: recipes", cpus, gpus, limits)

    config = SweepConfig(name, str(path), path.read_text(encoding="utf-8"), languages, seeds, data_value,
                         models, recipes, evaluate)
    if only is not None:
        config = config.only_languages(only)
    check_cells(config)
    return config


def check_cells(config: SweepConfig) -> None:
    """Bind every cell's chain: unknown stages, options and types fail here, before any work.

    Errors name the key as written: the implicit first stage of a cell is the
    model's `finetune` table, the others are numbered as in their recipe.
    """
    seen: set[tuple[str, str]] = set()
    for cell in config.cells():
        key = (cell.model.name, cell.recipe.name)
        if key in seen:
            continue  # the same chain with another language or seed binds the same way
        seen.add(key)
        context = normal_context(cell.context())
        for i, call in enumerate(cell.chain.stages):
            try:
                bind_stage(call, context, stage_key(config.path, cell, i, call))
            except RecipeError as err:
                raise ConfigError(str(err)) from None


def stage_key(path: str, cell: Cell, i: int, call: StageCall) -> str:
    """Where stage `i` of a cell's chain is written: the model's `finetune` table for the implicit
    first stage of a cell built on the fine-tuned model, else its recipe's stage, numbered as there."""
    # a model with `finetuned` starts from its runs as they are: no implicit finetune stage
    implicit = cell.recipe.recipe.start == "finetuned" and cell.model.finetuned is None
    if implicit and i == 0:
        return f"{path}: models.{cell.model.name}.finetune"
    return f"{path}: recipes.{cell.recipe.name} stage {i + (0 if implicit else 1)} ({call.stage})"


def _eval_spec(value: Any, where: str, languages: list[str]) -> EvalSpec:
    """The `[evaluate]` table bound to EvalSpec; `transfer = true` is every language of the sweep."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table")
    spec = _bind(EvalSpec, value, where, "[evaluate]")
    if isinstance(spec.transfer, bool):
        spec = dataclasses.replace(spec, transfer=tuple(languages) if spec.transfer else ())
    return spec


def _bind(cls: type, value: dict[str, Any], where: str, takes: str, **fixed: Any) -> Any:
    """A table of the config bound to its option dataclass, its mistakes as a ConfigError naming the key."""
    try:
        return bind(cls, value, where, fixed=fixed, hidden=tuple(fixed), takes=takes, noun="key")
    except OptionError as err:
        raise ConfigError(str(err)) from None


def machine_limits() -> tuple[int, int]:
    """(CPUs, GPUs) of this machine: what one cell may ask for at most."""
    import torch  # (binding the stages imports it anyway)

    return os.cpu_count() or 1, torch.cuda.device_count()


def _resources(value: Any, where: str, limits: tuple[int, int] | None = None) -> tuple[int, float]:
    """(CPUs, GPUs) per cell from a `resources` table; with `limits`, no more than this machine has."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table with cpus and gpus")
    res = _bind(Resources, value, where, "[resources]")
    cpus, gpus = res.cpus or os.cpu_count() or 1, res.gpus
    if limits is not None:
        have_cpus, have_gpus = limits
        if cpus > have_cpus:
            raise ConfigError(f"{where}.cpus: {cpus} CPUs per cell, but this machine has {have_cpus} "
                              f"(os.cpu_count()); give at most {have_cpus}")
        if gpus > have_gpus:
            raise ConfigError(f"{where}.gpus: {gpus:g} GPU(s) per cell, but this machine has {have_gpus}; "
                              "give at most that (cells here run on the CPU without one)")
    return cpus, gpus


def _check_model(model: str, where: str, this_machine: bool) -> None:
    """A model its cells could not load fails now, not in each baseline cell.

    A missing local folder always; on this machine also a short name whose files are
    absent and, offline (HF_HUB_OFFLINE), a hub id that is not in the hub's cache.
    """
    if model in SHORT_NAMES and not this_machine:
        return
    try:
        resolved = resolve_model(model)
    except ModelError as err:
        raise ConfigError(f"{where}: {err}") from None
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")
    if this_machine and offline and resolved == model and not Path(model).expanduser().exists():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(model, "config.json"), str):
            raise ConfigError(f"{where}: {model}: not a short name ({', '.join(SHORT_NAMES)}), a local model "
                              "folder, or a hub model in this machine's cache (HF_HUB_OFFLINE is set, so it "
                              "cannot be downloaded)")


def _models(value: Any, where: str, this_machine: bool = True) -> list[ModelSpec]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = {v: {} for v in value}  # models = ["minilm"]
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{where}: expected at least one model, e.g. [models.minilm] model = \"minilm\"")
    models = []
    for name, spec in value.items():
        at = f"{where}.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{at}: expected a table (model, finetune, baselines)")
        model = _bind(ModelSpec, {"model": name, **spec}, at, "a model table", name=name)
        _check_model(model.model, f"{at}.model", this_machine)
        models.append(model)
    return models


def _recipes(value: Any, where: str, cpus: int, gpus: float,
             limits: tuple[int, int] | None = None) -> list[RecipeSpec]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{where}: expected a table of named recipes, e.g. prune50 = \"prune:sparsity=0.5\"")
    recipes = []
    for name, spec in value.items():
        at = f"{where}.{name}"
        res_cpus, res_gpus = cpus, gpus
        if isinstance(spec, dict) and "resources" in spec:
            spec = dict(spec)
            res_cpus, res_gpus = _resources(spec.pop("resources"), f"{at}.resources", limits)
        try:
            recipe = recipe_from_data(spec, at)
        except RecipeError as err:
            raise ConfigError(str(err)) from None
        if name == BASELINE and (recipe.stages or recipe.start != "finetuned"):
            raise ConfigError(f"{at}: the name {BASELINE!r} is kept for the fine-tuned model as it is (\"\")")
        recipes.append(RecipeSpec(name, dataclasses.replace(recipe, name=name), res_cpus, res_gpus))
    if not any(r.name == BASELINE for r in recipes):
        # every Δ in the report is against it, and every other cell builds on it
        recipes.insert(0, RecipeSpec(BASELINE, Recipe(name=BASELINE), cpus, gpus))
    else:
        recipes.sort(key=lambda r: r.name != BASELINE)
    return recipes
