"""What a compression will cost on a language the atlas has not run: a small model of the atlas's rows.

For every method of a sweep, the F1 change against the baseline (test, in points) is fitted, over
the languages that have a row, as a linear function of cheap facts about each language: how much
training data it has (log of training sentences), how densely it is annotated (entities per 100
tokens), how the model's tokenizer reads it (sub-words per word, the share of test sub-words never
seen in training, the share of words it cannot read at all) and its script. With ten languages or
fewer and six facts, plain least squares would fit every point, so the fit is ridge regression on
standardised facts; the prediction is therefore pulled towards the method's mean change.

How sure it is, is measured, not assumed: leave-one-language-out, each language's change predicted
from the others, and the mean absolute error reported beside every prediction. With few languages
that error is large; it is printed as it is.

The facts must earn their place: the same leave-one-out error is measured for the plainest guess,
the mean change of the other languages. Where the facts do not beat it (on the 26-language atlas
they do not, for any method every language has), the method is predicted by that mean and the
answer says so. The choice between the two is made on the atlas's own languages, never on the new
one. Choosing by the very error one then prints makes that error optimistic (the lower of two noisy
errors is biased low), so the error printed beside a prediction is measured outside the choice: a
nested leave-one-language-out, in which each held-out language is predicted by whichever predictor
the *other* languages' own leave-one-out chose. Both predictors' plain errors are printed beside it.

A prediction never leaves the range the atlas measured for the method: a linear fit on a handful of
languages can predict a gain where every language lost (isiZulu, prune-30: +2.53 where every
language measured lost 0.13-6.30). It is clipped to the nearest measured change, and the answer
says by how much the fit went beyond it. The nested error is measured with the same clipping.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ndogo.experiments.store import base_lang, corpus_name
from ndogo.report.summary import BASELINE, summarize

FEATURES = ("log_train_sentences", "entities_per_100_tokens", "fertility_test", "unseen_subwords_test",
            "unknown_words_test", "latin_script")
RIDGE = 1.0
# The smallest spread of a fact that counts as a difference between languages. Standardising by a
# spread below it (unknown words: 0.0001 on yor, 0 elsewhere) would turn a new language's tiny value
# into tens of standard deviations and the prediction into hundreds of points.
MIN_SCALE = {"log_train_sentences": 0.1, "entities_per_100_tokens": 0.5, "fertility_test": 0.05,
             "unseen_subwords_test": 0.005, "unknown_words_test": 0.01, "latin_script": 0.5}
# A new language further than this from the atlas's languages (in those spreads) is extrapolated:
# its facts are clipped here and the answer says so.
MAX_Z = 2.0
NON_LATIN = {"amh": "Ge'ez", "zh": "Han"}


FACTS_VERSION = 1  # bump when language_facts computes anything differently: cached facts are then recomputed


def language_facts(data: str | Path, lang: str, tokenizer: Any, cache: bool = True) -> dict[str, float]:
    """The facts of one language of a local corpus, as the cost model reads them.

    Reading a corpus and tokenizing it takes seconds a language, and a prediction reads every
    atlas language (26, for each model asked about): the facts are cached under ndogo's cache
    folder, keyed by the corpus files (name, size, modification time) and the tokenizer, so the
    second prediction reads nothing it read before.
    """
    import hashlib
    import json

    from ndogo.data.corpus import lang_dir
    from ndogo.models.me5s import cache_root

    folder = lang_dir(Path(data), lang)
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())
    key = json.dumps([FACTS_VERSION, str(folder.resolve()), files, getattr(tokenizer, "name_or_path", ""),
                      len(tokenizer)], default=str)
    path = cache_root() / "facts" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
    if cache:
        try:
            return {k: float(v) for k, v in json.loads(path.read_text())["facts"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # absent or damaged: computed again below
    facts = _compute_facts(data, lang, tokenizer)
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"key": json.loads(key), "facts": facts}))
            tmp.replace(path)
        except OSError:
            pass  # a read-only cache only costs the time
    return facts


def _compute_facts(data: str | Path, lang: str, tokenizer: Any) -> dict[str, float]:
    """The facts of any task's corpus: its reader's sentences or texts, their words as the tokenizer reads
    them; entity density is NER's alone (0 for a corpus without entities, which then tells no language
    apart and weighs nothing)."""
    from ndogo.data.stats import split_stats
    from ndogo.data.tokenization import tokenizer_facts
    from ndogo.report.facts import script_of
    from ndogo.tasks import resolve_task

    task = resolve_task(None, Path(data), lang)
    corpus = task.load(str(data), lang, ("train", "test"))
    train = corpus.require("train", "the cost model (it counts the training data)")
    test = corpus.require("test", "the cost model")
    if task.output == "entities":
        stats = split_stats(train)
    else:
        stats = {"sentences": len(train), "tokens": sum(len(s.tokens) for s in train), "entities": 0}
    facts = tokenizer_facts(tokenizer, [s.tokens for s in train], [s.tokens for s in test])
    latin = lang not in NON_LATIN and script_of(lang) == "Latin"  # SIB-200's codes carry their script
    return {"log_train_sentences": math.log(max(stats["sentences"], 1)),
            "entities_per_100_tokens": 100 * stats["entities"] / max(stats["tokens"], 1),
            "fertility_test": facts["fertility_test"], "unseen_subwords_test": facts["unseen_subwords_test"],
            "unknown_words_test": facts["unknown_words_test"], "latin_script": float(latin)}


def find_corpus(rows: list[dict[str, Any]], label: str, near: Path | None = None,
                fallback: Path | None = None) -> Path | None:
    """The local corpus root a known language's rows were measured on, or None.

    Committed rows name the folder of the machine that ran them. When it is absent here, the corpus
    of the same name beside `near` (the new language's root) is used, and failing that `near` itself
    (a copy of one language, as the hidden-language check made, holds the same text). Rows that name
    no corpus (written before rows carried one) use `fallback`.
    """
    lang = base_lang(label)
    recorded = next((r.get("data") for r in rows if r["lang"] == label and r.get("data")), None)
    candidates = [Path(recorded)] if recorded else [fallback] if fallback is not None else []
    if recorded and near is not None:
        sibling = near.parent / corpus_name(recorded)
        candidates.append(sibling if sibling.is_dir() else near)
    return next((root for root in candidates if root.is_dir() and (root / lang).is_dir()), None)


def _design(facts: list[dict[str, float]], mean: np.ndarray | None = None,
            scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.array([[f[k] for k in FEATURES] for f in facts], dtype=float)
    if mean is None:
        mean, scale = _spread(facts)
    return np.clip((x - mean) / scale, -MAX_Z, MAX_Z), mean, scale


def _spread(facts: list[dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of each fact over the known languages, the spread floored at MIN_SCALE."""
    x = np.array([[f[k] for k in FEATURES] for f in facts], dtype=float)
    return x.mean(0), np.maximum(x.std(0), np.array([MIN_SCALE[k] for k in FEATURES]))


def outside_range(facts: list[dict[str, float]], new: dict[str, float]) -> list[str]:
    """The facts in which `new` lies further than MAX_Z spreads from the known languages' mean."""
    mean, scale = _spread(facts)
    z = (np.array([new[k] for k in FEATURES]) - mean) / scale
    return [k for k, v in zip(FEATURES, z, strict=True) if abs(v) > MAX_Z]


def ridge_fit(facts: list[dict[str, float]], y: list[float], alpha: float = RIDGE) -> dict[str, Any]:
    """Ridge regression of `y` on standardised facts (intercept unpenalised)."""
    x, mean, scale = _design(facts)
    target = np.array(y, dtype=float)
    intercept = target.mean()
    a = x.T @ x + alpha * np.eye(x.shape[1])
    w = np.linalg.solve(a, x.T @ (target - intercept))
    return {"w": w, "b": intercept, "mean": mean, "scale": scale}


def ridge_predict(model: dict[str, Any], facts: dict[str, float]) -> float:
    x, _, _ = _design([facts], model["mean"], model["scale"])
    return float(x[0] @ model["w"] + model["b"])


@dataclass
class CostPrediction:
    """Predicted F1 change of one method on a new language, with errors measured leave-one-language-out."""

    recipe: str
    recipe_spec: str
    predicted_delta: float  # test F1 points against the baseline, clipped to the measured range
    loo_mae: float | None  # the error of the whole procedure (choice included): nested leave-one-language-out
    languages: list[str]
    size_x: float | None  # mean over the atlas's languages: size does not depend on the language much
    outside: list[str] = dataclasses.field(default_factory=list)  # facts beyond the atlas's range (clipped)
    observed: tuple[float, float] | None = None  # the lowest and highest change the atlas measured
    mean_loo_mae: float | None = None  # the other languages' mean change, the plainest guess: its error
    predictor: str = "facts"  # "facts" (the ridge fit) or "mean" (where the facts did not beat the mean)
    facts_loo_mae: float | None = None  # the ridge fit's own leave-one-out error, whichever was chosen
    unclipped: float | None = None  # the predictor's own value where it lay outside the measured range

    @property
    def beyond_measured(self) -> bool:
        """True when the predictor's own value lay outside every change the atlas measured for this method."""
        return self.unclipped is not None

    @property
    def beyond_by(self) -> float:
        """How far (points) the predictor's own value lay outside the measured range; 0 inside it."""
        return 0.0 if self.unclipped is None else abs(self.unclipped - self.predicted_delta)


def _clip(value: float, y: list[float]) -> float:
    return min(max(value, min(y)), max(y))


def _predict(kind: str, facts: list[dict[str, float]], y: list[float], new: dict[str, float]) -> float:
    """One predictor fitted on (facts, y), its value for `new` clipped to the range of y."""
    if kind == "mean":
        return float(np.mean(y))
    return _clip(ridge_predict(ridge_fit(facts, y), new), y)


def _loo(kind: str, facts: list[dict[str, float]], y: list[float]) -> float | None:
    """Mean absolute leave-one-language-out error of one predictor (None: fewer than 3 languages)."""
    if len(y) < 3:
        return None
    errors = [abs(_predict(kind, facts[:i] + facts[i + 1:], y[:i] + y[i + 1:], facts[i]) - y[i])
              for i in range(len(y))]
    return float(np.mean(errors))


def _choose(facts: list[dict[str, float]], y: list[float]) -> str:
    """The rule, fixed before any check: the facts predict only where they beat the mean leave-one-out."""
    f, m = _loo("facts", facts, y), _loo("mean", facts, y)
    return "facts" if f is not None and m is not None and f <= m else "mean"


def _nested(facts: list[dict[str, float]], y: list[float]) -> float | None:
    """The error of choose-then-predict, each held-out language predicted by the rest's own choice."""
    if len(y) < 4:  # the rest must hold 3 languages for its own leave-one-out
        return None
    errors = []
    for i in range(len(y)):
        rest_f, rest_y = facts[:i] + facts[i + 1:], y[:i] + y[i + 1:]
        errors.append(abs(_predict(_choose(rest_f, rest_y), rest_f, rest_y, facts[i]) - y[i]))
    return float(np.mean(errors))


def predict_costs(rows: list[dict[str, Any]], facts: dict[str, dict[str, float]], new: dict[str, float],
                  model: str | None = None) -> list[CostPrediction]:
    """For each method with rows on at least three languages, its predicted change on the `new` language."""
    summaries = [s for s in summarize(rows) if model is None or s.model == model]
    out = []
    for recipe in dict.fromkeys(s.recipe for s in summaries if s.recipe != BASELINE):
        known = [s for s in summaries if s.recipe == recipe and s.delta is not None and s.lang in facts]
        if len(known) < 3:
            continue
        langs = [s.lang for s in known]
        y = [s.delta for s in known]
        xs = [facts[lang] for lang in langs]
        predictor = _choose(xs, y)
        raw = float(np.mean(y)) if predictor == "mean" else ridge_predict(ridge_fit(xs, y), new)
        clipped = _clip(raw, y)
        sizes = [s.size_x for s in known if s.size_x]
        out.append(CostPrediction(recipe, known[0].recipe_spec, clipped, _nested(xs, y), langs,
                                  float(np.mean(sizes)) if sizes else None, outside_range(xs, new),
                                  (min(y), max(y)), _loo("mean", xs, y), predictor, _loo("facts", xs, y),
                                  None if clipped == raw else raw))
    return out


def _err(value: float | None) -> str:
    return f"± {value:.2f}" if value is not None else "± ?"


def format_predictions(lang: str, predictions: list[CostPrediction], budget: float, model: str | None = None,
                       label: str = "F1") -> str:
    """Lines for people: every method's predicted change ± its error, both predictors' errors, what fits the budget
    (in points of `label`, the rows' headline metric: F1 for NER, accuracy for POS and topic...)."""
    if not predictions:
        return (f"{lang}: no sweep rows, and too few languages in the atlas (3 per method are needed) "
                "to predict what compression costs it")
    known = sorted({lg for p in predictions for lg in p.languages})
    counts = {len(p.languages) for p in predictions}
    each = "" if len(counts) == 1 else ", each method from the languages it has rows for (n)"
    on = f" on {model}" if model else ""
    lines = [f"{lang}: no sweep rows; predicted{on} from the atlas's {len(known)} languages{each}.",
             "  Two predictors per method: 'facts' (ridge regression on training size, entity density,\n"
             "  tokenizer fertility, unseen and unknown sub-words, script) and 'mean' (the other languages'\n"
             "  mean change); the one with the lower leave-one-language-out error predicts. '±' is the error\n"
             "  of that whole procedure, measured outside its choice (nested leave-one-language-out); both\n"
             f"  predictors' own errors follow. Test Δ{label} in points, clipped to the range the atlas measured."]
    outside = list(dict.fromkeys(f for p in predictions for f in p.outside))
    if outside:
        lines.append(f"  {lang} lies outside the atlas's languages in {', '.join(outside)}: those facts are "
                     f"clipped to {MAX_Z:g} spreads, so this extrapolates and the error below understates it")
    lines.append(f"  {'method':<22} {'Δ' + label:>6} {'±':<7} {'uses':<5} {'facts':>7} {'mean':>7}"
                 f"{'  n' if each else ''}  size, measured range")
    for p in sorted(predictions, key=lambda p: -(p.size_x or 1.0)):
        size = f"{p.size_x:.2f}× smaller" if p.size_x else ""
        seen = f"  (measured {p.observed[0]:+.2f} … {p.observed[1]:+.2f})" if p.observed else ""
        beyond = (f"; the {p.predictor} predictor said {p.unclipped:+.2f}, {p.beyond_by:.2f} beyond anything "
                  "measured: clipped" if p.beyond_measured else "")
        n = f" {len(p.languages):>2}" if each else ""
        lines.append(f"  {p.recipe:<22} {p.predicted_delta:+6.2f} {_err(p.loo_mae):<7} {p.predictor:<5} "
                     f"{_err(p.facts_loo_mae):>7} {_err(p.mean_loo_mae):>7}{n}  {size}{seen}{beyond}")
    fits = [p for p in predictions if -p.predicted_delta + (p.loo_mae or 0.0) <= budget]
    if fits:
        best = max(fits, key=lambda p: p.size_x or 1.0)
        lines.append(f"  within {budget:g} point(s) even at its error: {best.recipe} ({best.recipe_spec}); "
                     "a prediction, not a measurement: run it on your dev set before shipping")
    else:
        lines.append(f"  no method is predicted within {budget:g} point(s) once its error is counted")
    return "\n".join(lines)


# The columns of docs/bench/cost-model-loo.csv (`ndogo recommend ROWS --check-cost-model --csv`)
CHECK_COLUMNS = ("model", "fitted_on", "recipe", "languages", "facts_loo_mae", "mean_loo_mae", "predictor",
                 "nested_mae")


def _fits(sources: list[Path], models: list[set[str]], model: str | None) -> list[tuple[str, list[Path]]]:
    """(model, sources) of every fit: each model on the first source holding its rows, then on all that hold them."""
    order = list(dict.fromkeys(m for found in models for m in sorted(found)))
    fits = []
    for name in order if model is None else [model]:
        holders = [s for s, found in zip(sources, models, strict=True) if name in found]
        fits += [(name, holders[:1])] + ([(name, holders)] if len(holders) > 1 else [])
    return fits


def check_cost_model(sources: list[str | Path], near: Path | None = None, fallback: Path | None = None,
                     model: str | None = None) -> list[dict[str, Any]]:
    """The cost model's own check on rows: for each method, both predictors' leave-one-language-out errors.

    For every method (and model) with rows on at least three languages: the ridge fit's error
    and the other languages' mean's, which one the rule picks, and the error of that whole
    procedure measured outside its choice (nested leave-one-language-out: each held-out language
    predicted by the predictor the other languages' own check picked). The nested error is the one
    `ndogo recommend` prints beside a prediction; the gap between it and the lower plain error is
    what choosing by the same error would have hidden. Each model is fitted on the first source
    holding its rows, then, where more sources hold them (a second corpus's atlas), on all of
    them together, a language on both corpora counting twice (`wol`, `wol@masakhaner2`). Each
    language's facts are read from the corpus its rows name, or beside `near`, or at `fallback`.
    """
    from ndogo.experiments.store import load_rows, load_sources
    from ndogo.models.loading import load_tokenizer

    paths = [Path(s) for s in sources]
    models = [{r["model"] for r in load_rows(p)} for p in paths]
    if model is not None and not any(model in found for found in models):
        raise ValueError(f"--model {model}: no finished rows of it in {', '.join(map(str, paths))}")
    lines = []
    for name, fit in _fits(paths, models, model):
        rows = [r for r in load_sources(fit) if r.get("model") == name]
        tokenizer = load_tokenizer(name)
        facts = {}
        for lang in sorted({r["lang"] for r in rows}):
            root = find_corpus(rows, lang, near=near, fallback=fallback)
            if root is None:
                recorded = next((r.get("data") for r in rows if r["lang"] == lang and r.get("data")), None)
                raise ValueError(f"{lang}: its rows in {' + '.join(p.name for p in fit)} name no local corpus that "
                                 f"holds it{f' ({recorded})' if recorded else ''}; give a corpus root beside it with "
                                 "--data, or the one rows without a `data` column were measured on with --rows-data")
            facts[lang] = language_facts(root, base_lang(lang), tokenizer)
        stand_in = next(iter(facts.values()))  # the new language's facts enter none of these errors
        lines += [{"model": name, "fitted_on": " + ".join(p.name for p in fit), "recipe": c.recipe,
                   "languages": len(c.languages), "facts_loo_mae": _round2(c.facts_loo_mae),
                   "mean_loo_mae": _round2(c.mean_loo_mae), "predictor": c.predictor, "nested_mae": _round2(c.loo_mae)}
                  for c in predict_costs(rows, facts, stand_in, name)]
    return lines


def _round2(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def write_check(lines: list[dict[str, Any]], path: str | Path) -> Path:
    """The check as docs/bench/cost-model-loo.csv holds it (its staleness test compares the bytes)."""
    import csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CHECK_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
    return path


def format_check(lines: list[dict[str, Any]]) -> str:
    """The check as a markdown table."""
    out = ["| model | fitted on | method | languages | facts' LOO error | mean's LOO error | picks "
           "| error outside the pick |", "|---|---|---|---:|---:|---:|---|---:|"]
    out += [f"| {x['model']} | {x['fitted_on']} | {x['recipe']} | {x['languages']} | {x['facts_loo_mae']} | "
            f"{x['mean_loo_mae']} | {x['predictor']} | {x['nested_mae']} |" for x in lines]
    return "\n".join(out) + "\n"
