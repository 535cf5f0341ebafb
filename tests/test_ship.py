"""`ndogo ship`: bundles that load alone, ordinary file modes, and a model card whose numbers are the evaluation's."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from ndogo.deploy.ship import ship
from ndogo.evaluate import evaluate, save_eval

TEXTS = ["Musa Aliyu ya je Kano ranar Litinin.", "Shugaba Buhari ya gana da gwamnan jihar Legas a Abuja."]


@pytest.fixture(scope="module")
def run(tiny_model: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny model as a fine-tuned run leaves it: evaluated, with training leftovers beside it."""
    out = tmp_path_factory.mktemp("run") / "minilm-hau"
    shutil.copytree(tiny_model, out)
    (out / "model.safetensors").chmod(0o600)  # as transformers writes it
    (out / "checkpoint").mkdir()
    (out / "checkpoint" / "optimizer.pt").write_bytes(b"\0" * 1000)
    (out / "optimizer.pt").write_bytes(b"\0" * 100)
    (out / ".lock").write_text("")
    (out / "metrics.json").write_text('{"best_dev_f1": 0.1}')
    (out / "ndogo.json").write_text('{"kind": "hf", "stage": "finetune", "base_model": "minilm", "langs": ["hau"]}')
    save_eval(out, evaluate(out, str(tiny_corpus), "hau", "test", speed=True, threads=1, sample=16))
    save_eval(out, evaluate(out, str(tiny_corpus), "hau", "dev", speed=False, threads=1))
    return out


def card(bundle: Path) -> tuple[dict[str, Any], str]:
    """The parsed YAML front matter and the body of a bundle's README.md."""
    text = (bundle / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    header, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


def metric(header: dict[str, Any], split: str, name: str) -> float:
    (results,) = [r for r in header["model-index"][0]["results"] if r["dataset"]["split"] == split]
    (value,) = [m["value"] for m in results["metrics"] if m["name"] == name]
    return value


def test_bundle_holds_exactly_what_inference_needs(run: Path, tmp_path: Path) -> None:
    bundle = ship(run, tmp_path / "bundle")
    names = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*"))
    assert names == ["README.md", "config.json", "model.safetensors", "ndogo.json", "tokenizer.json",
                     "tokenizer_config.json"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in bundle.iterdir())
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o755


def test_bundle_loads_alone_in_transformers_and_ndogo(run: Path, tmp_path: Path) -> None:
    import ndogo

    want = ndogo.load(run).predict(TEXTS)
    bundle = ship(run, tmp_path / "bundle")
    moved = tmp_path / "elsewhere" / "hau-ner"
    shutil.copytree(bundle, moved)  # nothing outside the bundle may be needed
    shutil.rmtree(bundle)
    assert ndogo.load(moved).predict(TEXTS) == want

    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    model = AutoModelForTokenClassification.from_pretrained(moved, use_safetensors=True)
    tok = AutoTokenizer.from_pretrained(moved)
    assert model.config.id2label[1] == "B-PER"
    ner = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="first")
    # The card's usage: words of a sentence MasakhaNER would split the same way get ndogo's labels.
    text = "Musa Aliyu ya je Kano ranar Litinin"
    assert [(e["start"], e["end"], e["entity_group"]) for e in ner(text)] == \
        [(e.start, e.end, e.label) for e in ndogo.load(moved).predict(text)[0]]


def test_card_numbers_are_the_evaluations(run: Path, tmp_path: Path) -> None:
    test = json.loads((run / "evals" / "hau-test.json").read_text())
    dev = json.loads((run / "evals" / "hau-dev.json").read_text())
    header, body = card(ship(run, tmp_path / "bundle"))
    assert header["language"] == ["hau"] and header["license"] == "cc-by-nc-4.0"
    assert header["datasets"] == ["masakhaner"] and "token-classification" in header["tags"]
    assert header["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    for split, row in (("test", test), ("dev", dev)):
        assert metric(header, split, "F1 (entity-level, seqeval)") == round(100 * row["f1"], 2)
        assert metric(header, split, "Precision") == round(100 * row["precision"], 2)
        for label, per in row["per_type"].items():
            assert metric(header, split, f"F1 {label}") == round(100 * per["f1"], 2)
    assert f"{test['latency_ms_b1']:.2f} ms per sentence" in body
    assert f"{test['latency_e2e_ms_b1']:.2f} ms" in body
    assert f"{test['throughput_b32']:.2f} sentences/s" in body
    assert "CC BY-NC 4.0" in body and 'aggregation_strategy="first"' in body
    assert "Seed spread: not measured" in body


def test_unmeasured_numbers_say_so(tiny_model: Path, tmp_path: Path) -> None:
    header, body = card(ship(tiny_model, tmp_path / "bundle", lang="yor"))
    assert "model-index" not in header and header["language"] == ["yor"]
    assert "| test | not measured |" in body and "Latency: not measured." in body
    assert "Against the fine-tuned baseline: not measured" in body


@pytest.fixture(scope="module")
def int8_run(run: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run quantized with onnx-int8 (its ndogo.json links back to the run) and evaluated on test."""
    from ndogo.compress.quantize import quant_config, quantize

    int8 = quantize(run, tmp_path_factory.mktemp("int8") / "hau-int8", quant_config("onnx-int8"))
    save_eval(int8, evaluate(int8, str(tiny_corpus), "hau", "test", speed=True, threads=1, sample=16))
    return int8


def test_int8_bundle_runs_torch_free_and_reports_its_cost(run: Path, int8_run: Path, tmp_path: Path) -> None:
    import ndogo
    from ndogo.deploy.runtime import OnnxPredictor

    int8 = int8_run
    row = json.loads((int8 / "evals" / "hau-test.json").read_text())
    bundle = ship(int8, tmp_path / "bundle")
    moved = tmp_path / "moved"
    shutil.copytree(bundle, moved)
    predictor = ndogo.load(moved, threads=1)
    assert isinstance(predictor, OnnxPredictor)
    assert predictor.predict(TEXTS) == ndogo.load(int8, runtime="torch").predict(TEXTS)
    header, body = card(moved)
    assert "onnx" in header["tags"] and "int8" in header["tags"]
    base = json.loads((run / "evals" / "hau-test.json").read_text())
    assert f"({round(100 * (row['f1'] - base['f1']), 2):.2f} points)" in body
    assert f"{base['size_bytes'] / row['size_bytes']:.2f}× smaller" in body
    assert "quantize:method=onnx-int8" in body and "ndogo quantize runs/minilm-hau --method onnx-int8" in body


def test_ship_refuses_a_used_directory(run: Path, tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    with pytest.raises(ValueError, match="not empty"):
        ship(run, tmp_path / "used")


def test_recommend_ships_its_choice_with_the_sweeps_numbers(run: Path, int8_run: Path, tiny_corpus: Path,
                                                            tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app
    from ndogo.experiments.store import open_store

    dev = {k: v for k, v in json.loads((run / "evals" / "hau-dev.json").read_text()).items()
           if k in ("f1", "precision", "recall", "per_type")}
    store = open_store(tmp_path / "sweep", must_exist=False)
    rows = {}
    for recipe, path, spec in (("baseline", run, ""), ("onnx-int8", int8_run, "quantize:method=onnx-int8")):
        row = json.loads((path / "evals" / "hau-test.json").read_text())
        rows[recipe] = {**row, "cell_id": recipe, "model": "minilm", "lang": "hau", "recipe": recipe,
                        "recipe_spec": spec, "seed": 42, "status": "done", "path": str(path),
                        "baseline_path": str(run), "data": str(tiny_corpus), "split": "test",
                        "is_baseline": recipe == "baseline", "dev_f1": dev["f1"], "dev_precision": dev["precision"],
                        "dev_recall": dev["recall"], "dev_per_type": dev["per_type"],
                        "machine": {"cpu": row["cpu"], "threads": 1}}
        store.put(rows[recipe])
    store.close()
    out = tmp_path / "shipped"
    result = CliRunner().invoke(app, ["recommend", str(tmp_path / "sweep"), "--lang", "hau", "--max-f1-drop", "100",
                                      "--ship", str(out), "--json"])
    assert result.exit_code == 0, result.output
    choice = json.loads(result.output)
    assert choice["recipe"] == "onnx-int8" and choice["bundle"] == str(out)
    header, body = card(out)
    chosen = rows["onnx-int8"]
    assert metric(header, "test", "F1 (entity-level, seqeval)") == round(100 * chosen["f1"], 2)
    assert metric(header, "dev", "F1 (entity-level, seqeval)") == round(100 * dev["f1"], 2)
    assert choice["command"] in body and f"on {chosen['cpu']}" in body
    assert f"({round(100 * (chosen['f1'] - rows['baseline']['f1']), 2):.2f} points)" in body


def test_ship_command(run: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app

    result = CliRunner().invoke(app, ["ship", str(run), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "evaluations in the card: hau/dev, hau/test" in result.output
    again = CliRunner().invoke(app, ["ship", str(run), "--out", str(tmp_path / "b")])
    assert again.exit_code == 2 and "already exists and is not empty" in again.output
