"""`ndogo prune-sweep`: F1 against sparsity per language, after or before fine-tuning, with zero-shot transfer.

Not a pipeline of its own: the grid is a sweep config (built as objects, one recipe per
pruning variant, and written to OUT/prune-sweep.toml as the record) run by the sweep, into
the same cells, store and artifacts as any other (`ndogo sweep OUT/prune-sweep.toml --out OUT --resume` continues
it; `ndogo report OUT` views it). What this module adds is the grid and the layout
its users have always read: OUT/sweep.csv, a row per (pruned model, evaluation
language), the model's own language first and the others zero-shot. The tables and
plots drawn from those rows are a report view (`ndogo.report.sparsity_sweep`).

A variant is one recipe: `dense` is the fine-tuned run as it is (the baseline),
`after` prunes it (`prune:sparsity=S,recover_epochs=R`), `before` prunes the
pretrained encoder and fine-tunes it with the pruned weights held at zero
(`finetune:prune_sparsity=S`). Pruned models are scored, then deleted unless
`keep_models` (a sweep of three languages would leave gigabytes); models made by
fine-tuning before pruning are kept, each being a full training run.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ndogo.data.corpus import KNOWN_TYPES
from ndogo.experiments.row import BASELINE

if TYPE_CHECKING:
    from ndogo.experiments.config import SweepConfig

FIELDS = ["cell", "model_lang", "when", "sparsity", "recover_epochs", "eval_lang", "transfer", "f1", "precision",
          "recall", *[f"f1_{t}" for t in KNOWN_TYPES], "achieved_sparsity", "model_sparsity", "size_bytes",
          "train_dev_f1", "seconds", "model"]
CONFIG = "prune-sweep.toml"
MODEL = "pruned"  # the model's name in the generated sweep config


@dataclass
class SweepSpec:
    """Everything that decides a pruning sweep."""

    out: str
    runs: str = "runs/minilm-{lang}"  # fine-tuned model of each language
    langs: list[str] = field(default_factory=lambda: ["hau", "swa", "yor"])  # whose models are pruned
    data: str | None = None
    eval_langs: list[str] | None = None  # scored on (zero-shot beside the model's own); default: langs
    sparsities: list[float] = field(default_factory=lambda: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    recover_epochs: list[int] = field(default_factory=lambda: [0])
    transfer: bool = True
    scope: str = "layer"
    include_embeddings: bool = False
    before: list[float] = field(default_factory=list)  # sparsities pruned before fine-tuning
    before_model: str = "minilm"
    before_epochs: int = 10
    before_lr: float = 1e-4
    before_batch_size: int = 16
    split: str = "test"
    threads: int | None = None
    keep_models: bool = False
    executor: str = "local"  # ray: as many cells at once as the cores allow (`threads` each)


@dataclass(frozen=True)
class Variant:
    """One pruning variant of the grid, a recipe of the generated sweep config."""

    when: str  # dense, after or before (fine-tuning)
    sparsity: float
    recover_epochs: int = 0

    @property
    def recipe(self) -> str:
        return "baseline" if self.when == "dense" else f"{self.when}-s{self.sparsity:g}-r{self.recover_epochs}"

    def key(self, lang: str) -> str:
        """The `cell` column: the same names the sweep's CSV has always had."""
        return f"{lang}-{self.when}-s{self.sparsity:g}-r{self.recover_epochs}"


def variants(spec: SweepSpec) -> list[Variant]:
    """The grid's variants, cheapest first: dense (where 0 is a sparsity), one-shot, recovery, before."""
    for s in [*spec.sparsities, *spec.before]:
        if not 0 <= s < 1:
            raise ValueError(f"sparsities must be in [0, 1), got {s}")
    out = [Variant("dense", 0.0)] if 0 in spec.sparsities else []
    for r in sorted(set(spec.recover_epochs)):
        out += [Variant("after", s, r) for s in spec.sparsities if s > 0]
    out += [Variant("before", s) for s in spec.before if s > 0]
    return list(dict.fromkeys(out))


def eval_langs(spec: SweepSpec, lang: str) -> list[str]:
    """The model's own language first, then (with transfer) the others, zero-shot."""
    others = [x for x in (spec.eval_langs or spec.langs) if x != lang]
    return [lang, *(others if spec.transfer else [])]


def _q(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string, number, boolean or list is a TOML one


def _option(x: float) -> float:
    # as the grid's recipes have always written it (0.3, not 0.30000000000000004): cell ids hash the value
    return float(f"{x:g}")


def sweep_config(spec: SweepSpec, path: Path) -> SweepConfig:
    """The grid as a sweep config, built as objects and checked as a config file would be.

    Its cells, and their ids, are those of the TOML `config_toml` writes beside the results
    (OUT/prune-sweep.toml), so `ndogo sweep OUT/prune-sweep.toml --resume` continues the same cells.
    """
    from ndogo.compress.recipe import Recipe, StageCall
    from ndogo.data.corpus import is_hub_name, resolve_data
    from ndogo.experiments.config import (
        ConfigError,
        ModelSpec,
        RecipeSpec,
        SweepConfig,
        _check_model,
        _eval_spec,
        _resources,
        check_cells,
        machine_limits,
    )

    where = str(path)
    data = resolve_data(spec.data)
    if Path(data).expanduser().exists():
        data = str(Path(data).expanduser().resolve())
    elif not is_hub_name(data):
        raise ConfigError(f"{where}: data: {data}: no such folder (and not a hub corpus name such as 'masakhaner')")
    runs = str(Path.cwd() / Path(spec.runs).expanduser())  # the config lives in OUT, not where we stand
    before_model = spec.before_model
    if Path(before_model).expanduser().exists():
        before_model = str(Path(before_model).expanduser().resolve())
    _check_model(before_model, f"{where}: models.{MODEL}.model", True)
    model = ModelSpec(MODEL, before_model, {"epochs": spec.before_epochs, "lr": spec.before_lr,
                                            "batch_size": spec.before_batch_size}, finetuned=runs)
    cpus, gpus = _resources({"cpus": spec.threads or os.cpu_count() or 1}, f"{where}: resources", machine_limits())
    recipes = [RecipeSpec(BASELINE, Recipe(name=BASELINE), cpus, gpus)]  # every grid has one, dense or not
    for v in variants(spec):
        if v.when == "after":
            call = StageCall("prune", {"sparsity": _option(v.sparsity), "scope": spec.scope,
                                       "include_embeddings": spec.include_embeddings,
                                       "recover_epochs": int(v.recover_epochs)})
            recipes.append(RecipeSpec(v.recipe, Recipe((call,), v.recipe), cpus, gpus))
        elif v.when == "before":
            call = StageCall("finetune", {"prune_sparsity": _option(v.sparsity), "prune_scope": spec.scope,
                                          **({"prune_include_embeddings": True} if spec.include_embeddings else {})})
            recipes.append(RecipeSpec(v.recipe, Recipe((call,), v.recipe, "pretrained"), cpus, gpus))
    transfer = list(spec.eval_langs or spec.langs) if spec.transfer else []
    evaluate = _eval_spec({"split": spec.split, "speed": False, "transfer": transfer,
                           "keep_models": spec.keep_models}, f"{where}: evaluate", spec.langs)
    config = SweepConfig("prune-sweep", where, "", list(spec.langs), [42], data, [model], recipes, evaluate)
    check_cells(config)
    return dataclasses.replace(config, text=config_toml(config))


def config_toml(config: SweepConfig) -> str:
    """The config as the TOML file a user can rerun or extend (and the sweep records as what it ran)."""
    model = config.models[0]
    finetune = ", ".join(f"{k} = {_q(v)}" for k, v in model.finetune.items())
    lines = [
        "# Written by `ndogo prune-sweep`: its grid as a sweep config. Continue it with",
        f"#   ndogo sweep {CONFIG} --out <this folder> --resume",
        f"name = {_q(config.name)}",
        f"languages = {_q(config.languages)}",
        f"seeds = {_q(config.seeds)}",
        f"data = {_q(config.data)}",
        "",
        f"[models.{model.name}]",
        f"model = {_q(model.model)}  # the pretrained encoder that `before` variants fine-tune",
        f"finetuned = {_q(model.finetuned)}  # the fine-tuned runs that `dense` and `after` start from",
        f"finetune = {{ {finetune} }}",
        "",
        "[recipes]",
    ]
    lines += [f"{r.name if r.name == BASELINE else _q(r.name)} = {_q(r.recipe.one_line())}"
              for r in config.recipes if r.recipe.start == "finetuned"]
    for r in config.recipes:
        if r.recipe.start == "pretrained":
            lines += ["", f"[recipes.{_q(r.name)}]", 'from = "pretrained"', f"stages = {_q(r.recipe.one_line())}"]
    ev = config.evaluate
    lines += ["", "[evaluate]", f"split = {_q(ev.split)}", f"speed = {_q(ev.speed)}",
              f"transfer = {_q(list(ev.transfer))}", f"keep_models = {_q(ev.keep_models)}", "", "[resources]",
              f"cpus = {config.recipes[0].cpus}", ""]
    return "\n".join(lines)


def csv_rows(row: dict[str, Any], variant: Variant, spec: SweepSpec) -> list[dict[str, Any]]:
    """A stored result row as the sweep CSV's rows: one for its own language, one per zero-shot language."""
    lang = row["lang"]
    trained = variant.when == "before" or variant.recover_epochs > 0
    common = {
        "cell": variant.key(lang), "model_lang": lang, "when": variant.when, "sparsity": variant.sparsity,
        "recover_epochs": variant.recover_epochs,
        # over the encoder's Linear weights, the set magnitude pruning prunes by default
        "achieved_sparsity": round(float(row.get("sparsity_encoder_linear") or 0.0), 6) if variant.sparsity else 0.0,
        "model_sparsity": row.get("sparsity"), "size_bytes": row.get("size_bytes"),
        "train_dev_f1": round(row["dev_f1"], 4) if trained and row.get("dev_f1") is not None else "",
        "seconds": round(float(row.get("seconds") or 0.0), 1), "model": row.get("path", ""),
    }
    scores = {lang: row, **(row.get("transfer") or {})}
    out = []
    for target in eval_langs(spec, lang):
        r = scores.get(target)
        if r is None:
            continue
        per_type = r.get("per_type") or {}
        out.append({**common, "eval_lang": target, "transfer": target != lang, "f1": round(r["f1"], 4),
                    "precision": round(r["precision"], 4), "recall": round(r["recall"], 4),
                    **{f"f1_{t}": round(per_type[t]["f1"], 4) if t in per_type else "" for t in KNOWN_TYPES}})
    return out


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a sweep CSV (numbers as floats), empty if there is none yet."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for k in ("sparsity", "f1", "precision", "recall", "achieved_sparsity", "model_sparsity"):
            row[k] = float(row[k])
        row["recover_epochs"] = int(row["recover_epochs"])
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """The whole CSV, written then renamed (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


@dataclass
class PruneSweepResult:
    """What a run left: the CSV and its rows, the sweep config, and the cells that failed (with why)."""

    csv: Path
    config: Path
    rows: list[dict[str, Any]]
    failures: list[str]


def check(spec: SweepSpec) -> None:
    """Refuse a grid that cannot work before anything is written (the sweep checks the rest)."""
    from ndogo.compress.prune.magnitude import SCOPES
    from ndogo.data.corpus import lang_dir, resolve_data

    if spec.scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {spec.scope!r}")
    variants(spec)
    # only dense and after variants read a fine-tuned run; a before-only sweep starts from the pretrained model
    if any(v.when != "before" for v in variants(spec)):
        for lang in spec.langs:
            if not Path(spec.runs.format(lang=lang, seed=42)).is_dir():
                raise ValueError(f"no fine-tuned model for {lang} at {spec.runs.format(lang=lang, seed=42)}")
    root = Path(resolve_data(spec.data))
    if root.is_dir():  # a language the local corpus lacks fails now, not after the first cells are scored
        for lang in dict.fromkeys([*spec.langs, *(spec.eval_langs or [])]):
            lang_dir(root, lang)


def run_sweep(spec: SweepSpec, show_progress: bool = True) -> PruneSweepResult:
    """Run every cell not done yet in OUT (through `ndogo sweep`), then write OUT/sweep.csv from the store.

    Rows already in OUT/sweep.csv are kept (an older ndogo appended them there
    without a store), and a variant it holds for every language is not run again.
    """
    from rich.console import Console

    from ndogo.experiments.store import Store
    from ndogo.experiments.sweep import run_sweep as run_grid

    check(spec)
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / CONFIG
    config = sweep_config(spec, config_path)
    config_path.write_text(config.text, encoding="utf-8")  # a record, and what `ndogo sweep --resume` reads
    ours = {c.id for c in config.cells()}  # not rows of an earlier grid with other settings
    csv_path = out / "sweep.csv"
    by_recipe = {v.recipe: v for v in variants(spec)}
    earlier = read_rows(csv_path)
    done = {(r["cell"], r["eval_lang"]) for r in earlier}
    todo = [v.recipe for v in by_recipe.values()
            if not all((v.key(lang), e) in done for lang in spec.langs for e in eval_langs(spec, lang))]
    failures: list[str] = []
    if todo:
        # the baseline comes along where `after` variants need it; a before-only grid needs no fine-tuned run
        summary = run_grid(config.only_recipes(todo), out, executor=spec.executor, resume=True,
                           show_progress=show_progress, console=Console(stderr=True, quiet=not show_progress))
        failures = summary.failures
    store = Store(out)
    try:
        stored = [r for r in store.rows("done") if r.get("cell_id") in ours and r.get("recipe") in by_recipe]
    finally:
        store.close()
    rows: list[dict[str, Any]] = []
    for row in stored:
        rows += csv_rows(row, by_recipe[row["recipe"]], spec)
    have = {(r["cell"], r["eval_lang"]) for r in rows}
    rows = [r for r in earlier if (r["cell"], r["eval_lang"]) not in have] + rows
    order = {v.key(lang): (i, j) for i, v in enumerate(by_recipe.values()) for j, lang in enumerate(spec.langs)}
    rows.sort(key=lambda r: order.get(r["cell"], (len(order), 0)))
    write_rows(csv_path, rows)
    return PruneSweepResult(csv_path, config_path, read_rows(csv_path), failures)
