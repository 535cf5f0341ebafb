"""One interface over every kind of saved model: load it, run it, count it.

Every compression stage saves a directory; `ndogo.json` in it says which kind
it is (`hf` for a plain Hugging Face model; later kinds register a loader).
Evaluation, benchmarks and prediction only ever see a `Runner`, so F1, size and
latency mean the same thing for a dense, pruned, quantized or exported model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ndogo.models.files import META as _META
from ndogo.models.files import check_inside
from ndogo.models.loading import (
    NDOGO_META,
    ModelError,
    check_json_files,
    check_labels,
    head_of,
    load_error,
    load_for_head,
    load_tokenizer,
    model_labels,
    read_meta,
    run_window,
)
from ndogo.registry import Registry

# Files that describe a run rather than make up the model: not counted in size_bytes.
NOT_MODEL_FILES = {"metrics.json", NDOGO_META, "README.md", "training_args.bin", "eval.json", ".lock",
                   "teacher-labels.jsonl"}
NOT_MODEL_DIRS = {"checkpoint", "checkpoint.tmp", "evals"}


@dataclass
class Runner:
    """A loaded model ready for inference: a forward function plus what describes it."""

    path: Path
    kind: str
    tokenizer: PreTrainedTokenizerBase
    labels: list[str]
    max_length: int
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor]
    module: torch.nn.Module | None = None  # the torch module, when there is one
    meta: dict[str, Any] = field(default_factory=dict)
    # device types the model can run on: a torch module ("cpu", "cuda"); ONNX and torch.ao int8, the CPU only
    devices: tuple[str, ...] = ("cpu",)
    device: str = "cpu"  # where it runs now (`on_device`)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def params(self) -> tuple[int, int]:
        """(parameters, non-zero parameters) of the model as it runs."""
        if self.module is None:
            counts = self.meta.get("param_counts", {})
            return int(counts.get("params", 0)), int(counts.get("nonzero_params", 0))
        return count_params(self.module)


def count_params(module: torch.nn.Module) -> tuple[int, int]:
    """Parameters and non-zero parameters, counting each shared tensor once.

    Quantized modules keep weights in buffers, so buffers that hold weights
    (integer or packed tensors) are counted too; position ids and masks are not.
    """
    seen: set[int] = set()
    total = nonzero = 0
    tensors = list(module.named_parameters()) + [
        (n, b) for n, b in module.named_buffers() if "weight" in n and not n.endswith("_mask")
    ]
    for _, t in tensors:
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel()
        nonzero += int(torch.count_nonzero(t).item()) if t.dtype != torch.bool else t.numel()
    return total, nonzero


def model_files(path: str | Path) -> list[Path]:
    """The files that make up a saved model (weights, config, tokenizer), not run records.

    A folder inside holding its own ndogo.json is another model (a bundle shipped into the run
    before `ndogo ship` refused that): it is not part of this one's size.
    """
    path = Path(path)
    nested = {p.parent for p in path.rglob(NDOGO_META) if p.parent != path}
    return sorted(
        p for p in path.rglob("*")
        if p.is_file() and p.name not in NOT_MODEL_FILES
        and not any(part in NOT_MODEL_DIRS for part in p.relative_to(path).parts)
        and not any(folder in p.parents for folder in nested)
    )


def size_on_disk(path: str | Path) -> int:
    """Bytes of the saved model files on disk."""
    return sum(p.stat().st_size for p in model_files(path))


def load_hf(path: Path, meta: dict[str, Any]) -> Runner:
    """A plain Hugging Face model with a token- or sequence-classification head (as its config says)."""
    from transformers import AutoConfig

    tokenizer = load_tokenizer(path)
    model = load_for_head(path, head_of(AutoConfig.from_pretrained(path, trust_remote_code=False))).eval()
    max_length = run_window(path, meta, tokenizer, model.config)
    return Runner(path=path, kind="hf", tokenizer=tokenizer, labels=model_labels(model), max_length=max_length,
                  forward=lambda batch: model(**batch).logits, module=model, meta=meta, devices=("cpu", "cuda"))


def on_device(runner: Runner, device: torch.device, fall_back: bool = False) -> Runner:
    """The runner with its module on `device` and a forward that moves each batch there first.

    A model that cannot run there (ONNX, torch.ao int8) is refused in one line, or left on
    the CPU with `fall_back` (what `--device auto` asks: CUDA when present and the model runs there).
    """
    from ndogo.device import to_device

    if device.type == runner.device:
        return runner
    if device.type not in runner.devices or runner.module is None:
        if fall_back:
            return runner
        raise ModelError(f"{runner.path}: a {runner.kind} model runs on {', '.join(runner.devices)} only, not "
                         f"{device}; use --device cpu")
    runner.module.to(device)
    inner = runner.forward
    return dataclasses.replace(runner, forward=lambda batch: inner(to_device(batch, device)), device=str(device))


# Where each saved kind's loader lives: importing that one module registers it. A table rather than
# `import ndogo.compress`, so loading an int8 model does not import distillation, the MLM loop and
# recipes, and this ground-floor module imports nothing above it. A new kind adds its line here.
KIND_MODULES = {
    "sparse": "ndogo.compress.prune._sparse",
    "quantized": "ndogo.compress.quantize._kind",
    "structured": "ndogo.compress.prune._structured",
    "onnx": "ndogo.deploy.onnx",
    "ort": "ndogo.deploy.onnx",
}
# The loaders by kind (the one registry style of stages, methods and kinds: `ndogo.registry`).
KINDS: Registry[Callable[[Path, dict[str, Any]], Runner]] = Registry("model kind", modules=KIND_MODULES)
KINDS.add("hf", load_hf)


def register_kind(kind: str, loader: Callable[[Path, dict[str, Any]], Runner]) -> None:
    """Let a compression stage teach `load_runner` how to load what it saves."""
    KINDS.add(kind, loader)


def load_runner(run: str | Path) -> Runner:
    """Load any model directory ndogo saved (or any Hugging Face token-classification model)."""
    path = Path(run)
    if not path.is_dir():
        raise ModelError(f"{path}: no such model directory")
    check_inside(path, {}, ModelError, names=[_META])  # a record from elsewhere would describe another model
    meta = read_meta(path)
    kind = meta.get("kind", "hf")
    check_inside(path, meta, ModelError)  # a model file linked from elsewhere is a model nobody shipped
    try:
        loader = KINDS.get(kind)  # imports the one module that registers its loader
    except ValueError as err:
        raise ModelError(f"{path}: {err} (the kind in {NDOGO_META})") from None
    from huggingface_hub.errors import StrictDataclassError
    from safetensors import SafetensorError

    check_json_files(path)
    try:
        runner = loader(path, meta)
    except (OSError, SafetensorError) as err:
        # A file of the model that is missing, truncated or corrupt (each kind reads its own files).
        raise load_error(path, str(path), err) from None
    except ModelError:
        raise
    except (TypeError, KeyError, AttributeError, ValueError, StrictDataclassError) as err:
        # transformers' reaction to a config or tokenizer file of the wrong shape (a field of the wrong
        # type, a missing key, huggingface_hub's strict-dataclass check): one line naming the folder
        # instead of its traceback
        reason = (str(err).strip().splitlines() or [""])[0][:300]
        raise ModelError(f"{path}: could not load the model in this directory ({type(err).__name__}: "
                         f"{reason})") from None
    if "task" not in meta:
        # a model from elsewhere (or saved before tasks were recorded) is read as a tagger of IOB labels:
        # a LABEL_0…LABEL_8 head would be read as garbage entities. A recorded task checked its own labels.
        check_labels(path, runner.labels)
    return runner
