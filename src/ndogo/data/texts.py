"""Reading labelled texts (one text, one label) from tab-separated files, strictly.

Sentence- and tweet-level corpora (SIB-200's topics, AfriSenti's sentiment) ship
as TSV with a header naming the columns: `index_id  category  text`, `tweet
label`, sometimes with an extra ID column in front (AfriSenti's Oromo). Columns
are found by their header names, so an extra column is harmless. What cannot be
read correctly raises `DataError` naming the file and line: a row with the wrong
number of fields (a tab or a line break inside a text), an empty text, a label
outside the corpus's label set. A dropped or misread row would change every
accuracy computed on the file.

Why not `csv` or `pandas`: tweets hold quote characters that a CSV dialect reads
as field quoting (pandas silently merges rows on them), and neither reports the
line of a bad row; the format is one `split("\\t")` per line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ndogo.data.conll import DataError, Problem, check_file, decode, shown, split_lines


@dataclass
class Text:
    """One labelled text, with the line it came from."""

    text: str
    label: str
    line: int = 0

    @property
    def tokens(self) -> list[str]:
        """Whitespace words: what counts, length statistics and the leakage filter see."""
        return self.text.split()

    def __len__(self) -> int:
        return len(self.tokens)


def read_texts(path: str | Path, text_columns: Sequence[str], label_columns: Sequence[str],
               labels: Sequence[str] | None = None) -> tuple[list[Text], list[Problem]]:
    """Read `path`: the first header name found in `text_columns` is the text, in `label_columns` the label.

    With `labels`, a label outside them is refused (with the file and line). An empty file
    (SIB-200 and AfriSenti leave a split's file empty when it does not exist) reads as no texts.
    """
    path = Path(path)
    check_file(path, "a TSV file with a header (text and label columns)")
    raw = decode(path)
    problems: list[Problem] = []
    # CRLF files (written on Windows) keep their \r after the split: it would end the header's last name
    # (`text\r`, then not found) and every row's last field
    lines = [line.removesuffix("\r") for line in split_lines(path, raw, problems)]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return [], problems
    header = [name.strip() for name in lines[0].split("\t")]  # `label ` is the label column
    text_at = next((header.index(c) for c in text_columns if c in header), None)
    label_at = next((header.index(c) for c in label_columns if c in header), None)
    if text_at is None or label_at is None:
        missing = "text" if text_at is None else "label"
        wanted = text_columns if text_at is None else label_columns
        raise DataError(path, 1, f"no {missing} column in the header {shown(lines[0])}; expected one of "
                        f"{', '.join(wanted)} (columns are separated by tabs)")
    allowed = set(labels) if labels is not None else None
    texts: list[Text] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            problems.append(Problem(str(path), lineno, "blank line (skipped)"))
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DataError(path, lineno, f"{len(fields)} tab-separated fields, the header has {len(header)} "
                            f"(a tab or a line break inside a text?): {shown(line)}")
        text, label = fields[text_at].strip(), fields[label_at].strip()
        if not text:
            raise DataError(path, lineno, "empty text")
        if allowed is not None and label not in allowed:
            raise DataError(path, lineno, f"label {label!r} is not one of {', '.join(sorted(allowed))}")
        texts.append(Text(text, label, lineno))
    return texts, problems


def read_label_list(path: str | Path) -> list[str]:
    """A labels file: one label a line (SIB-200's labels.txt), in its order."""
    path = Path(path)
    check_file(path, "a labels file (one label a line)")
    labels = [line.strip() for line in decode(path).splitlines() if line.strip()]
    if not labels:
        raise DataError(path, None, "no labels in this file")
    if len(set(labels)) != len(labels):
        seen = [label for i, label in enumerate(labels) if label in labels[:i]]
        raise DataError(path, None, f"label {seen[0]!r} is listed twice")
    return labels
