"""Post-training quantization: a saved float model in, a saved quantized model out.

Every method stores what its bit width implies on disk (int8 or packed int4
tensors plus their scales, in safetensors or ONNX), never a pickle of float
weights, so "size on disk" is the real deployment size. Each output reloads
through `load_runner`, so `ndogo evaluate` measures it like any other model.

Methods, and the library doing the work:

- `fp16`, `bf16`: the whole model cast (transformers / torch).
- `dynamic-int8`: PyTorch dynamic quantization of every Linear (per-tensor int8
  weights, activations quantized on the fly), as the study used it.
- `torchao-int8`: its successor in torchao, `Int8DynamicActivationInt8WeightConfig`
  (per-row int8 weights, per-token int8 activations).
- `llm-int8`: LLM.int8() (Dettmers et al. 2022) with bitsandbytes' own
  `Linear8bitLt` and its CPU backend: vector-wise int8 with outlier feature
  columns (|x| >= threshold, 6.0) multiplied in 16-bit. The classifier stays in
  full precision, as transformers' bitsandbytes integration does with the last layer.
- `int4-weight`: 4-bit group-wise weight-only quantization of every Linear
  (torchao `IntxWeightOnlyConfig`), two weights per byte on disk.
- `int8-embed`: int8 per-row embedding tables (torchao), the rest fp32: in small
  encoders the vocabulary matrix is about half of all parameters.
- `onnx-int8`: ONNX export, transformer fusions, then ONNX Runtime dynamic
  quantization (per-channel int8 weights, embeddings included), run by ONNX Runtime.
- `onnx-int8-static`: the same graph quantized statically: activation ranges
  calibrated on dev sentences, per-channel weights (QDQ format).

`embeddings="int8"` adds int8 embeddings to any torch method.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ndogo.models.loading import (
    ModelError,
    load_for_tokens,
    load_tokenizer,
    model_labels,
    run_window,
    write_meta,
)
from ndogo.models.runner import Runner, count_params, load_runner, register_kind

KIND = "quantized"
WEIGHTS = "model.safetensors"
TORCH_METHODS = ("fp16", "bf16", "dynamic-int8", "torchao-int8", "llm-int8", "int4-weight", "int8-embed")
ONNX_METHODS = ("onnx-int8", "onnx-int8-static")
METHODS = TORCH_METHODS + ONNX_METHODS
HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}
# Layers LLM.int8() leaves in full precision: the output layer, as transformers' integration does.
LLM_INT8_SKIP = ("classifier",)


@dataclass
class QuantizeConfig:
    """What to quantize and how.

    method: one of METHODS.
    embeddings: "int8" also stores every embedding table as int8 per row (torch methods);
        "keep" leaves them as they are. ONNX dynamic quantization always quantizes them.
    threshold: LLM.int8() outlier threshold on |activation| (6.0 in the paper and bitsandbytes).
    group_size: weights sharing one scale in `int4-weight`.
    data, lang, calib_sentences: dev sentences that calibrate `onnx-int8-static`
        (lang defaults to the first language the model was trained on).
    """

    method: str
    embeddings: str = "keep"
    threshold: float = 6.0
    group_size: int = 32
    data: str | None = None
    lang: str | None = None
    calib_sentences: int = 300

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown quantization method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.embeddings not in ("keep", "int8"):
            raise ValueError(f"embeddings must be 'keep' or 'int8', not {self.embeddings!r}")
        if self.embeddings == "int8" and (self.method in ONNX_METHODS or self.method in HALF):
            raise ValueError(f"--embeddings int8 applies to int8/int4 torch methods, not {self.method}")
        if self.threshold < 0:
            raise ValueError(f"threshold must be >= 0, not {self.threshold}")
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1, not {self.group_size}")
        if self.calib_sentences < 1:
            raise ValueError(f"calib_sentences must be >= 1, not {self.calib_sentences}")


# ---------------------------------------------------------------- torch methods: quantizing


def _is_embedding(module: torch.nn.Module, fqn: str) -> bool:
    return isinstance(module, torch.nn.Embedding)


def _is_linear(module: torch.nn.Module, fqn: str) -> bool:
    return isinstance(module, torch.nn.Linear)


@contextmanager
def _quiet_torch_ao() -> Iterator[None]:
    """torch.ao.quantization warns that it is deprecated on every call; the study used it, so we do too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _torchao_configs(cfg: QuantizeConfig) -> list[tuple[Any, Any]]:
    """(torchao config, filter) pairs that `torchao.quantization.quantize_` applies for a method."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, IntxWeightOnlyConfig, PerAxis, PerGroup

    steps: list[tuple[Any, Any]] = []
    if cfg.method == "torchao-int8":
        steps.append((Int8DynamicActivationInt8WeightConfig(), _is_linear))
    elif cfg.method == "int4-weight":
        steps.append((IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(cfg.group_size)), _is_linear))
    if cfg.method == "int8-embed" or cfg.embeddings == "int8":
        steps.append((IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0)), _is_embedding))
    return steps


def _apply_torchao(model: torch.nn.Module, cfg: QuantizeConfig) -> None:
    from torchao.quantization import quantize_

    for config, keep in _torchao_configs(cfg):
        quantize_(model, config, filter_fn=keep)
    _row_lookup_embeddings(model)


class Int8RowEmbedding(torch.nn.Embedding):
    """An embedding whose torchao int8 per-row table is read only at the rows asked for.

    torchao's `embedding` on IntxUnpackedToInt8Tensor dequantizes the whole table
    on every call (30522×384 floats for minilm, several ms per forward); gathering
    the int8 rows and their scales first gives the same values for a few hundred
    multiplications. The weight stays the torchao tensor, so saving is unchanged.
    """

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        w = self.weight
        rows = w.qdata[ids].to(w.scale.dtype)
        return (rows - w.zero_point[ids].to(w.scale.dtype)) * w.scale[ids]


def _row_lookup_embeddings(model: torch.nn.Module) -> None:
    """Swap embeddings holding per-row int8 torchao tables for `Int8RowEmbedding`."""
    for fqn, module in list(model.named_modules()):
        w = getattr(module, "weight", None)
        if (type(module) is torch.nn.Embedding and type(w).__name__ == "IntxUnpackedToInt8Tensor"
                and list(w.block_size) == [1, w.shape[1]]):
            fast = Int8RowEmbedding(module.num_embeddings, module.embedding_dim, padding_idx=module.padding_idx,
                                    _weight=w, _freeze=True)
            _set_submodule(model, fqn, fast)


def _apply_dynamic(model: torch.nn.Module) -> None:
    with _quiet_torch_ao():
        torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def _dynamic_linears(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return {n: m for n, m in model.named_modules() if isinstance(m, DynamicLinear)}


def _llm_int8_targets(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    return {n: m for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and n.split(".")[-1] not in LLM_INT8_SKIP}


def _quiet_bitsandbytes() -> None:
    # bitsandbytes logs a warning on every forward that fp32 inputs are cast to fp16
    # for quantization: that cast is part of the algorithm, not news.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def _llm_int8_module(linear: torch.nn.Linear, cb: torch.Tensor, scb: torch.Tensor, threshold: float) -> torch.nn.Module:
    """bitsandbytes' inference-mode Linear8bitLt holding int8 rows `cb` with row scales `scb`."""
    import bitsandbytes as bnb

    has_bias = linear.bias is not None
    layer = bnb.nn.Linear8bitLt(linear.in_features, linear.out_features, bias=has_bias,
                                has_fp16_weights=False, threshold=threshold)
    weight = bnb.nn.Int8Params(cb, requires_grad=False, has_fp16_weights=False)
    weight.CB, weight.SCB = cb, scb
    layer.weight = weight
    if has_bias:
        layer.bias = torch.nn.Parameter(linear.bias.detach().float(), requires_grad=False)
    return layer


def _set_submodule(model: torch.nn.Module, fqn: str, new: torch.nn.Module) -> None:
    parent, _, name = fqn.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, new)


def llm_int8_weights(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Vector-wise int8 weights as LLM.int8() stores them: (int8 rows, fp32 absmax per row).

    Uses bitsandbytes' own quantizer on the fp16 weight, exactly what
    `Linear8bitLt` does when it quantizes a half-precision checkpoint.
    """
    import bitsandbytes.functional as bnbf

    cb, scb, _ = bnbf.int8_vectorwise_quant(weight.detach().to(torch.float16).contiguous())
    return cb, scb


def _custom_tensors(model: torch.nn.Module, method: str) -> tuple[dict[str, torch.Tensor], set[str]]:
    """Tensors of layers torchao's safetensors support does not know, and those layers' names.

    torch.ao dynamic Linear keeps a packed weight that is not a tensor; bitsandbytes
    keeps int8 rows and scales as attributes. We save their int8 data and scales.
    """
    tensors: dict[str, torch.Tensor] = {}
    if method == "dynamic-int8":
        layers = _dynamic_linears(model)
        for fqn, layer in layers.items():
            w = layer.weight()
            tensors[f"{fqn}.weight"] = w.int_repr().contiguous()
            tensors[f"{fqn}.weight_scale"] = torch.tensor([w.q_scale()], dtype=torch.float32)
            tensors[f"{fqn}.weight_zero_point"] = torch.tensor([w.q_zero_point()], dtype=torch.int64)
            if layer.bias() is not None:
                tensors[f"{fqn}.bias"] = layer.bias().detach().contiguous()
        return tensors, set(layers)
    if method == "llm-int8":
        import bitsandbytes as bnb

        layers = {n: m for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear8bitLt)}
        for fqn, layer in layers.items():
            tensors[f"{fqn}.weight"] = layer.weight.CB.contiguous()
            tensors[f"{fqn}.SCB"] = layer.weight.SCB.float().contiguous()
            if layer.bias is not None:
                tensors[f"{fqn}.bias"] = layer.bias.detach().contiguous()
        return tensors, set(layers)
    return tensors, set()


def pack_int4(values: torch.Tensor) -> torch.Tensor:
    """Two signed 4-bit values (-8..7, held in int8) per byte: low nibble first.

    Hand-written because torchao's CPU int4 layouts are either unpacked int8
    (IntxUnpackedToInt8Tensor, 8 bits on disk) or opaque kernel formats that its
    safetensors support cannot save; packing is the only way to 4 bits on disk.
    """
    if values.dtype != torch.int8 or values.numel() % 2:
        raise ValueError("pack_int4 takes an int8 tensor with an even number of elements")
    if values.min() < -8 or values.max() > 7:
        raise ValueError("pack_int4: values outside -8..7 do not fit in 4 bits")
    flat = (values.flatten().to(torch.int16) & 0xF).to(torch.uint8)
    return flat[0::2] | (flat[1::2] << 4)


def unpack_int4(packed: torch.Tensor, shape: list[int]) -> torch.Tensor:
    """Inverse of `pack_int4`: int8 values -8..7 in `shape`."""
    low = (packed & 0xF).to(torch.int16)
    high = (packed >> 4).to(torch.int16)
    flat = torch.stack([low, high], dim=1).flatten()
    flat = torch.where(flat > 7, flat - 16, flat).to(torch.int8)
    return flat.reshape(shape)


def _save_weights(model: torch.nn.Module, out: Path, cfg: QuantizeConfig) -> None:
    """Write int8/int4 tensors and scales (and the float rest) to one safetensors file."""
    from torchao.prototype.safetensors.safetensors_support import flatten_tensor_state_dict

    custom, layers = _custom_tensors(model, cfg.method)
    state = {k: v for k, v in model.state_dict().items()
             if not any(k.startswith(f"{fqn}.") for fqn in layers) and isinstance(v, torch.Tensor)}
    data, metadata = flatten_tensor_state_dict(state)
    packed: dict[str, list[int]] = {}
    if cfg.method == "int4-weight":
        for key in [k for k in data if k.endswith("._weight_qdata")]:
            if data[key].numel() % 2 == 0 and data[key].min() >= -8 and data[key].max() <= 7:
                packed[key] = list(data[key].shape)
                data[key] = pack_int4(data[key])
    data.update(custom)
    metadata = {**metadata, "ndogo_packed_int4": json.dumps(packed), "ndogo_method": cfg.method}
    save_file({k: v.contiguous() for k, v in data.items()}, str(out / WEIGHTS), metadata=metadata)


def quantize_module(model: torch.nn.Module, cfg: QuantizeConfig) -> torch.nn.Module:
    """Quantize a float token classifier in place for a torch method and return it."""
    model.eval()
    if cfg.method in HALF:
        return model.to(HALF[cfg.method])
    if cfg.method == "dynamic-int8":
        _apply_dynamic(model)
    elif cfg.method == "llm-int8":
        _quiet_bitsandbytes()
        for fqn, linear in _llm_int8_targets(model).items():
            cb, scb = llm_int8_weights(linear.weight)
            _set_submodule(model, fqn, _llm_int8_module(linear, cb, scb, cfg.threshold))
    _apply_torchao(model, cfg)
    return model


# ---------------------------------------------------------------- torch methods: loading


def _skeleton(path: Path) -> torch.nn.Module:
    """The model's architecture with placeholder weights (every tensor is replaced from disk)."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    return AutoModelForTokenClassification.from_config(config).eval()


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
    """Load a "quantized" model directory written by `quantize` as a Runner."""
    q = meta.get("quantization", {})
    try:
        cfg = QuantizeConfig(**{k: v for k, v in q.items() if k in QuantizeConfig.__dataclass_fields__})
    except (TypeError, ValueError) as err:
        raise ModelError(f"{path}: bad quantization record in ndogo.json ({err})") from None
    tokenizer = load_tokenizer(path)
    if cfg.method in HALF:
        model = load_for_tokens(path, dtype=HALF[cfg.method]).eval()
    else:
        if not (path / WEIGHTS).is_file():
            raise ModelError(f"{path}: kind {KIND!r} but no {WEIGHTS}")
        model = _load_torch_quantized(path, cfg)
    max_length = run_window(path, meta, tokenizer, model.config)
    return QuantizedRunner(path=path, kind=KIND, tokenizer=tokenizer, labels=model_labels(model),
                           max_length=max_length, forward=lambda batch: model(**batch).logits, module=model, meta=meta)


def _load_torch_quantized(path: Path, cfg: QuantizeConfig) -> torch.nn.Module:
    from torchao.prototype.safetensors.safetensors_support import unflatten_tensor_state_dict

    model = _skeleton(path)
    data = load_file(str(path / WEIGHTS))
    with safe_open(str(path / WEIGHTS), "pt") as f:
        metadata = f.metadata() or {}
    for key, shape in json.loads(metadata.get("ndogo_packed_int4", "{}")).items():
        data[key] = unpack_int4(data[key], shape)
    state, leftover = unflatten_tensor_state_dict(data, {k: v for k, v in metadata.items()
                                                         if not k.startswith("ndogo_")})
    # Float and torchao tensors go in first (torchao tensors replace the float parameters,
    # assign=True); layers saved in a custom layout are then rebuilt from their int8 data.
    custom: set[str] = set()
    if cfg.method == "dynamic-int8":
        custom = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    elif cfg.method == "llm-int8":
        custom = set(_llm_int8_targets(model))
    result = model.load_state_dict(state, strict=False, assign=True)
    # Position-id buffers are rebuilt by the architecture; everything else must come from disk.
    missing = [k for k in result.missing_keys
               if not any(k.startswith(f"{fqn}.") for fqn in custom) and not k.endswith("position_ids")]
    if missing or result.unexpected_keys:
        raise ModelError(f"{path}: {WEIGHTS} does not fit the architecture "
                         f"(missing {missing[:5]}, unexpected {result.unexpected_keys[:5]})")
    _row_lookup_embeddings(model)
    try:
        if cfg.method == "dynamic-int8":
            _apply_dynamic(model)
            for fqn, layer in _dynamic_linears(model).items():
                int8 = leftover.pop(f"{fqn}.weight")
                scale = float(leftover.pop(f"{fqn}.weight_scale")[0])
                zero = int(leftover.pop(f"{fqn}.weight_zero_point")[0])
                with _quiet_torch_ao():
                    qweight = torch._make_per_tensor_quantized_tensor(int8, scale, zero)
                layer.set_weight_bias(qweight, leftover.pop(f"{fqn}.bias", None))
        elif cfg.method == "llm-int8":
            _quiet_bitsandbytes()
            for fqn, linear in _llm_int8_targets(model).items():
                cb, scb = leftover.pop(f"{fqn}.weight"), leftover.pop(f"{fqn}.SCB")
                if linear.bias is not None:
                    linear.bias.data = leftover.pop(f"{fqn}.bias")
                _set_submodule(model, fqn, _llm_int8_module(linear, cb, scb, cfg.threshold))
    except KeyError as err:
        raise ModelError(f"{path}: {WEIGHTS} lacks {err.args[0]} for method {cfg.method}") from None
    if leftover:
        raise ModelError(f"{path}: unexpected tensors in {WEIGHTS}: {sorted(leftover)[:5]}")
    return model.eval()


register_kind(KIND, load_quantized)


# ---------------------------------------------------------------- ONNX methods


def calibration_batches(runner: Runner, cfg: QuantizeConfig) -> list[dict[str, Any]]:
    """ONNX Runtime feeds of dev windows (batch 1, unpadded) for static calibration."""
    from ndogo.data.corpus import load_corpus
    from ndogo.models.windowing import collate, encode_sentences

    lang = cfg.lang or (runner.meta.get("langs") or [None])[0]
    if not lang:
        raise ValueError("onnx-int8-static needs --lang (the model does not record its language)")
    corpus = load_corpus(cfg.data, lang, ("dev",))
    if "dev" not in corpus.splits or not corpus.splits["dev"]:
        raise ValueError(f"{cfg.data}: no dev sentences for {lang} to calibrate on")
    words = [s.tokens for s in corpus.splits["dev"][: cfg.calib_sentences]]
    windows = encode_sentences(runner.tokenizer, words, runner.max_length)
    return [{k: v.numpy() for k, v in collate([w], runner.pad_id, with_labels=False).items()} for w in windows]


def _feeds_reader(feeds: list[dict[str, Any]]) -> Any:
    """An onnxruntime CalibrationDataReader over prepared feeds, with a progress bar."""
    from onnxruntime.quantization import CalibrationDataReader

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.it: Iterator[dict[str, Any]] = iter(tqdm(feeds, desc="calibrate", unit="win", leave=False))

        def get_next(self) -> dict[str, Any] | None:
            return next(self.it, None)

        def rewind(self) -> None:
            self.it = iter(feeds)

    return Feeds()


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization logs advice ("consider pre-processing") on the root logger; hide it."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _quantize_onnx(run: Path, out: Path, cfg: QuantizeConfig) -> Path:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    from ndogo.deploy.onnx import ONNX_FILE, export_onnx, write_onnx_dir

    runner = load_runner(run)
    static = cfg.method == "onnx-int8-static"
    with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
        # Dynamic quantization has int8 kernels for ONNX Runtime's fused Attention and
        # EmbedLayerNormalization, so it starts from the fused graph. Static (QDQ)
        # quantization cannot type the fused ops' outputs and would leave them in
        # float, so it starts from the plain graph; ONNX Runtime then fuses each
        # DequantizeLinear→op→QuantizeLinear group into an int8 kernel at load time.
        fp32_dir = export_onnx(run, Path(tmp) / "fp32", optimize=not static)
        src, dst = fp32_dir / ONNX_FILE, Path(tmp) / ONNX_FILE
        # Shape inference cannot type the outputs of ONNX Runtime's fused contrib ops; they are float.
        extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
        if not static:
            quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8, extra_options=extra)
        else:
            reader = _feeds_reader(calibration_batches(runner, cfg))
            # Only matrix products and the embedding lookups: quantizing every op's output
            # (residual adds, softmax, ...) at calibrated min/max ranges cost 7.4 F1 points
            # on minilm hau (73.4 -> 66.0); MatMul + Gather only, 1.7 points, same size.
            quantize_static(src, dst, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            op_types_to_quantize=["MatMul", "Gather"], activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, extra_options=extra)
        fp32_meta = json.loads((fp32_dir / "ndogo.json").read_text())
        return write_onnx_dir(out, runner, dst, {
            "stage": "quantize", "source": str(run), "source_kind": runner.kind,
            "quantization": asdict(cfg), "fused_ops": fp32_meta.get("fused_ops", {}),
        })


# ---------------------------------------------------------------- the stage


def quantize(run: str | Path, out: str | Path, config: QuantizeConfig) -> Path:
    """Quantize the float model saved in `run` and save it, complete and reloadable, in `out`.

    Example:
        >>> quantize("runs/minilm-hau", "runs/quantize/hau-onnx-int8", QuantizeConfig("onnx-int8"))
    """
    run, out = Path(run), Path(out)
    if out.resolve() == run.resolve():
        raise ValueError(f"{out}: the output must be a new directory, not the model being quantized")
    if config.method in ONNX_METHODS:
        return _quantize_onnx(run, out, config)
    source = load_runner(run)
    if source.module is None or not hasattr(source.module, "config"):
        raise ModelError(f"{run}: kind {source.kind!r} has no float torch module to quantize")
    if any(p.dtype not in (torch.float32,) for p in source.module.parameters()):
        raise ModelError(f"{run}: already quantized or cast (kind {source.kind!r}); quantize the fp32 model")
    params, nonzero = count_params(source.module)
    model = quantize_module(source.module, config)
    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out)
    if config.method in HALF:
        model.save_pretrained(out, safe_serialization=True)
    else:
        _save_weights(model, out, config)
    source.tokenizer.save_pretrained(out)
    write_meta(out, {
        **{k: v for k, v in source.meta.items() if k in ("base_model", "langs", "labels")},
        "kind": KIND, "stage": "quantize", "source": str(run), "source_kind": source.kind,
        "max_length": source.max_length, "quantization": asdict(config),
        "param_counts": {"params": params, "nonzero_params": nonzero},
    })
    return out


# The onnx kind lives in ndogo.deploy.onnx; importing it here registers it whenever
# `load_runner` imports the compression stages.
import ndogo.deploy.onnx  # noqa: E402, F401
