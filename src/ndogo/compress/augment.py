"""Teacher-labelled text: more training sentences for a task student than the gold set holds.

A MasakhaNER language has about 2,000 labelled training sentences, and a
student learns its teacher's function from those alone. Raw in-language text is
plentiful (../shared/data/monolingual holds about a hundred times more), and a
fine-tuned teacher can label it: the student then imitates the teacher on
sentences it would never see otherwise, the augmentation behind TinyBERT's and
XtremeDistil's students (Jiao et al. 2020; Mukherjee & Hassan Awadallah 2020).

The text is read the way `ndogo predict` reads raw text: each line is split into
MasakhaNER-style words (`ndogo.data.words`), then into sentences at
sentence-final punctuation. Every line holding a dev or test sentence of the NER
corpus is dropped first (`ndogo.data.leakage`): news text is often the corpus's
very source, and a student taught the teacher's answers on the test sentences
would make its test F1 meaningless.

The teacher labels each sentence exactly as evaluation would (same windows,
first sub-word of each word, `ndogo.models.tagging.predict_tags`); the tags are the
sentence's targets for the gold-label loss and the distillation loss adds the
teacher's soft distribution on top. Labels are written to a JSON-lines cache
chunk by chunk, so an interrupted labelling pass resumes where it stopped and a
resumed distillation sees exactly the same sentences.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ndogo.data.conll import Sentence, decode
from ndogo.data.leakage import drop_lines_containing
from ndogo.data.words import split_words

# A sentence ends after one of these words (Latin, Ge'ez and CJK full stops, ! and ?).
SENTENCE_END = re.compile(r"^[.!?።？！。]+$")
CACHE = "teacher-labels.jsonl"
CHUNK = 256  # sentences labelled between two cache writes


def text_path(source: str | Path, lang: str) -> Path:
    """`source` itself when it is a file, else `<source>/<lang>.txt`."""
    from ndogo.data.leakage import language_file

    path = Path(source)
    return path if path.is_file() else language_file(path, lang)


def raw_sentences(lines: Sequence[str], min_words: int = 3, max_words: int = 80) -> list[list[str]]:
    """Word-split sentences of raw text lines, cut at sentence-final punctuation.

    Fragments shorter than `min_words` (headlines, bylines) are left out; a run
    longer than `max_words` without a full stop is cut there (windowing would
    handle it, but such runs are mostly lists and tables).
    """
    out: list[list[str]] = []
    for line in lines:
        current: list[str] = []
        for word in split_words(line):
            current.append(word.text)
            if SENTENCE_END.match(word.text) or len(current) >= max_words:
                if len(current) >= min_words:
                    out.append(current)
                current = []
        if len(current) >= min_words:
            out.append(current)
    return out


def read_unlabeled(sources: Sequence[str | Path], lang: str, held_out: Sequence[Sequence[str]],
                   limit: int | None = None) -> tuple[list[list[str]], dict[str, Any]]:
    """Sentences of the raw text in `sources`, without the lines that hold a `held_out` sentence.

    Returns the sentences (the first `limit`, in file order) and what was read:
    files, lines, lines dropped for leakage, sentences, and `missing`: the folders
    that hold no text for `lang`.

    A folder is a pool of languages: one that has no `<lang>.txt` adds nothing (the
    student then learns from the gold set and whatever the other sources give, and
    the record says so), so that a recipe with teacher-labelled text still runs on a
    language nobody collected raw text for. A file named outright must exist.
    """
    lines: list[str] = []
    files = []
    missing = []
    for source in sources:
        path = text_path(source, lang)
        if not path.is_file():
            if Path(source).is_dir():
                missing.append(str(Path(source).resolve()))
                continue
            raise FileNotFoundError(f"{path}: no raw text for {lang!r} (give a text file, or a folder of <lang>.txt)")
        files.append(str(path.resolve()))
        lines += [line.strip() for line in decode(path).split("\n") if line.strip()]
    kept, dropped = drop_lines_containing(lines, held_out)
    sentences = raw_sentences(kept)
    if limit is not None:
        sentences = sentences[:limit]
    digest = hashlib.sha256(json.dumps(sentences, ensure_ascii=False).encode()).hexdigest()[:16]
    record = {"files": files, "lines": len(lines), "dropped_eval_lines": dropped,
              "sentences": len(sentences), "sha256": digest}
    if missing:
        record["missing"] = missing
    return sentences, record


def teacher_label(runner: Any, sentences: list[list[str]], cache: Path, batch_size: int = 32,
                  show_progress: bool = True, task: Any = None) -> list[Any]:
    """The teacher's tags for every sentence, resumed from `cache` and appended to it chunk by chunk.

    A cache line is {"tokens": [...], "tags": [...]}; a cache whose sentences are
    not these (another text, another limit) is refused rather than mixed in. A text
    classifier's teacher (`task` with a sequence head) gives each sentence one label instead
    ({"text": ..., "label": ...} a line).
    """
    if task is not None and task.head == "sequence":
        from ndogo.data.texts import Text

        def label_texts(chunk: list[list[str]]) -> list[Any]:
            texts = [Text(" ".join(words), "") for words in chunk]
            encoded = task.encode(runner.tokenizer, texts, runner.max_length)
            got = task.predict(runner.forward, encoded, texts, runner.labels, runner.pad_id, batch_size)
            return [Text(t.text, label) for t, label in zip(texts, got, strict=True)]

        return _cached_labels(
            sentences, cache, label_texts, show_progress, unit="text",
            record=lambda t: {"text": t.text, "label": t.label},
            read=lambda r, words, line: Text(r["text"], r["label"], line) if r["text"] == " ".join(words) else None)
    from ndogo.models.tagging import predict_tags

    def tag_sentences(chunk: list[list[str]]) -> list[Any]:
        tags, _ = predict_tags(runner, chunk, batch_size)
        return [Sentence(list(words), list(t)) for words, t in zip(chunk, tags, strict=True)]

    return _cached_labels(
        sentences, cache, tag_sentences, show_progress, unit="sent",
        record=lambda s: {"tokens": s.tokens, "tags": s.tags},
        read=lambda r, words, line: Sentence(r["tokens"], r["tags"], line=line)
        if r["tokens"] == words and len(r["tags"]) == len(words) else None)


def _cached_labels(sentences: list[list[str]], cache: Path, label: Callable[[list[list[str]]], list[Any]],
                   show_progress: bool, unit: str, record: Callable[[Any], dict[str, Any]],
                   read: Callable[[dict[str, Any], list[str], int], Any]) -> list[Any]:
    """`label` over the sentences, CHUNK at a time, each chunk appended to `cache` as JSON lines; a rerun
    reads the cache back first (`read` gives None for a line of another sentence, which is refused)."""
    done: list[Any] = []
    if cache.is_file():
        for i, line in enumerate(cache.read_text(encoding="utf-8").splitlines()):
            try:
                item = read(json.loads(line), sentences[i], i + 1) if i < len(sentences) else None
            except (ValueError, KeyError, TypeError):
                break  # a line cut by a kill: label again from here
            if item is None:
                raise ValueError(f"{cache}: labels of other sentences (line {i + 1}); delete it to label again")
            done.append(item)
        # rewrite what was read whole, so a cut last line does not stay in the file
        cache.write_text("".join(json.dumps(record(x), ensure_ascii=False) + "\n" for x in done), encoding="utf-8")
    with tqdm(total=len(sentences), initial=len(done), desc="teacher labels", unit=unit,
              disable=not show_progress, dynamic_ncols=True) as bar, cache.open("a", encoding="utf-8") as out:
        for start in range(len(done), len(sentences), CHUNK):
            chunk = sentences[start:start + CHUNK]
            for offset, item in enumerate(label(chunk)):
                item.line = start + offset + 1
                done.append(item)
                out.write(json.dumps(record(item), ensure_ascii=False) + "\n")
            out.flush()
            bar.update(len(chunk))
    return done
