"""How a tokenizer reads a language: the cheap facts that predict what compression will cost.

Three numbers per language and tokenizer, all computed on the corpus's words
without running a model:

* fertility: sub-words per word. A language the vocabulary serves badly is cut
  into many short pieces (Yorùbá's tone marks under minilm's English WordPiece),
  which leaves each piece less to say and the model more to learn.
* unseen sub-words: the share of test sub-words (by id) that never occur in the
  training text. Their embeddings were never updated in fine-tuning, and they
  are the rows that vocabulary trimming drops first.
* unknown words: the share of test words that contain the unknown token, i.e.
  characters the vocabulary does not have at all.
* re-split words (given a trimmed model): the share of test words that the
  trimmed tokenizer splits differently from its parent's, i.e. where trimming
  changed what the model reads.

They are the per-language facts of the atlas (docs/lab/results-log-2026-11-to-12.md §10) and the inputs
of its cost model; `ndogo data stats --tokenizer` prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _pieces(tokenizer: Any, sentences: Sequence[Sequence[str]], chunk: int = 512) -> list[list[list[int]]]:
    """Sub-word ids of every word of every sentence (no special tokens).

    Sentences go to the fast tokenizer in chunks (one Rust call each, not one per sentence):
    a corpus's facts took seconds a language that way, instead of minutes for the atlas.
    """
    out: list[list[list[int]]] = [[] for _ in sentences]
    todo = [i for i, words in enumerate(sentences) if words]
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        enc = tokenizer([list(sentences[i]) for i in part], is_split_into_words=True, add_special_tokens=False)
        for k, i in enumerate(part):
            per_word: list[list[int]] = [[] for _ in sentences[i]]
            ids = enc["input_ids"][k]
            for position, word in enumerate(enc.word_ids(k)):
                if word is not None:
                    per_word[word].append(ids[position])
            out[i] = per_word
    return out


def tokenizer_facts(tokenizer: Any, train: Sequence[Sequence[str]], test: Sequence[Sequence[str]]) -> dict[str, float]:
    """Fertility on train and test, and the share of test sub-words unseen in train."""
    train_pieces = _pieces(tokenizer, train)
    test_pieces = _pieces(tokenizer, test)
    seen = {i for sent in train_pieces for word in sent for i in word}
    test_ids = [i for sent in test_pieces for word in sent for i in word]
    words_train = sum(len(sent) for sent in train_pieces)
    words_test = sum(len(sent) for sent in test_pieces)
    return {
        "fertility_train": round(sum(len(w) for s in train_pieces for w in s) / max(words_train, 1), 4),
        "fertility_test": round(len(test_ids) / max(words_test, 1), 4),
        "unseen_subwords_test": round(sum(i not in seen for i in test_ids) / max(len(test_ids), 1), 4),
        # words the tokenizer cannot read at all (a script its vocabulary lacks: Ge'ez under an English WordPiece)
        "unknown_words_test": round(sum(tokenizer.unk_token_id in w for s in test_pieces for w in s)
                                    / max(words_test, 1), 4),
    }


def resplit_share(parent: Any, trimmed: Any, sentences: Sequence[Sequence[str]]) -> float:
    """Share of words the trimmed tokenizer cuts into other pieces than its parent (compared as strings)."""
    before = _pieces(parent, sentences)
    after = _pieces(trimmed, sentences)
    total = changed = 0
    for sent_a, sent_b in zip(before, after, strict=True):
        for a, b in zip(sent_a, sent_b, strict=True):
            total += 1
            changed += parent.convert_ids_to_tokens(a) != trimmed.convert_ids_to_tokens(b)
    return round(changed / max(total, 1), 4)
