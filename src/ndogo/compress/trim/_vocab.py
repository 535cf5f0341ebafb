"""Vocabulary trimming: keep only the sub-words one language uses.

In `minilm` the 30,522 x 384 word-embedding matrix is about half of all
parameters, and a model that serves one language reads only a fraction of
those rows. This stage counts the sub-words the model's own tokenizer produces
on the language's training text (plus monolingual text when given), keeps the
special tokens and the counted ones, slices the embedding matrix (and a tied
output layer, for models that have one) to those rows, and saves a tokenizer
whose ids index the smaller matrix.

Monolingual text, when given, is counted without the lines that contain a dev
or test sentence of the NER corpus (`exclude_eval`, on by default): news text
often *is* the corpus's source, and choosing the vocabulary with the test
sentences in view would make the trimmed model's test F1 say nothing about text
it has not seen.

Names of people and places cross languages (a Hausa news story about Justin
Trudeau or Atlanta), and they are exactly the words NER must read well, yet a
language's own text may never contain them. `other_langs` therefore also counts
the other languages' text in the corpus folder, ranked after every sub-word of
the language's own text: with `keep` it fills the budget left after the
language's own sub-words; without it, the same `min_count` applies to each tier.

What the new tokenizer does (the guarantee and the fallback)
-----------------------------------------------------------
The new tokenizer is the old one with the same normalizer, pre-tokenizer and
algorithm (WordPiece, BPE or Unigram), run over the kept sub-vocabulary:

* Wherever every token the old tokenizer produces is kept, the new one
  produces exactly the same tokens. WordPiece is greedy longest-match, and no
  longer match can appear in a subset of the vocabulary; BPE keeps every merge
  whose pieces are kept, in the same order, and the kept set is closed under
  "the pieces a kept token was merged from"; Unigram's best segmentation is
  still available and still best in a subset, provided the unknown-token
  score (the lowest piece score minus 10) does not change, so the lowest-scored
  piece is always kept.
* Elsewhere the fallback is a *shorter split into kept sub-words*: the same
  algorithm simply finds the best segmentation that the kept vocabulary allows
  (`Kwankwaso` may become `kw ##an ##kw ##as ##o` instead of `kwan ##kwa ##so`).
  We chose this over mapping the word to the unknown token because an entity
  name the counting text never showed is exactly what NER must still read:
  pieces keep its spelling, capitals and suffixes, while one unknown token per
  unseen word would erase the evidence. To make the shorter split always
  possible, every single-character token of a character that occurs in the
  counted text is kept (for WordPiece both `c` and `##c`). Only characters that
  never occur in the counted text become the unknown token, as they would in
  any tokenizer that lacks them.

Why it is written here: `tokenizers` can train a new vocabulary but has no
operation that restricts an existing one, and re-training would change the
segmentation the fine-tuned model learned. Restricting the serialized model
(`tokenizer.json`) keeps every other part of the tokenizer byte-for-byte.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from ndogo.compress.trim import TrimConfig
from ndogo.data.conll import decode
from ndogo.data.leakage import drop_lines_containing
from ndogo.models.loading import ModelError, load_saved, load_tokenizer, read_meta, resolve_model, write_meta

FALLBACK = "shorter-split"
# Tokenizer files copied as they are. The vocabulary files of slow tokenizers
# (vocab.txt, spiece.model, merges.txt, ...) describe the old vocabulary and are
# not copied: the trimmed model's tokenizer is its tokenizer.json alone.
TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json")
# Config fields that hold token ids and must follow the new numbering.
CONFIG_ID_FIELDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id",
                    "unk_token_id", "mask_token_id", "decoder_start_token_id")


@dataclass
class TrimPlan:
    """Which old ids survive, in new-id order, and why each group was kept."""

    keep_ids: list[int]  # ascending old ids; new id = position in this list
    vocab_before: int
    counted: int  # distinct sub-words seen in the counted text
    special: int  # special and added tokens (always kept)
    alphabet: int  # single-character tokens kept so the fallback never needs the unknown token

    @property
    def old_to_new(self) -> dict[int, int]:
        return {old: new for new, old in enumerate(self.keep_ids)}


def monolingual_path(corpus: str | Path, lang: str) -> Path:
    """`corpus` itself when it is a text file, else `<corpus>/<lang>.txt`."""
    from ndogo.data.leakage import language_file

    return Path(corpus) if Path(corpus).is_file() else language_file(corpus, lang)


def monolingual_lines(corpus: str | Path, lang: str) -> list[str]:
    """Non-empty lines of the language's text: `corpus` if it is a file, else `<corpus>/<lang>.txt`.

    UTF-8; a bad byte is reported with its line.
    """
    path = monolingual_path(corpus, lang)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no monolingual text for {lang!r} in {corpus}")
    return [line.strip() for line in decode(path).split("\n") if line.strip()]


def count_tokens(
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[Sequence[str]],
    lines: Sequence[str] = (),
    batch_size: int = 1000,
    show_progress: bool = False,
) -> Counter[int]:
    """How often each token id appears when the tokenizer reads the text.

    NER sentences are encoded as evaluation encodes them (pre-split words);
    monolingual lines as raw text. Special tokens are not counted (they are
    always kept). The `tokenizers` backend is called directly: the same
    encoding, without transformers' warnings about lines longer than the model's window.
    """
    backend = tokenizer.backend_tokenizer
    counts: Counter[int] = Counter()
    with tqdm(total=len(sentences) + len(lines), desc="count sub-words", unit="line",
              disable=not show_progress) as bar:
        for k in range(0, len(sentences), batch_size):
            chunk = [list(s) for s in sentences[k : k + batch_size]]
            for enc in backend.encode_batch([c for c in chunk if c], is_pretokenized=True, add_special_tokens=False):
                counts.update(enc.ids)
            bar.update(len(chunk))
        for k in range(0, len(lines), batch_size):
            chunk = list(lines[k : k + batch_size])
            for enc in backend.encode_batch(chunk, add_special_tokens=False):
                counts.update(enc.ids)
            bar.update(len(chunk))
    return counts


def text_characters(backend: Tokenizer, texts: Iterable[str]) -> set[str]:
    """Characters of the text as the tokenizer model sees them (normalized and pre-tokenized).

    Seen through the tokenizer's own normalizer and pre-tokenizer, so an
    uncased model sees lower case, SentencePiece sees its `▁`, and byte-level
    BPE sees its byte symbols.
    """
    words: set[str] = set()
    for text in texts:
        words.update(text.split())
    # Each distinct word once: the same characters as the whole text (normalization
    # such as NFC composition acts within words) at a fraction of the work.
    joined = " ".join(sorted(words))
    if backend.normalizer is not None:
        joined = backend.normalizer.normalize_str(joined)
    if backend.pre_tokenizer is not None:
        pieces = backend.pre_tokenizer.pre_tokenize_str(joined)
        return {c for piece, _ in pieces for c in piece}
    return set(joined) - {" "}


def alphabet_ids(model: dict[str, Any], vocab: dict[str, int], chars: set[str]) -> set[int]:
    """Single-character tokens of characters in `chars` (with any continuation prefix or word-end suffix).

    These make the fallback (a shorter split) possible for every word the
    counted text could contain, whatever its sub-words.
    """
    prefix = model.get("continuing_subword_prefix") or ""
    suffix = model.get("end_of_word_suffix") or ""
    keep = set()
    for token, tid in vocab.items():
        base = token
        if prefix and base.startswith(prefix) and len(base) > len(prefix):
            base = base[len(prefix) :]
        if suffix and base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
        if len(base) == 1 and base in chars:
            keep.add(tid)
    if model.get("byte_fallback"):
        # <0x00>..<0xFF>: what a byte-fallback tokenizer uses for characters it lacks.
        keep.update(tid for token, tid in vocab.items() if len(token) == 6 and token.startswith("<0x"))
    return keep


def model_vocab(model: dict[str, Any]) -> dict[str, int]:
    """token -> id of a serialized WordPiece, BPE or Unigram model."""
    if model["type"] in ("WordPiece", "BPE", "WordLevel"):
        return dict(model["vocab"])
    if model["type"] == "Unigram":
        return {piece: i for i, (piece, _) in enumerate(model["vocab"])}
    raise ModelError(f"cannot trim a {model['type']} tokenizer (WordPiece, BPE and Unigram are supported)")


def bpe_merges(model: dict[str, Any]) -> list[tuple[str, str]]:
    """Merges of a serialized BPE model, in priority order (both file layouts)."""
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in model["merges"]]


def bpe_result(model: dict[str, Any], a: str, b: str) -> str:
    """The token a merge produces; like `tokenizers`, a continuation prefix on `b` is dropped."""
    prefix = model.get("continuing_subword_prefix") or ""
    return a + b[len(prefix) :]


def close_under_merges(model: dict[str, Any], vocab: dict[str, int], keep: set[int]) -> set[int]:
    """Add the pieces each kept BPE token was merged from, recursively.

    BPE reaches a token only through the tokens it was merged from, so without
    them a kept token could never be produced again.
    """
    origin: dict[str, tuple[str, str]] = {}
    for a, b in bpe_merges(model):
        origin.setdefault(bpe_result(model, a, b), (a, b))
    id_to_token = {i: t for t, i in vocab.items()}
    closed = set(keep)
    stack = [id_to_token[i] for i in keep if i in id_to_token]
    while stack:
        token = stack.pop()
        for part in origin.get(token, ()):
            pid = vocab.get(part)
            if pid is not None and pid not in closed:
                closed.add(pid)
                stack.append(part)
    return closed


def plan_vocab(
    tokenizer: PreTrainedTokenizerBase,
    counts: Counter[int],
    chars: set[str],
    min_count: int = 1,
    keep: int | None = None,
    other_counts: Counter[int] | None = None,
) -> TrimPlan:
    """Decide which ids survive: special tokens, counted tokens, the alphabet (and BPE ancestors).

    Sub-words are ranked by their count in the language's own text, then those
    only seen in `other_counts` (other languages' text) by their count there.
    `keep` takes the first `keep` of that ranking; otherwise every sub-word
    counted at least `min_count` times (in its own tier) is kept.
    """
    if keep is not None and keep < 1:
        raise ValueError(f"--keep must be at least 1 (got {keep})")
    if min_count < 1:
        raise ValueError(f"--min-count must be at least 1 (got {min_count})")
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model = spec["model"]
    vocab = model_vocab(model)
    size = len(tokenizer)
    special = {int(t["id"]) for t in spec.get("added_tokens", [])} | set(tokenizer.all_special_ids)
    other_counts = other_counts or Counter()
    own = [tid for tid, n in counts.most_common() if tid not in special and n >= (1 if keep else min_count)]
    seen = set(own)
    other = [tid for tid, n in other_counts.most_common()
             if tid not in special and tid not in seen and n >= (1 if keep else min_count)]
    ranked = own + other
    chosen = set(ranked[:keep] if keep is not None else ranked)
    alphabet = alphabet_ids(model, vocab, chars) - special - chosen
    kept = special | chosen | alphabet
    if model["type"] == "Unigram":
        # Keep the unknown-token score (lowest piece score - 10) unchanged; see the module docstring.
        scores = model["vocab"]
        kept.add(min(range(len(scores)), key=lambda i: scores[i][1]))
    if model["type"] == "BPE":
        kept = close_under_merges(model, vocab, kept)
    kept = {i for i in kept if 0 <= i < size}
    return TrimPlan(sorted(kept), size, len((set(counts) | set(other_counts)) - special), len(special),
                    len(alphabet))


def remap_ids(node: Any, old_to_new: dict[int, int]) -> Any:
    """Renumber token ids inside a post-processor or padding spec.

    Handles TemplateProcessing (`special_tokens.*.ids`), Roberta/BertProcessing
    (`sep`/`cls` as [token, id]), Sequence (`processors`) and padding (`pad_id`).
    """
    if isinstance(node, list):
        return [remap_ids(x, old_to_new) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "ids" and isinstance(value, list):
            out[key] = [old_to_new[i] for i in value]
        elif key in ("sep", "cls") and isinstance(value, list) and len(value) == 2:
            out[key] = [value[0], old_to_new[int(value[1])]]
        elif key == "pad_id" and isinstance(value, int):
            out[key] = old_to_new[value]
        else:
            out[key] = remap_ids(value, old_to_new)
    return out


def trimmed_tokenizer_spec(spec: dict[str, Any], plan: TrimPlan) -> dict[str, Any]:
    """A `tokenizer.json` spec over the kept ids, numbered 0..n-1 in their old order."""
    old_to_new = plan.old_to_new
    model = dict(spec["model"])
    vocab = model_vocab(model)
    id_to_token = {i: t for t, i in vocab.items()}
    if model["type"] in ("WordPiece", "BPE", "WordLevel"):
        model["vocab"] = {id_to_token[old]: new for old, new in old_to_new.items() if old in id_to_token}
    if model["type"] == "BPE":
        kept = model["vocab"]
        merges = [(a, b) for a, b in bpe_merges(model) if a in kept and b in kept and bpe_result(model, a, b) in kept]
        model["merges"] = [list(m) for m in merges]
    if model["type"] == "Unigram":
        pieces = spec["model"]["vocab"]
        # Ids past the model's pieces are added tokens; they stay added tokens.
        model["vocab"] = [pieces[old] for old in plan.keep_ids if old < len(pieces)]
        if model.get("unk_id") is not None:
            model["unk_id"] = old_to_new[model["unk_id"]]
    out = dict(spec)
    out["model"] = model
    out["added_tokens"] = [{**t, "id": old_to_new[t["id"]]} for t in spec.get("added_tokens", [])]
    out["post_processor"] = remap_ids(spec.get("post_processor"), old_to_new)
    out["padding"] = remap_ids(spec.get("padding"), old_to_new)
    return out


def slice_vocab(model: torch.nn.Module, keep_ids: Sequence[int]) -> None:
    """Keep only these rows of the word embeddings and of any output layer over the vocabulary.

    A tied output layer (masked-LM models) stays tied to the sliced embeddings;
    an untied one is sliced the same way, bias included. Special-token ids in
    the config follow the new numbering.
    """
    index = torch.tensor(list(keep_ids), dtype=torch.long)
    old_to_new = {old: new for new, old in enumerate(keep_ids)}
    emb = model.get_input_embeddings()
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is emb.weight
    pad = emb.padding_idx
    new_emb = torch.nn.Embedding(len(index), emb.embedding_dim, padding_idx=old_to_new.get(pad) if pad is not None
                                 else None, dtype=emb.weight.dtype)
    new_emb.weight = torch.nn.Parameter(emb.weight.detach()[index].clone())
    model.set_input_embeddings(new_emb)
    if out is not None:
        out.weight = new_emb.weight if tied else torch.nn.Parameter(out.weight.detach()[index].clone())
        if getattr(out, "bias", None) is not None:
            out.bias = torch.nn.Parameter(out.bias.detach()[index].clone())
        out.out_features = len(index)
    config = model.config
    for name in CONFIG_ID_FIELDS:
        old = getattr(config, name, None)
        if isinstance(old, int):
            if old not in old_to_new:
                raise ModelError(f"config.{name} = {old} is not among the kept tokens")
            if name == "pad_token_id" and old_to_new[old] != old and "roberta" in config.model_type:
                # RoBERTa numbers positions from the padding id: moving it would shift every position.
                raise ModelError(f"trimming would move the padding id of a {config.model_type} model ({old} -> "
                                 f"{old_to_new[old]}), which shifts its position embeddings")
            setattr(config, name, old_to_new[old])
    config.vocab_size = len(index)


@dataclass
class TrimCount:
    """What counting decided for a tokenizer and a language: the plan, and where the counts came from."""

    plan: TrimPlan
    sources: list[str]
    monolingual_lines: int
    other_lang_lines: int
    dropped_eval_lines: int
    monolingual_missing: str | None


def count_for_trim(tokenizer: PreTrainedTokenizerBase, config: TrimConfig) -> TrimCount:
    """Count the language's text (and the other languages', with `other_langs`) and plan the kept ids.

    The part of `trim` that needs no model: the atlas's facts rebuild a trimmed tokenizer with it
    (`trimmed_tokenizer`) to measure what trimming re-splits, when the trimmed model is not on disk.
    """
    from ndogo.tasks import resolve_task

    task = resolve_task(None, config.data, config.lang)  # any task's text: the words are what is counted
    corpus = task.load(config.data, config.lang, ("train",))
    if "train" not in corpus.splits:
        raise ValueError(f"{corpus.name}: no train split for {config.lang}")
    sentences = [s.tokens for s in corpus.require("train", "trimming (it counts the training text)")]
    own_text = monolingual_path(config.corpus, config.lang) if config.corpus else None
    missing = own_text is not None and not own_text.is_file() and Path(config.corpus).is_dir()
    if missing:
        # A folder of <lang>.txt without this language (most MasakhaNER 2.0 languages have no
        # monolingual text here): its own text is then the training set alone, said aloud and
        # recorded in ndogo.json, so a sweep over many languages does not fail on the new ones.
        print(f"trim: no monolingual text for {config.lang!r} in {config.corpus} ({own_text.name} missing); "
              "counting its training text" + (" and the other languages' text" if config.other_langs else ""),
              file=sys.stderr)
    lines = monolingual_lines(config.corpus, config.lang) if config.corpus and not missing else []
    dropped = 0
    held_out = task.load(config.data, config.lang, ("dev", "test")).splits if config.exclude_eval else {}
    if lines and config.exclude_eval:
        from ndogo.data.leakage import corpora_beside, eval_sentences

        # this corpus's dev and test, and every other task's beside it (../shared/data's MasakhaNER, MasakhaPOS,
        # SIB-200, AfriSenti), are all kept out of the counts
        evaluated = [s.tokens for split in held_out.values() for s in split]
        evaluated += eval_sentences(corpora_beside(config.data or ""), config.lang)
        lines, dropped = drop_lines_containing(lines, evaluated)
    counts = count_tokens(tokenizer, sentences, lines, config.batch_size, config.show_progress)
    other_lines: list[str] = []
    if config.other_langs:
        if not config.corpus:
            raise ValueError("other_langs counts the other languages' text in --corpus; give --corpus (a folder "
                             "of <lang>.txt files)")
        if not Path(config.corpus).is_dir():
            raise ValueError(f"other_langs counts the other languages' text in a --corpus folder of <lang>.txt "
                             f"files; {config.corpus} is a single file")
        others = sorted(p for p in Path(config.corpus).glob("*.txt") if p.stem != config.lang)
        other_lines = [line for p in others for line in monolingual_lines(p.parent, p.stem)]
        if config.exclude_eval:
            other_lines, dropped_other = drop_lines_containing(other_lines, [s.tokens for split in held_out.values()
                                                                            for s in split])
            dropped += dropped_other
    other_counts = count_tokens(tokenizer, [], other_lines, config.batch_size, config.show_progress)
    chars = text_characters(tokenizer.backend_tokenizer, [" ".join(s) for s in sentences] + lines)
    plan = plan_vocab(tokenizer, counts, chars, config.min_count, config.keep, other_counts)
    sources = [corpus.sources["train"]] + ([str(own_text.resolve())] if own_text is not None and not missing else [])
    return TrimCount(plan, sources, len(lines), len(other_lines), dropped, str(own_text) if missing else None)


def trimmed_tokenizer(tokenizer: PreTrainedTokenizerBase, config: TrimConfig) -> PreTrainedTokenizerBase:
    """The tokenizer `trim` would save for this config, in memory (no model is read or written)."""
    from transformers import PreTrainedTokenizerFast

    plan = count_for_trim(tokenizer, config).plan
    spec = trimmed_tokenizer_spec(json.loads(tokenizer.backend_tokenizer.to_str()), plan)
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)))


def trim(run: str | Path, out: str | Path, config: TrimConfig) -> Path:
    """Trim a fine-tuned model's vocabulary to what `config.lang` uses; returns `out`.

    Example:
        trim("runs/minilm-hau", "runs/trim/minilm-hau",
             TrimConfig(lang="hau", data="../shared/data/masakhaner", corpus="../shared/data/monolingual"))
    """
    # a short name (`me5s`, `minilm`) trims the pretrained encoder: the `trim | finetune` recipe
    run, out = Path(resolve_model(run)), Path(out)
    if not run.is_dir():
        raise ModelError(f"{run}: not a local model directory (trimming rewrites its tokenizer files)")
    meta = read_meta(run)
    if meta.get("kind", "hf") != "hf":
        raise ModelError(f"{run}: trim-vocab needs a Hugging Face model (kind 'hf'), not kind {meta['kind']!r}; "
                         "trim first, then quantize or export")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out}: already exists and is not empty; choose a new output directory")
    tokenizer = load_tokenizer(run)
    counted = count_for_trim(tokenizer, config)
    plan, backend = counted.plan, tokenizer.backend_tokenizer

    model = load_saved(run).eval()
    rows = model.get_input_embeddings().num_embeddings
    # More rows than the tokenizer has ids is common (multilingual-e5 has 250,037 rows for 250,002
    # pieces: padding to a round size); those rows are never read and go with the trim. Fewer is an error.
    if rows < plan.vocab_before:
        raise ModelError(f"{run}: embedding rows ({rows}) are fewer than the tokenizer's vocabulary "
                         f"({plan.vocab_before}); cannot tell which row is which token")
    slice_vocab(model, plan.keep_ids)
    spec = trimmed_tokenizer_spec(json.loads(backend.to_str()), plan)

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (run / name).is_file():
            shutil.copy(run / name, out / name)
    remap_tokenizer_config(out / "tokenizer_config.json", plan.old_to_new)
    Tokenizer.from_str(json.dumps(spec)).save(str(out / "tokenizer.json"))
    if len(load_tokenizer(out)) != len(plan.keep_ids):
        raise ModelError(f"{out}: the saved tokenizer does not have the {len(plan.keep_ids)} kept tokens")

    write_meta(out, {**meta, "kind": "hf", "stage": "trim", "parent": str(run), "trim": {
        **{k: v for k, v in asdict(config).items() if k not in ("show_progress", "batch_size")},
        "sources": counted.sources, "monolingual_lines": counted.monolingual_lines,
        "other_lang_lines": counted.other_lang_lines, "dropped_eval_lines": counted.dropped_eval_lines,
        "monolingual_missing": counted.monolingual_missing,
        "vocab_before": plan.vocab_before, "vocab_after": len(plan.keep_ids),
        "counted": plan.counted, "special": plan.special, "alphabet": plan.alphabet, "fallback": FALLBACK,
    }})
    return out


def remap_tokenizer_config(path: Path, old_to_new: dict[int, int]) -> None:
    """Renumber `added_tokens_decoder` (id -> token) in tokenizer_config.json, if it has one."""
    if not path.is_file():
        return
    cfg = json.loads(path.read_text())
    if "added_tokens_decoder" in cfg:
        cfg["added_tokens_decoder"] = {str(old_to_new[int(k)]): v for k, v in cfg["added_tokens_decoder"].items()}
        path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
