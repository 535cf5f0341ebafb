"""Compression stages: each is a function from a saved model to a saved model.

The contract every stage module follows (prune.py, distill.py, quantize.py, trim.py):

    def <verb>(run: str | Path, out: str | Path, config: <Verb>Config) -> Path

It reads the model directory `run`, writes a complete model directory `out`
(weights, tokenizer, and `ndogo.json` whose "kind" says how to load it), and
returns `out`. A new model kind registers its loader with
`ndogo.models.runner.register_kind` when its module is imported; importing this
package imports every stage module, so `load_runner` can load any kind.
Recipes (`ndogo compress`) chain these functions; `ndogo evaluate` measures any output.
"""

from __future__ import annotations

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")
