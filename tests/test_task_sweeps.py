"""Sweeps, the result store, reports and `ndogo recommend` on every task's rows (#38 item 2).

A POS tagger and a topic classifier (the suite's tiny BERT, on small samples of MasakhaPOS and
SIB-200 from ../shared/data) go through a sweep of baseline + dynamic int8 + 50% pruning; their rows
carry the task and its headline metric (accuracy), and the report and `recommend` read that metric,
with the budget in its points. NER rows, old stores and the committed CSVs read as before.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ndogo.experiments.config import load_sweep_config
from ndogo.experiments.row import check_row_values, dev_headline, headline, metric_of
from ndogo.experiments.store import STORE, Store, load_rows
from ndogo.experiments.sweep import run_sweep, unusable_baseline
from ndogo.report.build import write_report
from ndogo.report.recommend import format_recommendation, recommend
from ndogo.tasks import get_task
from tests.test_tasks import sample

ROOT = Path(__file__).resolve().parents[1]
ATLAS = ROOT / "docs" / "bench" / "atlas-minilm.csv"


def grid(path: Path, model: Path, lang: str) -> Path:
    """baseline + dynamic int8 + 50% magnitude pruning, one seed, no timing (size is what recommend minimizes)."""
    path.write_text(f"""
name = "tiny-task"
languages = ["{lang}"]
seeds = [1]

[models.tiny]
model = "{model}"
finetune = {{ max_steps = 12, batch_size = 8, lr = 1e-3 }}

[recipes]
int8 = "quantize:method=dynamic-int8"
p50 = "prune:sparsity=0.5"

[evaluate]
speed = false
skip_empty_baselines = false

[resources]
cpus = 1
""")
    return path


@pytest.fixture(scope="module")
def swept(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Each task's sweep directory and language: one over MasakhaPOS (hau), one over SIB-200 (hau_Latn)."""
    tmp = tmp_path_factory.mktemp("task-sweeps")
    n = {"train": 48, "dev": 16, "test": 16}
    out = {}
    for name, corpus, lang in (("pos", "masakhapos", "hau"), ("topic", "sib200", "hau_Latn")):
        data = sample(tmp / name, corpus, lang, n)
        config = grid(tmp / f"{name}.toml", tiny_model, lang)
        summary = run_sweep(load_sweep_config(config, str(data)), tmp / f"out-{name}", show_progress=False)
        assert (summary.done, summary.failed) == (3, 0), name
        out[name] = (tmp / f"out-{name}", lang)
    return out


@pytest.mark.parametrize("name", ["pos", "topic"])
def test_a_task_sweep_stores_rows_of_its_task_and_metric(name: str, swept: dict[str, tuple[Path, str]]) -> None:
    out, _ = swept[name]
    task = get_task(name)
    rows = {r["recipe"]: r for r in load_rows(out)}
    assert set(rows) == {"baseline", "int8", "p50"}
    for row in rows.values():
        assert row["task"] == name and row["metric"] == task.metric == metric_of(row)
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["dev_accuracy"] <= 1.0
        assert 0.0 <= row["macro_f1"] <= 1.0 and 0.0 <= row["dev_macro_f1"] <= 1.0
        assert row.get("f1") is None and row.get("dev_f1") is None  # f1 stays entity F1: NER's only
        assert headline(row) == row["accuracy"] and dev_headline(row) == row["dev_accuracy"]
        assert row["per_type"] and row["dev_per_type"]
    # the dev curve of the baseline's training is read in the metric that chose its epoch
    curve = rows["baseline"]["training"]["1-finetune"]["dev_curve"]
    assert curve and all(0.0 <= x <= 1.0 for x in curve)
    with sqlite3.connect(out / STORE) as conn:  # the store's SQL columns hold them too
        stored = conn.execute("SELECT metric, accuracy, f1 FROM cells WHERE status = 'done'").fetchall()
    assert {m for m, _, _ in stored} == {"accuracy"} and all(a is not None and f is None for _, a, f in stored)


@pytest.mark.parametrize("name", ["pos", "topic"])
def test_the_report_and_recommend_read_the_task_metric(name: str, swept: dict[str, tuple[Path, str]],
                                                       tmp_path: Path) -> None:
    out, lang = swept[name]
    files = write_report(out, tmp_path / "report")
    md = (tmp_path / "report" / "results.md").read_text(encoding="utf-8")
    assert "test accuracy per language and method" in md and "accuracy ×100" in md
    assert "test F1 per language" not in md and "F1 per label" in md
    assert "What to ship" in md and "chosen on dev within 1 point" in md
    assert {f.name for f in files} >= {"results.csv", "results.md", "index.html"}
    # the report's CSV reads back as the same rows, metric and all
    again = {r["cell_id"]: r for r in load_rows(tmp_path / "report" / "results.csv")}
    assert {c: (r["metric"], r["accuracy"], r["dev_accuracy"]) for c, r in again.items()} == \
        {r["cell_id"]: (r["metric"], r["accuracy"], r["dev_accuracy"]) for r in load_rows(out)}

    rows = {r["recipe"]: r for r in load_rows(out)}
    base = rows["baseline"]["dev_accuracy"]
    # a budget in accuracy points: the smallest model whose dev accuracy is within it
    for budget in (0.0, 100.0):
        choice = recommend(out, lang, budget)
        within = [r for r in rows.values() if 100 * (base - r["dev_accuracy"]) <= budget + 1e-9]
        assert choice["recipe"] in {r["recipe"] for r in within}
        assert choice["size_bytes"] == min(r["size_bytes"] for r in within)
        assert choice["metric"] == "accuracy" and choice["chosen_on"] == "dev"
        assert choice["dev_f1"] == round(rows[choice["recipe"]]["dev_accuracy"], 4)  # the headline, by its old key
        text = format_recommendation(choice)
        assert f"within {budget:g} dev accuracy point(s)" in text and "  dev accuracy   " in text
        assert "dev F1" not in text


def test_recommend_refuses_rows_of_two_metrics(swept: dict[str, tuple[Path, str]]) -> None:
    """A point of accuracy is no point of F1: a POS sweep read with the NER atlas is refused in one line."""
    out, lang = swept["pos"]
    with pytest.raises(ValueError, match=r"mix headline metrics \(accuracy, f1") as err:
        recommend(out, lang, 1.0, also=[ATLAS])
    assert "\n" not in str(err.value) and str(err.value).startswith(str(out))


def test_recommend_help_says_the_budget_is_in_the_task_metric() -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app

    result = CliRunner().invoke(app, ["recommend", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--max-f1-drop" in text and "accuracy for POS and topic" in text


def test_ner_rows_and_the_committed_csvs_read_as_before() -> None:
    """Rows without `metric` are NER rows of entity F1; their done rows must have f1, other tasks' their own."""
    rows = load_rows(ATLAS)
    assert rows and all(metric_of(r) == "f1" and headline(r) == r["f1"] and dev_headline(r) == r.get("dev_f1")
                        for r in rows)
    ner = {"cell_id": "c", "model": "m", "lang": "hau", "recipe": "baseline", "seed": 1, "status": "done"}
    with pytest.raises(ValueError, match="column f1 is empty"):
        check_row_values(ner)
    check_row_values({**ner, "f1": 0.5})
    pos = {**ner, "task": "pos", "metric": "accuracy"}
    with pytest.raises(ValueError, match="column accuracy is empty"):
        check_row_values({**pos, "f1": 0.5})
    check_row_values({**pos, "accuracy": 0.9})  # no f1: not a NER row
    with pytest.raises(ValueError, match="column metric is 'bleu'; must be one of f1, accuracy, macro_f1"):
        check_row_values({**pos, "metric": "bleu", "accuracy": 0.9})
    from ndogo.experiments.cell import PROGRESS_LINE

    # the console echoes a tagger's early stop as it echoes NER's (finetune names the task's metric)
    assert all(PROGRESS_LINE.match(f"no dev {m} gain for 2 epochs: stopping") for m in ("F1", "accuracy", "macro-F1"))
    weak = {**pos, "accuracy": 0.1, "dev_accuracy": 0.1}
    assert "dev accuracy 10.00" in (unusable_baseline(weak, 0.2) or "")
    assert unusable_baseline({**ner, "f1": 0.1, "dev_f1": 0.0}).startswith(
        "its baseline learned nothing (dev F1 0.00: not one entity found)")


def test_a_store_written_before_the_task_columns_still_opens(tmp_path: Path) -> None:
    """Its table gains the new columns (ALTER TABLE), its NER rows read as they were, and new rows go in."""
    old_schema = """CREATE TABLE cells (cell_id TEXT PRIMARY KEY, model TEXT NOT NULL, lang TEXT NOT NULL,
        recipe TEXT NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL CHECK (status IN ('running', 'done',
        'failed')), f1 REAL, size_bytes INTEGER, latency_ms_b1 REAL, sparsity REAL, error TEXT, started REAL,
        finished REAL, attempts INTEGER NOT NULL DEFAULT 0, row TEXT NOT NULL);
        CREATE TABLE sweeps (id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL, config_path TEXT,
        config TEXT, argv TEXT, environment TEXT);"""
    old = {"cell_id": "c1", "model": "m", "lang": "hau", "recipe": "baseline", "seed": 1, "status": "done",
           "f1": 0.8, "dev_f1": 0.79, "size_bytes": 10}
    with sqlite3.connect(tmp_path / STORE) as conn:
        conn.executescript(old_schema)
        conn.execute("INSERT INTO cells (cell_id, model, lang, recipe, seed, status, f1, size_bytes, attempts, row) "
                     "VALUES ('c1', 'm', 'hau', 'baseline', 1, 'done', 0.8, 10, 1, ?)", (json.dumps(old),))
    conn.close()
    store = Store(tmp_path)
    try:
        [row] = store.rows("done")
        assert headline(row) == 0.8 and metric_of(row) == "f1"
        store.put({**old, "cell_id": "c2", "lang": "yor", "task": "pos", "metric": "accuracy", "f1": None,
                   "accuracy": 0.9, "dev_accuracy": 0.88})
        assert [metric_of(r) for r in store.rows("done")] == ["f1", "accuracy"]
    finally:
        store.close()
    with sqlite3.connect(tmp_path / STORE) as conn:
        assert conn.execute("SELECT metric, accuracy FROM cells WHERE cell_id = 'c2'").fetchone() == ("accuracy", 0.9)
    conn.close()


def test_a_sentiment_sweep_scores_a_language_without_training_data_zero_shot(
        tiny_model: Path, tmp_path: Path) -> None:
    """AfriSenti's orm has no training set: the sentiment atlas scores every model on it zero-shot
    (`[evaluate] transfer`), in the task's metric, from the real folder with its empty train file."""
    n = {"train": 48, "dev": 16, "test": 16}
    data = sample(tmp_path, "afrisenti", "hau", n)
    sample(tmp_path / "orm-part", "afrisenti", "orm", n)
    (data / "orm").symlink_to(tmp_path / "orm-part" / "afrisenti" / "orm")
    assert (data / "orm" / "train.tsv").read_text(encoding="utf-8").count("\n") == 1  # the header alone
    config = grid(tmp_path / "sentiment.toml", tiny_model, "hau")
    config.write_text(config.read_text().replace("skip_empty_baselines = false",
                                                 'skip_empty_baselines = false\ntransfer = ["orm"]'))
    summary = run_sweep(load_sweep_config(config, str(data)), tmp_path / "out", show_progress=False)
    assert (summary.done, summary.failed) == (3, 0)
    for row in load_rows(tmp_path / "out"):
        scored = row["transfer"]["orm"]
        assert row["task"] == "sentiment" and 0.0 <= scored["macro_f1"] <= 1.0, scored
