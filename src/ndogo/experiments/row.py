"""The result row: every column an experiment writes, named and typed once.

An experiment (`cell.run_cell`) returns one row; the store (`store.py`) keeps the key and the
metric columns below as SQL columns and the whole row as JSON beside them; the report's CSV
(`report/build.py`), its tables and `recommend` read the same names. A column is added here,
and the store, the CSV (unless `csv=False`: JSON only) and `Row` pick it up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict


@dataclass(frozen=True)
class Range:
    """The values a numeric column may hold. NaN and the infinities are never among them: a row that
    holds one was not measured, and `recommend` would rank it (NaN compares false to everything)."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False  # `low` itself is refused: a size or a time of 0 was not measured

    def holds(self, x: float) -> bool:
        return math.isfinite(x) and (x > self.low if self.low_open else x >= self.low) and x <= self.high

    def describe(self, whole: bool) -> str:
        """What the column must be, for an error message: "a positive number", "a number between 0 and 1"."""
        number = "whole number" if whole else "number"
        if math.isfinite(self.low) and math.isfinite(self.high):
            return f"a {number} between {self.low:g} and {self.high:g}"
        if self.low == 0 and self.low_open:
            return f"a positive {number}"
        if math.isfinite(self.low):
            return f"a {number} of at least {self.low:g}"
        return "a whole number" if whole else "a finite number"


FRACTION = Range(0.0, 1.0)  # F1, precision, recall, sparsity: stored as fractions (0.80), never points (80)
POSITIVE = Range(0.0, low_open=True)  # sizes, times, rates
AT_LEAST_0 = Range(0.0)  # counts and durations that may be zero
FINITE = Range()


@dataclass(frozen=True)
class Column:
    """One column of a result row: its name, type, meaning, whether the store indexes it, and what a
    reader accepts in it (`check_row_values`): its range, its choices, whether a row must have it."""

    name: str
    type: type
    doc: str
    stored: bool = False  # a real SQL column of the store (reports sort and filter on it)
    range: Range = FINITE  # numeric columns only
    choices: tuple[str, ...] = ()  # text columns: the values allowed ("" where the column is not required)
    # "always": every row has a value; "done": every finished row has one; "headline": every finished row
    # whose headline metric (its `metric` column) this is has one
    required: str = ""
    csv: bool = True  # False: only in the row's JSON (the store keeps it; the report's CSV leaves it out)
    hint: Any = None  # the annotation `Row` gives it where `type` is too coarse (dict[str, float]); else `type`

    @property
    def scalar(self) -> bool:
        """A text or number column: the ones a reader checks the values of (`value_problem`)."""
        return self.type in (str, int, float)


def _json(name: str, kind: type, doc: str, hint: Any = None) -> Column:
    """A column of the row's JSON only: what the cell was, how it ran, and its nested results."""
    return Column(name, kind, doc, csv=False, hint=hint)


# The metric columns a row's `metric` may name: each task's headline is one of them (NER's f1, POS's and
# topic's accuracy, sentiment's macro_f1), and `dev_<metric>` is its dev column.
HEADLINES = ("f1", "accuracy", "macro_f1")
DEFAULT_METRIC = "f1"  # a row without `metric` was written before the task axis: NER, entity F1

COLUMNS: tuple[Column, ...] = (
    Column("cell_id", str, "hash of everything that decides the result (model, language, chain, seed, data...)",
           required="always"),
    Column("model", str, "the model's name in the sweep config", required="always"),
    Column("lang", str, "the language code", required="always"),
    Column("recipe", str, "the recipe's name in the sweep config", required="always"),
    Column("recipe_spec", str, "the recipe as one line of stages"),
    Column("start", str, "what the chain starts from: finetuned (the baseline) or pretrained",
           choices=("finetuned", "pretrained")),
    Column("seed", int, "the seed of fine-tuning and of every stage that has one", required="always"),
    Column("status", str, "done or failed (running while a cell runs)", choices=("done", "failed", "running"),
           required="always"),
    Column("split", str, "the split the metrics are measured on (test unless the config says otherwise)"),
    Column("f1", float, "entity F1 on `split` (seqeval, strict IOB2): NER's headline metric", stored=True,
           range=FRACTION, required="headline"),
    Column("precision", float, "entity precision on `split`", range=FRACTION),
    Column("recall", float, "entity recall on `split`", range=FRACTION),
    Column("dev_f1", float, "entity F1 on dev: what every choice is made on", range=FRACTION),
    Column("task", str, "the task the model was trained for (its ndogo.json's; empty: NER, rows from before tasks)"),
    Column("metric", str, "the key of the row's headline metric, what budgets and choices read (empty: f1)",
           stored=True, choices=HEADLINES),
    Column("accuracy", float, "accuracy on `split` (words for a tagger, texts for a classifier)", stored=True,
           range=FRACTION, required="headline"),
    Column("macro_f1", float, "macro-F1 over labels on `split`", stored=True, range=FRACTION, required="headline"),
    Column("dev_accuracy", float, "accuracy on dev", range=FRACTION),
    Column("dev_macro_f1", float, "macro-F1 over labels on dev", range=FRACTION),
    Column("size_bytes", int, "the model directory's size on disk", stored=True, range=POSITIVE),
    Column("latency_ms_b1", float, "median ms of one forward pass at batch 1 (tokenized input)", stored=True,
           range=POSITIVE),
    Column("latency_e2e_ms_b1", float, "median ms from a raw sentence to its entities, batch 1", range=POSITIVE),
    Column("throughput_b32", float, "sentences per second at batch 32", range=POSITIVE),
    Column("sparsity", float, "fraction of all parameters that are zero", stored=True, range=FRACTION),
    Column("sparsity_encoder_linear", float, "fraction of the encoder's Linear weights that are zero",
           range=FRACTION),
    Column("params", int, "parameters (a quantized model counts its source's)", range=AT_LEAST_0),
    Column("nonzero_params", int, "parameters that are not zero", range=AT_LEAST_0),
    Column("kind", str, "how the model is stored (hf, sparse, structured, quantized, onnx...)"),
    Column("threads", int, "CPU threads the timings used", range=Range(1.0)),
    Column("seconds", float, "wall time of the cell: building the model and measuring it", range=AT_LEAST_0),
    Column("attempts", int, "how many times the cell was started", range=AT_LEAST_0),
    Column("path", str, "the model directory the row measures"),
    Column("data", str, "the corpus the row was measured on: a local folder or a hub id"),
    Column("error", str, "why a failed cell failed"),
    # how the row's model was trained (`training_columns`): its last trained stage, the one whose weights
    # the row measures (finetune for a baseline, distill for a student); empty where no stage trained
    Column("best_epoch", int, "the epoch dev chose, of the last trained stage", range=Range(1.0)),
    Column("epochs_run", int, "epochs that stage ran (fewer than max_epochs: patience stopped it)",
           range=Range(1.0)),
    Column("max_epochs", int, "the most epochs that stage's schedule allowed", range=Range(1.0)),
    Column("dev_curve", str, "that stage's dev headline metric after each epoch, space-separated"),
    # beside the columns, in the row's JSON (not the CSV)
    _json("per_type", dict, "F1 (precision, recall, support) per entity type (or label) on `split`",
          dict[str, dict[str, float]]),
    _json("transfer", dict, "zero-shot metrics (the task's) and per_type on other languages",
          dict[str, dict[str, Any]]),
    _json("stages", list, "each stage run: its call, output path, reuse and seconds", list[dict[str, Any]]),
    _json("model_source", str, "the model as the config names it (hub id, path or short name)"),
    _json("chain", str, "the whole chain run from the source, baseline stage included, as one line"),
    _json("baseline_path", str, "the fine-tuned model the chain compressed", str | None),
    _json("started", float, "Unix time the cell started"),
    _json("finished", float, "Unix time the cell finished"),
    _json("log", str, "the cell's log file"),
    _json("node", str, "the Ray node it ran on", str | None),
    _json("device", str, "cpu or the GPU's name the timings ran on"),
    _json("sentences", int, "sentences scored on `split`"),
    _json("peak_rss_mb", float, "the process's peak resident memory when measured"),
    _json("latency_sentences", int, "sentences the timings used"),
    _json("cpu", str, "the CPU the timings ran on"),
    _json("peak_gpu_mb", float, "peak GPU memory allocated when measured"),
    _json("dev_precision", float, "entity precision on dev"),
    _json("dev_recall", float, "entity recall on dev"),
    _json("dev_per_type", dict, "F1 (precision, recall, support) per entity type (or label) on dev",
          dict[str, dict[str, float]]),
    _json("dev_unknown_words", float, "a baseline's share of dev words its tokenizer reads as unknown: with a dev "
          "F1 of 0, says the model cannot read the language (the sweep's baseline policy reads it)"),
    _json("is_baseline", bool, "the row is the model every Δ of its language is measured against"),
    _json("model_deleted", bool, "`keep_models = false` removed the scored model"),
    _json("traceback", str, "a failed cell's last frames"),
    _json("training", dict, "per trained stage: best epoch (chosen on dev), epochs run, dev curve",
          dict[str, dict[str, Any]]),
    _json("durations", dict, "seconds of each stage, of building and of measuring", dict[str, Any]),
    _json("versions", dict, "installed versions of the packages that decide a result", dict[str, str]),
    _json("machine", dict, "the machine the row was measured on", dict[str, Any]),
)
PER_TYPE_PREFIX = "f1_"  # a CSV's per-type F1 columns: f1_PER, f1_LOC... (fractions, as f1)
KEY = ("cell_id", "model", "lang", "recipe", "seed")
BASELINE = "baseline"  # the recipe name of the fine-tuned model as it is: every Δ is against it
STORED = tuple(c.name for c in COLUMNS if c.stored)
BY_NAME = {c.name: c for c in COLUMNS}


# A result row as code reads it: every column above, typed, and nothing else (a cell writes no other key).
Row = TypedDict("Row", {c.name: c.hint or c.type for c in COLUMNS}, total=False)  # type: ignore[misc]


def csv_columns() -> list[str]:
    """The CSV's columns, in order (per-type F1 follows as f1_<TYPE>)."""
    return [c.name for c in COLUMNS if c.csv]


def check_row(row: dict[str, Any]) -> None:
    """Refuse a row whose known columns have the wrong type (a bug upstream, caught before it is stored)."""
    for name, value in row.items():
        column = BY_NAME.get(name)
        if column is None or value is None:
            continue
        ok = isinstance(value, column.type) or (column.type is float and isinstance(value, int)
                                                  and not isinstance(value, bool))
        if not ok:
            raise TypeError(f"row column {name!r} should be {column.type.__name__}, got {type(value).__name__} "
                            f"({value!r})")


def csv_required(header: list[str] | None = None) -> list[str]:
    """The columns a CSV of rows must have: without `f1`, say, its rows would read as unmeasured and,
    read with `--also`, silently replace the measured rows of the same cells.

    A CSV without a `metric` column holds NER rows (as every CSV from before the task axis), so it
    must have `f1`; one with it may hold any task's rows, so it has every headline column (as every CSV
    `ndogo report` writes), and each row's own is checked on the row (`check_row_values`).
    """
    always = [c.name for c in COLUMNS if c.required in ("always", "done")]
    return [*always, *(HEADLINES if header is not None and "metric" in header else (DEFAULT_METRIC,))]


def training_columns(row: Mapping[str, Any]) -> dict[str, Any]:
    """`best_epoch`, `epochs_run`, `max_epochs` and `dev_curve` from the row's `training` record.

    The record (`cell.training_record`) is JSON only, so a CSV of rows would lose whether a teacher
    trained until dev stopped improving; these columns carry that for the last trained stage. Rows
    stored before the record named `max_epochs` take it from that stage's `epochs` option.
    """
    training = row.get("training")
    if not isinstance(training, dict) or not training:
        return {}
    # keys are "<stage number>-<stage>" ("2-distill": the chain's second stage); the last one trained last
    numbered = {int(k.split("-", 1)[0]): v for k, v in training.items() if str(k).split("-", 1)[0].isdigit()}
    if not numbered:
        return {}
    index = max(numbered)
    stage = numbered[index] if isinstance(numbered[index], dict) else {}
    most = stage.get("max_epochs")
    stages = row.get("stages")
    if most is None and isinstance(stages, list) and 0 < index <= len(stages) and isinstance(stages[index - 1], dict):
        options = stages[index - 1].get("options")
        most = options.get("epochs") if isinstance(options, dict) else None
    curve = stage.get("dev_curve") or []
    return {"best_epoch": stage.get("best_epoch"), "epochs_run": stage.get("epochs_run"),
            "max_epochs": most if isinstance(most, int) and most >= 1 else None,
            "dev_curve": " ".join(f"{x:.5f}" for x in curve)}


def still_rising(row: Mapping[str, Any]) -> str | None:
    """Why a row's model may not have converged, or None: dev chose the last epoch its schedule allowed.

    Patience stops a run once dev stops improving; a run whose best epoch is its last allowed one never
    showed that it had stopped (me5s's amh teacher gained 0.78 dev points in its tenth and last epoch).
    """
    best, run, most = row.get("best_epoch"), row.get("epochs_run"), row.get("max_epochs")
    if not (isinstance(best, int) and isinstance(run, int) and isinstance(most, int)) or not best == run == most:
        return None
    curve = [float(x) for x in str(row.get("dev_curve") or "").split()]
    gain = f", {100 * (curve[-1] - curve[-2]):+.2f} dev points over epoch {most - 1}" if len(curve) >= 2 else ""
    return f"best epoch {best} of at most {most}{gain}"


def metric_of(row: Mapping[str, Any]) -> str:
    """The key of a row's headline metric: its `metric` column, f1 (NER) for rows from before the task axis."""
    return row.get("metric") or DEFAULT_METRIC


def task_of(row: Mapping[str, Any]) -> str:
    """The name of the task a row's model was trained for: its `task` column; the default task (NER) for
    rows from before the task axis. Reports give each task its own tables: its metric's points are
    not another task's."""
    from ndogo.tasks import DEFAULT_TASK

    return row.get("task") or DEFAULT_TASK


def headline(row: Mapping[str, Any]) -> float | None:
    """The row's score on its split in its own metric (entity F1 for NER, accuracy for POS...), or None."""
    value = row.get(metric_of(row))
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def dev_headline(row: Mapping[str, Any]) -> float | None:
    """The row's dev score in its own metric (`dev_<metric>`): what every choice is made on; None if absent."""
    value = row.get(f"dev_{metric_of(row)}")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def metric_label(metric: str) -> str:
    """How a headline metric is printed ("F1", "accuracy", "macro-F1"): the label of the task it heads."""
    from ndogo.tasks import get_task, task_names

    for name in task_names():
        if get_task(name).metric == metric:
            return get_task(name).metric_label
    return metric.replace("_", "-")


def one_metric(rows: list[Mapping[str, Any]], where: str) -> str:
    """The one headline metric of `rows` (f1 where there are none); a one-line error where they mix several.

    A budget of "1 point" means one point of one metric: F1 points and accuracy points are not comparable,
    so rows of a NER sweep and of a POS sweep are never ranked together.
    """
    found = list(dict.fromkeys(metric_of(r) for r in rows))
    if len(found) > 1:
        raise ValueError(f"{where}: these rows mix headline metrics ({', '.join(found)}: tasks "
                         f"{', '.join(dict.fromkeys(r.get('task') or '?' for r in rows))}); a budget in points "
                         "is in one metric, so choose among one task's rows at a time")
    return found[0] if found else DEFAULT_METRIC


def per_type_column(label: str) -> Column:
    """The column of one entity type's F1 (a CSV's f1_PER; the store's per_type["PER"]["f1"])."""
    return Column(f"{PER_TYPE_PREFIX}{label}", float, f"F1 of {label} entities on `split`", range=FRACTION)


def shown(value: Any) -> str:
    """A value as an error message quotes it: numbers as written, text quoted and cut short."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "…")
    text = repr(value)
    text = text[:-2] if isinstance(value, float) and text.endswith(".0") else text
    return text if len(text) <= 40 else text[:40] + "…"


def value_problem(column: Column, value: Any) -> str | None:
    """Why `value` cannot stand in `column` (`column f1 is 5.0; must be a number between 0 and 1`), or None."""
    if value is None or not column.scalar:
        return None
    if column.type is str:
        if not isinstance(value, str):
            return f"column {column.name} is {shown(value)}; must be text"
        if column.choices and value and value not in column.choices:
            return f"column {column.name} is {shown(value)}; must be one of {', '.join(column.choices)}"
        return None
    whole = column.type is int
    number = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        x = float(value) if number else math.nan
    except OverflowError:  # an int past float's range (JSON holds any)
        x = math.inf
    if not number or not column.range.holds(x) or (whole and not x.is_integer()):
        hint = " (F1 and its kin are fractions, 0.80, not points, 80)" if column.range is FRACTION \
            and 1 < x <= 100 else ""
        return f"column {column.name} is {shown(value)}; must be {column.range.describe(whole)}{hint}"
    return None


def parse_value(name: str, text: str) -> Any:
    """A CSV field as its column's value ("" is None for numbers, "" for text; unknown columns stay text).

    Raises ValueError (`column size_bytes is 'big'; must be a positive whole number`) for text that is no
    value of the column; the range itself is checked with the whole row (`check_row_values`).
    """
    column = BY_NAME.get(name)
    if column is None and name.startswith(PER_TYPE_PREFIX):
        column = per_type_column(name[len(PER_TYPE_PREFIX):])
    if column is None or column.type is str or not column.scalar:
        return text
    if text == "":  # a CSV cannot tell "" from None: a number not measured
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"column {name} is {shown(text)}; must be {column.range.describe(column.type is int)}") \
            from None
    if column.type is int:
        if not math.isfinite(number) or not number.is_integer():
            raise ValueError(f"column {name} is {text[:40]}; must be {column.range.describe(True)}")
        return int(text) if text.strip().lstrip("+-").isdigit() else int(number)  # "42" exactly, "42.0" too
    return number


def check_row_values(row: Mapping[str, Any]) -> None:
    """Refuse a row that no reader can trust: a required column empty (a done row's headline metric among
    them: f1 for NER, `row[metric]` for other tasks), a value of the wrong type or out
    of its column's range (F1 5, a size of -5, a latency of NaN), per-type F1 outside 0–1.

    Every reader of rows (a CSV, a store) calls this and puts the file and line (or cell) in front of the
    message, so that `recommend` never ranks an impossible number and `report` never tabulates one.
    """
    done = row.get("status") == "done"
    for column in COLUMNS:
        value = row.get(column.name)
        empty = value is None or value == ""
        if empty and (column.required == "always" or (column.required == "done" and done)
                      or (column.required == "headline" and done and metric_of(row) == column.name)):
            when = "" if column.required == "always" else " (the row is done: it was measured)"
            raise ValueError(f"column {column.name} is empty{when}; every row of results must have it")
        problem = value_problem(column, value)
        if problem:
            raise ValueError(problem)
    per_type = row.get("per_type")
    if per_type is None:
        return
    if not isinstance(per_type, Mapping):
        raise ValueError(f"per_type is {shown(per_type)}; must map entity types to their F1")
    for label, scores in per_type.items():
        column = per_type_column(label)
        f1 = scores.get("f1") if isinstance(scores, Mapping) else scores
        problem = value_problem(column, f1) if f1 is not None else f"column {column.name} has no F1"
        if problem:
            raise ValueError(problem)
