"""Corpora: a language's train/dev/test sentences, from a local folder or the hub.

A local corpus has the MasakhaNER layout `<root>/<lang>/{train,dev,test}.txt`
(MasakhaNER 1.0, 2.0, and MSRA whose root holds the split files directly).
On a machine with a hub, `masakhaner` and `masakhane/masakhaner2` load the same
languages from Hugging Face datasets and give the same `Corpus` objects.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ndogo.data.conll import ConllFile, DataError, Problem, Sentence, read_conll

SPLITS = ("train", "dev", "test")
HUB_CORPORA = {"masakhaner": "masakhaner", "masakhaner2": "masakhane/masakhaner2"}
# The languages of each hub corpus: a language asked of the wrong one is named at once, instead of
# after half a minute of the hub client's retries.
HUB_LANGUAGES = {
    "masakhaner": ("amh", "hau", "ibo", "kin", "lug", "luo", "pcm", "swa", "wol", "yor"),
    "masakhane/masakhaner2": ("bam", "bbj", "ewe", "fon", "hau", "ibo", "kin", "lug", "luo", "mos", "nya", "pcm",
                              "sna", "swa", "tsn", "twi", "wol", "xho", "yor", "zul"),
}
# The hub datasets call the dev split "validation".
HUB_SPLIT = {"train": "train", "dev": "validation", "test": "test"}
# Entity types in MasakhaNER's label order; any other type found in data is appended.
KNOWN_TYPES = ("PER", "ORG", "LOC", "DATE")


@dataclass
class Corpus:
    """One language of a corpus: sentences per split, plus where they came from."""

    name: str
    lang: str
    splits: dict[str, list[Any]]  # Sentence (tagged words) or Text (a labelled text), by the task
    sources: dict[str, str] = field(default_factory=dict)
    schemes: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    folder: str = ""  # where the split files are (local corpora)
    empty: dict[str, str] = field(default_factory=dict)  # split -> its file, for files left out as empty

    def require(self, split: str, purpose: str) -> list[Any]:
        """The examples of a split, or a one-line DataError naming the file that is missing or empty.

        An empty file is told apart from a missing one: AfriSenti ships an empty train file for the
        languages it holds for zero-shot transfer (orm, tir), and "no train split" beside a file
        that exists sends the user looking for the wrong mistake.
        """
        if self.splits.get(split):
            return self.splits[split]
        if split in self.empty:
            hint = ("; a language without training examples can only be scored zero-shot, by a model trained on "
                    "other languages (a sweep's `[evaluate] transfer` option)") if split == "train" else ""
            raise DataError(self.empty[split], None, f"the {split} file holds no examples: {purpose} needs them"
                            f"{hint}")
        ext = Path(next(iter(self.sources.values()), ".txt")).suffix or ".txt"
        where = Path(self.folder) / f"{split}{ext}" if self.folder else f"{self.name}/{self.lang}"
        raise DataError(where, None, f"no {split} split: {purpose} needs it")

    def labels(self) -> list[str]:
        """The IOB2 label list: O first, then B-/I- per type in a stable order."""
        types = {tag[2:] for sents in self.splits.values() for s in sents for tag in s.tags if tag != "O"}
        return labels_for_types(types)


def labels_for_types(types: set[str] | list[str]) -> list[str]:
    """O, then B-T, I-T for each type (known MasakhaNER types first, the rest sorted)."""
    ordered = [t for t in KNOWN_TYPES if t in types] + sorted(t for t in types if t not in KNOWN_TYPES)
    return ["O"] + [f"{p}-{t}" for t in ordered for p in ("B", "I")]


def resolve_data(data: str | None) -> str:
    """`--data` or NDOGO_DATA or the hub's MasakhaNER 1.0, in that order."""
    return data or os.environ.get("NDOGO_DATA") or "masakhaner"


def lang_dir(root: Path, lang: str, ext: str = "txt") -> Path:
    """`<root>/<lang>` in the MasakhaNER layout; a root with split files directly (MSRA) is its own."""
    if (root / lang).is_dir():
        return root / lang
    if any((root / f"{s}.{ext}").is_file() for s in SPLITS) and lang in ("", root.name, "zh"):
        return root
    langs = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise DataError(root, None, f"no language {lang!r} here; languages found: {', '.join(langs) or 'none'}")


# Reads one split file: (examples, problems noticed, the tag scheme or "" where there is none).
SplitReader = Callable[[Path], tuple[list[Any], list[Problem], str]]


def read_ner_file(path: Path) -> tuple[list[Any], list[Problem], str]:
    """A MasakhaNER-style CoNLL file as IOB2 sentences."""
    cf: ConllFile = read_conll(path)
    return cf.sentences, cf.problems, cf.scheme


def load_local(root: str | Path, lang: str, splits: tuple[str, ...] = SPLITS) -> Corpus:
    """Read `<root>/<lang>/<split>.txt` for each split that exists (train is required)."""
    return load_folder(root, lang, splits, read_ner_file)


def load_folder(root: str | Path, lang: str, splits: tuple[str, ...], read: SplitReader, ext: str = "txt",
                empty_is_missing: bool = False) -> Corpus:
    """Read `<root>/<lang>/<split>.<ext>` with `read` for each split that exists.

    An empty split file is an error (a test file with nothing in it would score 0 as if the
    model had found nothing), unless `empty_is_missing`: corpora that ship an empty file for
    a split they do not have (AfriSenti's Oromo and Tigrinya train files).
    """
    root = Path(root)
    folder = lang_dir(root, lang, ext)
    corpus = Corpus(name=root.name, lang=lang, splits={}, folder=str(folder))
    for split in splits:
        path = folder / f"{split}.{ext}"
        if not path.exists() and not path.is_symlink():
            # Not an error here (MSRA has no train split); a stage that needs it says so by name.
            corpus.problems.append(Problem(str(path), 0, "no such file: this split is left out"))
            continue
        examples, problems, scheme = read(path)  # a folder, a dangling link or a link loop fails here, by name
        corpus.problems.extend(problems)
        if not examples:
            if empty_is_missing:
                corpus.problems.append(Problem(str(path), 0, "empty file: this split is left out"))
                corpus.empty[split] = str(path)
                continue
            raise DataError(path, None, "no sentences in this file")
        corpus.splits[split] = examples
        corpus.sources[split] = str(path)
        corpus.schemes[split] = scheme
    if not corpus.splits and not any(p.message.startswith("empty file") for p in corpus.problems):
        raise DataError(folder, None, f"no split files ({', '.join(f'{s}.{ext}' for s in splits)})")
    return corpus


def load_hub(name: str, lang: str, splits: tuple[str, ...] = SPLITS) -> Corpus:
    """Load a language from the Hugging Face hub (needs network) into a `Corpus`."""
    from datasets import load_dataset  # imported here: slow, and unused for local data

    repo = HUB_CORPORA.get(name, name)
    known = HUB_LANGUAGES.get(repo)
    if known is not None and lang not in known:
        elsewhere = [other for other, langs in HUB_LANGUAGES.items() if lang in langs and other != repo]
        hint = (f"; it is in {elsewhere[0]}: pass --data {elsewhere[0]}" if elsewhere
                else f"; {repo} has {', '.join(known)}")
        raise DataError(repo, None, f"no language {lang!r} in {repo}{hint} (or a local folder with --data)")
    try:
        ds = load_dataset(repo, lang)
    except Exception as err:  # datasets raises many kinds; the user needs one message
        raise DataError(
            repo, None, f"could not load language {lang!r} from the hub ({type(err).__name__}: {err}). "
            "Without a hub, pass a local MasakhaNER folder with --data or NDOGO_DATA."
        ) from None
    corpus = Corpus(name=name, lang=lang, splits={})
    for split in splits:
        hub_split = HUB_SPLIT[split]
        if hub_split not in ds:
            continue
        names = ds[hub_split].features["ner_tags"].feature.names
        corpus.splits[split] = [
            Sentence(list(row["tokens"]), [names[i] for i in row["ner_tags"]], line=n + 1)
            for n, row in enumerate(ds[hub_split])
        ]
        corpus.sources[split] = f"hub:{repo}/{lang}/{hub_split}"
        corpus.schemes[split] = "IOB2"
    return corpus


def load_corpus(data: str | Path | None, lang: str, splits: tuple[str, ...] = SPLITS) -> Corpus:
    """A local folder if `data` is one, else a hub dataset name (default: MasakhaNER 1.0)."""
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:  # checked here: a local folder would report a missing file, the hub a KeyError
        raise ValueError(f"split {unknown[0]!r}: use one of {', '.join(SPLITS)}")
    data = resolve_data(str(data) if data is not None else None)
    if Path(data).exists():
        return load_local(data, lang, splits)
    if is_hub_name(data):
        return load_hub(data, lang, splits)
    raise DataError(data, None, "no such folder (and not a hub corpus name such as 'masakhaner')")


def is_hub_name(data: str) -> bool:
    """Whether `data` (not an existing folder) names a hub corpus rather than a mistyped path.

    A known name or an `owner/name` id is tried on the hub; anything else (a bare word,
    a path starting with . or /) cannot be, so callers can refuse it before any work.
    """
    return data in HUB_CORPORA or ("/" in data and not data.startswith((".", "/", "~")))


def list_languages(root: str | Path, ext: str = "txt") -> list[str]:
    """Languages of a local corpus: subfolders holding at least one split file."""
    root = Path(root)
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and any((p / f"{s}.{ext}").is_file() for s in SPLITS)
    )
