"""Keeping evaluation sentences out of raw text used for training or vocabulary choices.

Monolingual news text is often the very source a NER corpus was annotated from:
in ../shared/data every MasakhaNER 1.0 test sentence of hau, swa and yor with at
least eight words occurs verbatim in monolingual/<lang>.txt. A model pretrained,
distilled or vocabulary-trimmed on such text has read the test sentences, and
its test F1 no longer says how it does on unseen text. These helpers find and
drop every raw-text line that contains a dev or test sentence.
"""

from __future__ import annotations

import bisect
import itertools
import unicodedata
from collections.abc import Sequence
from pathlib import Path

EVAL_SPLITS = ("dev", "test")


def _squeeze(text: str) -> str:
    """Text reduced to its lower-cased letters and digits, for finding a sentence inside a line."""
    return "".join(c for c in unicodedata.normalize("NFC", text).lower() if c.isalnum())


def drop_lines_containing(lines: Sequence[str], sentences: Sequence[Sequence[str]],
                          min_chars: int = 15) -> tuple[list[str], int]:
    """Lines that contain none of the sentences (ignoring spacing, punctuation and case); and how many went.

    Sentences shorter than `min_chars` letters are not searched for: they match by chance.
    """
    squeezed = [_squeeze(line) for line in lines]
    joined = "\n".join(squeezed)
    starts = list(itertools.accumulate((len(x) + 1 for x in squeezed), initial=0))
    hit: set[int] = set()
    for sentence in sentences:
        needle = _squeeze("".join(sentence))
        if len(needle) < min_chars:
            continue
        pos = joined.find(needle)
        while pos != -1:
            hit.add(bisect.bisect_right(starts, pos) - 1)
            pos = joined.find(needle, pos + 1)
    return [line for i, line in enumerate(lines) if i not in hit], len(hit)


# ISO 639-3 codes SIB-200 uses where the other corpora use the macrolanguage's (`swh_Latn` is Kiswahili)
LANGUAGE_ALIASES = {"swh": "swa"}


def same_language(folder_name: str, lang: str) -> bool:
    """Whether a corpus's language folder (`hau`, `hau_Latn`, `swh_Latn`) holds language `lang` (`hau`, `swa`)."""
    base = folder_name.split("_")[0]
    want = lang.split("_")[0]
    return folder_name == lang or LANGUAGE_ALIASES.get(base, base) == LANGUAGE_ALIASES.get(want, want)


def eval_sentences(roots: Sequence[str | Path], lang: str) -> list[list[str]]:
    """Dev and test sentences (as words) of `lang` in every local corpus root that has that language.

    Any task's corpus: CoNLL files (NER, POS: the first column) and TSV files with a `text` or
    `tweet` column (SIB-200, AfriSenti); a root's language folder may carry a script (`hau_Latn`).
    """
    from ndogo.data.conll import read_sentences
    from ndogo.data.texts import read_texts

    sentences: list[list[str]] = []
    for root in roots:
        root = Path(root)
        folders = [p for p in sorted(root.iterdir()) if p.is_dir() and same_language(p.name, lang)] \
            if root.is_dir() else []
        for folder in folders:
            for split in EVAL_SPLITS:
                if (folder / f"{split}.txt").is_file():
                    found, _ = read_sentences(folder / f"{split}.txt", check_tag=lambda tag: None)
                    sentences += [list(s.tokens) for s in found]
                elif (folder / f"{split}.tsv").is_file():
                    texts, _ = read_texts(folder / f"{split}.tsv", ("text", "tweet"), ("label", "category"))
                    sentences += [t.tokens for t in texts]
    return sentences


def language_file(folder: str | Path, lang: str, ext: str = "txt") -> Path:
    """`<folder>/<lang>.<ext>`, or the file of the same language under its plain code (`hau_Latn` -> hau.txt,
    `swh_Latn` -> swa.txt) when that is the one there: SIB-200's codes carry a script, the texts' do not."""
    folder = Path(folder)
    exact = folder / f"{lang}.{ext}"
    if exact.is_file() or not folder.is_dir():
        return exact
    base = lang.split("_")[0]
    plain = folder / f"{LANGUAGE_ALIASES.get(base, base)}.{ext}"
    return plain if plain.is_file() else exact


def corpora_beside(data: str | Path) -> list[Path]:
    """Every corpus folder beside `data` (its siblings in ../shared/data and itself): whose dev and test
    sentences raw text must lose before anything trains on it, whatever task is being trained."""
    root = Path(data)
    if not root.is_dir():
        return []
    return sorted(p for p in root.parent.iterdir() if p.is_dir() and p.name != "monolingual")


def drop_eval_text(texts: dict[str, list[str]],
                   roots: Sequence[str | Path]) -> tuple[dict[str, list[str]], dict[str, int]]:
    """`texts` (lines per language) without the lines holding a dev or test sentence of `roots`.

    Each language's text is searched for that language's sentences in every root
    (MasakhaNER 1.0 and 2.0 share languages but not all sentences). Returns the
    kept texts and, per language, how many lines were dropped.
    """
    for root in roots:
        if not Path(root).is_dir():
            raise FileNotFoundError(f"{root}: no such NER corpus folder (for keeping its dev/test text out)")
    kept: dict[str, list[str]] = {}
    dropped: dict[str, int] = {}
    for lang, lines in texts.items():
        sentences = eval_sentences(roots, lang)
        kept[lang], dropped[lang] = drop_lines_containing(lines, sentences) if sentences else (list(lines), 0)
    return kept, dropped
