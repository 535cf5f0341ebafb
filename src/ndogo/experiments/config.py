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
from dataclasses import dataclass, field
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

# Stage options that name files a stage reads (checked to exist when a sweep starts).
PATH_OPTIONS = ("corpus", "unlabeled")
TOP_KEYS = {"name", "languages", "seeds", "data", "models", "recipes", "evaluate", "resources"}


class ConfigError(ValueError):
    """A sweep config that cannot work, naming the file and key."""


@dataclass(frozen=True)
class ModelSpec:
    """A model of the grid: what to fine-tune, how, and which existing runs may stand in."""

    name: str
    model: str
    finetune: dict[str, Any] = field(default_factory=dict)
    baselines: tuple[str, ...] = ()
    # False: never fine-tune here; cells use a matching run from `baselines` or fail saying so
    train: bool = True
    # a fine-tuned model per language ({lang}, {seed}) that cells start from as it is, however it was trained
    finetuned: str | None = None

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
    """How each cell's result is measured (the columns of `ndogo evaluate`)."""

    split: str = "test"
    speed: bool = True
    batch_size: int = 32
    sample: int = 200
    # A lock file held while a cell is measured, so timings on a shared machine do not overlap.
    lock: str | None = None
    # languages each model is also scored on, zero-shot (the row's `transfer` column)
    transfer: tuple[str, ...] = ()
    # False: a cell's model is deleted once scored, unless its last stage trains (finetune, distill)
    keep_models: bool = True
    # True: when a baseline finds no entity on dev (F1 0, e.g. a tokenizer that cannot read the
    # language), the cells built on it are recorded as not run, with the reason, instead of scoring 0
    skip_empty_baselines: bool = True
    # With skip_empty_baselines: a baseline whose dev F1 (0-1) is at or below this floor is not
    # compressed either. 0 (the default) means only one that found nothing; a floor is opt-in, for
    # grids where a budget can fail on a language (me5s's 3 epochs are 123 steps on luo).
    min_baseline_dev_f1: float = 0.0


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
    grid to some of its languages, and the corpus need only hold those: a new
    language's folder alone runs a seventeen-language config's cells for it.
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
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; keys: {', '.join(sorted(TOP_KEYS))}")

    name = _typed(doc.get("name", path.stem), str, f"{where}: name")
    languages = _str_list(doc.get("languages"), f"{where}: languages", "language codes, e.g. [\"hau\", \"swa\"]")
    seeds = doc.get("seeds", [42])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in seeds):
        raise ConfigError(f"{where}: seeds: expected a non-empty list of integers, got {seeds!r}")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise ConfigError(f"{where}: seeds: {bad[0]} is not between 0 and 2**32 - 1")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds: listed twice: {sorted({s for s in seeds if seeds.count(s) > 1})[0]}")
    data_value = data or _typed(doc.get("data"), (str, type(None)), f"{where}: data")
    data_value = resolve_data(data_value)
    if Path(data_value).expanduser().exists():
        data_value = str(Path(data_value).expanduser().resolve())
        for lang in languages if only is None else [x for x in only if x in languages]:
            try:
                lang_dir(Path(data_value), lang)
            except ValueError as err:
                raise ConfigError(f"{where}: languages: {err}") from None
    elif not is_hub_name(data_value):
        # Otherwise every cell would start, fail on the missing corpus, and be stored as failed.
        raise ConfigError(f"{where}: data: {data_value}: no such folder (and not a hub corpus name such as "
                          "'masakhaner')")

    evaluate = _eval_spec(doc.get("evaluate", {}), f"{where}: evaluate", languages)
    if Path(data_value).exists():
        for lang in evaluate.transfer:
            try:
                lang_dir(Path(data_value), lang)
            except ValueError as err:
                raise ConfigError(f"{where}: evaluate.transfer: {err}") from None
    limits = machine_limits() if this_machine else None
    cpus, gpus = _resources(doc.get("resources", {}), f"{where}: resources", limits)
    models = _models(doc.get("models"), f"{where}: models", this_machine)
    recipes = _recipes(doc.get("recipes"), f"{where}: recipes", cpus, gpus, limits)

    config = SweepConfig(name, str(path), path.read_text(encoding="utf-8"), languages, list(seeds), data_value,
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


def _typed(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in kinds):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}: expected {names.replace('NoneType', 'nothing')}, got {value!r}")
    return value


def _str_list(value: Any, where: str, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of {what}, got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: listed twice: {sorted({v for v in value if value.count(v) > 1})[0]}")
    return list(value)


def _eval_spec(value: Any, where: str, languages: list[str]) -> EvalSpec:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table")
    kinds = {"split": str, "speed": bool, "batch_size": int, "sample": int, "lock": str, "transfer": (bool, list),
             "keep_models": bool, "skip_empty_baselines": bool, "min_baseline_dev_f1": (int, float)}
    for key, val in value.items():
        if key not in kinds:
            raise ConfigError(f"{where}.{key}: unknown key; keys: {', '.join(kinds)}")
        _typed(val, kinds[key], f"{where}.{key}")
    value = dict(value)
    transfer = value.pop("transfer", False)
    if transfer is True:  # every other language of the sweep
        transfer = list(languages)
    elif transfer is False:
        transfer = []
    else:
        transfer = _str_list(transfer, f"{where}.transfer", "language codes") if transfer else []
    for key in ("batch_size", "sample"):
        if key in value and value[key] < 1:
            raise ConfigError(f"{where}.{key}: expected a whole number ≥ 1, got {value[key]!r}")
    floor = value.get("min_baseline_dev_f1", 0.0)
    if isinstance(floor, bool) or not 0.0 <= floor < 1.0:
        raise ConfigError(f"{where}.min_baseline_dev_f1: expected an F1 between 0 and 1 (0.2 is 20 points), "
                          f"got {floor!r}")
    lock = value.get("lock")
    if lock is not None and not Path(lock).expanduser().parent.is_dir():
        # the lock is taken when a cell is timed, after its training
        raise ConfigError(f"{where}.lock: {lock}: its folder {Path(lock).expanduser().parent} does not exist")
    if value.get("split", "test") not in ("train", "dev", "test"):
        raise ConfigError(f"{where}.split: expected train, dev or test, got {value['split']!r}")
    return EvalSpec(**value, transfer=tuple(transfer))


def machine_limits() -> tuple[int, int]:
    """(CPUs, GPUs) of this machine: what one cell may ask for at most."""
    import torch  # (binding the stages imports it anyway)

    return os.cpu_count() or 1, torch.cuda.device_count()


def _resources(value: Any, where: str, limits: tuple[int, int] | None = None) -> tuple[int, float]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table with cpus and gpus")
    unknown = set(value) - {"cpus", "gpus"}
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key; keys: cpus, gpus")
    cpus = value.get("cpus", os.cpu_count() or 1)
    gpus = value.get("gpus", 0)
    if not isinstance(cpus, int) or isinstance(cpus, bool) or cpus < 1:
        raise ConfigError(f"{where}.cpus: expected a whole number ≥ 1, got {cpus!r}")
    if not isinstance(gpus, int | float) or isinstance(gpus, bool) or gpus < 0:
        raise ConfigError(f"{where}.gpus: expected a number ≥ 0, got {gpus!r}")
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
        unknown = set(spec) - {"model", "finetune", "baselines", "train", "finetuned"}
        if unknown:
            raise ConfigError(f"{at}.{sorted(unknown)[0]}: unknown key; keys: model, finetune, baselines, train, "
                              "finetuned")
        model = _typed(spec.get("model", name), str, f"{at}.model")
        _check_model(model, f"{at}.model", this_machine)
        finetune = _typed(spec.get("finetune", {}), dict, f"{at}.finetune")
        baselines = spec.get("baselines", [])
        baselines = _str_list(baselines, f"{at}.baselines", "run directories") if baselines else []
        train = _typed(spec.get("train", True), bool, f"{at}.train")
        finetuned = _typed(spec.get("finetuned"), (str, type(None)), f"{at}.finetuned")
        if not train and not baselines and finetuned is None:
            raise ConfigError(f"{at}.train: false needs `baselines`, the fine-tuned runs to use instead")
        if finetuned is not None and baselines:
            raise ConfigError(f"{at}: `finetuned` (start from these runs as they are) and `baselines` (reuse runs "
                              "whose settings match) exclude each other")
        models.append(ModelSpec(name, model, dict(finetune), tuple(baselines), train, finetuned))
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
