"""The settings of `ndogo serve`, declared once: the command's options are generated from them.

Kept apart from `deploy/serve.py` (Starlette, numpy, the batcher) so that building the
`ndogo` command line, which reads these fields for `ndogo serve --help`, stays light.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ndogo.options import check_fields, option


@dataclass(frozen=True)
class ServeConfig:
    """Limits and batching of one server."""

    # Windows per model call (a text up to the model's window is one). Small on purpose: on the
    # project's CPU one int8 minilm thread tags 54-65 sentences/s one at a time but 27-28/s in batches
    # of 32, and 32 clients got 1.57x the bare batch-32 throughput with batches of up to 4 against
    # 0.71x with 32 (docs/lab/results-log-2026-11-to-12.md §8).
    max_batch: int = option(4, min=1, help="Most windows in one model call (dynamic micro-batching; a text up to "
                            "the model's window is one). 4 was best on a 2-core CPU, where batches of 32 cost more "
                            "per sentence than single ones; try larger ones where batching pays.")
    max_wait_ms: float = option(5.0, min=0, help="Longest a text waits for others to fill its batch.")
    max_body_bytes: int = option(1_000_000, min=1, help="Largest request body; larger ones get 413.")
    max_text_chars: int = option(10_000, min=1, help="Longest text; longer ones get 413.")
    max_texts: int = option(256, min=1, help="Most texts in one request; more get 413.")
    # Model input one request may ask for, in sub-words with special tokens and window overlaps counted
    # (what the model runs): 256 sentences of 64, or two Hausa texts at the 10,000-character limit
    # (about 7,000 each in minilm's 512-token windows); a 1 MB body of such texts is about 700,000.
    # Bytes alone do not bound the work: 10,000 characters of punctuation are 10,000 words.
    max_request_tokens: int = option(16_384, min=1, help="Most model input one request may need, in sub-words "
                                     "(special tokens and window overlaps counted): it bounds how long one request "
                                     "holds the model. More get 413.")
    threads: int | None = option(None, min=1, help="CPU threads for the model in each worker (default: 1 with "
                                 "several workers; with --workers 1, the runtime's, one per core).")
    drain_s: float = option(30.0, min=0, help="On SIGTERM, how long requests in flight may take to finish.")
    workers: int | None = option(None, min=1, help="Worker processes behind the one port, each loading its own "
                                 "model (default: one per core, os.cpu_count()). /metrics sums them all; one that "
                                 "dies is replaced, and said so on stderr. 1 serves in this one process.")

    def __post_init__(self) -> None:
        check_fields(self)  # a config built in Python gets the bounds the command line gets
        if self.workers is None:
            object.__setattr__(self, "workers", os.cpu_count() or 1)
