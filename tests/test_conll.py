"""Reading CoNLL files: every odd-but-valid layout is read, every bad one is named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ndogo.data.conll import DataError, iob1_to_iob2, read_conll
from ndogo.data.corpus import load_corpus, load_local
from ndogo.data.stats import directory_stats

from .conftest import MASAKHANER, need_shared

PLAIN = "Musa B-PER\nya O\nje O\nKano B-LOC\n\nAisha B-PER\nBello I-PER\n"


def write(tmp_path: Path, data: bytes | str, name: str = "train.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def sentences_of(path: Path) -> list[tuple[list[str], list[str]]]:
    return [(s.tokens, s.tags) for s in read_conll(path).sentences]


EXPECTED = [(["Musa", "ya", "je", "Kano"], ["B-PER", "O", "O", "B-LOC"]), (["Aisha", "Bello"], ["B-PER", "I-PER"])]


@pytest.mark.parametrize(
    "variant",
    [
        PLAIN,
        PLAIN.replace("\n", "\r\n"),  # CRLF
        PLAIN.replace(" ", "\t"),  # tabs
        "\ufeff" + PLAIN,  # BOM
        PLAIN + "\n\n\n",  # trailing blank lines
        "\n\n" + PLAIN.replace("\n\n", "\n \n\t\n"),  # leading blanks, whitespace-only separators
        PLAIN.replace(" B-", " NNP B-").replace(" O", " VB O").replace(" I-", " NNP I-"),  # extra columns
    ],
    ids=["plain", "crlf", "tabs", "bom", "trailing-blank", "blank-variants", "extra-columns"],
)
def test_layout_variants_read_identically(tmp_path: Path, variant: str) -> None:
    assert sentences_of(write(tmp_path, variant)) == EXPECTED


def test_iob1_is_converted_to_iob2(tmp_path: Path) -> None:
    iob1 = "Musa I-PER\nya O\nKano I-LOC\nAbuja B-LOC\nLagos I-LOC\n\n"
    cf = read_conll(write(tmp_path, iob1))
    assert cf.scheme == "IOB1"
    assert cf.sentences[0].tags == ["B-PER", "O", "B-LOC", "B-LOC", "I-LOC"]


def test_iob1_to_iob2_keeps_iob2_unchanged() -> None:
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert iob1_to_iob2(tags) == tags


def test_line_without_tag_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "Musa B-PER\nya\nje O\n")
    with pytest.raises(DataError) as err:
        read_conll(path)
    assert err.value.line == 2 and str(path) in str(err.value) and "no tag" in str(err.value)


@pytest.mark.parametrize("tag", ["PER", "B_PER", "X-PER", "b-per", "E-PER"])
def test_tag_outside_scheme_is_named(tmp_path: Path, tag: str) -> None:
    path = write(tmp_path, f"Musa B-PER\n\nya O\nje {tag}\n")
    with pytest.raises(DataError) as err:
        read_conll(path)
    assert err.value.line == 4 and tag in str(err.value)


def test_non_utf8_is_named_with_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"Musa B-PER\nya O\nj\xe9 O\n")
    with pytest.raises(DataError) as err:
        read_conll(path)
    assert err.value.line == 3 and "UTF-8" in str(err.value)


def test_whitespace_token_is_kept_and_reported(tmp_path: Path) -> None:
    cf = read_conll(write(tmp_path, "Musa B-PER\n O\nje O\n"))
    assert cf.sentences[0].tokens == ["Musa", "", "je"]
    assert len(cf.problems) == 1 and cf.problems[0].line == 2


def test_no_sentence_is_dropped(tmp_path: Path) -> None:
    body = "".join(f"w{i} O\nx{i} B-LOC\n\n" for i in range(500))
    assert len(read_conll(write(tmp_path, body)).sentences) == 500


def test_missing_language_lists_the_ones_there(tmp_path: Path) -> None:
    (tmp_path / "hau").mkdir()
    write(tmp_path / "hau", PLAIN)
    with pytest.raises(DataError, match="hau"):
        load_local(tmp_path, "xyz")


def test_stats_collects_problems_instead_of_stopping(tmp_path: Path) -> None:
    for lang, body in (("good", PLAIN), ("bad", "Musa B-PER\nya\n")):
        (tmp_path / lang).mkdir()
        write(tmp_path / lang, body)
    stats = directory_stats(tmp_path)
    assert stats["good"]["splits"]["train"] == {"sentences": 2, "tokens": 6, "entities": 3,
                                                "by_type": {"LOC": 1, "PER": 2}}
    assert stats["bad"]["problems"] and ":2:" in stats["bad"]["problems"][0]


def test_real_masakhaner_counts_match_blank_line_structure() -> None:
    need_shared()
    for lang in ("hau", "yor", "luo"):  # luo/train.txt has a BOM; hau and yor each have a stray I-
        corpus = load_corpus(MASAKHANER, lang)
        for split, sents in corpus.splits.items():
            lines = (MASAKHANER / lang / f"{split}.txt").read_text(encoding="utf-8-sig").split("\n")
            tokens = sum(1 for line in lines if line.strip())
            assert sum(len(s) for s in sents) == tokens, (lang, split)
            assert corpus.schemes[split] == "IOB2"


def test_stray_opening_inside_tag_in_iob2_file_is_reported(tmp_path: Path) -> None:
    cf = read_conll(write(tmp_path, "Musa B-PER\nya O\nje I-ORG\n\nKano B-LOC\n"))
    assert cf.scheme == "IOB2"
    assert cf.sentences[0].tags == ["B-PER", "O", "B-ORG"]
    assert len(cf.problems) == 1 and cf.problems[0].line == 3 and "I-ORG" in cf.problems[0].message


def test_cli_stats_lists_every_problem_and_exits_2_on_unreadable_files(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ndogo.cli import app

    (tmp_path / "hau").mkdir()
    (tmp_path / "hau" / "train.txt").write_text("Musa B-PER\nya O\n")
    (tmp_path / "hau" / "test.txt").write_text("Musa B-PER\nje\n")
    result = CliRunner().invoke(app, ["data", "stats", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'hau' / 'test.txt'}:2: line has no tag" in result.output
    assert "1 file(s) cannot be read" in result.output and "Traceback" not in result.output
    (tmp_path / "hau" / "test.txt").write_text("Musa B-PER\nje O\n")
    assert CliRunner().invoke(app, ["data", "stats", str(tmp_path)]).exit_code == 0


def test_unknown_split_is_named_for_local_and_hub_corpora(tmp_path: Path) -> None:
    (tmp_path / "hau").mkdir()
    (tmp_path / "hau" / "train.txt").write_text("Musa B-PER\n")
    for data in (str(tmp_path), "masakhaner"):  # the hub is never reached: the split is checked first
        with pytest.raises(ValueError, match="split 'validation': use one of train, dev, test"):
            load_corpus(data, "hau", ("validation",))


def test_empty_split_file_is_an_error_not_a_zero_score(tmp_path: Path) -> None:
    (tmp_path / "hau").mkdir()
    (tmp_path / "hau" / "train.txt").write_text("Musa B-PER\n")
    (tmp_path / "hau" / "test.txt").write_text("\n\n")
    with pytest.raises(DataError, match=r"test\.txt: no sentences in this file"):
        load_local(tmp_path, "hau")
    assert directory_stats(tmp_path)["hau"]["unreadable"] == [str(tmp_path / "hau" / "test.txt")]


def test_tokenizer_facts_per_language() -> None:
    """#15: sub-words per word, unseen test sub-words, and words a trimmed tokenizer re-splits."""
    from ndogo.data.tokenization import resplit_share, tokenizer_facts
    from ndogo.models.loading import load_tokenizer

    tok = load_tokenizer("minilm")
    train = [["Musa", "ya", "je", "Kano"]]
    test = [["Musa", "ya", "je", "Kwankwasiyya"]]
    pieces = [len(tok.tokenize(w)) for w in test[0]]
    facts = tokenizer_facts(tok, train, test)
    assert facts["fertility_test"] == round(sum(pieces) / 4, 4)
    seen = {i for w in train[0] for i in tok.convert_tokens_to_ids(tok.tokenize(w))}
    ids = [i for w in test[0] for i in tok.convert_tokens_to_ids(tok.tokenize(w))]
    assert facts["unseen_subwords_test"] == round(sum(i not in seen for i in ids) / len(ids), 4) > 0
    assert resplit_share(tok, tok, test) == 0.0
