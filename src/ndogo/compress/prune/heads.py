"""`heads`: structured pruning of attention heads, the same fraction in every encoder layer.

Removing attention heads shrinks the matrices themselves, so the model runs faster with the same dense
kernels; the work is done in `_structured.py` (shared with the other structured method), which
also stores the result (kind `structured`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ndogo.compress.prune import PRUNE
from ndogo.compress.prune._structured_method import StructuredConfig, StructuredPruning


@PRUNE.register("heads", StructuredPruning("heads"))
@dataclass
class HeadsConfig(StructuredConfig):
    """Structured: remove the least important attention heads of every layer (smaller and faster)."""
