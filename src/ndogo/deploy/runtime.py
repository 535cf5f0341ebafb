"""Entities from an ONNX model with only onnxruntime, tokenizers and numpy: no torch, no transformers.

An int8 ONNX model is 22 MB, but loading it through the PyTorch path imports
torch and transformers first: about 550 MB of memory and seconds of start-up
before the first sentence, on a 1-core server most of the cost of serving it.
This module runs the same directories (`model.onnx`, or `model.ort` from
`ndogo export --format ort`, beside `tokenizer.json` and `ndogo.json`) with
the three libraries inference needs, and gives the same entities as
`ndogo.deploy.predict` because it shares its parts rather than copying them:

* words: `ndogo.data.words.split_words` (MasakhaNER-style words with offsets);
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
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ndogo.data.words import check_texts, split_words
from ndogo.deploy.entities import Entity, Label, WordTag, entities_from_tags, word_tags
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
from ndogo.models.files import check_inside

META = "ndogo.json"
# model file of each kind this runtime runs, in the order they are looked for
GRAPH_FILES = {"onnx": "model.onnx", "ort": "model.ort"}
RUNTIME_KINDS = tuple(GRAPH_FILES)
WINDOW_CAP = 512  # as ndogo.models.loading.model_window
INPUTS = ("input_ids", "attention_mask")  # what the runtime feeds a graph (ndogo's exports take exactly these)
LABEL_RE = re.compile(r"^(O|[BI]-\S+)$")  # as ndogo.models.loading.LABEL_RE (which imports torch)


class BundleError(ValueError):
    """A bundle this runtime cannot run, with the reason (a ValueError, like ndogo's ModelError)."""


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a bundle file ({} where the file is absent); anything else is refused naming it."""
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{path}: not valid JSON ({err})") from None
    except OSError as err:
        raise BundleError(f"{path}: cannot be read ({(err.strerror or str(err)).lower()})") from None
    if not isinstance(value, dict):
        raise BundleError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def _token(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _prefix_space(file: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Turn on add_prefix_space in a byte-level pre-tokenizer, as `load_tokenizer` does for pre-split words.

    Also the shape checks the tokenizers library would otherwise answer with a panic or a
    KeyError deep inside: a model object, and pre-tokenizers that are objects.
    """
    if not isinstance(spec.get("model"), dict):
        raise BundleError(f"{file}: not a tokenizers file (no \"model\" object)")
    pre = spec.get("pre_tokenizer")
    if pre is None:
        return spec
    if not isinstance(pre, dict):
        raise BundleError(f"{file}: \"pre_tokenizer\" must be an object or null, got {type(pre).__name__}")
    parts = pre.get("pretokenizers") if pre.get("type") == "Sequence" else [pre]
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise BundleError(f"{file}: a \"Sequence\" pre_tokenizer's \"pretokenizers\" must be a list of objects")
    for part in parts:
        if part.get("type") == "ByteLevel":
            part["add_prefix_space"] = True
    return spec


def _first_line(err: Exception) -> str:
    return ((str(err).strip().splitlines() or [type(err).__name__])[0])[:300]


class OnnxTokenizer:
    """The parts of a fast tokenizer windowing needs, over a bare `tokenizers.Tokenizer`."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        file = path / "tokenizer.json"
        if not file.is_file():
            raise BundleError(f"{path}: no tokenizer.json (the torch-free runtime needs a fast tokenizer's file)")
        spec = _prefix_space(file, _read_json(file))
        try:
            self.tok = Tokenizer.from_str(json.dumps(spec))
        except Exception as err:  # the tokenizers library raises bare Exceptions (and panics) on a bad spec
            raise BundleError(f"{file}: the tokenizers library cannot read it ({_first_line(err)})") from None
        self.tok.no_padding()
        self.tok.no_truncation()
        self.config = _read_json(path / "tokenizer_config.json")
        special = _read_json(path / "special_tokens_map.json")
        self.pad_token_id = self._id("pad_token", path / "tokenizer_config.json", self.config,
                                     path / "special_tokens_map.json", special)
        self.unk_token_id = self._id("unk_token", path / "tokenizer_config.json", self.config,
                                     path / "special_tokens_map.json", special)
        self.model_max_length = self.config.get("model_max_length")

    def _id(self, name: str, *files: Any) -> int | None:
        """The id of a special token, from the first of (file, record) pairs that names it.

        A token of the wrong shape is refused naming its file: guessing a pad id would
        change every padded batch's scores without a word.
        """
        for file, record in zip(files[::2], files[1::2], strict=True):
            value = record.get(name)
            if value is None:
                continue
            token = _token(value)
            if token is None:
                raise BundleError(f"{file}: {name} must be a string or {{\"content\": string}}, got {value!r}"[:300])
            return self.tok.token_to_id(token)
        return None

    def encode(self, text: str, special: bool) -> list[int]:
        return self.tok.encode(text, add_special_tokens=special).ids

    def pieces(self, words: Sequence[str]) -> list[list[int]]:
        """Sub-word ids of each word (an empty word, or one with no sub-words, becomes the unknown token)."""
        enc = self.tok.encode(list(words), is_pretokenized=True, add_special_tokens=False)
        unk = self.unk_token_id if self.unk_token_id is not None else (self.pad_token_id or 0)
        return group_pieces(enc.ids, enc.word_ids, len(words), unk)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _window(tokenizer: OnnxTokenizer, config: dict[str, Any], file: Path) -> int:
    """Longest input the model takes: ndogo.models.loading.model_window, read from the JSON files."""
    limits = [WINDOW_CAP]
    mml = tokenizer.model_max_length
    if isinstance(mml, int | float) and not isinstance(mml, bool) and 0 < mml < 10**6:
        limits.append(int(mml))
    max_pos = config.get("max_position_embeddings")
    if max_pos is not None:
        pad = config.get("pad_token_id")
        if not _whole(max_pos) or max_pos < 3 or (pad is not None and not _whole(pad)):
            raise BundleError(f"{file}: max_position_embeddings must be a whole number ≥ 3 and pad_token_id a "
                              f"whole number, got {max_pos!r} and {pad!r}")
        roberta = config.get("model_type") in ("roberta", "xlm-roberta")
        limits.append(max_pos - ((pad or 0) + 1 if roberta else 0))
    return min(limits)


def run_window(path: Path, meta: dict[str, Any], limit: int) -> int:
    """ndogo.json's `max_length`, refused (naming the file) where the model's positions cannot take it.

    A window longer than the position table fails on the first long sentence, deep inside
    ONNX Runtime (a traceback in `predict`, a 500 in `serve`); the PyTorch path refuses it
    the same way (`ndogo.models.loading.run_window`).
    """
    recorded = meta.get("max_length")
    if recorded is None:
        return limit
    if not _whole(recorded) or recorded < 3:
        raise BundleError(f"{path / META}: max_length must be a whole number ≥ 3, got {recorded!r}")
    if recorded > limit:
        raise BundleError(f"{path / META}: max_length {recorded} is more than the model takes ({limit} positions, "
                          "from config.json and the tokenizer)")
    return recorded


def read_labels(path: Path, meta: dict[str, Any], config: dict[str, Any]) -> tuple[list[str], Path]:
    """The model's IOB labels in id order, and the file they were read from.

    From ndogo.json's `labels`, else config.json's `id2label`. A string (`"BIO"` would be read as
    three labels), integers, empty strings or non-IOB names are refused: each would turn into
    wrong entities with no error.
    """
    if meta.get("labels") is not None:
        labels, file = meta["labels"], path / META
    else:
        file = path / "config.json"
        id2label = config.get("id2label")
        if not id2label:
            raise BundleError(f"{path}: no labels in {META} and none in config.json")
        if not isinstance(id2label, dict) or sorted(id2label, key=str) != sorted(map(str, range(len(id2label)))):
            raise BundleError(f"{file}: id2label must number the labels 0..n-1 with no gap")
        labels = [id2label[str(i)] for i in range(len(id2label))]
    if not isinstance(labels, list) or not labels:
        raise BundleError(f"{file}: labels must be a list of IOB tags such as [\"O\", \"B-PER\", \"I-PER\"], got "
                          f"{labels!r}"[:300])
    if meta.get("output", "entities") == "entities":
        # a NER model (or one saved before models recorded their output): its labels become entities
        odd = [lab for lab in labels if not isinstance(lab, str) or not LABEL_RE.match(lab)]
        if odd:
            raise BundleError(f"{file}: labels {odd[:4]!r} are not IOB tags (O, B-X, I-X)"[:300])
    elif not all(isinstance(lab, str) and lab for lab in labels):
        raise BundleError(f"{file}: labels must be non-empty strings, got {labels!r}"[:300])
    return list(labels), file


def check_graph(session: Any, graph: Path, labels: Sequence[str], label_file: Path, probe: Sequence[int]) -> None:
    """The graph takes what the runtime feeds it and scores as many labels as the bundle names.

    A label list shorter than the graph's output fails on the first word tagged past its end;
    a longer one silently never uses its last labels. Both mean the files are not of one model.
    """
    inputs = {i.name: i.type for i in session.get_inputs()}
    if "input_ids" not in inputs or set(inputs) - set(INPUTS) or any(t != "tensor(int64)" for t in inputs.values()):
        raise BundleError(f"{graph}: inputs {sorted(inputs)} ({', '.join(sorted(set(inputs.values())))}); "
                          "the runtime feeds int64 input_ids and attention_mask")
    outputs = {o.name: o.shape for o in session.get_outputs()}
    if "logits" not in outputs:
        raise BundleError(f"{graph}: no output named logits (outputs: {', '.join(sorted(outputs))})")
    shape = outputs["logits"] or []
    width = shape[-1] if shape else None
    if not _whole(width):  # a dynamic last axis: ask the graph
        feed = {"input_ids": np.array([list(probe)], dtype=np.int64),
                "attention_mask": np.ones((1, len(probe)), dtype=np.int64)}
        try:
            width = session.run(["logits"], {k: v for k, v in feed.items() if k in inputs})[0].shape[-1]
        except Exception as err:  # onnxruntime's own exception types
            raise BundleError(f"{graph}: ONNX Runtime cannot run this graph ({_first_line(err)})") from None
    if width != len(labels):
        raise BundleError(f"{label_file}: {len(labels)} labels, but {graph.name} scores {width} per sub-word; "
                          "the two files are not of one model")


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
        check_inside(self.path, {}, BundleError, names=[META])
        self.meta = _read_json(self.path / META)
        self.kind = str(self.meta.get("kind", "hf"))
        if self.kind not in GRAPH_FILES:
            raise BundleError(f"{self.path}: kind {self.kind!r} is not an ONNX model "
                                f"(the torch-free runtime runs {', '.join(RUNTIME_KINDS)}; use ndogo.load)")
        check_inside(self.path, self.meta, BundleError)
        graph = self.path / GRAPH_FILES[self.kind]
        if not graph.is_file():
            raise BundleError(f"{self.path}: kind {self.kind!r} but no {graph.name}")
        self.batch_size = batch_size
        self.tokenizer = OnnxTokenizer(self.path)
        config = _read_json(self.path / "config.json")
        self.labels, label_file = read_labels(self.path, self.meta, config)
        self.max_length = run_window(self.path, self.meta, _window(self.tokenizer, config, self.path / "config.json"))
        try:
            self.layout = layout_from(self.tokenizer.encode)
        except Exception as err:  # ValueError from layout_from, or the tokenizers library's own
            raise BundleError(f"{self.path / 'tokenizer.json'}: {_first_line(err)}") from None
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
            raise BundleError(f"{graph}: ONNX Runtime cannot load this graph ({_first_line(err)})") from None
        check_graph(self.session, graph, self.labels, label_file, [*self.layout[0], *self.layout[1]] or [self.pad_id])
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

    @property
    def output(self) -> str:
        """What the model predicts (ndogo.json's `output`): entities, a tag per word, or a label per text."""
        return str(self.meta.get("output", "entities"))

    def predict(self, texts: str | Sequence[str]) -> list[list[Entity]] | list[list[WordTag]] | list[Label]:
        """Entities of each text (a single string counts as one text); an empty text is a ValueError.

        A POS tagger gives each word's tag (`WordTag`), a text classifier each text's `Label`, as
        `ndogo.deploy.predict.Predictor.predict` does.
        """
        texts = check_texts(texts)
        if self.output == "label":
            return self.predict_labels(texts)
        words = [split_words(text) for text in texts]
        tags, scores = self.predict_words([[w.text for w in ws] for ws in words])
        if self.output == "tags":
            return [word_tags(ws, [w.text for w in ws], t, s) for ws, t, s in zip(words, tags, scores, strict=True)]
        return [entities_from_tags(text, ws, t, s) for text, ws, t, s in zip(texts, words, tags, scores, strict=True)]

    def predict_labels(self, texts: Sequence[str]) -> list[Label]:
        """Each text's label and its probability (a text classifier): the text truncated to the window,
        its special tokens kept, as the tokenizer's truncation does on the PyTorch path."""
        before, after = self.layout
        room = self.max_length - len(before) - len(after)
        ids = [[*before, *self.tokenizer.encode(text, False)[:room], *after] for text in texts]
        out: list[Label] = []
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start:start + self.batch_size]
            width = max(len(x) for x in chunk)
            batch = {"input_ids": np.full((len(chunk), width), self.pad_id, dtype=np.int64),
                     "attention_mask": np.zeros((len(chunk), width), dtype=np.int64)}
            for i, x in enumerate(chunk):
                batch["input_ids"][i, : len(x)] = x
                batch["attention_mask"][i, : len(x)] = 1
            probs = softmax(self.forward(batch))
            out += [Label(self.labels[int(p.argmax())], round(float(p.max()), 4)) for p in probs]
        return out


def load(path: str | Path, batch_size: int = 32, threads: int | None = None) -> OnnxPredictor:
    """Load an ONNX model directory (kind onnx or ort) for prediction without torch.

    Example:
        >>> from ndogo.deploy.runtime import load
        >>> load("bundles/hau-int8", threads=1).predict("Musa ya je Kano ranar Litinin.")
    """
    return OnnxPredictor(path, batch_size=batch_size, threads=threads)

