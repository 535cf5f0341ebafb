"""`ndogo bench latency`: several models' size and speed side by side, as ratios to the first (#36)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ndogo.cli import app
from ndogo.models.runner import size_on_disk


def test_bench_latency_times_each_model_in_turn_and_gives_ratios(tiny_model: Path, int8_model: Path,
                                                                 tiny_corpus: Path) -> None:
    done = CliRunner().invoke(app, ["bench", "latency", str(tiny_model), str(int8_model), "--lang", "hau",
                                    "--data", str(tiny_corpus), "--sample", "5", "--repeats", "2", "--json"])
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)["rows"]
    assert [r["model"] for r in rows] == [str(tiny_model), str(int8_model)]
    assert [r["kind"] for r in rows] == ["hf", "onnx"]
    assert [r["size_bytes"] for r in rows] == [size_on_disk(tiny_model), size_on_disk(int8_model)]
    ref, other = rows
    assert ref["size_ratio"] == ref["latency_ratio"] == ref["throughput_ratio"] == 1.0
    assert other["size_ratio"] == round(other["size_bytes"] / ref["size_bytes"], 4)
    assert other["latency_ratio"] == round(other["latency_ms_b1"] / ref["latency_ms_b1"], 4)
    for r in rows:
        assert r["repeats"] == 2 and r["latency_sentences"] == 5 and r["threads"] == 1
        assert 0 < r["latency_ms_b1"] <= r["latency_e2e_ms_b1"] and r["throughput_b32"] > 0


def test_bench_latency_names_a_missing_model_in_one_line(tiny_model: Path, tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["bench", "latency", str(tiny_model), str(tmp_path / "nowhere"), "--lang", "hau"])
    assert done.exit_code == 2
    assert done.output.strip() == f"error: {tmp_path / 'nowhere'}: no such directory"


def test_bench_compare_scores_and_times_a_pair_resumes_from_its_cache_and_keeps_the_committed_columns(
        tiny_model: Path, int8_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    """`ndogo bench compare` (was bench/compare.py): --f1-only scores and caches; the timed run reuses those scores."""
    import csv

    pair = f"hau|int8|{int8_model}|{tiny_model}"
    base = ["bench", "compare", "--data", str(tiny_corpus), "--work", str(tmp_path / "work"), "--row", pair]
    done = CliRunner().invoke(app, [*base, "--f1-only"])
    assert done.exit_code == 0, done.output
    cached = sorted((tmp_path / "work").glob("*-f1.json"))
    assert len(cached) == 2 and not list((tmp_path / "work").glob("*timing*"))
    scored = json.loads(cached[0].read_text())
    cached[0].write_text(json.dumps({**scored, "f1": 0.123}))  # a cached measurement is read back, not remade
    done = CliRunner().invoke(app, [*base, "--repeats", "1", "--sample", "3", "--csv", str(tmp_path / "pairs.csv"),
                                    "--markdown", str(tmp_path / "pairs.md")])
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader((tmp_path / "pairs.csv").open()))
    committed = (Path(__file__).parents[1] / "docs" / "bench" / "structured-pruning.csv").open().readline().strip()
    assert list(rows[0])[: len(committed.split(","))] == committed.split(",")  # its columns, then the machine's
    assert {"cpu", "cores"} <= set(rows[0])
    row = rows[0]
    assert 0.123 in (float(row["f1"]), float(row["ref_f1"]))
    assert row["model"] == str(int8_model) and row["ref"] == str(tiny_model) and row["repeats"] == "1"
    assert float(row["speedup_b1"]) == round(float(row["ref_latency_ms_b1"]) / float(row["latency_ms_b1"]), 3)
    text = (tmp_path / "pairs.md").read_text()
    assert "Command: `ndogo bench compare " in text and f"| hau | int8 (`{int8_model}`) | `{tiny_model}` |" in text


def test_bench_compare_names_a_bad_row_in_one_line(tiny_model: Path) -> None:
    done = CliRunner().invoke(app, ["bench", "compare", "--row", f"hau|only three|{tiny_model}"])
    assert done.exit_code == 2
    assert done.output.strip() == f"error: --row 'hau|only three|{tiny_model}': expected LANG|LABEL|MODEL|REFERENCE"


def test_bench_cold_start_measures_each_path_in_its_own_process(int8_model: Path, tmp_path: Path) -> None:
    """`ndogo bench cold-start` (was bench/runtime_cold.py): the torch-free path imports no torch and needs less memory.

    Peak memory is the child's own: getrusage's ru_maxrss survives exec, so a child of the CLI (which has imported
    torch) once reported the parent's memory for both paths alike."""
    import csv

    done = CliRunner().invoke(app, ["bench", "cold-start", str(int8_model), "--repeats", "1", "--lock",
                                    str(tmp_path / "lock"), "--csv", str(tmp_path / "cold.csv")])
    assert done.exit_code == 0, done.output
    rows = {r["path"]: r for r in csv.DictReader((tmp_path / "cold.csv").open())}
    committed = (Path(__file__).parents[1] / "docs" / "bench" / "runtime-cold.csv").open().readline().strip()
    assert list(rows["torch"])[: len(committed.split(","))] == committed.split(",")
    free, torch_path = rows["torch-free"], rows["torch"]
    assert (free["imports_torch"], free["predictor"]) == ("False", "OnnxPredictor")
    assert (torch_path["imports_torch"], torch_path["predictor"]) == ("True", "Predictor")
    assert free["entities"] == torch_path["entities"] and free["runs"] == "1" and free["cpu"]
    assert float(free["peak_rss_mb_median"]) < float(torch_path["peak_rss_mb_median"])


def test_bench_batch_invariance_compares_each_sentence_alone_and_batched(
        tiny_model: Path, int8_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    """`ndogo bench batch-invariance` (was bench/batch_invariance.py): a float model's entities never move."""
    import csv

    from ndogo.evaluate import evaluate

    done = CliRunner().invoke(app, ["bench", "batch-invariance", str(tiny_model), str(int8_model), "--lang", "hau",
                                    "--data", str(tiny_corpus), "--csv", str(tmp_path / "batch.csv")])
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader((tmp_path / "batch.csv").open()))
    committed = (Path(__file__).parents[1] / "docs" / "bench" / "batch-invariance.csv").open().readline().strip()
    assert list(rows[0])[: len(committed.split(","))] == committed.split(",")
    fp32, int8 = rows
    assert (fp32["kind"], int8["kind"]) == ("hf", "onnx") and fp32["sentences"] == int8["sentences"] == "16"
    assert fp32["sentences_whose_entities_change"] == "0" and fp32["entities_alone"] == fp32["entities_batched"]
    assert float(fp32["max_score_change"]) < 1e-4
    f1 = evaluate(tiny_model, str(tiny_corpus), "hau", batch_size=32, speed=False, threads=1, device="cpu")["f1"]
    assert float(fp32["test_f1_batch_size_32"]) == round(f1, 4)


def test_bench_serve_load_serves_a_model_under_a_few_requests(int8_model: Path, tiny_corpus: Path,
                                                              tmp_path: Path) -> None:
    """`ndogo bench serve-load` (was bench/serve_load.py): a real server, a handful of requests, every row recorded."""
    import csv

    done = CliRunner().invoke(app, ["bench", "serve-load", str(int8_model), "--lang", "hau", "--data",
                                    str(tiny_corpus), "--workers", "1", "--clients", "1,2", "--requests", "3",
                                    "--bare-seconds", "0.1", "--lock", str(tmp_path / "lock"),
                                    "--csv", str(tmp_path / "load.csv")])
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader((tmp_path / "load.csv").open()))
    committed = (Path(__file__).parents[1] / "docs" / "bench" / "serve-workers.csv").open().readline().strip()
    assert list(rows[0]) == committed.split(",")
    assert [(r["workers"], r["mode"]) for r in rows] == [("", "bare-b1"), ("", "bare-b32"), ("1", "serve-c1"),
                                                          ("1", "serve-c2")]
    for r in rows[2:]:
        assert (r["requests"], r["errors"], r["server_max_batch"]) == ("3", "0", "4")
        assert float(r["p99_ms"]) >= float(r["p50_ms"]) > 0 and r["requests_per_worker"] == "3"
    assert rows[1]["vs_bare_b32"] == "1.0"


def test_bench_serve_load_refuses_bad_counts_in_one_line(int8_model: Path) -> None:
    done = CliRunner().invoke(app, ["bench", "serve-load", str(int8_model), "--lang", "hau", "--workers", "1,x"])
    assert done.exit_code == 2
    assert done.output.strip() == ("error: --workers '1,x': expected positive whole numbers separated by commas, "
                                   "e.g. 1,8,32")


@pytest.fixture(scope="module")
def task_runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, str]]:
    """A POS tagger and a topic classifier, one epoch of the tiny model on a handful of real sentences each:
    (run, corpus root, language)."""
    from ndogo.train.finetune import FinetuneConfig, finetune
    from tests.test_tasks import sample

    tmp = tmp_path_factory.mktemp("bench-tasks")
    out = {}
    for name, corpus, lang in (("pos", "masakhapos", "hau"), ("topic", "sib200", "hau_Latn")):
        data = sample(tmp, corpus, lang, {"train": 8, "dev": 4, "test": 6})
        run = tmp / f"{name}-run"
        finetune(FinetuneConfig(model=str(tiny_model), data=str(data), langs=[lang], out=str(run), epochs=1,
                                lr=1e-3, batch_size=8, threads=1), show_progress=False)
        out[name] = (run, data, lang)
    return out


@pytest.mark.parametrize(("name", "counted", "metric"), [("pos", "words_whose_tag_changes", "accuracy"),
                                                         ("topic", "texts_whose_label_changes", "accuracy")])
def test_bench_batch_invariance_compares_a_taggers_tags_and_a_classifiers_labels(
        name: str, counted: str, metric: str, task_runs: dict[str, tuple[Path, Path, str]], tmp_path: Path) -> None:
    """batch-invariance read its corpus with NER's loader, so it refused a POS or topic model's corpus
    ("no split files (test.txt)"): it reads the model's task's files and compares what the task predicts."""
    import csv

    from ndogo.evaluate import evaluate

    run, data, lang = task_runs[name]
    done = CliRunner().invoke(app, ["bench", "batch-invariance", str(run), "--lang", lang, "--data", str(data),
                                    "--csv", str(tmp_path / "batch.csv")])
    assert done.exit_code == 0, done.output
    (row,) = list(csv.DictReader((tmp_path / "batch.csv").open()))
    assert row["sentences"] == "6" and row[counted] == "0" and float(row["max_score_change"]) < 1e-4
    assert "entities_alone" not in row and "test_f1_batch_size_1" not in row
    scored = evaluate(run, str(data), lang, batch_size=32, speed=False, threads=1, device="cpu")[metric]
    assert float(row[f"test_{metric}_batch_size_32"]) == round(scored, 4)


def test_bench_serve_load_serves_a_classifier_on_its_own_endpoint(task_runs: dict[str, tuple[Path, Path, str]],
                                                                  tmp_path: Path) -> None:
    """serve-load read its texts with NER's loader and posted to /v1/entities: a topic classifier's corpus was
    refused, and its server (on /v1/labels) would have answered every request 404."""
    import csv

    run, data, lang = task_runs["topic"]
    done = CliRunner().invoke(app, ["bench", "serve-load", str(run), "--lang", lang, "--data", str(data),
                                    "--workers", "1", "--clients", "1", "--requests", "3", "--bare-seconds", "0.1",
                                    "--lock", str(tmp_path / "lock"), "--csv", str(tmp_path / "load.csv")])
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader((tmp_path / "load.csv").open()))
    assert [(r["workers"], r["mode"]) for r in rows] == [("", "bare-b1"), ("", "bare-b32"), ("1", "serve-c1")]
    assert (rows[2]["requests"], rows[2]["errors"], rows[2]["requests_per_worker"]) == ("3", "0", "3")
