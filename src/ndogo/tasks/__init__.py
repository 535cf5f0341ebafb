"""Tasks: everything that differs between NER, POS tagging, topic and sentiment classification.

A task is one module in this package holding one `Task` subclass, registered on
import: how its corpus is read and checked, its label set, the model head (a
label per word, or one per text), how predictions are decoded and scored, which
metric chooses epochs and budgets, and what a model card says. The training loop,
evaluation, stages and reports ask the task; nothing outside this package names
one (tests/test_tasks.py holds that). A new task is one new module here: this
package finds every module in it, as Optimum makes the task an explicit axis
rather than a branch in each tool.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ndogo.data.conll import DataError, Problem
from ndogo.data.corpus import SPLITS, Corpus, is_hub_name, lang_dir, load_folder, resolve_data

DEFAULT_TASK = "ner"  # what every run before the task axis was, and what a hub corpus name means


class Task:
    """One task's reader, labels, head, decoding and metric. Subclasses set the class attributes."""

    name: ClassVar[str]
    head: ClassVar[str]  # "tokens": a label per word; "sequence": one label per text
    metric: ClassVar[str]  # the key of `score()` that chooses the best epoch, recipes and budgets
    metric_label: ClassVar[str]  # how the metric is printed ("F1", "accuracy", "macro-F1")
    metrics: ClassVar[tuple[str, ...]]  # every headline metric `score()` returns
    pipeline_tag: ClassVar[str]  # the Hugging Face pipeline that loads the model
    output: ClassVar[str]  # what `predict` gives per text: "entities" (spans), "tags" (per word) or "label"
    title: ClassVar[str]  # the model card's task name ("Named Entity Recognition")
    metric_names: ClassVar[dict[str, str]]  # each metric's name on the model card
    card_tags: ClassVar[tuple[str, ...]]  # the card's tags after the pipeline's: the task, then its corpus
    results_note: ClassVar[str]  # the card's sentence above its results table
    hub_dataset: ClassVar[str]  # the card's `datasets:` id ("" where it depends on the language)
    licence: ClassVar[str]  # the card's `license:` (the corpus's annotations' licence, which the model inherits)
    data_note: ClassVar[str]  # the card's "Data and licence" paragraph: where the data is from, whom to cite
    ext: ClassVar[str] = "txt"  # the split files' extension
    # the TSV header names a text is read from, first found first (a corpus's split file, `predict --input-format tsv`)
    text_columns: ClassVar[tuple[str, ...]] = ("text",)
    summary: ClassVar[str]  # one line for --help and the model card

    def read_split(self, path: Path) -> tuple[list[Any], list[Problem], str]:
        """One split file's examples, the problems noticed reading it, and its tag scheme ("" if none)."""
        raise NotImplementedError

    def looks_like(self, folder: Path) -> bool:
        """Whether a language folder holds this task's files (for `--task auto`)."""
        raise NotImplementedError

    def load(self, data: str | None, lang: str, splits: tuple[str, ...] = SPLITS) -> Corpus:
        """A language's splits from a local folder `<data>/<lang>/<split>.<ext>`."""
        root = resolve_data(data)
        if not Path(root).exists():
            raise DataError(root, None, f"no such folder ({self.name} corpora are read from a local folder)")
        return load_folder(root, lang, splits, self.read_split, self.ext, empty_is_missing=True)

    def text_of(self, example: Any) -> str:
        """An example as the raw text a user would send (`predict`, `serve`): its words joined by spaces."""
        return " ".join(example.tokens)

    def labels(self, corpora: Sequence[Corpus]) -> list[str]:
        """The label list in id order (stable: the same corpus gives the same ids)."""
        raise NotImplementedError

    def categories(self, example: Any) -> list[str]:
        """What one example holds, by kind, for `ndogo data stats` (entity types, tags, or its label)."""
        raise NotImplementedError

    def gold(self, examples: Sequence[Any]) -> list[Any]:
        """What `score` compares predictions with."""
        raise NotImplementedError

    def encode(self, tokenizer: Any, examples: Sequence[Any], max_length: int,
               label2id: dict[str, int] | None = None) -> list[Any]:
        """Model inputs for the examples (with training labels when `label2id` is given)."""
        raise NotImplementedError

    def collate(self, encoded: Sequence[Any], pad_id: int, with_labels: bool = True) -> dict[str, Any]:
        """A padded batch of encoded inputs."""
        raise NotImplementedError

    def predict(self, forward: Callable[[dict[str, Any]], Any], encoded: Sequence[Any], examples: Sequence[Any],
                labels: Sequence[str], pad_id: int, batch_size: int = 32,
                progress: Callable[[int], None] | None = None) -> list[Any]:
        """Decoded predictions, one per example, from a forward function of any model kind."""
        raise NotImplementedError

    def score(self, gold: list[Any], pred: list[Any]) -> dict[str, Any]:
        """Every metric of predictions against gold; `self.metric` among them, `per_type` per label."""
        raise NotImplementedError


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add a task (each task module calls this once, on import)."""
    if task.head not in ("tokens", "sequence"):
        raise ValueError(f"task {task.name!r}: head must be tokens or sequence, got {task.head!r}")
    TASKS[task.name] = task
    return task


def _discover() -> None:
    """Import every module of this package, so a task added as one file is found without an edit here."""
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def task_names() -> list[str]:
    """Every known task's name, NER first."""
    _discover()
    return sorted(TASKS, key=lambda n: (n != DEFAULT_TASK, n))


def get_task(name: str | None) -> Task:
    """The task called `name` (None: NER, what every run before the task axis was)."""
    _discover()
    name = name or DEFAULT_TASK
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(task_names())}")
    return TASKS[name]


def detect_task(data: str | None, lang: str) -> Task:
    """The task whose files `<data>/<lang>` holds; a hub corpus name is NER (MasakhaNER)."""
    _discover()
    root = resolve_data(data)
    if not Path(root).exists():
        if is_hub_name(root):
            return get_task(DEFAULT_TASK)
        raise DataError(root, None, "no such folder (and not a hub corpus name such as 'masakhaner')")
    tried: list[str] = []
    for name in task_names():
        task = TASKS[name]
        try:
            folder = lang_dir(Path(root), lang, task.ext)
        except DataError:
            continue
        tried.append(str(folder))
        if task.looks_like(folder):
            return task
    if not tried:
        lang_dir(Path(root), lang)  # the usual one-line "no language here; languages found: …"
    raise DataError(tried[0], None, f"cannot tell which task these files are for; pass --task "
                    f"({', '.join(task_names())})")


def check_corpus_fits(task: Task, data: str | None, lang: str) -> None:
    """Refuse, in one line, a corpus of another task than `task` (a topic classifier scored on AfriSenti).

    Read as the model's task, such files fail on a detail that does not say what is wrong (a header
    without a `text` column, no `test.txt` beside `test.tsv`); a folder whose task cannot be told
    is left to the task's own reader, which names what it cannot read.
    """
    try:
        found = detect_task(data, lang)
    except DataError:
        return
    root = Path(resolve_data(data))
    if found.name != task.name:
        try:  # files that two tasks could read (a `label` column) are the model's own task's too
            if root.exists() and task.looks_like(lang_dir(root, lang, task.ext)):
                return
        except DataError:
            pass
        where = root / lang if (root / lang).is_dir() else root
        given = "" if data else " (the default without --data)"
        raise DataError(where, None, f"holds {found.name} files{given}, but the model was trained for {task.name} "
                        f"({task.title}): give --data a {task.name} corpus")


def resolve_task(name: str | None, data: str | None, lang: str) -> Task:
    """`--task`: a name, or `auto`/None to detect it from the corpus folder."""
    if name in (None, "", "auto"):
        return detect_task(data, lang)
    return get_task(name)


def task_of_model(meta: dict[str, Any]) -> Task:
    """The task a saved model was trained for (its ndogo.json); models saved before the axis are NER."""
    return get_task(meta.get("task") or DEFAULT_TASK)
