"""The result row: every column an experiment writes, named and typed once.

An experiment (`cell.run_cell`) returns one row; the store (`store.py`) keeps the key and the
metric columns below as SQL columns and the whole row as JSON beside them; the report's CSV
(`report/build.py`), its tables and `recommend` read the same names. A column is added here,
and the store, the CSV and `Row` pick it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict


@dataclass(frozen=True)
class Column:
    """One column of a result row: its name, type, meaning, and whether the store indexes it."""

    name: str
    type: type
    doc: str
    stored: bool = False  # a real SQL column of the store (reports sort and filter on it)


COLUMNS: tuple[Column, ...] = (
    Column("cell_id", str, "hash of everything that decides the result (model, language, chain, seed, data...)"),
    Column("model", str, "the model's name in the sweep config"),
    Column("lang", str, "the language code"),
    Column("recipe", str, "the recipe's name in the sweep config"),
    Column("recipe_spec", str, "the recipe as one line of stages"),
    Column("start", str, "what the chain starts from: finetuned (the baseline) or pretrained"),
    Column("seed", int, "the seed of fine-tuning and of every stage that has one"),
    Column("status", str, "done or failed (running while a cell runs)"),
    Column("split", str, "the split `f1` is measured on (test unless the config says otherwise)"),
    Column("f1", float, "entity F1 on `split` (seqeval, strict IOB2)", stored=True),
    Column("precision", float, "entity precision on `split`"),
    Column("recall", float, "entity recall on `split`"),
    Column("dev_f1", float, "entity F1 on dev: what every choice is made on"),
    Column("size_bytes", int, "the model directory's size on disk", stored=True),
    Column("latency_ms_b1", float, "median ms of one forward pass at batch 1 (tokenized input)", stored=True),
    Column("latency_e2e_ms_b1", float, "median ms from a raw sentence to its entities, batch 1"),
    Column("throughput_b32", float, "sentences per second at batch 32"),
    Column("sparsity", float, "fraction of all parameters that are zero", stored=True),
    Column("sparsity_encoder_linear", float, "fraction of the encoder's Linear weights that are zero"),
    Column("params", int, "parameters (a quantized model counts its source's)"),
    Column("nonzero_params", int, "parameters that are not zero"),
    Column("kind", str, "how the model is stored (hf, sparse, structured, quantized, onnx...)"),
    Column("threads", int, "CPU threads the timings used"),
    Column("seconds", float, "wall time of the cell: building the model and measuring it"),
    Column("attempts", int, "how many times the cell was started"),
    Column("path", str, "the model directory the row measures"),
    Column("data", str, "the corpus the row was measured on: a local folder or a hub id"),
    Column("error", str, "why a failed cell failed"),
)
KEY = ("cell_id", "model", "lang", "recipe", "seed")
BASELINE = "baseline"  # the recipe name of the fine-tuned model as it is: every Δ is against it
STORED = tuple(c.name for c in COLUMNS if c.stored)
BY_NAME = {c.name: c for c in COLUMNS}


class Row(TypedDict, total=False):
    """A result row as code reads it (the columns above, plus per-type F1 and the run's record)."""

    cell_id: str
    model: str
    lang: str
    recipe: str
    recipe_spec: str
    start: str
    seed: int
    status: str
    split: str
    f1: float
    precision: float
    recall: float
    dev_f1: float
    size_bytes: int
    latency_ms_b1: float
    latency_e2e_ms_b1: float
    throughput_b32: float
    sparsity: float
    sparsity_encoder_linear: float
    params: int
    nonzero_params: int
    kind: str
    threads: int
    seconds: float
    attempts: int
    path: str
    error: str
    per_type: dict[str, dict[str, float]]  # F1 (precision, recall, support) per entity type on `split`
    transfer: dict[str, dict[str, Any]]  # zero-shot f1/precision/recall/per_type on other languages
    stages: list[dict[str, Any]]
    # what the cell was and where it ran, beside the columns (in the row's JSON, not the CSV)
    model_source: str  # the model as the config names it (hub id, path or short name)
    chain: str  # the whole chain run from the source, baseline stage included, as one line
    data: str
    baseline_path: str | None  # the fine-tuned model the chain compressed
    started: float  # Unix time the cell started and finished
    finished: float
    log: str  # the cell's log file
    node: str | None  # the Ray node it ran on
    device: str  # cpu or the GPU's name the timings ran on
    sentences: int  # sentences scored on `split`
    peak_rss_mb: float
    latency_sentences: int  # sentences the timings used
    cpu: str
    peak_gpu_mb: float
    dev_precision: float
    dev_recall: float
    dev_per_type: dict[str, dict[str, float]]
    is_baseline: bool  # the row is the model every Δ of its language is measured against
    model_deleted: bool  # `keep_models = false` removed the scored model
    traceback: str  # a failed cell's last frames
    training: dict[str, dict[str, Any]]  # per trained stage: best epoch (chosen on dev), epochs run, dev curve
    durations: dict[str, Any]
    versions: dict[str, str]
    machine: dict[str, Any]


def csv_columns() -> list[str]:
    """The CSV's columns, in order (per-type F1 follows as f1_<TYPE>)."""
    return [c.name for c in COLUMNS]


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
