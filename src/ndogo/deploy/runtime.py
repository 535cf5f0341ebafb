"""Entities from an ONNX model with only onnxruntime, tokenizers and numpy: no torch, no transformers.

An int8 ONNX model is 22 MB, but loading it through the PyTorch path imports
torch and transformers first: about 550 MB of memory and seconds of start-up
before the first sentence, on a 1-core server most of the cost of serving it.
This module runs the same directories (`model.onnx`, or `model.ort` from
`ndogo export --format ort`, beside `tokenizer.json` and `ndogo.json`) with
the three libraries inference needs, and gives the same entities as
`ndogo.deploy.predict` because it shares its parts rather than copying them:

* words: `ndogo.deploy.words.split_words` (MasakhaNER-style words with offsets);
* windows, first sub-words and the max-context merge: `ndogo.models.align`;
* entities and scores: `ndogo.deploy.entities`.

What transformers adds on top of `tokenizer.json` is reproduced here: no
padding or truncation from the file (the PyTorch path calls the tokenizer
without them), the pad and unknown tokens from `tokenizer_config.json`, and a
prefix space for byte-level BPE (which `load_tokenizer` also turns on, so
pre-split words are tokenized as they are mid-sentence).

`tests/test_runtime.py` runs this in a process where importing torch or
transformers fails, and compares its entities with the PyTorch path's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ndogo.deploy.entities import Entity, entities_from_tags
from ndogo.deploy.words import check_texts, split_words
from ndogo.models.align import (
    Window,
    WordMerger,
    build_windows,
    group_pieces,
    layout_from,
    length_batches,
    pad_batch,
    softmax,
)

META = "ndogo.json"
# model file of each kind this runtime runs, in the order they are looked for
GRAPH_FILES = {"onnx": "model.onnx", "ort": "model.ort"}
RUNTIME_KINDS = tuple(GRAPH_FILES)
WINDOW_CAP = 512  # as ndogo.models.loading.model_window


class BundleError(ValueError):
    """A bundle this runtime cannot run, with the reason (a ValueError, like ndogo's ModelError)."""


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{path}: not valid JSON ({err})") from None


def _token(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _prefix_space(spec: dict[str, Any]) -> dict[str, Any]:
    """Turn on add_prefix_space in a byte-level pre-tokenizer, as `load_tokenizer` does for pre-split words."""
    pre = spec.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    for part in parts:
        if part.get("type") == "ByteLevel":
            part["add_prefix_space"] = True
    return spec


class OnnxTokenizer:
    """The parts of a fast tokenizer windowing needs, over a bare `tokenizers.Tokenizer`."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        file = path / "tokenizer.json"
        if not file.is_file():
            raise BundleError(f"{path}: no tokenizer.json (the torch-free runtime needs a fast tokenizer's file)")
        self.tok = Tokenizer.from_str(json.dumps(_prefix_space(_read_json(file))))
        self.tok.no_padding()
        self.tok.no_truncation()
        self.config = _read_json(path / "tokenizer_config.json")
        special = _read_json(path / "special_tokens_map.json")
        self.pad_token_id = self._id("pad_token", special)
        self.unk_token_id = self._id("unk_token", special)
        self.model_max_length = self.config.get("model_max_length")

    def _id(self, name: str, special: dict[str, Any]) -> int | None:
        token = _token(self.config.get(name)) or _token(special.get(name))
        return self.tok.token_to_id(token) if token is not None else None

    def encode(self, text: str, special: bool) -> list[int]:
        return self.tok.encode(text, add_special_tokens=special).ids

    def pieces(self, words: Sequence[str]) -> list[list[int]]:
        """Sub-word ids of each word (an empty word, or one with no sub-words, becomes the unknown token)."""
        enc = self.tok.encode(list(words), is_pretokenized=True, add_special_tokens=False)
        unk = self.unk_token_id if self.unk_token_id is not None else (self.pad_token_id or 0)
        return group_pieces(enc.ids, enc.word_ids, len(words), unk)


def _window(tokenizer: OnnxTokenizer, config: dict[str, Any]) -> int:
    """Longest input the model takes: ndogo.models.loading.model_window, read from the JSON files."""
    limits = [WINDOW_CAP]
    mml = tokenizer.model_max_length
    if isinstance(mml, int | float) and 0 < mml < 10**6:
        limits.append(int(mml))
    max_pos = config.get("max_position_embeddings")
    if max_pos:
        roberta = config.get("model_type") in ("roberta", "xlm-roberta")
        limits.append(int(max_pos) - ((config.get("pad_token_id") or 0) + 1 if roberta else 0))
    return min(limits)


def bundle_kind(path: str | Path) -> str:
    """The kind ndogo.json records for a model directory ("hf" when there is none)."""
    return str(_read_json(Path(path) / META).get("kind", "hf"))


class OnnxPredictor:
    """An ONNX model directory ready to find entities in raw text, on ONNX Runtime alone.

    The same interface as `ndogo.deploy.predict.Predictor.predict`; `kind`,
    `labels` and `max_length` describe the model.
    """

    def __init__(self, path: str | Path, batch_size: int = 32, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_dir():
            raise BundleError(f"{self.path}: no such model directory")
        self.meta = _read_json(self.path / META)
        self.kind = str(self.meta.get("kind", "hf"))
        if self.kind not in GRAPH_FILES:
            raise BundleError(f"{self.path}: kind {self.kind!r} is not an ONNX model "
                                f"(the torch-free runtime runs {', '.join(RUNTIME_KINDS)}; use ndogo.load)")
        graph = self.path / GRAPH_FILES[self.kind]
        if not graph.is_file():
            raise BundleError(f"{self.path}: kind {self.kind!r} but no {graph.name}")
        self.batch_size = batch_size
        self.tokenizer = OnnxTokenizer(self.path)
        config = _read_json(self.path / "config.json")
        labels = self.meta.get("labels")
        if not labels:
            id2label = config.get("id2label") or {}
            if not id2label:
                raise BundleError(f"{self.path}: no labels in {META} and none in config.json")
            labels = [id2label[str(i)] for i in range(len(id2label))]
        self.labels: list[str] = list(labels)
        self.max_length = int(self.meta.get("max_length") or _window(self.tokenizer, config))
        self.layout = layout_from(self.tokenizer.encode)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else 0
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: ONNX Runtime's default, one per physical core
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own pybind exception types for bad graphs
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise BundleError(f"{graph}: ONNX Runtime cannot load this graph ({reason})") from None
        self.inputs = [i.name for i in self.session.get_inputs()]

    def forward(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Logits (batch, length, labels) of a padded batch."""
        return self.session.run(["logits"], {name: batch[name] for name in self.inputs})[0]

    def windows(self, sentences: Sequence[Sequence[str]]) -> list[Window]:
        """The model inputs of pre-split sentences: `ndogo serve` schedules these one by one across requests."""
        return build_windows(self.tokenizer.pieces, self.layout, sentences, self.max_length)

    def window_probs(self, windows: Sequence[Window]) -> np.ndarray:
        """Label probabilities (batch, length, labels) of a batch of windows, padded to its longest."""
        return softmax(self.forward(pad_batch(windows, self.pad_id)))

    def predict_words(self, sentences: Sequence[Sequence[str]]) -> tuple[list[list[str]], list[list[float]]]:
        """Tags and their probabilities for each word of each pre-split sentence, as `evaluate.predict_tags`."""
        windows = self.windows(sentences)
        merger = WordMerger([len(s) for s in sentences])
        for idx in length_batches(windows, self.batch_size, shuffle=False):
            chosen = [windows[i] for i in idx]
            merger.add(chosen, self.window_probs(chosen))
        probs = merger.result()
        tags = [[self.labels[i] for i in p.argmax(-1)] for p in probs]
        scores = [[float(x) for x in p.max(-1)] for p in probs]
        return tags, scores

    def predict(self, texts: str | Sequence[str]) -> list[list[Entity]]:
        """Entities of each text (a single string counts as one text); an empty text is a ValueError."""
        texts = check_texts(texts)
        words = [split_words(text) for text in texts]
        tags, scores = self.predict_words([[w.text for w in ws] for ws in words])
        return [entities_from_tags(text, ws, t, s) for text, ws, t, s in zip(texts, words, tags, scores, strict=True)]


def load(path: str | Path, batch_size: int = 32, threads: int | None = None) -> OnnxPredictor:
    """Load an ONNX model directory (kind onnx or ort) for prediction without torch.

    Example:
        >>> from ndogo.deploy.runtime import load
        >>> load("bundles/hau-int8", threads=1).predict("Musa ya je Kano ranar Litinin.")
    """
    return OnnxPredictor(path, batch_size=batch_size, threads=threads)

