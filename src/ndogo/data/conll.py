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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

TAG_RE = re.compile(r"^(O|[BIES]-\S+)$")
# Columns are separated by ASCII spaces and tabs only, as conlleval reads them: str.split() would also
# cut at U+00A0, U+2028, U+001C…, which occur *inside* tokens of scraped news text, and silently drop
# the rest of the token as if it were an extra column.
COLUMN_SEP = re.compile(r"[ \t]+")
ASCII_SPACE = " \t\r"


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


def split_columns(line: str) -> list[str]:
    """The columns of a data line: split on ASCII spaces and tabs only."""
    stripped = line.strip(ASCII_SPACE)
    return COLUMN_SEP.split(stripped) if stripped else []


def is_boundary(line: str) -> bool:
    """Blank lines and CoNLL-2003 `-DOCSTART-` lines separate sentences.

    A document marker is a line whose first column *is* `-DOCSTART-`; a token that merely
    starts with it (`-DOCSTART-x B-PER`) is data and is read as such.
    """
    fields = split_columns(line)
    return not fields or fields[0] == "-DOCSTART-"


def shown(line: str, limit: int = 80) -> str:
    """A line as quoted in an error: stripped and cut, so a 1 MB line gives a one-line message."""
    text = line.strip(ASCII_SPACE)
    return repr(text if len(text) <= limit else text[:limit] + "…")


TagCheck = Callable[[str], "str | None"]


def iob_tag_problem(tag: str) -> str | None:
    """Why `tag` is not an IOB1/IOB2 tag, or None when it is (NER files)."""
    if not TAG_RE.match(tag):
        return f"tag {tag!r} is not in the IOB scheme (expected O, B-X or I-X)"
    if tag[0] in "ES":
        return f"tag {tag!r} is IOBES; only IOB1 and IOB2 are read"
    return None


def parse_line(path: str | Path, lineno: int, line: str, problems: list[Problem],
               check_tag: TagCheck = iob_tag_problem) -> tuple[str, str]:
    """Split one non-blank line into (token, tag); the tag is the last column, checked by `check_tag`."""
    fields = split_columns(line)
    if len(fields) == 1:
        # A line like " O": the token itself was whitespace in the source
        # (seen in MasakhaNER 2.0 xho). Keep it, so no tag is lost, but say so.
        if line[:1] in (" ", "\t") and check_tag(fields[0]) is None:
            problems.append(Problem(str(path), lineno, "empty token (kept, tagged " + fields[0] + ")"))
            return "", fields[0]
        raise DataError(path, lineno, f"line has no tag: {shown(line)}")
    token, tag = fields[0], fields[-1]
    problem = check_tag(tag)
    if problem is not None:
        raise DataError(path, lineno, problem)
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


def check_file(path: Path, what: str = "a CoNLL file (`token TAG` per line)") -> None:
    """Refuse, in one line, a path that is not a readable regular file (and say which kind it is)."""
    if path.is_symlink() and not path.exists():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            raise DataError(path, None, f"a symbolic link loop; expected {what}") from None
        except OSError:
            pass
        raise DataError(path, None, f"a symbolic link to {path.readlink()}, which does not exist")
    if path.is_dir():
        raise DataError(path, None, f"is a folder; expected {what}")
    if not path.exists():
        raise DataError(path, None, "no such file")
    if not path.is_file():
        # a FIFO or a device would block or never end
        raise DataError(path, None, f"not a regular file; expected {what}")


def split_lines(path: Path, text: str, problems: list[Problem]) -> list[str]:
    """Lines ended by \n, \r\n or a lone \r (old Mac files), and nothing else.

    str.splitlines() would also split on U+2028 and friends, which occur inside
    tokens of scraped news text. A file whose lines end in a lone CR would
    otherwise read as one sentence of one token.
    """
    if "\r" in text.replace("\r\n", ""):
        lone = text.replace("\r\n", "\n")
        problems.append(Problem(str(path), lone[: lone.index("\r")].count("\n") + 1,
                                "line ends in a lone carriage return (old Mac style): read as a line end"))
        text = lone.replace("\r", "\n")
    return text.split("\n")


def read_sentences(path: str | Path, max_columns: int | None = None,
                   check_tag: TagCheck = iob_tag_problem) -> tuple[list[Sentence], list[Problem]]:
    """Read the sentences of a CoNLL file with tags exactly as written.

    `max_columns` refuses a line with more columns (a prediction file must not
    be scored on whichever column happens to be last); `check_tag` says why a tag
    is refused (IOB for NER; a task with another tag set passes its own).
    """
    path = Path(path)
    check_file(path)
    text = decode(path)
    problems: list[Problem] = []
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    for lineno, line in enumerate(split_lines(path, text, problems), start=1):
        if is_boundary(line):
            if tokens:
                sentences.append(Sentence(tokens, tags, start))
                tokens, tags = [], []
            continue
        if max_columns is not None and len(split_columns(line)) > max_columns:
            raise DataError(path, lineno, f"{len(split_columns(line))} columns, expected {max_columns} "
                            f"(`token TAG`): {shown(line)}; name the tag column with --pred-column")
        token, tag = parse_line(path, lineno, line, problems, check_tag)
        if "\ufeff" in token or "\x00" in token:
            # kept as written (read intact), but said: a prediction file without it will not align
            problems.append(Problem(str(path), lineno, f"token {shown(token)} holds a "
                                    f"{'byte-order mark' if chr(0xFEFF) in token else 'NUL character'}"))
        if not tokens:
            start = lineno
        tokens.append(token)
        tags.append(tag)
    if tokens:
        sentences.append(Sentence(tokens, tags, start))
    return sentences, problems


def type_problems(path: str | Path, sentences: list[Sentence],
                  known: tuple[str, ...] = ("PER", "ORG", "LOC", "DATE")) -> list[Problem]:
    """One problem per entity type outside the corpus's scheme (first line where it appears).

    `B-per` is read as a type of its own, which scoring then counts apart from
    PER: the user must hear of it, not find it in a per-type table later.
    """
    out: list[Problem] = []
    seen: set[str] = set()
    for s in sentences:
        for i, tag in enumerate(s.tags):
            kind = tag[2:]
            if tag == "O" or kind in known or kind in seen:
                continue
            seen.add(kind)
            same = [k for k in known if k.lower() == kind.lower()]
            if same:
                message = f"entity type {kind!r} differs only in case from {same[0]!r}: counted as a type of its own"
            else:
                message = f"entity type {kind!r} is not one of {', '.join(known)} (kept as its own type)"
            out.append(Problem(str(path), s.line + i, message))
    return out


def read_conll(path: str | Path) -> ConllFile:
    """Read a CoNLL NER file into IOB2 sentences; raise `DataError` on what cannot be read."""
    sentences, problems = read_sentences(path)
    problems.extend(type_problems(path, sentences))
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


def read_predictions(path: str | Path, column: int | None = None) -> list[Sentence]:
    """Read a two-column `token predicted_tag` file (MasakhaNER's test_predictions layout).

    Predicted tags are taken as written (no IOB1 rewrite): scoring must see what
    the system wrote, and seqeval's default mode already reads an opening I- as a start.
    A file with more columns (`token PRED GOLD`) is refused unless `column`
    (1-based, the token being column 1) says which one holds the prediction.
    """
    if column is None:
        return read_sentences(path, max_columns=2)[0]
    if column < 2:
        raise ValueError(f"--pred-column must be 2 or more (column 1 is the token), got {column}")
    path = Path(path)
    check_file(path)
    problems: list[Problem] = []
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    for lineno, line in enumerate(split_lines(path, decode(path), problems), start=1):
        if is_boundary(line):
            if tokens:
                sentences.append(Sentence(tokens, tags, start))
                tokens, tags = [], []
            continue
        fields = split_columns(line)
        if len(fields) < column:
            raise DataError(path, lineno, f"no column {column} in {shown(line)}")
        tag = fields[column - 1]
        if not TAG_RE.match(tag) or tag[0] in "ES":
            raise DataError(path, lineno, f"column {column}: {tag!r} is not an IOB tag (expected O, B-X or I-X)")
        if not tokens:
            start = lineno
        tokens.append(fields[0])
        tags.append(tag)
    if tokens:
        sentences.append(Sentence(tokens, tags, start))
    return sentences


def write_conll(path: str | Path, sentences: Iterable[tuple[list[str], list[str]]]) -> None:
    """Write `token TAG` lines with a blank line between sentences."""
    with open(path, "w", encoding="utf-8") as f:
        for tokens, tags in sentences:
            for token, tag in zip(tokens, tags, strict=True):
                f.write(f"{token} {tag}\n")
            f.write("\n")
