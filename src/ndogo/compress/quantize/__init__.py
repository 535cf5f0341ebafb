"""Post-training quantization: a saved float model in, a saved quantized model out.

Every method stores what its bit width implies on disk (int8 or packed int4 tensors plus
their scales, in safetensors or ONNX), never a pickle of float weights, so "size on disk" is
the real deployment size. Each output reloads through `load_runner`, so `ndogo evaluate`
measures it like any other model.

A method is one module of this package: a config dataclass registered under the method's
name, and a handler that does the work. This file is only the stage around them:

    quantize("runs/minilm-hau", "runs/hau-int8", OnnxInt8Config())
    quantize("runs/minilm-hau", "runs/hau-llm", quant_config("llm-int8", threshold=6.0))

Methods, one file each: `half.py` (fp16, bf16), `dynamic.py` (dynamic-int8, the study's
PyTorch dynamic quantization), `llm_int8.py` (LLM.int8() through bitsandbytes), `torchao.py`
(torchao-int8, int4-weight, int8-embed), `onnx.py` (onnx-int8, onnx-int8-static), `onnx_int4.py`
(onnx-int4: 4-bit blocks in ONNX Runtime's MatMulNBits and GatherBlockQuantized); `_torch.py`
holds what the torch methods share (the stage body, their safetensors layout, the int8
embedding option) and `_tensors.py` the torch side of loading them. Modules starting with `_`
are helpers, not methods.
To add one, write a module here like `half.py`; `ndogo quantize --help`, recipes
(`quantize:method=<name>,<option>=...`) and sweeps find it by its registered name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ndogo.compress.methods import MethodConfig, MethodRegistry


class QuantizeConfig(MethodConfig):
    """Base of every quantization method's config (a dataclass per method, registered by name)."""

    @classmethod
    def for_method(cls, name: str, /, **options: Any) -> QuantizeConfig:
        """The config of method `name` built from options, e.g. `QuantizeConfig.for_method("llm-int8")`."""
        return QUANTIZE.config(name, **options)


QUANTIZE = MethodRegistry("quantize", __name__, QuantizeConfig)
QuantizeConfig.registry = QUANTIZE


def quant_config(name: str, /, **options: Any) -> QuantizeConfig:
    """The config of quantization method `name`; an option the method does not take is a ValueError."""
    return QUANTIZE.config(name, **options)


def quantize(run: str | Path, out: str | Path, config: QuantizeConfig) -> Path:
    """Quantize the float model saved in `run` and save it, complete and reloadable, in `out`.

    Example:
        >>> quantize("runs/minilm-hau", "runs/quantize/hau-onnx-int8", quant_config("onnx-int8"))
    """
    run, out = Path(run), Path(out)
    if out.resolve() == run.resolve():
        raise ValueError(f"{out}: the output must be a new directory, not the model being quantized")
    return QUANTIZE.of(config).handler.quantize(run, out, config)


def __getattr__(name: str) -> Any:
    # METHODS is computed when asked for: it needs every method module imported.
    if name == "METHODS":
        return tuple(QUANTIZE.names())
    if name in ("pack_int4", "unpack_int4", "Int8RowEmbedding"):
        from ndogo.compress.quantize import _tensors

        return getattr(_tensors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
