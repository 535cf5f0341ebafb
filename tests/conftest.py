"""Shared fixtures: tiny models built from configs (no download) and real data samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here; fail fast instead of retrying
# `--device auto` means the CPU in the suite, even on a machine with a GPU: no test needs or takes one
os.environ.setdefault("NDOGO_DEVICE", "cpu")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MASAKHANER = SHARED / "masakhaner"
LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-DATE", "I-DATE"]


def need_shared() -> Path:
    """Skip (with the reason) where ../shared/data is absent."""
    if not MASAKHANER.is_dir():
        pytest.skip(f"real data not available: {MASAKHANER} is absent (it lies beside the project in CI)")
    return SHARED


@pytest.fixture
def shared_data() -> Path:
    return need_shared()


def make_tiny_model(path: Path, layers: int = 2, hidden: int = 32, heads: int = 2, seed: int = 0,
                    labels: list[str] | None = None) -> Path:
    """A BERT token classifier with minilm's real tokenizer and tiny random weights."""
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    from ndogo.models.loading import resolve_model

    labels = labels or LABELS
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=hidden * 2, max_position_embeddings=64, num_labels=len(labels),
                        id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)})
    model = BertForTokenClassification(config).eval()
    model.save_pretrained(path, safe_serialization=True)
    AutoTokenizer.from_pretrained(resolve_model("minilm")).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny token-classification model (2 layers, hidden 32, window 64)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MasakhaNER-layout corpus of real hau sentences; skips (with the reason) where ../shared is absent.

    A synthetic stand-in was tried and dropped: one repeated sentence has no vocabulary to
    trim, nothing for a model to learn, and no dev F1 to choose an epoch by, so tests on it
    failed for reasons that say nothing about the code.
    """
    from ndogo.data.conll import read_conll, write_conll

    need_shared()
    root = tmp_path_factory.mktemp("corpus")
    lang = root / "hau"
    lang.mkdir()
    for split, n in (("train", 48), ("dev", 16), ("test", 16)):
        sents = read_conll(MASAKHANER / "hau" / f"{split}.txt").sentences[:n]
        write_conll(lang / f"{split}.txt", [(s.tokens, s.tags) for s in sents])
    return root


@pytest.fixture(scope="session")
def int8_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported to ONNX and quantized to int8 (kind onnx), as `quantize --method onnx-int8` makes it."""
    from ndogo.compress.quantize import quant_config, quantize

    return quantize(tiny_model, tmp_path_factory.mktemp("int8") / "model", quant_config("onnx-int8"))


# Run in a subprocess before anything else, this makes importing torch, transformers, seqeval or
# scikit-learn fail: what the torch-free runtime is promised to work without.
BLOCK_TORCH = """
import sys
BLOCKED = {"torch", "transformers", "seqeval", "sklearn", "scipy"}
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} may not be imported here")
        return None
sys.meta_path.insert(0, _Block())
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("the import block does not work")
"""


@pytest.fixture
def two_language_corpus(tiny_corpus: Path, tmp_path: Path) -> Path:
    """The tiny corpus with its hau copied as a second "language", yor (zero-shot scoring, --lang splits)."""
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    shutil.copytree(corpus / "hau", corpus / "yor")
    return corpus
