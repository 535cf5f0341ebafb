"""`ndogo predict` and `ndogo.load(run).predict`: words and offsets, entities, windowing, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import ndogo
from conftest import make_tiny_model
from ndogo.cli import app
from ndogo.data.conll import read_conll, read_predictions
from ndogo.data.words import split_words
from ndogo.deploy.predict import Entity, read_sentences
from ndogo.evaluate import predict_tags
from ndogo.models.runner import load_runner

LINES = ["Musa  Ibrahim ya je Kano.", "\tShugaba Buhari ya gana da jami’an INEC a Abuja ranar Litinin ."]


def biased_model(path: Path, label: str) -> Path:
    """A tiny model whose classifier always prefers `label` (zero weights, one large bias)."""
    make_tiny_model(path)
    weights = load_file(path / "model.safetensors")
    labels = json.loads((path / "config.json").read_text())["label2id"]
    weights["classifier.weight"] = torch.zeros_like(weights["classifier.weight"])
    bias = torch.zeros_like(weights["classifier.bias"])
    bias[labels[label]] = 5.0
    weights["classifier.bias"] = bias
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    return path


@pytest.fixture(scope="module")
def each_word_per(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return biased_model(tmp_path_factory.mktemp("bper") / "m", "B-PER")


@pytest.fixture(scope="module")
def one_span_loc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return biased_model(tmp_path_factory.mktemp("iloc") / "m", "I-LOC")


def test_words_follow_masakhaner() -> None:
    def texts(line: str) -> list[str]:
        return [w.text for w in split_words(line)]

    assert texts("‘Yan sanda sun kama jami’an a Kano.") == ["‘Yan", "sanda", "sun", "kama", "jami’an", "a", "Kano", "."]
    yoruba = "Ọ̀gbẹ́ni Tinubu ti orílẹ̀-èdè"  # tone marks as combining code points
    assert texts(yoruba) == ["Ọ̀gbẹ́ni", "Tinubu", "ti", "orílẹ̀", "-", "èdè"]
    assert texts('Watu 10,000 (asilimia 2.5) "walikufa"') == ["Watu", "10,000", "(", "asilimia", "2.5", ")", '"',
                                                             "walikufa", '"']
    assert texts("北京市长") == ["北", "京", "市", "长"]
    for line in [*LINES, yoruba]:
        assert all(line[w.start : w.end] == w.text for w in split_words(line))


def test_offsets_point_at_entities(each_word_per: Path, one_span_loc: Path) -> None:
    per = ndogo.load(each_word_per).predict(LINES)
    for line, entities in zip(LINES, per, strict=True):
        assert [e.text for e in entities] == [w.text for w in split_words(line)]
        assert all(line[e.start : e.end] == e.text and e.label == "PER" for e in entities)
        assert all(0 < e.score <= 1 for e in entities)
    # Consecutive I- tags form one entity (seqeval's reading), spanning the words and the spaces between.
    spans = ndogo.load(one_span_loc).predict(LINES)
    assert spans[0] == [Entity(LINES[0], "LOC", 0, len(LINES[0]), spans[0][0].score)]
    assert len(spans[1]) == 1 and spans[1][0].start == 1 and spans[1][0].text == LINES[1][1:]


def test_single_string_and_empty_text(tiny_model: Path) -> None:
    predictor = ndogo.load(tiny_model)
    assert len(predictor.predict("Musa ya je Kano.")) == 1
    with pytest.raises(ValueError, match="text 2 is empty"):
        predictor.predict(["Musa ya je Kano.", "   "])


def test_long_sentence_windowed_as_in_evaluation(tiny_model: Path, tmp_path: Path) -> None:
    runner = load_runner(tiny_model)
    words = [w for _ in range(12) for w in ["Musa", "Ibrahim", "ya", "je", "Kano", "ranar", "Litinin", "."]]
    assert len(runner.tokenizer(words, is_split_into_words=True)["input_ids"]) > runner.max_length
    src = tmp_path / "long.txt"
    src.write_text(" ".join(words) + "\n", encoding="utf-8")
    prediction = ndogo.load(tiny_model).predict_sentences(read_sentences(src))[0]
    tags, _ = predict_tags(runner, [words])
    assert prediction.tags == tags[0] and len(prediction.tags) == len(words)


def test_cli_conll_round_trip_scores(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    gold = tiny_corpus / "hau" / "test.txt"
    result = CliRunner().invoke(app, ["predict", str(tiny_model), "-i", str(gold), "--input-format", "conll",
                                      "--format", "conll"])
    assert result.exit_code == 0, result.output
    pred = tmp_path / "pred.txt"
    pred.write_text(result.stdout, encoding="utf-8")
    sentences = read_conll(gold).sentences
    expected, _ = predict_tags(load_runner(tiny_model), [s.tokens for s in sentences])
    assert [s.tags for s in read_predictions(pred)] == expected
    scored = CliRunner().invoke(app, ["score", str(gold), str(pred), "--json"])
    assert scored.exit_code == 0 and "f1" in json.loads(scored.stdout)


def test_cli_jsonl_from_stdin(each_word_per: Path) -> None:
    result = CliRunner().invoke(app, ["predict", str(each_word_per)], input="\n".join(LINES) + "\n")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 2] and [r["text"] for r in records] == LINES
    for r in records:
        assert all(r["text"][e["start"] : e["end"]] == e["text"] for e in r["entities"])


def test_cli_bad_input(tiny_model: Path, tmp_path: Path) -> None:
    cli = CliRunner()
    empty = cli.invoke(app, ["predict", str(tiny_model)], input="Musa ya je Kano.\n\nAudu ya tafi.\n")
    assert empty.exit_code == 2 and "<stdin>:2: empty line" in empty.output
    kept = cli.invoke(app, ["predict", str(tiny_model), "--keep-empty"], input="Musa ya je Kano.\n\nAudu.\n")
    assert kept.exit_code == 0
    assert [json.loads(x)["entities"] for x in kept.stdout.splitlines()][1] == []
    # #19.14: --skip-empty leaves the empty line out; records keep their input line numbers
    skipped = cli.invoke(app, ["predict", str(tiny_model), "--skip-empty"], input="Musa ya je Kano.\n\nAudu.\n")
    assert skipped.exit_code == 0
    assert [json.loads(x)["line"] for x in skipped.stdout.splitlines()] == [1, 3]
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"Musa ya je Kano.\n" + "caf\u00e9\n".encode("latin-1"))
    bad = cli.invoke(app, ["predict", str(tiny_model), "-i", str(latin1)])
    assert bad.exit_code == 2 and f"{latin1}:2: bytes that are not UTF-8" in bad.output
    missing = cli.invoke(app, ["predict", str(tmp_path / "no-model")], input="Musa.\n")
    assert missing.exit_code == 2 and "no such model directory" in missing.output
    assert "Traceback" not in missing.output + bad.output + empty.output


def test_predict_runs_a_trimmed_model(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "trimmed"
    result = CliRunner().invoke(app, ["trim-vocab", str(tiny_model), "--lang", "hau", "--data", str(tiny_corpus),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    train = [" ".join(s.tokens) for s in read_conll(tiny_corpus / "hau" / "train.txt").sentences[:8]]
    assert ndogo.load(out).predict(train) == ndogo.load(tiny_model).predict(train)


def test_export_then_predict_onnx(tiny_model: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "onnx"
    result = CliRunner().invoke(app, ["export", str(tiny_model), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert load_runner(out).kind == "onnx" and (out / "tokenizer.json").is_file()
    texts = [" ".join(s.tokens) for s in read_conll(tiny_corpus / "hau" / "test.txt").sentences]
    got, want = ndogo.load(out).predict(texts), ndogo.load(tiny_model).predict(texts)
    assert sum(len(x) for x in want) > 0  # the random tiny model does find (random) entities
    assert [[(e.start, e.end, e.label) for e in ents] for ents in got] == \
        [[(e.start, e.end, e.label) for e in ents] for ents in want]
    assert all(abs(a.score - b.score) < 1e-4 for x, y in zip(got, want, strict=True) for a, b in zip(x, y, strict=True))
    bad = CliRunner().invoke(app, ["export", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "no such model directory" in bad.output


def test_cli_input_that_is_a_folder_is_one_line(tiny_model: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["predict", str(tiny_model), "-i", str(tmp_path)])
    assert result.exit_code == 2 and f"error: {tmp_path}: is a directory" in result.output
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(app, ["predict", str(tiny_model), "-i", str(tmp_path / "absent.txt")])
    assert missing.exit_code == 2 and f"error: {tmp_path / 'absent.txt'}: no such file" in missing.output


def test_conll_empty_token_line_stays_aligned_for_scoring(tiny_model: Path, tmp_path: Path) -> None:
    gold = tmp_path / "gold.txt"
    gold.write_text("Musa B-PER\n O\nKano B-LOC\n\n")  # " O": an empty token, as in MasakhaNER 2.0 xho
    sentences = read_sentences(gold, "conll")
    assert [w.text for w in sentences[0].words] == ["Musa", "", "Kano"]
    pred = tmp_path / "pred.txt"
    result = CliRunner().invoke(app, ["predict", str(tiny_model), "-i", str(gold), "--input-format", "conll",
                                      "--format", "conll"])
    assert result.exit_code == 0, result.output
    pred.write_text(result.stdout)
    scored = CliRunner().invoke(app, ["score", str(gold), str(pred), "--json"])
    assert scored.exit_code == 0, scored.output


def test_cli_export_refuses_an_out_that_holds_files(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["export", str(tiny_model), "--out", str(tmp_path)])
    assert result.exit_code == 2 and f"{tmp_path}: already exists and is not empty" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
