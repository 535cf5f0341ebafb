"""What the torch quantization methods share: the stage body, their file layout, int8 embeddings.

A torch method's handler (`TorchHandler`) says how to quantize a float module in place and,
for layers whose quantized form is not a plain tensor (torch.ao's packed weights,
bitsandbytes' int8 rows), which tensors to save and how to rebuild the layer from them.
Everything else is here, once: loading and checking the source, saving the config,
tokenizer and ndogo.json, the safetensors file (torchao tensors flattened by torchao's own
safetensors support, int4 values packed two per byte), and loading it back as kind
`quantized` (`_tensors.py`).

Nothing here imports torch at module level: method modules import this one, and listing
the methods (`ndogo quantize --help`, or the CLI where torch is absent) must stay cheap.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ndogo.compress.methods import option
from ndogo.compress.quantize import QuantizeConfig

if TYPE_CHECKING:
    import torch

KIND = "quantized"
WEIGHTS = "model.safetensors"


@dataclasses.dataclass
class TorchIntConfig(QuantizeConfig):
    """Base of the int8/int4 torch methods: they may also store the embedding tables as int8."""

    embeddings: str = option("keep", choices=("keep", "int8"),
                             help="keep | int8: also store every embedding table as int8 per row")


class TorchHandler:
    """How one torch method quantizes, saves and reloads a model. Override what the method needs."""

    #: save with `save_pretrained` (a cast model is an ordinary one) instead of our tensor layout
    plain_save = False
    #: the torch dtype name a plain-saved model is loaded in ("float16")
    dtype: str | None = None
    #: device types its modules run on (`models.runner.on_device`)
    devices: tuple[str, ...] = ("cpu",)

    def apply(self, model: torch.nn.Module, cfg: Any) -> torch.nn.Module:
        """Quantize a float token classifier in place and return it."""
        raise NotImplementedError

    def custom_tensors(self, model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], set[str]]:
        """Tensors of layers saved in the method's own layout, and those layers' names."""
        return {}, set()

    def rebuilt_layers(self, skeleton: torch.nn.Module) -> set[str]:
        """Names of the skeleton's layers that `restore` rebuilds (their float keys are not on disk)."""
        return set()

    def restore(self, model: torch.nn.Module, tensors: dict[str, torch.Tensor], cfg: Any) -> None:
        """Rebuild the custom layers from `tensors`, popping what they use."""

    def packed_keys(self, data: dict[str, torch.Tensor]) -> list[str]:
        """Keys of int8 tensors holding 4-bit values, stored two per byte."""
        return []

    # ------------------------------------------------------------ the stage, once for every method

    def quantize(self, run: Path, out: Path, cfg: Any) -> Path:
        """Load the fp32 model in `run`, quantize it with this method and save it in `out`."""
        import torch

        from ndogo.compress.quantize._tensors import int8_embeddings
        from ndogo.models.loading import ModelError, write_meta
        from ndogo.models.runner import count_params, load_runner

        source = load_runner(run)
        if source.module is None or not hasattr(source.module, "config"):
            raise ModelError(f"{run}: kind {source.kind!r} has no float torch module to quantize")
        if any(p.dtype not in (torch.float32,) for p in source.module.parameters()):
            raise ModelError(f"{run}: already quantized or cast (kind {source.kind!r}); quantize the fp32 model")
        params, nonzero = count_params(source.module)
        model = self.apply(source.module.eval(), cfg)
        if getattr(cfg, "embeddings", "keep") == "int8":
            int8_embeddings(model)
        out.mkdir(parents=True, exist_ok=True)
        model.config.save_pretrained(out)
        if self.plain_save:
            model.save_pretrained(out, safe_serialization=True)
        else:
            self._save_weights(model, out, cfg)
        source.tokenizer.save_pretrained(out)
        write_meta(out, {
            **{k: v for k, v in source.meta.items() if k in ("base_model", "langs", "labels")},
            "kind": KIND, "stage": "quantize", "source": str(run), "source_kind": source.kind,
            "max_length": source.max_length, "quantization": cfg.record(),
            "param_counts": {"params": params, "nonzero_params": nonzero},
        })
        return out

    def _save_weights(self, model: torch.nn.Module, out: Path, cfg: Any) -> None:
        """Write int8/int4 tensors and scales (and the float rest) to one safetensors file."""
        import torch
        from safetensors.torch import save_file
        from torchao.prototype.safetensors.safetensors_support import flatten_tensor_state_dict

        from ndogo.compress.quantize._tensors import pack_int4

        custom, layers = self.custom_tensors(model)
        state = {k: v for k, v in model.state_dict().items()
                 if not any(k.startswith(f"{fqn}.") for fqn in layers) and isinstance(v, torch.Tensor)}
        data, metadata = flatten_tensor_state_dict(state)
        packed: dict[str, list[int]] = {}
        for key in self.packed_keys(data):
            packed[key] = list(data[key].shape)
            data[key] = pack_int4(data[key])
        data.update(custom)
        metadata = {**metadata, "ndogo_packed_int4": json.dumps(packed), "ndogo_method": cfg.method}
        save_file({k: v.contiguous() for k, v in data.items()}, str(out / WEIGHTS), metadata=metadata)

    def load(self, path: Path, cfg: Any) -> torch.nn.Module:
        """The quantized module saved in `path` by this method."""
        import torch
        from safetensors import safe_open
        from safetensors.torch import load_file
        from torchao.prototype.safetensors.safetensors_support import unflatten_tensor_state_dict

        from ndogo.compress.quantize._tensors import row_lookup_embeddings, skeleton, unpack_int4
        from ndogo.models.loading import ModelError, load_saved

        if self.plain_save:
            return load_saved(path, dtype=getattr(torch, self.dtype or "float32")).eval()
        if not (path / WEIGHTS).is_file():
            raise ModelError(f"{path}: kind {KIND!r} but no {WEIGHTS}")
        model = skeleton(path)
        data = load_file(str(path / WEIGHTS))
        with safe_open(str(path / WEIGHTS), "pt") as f:
            metadata = f.metadata() or {}
        for key, shape in json.loads(metadata.get("ndogo_packed_int4", "{}")).items():
            data[key] = unpack_int4(data[key], shape)
        state, leftover = unflatten_tensor_state_dict(data, {k: v for k, v in metadata.items()
                                                             if not k.startswith("ndogo_")})
        # Float and torchao tensors go in first (torchao tensors replace the float parameters,
        # assign=True); layers saved in a custom layout are then rebuilt from their int8 data.
        custom = self.rebuilt_layers(model)
        result = model.load_state_dict(state, strict=False, assign=True)
        # Position-id buffers are rebuilt by the architecture; everything else must come from disk.
        missing = [k for k in result.missing_keys
                   if not any(k.startswith(f"{fqn}.") for fqn in custom) and not k.endswith("position_ids")]
        if missing or result.unexpected_keys:
            raise ModelError(f"{path}: {WEIGHTS} does not fit the architecture "
                             f"(missing {missing[:5]}, unexpected {result.unexpected_keys[:5]})")
        row_lookup_embeddings(model)
        try:
            self.restore(model, leftover, cfg)
        except KeyError as err:
            raise ModelError(f"{path}: {WEIGHTS} lacks {err.args[0]} for method {cfg.method}") from None
        if leftover:
            raise ModelError(f"{path}: unexpected tensors in {WEIGHTS}: {sorted(leftover)[:5]}")
        return model.eval()
