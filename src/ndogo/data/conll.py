"""Reading CoNLL-style NER files, strictly.

MasakhaNER, MSRA and most NER corpora ship as "one `token TAG` per line, a
blank line between sentences". Real files bend that layout: a BOM, CRLF line
ends, tabs instead of spaces, trailing blank lines, extra columns (CoNLL-2003
has POS and chunk columns before the tag), IOB1 instead of IOB2. All of those
are read correctly here. What cannot be read correctly (a line with no tag, a
tag outside the IOB scheme, bytes that are not UTF-8) raises `DataError`
naming the file and line, because a silently dropped sentence changes every
F1 computed on the corpus.

Why not `datasets`' conll builder: it ignores the problems we must report and
does not convert IOB1, so we read the text ourselves (it is a few dozen lines).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TAG_RE = re.compile(r"^(O|[BIES]-\S+)$")


class DataError(ValueError):
    """A corpus file that cannot be read as CoNLL NER data, with its location."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass
class Sentence:
    """One sentence: words and their IOB2 tags, with where it came from."""

    tokens: list[str]
    tags: list[str]
    line: int = 0  # 1-based line of the first token in the source file

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class Problem:
    """Something odd that did not stop reading (kept so `data stats` can show it)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class ConllFile:
    """The sentences of one file plus what was noticed while reading it."""

    path: str
    sentences: list[Sentence]
    scheme: str  # "IOB2" or "IOB1" (as found in the file; sentences are always IOB2)
    problems: list[Problem] = field(default_factory=list)


def decode(path: str | Path) -> str:
    """Read a file as UTF-8 (BOM allowed), failing with the line of the first bad byte."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            path, line, f"bytes that are not UTF-8 at byte {err.start} ({raw[err.start:err.start + 4]!r})"
        ) from None
    return text


def is_boundary(line: str) -> bool:
    """Blank lines and CoNLL-2003 `-DOCSTART-` lines separate sentences."""
    stripped = line.strip()
    return not stripped or stripped.startswith("-DOCSTART-")


def parse_line(path: str | Path, lineno: int, line: str, problems: list[Problem]) -> tuple[str, str]:
    """Split one non-blank line into (token, tag); the tag is the last column."""
    fields = line.split()
    if len(fields) == 1:
        # A line like " O": the token itself was whitespace in the source
        # (seen in MasakhaNER 2.0 xho). Keep it, so no tag is lost, but say so.
        if line[:1].isspace() and TAG_RE.match(fields[0]):
            problems.append(Problem(str(path), lineno, "empty token (kept, tagged " + fields[0] + ")"))
            return "", fields[0]
        raise DataError(path, lineno, f"line has no tag: {line.strip()!r}")
    token, tag = fields[0], fields[-1]
    if not TAG_RE.match(tag):
        raise DataError(path, lineno, f"tag {tag!r} is not in the IOB scheme (expected O, B-X or I-X)")
    if tag[0] in "ES":
        raise DataError(path, lineno, f"tag {tag!r} is IOBES; only IOB1 and IOB2 are read")
    return token, tag


def opening_inside_tags(tags: list[str]) -> list[int]:
    """Positions where an entity opens with I- (after O or after another type)."""
    out = []
    prev = "O"
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            out.append(i)
        prev = tag
    return out


def detect_scheme(sentences: Iterable[list[str]]) -> str:
    """IOB1 if entities mostly open with I-, else IOB2.

    In IOB2 every entity opens with B-; in IOB1 entities open with I- and B- only
    separates two adjacent entities of one type. Real IOB2 files have the odd
    annotation slip (MasakhaNER hau/train.txt has one `O, I-ORG`), so one stray
    I- does not make a file IOB1; it is reported as a problem instead.
    """
    opening_i = opening_b = 0
    for tags in sentences:
        opening_i += len(opening_inside_tags(tags))
        opening_b += sum(tag.startswith("B-") for tag in tags)
    return "IOB1" if opening_i > opening_b else "IOB2"


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """Rewrite IOB1 tags as IOB2: an I- that opens an entity becomes B-."""
    out = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def read_sentences(path: str | Path) -> tuple[list[Sentence], list[Problem]]:
    """Read the sentences of a CoNLL file with tags exactly as written."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, None, "is a folder; expected a CoNLL file (`token TAG` per line)")
    if not path.is_file():
        raise DataError(path, None, "no such file")
    text = decode(path)
    problems: list[Problem] = []
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    # str.splitlines() would also split on U+2028 and friends, which occur inside
    # tokens of scraped news text; only \n (and \r\n) end a line here.
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if is_boundary(line):
            if tokens:
                sentences.append(Sentence(tokens, tags, start))
                tokens, tags = [], []
            continue
        token, tag = parse_line(path, lineno, line, problems)
        if not tokens:
            start = lineno
        tokens.append(token)
        tags.append(tag)
    if tokens:
        sentences.append(Sentence(tokens, tags, start))
    return sentences, problems


def read_conll(path: str | Path) -> ConllFile:
    """Read a CoNLL NER file into IOB2 sentences; raise `DataError` on what cannot be read."""
    sentences, problems = read_sentences(path)
    scheme = detect_scheme(s.tags for s in sentences)
    for s in sentences:
        stray = opening_inside_tags(s.tags)
        if scheme == "IOB2":
            for i in stray:
                problems.append(Problem(str(path), s.line + i, f"entity opens with {s.tags[i]} after "
                                        f"{s.tags[i - 1] if i else 'sentence start'}: read as B-{s.tags[i][2:]} "
                                        "(as seqeval does)"))
        if stray:
            # Same entities as seqeval's default mode reads; training then sees IOB2 only.
            s.tags = iob1_to_iob2(s.tags)
    return ConllFile(str(path), sentences, scheme, problems)


def read_predictions(path: str | Path) -> list[Sentence]:
    """Read a two-column `token predicted_tag` file (MasakhaNER's test_predictions layout).

    Predicted tags are taken as written (no IOB1 rewrite): scoring must see what
    the system wrote, and seqeval's default mode already reads an opening I- as a start.
    """
    return read_sentences(path)[0]


def write_conll(path: str | Path, sentences: Iterable[tuple[list[str], list[str]]]) -> None:
    """Write `token TAG` lines with a blank line between sentences."""
    with open(path, "w", encoding="utf-8") as f:
        for tokens, tags in sentences:
            for token, tag in zip(tokens, tags, strict=True):
                f.write(f"{token} {tag}\n")
            f.write("\n")
