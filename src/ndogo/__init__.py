"""ndogo: make small-data African language models smaller and faster for NER.

A compression is a function from a model to a model, and every result is a row:
stages (finetune, prune, distill, quantize, trim) take a saved model and return
a saved model; `ndogo evaluate` turns any saved model into one row of metrics.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from ndogo.deploy.predict import Predictor


def load(run: "str | Path", batch_size: int = 32, threads: int | None = None) -> "Predictor":
    """Load any saved model for NER on raw text: `ndogo.load(run).predict(texts)`.

    Imported lazily so `import ndogo` stays fast; see `ndogo.deploy.predict.load`.
    """
    from ndogo.deploy.predict import load as _load

    return _load(run, batch_size=batch_size, threads=threads)
