"""Loading kind `quantized`: the module `load_runner` imports when it meets a torch-quantized model.

The saved record names the method; its handler rebuilds the module (`_torch.TorchHandler.load`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ndogo.compress.quantize import QUANTIZE
from ndogo.compress.quantize._torch import KIND, TorchHandler
from ndogo.models.loading import ModelError, load_tokenizer, model_labels, run_window
from ndogo.models.runner import Runner, register_kind


class QuantizedRunner(Runner):
    """A Runner whose parameter count is the source model's, recorded at quantization.

    Quantized layers hide their weights from `count_params` (packed torch.ao params,
    torchao tensor subclasses that have no count_nonzero); quantization does not
    change how many parameters there are, so the recorded count is the right one.
    """

    def params(self) -> tuple[int, int]:
        counts = self.meta.get("param_counts")
        if counts is None:
            return super().params()
        return int(counts["params"]), int(counts["nonzero_params"])


def load_quantized(path: Path, meta: dict[str, Any]) -> Runner:
    """Load a "quantized" model directory written by a torch method as a Runner."""
    record = meta.get("quantization") or {}
    try:
        cfg = QUANTIZE.from_record(record if isinstance(record, dict) else {})
        handler = QUANTIZE.of(cfg).handler
    except (TypeError, ValueError) as err:
        raise ModelError(f"{path}: bad quantization record in ndogo.json ({err})") from None
    if not isinstance(handler, TorchHandler):
        raise ModelError(f"{path}: kind {KIND!r} but method {cfg.method!r} does not save torch models")
    tokenizer = load_tokenizer(path)
    model = handler.load(path, cfg)
    max_length = run_window(path, meta, tokenizer, model.config)
    return QuantizedRunner(path=path, kind=KIND, tokenizer=tokenizer, labels=model_labels(model),
                           max_length=max_length, forward=lambda batch: model(**batch).logits, module=model, meta=meta,
                           devices=handler.devices)


register_kind(KIND, load_quantized)


