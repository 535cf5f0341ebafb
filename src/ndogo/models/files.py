"""Which files of a model directory inference reads, and the rule that they lie inside it.

A run directory is a workshop: beside the model lie checkpoints, evaluation rows,
perhaps a `.env`, a `.git/` folder or the training file someone copied in. `ndogo
ship` copies only the files named here, per model kind, so a bundle holds exactly
what a loader reads and nothing the maker did not mean to hand over.

A bundle also travels: a `model.onnx` that is a symbolic link to a file outside
its directory loads a model nobody shipped (or reads a file the bundle has no
business reading). Both loaders (`load_runner` and the torch-free runtime) refuse
such links with `check_inside`; a link that stays inside the directory is fine.

This module imports nothing heavy: the torch-free runtime uses it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

META = "ndogo.json"
CONFIG = "config.json"
# Every file a transformers fast tokenizer (or the torch-free runtime) is built from.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spiece.model",
                   "tokenizer.model", "spm.model")
# The weights (or graph) each kind's loader reads. `required_operators.config` is the operator list a
# minimal ONNX Runtime build of a .ort model is configured with: part of deploying that model.
WEIGHTS = {
    "hf": ("model.safetensors",),
    "quantized": ("model.safetensors",),
    "sparse": ("sparse.safetensors",),
    "structured": ("structured.safetensors",),
    "onnx": ("model.onnx",),
    "ort": ("model.ort", "required_operators.config"),
}
SHARD_INDEX = "model.safetensors.index.json"
GRAPH_KINDS = ("onnx", "ort")


def _inside(root: str, name: str) -> bool:
    """Whether a relative name recorded in a file (a shard, external data) stays under `root`."""
    real = os.path.realpath(os.path.join(root, name))
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _shards(path: Path) -> list[str]:
    """The weight files a sharded checkpoint's index names (transformers writes them beside it)."""
    try:
        index = json.loads((path / SHARD_INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # the loader reports a damaged index with its reason
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        return []
    return sorted({v for v in weight_map.values() if isinstance(v, str)})


def external_data(graph: Path) -> list[str]:
    """Files an ONNX graph keeps its large tensors in (`location` of its external initializers).

    Read with the `onnx` package without loading the tensors; an empty list where it is not
    installed or the graph cannot be parsed (loading it reports that).
    """
    try:
        import onnx
    except ImportError:
        return []
    try:
        model = onnx.load(str(graph), load_external_data=False)
    except Exception:  # protobuf's DecodeError and friends: the loader names the damaged graph
        return []
    found = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            found.update(e.value for e in tensor.external_data if e.key == "location")
    return sorted(found)


def inference_files(path: str | Path, meta: dict[str, Any]) -> list[str]:
    """Names (relative to `path`) of the files present there that the loader of `meta`'s kind reads.

    `ndogo.json` included; README.md left out (`ndogo ship` writes its own card).
    """
    path = Path(path)
    kind = str(meta.get("kind", "hf"))
    names = [META, CONFIG, *TOKENIZER_FILES, *WEIGHTS.get(kind, ())]
    if isinstance(meta.get("weights"), str):
        names.append(meta["weights"])
    if kind not in WEIGHTS and not isinstance(meta.get("weights"), str):
        # a kind a plugin registered: its weights are safetensors, by ndogo's rule
        names += sorted(p.name for p in path.glob("*.safetensors"))
    if (path / SHARD_INDEX).exists():
        names += [SHARD_INDEX, *_shards(path)]
    if kind == "onnx" and (path / "model.onnx").is_file():
        names += external_data(path / "model.onnx")
    root = os.path.realpath(path)
    present = []
    for name in dict.fromkeys(names):
        file = path / name
        if (file.is_file() or file.is_symlink()) and (file.is_symlink() or _inside(root, name)):
            present.append(name)
    return present


def links_leaving(path: str | Path, names: Iterable[str] | None = None) -> list[tuple[Path, str]]:
    """Files (among `names`, or anywhere under `path`) that lead outside `path`, with where they lead.

    A name leads out through a symbolic link (its own, or a folder's on its way) or a `..`.
    Dangling links count: where they point is what matters, not whether it exists today.
    """
    path = Path(path)
    root = os.path.realpath(path)
    if names is None:
        names = []
        for folder, dirs, files in os.walk(path, followlinks=False):
            for entry in (*dirs, *files):
                names.append(os.path.relpath(os.path.join(folder, entry), path))
    leaving = []
    for name in names:
        if not _inside(root, name):
            leaving.append((path / name, os.path.realpath(path / name)))
    return leaving


def check_inside(path: str | Path, meta: dict[str, Any], error: type[Exception] = ValueError,
                 names: Iterable[str] | None = None) -> None:
    """Refuse a model directory whose files a loader reads lead outside it through a symbolic link.

    ONNX kinds are checked whole (a graph's external data may have any name); other kinds on the
    files their loader reads, so a link to the corpus a user keeps beside a run does not matter.
    """
    kind = str(meta.get("kind", "hf"))
    if names is None and kind not in GRAPH_KINDS:
        names = [META, CONFIG, *TOKENIZER_FILES, *WEIGHTS.get(kind, ()), SHARD_INDEX,
                 *([meta["weights"]] if isinstance(meta.get("weights"), str) else []), *_shards(Path(path))]
    leaving = links_leaving(path, names)
    if leaving:
        file, target = leaving[0]
        raise error(f"{file}: leads to {target}, outside {path} (a symbolic link); a model directory must hold "
                    "its own files (copy the file in instead of linking to it)")
