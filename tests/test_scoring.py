"""`ndogo score` gives exactly seqeval's numbers, and refuses misaligned files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from typer.testing import CliRunner

from ndogo.cli import app
from ndogo.data.conll import read_conll, write_conll
from ndogo.metrics.entity import score

from .conftest import MASAKHANER

runner = CliRunner()
GOLD = "Musa B-PER\nya O\nje O\nKano B-LOC\n\nAisha B-PER\nBello I-PER\nta O\nzo O\n\nJiya B-DATE\n. O\n"


def perturb(tags: list[list[str]], rng: random.Random) -> list[list[str]]:
    """Realistic system errors: wrong types, wrong boundaries, missed and invented entities, IOB1-style starts."""
    choices = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-DATE", "I-DATE"]
    return [[rng.choice(choices) if rng.random() < 0.15 else t for t in seq] for seq in tags]


def gold_and_pred(tmp_path: Path, gold_path: Path, seed: int = 0) -> tuple[Path, list[list[str]], list[list[str]]]:
    sents = read_conll(gold_path).sentences
    gold = [s.tags for s in sents]
    pred = perturb(gold, random.Random(seed))
    pred_path = tmp_path / "test_predictions.txt"
    write_conll(pred_path, [(s.tokens, p) for s, p in zip(sents, pred, strict=True)])
    return pred_path, gold, pred


def run_score(gold: Path, pred: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["score", str(gold), str(pred), "--json"])
    return result.exit_code, result.output


def assert_same_as_seqeval(out: dict, gold: list[list[str]], pred: list[list[str]]) -> None:
    assert out["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-12)
    assert out["precision"] == pytest.approx(precision_score(gold, pred), abs=1e-12)
    assert out["recall"] == pytest.approx(recall_score(gold, pred), abs=1e-12)
    report = classification_report(gold, pred, output_dict=True)
    for name, v in out["per_type"].items():
        assert v["f1"] == pytest.approx(report[name]["f1-score"], abs=1e-12)
        assert v["support"] == report[name]["support"]
    assert set(out["per_type"]) == {k for k in report if not k.endswith(" avg")}


def test_score_matches_seqeval_on_small_file(tmp_path: Path) -> None:
    gold_path = tmp_path / "gold.txt"
    gold_path.write_text(GOLD)
    pred_path, gold, pred = gold_and_pred(tmp_path, gold_path, seed=3)
    code, output = run_score(gold_path, pred_path)
    assert code == 0, output
    assert_same_as_seqeval(json.loads(output), gold, pred)


@pytest.mark.parametrize("lang", ["hau", "swa", "yor"])
def test_score_matches_seqeval_on_masakhaner(tmp_path: Path, lang: str, shared_data: Path) -> None:
    gold_path = MASAKHANER / lang / "test.txt"
    pred_path, gold, pred = gold_and_pred(tmp_path, gold_path, seed=len(lang))
    code, output = run_score(gold_path, pred_path)
    assert code == 0, output
    out = json.loads(output)
    assert_same_as_seqeval(out, gold, pred)
    assert 0.3 < out["f1"] < 0.95  # the perturbation really changed entities


def test_perfect_prediction_scores_one(tmp_path: Path) -> None:
    gold_path = tmp_path / "gold.txt"
    gold_path.write_text(GOLD)
    code, output = run_score(gold_path, gold_path)
    assert code == 0 and json.loads(output)["f1"] == 1.0


def test_no_entities_anywhere_scores_zero() -> None:
    assert score([["O", "O"]], [["O", "O"]])["f1"] == 0.0


@pytest.mark.parametrize(
    ("pred_text", "sentence", "what"),
    [
        (GOLD.replace("\n\nJiya B-DATE\n. O\n", "\n"), "3", "sentences"),  # a sentence missing at the end
        (GOLD.replace("ta O\n", ""), "2", "tokens"),  # a token missing
        (GOLD.replace("Kano B-LOC", "Kanu B-LOC"), "1", "Kanu"),  # a token differs
        (GOLD.replace("Musa B-PER\nya O\nje O\nKano B-LOC\n\n", ""), "1", "Aisha"),  # shifted by a sentence
    ],
    ids=["sentence-count", "token-count", "token-text", "shifted"],
)
def test_misaligned_files_fail_naming_the_sentence(tmp_path: Path, pred_text: str, sentence: str, what: str) -> None:
    gold_path, pred_path = tmp_path / "gold.txt", tmp_path / "pred.txt"
    gold_path.write_text(GOLD)
    pred_path.write_text(pred_text)
    code, output = run_score(gold_path, pred_path)
    assert code != 0
    lines = [line for line in output.strip().splitlines() if line]
    assert len(lines) == 1 and f"sentence {sentence}" in lines[0] and what in lines[0]


@pytest.mark.parametrize(
    ("bad", "line", "what"),
    [(b"Musa B-PER\nya\n", 2, "no tag"), (b"Musa B-PER\nya Q\n", 2, "IOB"), (b"Musa B-PER\n\xff O\n", 2, "UTF-8")],
    ids=["no-tag", "bad-tag", "not-utf8"],
)
def test_bad_prediction_file_is_named_by_file_and_line(tmp_path: Path, bad: bytes, line: int, what: str) -> None:
    gold_path, pred_path = tmp_path / "gold.txt", tmp_path / "pred.txt"
    gold_path.write_text("Musa B-PER\nya O\n")
    pred_path.write_bytes(bad)
    code, output = run_score(gold_path, pred_path)
    assert code == 2
    assert f"{pred_path}:{line}:" in output and what in output and "Traceback" not in output


def test_misaligned_files_are_both_named(tmp_path: Path) -> None:
    gold_path = tmp_path / "gold.txt"
    gold_path.write_text(GOLD)
    short = tmp_path / "short.txt"
    short.write_text(GOLD.split("\n\n")[0] + "\n")
    code, output = run_score(gold_path, short)
    assert code == 2 and f"{short} does not match {gold_path}: sentence 2:" in output
    assert "Traceback" not in output


def test_folder_instead_of_file_is_a_clear_error(tmp_path: Path) -> None:
    gold_path = tmp_path / "gold.txt"
    gold_path.write_text(GOLD)
    code, output = run_score(tmp_path, gold_path)
    assert code == 2 and f"{tmp_path}: is a folder" in output


def test_every_command_help_has_an_example() -> None:
    """`--help` is where a user learns a command: each one shows a command line to copy."""
    import typer.main

    group = typer.main.get_command(app)
    names = [[n, *([sub] if sub else [])] for n, command in group.commands.items()
             for sub in (getattr(command, "commands", None) or {"": None})]  # a group's commands each (`bench compare`)
    assert ["bench", "serve-load"] in names and ["data", "stats"] in names
    for name in names:
        result = runner.invoke(app, [*name, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and "Example" in result.output, name
