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
    from ndogo.deploy.words import split_words
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
