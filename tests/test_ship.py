"""`ndogo ship`: bundles that load alone, ordinary file modes, and a model card whose numbers are the evaluation's."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from ndogo.deploy.ship import private, ship
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
    # the sweep's command, its local paths shown without the maker's folders (item 3 of #35)
    assert private(choice["command"]) in body and f"on {chosen['cpu']}" in body
    assert str(tmp_path.parent) not in body
    assert f"({round(100 * (chosen['f1'] - rows['baseline']['f1']), 2):.2f} points)" in body


def test_ship_command(run: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app

    result = CliRunner().invoke(app, ["ship", str(run), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "evaluations in the card: hau/dev, hau/test" in result.output
    again = CliRunner().invoke(app, ["ship", str(run), "--out", str(tmp_path / "b")])
    assert again.exit_code == 2 and "already exists and is not empty" in again.output


# Issue #35: a bundle is an allow-list, shows none of the maker's paths, and its card rebuilds it as written.

def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_35_3_bundle_copies_only_what_inference_reads(run: Path, tmp_path: Path) -> None:
    import os

    messy = tmp_path / "minilm-hau"
    shutil.copytree(run, messy)
    secret = tmp_path / "secret.txt"
    secret.write_text("API_KEY=outside-the-run")
    (messy / ".env").write_text("API_KEY=do-not-ship")
    (messy / ".git").mkdir()
    (messy / ".git" / "config").write_text("[remote] url = git@example.org:me/private.git")
    (messy / "train.txt").write_text("Musa B-PER\n")
    os.symlink(secret, messy / "notes.txt")
    (messy / "old-bundle").mkdir()
    (messy / "old-bundle" / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes())
    bundle = ship(messy, tmp_path / "bundle")
    files = _tree(bundle)
    assert sorted(files) == ["README.md", "config.json", "model.safetensors", "ndogo.json", "tokenizer.json",
                             "tokenizer_config.json"]
    text = b"\n".join(files.values())
    assert b"do-not-ship" not in text and b"outside-the-run" not in text and b"private.git" not in text
    # the maker's folders appear nowhere: ndogo.json names its source by its name only
    assert str(tmp_path).encode() not in files["ndogo.json"] + files["README.md"]
    assert json.loads(files["ndogo.json"])["bundle"]["source"] == "minilm-hau"


def test_35_3_a_linked_model_file_is_refused_and_nothing_is_written(run: Path, tmp_path: Path) -> None:
    import os

    from ndogo.models.loading import ModelError

    linked = tmp_path / "linked"
    shutil.copytree(run, linked)
    outside = tmp_path / "other.safetensors"
    (linked / "model.safetensors").rename(outside)
    os.symlink(outside, linked / "model.safetensors")
    with pytest.raises(ModelError, match=r"model\.safetensors: leads to .*other\.safetensors, outside"):
        ship(linked, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
    # a link inside the run is the run's own file: shipped as a plain 0644 copy
    inside = tmp_path / "inside"
    shutil.copytree(run, inside)
    (inside / "tok").mkdir()
    (inside / "tokenizer.json").rename(inside / "tok" / "tokenizer.json")
    os.symlink("tok/tokenizer.json", inside / "tokenizer.json")
    bundle = ship(inside, tmp_path / "bundle2")
    assert not (bundle / "tokenizer.json").is_symlink() and not (bundle / "tok").exists()
    assert (bundle / "tokenizer.json").read_bytes() == (run / "tokenizer.json").read_bytes()


def test_35_3_a_bundle_inside_the_run_is_refused(run: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app

    before = _tree(run)
    result = CliRunner().invoke(app, ["ship", str(run), "--out", str(run / "bundle")])
    assert result.exit_code == 2 and "inside the model folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert _tree(run) == before and not (run / "bundle").exists()
    # a run holding a bundle shipped into it before this was refused: not counted in its size, not re-shipped
    from ndogo.models.runner import size_on_disk

    holding = tmp_path / "holding"
    shutil.copytree(run, holding)
    ship(run, holding / "bundle")  # written outside `run`, then lying inside `holding`
    assert size_on_disk(holding) == size_on_disk(run)
    again = ship(holding, tmp_path / "again")
    assert size_on_disk(again) == size_on_disk(ship(run, tmp_path / "plain")) and not (again / "bundle").exists()


def test_35_16_unmeasured_language_gets_no_sentence_of_another(tiny_model: Path, tmp_path: Path) -> None:
    _, body = card(ship(tiny_model, tmp_path / "bundle", lang="yor"))
    usage = body.split("## Usage", 1)[1].split("## Known limits", 1)[0]
    assert "Musa" not in usage and "Kano" not in usage
    assert "a list of yor sentences" in usage


@pytest.fixture(scope="module")
def chain(tiny_model: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder where runs/ holds finetune → trim (with a monolingual corpus) → onnx-int8, as a sweep
    leaves them, the corpus beside it."""
    import dataclasses

    from ndogo.compress.quantize import quant_config, quantize
    from ndogo.compress.trim import TrimConfig, trim
    from ndogo.data.conll import read_conll
    from ndogo.train.config import FinetuneConfig

    work = tmp_path_factory.mktemp("project")
    shutil.copytree(tiny_corpus, work / "data" / "masakhaner")
    train = read_conll(work / "data" / "masakhaner" / "hau" / "train.txt").sentences
    (work / "data" / "mono.txt").write_text("\n".join(" ".join(s.tokens) for s in train[::-1]) + "\n")
    finetuned = work / "runs" / "minilm-hau"
    shutil.copytree(tiny_model, finetuned)
    cfg = FinetuneConfig(model=str(tiny_model), data=str(work / "data" / "masakhaner"), langs=["hau"],
                         out=str(finetuned), epochs=3, lr=5e-5, seed=7)
    (finetuned / "metrics.json").write_text(json.dumps({"best_dev_f1": 0.1, "config": dataclasses.asdict(cfg)}))
    (finetuned / "ndogo.json").write_text(json.dumps({"kind": "hf", "stage": "finetune", "base_model": "minilm",
                                                      "langs": ["hau"]}))
    trimmed = trim(finetuned, work / "runs" / "trim-557b", TrimConfig(
        lang="hau", data=str(work / "data" / "masakhaner"), corpus=str(work / "data" / "mono.txt"), min_count=2))
    quantize(trimmed, work / "runs" / "quantize-9f1c", quant_config("onnx-int8"))
    return work


def test_35_16_card_commands_rebuild_every_stage_as_written(chain: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    from typer.testing import CliRunner

    import ndogo
    from ndogo.cli import app
    from ndogo.compress.recipe import parse_recipe
    from ndogo.data.conll import read_conll

    monkeypatch.chdir(chain)  # shipped from the project folder, as a user does
    bundle = ship(Path("runs") / "quantize-9f1c", tmp_path / "hau-int8")
    meta = json.loads((bundle / "ndogo.json").read_text())
    _, body = card(bundle)
    commands = meta["bundle"]["commands"]
    assert [c.split()[1] for c in commands] == ["finetune", "trim-vocab", "quantize"]
    assert all(c in body for c in commands) and str(chain) not in body + json.dumps(meta)
    outs = [shlex.split(c)[shlex.split(c).index("--out") + 1] for c in commands]
    assert outs == ["runs/minilm-hau", "runs/trim-557b", "runs/quantize-9f1c"]
    for command, source in zip(commands[1:], outs, strict=False):
        assert shlex.split(command)[2] == source  # each reads what the previous one made
    assert "--corpus data/mono.txt" in commands[1] and "--min-count 2" in commands[1]
    assert "--data data/masakhaner" in commands[1] and "--lang hau" in commands[1]
    assert "--epochs 3" in commands[0] and "--lr 5e-05" in commands[0] and "--seed 7" in commands[0]
    # the recipe line has every stage with its options, and reads back as a recipe
    stages = parse_recipe(meta["bundle"]["recipe"]).stages
    assert [s.stage for s in stages] == ["finetune", "trim", "quantize"]
    assert stages[1].options == {"corpus": "data/mono.txt", "min_count": 2}
    assert stages[0].options == {"epochs": 3, "lr": 5e-05, "batch_size": 16, "seed": 7}

    # Run the card's commands after the fine-tuning, as written, in a fresh copy of the project.
    fresh = tmp_path / "fresh"
    shutil.copytree(chain / "data", fresh / "data")
    shutil.copytree(chain / "runs" / "minilm-hau", fresh / "runs" / "minilm-hau")
    monkeypatch.chdir(fresh)
    for command in commands[1:]:
        result = CliRunner().invoke(app, shlex.split(command)[1:])
        assert result.exit_code == 0, (command, result.output)
    rebuilt = ndogo.load(fresh / "runs" / "quantize-9f1c", threads=1)

    # The usage example is a sentence of the model's own test set, with what the model finds in it.
    example = meta["bundle"]["example"]
    test = [" ".join(s.tokens) for s in read_conll(chain / "data" / "masakhaner" / "hau" / "test.txt").sentences]
    assert example in test and f"ner.predict([{example!r}])" in body
    assert rebuilt.predict(example) == ndogo.load(bundle, threads=1).predict(example)
    assert "Musa Aliyu ya je Kano" not in body


def test_35_19_evaluate_writes_nothing_into_a_bundle(run: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app

    bundle = ship(run, tmp_path / "bundle")
    before = _tree(bundle)
    result = CliRunner().invoke(app, ["evaluate", str(bundle), "--lang", "hau", "--data", str(tiny_corpus),
                                      "--no-speed", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["f1"] >= 0 and "not saved" in result.stderr
    assert _tree(bundle) == before  # no evals/ folder: the bundle is still exactly what inference reads


def test_35_3_an_onnx_graphs_external_data_is_shipped(int8_run: Path, tmp_path: Path) -> None:
    import onnx

    import ndogo

    split = tmp_path / "split"
    shutil.copytree(int8_run, split)
    onnx.save_model(onnx.load(str(int8_run / "model.onnx")), str(split / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=4096)
    (split / "train.txt").write_text("Musa B-PER\n")
    bundle = ship(split, tmp_path / "bundle")
    assert sorted(p.name for p in bundle.iterdir()) == ["README.md", "config.json", "model.onnx", "ndogo.json",
                                                        "tokenizer.json", "tokenizer_config.json", "weights.bin"]
    assert ndogo.load(bundle, threads=1).predict(TEXTS) == ndogo.load(int8_run, threads=1).predict(TEXTS)


@pytest.mark.parametrize(("task", "lang", "iso"), [("topic", "hau_Latn", "hau"), ("topic", "knc_Arab", "knc"),
                                                   ("pos", "hau", "hau"), ("pos", "pcm", "pcm"),
                                                   ("sentiment", "tir", "tir"), ("ner", "wol", "wol")])
def test_card_language_is_the_iso_code_and_the_dataset_config_keeps_the_corpus_code(task: str, lang: str,
                                                                                    iso: str) -> None:
    """The card wrote `language: hau_Latn` for a SIB-200 model, which the hub does not read as a language;
    its ISO 639-3 part goes in `language:` and the full code stays the dataset's config and name."""
    from ndogo.deploy.ship import front_matter
    from ndogo.tasks import get_task

    metrics = {m: 0.5 for m in get_task(task).metrics}
    evals = {(lang, s): {"lang": lang, "split": s, **metrics} for s in ("test", "dev")}
    header = front_matter("m", {"kind": "hf", "task": task, "langs": [lang]}, evals, lang, "some/corpus")
    assert header["language"] == [iso]
    for result in header["model-index"][0]["results"]:
        assert result["dataset"]["config"] == lang and result["dataset"]["name"] == f"some/corpus ({lang})"
