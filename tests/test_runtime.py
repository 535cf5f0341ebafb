"""The torch-free ONNX runtime: the same entities as the PyTorch path, in a process that cannot import torch."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BLOCK_TORCH, need_shared
from ndogo.data.conll import read_conll
from ndogo.deploy.entities import get_entities
from ndogo.deploy.predict import load as torch_load
from ndogo.deploy.runtime import BundleError, OnnxPredictor
from ndogo.deploy.runtime import load as runtime_load

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-PER", "S-LOC", "I-DATE"]


@given(st.lists(st.sampled_from(TAGS), max_size=30))
@settings(max_examples=300, deadline=None)
def test_entity_reading_is_seqevals(tags: list[str]) -> None:
    """The port reads any tag sequence (stray I-, E-, S- included) exactly as seqeval does."""
    from seqeval.metrics.sequence_labeling import get_entities as seqeval_entities

    assert get_entities(tags) == seqeval_entities(tags)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Real hau test sentences, and one long enough to be cut into several windows of the tiny model."""
    sents = read_conll(need_shared() / "masakhaner" / "hau" / "test.txt").sentences[:40]
    lines = [" ".join(s.tokens) for s in sents]
    return [*lines, " ".join(lines[:6])]


def spans(found: list) -> list[list[tuple]]:
    return [[(e.text, e.label, e.start, e.end) for e in ents] for ents in found]


def scores(found: list) -> list[float]:
    return [e.score for ents in found for e in ents]


def test_runtime_windows_a_long_sentence(int8_model: Path, texts: list[str]) -> None:
    predictor = runtime_load(int8_model, threads=1)
    from ndogo.data.words import split_words
    from ndogo.models.align import build_windows

    long_words = [w.text for w in split_words(texts[-1])]
    assert len(build_windows(predictor.tokenizer.pieces, predictor.layout, [long_words], predictor.max_length)) > 1


def test_torch_free_runtime_gives_the_torch_paths_entities(int8_model: Path, texts: list[str],
                                                           tmp_path: Path) -> None:
    want = torch_load(int8_model, threads=1).predict(texts)
    assert sum(map(len, want)) > 20  # enough entities for the comparison to mean something
    script = BLOCK_TORCH + f"""
import json, sys
from dataclasses import asdict
import ndogo
predictor = ndogo.load({str(int8_model)!r}, threads=1)
found = predictor.predict(json.load(open({str(tmp_path / "texts.json")!r})))
print(json.dumps({{"type": type(predictor).__name__,
                   "entities": [[asdict(e) for e in ents] for ents in found],
                   "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))}}))
"""
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["type"] == "OnnxPredictor" and got["loaded"] == []
    got_entities = [[(e["text"], e["label"], e["start"], e["end"]) for e in ents] for ents in got["entities"]]
    assert got_entities == spans(want)
    got_scores = [e["score"] for ents in got["entities"] for e in ents]
    assert got_scores == pytest.approx(scores(want), abs=2e-6)


def test_ort_format_gives_the_same_entities(int8_model: Path, texts: list[str], tmp_path: Path) -> None:
    from ndogo.deploy.onnx import export_ort
    from ndogo.models.runner import load_runner, size_on_disk

    out = export_ort(int8_model, tmp_path / "ort")
    meta = json.loads((out / "ndogo.json").read_text())
    assert meta["kind"] == "ort" and meta["export_max_abs_diff"] < 1e-3 and (out / "model.ort").is_file()
    assert not (out / "model.onnx").exists() and (out / "required_operators.config").is_file()
    assert size_on_disk(out) > 0.5 * size_on_disk(int8_model)
    want = spans(runtime_load(int8_model, threads=1).predict(texts))
    assert spans(runtime_load(out, threads=1).predict(texts)) == want
    assert load_runner(out).kind == "ort"
    assert spans(torch_load(out, threads=1).predict(texts)) == want


def test_ort_export_refuses_a_torch_model(tiny_model: Path, tmp_path: Path) -> None:
    from ndogo.deploy.onnx import export_ort
    from ndogo.models.loading import ModelError

    with pytest.raises(ModelError, match="not an ONNX model directory"):
        export_ort(tiny_model, tmp_path / "x")


def test_runtime_refuses_what_it_cannot_run(tiny_model: Path, int8_model: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="kind 'hf' is not an ONNX model"):
        OnnxPredictor(tiny_model)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("ndogo.json", "tokenizer.json", "tokenizer_config.json", "config.json"):
        (broken / name).write_bytes((int8_model / name).read_bytes())
    with pytest.raises(BundleError, match=r"no model\.onnx"):
        OnnxPredictor(broken)
    (broken / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(BundleError, match="ONNX Runtime cannot load"):
        OnnxPredictor(broken)
    with pytest.raises(ValueError, match="text 2 is empty"):
        runtime_load(int8_model).predict(["Musa ya je Kano.", "  "])


def test_entities_are_predicts_records(int8_model: Path) -> None:
    """Both paths return the same Entity type, so callers (and `ndogo serve`) see one format."""
    found = runtime_load(int8_model, threads=1).predict("Musa Aliyu ya je Kano ranar Litinin.")
    assert all(set(asdict(e)) == {"text", "label", "start", "end", "score"} for e in found[0])


# Issue #35: a damaged or tampered bundle is refused in one line naming the file, by both loaders.

def _bundle_copy(int8_model: Path, tmp_path: Path, name: str = "bundle") -> Path:
    import shutil

    out = tmp_path / name
    shutil.copytree(int8_model, out)
    return out


def _both_refuse(bundle: Path, message: str) -> None:
    """The torch-free runtime and the PyTorch path refuse `bundle` with one line matching `message`."""
    from ndogo.models.loading import ModelError
    from ndogo.models.runner import load_runner

    with pytest.raises(BundleError, match=message) as err:
        runtime_load(bundle, threads=1)
    assert "\n" not in str(err.value)
    with pytest.raises(ModelError, match=message) as err:
        load_runner(bundle)
    assert "\n" not in str(err.value)


def _edit_meta(bundle: Path, **changes: object) -> None:
    meta = json.loads((bundle / "ndogo.json").read_text())
    meta.update(changes)
    (bundle / "ndogo.json").write_text(json.dumps(meta))


def test_35_4_links_leaving_the_bundle_are_refused_and_links_inside_load(int8_model: Path, tmp_path: Path) -> None:
    import os

    want = spans(runtime_load(int8_model, threads=1).predict("Musa Aliyu ya je Kano."))
    out = _bundle_copy(int8_model, tmp_path, "out")
    (out / "model.onnx").unlink()
    os.symlink(int8_model / "model.onnx", out / "model.onnx")  # another model, outside the bundle
    _both_refuse(out, r"out/model\.onnx: leads to .*, outside .*symbolic link")
    meta_out = _bundle_copy(int8_model, tmp_path, "meta-out")
    (meta_out / "ndogo.json").unlink()
    os.symlink(int8_model / "ndogo.json", meta_out / "ndogo.json")
    _both_refuse(meta_out, r"ndogo\.json: leads to .*, outside")
    inside = _bundle_copy(int8_model, tmp_path, "inside")
    (inside / "graphs").mkdir()
    (inside / "model.onnx").rename(inside / "graphs" / "model.onnx")
    os.symlink("graphs/model.onnx", inside / "model.onnx")  # a link that stays inside is the bundle's own file
    assert spans(runtime_load(inside, threads=1).predict("Musa Aliyu ya je Kano.")) == want
    assert spans(torch_load(inside, threads=1).predict("Musa Aliyu ya je Kano.")) == want


@pytest.mark.parametrize("labels,message", [
    ("BIO", r"ndogo\.json: labels must be a list of IOB tags.*got 'BIO'"),
    (["O", "B-PER", "I-PER"], r"ndogo\.json: 3 labels, but model\.onnx scores 9 per sub-word"),
    (["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-DATE", "I-DATE", "B-MISC"],
     r"ndogo\.json: 10 labels, but model\.onnx scores 9"),
])
def test_35_5_labels_that_are_not_the_graphs_are_refused(int8_model: Path, tmp_path: Path, labels: object,
                                                         message: str) -> None:
    bundle = _bundle_copy(int8_model, tmp_path)
    _edit_meta(bundle, labels=labels)
    _both_refuse(bundle, message)


def test_35_7_a_window_longer_than_the_positions_is_refused(int8_model: Path, tmp_path: Path) -> None:
    bundle = _bundle_copy(int8_model, tmp_path)
    _edit_meta(bundle, max_length=100000)
    _both_refuse(bundle, r"ndogo\.json: max_length 100000 is more than the model takes \(64 positions")
    _edit_meta(bundle, max_length=64)  # the model's own window, and a text far longer than it, still work
    long_text = " ".join(["Musa Aliyu ya je Kano ranar Litinin ."] * 40)
    assert len(runtime_load(bundle, threads=1).predict(long_text)) == 1


def _tokenizer_with(int8_model: Path, **changes: object) -> str:
    spec = json.loads((int8_model / "tokenizer.json").read_text())
    spec.update(changes)
    return json.dumps({k: v for k, v in spec.items() if v is not ...})


@pytest.mark.parametrize("name,content,message", [
    ("ndogo.json", "[1, 2]", r"ndogo\.json: (not a valid ndogo record \()?expected a JSON object, got list"),
    ("tokenizer.json", "[]", r"tokenizer\.json: expected a JSON object, got list"),
    ("tokenizer.json", "pre_tokenizer=Whitespace", r"tokenizer\.json: .*(pre_tokenizer|PreTokenizer)"),
    ("tokenizer.json", "model=...", r"tokenizer\.json: not a tokenizers file \(no \"model\" object\)"),
    ("ndogo.json", "labels=ints", r"ndogo\.json: labels \[0, 1, 2, 3\] are not IOB tags"),
    ("ndogo.json", "labels=empty", r"ndogo\.json: labels \['', '', '', ''\] are not IOB tags"),
    ("tokenizer_config.json", '{"pad_token": {"content": 5}}', r"pad_token"),
    ("config.json", "null", r"config\.json: expected a JSON object"),
    ("model.onnx", "", r"model\.onnx: ONNX Runtime cannot load this graph"),
])
def test_35_8_damaged_bundle_files_are_one_line_errors(int8_model: Path, tmp_path: Path, name: str, content: str,
                                                       message: str) -> None:
    """Each damage is refused by `ndogo serve` (the torch-free loader) and `ndogo predict` (PyTorch) in one line."""
    import re

    bundle = _bundle_copy(int8_model, tmp_path)
    if content == "pre_tokenizer=Whitespace":
        content = _tokenizer_with(int8_model, pre_tokenizer="Whitespace")
    elif content == "model=...":
        content = _tokenizer_with(int8_model, model=...)
    elif content.startswith("labels="):
        meta = json.loads((bundle / "ndogo.json").read_text())
        meta["labels"] = list(range(9)) if content.endswith("ints") else [""] * 9
        content = json.dumps(meta)
    (bundle / name).write_text(content, encoding="utf-8")
    (tmp_path / "in.txt").write_text("Musa ya je Kano.\n", encoding="utf-8")
    served = subprocess.run([sys.executable, "-m", "ndogo", "serve", str(bundle), "--port", "0"], capture_output=True,
                            text=True, timeout=300)
    from typer.testing import CliRunner

    from ndogo.cli import app

    predicted = CliRunner().invoke(app, ["predict", str(bundle), "-i", str(tmp_path / "in.txt")])
    for command, code, stderr in (("serve", served.returncode, served.stderr),
                                  ("predict", predicted.exit_code, predicted.stderr)):
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (command, stderr[-2000:])
        assert re.search(message, lines[0]) and str(bundle) in lines[0], (command, lines[0])
