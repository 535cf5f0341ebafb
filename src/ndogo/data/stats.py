"""`ndogo data stats`: what is in a corpus, and every problem found in it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ndogo.data.conll import DataError
from ndogo.data.corpus import SPLITS, Corpus, SplitReader, lang_dir, list_languages, load_folder, read_ner_file


def entity_types(tags: list[str]) -> list[str]:
    """Types of the entities in an IOB2 tag sequence, one per entity."""
    return [tag[2:] for tag in tags if tag.startswith("B-")]


def split_stats(sentences: list[Any], categories: Callable[[Any], list[str]] | None = None) -> dict[str, Any]:
    """Sentences, tokens and what the task annotates, by kind, for one split.

    `categories` names what each example holds (NER, the default: one entity type per entity;
    a tagger: every word's tag; a classifier: the text's label); `entities` is their count.
    """
    count = categories or (lambda s: entity_types(s.tags))
    counts: Counter[str] = Counter()
    for s in sentences:
        counts.update(count(s))
    return {
        "sentences": len(sentences),
        "tokens": sum(len(s) for s in sentences),
        "entities": sum(counts.values()),
        "by_type": dict(sorted(counts.items())),
    }


def corpus_stats(corpus: Corpus, categories: Callable[[Any], list[str]] | None = None) -> dict[str, Any]:
    """Per split statistics plus the scheme found and the problems noticed."""
    return {
        "splits": {split: split_stats(sents, categories) for split, sents in corpus.splits.items()},
        "schemes": corpus.schemes,
        "problems": [str(p) for p in corpus.problems],
    }


def file_stats(path: Path, read: SplitReader | None = None,
               categories: Callable[[Any], list[str]] | None = None) -> dict[str, Any]:
    """Stats of one split file given alone (any name), as a language with a single split.

    `read` and `categories` are its task's (default: NER's CoNLL reader and entity types).
    """
    entry: dict[str, Any] = {"splits": {}, "schemes": {}, "problems": [], "unreadable": []}
    try:
        examples, problems, scheme = (read or read_ner_file)(path)
    except DataError as err:
        entry["problems"].append(str(err))
        entry["unreadable"].append(str(path))
        return entry
    entry["splits"][path.stem] = split_stats(examples, categories)
    entry["schemes"][path.stem] = scheme
    entry["problems"] = [str(p) for p in problems]
    return entry


def directory_stats(root: str | Path, langs: list[str] | None = None, read: SplitReader | None = None,
                    ext: str = "txt", categories: Callable[[Any], list[str]] | None = None) -> dict[str, Any]:
    """Stats for every language under `root`; a file that cannot be read becomes a problem.

    `read`, `ext` and `categories` are a task's (default: NER's CoNLL files and entity types).

    Unlike training, which stops at the first unreadable line, stats keeps going so
    that one run lists every broken file; each language's `unreadable` lists the files
    that training or evaluation would refuse.
    """
    root = Path(root)
    if root.is_file():
        return {root.stem: file_stats(root, read, categories)}
    if not root.is_dir():
        raise DataError(root, None, "no such file or folder")
    if langs is None:
        langs = list_languages(root, ext)
        if not langs:
            if any((root / f"{s}.{ext}").exists() for s in SPLITS):
                langs = [root.name]
            else:
                empty = sorted(p.name for p in root.iterdir() if p.is_dir())
                raise DataError(root, None, f"no language folder with train.{ext}, dev.{ext} or test.{ext} here"
                                + (f" (folders without split files: {', '.join(empty)})" if empty else ""))
    for lang in langs:
        if (root / lang).exists() and not (root / lang).is_dir():
            raise DataError(root / lang, None, "is a file; a language is a folder holding train/dev/test.txt")
    out: dict[str, Any] = {}
    for lang in langs:
        folder = lang_dir(root, lang, ext)
        entry: dict[str, Any] = {"splits": {}, "schemes": {}, "problems": [], "unreadable": []}
        for split in SPLITS:
            path = folder / f"{split}.{ext}"
            if not path.exists() and not path.is_symlink():
                # said, not skipped: a corpus without its train split cannot be fine-tuned on
                entry["problems"].append(f"{path}: no such file (no {split} split)")
                continue
            try:
                corpus = load_folder(root, lang, (split,), read or read_ner_file, ext,
                                     empty_is_missing=read is not None)
            except DataError as err:
                entry["problems"].append(str(err))
                entry["unreadable"].append(str(folder / f"{split}.{ext}"))  # training would stop on it
                continue
            one = corpus_stats(corpus, categories)
            entry["splits"].update(one["splits"])
            entry["schemes"].update(one["schemes"])
            entry["problems"].extend(one["problems"])
        out[lang] = entry
    return out
