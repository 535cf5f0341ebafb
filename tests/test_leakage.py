"""Raw text used for pretraining, distillation or trimming must not contain the evaluation sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from ndogo.data.leakage import drop_eval_text, drop_lines_containing


def write_split(path: Path, sentences: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join("\n".join(f"{w} O" for w in s) for s in sentences) + "\n", encoding="utf-8")


def test_a_line_holding_a_sentence_is_dropped_whatever_its_spacing_and_case() -> None:
    sentence = ["Shugaba", "Buhari", "ya", "isa", "Abuja", "ranar", "Litinin", "."]
    lines = ["wani layi daban ne gaba daya", "Labari: SHUGABA Buhari ya isa Abuja, ranar Litinin. Sannan...",
             "Buhari ya isa Kano"]
    kept, dropped = drop_lines_containing(lines, [sentence])
    assert dropped == 1
    assert kept == [lines[0], lines[2]]


def test_short_sentences_are_not_searched_for() -> None:
    kept, dropped = drop_lines_containing(["Ina kwana", "Ina kwana lafiya"], [["Ina", "kwana"]])
    assert dropped == 0 and len(kept) == 2


def test_each_language_is_searched_for_its_own_dev_and_test_sentences(tmp_path: Path) -> None:
    root = tmp_path / "ner"
    dev = [["Kamfanin", "Dangote", "ya", "bude", "sabon", "masana'anta"]]
    test = [["Gwamnan", "jihar", "Kano", "ya", "yi", "jawabi", "yau"]]
    train = [["Wannan", "jumla", "ta", "horo", "ce", "kawai", "fa"]]
    write_split(root / "hau" / "dev.txt", dev)
    write_split(root / "hau" / "test.txt", test)
    write_split(root / "hau" / "train.txt", train)
    texts = {"hau": ["Kamfanin Dangote ya bude sabon masana'anta a Legas.", "Wannan jumla ta horo ce kawai fa",
                     "Gwamnan jihar Kano ya yi jawabi yau da safe", "layi na hudu"],
             "swa": ["Gwamnan jihar Kano ya yi jawabi yau"]}  # another language's file is not searched for hau
    kept, dropped = drop_eval_text(texts, [root])
    assert dropped == {"hau": 2, "swa": 0}
    assert kept["hau"] == ["Wannan jumla ta horo ce kawai fa", "layi na hudu"]
    assert kept["swa"] == texts["swa"]


def test_a_missing_corpus_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such NER corpus folder"):
        drop_eval_text({"hau": ["x"]}, [tmp_path / "absent"])
