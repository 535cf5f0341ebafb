"""Resume state that can be read without running code: tensors in safetensors, the rest in JSON.

A training checkpoint (model, optimizer, scheduler, RNG, loop counters) was a
pickle (`torch.save`), and loading a pickle executes whatever the file says:
a run directory received from someone else could run code on
`ndogo finetune --out DIR`. Here every tensor of the nested state goes to
`tensors.safetensors` under its path in the structure, and everything else
(numbers, strings, lists, the structure itself) to `state.json`, so reading a
checkpoint only ever parses data. It is written here because neither torch
nor safetensors stores nested optimizer state this way.

Both the fine-tuning loop and the MLM loop save and resume through this
module; a checkpoint directory is replaced atomically (written beside, then
renamed), so a crash leaves the old or the new one, never half of each.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

TENSORS = "tensors.safetensors"
STATE = "state.json"


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be read as one (named)."""


def _flatten(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """The JSON skeleton of `obj`; tensors are replaced by {"__tensor__": key} and stored in `tensors`."""
    if isinstance(obj, torch.Tensor):
        key = path or "root"
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and "__tensor__" not in obj and "__items__" not in obj:
            return {k: _flatten(v, f"{path}.{k}" if path else k, tensors) for k, v in obj.items()}
        # optimizer state is keyed by parameter index: keep the keys' types
        return {"__items__": [[k, _flatten(v, f"{path}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, list | tuple):
        return [_flatten(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"checkpoint state at {path or 'the root'}: {type(obj).__name__} is not a tensor or JSON value")


def _restore(obj: Any, tensors: dict[str, torch.Tensor], where: Path) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            try:
                return tensors[obj["__tensor__"]]
            except KeyError:
                raise CheckpointError(f"{where}: tensor {obj['__tensor__']!r} is missing from {TENSORS}") from None
        if "__items__" in obj:
            return {k: _restore(v, tensors, where) for k, v in obj["__items__"]}
        return {k: _restore(v, tensors, where) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v, tensors, where) for v in obj]
    return obj


def save_checkpoint(directory: Path, state: dict[str, Any]) -> None:
    """Write `state` (nested dicts/lists of tensors and JSON values) to `directory`, atomically."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, "", tensors)
    # safetensors refuses tensors that share memory; a checkpoint has no use for sharing
    save_file({k: v.clone() for k, v in tensors.items()}, str(tmp / TENSORS))
    (tmp / STATE).write_text(json.dumps(skeleton) + "\n", encoding="utf-8")
    if directory.exists():
        shutil.rmtree(directory)
    tmp.rename(directory)


def has_checkpoint(directory: Path) -> bool:
    """Whether a resumable checkpoint is there (a stale pickle from an older ndogo is not one)."""
    return (Path(directory) / STATE).is_file()


def load_checkpoint(directory: Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; parses data only, never unpickles."""
    directory = Path(directory)
    try:
        skeleton = json.loads((directory / STATE).read_text(encoding="utf-8"))
        tensors = load_file(str(directory / TENSORS))
    except (OSError, ValueError, SafetensorError) as err:
        raise CheckpointError(f"{directory}: not a readable ndogo checkpoint ({err}); delete it to start "
                              "the run again") from None
    return _restore(skeleton, tensors, directory)


def refuse_pickle(directory: Path) -> None:
    """A checkpoint from an older ndogo (a pickle) is never loaded: say so instead of retraining over it."""
    if (Path(directory) / "state.pt").is_file() and not has_checkpoint(directory):
        raise CheckpointError(f"{directory}/state.pt: a pickled checkpoint (older ndogo); ndogo never loads pickles "
                              "(they can run code). Delete the checkpoint folder to train again")
