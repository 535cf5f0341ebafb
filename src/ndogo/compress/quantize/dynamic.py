"""dynamic-int8: PyTorch's dynamic quantization of every Linear, as the study used it.

Per-tensor int8 weights, activations quantized on the fly (torch.ao.quantization). The
packed weights are not tensors, so their int8 values, scale and zero point are saved as
tensors of their own and the layer is rebuilt from them on load.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ndogo.compress.quantize import QUANTIZE
from ndogo.compress.quantize._torch import TorchHandler, TorchIntConfig

if TYPE_CHECKING:
    import torch


@contextmanager
def quiet_torch_ao() -> Iterator[None]:
    """torch.ao.quantization warns that it is deprecated on every call; the study used it, so we do too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def dynamic_linears(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return {n: m for n, m in model.named_modules() if isinstance(m, DynamicLinear)}


class DynamicInt8(TorchHandler):
    def apply(self, model: torch.nn.Module, cfg: DynamicInt8Config) -> torch.nn.Module:
        import torch

        with quiet_torch_ao():
            torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        return model

    def custom_tensors(self, model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], set[str]]:
        import torch

        tensors: dict[str, torch.Tensor] = {}
        layers = dynamic_linears(model)
        for fqn, layer in layers.items():
            w = layer.weight()
            tensors[f"{fqn}.weight"] = w.int_repr().contiguous()
            tensors[f"{fqn}.weight_scale"] = torch.tensor([w.q_scale()], dtype=torch.float32)
            tensors[f"{fqn}.weight_zero_point"] = torch.tensor([w.q_zero_point()], dtype=torch.int64)
            if layer.bias() is not None:
                tensors[f"{fqn}.bias"] = layer.bias().detach().contiguous()
        return tensors, set(layers)

    def rebuilt_layers(self, skeleton: torch.nn.Module) -> set[str]:
        import torch

        return {n for n, m in skeleton.named_modules() if isinstance(m, torch.nn.Linear)}

    def restore(self, model: torch.nn.Module, tensors: dict[str, torch.Tensor], cfg: DynamicInt8Config) -> None:
        import torch

        self.apply(model, cfg)
        for fqn, layer in dynamic_linears(model).items():
            int8 = tensors.pop(f"{fqn}.weight")
            scale = float(tensors.pop(f"{fqn}.weight_scale")[0])
            zero = int(tensors.pop(f"{fqn}.weight_zero_point")[0])
            with quiet_torch_ao():
                qweight = torch._make_per_tensor_quantized_tensor(int8, scale, zero)
            layer.set_weight_bias(qweight, tensors.pop(f"{fqn}.bias", None))


@QUANTIZE.register("dynamic-int8", DynamicInt8())
@dataclass
class DynamicInt8Config(TorchIntConfig):
    """PyTorch dynamic quantization of every Linear (per-tensor int8 weights), as the study used it."""
