"""Getting a model to users: export, the torch-free runtime, predict, ship and serve.

`load` is the one way in for every kind ndogo saves (`ndogo.load` is this function); the
modules are imported only when it is called, so `import ndogo` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from ndogo.deploy.predict import Predictor
    from ndogo.deploy.runtime import OnnxPredictor


def load(run: str | Path, batch_size: int = 32, threads: int | None = None,
         runtime: str = "auto") -> Predictor | OnnxPredictor:
    """Load any saved model for NER on raw text: ONNX kinds torch-free, the others on PyTorch.

    runtime: "auto" runs ONNX models (kinds onnx and ort) on ONNX Runtime alone,
    without importing torch or transformers (`ndogo.deploy.runtime`: a tenth of
    the memory and a fraction of the start-up), and every other kind on the
    PyTorch path (`ndogo.deploy.predict`); "torch" forces the PyTorch path,
    "onnx" the torch-free one. Both give the same entities.
    """
    if runtime not in ("auto", "torch", "onnx"):
        raise ValueError(f"runtime {runtime!r}: use auto, torch or onnx")
    if runtime != "torch":
        from ndogo.deploy.runtime import RUNTIME_KINDS, bundle_kind
        from ndogo.deploy.runtime import load as _load_onnx

        if runtime == "onnx" or bundle_kind(run) in RUNTIME_KINDS:
            return _load_onnx(run, batch_size=batch_size, threads=threads)
    from ndogo.console import quiet_loading
    from ndogo.deploy.predict import load as _load

    with quiet_loading():  # no weight-loading bar or load report; the caller's settings are put back
        return _load(run, batch_size=batch_size, threads=threads)
