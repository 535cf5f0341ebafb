"""ndogo: make small-data African language models smaller and faster for NER.

A compression is a function from a model to a model, and every result is a row:
stages (finetune, prune, distill, quantize, trim, export) take a saved model and return
a saved model; `ndogo evaluate` turns any saved model into one row of metrics.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from ndogo.console import quiet_imports

quiet_imports()  # torchao's kernel messages and torch's pytree warnings stay off the terminal

if TYPE_CHECKING:
    from pathlib import Path

    from ndogo.deploy.predict import Predictor
    from ndogo.deploy.runtime import OnnxPredictor


def load(run: "str | Path", batch_size: int = 32, threads: int | None = None,
         runtime: str = "auto") -> "Predictor | OnnxPredictor":
    """Load any saved model for NER on raw text: `ndogo.load(run).predict(texts)`.

    runtime: "auto" runs ONNX models (kinds onnx and ort) on ONNX Runtime alone,
    without importing torch or transformers (`ndogo.deploy.runtime`: a tenth of
    the memory and a fraction of the start-up), and every other kind on the
    PyTorch path (`ndogo.deploy.predict`); "torch" forces the PyTorch path,
    "onnx" the torch-free one. Both give the same entities (`ndogo.deploy.load`).
    Imported lazily so `import ndogo` stays fast.
    """
    from ndogo.deploy import load as _load

    return _load(run, batch_size=batch_size, threads=threads, runtime=runtime)
