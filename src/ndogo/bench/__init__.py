"""`ndogo bench`: what a user measures on their own machine beside a sweep's rows.

Each module measures one thing and returns rows (dicts) that the command prints as a table
and writes as CSV: `compare` (models against their references, F1 and speed), `serve_load`
(`ndogo serve` under concurrent clients), `cold_start` (a fresh process's first prediction and
peak memory, torch-free against PyTorch) and `batch_invariance` (entities that change with the
batch a text runs in). Timing is only meaningful on a quiet machine and with the machine named,
so every timed row carries `machine()` and holds the timing lock the sweeps hold.
"""

from __future__ import annotations

import os
from typing import Any

# The lock every timing on this machine holds (the sweeps' `[evaluate] lock` in configs/*.toml)
BENCH_LOCK = "/tmp/ndogo-bench.lock"


def corpus_texts(model: str | os.PathLike[str], data: str | None, lang: str, split: str,
                 purpose: str) -> tuple[Any, list[Any], list[str]]:
    """The model's task, a split's examples read as that task reads them, and each as raw text.

    As `ndogo evaluate` does: the task is the model's own (its ndogo.json; NER for a model saved
    without one), and a corpus of another task is refused in one line naming both, so a POS, topic or
    sentiment bundle is measured on its own corpus, never read with NER's loader.
    """
    from ndogo.models.loading import read_meta
    from ndogo.tasks import check_corpus_fits, task_of_model

    task = task_of_model(read_meta(model))
    check_corpus_fits(task, data, lang)
    examples = task.load(data, lang, (split,)).require(split, purpose)
    return task, examples, [task.text_of(e) for e in examples]


def machine() -> dict[str, Any]:
    """The CPU's name and core count: a timing means nothing without the machine it was taken on."""
    from ndogo.metrics.perf import cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count()}


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Rows as CSV, columns in the order they first appear (a row lacking one leaves it empty)."""
    import csv
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
