"""Vocabulary trimming: keep only the sub-words one language uses (the work is in `_vocab.py`).

This module holds `TrimConfig` and imports no torch, so `ndogo trim-vocab` builds its
options from the config's fields without loading a model library; `from
ndogo.compress.trim import trim, plan_trim, ...` reads the rest from `_vocab.py` on
first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ndogo.options import option


@dataclass
class TrimConfig:
    """What decides a trimmed vocabulary (saved in ndogo.json beside the model)."""

    lang: str = option(help="Language whose training text decides the vocabulary.")
    data: str | None = option(None, help="Corpus folder; its <lang>/train.txt (or .tsv: any task's) is "
                              "counted. Default $NDOGO_DATA or `masakhaner`.")
    corpus: str | None = option(None, help="Monolingual text counted too: a text file (one sentence or paragraph "
                                "a line), or a folder whose <corpus>/<lang>.txt is read (a folder is needed for "
                                "--other-langs).")
    exclude_eval: bool = option(True, help="Leave out monolingual lines that contain a dev or test sentence of "
                                "--data, so test F1 stays a fair measure.")
    other_langs: bool = option(False, help="Also count the other languages' text in --corpus (names cross "
                               "languages), ranked after this language's own sub-words.")
    min_count: int = option(1, min=1, help="Keep sub-words seen at least this many times (in the language's own "
                            "text, and separately in the other languages').")
    keep: int | None = option(None, min=1, help="Keep the K highest-ranked sub-words instead of --min-count: the "
                              "language's own by count, then the other languages' (with --other-langs).")
    batch_size: int = option(1000, min=1, help="Lines per tokenizer call while counting.")
    show_progress: bool = False  # (trim() checks the values, naming their flags)


def __getattr__(name: str) -> Any:
    """The trimming itself (trim, plan_trim, slice_vocab...), imported on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module("ndogo.compress.trim._vocab"), name)
    except AttributeError:
        raise AttributeError(f"module 'ndogo.compress.trim' has no attribute {name!r}") from None
