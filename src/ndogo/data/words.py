"""Splitting raw text into the words an NER model labels, with character offsets.

NER models here are trained on MasakhaNER, whose words are whitespace-separated
tokens with punctuation split off. To predict on raw text the same way, a line
must be cut into words like those, and each word must remember where it came
from so entities can be reported as character offsets into the input.

The rules (one regular expression, `WORD_RE`), written for the Latin-script
languages of MasakhaNER (Hausa, Yorùbá, Kiswahili, Igbo, ...), Ge'ez script
(Amharic) and Chinese, and checked against MasakhaNER's own tokenization
(`bench/lab/trim.py` reports the agreement):

* A word is a run of letters, combining marks and digits. Combining marks are
  part of the word because Yorùbá tone marks are often written as separate code
  points (`ẹ` + U+0301), and splitting at them would cut `jẹ́` in two.
* An apostrophe (' ’ ‘ ʼ) between two letters stays inside the word
  (Hausa `jami’an`, Kiswahili `ng’ombe`), and so does one that opens a word
  before `y`/`Y` (the Hausa hooked y written `'yan`, `‘Yan`). Any other
  apostrophe is a quote mark and a word of its own.
* Digits joined by `.`, `,` or `:` are one number (`10,000`, `2.5`, `10:30`).
* Every other non-space character, hyphens included, is a word of its own:
  MasakhaNER splits `orílẹ̀-èdè` into `orílẹ̀ - èdè` and `Kano.` into `Kano .`.
* Chinese characters are one word each, as in the MSRA corpus.

Why a hand-written expression rather than a library: the word splitters in
NLTK, spaCy or Stanza are trained or written for other languages and split
Yorùbá combining marks and Hausa apostrophes differently from MasakhaNER; the
model was trained on MasakhaNER's words, so its rules are the ones to follow.
The `regex` module (already a dependency of transformers) is used for its
Unicode property classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

APOSTROPHES = "'’‘ʼ"
WORD_RE = regex.compile(
    rf"""
    \p{{Han}}                                         # a Chinese character is a word
    | [{APOSTROPHES}](?=[yY]\p{{L}})[\p{{L}}\p{{M}}]+ # Hausa 'yan: leading apostrophe before y
      (?:[{APOSTROPHES}][\p{{L}}\p{{M}}]+)*
    | \p{{N}}+(?:[.,:]\p{{N}}+)+                      # 10,000  2.5  10:30
    | (?:(?!\p{{Han}})[\p{{L}}\p{{M}}\p{{N}}])+       # letters, marks, digits
      (?:[{APOSTROPHES}](?:(?!\p{{Han}})[\p{{L}}\p{{M}}])+)*  # jami’an, ng’ombe
    | [^\s]                                           # any other character: punctuation
    """,
    regex.VERBOSE,
)


@dataclass(frozen=True)
class Word:
    """One word of a line and where it lies: `line[start:end] == text`."""

    text: str
    start: int
    end: int


def split_words(line: str) -> list[Word]:
    """Cut one line of raw text into MasakhaNER-style words with character offsets.

    Example: split_words("Musa ya je Kano.") gives Musa, ya, je, Kano and "." with
    offsets (0, 4), (5, 7), (8, 10), (11, 15), (15, 16).
    """
    return [Word(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(line)]


def check_texts(texts: object) -> list[str]:
    """The texts to tag as a list of strings, or a ValueError naming the first one that is not a text.

    A single string is one text. None, bytes, numbers, empty strings and strings with
    a lone surrogate (which no tokenizer can encode) are refused by their position,
    so a caller's bad item is one clear line, never a traceback from deep in a tokenizer.
    """
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, bytes | bytearray) or not isinstance(texts, list | tuple):
        raise ValueError(f"expected a text or a list of texts, got {type(texts).__name__}")
    out = []
    for i, text in enumerate(texts, start=1):
        if isinstance(text, bytes | bytearray):
            raise ValueError(f"text {i} is bytes; decode it first (e.g. .decode('utf-8'))")
        if not isinstance(text, str):
            raise ValueError(f"text {i} is {type(text).__name__}, not a string")
        if not text.strip():
            raise ValueError(f"text {i} is empty: give one non-empty sentence per text")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"text {i} has a lone surrogate {text[err.start]!r} at character {err.start}: "
                             "not valid Unicode text") from None
        out.append(text)
    return out
