"""Regressions from the adversarial pass and the new user's first day (issue #19).

Each test names the item it holds; each failed before its fix. Inputs are read
intact or refused in one line naming the file; nothing is silently changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ndogo.data.conll import DataError, read_conll, read_predictions
from ndogo.data.corpus import load_corpus

from .conftest import ROOT

PLAIN = "Musa B-PER\nya O\nje O\nKano B-LOC\n\nAisha B-PER\nBello I-PER\n"


def ndogo(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ndogo", *args], capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=timeout, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})


def corpus_dir(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    lang = tmp_path / "corpus" / "hau"
    lang.mkdir(parents=True)
    for name, text in files.items():
        (lang / name).write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return tmp_path / "corpus"


# 2. old-Mac line endings

def test_2_cr_only_line_endings_are_read_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_bytes(PLAIN.replace("\n", "\r").encode())
    cf = read_conll(path)
    assert [s.tokens for s in cf.sentences] == [["Musa", "ya", "je", "Kano"], ["Aisha", "Bello"]]
    assert any("carriage return" in p.message for p in cf.problems)


# 3. tokens holding U+2028, U+00A0, U+001C stay whole

@pytest.mark.parametrize("char", ["\u2028", "\u00a0", "\u001c", "\u2009"])
def test_3_unicode_spaces_inside_tokens_are_kept(tmp_path: Path, char: str) -> None:
    path = tmp_path / "train.txt"
    path.write_text(f"Abu{char}ja B-LOC\nya O\n\nMusa\tB-PER\n", encoding="utf-8")
    sentences = read_conll(path).sentences
    assert sentences[0].tokens == [f"Abu{char}ja", "ya"]
    assert sentences[0].tags == ["B-LOC", "O"]
    assert sentences[1].tokens == ["Musa"]


# 5. a three-column predictions file is not scored on its last column

def test_5_three_column_predictions_are_refused_unless_the_column_is_named(tmp_path: Path) -> None:
    gold = tmp_path / "gold.txt"
    gold.write_text("Musa B-PER\nya O\nKano B-LOC\n", encoding="utf-8")
    pred = tmp_path / "pred.txt"
    pred.write_text("Musa O B-PER\nya O O\nKano O B-LOC\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pred.txt:1: 3 columns, expected 2"):
        read_predictions(pred)
    assert [s.tags for s in read_predictions(pred, column=2)] == [["O", "O", "O"]]
    result = ndogo("score", str(gold), str(pred), "--json")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "3 columns" in result.stderr + result.stdout
    result = ndogo("score", str(gold), str(pred), "--pred-column", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["f1"] == 0.0


# 6. a type outside the scheme, or differing in case, is listed

def test_6_lowercase_and_unknown_types_are_listed_as_problems(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("Musa B-per\nya O\n\nKano B-LOC\nState B-GPE\n", encoding="utf-8")
    problems = [str(p) for p in read_conll(path).problems]
    assert any("'per' differs only in case from 'PER'" in p and ":1:" in p for p in problems)
    assert any("'GPE'" in p and ":5:" in p for p in problems)


# 7. train.txt missing, a folder, a dangling symlink, a symlink loop

@pytest.mark.parametrize("kind", ["missing", "folder", "dangling", "loop"])
def test_7_broken_train_file_is_named_in_one_line(tmp_path: Path, kind: str) -> None:
    root = corpus_dir(tmp_path, {"dev.txt": PLAIN, "test.txt": PLAIN})
    train = root / "hau" / "train.txt"
    if kind == "folder":
        train.mkdir()
    elif kind == "dangling":
        train.symlink_to(root / "hau" / "nowhere.txt")
    elif kind == "loop":
        train.symlink_to(train)
    if kind == "missing":
        corpus = load_corpus(root, "hau")
        with pytest.raises(DataError, match=r"train\.txt: no train split: fine-tuning needs it"):
            corpus.require("train", "fine-tuning")
        assert any("train.txt" in str(p) for p in corpus.problems)  # `data stats` lists it
    else:
        with pytest.raises(DataError, match=r"train\.txt"):
            load_corpus(root, "hau")
    result = ndogo("finetune", "--model", "minilm", "--data", str(root), "--lang", "hau", "--out",
                   str(tmp_path / "run"), "--max-steps", "1")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "KeyError" not in result.stderr
    assert "train.txt" in result.stderr
    assert not (tmp_path / "run").exists()
    stats = ndogo("data", "stats", str(root))
    assert "train.txt" in stats.stdout + stats.stderr
