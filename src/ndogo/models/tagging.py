"""From words to tags with any saved model: the one path evaluation, predict and augmentation share.

Sentences are windowed for the model (`windowing.py`), each word is tagged by its first
sub-word, and the tag's probability is kept (predict reports it as the entity's score).
"""

from __future__ import annotations

from tqdm.auto import tqdm

from ndogo.models.runner import Runner
from ndogo.models.windowing import encode_sentences, predict_words


def predict_tags(runner: Runner, sentences: list[list[str]], batch_size: int = 32,
                 show_progress: bool = False) -> tuple[list[list[str]], list[list[float]]]:
    """Predicted tags and their probabilities for each word of each sentence."""
    windows = encode_sentences(runner.tokenizer, sentences, runner.max_length)
    if show_progress:
        with tqdm(total=len(windows), desc="predict", unit="win") as bar:
            probs = predict_words(runner.forward, windows, [len(s) for s in sentences], runner.pad_id,
                                  batch_size, progress=bar.update)
    else:  # no bar at all: a disabled one is still built on every call (predict calls once per sentence)
        probs = predict_words(runner.forward, windows, [len(s) for s in sentences], runner.pad_id, batch_size)
    tags = [[runner.labels[i] for i in p.argmax(-1)] for p in probs]
    scores = [[float(x) for x in p.max(-1)] for p in probs]
    return tags, scores
