"""What the two structured methods (heads, ffn) share: their options and their handler.

Torch-free at import (the method modules import it to register, and listing methods needs no
torch); the work is in `_structured.py`, imported when a model is pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ndogo.compress.methods import option
from ndogo.compress.prune import PruneConfig


@dataclass
class StructuredConfig(PruneConfig):
    """Options of structured pruning: how heads or neurons are ranked."""

    importance: str = option("weight", choices=("weight", "gradient"),
                             help="rank by weight norm, or by gradient (Taylor) scores on a few training batches "
                                  "(needs --lang)")
    importance_batches: int = option(8, min=1, help="training batches for gradient importance")

    def check(self) -> None:
        super().check()
        if self.importance == "gradient" and not self.lang:
            raise ValueError("gradient importance needs --lang (and --data)")


class StructuredPruning:
    """The prune stage for one structured method (`heads` or `ffn`)."""

    def __init__(self, method: str) -> None:
        self.method = method

    def prune(self, run: Path, out: Path, config: StructuredConfig) -> Path:
        from ndogo.compress.prune._structured import prune_structured

        return prune_structured(run, out, config, self.method)
