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


def eval_sentences(roots: Sequence[str | Path], lang: str) -> list[list[str]]:
    """Dev and test sentences of `lang` in every local NER corpus root that has that language."""
    from ndogo.data.corpus import load_corpus

    sentences: list[list[str]] = []
    for root in roots:
        if not (Path(root) / lang).is_dir():
            continue
        corpus = load_corpus(root, lang, EVAL_SPLITS)
        sentences += [list(s.tokens) for split in corpus.splits.values() for s in split]
    return sentences


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
