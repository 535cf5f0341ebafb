"""`ndogo recommend`: the smallest (or fastest) model a sweep found within a budget of the task's metric.

This answers the user's real question, "what can I ship for my language that
loses at most X points?", from rows already measured: no model is run.

The choice is made on dev F1 by default (`split="dev"`): which recipe stays
within the budget is read from dev, and test F1 is reported beside it, never
used to choose. `split="test"` exists for rows that carry no dev F1 (sweeps
from before it was recorded) and says so wherever it is shown.

Several languages (`--lang hau,swa,yor`, `recommend_many_rows`) get ONE recipe for all of them (issue
#39): its mean loss over the languages within the budget, each language within `--max-worst-drop`, and
`--min-smaller` / `--min-faster` (times smaller or faster than the baseline) held in every language.

"F1" is the rows' headline metric: entity F1 for NER, the task's own for other tasks (accuracy for
POS and topic, macro-F1 for sentiment), so `--max-f1-drop 1` is one point of that metric. Rows of
two metrics are never ranked together (a point of F1 is no point of accuracy).
"""

from __future__ import annotations

import math
import shlex
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ndogo.experiments.row import DEFAULT_METRIC, check_row_values, metric_label, metric_of, one_metric
from ndogo.experiments.store import base_lang, corpus_name, load_rows, load_sources
from ndogo.report.summary import BASELINE, Summary, summarize

OPTIMIZE = {"size": "size_bytes", "latency": "latency_ms_b1"}


SPLITS = ("dev", "test")

# A baseline that learned little (isiZulu after one epoch: dev F1 32) compresses into a model that knows
# little, and every "within 1 point" then measures against a poor yardstick: `recommend` says so. The
# yardstick is the atlas's baseline of the same model, language and corpus, where the committed atlas
# has one (more than WEAK_MARGIN points below it is weak: seeds differ by 1-2, an undertrained model by
# tens), and otherwise a floor: under WEAK_FLOOR points of F1 no MasakhaNER language's atlas baseline is
# weak by the margin, but a model there misses most entities.
ATLAS = Path(__file__).resolve().parents[3] / "docs" / "bench"  # a source checkout's; absent in a wheel
ATLAS_FILES = ("atlas-minilm.csv", "atlas-me5s.csv", "atlas-mnr2.csv")
WEAK_MARGIN = 10.0  # F1 points below the atlas's baseline
WEAK_FLOOR = 50.0  # F1 points, where the atlas has no baseline to compare with


def recommend(directory: str | Path, lang: str, max_f1_drop: float, optimize: str = "size",
              model: str | None = None, split: str = "dev", also: Sequence[str | Path] = (),
              max_worst_drop: float | None = None, min_smaller: float | None = None,
              min_faster: float | None = None) -> dict[str, Any]:
    """The best recipe for `lang` whose mean `split` score is at most `max_f1_drop` points below the baseline's.

    The score is the rows' headline metric (F1 for NER, accuracy for POS and topic...): the budget is in
    its points, and rows of two metrics are refused.

    `also` adds the rows of other sweeps or CSVs (more seeds, another model, another corpus: a language
    measured on a second corpus is chosen for as `lang@corpus`, e.g. wol@masakhaner2).

    `lang` may name several languages, comma-separated ("hau,swa,yor"): then one recipe is chosen for all
    of them (`recommend_many_rows`). `min_smaller` and `min_faster` keep only recipes at least that many
    times smaller on disk (faster at batch 1) than the same model's baseline; `max_worst_drop` bounds
    each language's loss where the budget bounds their mean.
    """
    rows = load_sources([directory, *also])
    langs = [x.strip() for x in lang.split(",") if x.strip()]
    limits = {"max_worst_drop": max_worst_drop, "min_smaller": min_smaller, "min_faster": min_faster}
    if len(langs) > 1:
        return recommend_many_rows(rows, str(directory), langs, max_f1_drop, optimize, model, split, **limits)
    return recommend_rows(rows, str(directory), langs[0] if langs else lang, max_f1_drop, optimize, model, split,
                          **limits)


def _check_limits(max_f1_drop: float, optimize: str, split: str, max_worst_drop: float | None,
                  min_smaller: float | None, min_faster: float | None) -> None:
    if split not in SPLITS:
        raise ValueError(f"--split must be dev or test, got {split!r}")
    if not math.isfinite(max_f1_drop):
        raise ValueError(f"--max-f1-drop must be a finite number of points of the rows' metric, got {max_f1_drop}")
    if optimize not in OPTIMIZE:
        raise ValueError(f"--optimize must be one of {', '.join(OPTIMIZE)}, got {optimize!r}")
    if max_f1_drop < 0:
        raise ValueError(f"--max-f1-drop is a loss in points of the rows' metric (F1 for NER) and cannot be "
                         f"negative, got {max_f1_drop}")
    if max_worst_drop is not None and not (math.isfinite(max_worst_drop) and max_worst_drop >= 0):
        raise ValueError(f"--max-worst-drop is a loss in points of the rows' metric, a finite number of at least 0; "
                         f"got {max_worst_drop}")
    for flag, x in (("--min-smaller", min_smaller), ("--min-faster", min_faster)):
        if x is not None and not (math.isfinite(x) and x > 0):
            raise ValueError(f"{flag} is a ratio to the baseline (2: half its size, twice its speed), a positive "
                             f"number; got {x}")


def _done_rows(rows: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    for row in rows:  # the readers check every row; rows handed in by code are checked here
        try:
            check_row_values(row)
        except ValueError as err:
            raise ValueError(f"{where}: cell {row.get('cell_id')}: {err}") from None
    return [r for r in rows if r.get("status") == "done"]


def _language(rows: list[dict[str, Any]], summaries: list[Summary], where: str, lang: str, model: str | None,
              split: str, metric: str, key: str) -> tuple[str, list[Summary]]:
    """`lang` as the rows name it, and its summaries that can be chosen from (see `recommend_rows`)."""
    directory, label = where, metric_label(metric)
    lang = corpus_label(rows, lang, directory)
    found = [s for s in summaries if s.lang == lang and (model is None or s.model == model)]
    if not found:
        langs = ", ".join(sorted({r["lang"] for r in rows})) or "none (no cell of this sweep has finished)"
        raise ValueError(f"{directory}: no finished cells for language {lang!r}"
                         + (f" and model {model!r}" if model else "") + f"; languages here: {langs}")
    if all(getattr(s, key) is None for s in found):
        raise ValueError(f"{directory}: no {key} measured for {lang} (was the sweep run with speed = false?)")
    if not any(s.recipe == BASELINE for s in found):
        raise ValueError(f"{directory}: no baseline for {lang} to measure the {label} drop against")
    if split == "dev" and not any(s.dev_delta is not None for s in found):
        raise ValueError(f"{directory}: the rows for {lang} carry no dev {label} (measured before sweeps recorded "
                         "it); rerun the sweep's evaluation, or choose on test with --split test and say so")

    # A baseline that found no entity (F1 0 on the choosing split) is no model to ship, nor to measure
    # compressions against (each would be "free"): leave its model out, say so when nothing is left.
    empty = {b.model for b in found if b.recipe == BASELINE
             and (b.dev_f1_mean if split == "dev" else b.f1_mean) == 0.0}
    if empty:
        found = [s for s in found if s.model not in empty]
        if not found:
            what = "found no entity" if metric == DEFAULT_METRIC else "got nothing right"
            raise ValueError(f"{directory}: the baseline of {', '.join(sorted(empty))} {what} in {lang}'s "
                             f"{split} set ({label} 0.00), so there is nothing to ship; use a model that reads "
                             f"{lang} (a tokenizer that maps its words to the unknown token learns nothing)")
    return lang, found


@dataclass
class _Pick:
    """One recipe of one model in every language asked for: a summary each, in the order asked."""

    model: str
    recipe: str
    langs: list[Summary]
    split: str

    def losses(self, split: str | None = None) -> list[float] | None:
        """Points lost against the same seed's baseline per language (positive: worse); None where one lacks it."""
        deltas = [s.dev_delta if (split or self.split) == "dev" else s.delta for s in self.langs]
        return None if any(d is None for d in deltas) else [-d for d in deltas]  # type: ignore[operator]

    def mean_loss(self, split: str | None = None) -> float | None:
        losses = self.losses(split)
        return None if losses is None else statistics.fmean(losses)

    def worst(self, split: str | None = None) -> tuple[str, float] | None:
        losses = self.losses(split)
        if losses is None:
            return None
        i = max(range(len(losses)), key=losses.__getitem__)
        return self.langs[i].lang, losses[i]

    def least(self, attr: str) -> float | None:
        """The smallest over languages of a ratio (size_x, speedup_b1): what "at least X× in every language" reads."""
        values = [getattr(s, attr) for s in self.langs]
        return None if any(v is None for v in values) else min(values)

    def mean(self, attr: str) -> float | None:
        values = [getattr(s, attr) for s in self.langs]
        return None if any(v is None for v in values) else statistics.fmean(values)


Stage = tuple[str, str, Callable[[_Pick], bool], Callable[[_Pick], float]]


def _stages(max_f1_drop: float, split: str, label: str, optimize: str, max_worst_drop: float | None,
            min_smaller: float | None, min_faster: float | None, several: bool) -> list[Stage]:
    """The constraints in the order they are applied: (option, what it asks, keeps, closeness: smaller is closer).

    The budget comes first, so that when a size or speed floor removes the last candidates the closest one
    named is within the budget: the user learns what the budget buys, the frontier.
    """
    every = " in every language" if several else ""
    stages: list[Stage] = [(
        f"--max-f1-drop {max_f1_drop:g}",
        f"a loss within {max_f1_drop:g} {split} {label} point(s){' on average' if several else ''}",
        lambda p: p.mean_loss() <= max_f1_drop + 1e-9, lambda p: p.mean_loss())]  # type: ignore[operator]
    if max_worst_drop is not None:
        stages.append((f"--max-worst-drop {max_worst_drop:g}",
                       f"a loss within {max_worst_drop:g} {split} {label} point(s){every}",
                       lambda p: p.worst()[1] <= max_worst_drop + 1e-9, lambda p: p.worst()[1]))  # type: ignore[index]
    for flag, floor, attr, what in (("--min-smaller", min_smaller, "size_x", "smaller on disk"),
                                    ("--min-faster", min_faster, "speedup_b1", "faster at batch 1")):
        if floor is not None:  # a candidate that lacks the measurement is not eligible
            stages.append((f"{flag} {floor:g}", f"at least {floor:g}× {what} than the baseline{every}",
                           lambda p, a=attr, x=floor: (p.least(a) or 0.0) >= x - 1e-9,
                           lambda p, a=attr: -(p.least(a) or 0.0)))
    key = OPTIMIZE[optimize]
    stages.append((f"--optimize {optimize}", f"{key} measured{every}", lambda p: p.mean(key) is not None,
                   lambda p: 0.0))
    return stages


def _describe(p: _Pick, label: str, several: bool) -> str:
    """A candidate in a few words: its loss and its size and speed against the baseline."""
    mean, worst = p.mean_loss(), p.worst()
    loss = f"{_loses(mean)} {p.split} {label} point(s)" if mean is not None else f"no {p.split} {label}"
    if several and worst is not None:
        loss += f" on average, {worst[1]:.2f} in {worst[0]}"
    size, speed = p.least("size_x"), p.least("speedup_b1")
    cost = (f"{size:.2f}× smaller" if size is not None else "size not measured") + ", " + \
        (f"{speed:.2f}× faster" if speed is not None else "latency not measured")
    return f"{p.model}/{p.recipe} ({loss}; {cost}{' in its least language' if several else ''})"


def _apply(picks: list[_Pick], stages: list[Stage], where: str, names: str, label: str, split: str,
           several: bool) -> list[_Pick]:
    """The candidates every constraint keeps; else an error naming the one that removed the last and the closest."""
    if not picks:
        raise ValueError(f"{where}: nothing for {names} has a {split} {label} to measure against its baseline")
    left, applied = picks, []
    for flag, need, keep, closeness in stages:
        kept = [p for p in left if keep(p)]
        if not kept:
            closest = min(left, key=closeness)
            after = f" left by {', '.join(applied)}" if applied else ""
            floors = [(f, n, k) for f, n, k, _ in stages if f.startswith("--min-")]
            beyond = ""
            if flag.startswith("--min-"):  # the other side of the frontier: what those floors cost in loss
                meets = [p for p in picks if all(k(p) for _, _, k in floors)]
                asked = " and ".join(n.split(" than ")[0] for _, n, _ in floors)
                beyond = (f"; of those {asked}, the one losing least is "
                          f"{_describe(min(meets, key=lambda p: p.mean_loss()), label, several)}" if meets
                          else f"; no candidate is {asked}")
            raise ValueError(f"{where}: nothing for {names} meets every constraint: {flag} ({need}) removed the "
                             f"last {len(left)} candidate(s){after}; the closest is "
                             f"{_describe(closest, label, several)}{beyond}")
        left, applied = kept, [*applied, flag]
    return left


def recommend_rows(rows: list[dict[str, Any]], where: str, lang: str, max_f1_drop: float, optimize: str = "size",
                   model: str | None = None, split: str = "dev", max_worst_drop: float | None = None,
                   min_smaller: float | None = None, min_faster: float | None = None) -> dict[str, Any]:
    """`recommend` on rows already read (the report chooses for every language from one read)."""
    _check_limits(max_f1_drop, optimize, split, max_worst_drop, min_smaller, min_faster)
    directory = where
    rows = _done_rows(rows, directory)
    metric = one_metric(rows, directory)
    label = metric_label(metric)
    key = OPTIMIZE[optimize]
    lang, found = _language(rows, summarize(rows), directory, lang, model, split, metric, key)

    picks = [_Pick(s.model, s.recipe, [s], split) for s in found]
    stages = _stages(max_f1_drop, split, label, optimize, max_worst_drop, min_smaller, min_faster, several=False)
    within = [p.langs[0] for p in _apply([p for p in picks if p.mean_loss() is not None], stages, directory, lang,
                                          label, split, several=False)]
    best = min(within, key=lambda s: (getattr(s, key), -s.f1_mean))
    base = next(s for s in found if s.model == best.model and s.recipe == BASELINE)
    limits = {k: v for k, v in (("max_worst_drop", max_worst_drop), ("min_smaller", min_smaller),
                                ("min_faster", min_faster)) if v is not None}  # (keys only where given)
    return {
        "lang": lang, "max_f1_drop": max_f1_drop, "optimize": optimize, "model": best.model,
        # the headline metric every "f1" key below holds (entity F1 for NER; accuracy for POS...)
        "metric": metric, "metric_label": label,
        "recipe": best.recipe, "recipe_spec": best.recipe_spec, "start": best.start, "seeds": best.seeds,
        # the baseline each drop is measured against: the mean of its seeds the pick has (all of them where the
        # pick's seeds are not among them), so that baseline - pick = drop as printed side by side
        "f1": round(best.f1_mean, 4), "f1_std": round(best.f1_std, 4),
        "baseline_f1": round(best.f1_mean - (best.delta or 0.0) / 100, 4), "baseline_seeds": base.seeds,
        "f1_drop_points": round(-(best.delta or 0.0), 2) + 0.0, "size_bytes": best.size_bytes,
        "baseline_size_bytes": base.size_bytes, "size_x": _r(best.size_x),
        "latency_ms_b1": best.latency_ms_b1, "baseline_latency_ms_b1": base.latency_ms_b1,
        "speedup_b1": _r(best.speedup_b1), "sparsity": best.sparsity, "path": best.paths[0],
        "candidates": len(found), "within_budget": len(within), "chosen_on": split,
        "dev_f1": round(best.dev_f1_mean, 4) if best.dev_f1_mean is not None else None,
        "baseline_dev_f1": round(best.dev_f1_mean - best.dev_delta / 100, 4)
        if best.dev_f1_mean is not None and best.dev_delta is not None else None,
        "dev_f1_drop_points": round(-best.dev_delta, 2) + 0.0 if best.dev_delta is not None else None,
        # each seed against its own seed's baseline, then the mean and spread over seeds
        "f1_drop_std": round(best.delta_std, 2), "dev_f1_drop_std": round(best.dev_delta_std, 2),
        # the choice is made on one split; the other says whether it agrees about the budget
        "other_split_within_budget": _within(best.delta if split == "dev" else best.dev_delta, max_f1_drop),
        "command": reproduce(best, lang),
        "baseline_warning": baseline_warning(base, split),
        **limits,
    }


def recommend_many_rows(rows: list[dict[str, Any]], where: str, langs: Sequence[str], max_f1_drop: float,
                        optimize: str = "size", model: str | None = None, split: str = "dev",
                        max_worst_drop: float | None = None, min_smaller: float | None = None,
                        min_faster: float | None = None) -> dict[str, Any]:
    """The one recipe (model and recipe name) to ship for every language of `langs` (issue #39).

    A recipe is a candidate only where it has finished rows, and its model a baseline, in every language.
    Per language its numbers are the one-language ones (the mean over seeds, each seed's Δ paired with the
    same seed's baseline). It is within budget when the mean over the languages of their `split` losses is
    at most `max_f1_drop` and, with `max_worst_drop`, no language loses more than that; `min_smaller` and
    `min_faster` ask for at least that ratio to the baseline in every language (a language lacking the
    measurement rules the recipe out).

    Among those within, `optimize` picks the smallest mean over languages of size_bytes ("size") or
    latency_ms_b1 ("latency"), as for one language: what is shipped are bytes and milliseconds, and a
    large model compressed many times over can still be bigger than a small one compressed a little (the
    ratios are reported beside). Ties go to the smaller mean loss.

    The other split is reported, never used to choose, and where it breaks the budget or the worst-language
    limit the result says so (`other_split_within_budget`, `other_split_over_worst`).
    """
    _check_limits(max_f1_drop, optimize, split, max_worst_drop, min_smaller, min_faster)
    directory = where
    rows = _done_rows(rows, directory)
    metric = one_metric(rows, directory)
    label = metric_label(metric)
    key = OPTIMIZE[optimize]
    summaries = summarize(rows)
    found: dict[str, list[Summary]] = {}
    for asked in langs:
        lang, mine = _language(rows, summaries, directory, asked, model, split, metric, key)
        if lang in found:
            raise ValueError(f"--lang: {lang} is named twice")
        found[lang] = mine
    names = ", ".join(found)

    by_recipe: dict[tuple[str, str], dict[str, Summary]] = {}
    for lang, mine in found.items():
        for s in mine:
            by_recipe.setdefault((s.model, s.recipe), {})[lang] = s
    picks = [_Pick(m, r, [per[lg] for lg in found], split) for (m, r), per in by_recipe.items()
             if len(per) == len(found)]
    if not picks:
        partial = sorted(by_recipe.items(), key=lambda kv: -len(kv[1]))[:3]
        lacking = "; ".join(f"{m}/{r} lacks {', '.join(lg for lg in found if lg not in per)}"
                            for (m, r), per in partial)
        raise ValueError(f"{directory}: no recipe has finished rows, and a baseline, in every one of {names} "
                         f"({lacking}); choose for fewer languages, or run the missing cells")
    stages = _stages(max_f1_drop, split, label, optimize, max_worst_drop, min_smaller, min_faster, several=True)
    within = _apply([p for p in picks if p.mean_loss() is not None], stages, directory, names, label, split,
                    several=True)
    best = min(within, key=lambda p: (p.mean(key), p.mean_loss()))
    other = "test" if split == "dev" else "dev"
    per_lang = []
    for s in best.langs:
        base = next(b for b in found[s.lang] if b.model == best.model and b.recipe == BASELINE)
        per_lang.append({
            "lang": s.lang, "seeds": s.seeds, "paired": s.paired,
            "dev_f1": round(s.dev_f1_mean, 4) if s.dev_f1_mean is not None else None,
            "baseline_dev_f1": round(base.dev_f1_mean, 4) if base.dev_f1_mean is not None else None,
            "dev_f1_drop_points": round(-s.dev_delta, 2) + 0.0 if s.dev_delta is not None else None,
            "dev_f1_drop_std": round(s.dev_delta_std, 2),
            "f1": round(s.f1_mean, 4), "baseline_f1": round(base.f1_mean, 4),
            "f1_drop_points": round(-s.delta, 2) + 0.0 if s.delta is not None else None,
            "f1_drop_std": round(s.delta_std, 2),
            "size_bytes": s.size_bytes, "baseline_size_bytes": base.size_bytes, "size_x": _r(s.size_x),
            "latency_ms_b1": s.latency_ms_b1, "baseline_latency_ms_b1": base.latency_ms_b1,
            "speedup_b1": _r(s.speedup_b1), "path": s.paths[0], "command": reproduce(s, s.lang),
            "baseline_warning": baseline_warning(base, split),
        })

    def mean_of(split_: str) -> float | None:
        x = best.mean_loss(split_)
        return None if x is None else round(x, 2) + 0.0

    worst_dev, worst_test = best.worst("dev"), best.worst("test")
    other_losses = best.losses(other)
    over = [] if max_worst_drop is None or other_losses is None else \
        [s.lang for s, x in zip(best.langs, other_losses, strict=True) if x > max_worst_drop + 1e-9]
    return {
        "lang": names, "langs": list(found), "max_f1_drop": max_f1_drop, "max_worst_drop": max_worst_drop,
        "min_smaller": min_smaller, "min_faster": min_faster, "optimize": optimize,
        "model": best.model, "metric": metric, "metric_label": label,
        "recipe": best.recipe, "recipe_spec": best.langs[0].recipe_spec, "start": best.langs[0].start,
        "candidates": len(picks), "within_budget": len(within), "chosen_on": split,
        "per_lang": per_lang,
        # losses in points (positive: worse than the baseline), the mean over languages of each language's
        # mean over seeds, and the language that loses most
        "dev_f1_drop_points": mean_of("dev"), "f1_drop_points": mean_of("test"),
        "worst_dev_f1_drop": [worst_dev[0], round(worst_dev[1], 2) + 0.0] if worst_dev else None,
        "worst_f1_drop": [worst_test[0], round(worst_test[1], 2) + 0.0] if worst_test else None,
        "size_x": _r(best.mean("size_x")), "speedup_b1": _r(best.mean("speedup_b1")),
        "size_bytes": best.mean("size_bytes"), "latency_ms_b1": best.mean("latency_ms_b1"),
        # the choice is made on one split; the other says whether it agrees about the budget and the limit
        "other_split_within_budget": None if other_losses is None
        else statistics.fmean(other_losses) <= max_f1_drop + 1e-9,
        "other_split_over_worst": over if other_losses is not None and max_worst_drop is not None else None,
    }


def _within(delta: float | None, budget: float) -> bool | None:
    return None if delta is None else -delta <= budget + 1e-9


@cache
def atlas_baselines(directory: Path = ATLAS) -> tuple[tuple[str, dict[str, Any]], ...]:
    """(file, row) of every finished baseline row of the committed atlas CSVs; none where they are absent."""
    found = []
    for name in ATLAS_FILES:
        path = directory / name
        if path.is_file():
            found += [(f"docs/bench/{name}", r) for r in load_rows(path) if r["recipe"] == BASELINE]
    return tuple(found)


def baseline_warning(base: Summary, split: str) -> str | None:
    """Every reason to doubt the baseline the drops are measured against, as one line; None if there is none."""
    found = [w for w in (weak_baseline(base, split), unfinished_baseline(base)) if w]
    return "; ".join(found) or None


def unfinished_baseline(base: Summary) -> str | None:
    """A warning where dev chose a baseline seed's last allowed epoch: it never showed that it stopped improving.

    A teacher trains until dev stops improving (patience); one whose best epoch is the last its schedule
    allowed may be under-trained, and a student that beats it is then no result (`row.still_rising`).
    """
    if not base.still_rising:
        return None
    seeds = "; ".join(f"seed {seed}: {why}" for seed, why in sorted(base.still_rising.items()))
    return (f"the baseline may not have converged: its dev {base.metric_label} was still rising when its "
            f"schedule ended ({seeds}); a longer schedule may raise it, and every drop here is measured against it")


def weak_baseline(base: Summary, split: str, atlas: Sequence[tuple[str, dict[str, Any]]] | None = None) -> str | None:
    """A warning when the baseline itself learned little, naming its F1 and what it is compared with; else None.

    Against the atlas's baseline of the same model, language and corpus when there is one, else the floor.
    """
    atlas = atlas_baselines() if atlas is None else atlas
    score = base.dev_f1_mean if split == "dev" else base.f1_mean
    if score is None:
        return None
    key = f"dev_{base.metric}" if split == "dev" else base.metric
    scored = f"{split} {base.metric_label}"
    lang, corpus = base_lang(base.lang), corpus_name(base.data)
    refs = [(name, r[key]) for name, r in atlas if corpus and (r["model"], r["lang"]) == (base.model, lang)
            and corpus_name(r.get("data")) == corpus and metric_of(r) == base.metric
            and isinstance(r.get(key), int | float)]
    advice = ("a model that learned little compresses into one that knows little: train the baseline longer "
              "(more epochs, patience) or check its data before shipping")
    if refs:
        ref = statistics.fmean(x for _, x in refs)
        if 100 * (ref - score) <= WEAK_MARGIN:
            return None
        return (f"the baseline itself is weak: its {scored} is {100 * score:.2f}, {100 * (ref - score):.2f} "
                f"points below the atlas's {base.model} baseline for {lang} on {corpus} ({scored} "
                f"{100 * ref:.2f}, {', '.join(sorted({n for n, _ in refs}))}); {advice}")
    if 100 * score >= WEAK_FLOOR:
        return None
    where = f"{lang} on {corpus}" if corpus else lang
    return (f"the baseline itself is weak: its {scored} is {100 * score:.2f}, under the floor of "
            f"{WEAK_FLOOR:.0f} (the atlas has no {base.model} baseline for {where} to compare with); {advice}")


def corpus_label(rows: list[dict[str, Any]], lang: str, where: str) -> str:
    """`lang` as the rows name it: "ewe" is "ewe@masakhaner2" where only MasakhaNER 2.0 measured it."""
    labels = {r["lang"] for r in rows}
    if lang in labels:
        return lang
    same = sorted(label for label in labels if base_lang(label) == lang)
    if len(same) > 1:
        raise ValueError(f"{where}: {lang} was measured on several corpora ({', '.join(same)}); name one with --lang")
    return same[0] if same else lang


def _r(x: float | None) -> float | None:
    return round(x, 2) if x is not None else None


def reproduce(s: Summary, lang: str) -> str:
    """The `ndogo compress` command that rebuilds the chosen model from its fine-tuned baseline."""
    if s.recipe == BASELINE:
        return f"(the fine-tuned baseline itself: {s.baseline_paths[0] or s.paths[0]})"
    data = f" --data {shlex.quote(s.data)}" if s.data else ""
    if s.start != "finetuned":
        start = "<pretrained model>"
    else:  # rows kept only as a CSV do not name the fine-tuned model's folder: say what goes there
        start = s.baseline_paths[0] or f"<the fine-tuned {s.model} baseline for {base_lang(lang)}>"
    out = f"runs/{lang.replace('@', '-')}-{s.recipe}"
    return (f"ndogo compress {shlex.quote(start)} --recipe {shlex.quote(s.recipe_spec)} --lang {base_lang(lang)}{data} "
            f"--seed {s.seeds[0]} --out {shlex.quote(out)}")


def _floors(c: dict[str, Any], every: str = "") -> str | None:
    """The --min-smaller / --min-faster asked for, in words; None where neither was."""
    asked = [f"at least {c[k]:g}× {what}" for k, what in (("min_smaller", "smaller"), ("min_faster", "faster"))
             if c.get(k) is not None]
    return " and ".join(asked) + f" than the baseline{every}" if asked else None



def _change(drop: float) -> str:
    """A drop in points said as what it is: "drop 0.46", "gain 1.01" (a drop of -1.01 reads as a loss at a glance)."""
    drop = round(drop, 2) + 0.0
    return f"drop {drop:.2f}" if drop >= 0 else f"gain {-drop:.2f}"


def _loses(drop: float) -> str:
    """The verb for a drop: "loses 0.46", "gains 0.31" (never "loses -0.31")."""
    drop = round(drop, 2) + 0.0
    return f"loses {drop:.2f}" if drop >= 0 else f"gains {-drop:.2f}"


def _baseline(c: dict[str, Any], score: float) -> str:
    """The baseline's score beside a pick's, saying which of its seeds it is where they are not the pick's."""
    seeds, base_seeds = sorted(c["seeds"]), sorted(c.get("baseline_seeds") or c["seeds"])
    said = f"baseline {100 * score:.2f}"
    if seeds == base_seeds:
        return said
    if set(seeds) <= set(base_seeds):
        return f"{said} of seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    return f"{said}, the mean of its seeds {', '.join(map(str, base_seeds))}"


def format_recommendation(c: dict[str, Any]) -> str:
    """A few lines for people: the choice, its numbers against the baseline, the command."""
    if c.get("per_lang") is not None:
        return format_many(c)
    chosen = c.get("chosen_on", "test")
    label = c.get("metric_label") or "F1"  # the rows' headline metric: the budget is in its points
    lines = [f"{c['lang']}: {c['recipe']} ({c['recipe_spec'] or 'the fine-tuned model as it is'}) "
             f"of model {c['model']}, the best by {c['optimize']} of {c['within_budget']} within "
             f"{c['max_f1_drop']:g} {chosen} {label} point(s) ({c['candidates']} measured; chosen on {chosen})"]
    if (floors := _floors(c)) is not None or c.get("max_worst_drop") is not None:
        worst = f"a loss within {c['max_worst_drop']:g} point(s)" if c.get("max_worst_drop") is not None else None
        lines.append(f"  asked    {'; '.join(x for x in (worst, floors) if x)}")
    if c.get("baseline_warning"):
        lines.append(f"  warning  {c['baseline_warning']}")
    if c.get("dev_f1") is not None:
        dev_std = f" ± {c['dev_f1_drop_std']:.2f}" if len(c["seeds"]) > 1 and c.get("dev_f1_drop_std") else ""
        lines.append(f"  dev {label}   {100 * c['dev_f1']:.2f} ({_baseline(c, c['baseline_dev_f1'])}, "
                     f"{_change(c['dev_f1_drop_points'])}{dev_std} points){'  <- chose' if chosen == 'dev' else ''}")
    seeds = len(c["seeds"])
    test_std = f" ± {c['f1_drop_std']:.2f}" if seeds > 1 and c.get("f1_drop_std") is not None else ""
    lines.append(f"  test {label}  {100 * c['f1']:.2f} ({_baseline(c, c['baseline_f1'])}, "
                 f"{_change(c['f1_drop_points'])}{test_std} points, over {seeds} seed(s))"
                 f"{'  <- chose' if chosen == 'test' else '  (reported, not used to choose)'}")
    agrees = c.get("other_split_within_budget")
    other = "test" if chosen == "dev" else "dev"
    other_drop = c["f1_drop_points"] if chosen == "dev" else c.get("dev_f1_drop_points")
    if agrees is True:
        lines.append(f"  {other} agrees: within the {c['max_f1_drop']:g}-point budget too")
    elif agrees is False:
        lines.append(f"  {other} disagrees: it {_loses(other_drop)} points, over the {c['max_f1_drop']:g}-point "
                     f"budget that {chosen} met; the claim holds on {chosen} only")
    if seeds == 1:
        lines.append("  one seed: a difference inside the seed-to-seed spread is noise; more seeds say which")
    if c["size_bytes"] is not None:
        lines.append(f"  size     {c['size_bytes'] / 1e6:.1f} MB (baseline {c['baseline_size_bytes'] / 1e6:.1f} MB, "
                     f"{c['size_x'] or 1:.2f}× smaller)")
    if c["latency_ms_b1"] is not None:
        lines.append(f"  latency  {c['latency_ms_b1']:.2f} ms at batch 1 "
                     f"(baseline {c['baseline_latency_ms_b1']:.2f} ms, {c['speedup_b1'] or 1:.2f}× faster)")
    lines.append(f"  model    {c['path']}")
    lines.append(f"  rebuild  {c['command']}")
    return "\n".join(lines)


def format_many(c: dict[str, Any]) -> str:
    """`recommend_many_rows`'s choice for people: per language and on average, dev and test, where they disagree."""
    chosen = c["chosen_on"]
    other = "test" if chosen == "dev" else "dev"
    label = c.get("metric_label") or "F1"
    asked = [f"a loss within {c['max_f1_drop']:g} {chosen} {label} point(s) on average"]
    if c.get("max_worst_drop") is not None:
        asked.append(f"no language losing over {c['max_worst_drop']:g}")
    if (floors := _floors(c, " in every language")) is not None:
        asked.append(floors)
    lines = [f"{c['lang']}: {c['recipe']} ({c['recipe_spec'] or 'the fine-tuned model as it is'}) of model "
             f"{c['model']}, one recipe for all {len(c['langs'])} languages: the best by {c['optimize']} (mean over "
             f"the languages) of {c['within_budget']} with {'; '.join(asked)} ({c['candidates']} measured in every "
             f"language; chosen on {chosen})"]

    def delta(loss: float | None, std: float | None, seeds: int) -> str:
        if loss is None:
            return "–"
        return f"{0.0 - loss:+.2f}" + (f" ± {std:.2f}" if seeds > 1 and std is not None else "")  # (0.0 -: no −0.00)

    def ratio(x: float | None) -> str:
        return f"{x:.2f}×" if x is not None else "–"

    mark = {chosen: " <- chose", other: ""}
    lines.append(f"  {'':8}{'dev Δ' + mark['dev']:>22}{'test Δ' + mark['test']:>22}{'seeds':>7}{'smaller':>10}"
                 f"{'faster':>9}")
    for p in c["per_lang"]:
        n = len(p["seeds"])
        lines.append(f"  {p['lang']:8}{delta(p['dev_f1_drop_points'], p['dev_f1_drop_std'], n):>22}"
                     f"{delta(p['f1_drop_points'], p['f1_drop_std'], n):>22}{n:>7}{ratio(p['size_x']):>10}"
                     f"{ratio(p['speedup_b1']):>9}")
    lines.append(f"  {'mean':8}{delta(c['dev_f1_drop_points'], None, 1):>22}{delta(c['f1_drop_points'], None, 1):>22}"
                 f"{'':>7}{ratio(c['size_x']):>10}{ratio(c['speedup_b1']):>9}")
    lines.append(f"  (Δ: {label} points against the same seed's baseline, ± the std over seeds; {other} is reported, "
                 "not used to choose)")
    other_mean = c["f1_drop_points"] if chosen == "dev" else c["dev_f1_drop_points"]
    if c.get("other_split_within_budget") is True:
        lines.append(f"  {other} agrees: it {_loses(other_mean)} points on average, within the "
                     f"{c['max_f1_drop']:g}-point budget too")
    elif c.get("other_split_within_budget") is False:
        lines.append(f"  {other} disagrees: it {_loses(other_mean)} points on average, over the "
                     f"{c['max_f1_drop']:g}-point budget that {chosen} met; the claim holds on {chosen} only")
    over = c.get("other_split_over_worst")
    if over:
        losses = {p["lang"]: p["f1_drop_points"] if chosen == "dev" else p["dev_f1_drop_points"] for p in c["per_lang"]}
        lost = ", ".join(f"{lg} loses {losses[lg]:.2f}" for lg in over)
        lines.append(f"  {other} disagrees: {lost} on {other}, over the {c['max_worst_drop']:g}-point limit for any "
                     f"language that {chosen} met")
    elif over == [] and c.get("max_worst_drop") is not None:
        lines.append(f"  {other} agrees: no language loses over {c['max_worst_drop']:g} points")
    unpaired = [p["lang"] for p in c["per_lang"] if not p.get("paired", True)]
    if unpaired:
        lines.append(f"  unpaired in {', '.join(unpaired)}: no baseline of the same seed, each seed is read against "
                     "the baseline's mean")
    one_seed = [p["lang"] for p in c["per_lang"] if len(p["seeds"]) == 1]
    if one_seed:
        lines.append(f"  one seed in {', '.join(one_seed)}: a difference inside the seed-to-seed spread is noise; "
                     "more seeds say which")
    for p in c["per_lang"]:
        if p.get("baseline_warning"):
            lines.append(f"  warning  {p['lang']}: {p['baseline_warning']}")
    for p in c["per_lang"]:
        lines.append(f"  rebuild  {p['lang']}: {p['command']}")
    return "\n".join(lines)


def ship_recommendation(directory: str | Path, choice: dict[str, Any], out: str | Path) -> Path:
    """Ship the model `ndogo recommend` chose, its card filled from the sweep's own rows."""
    from ndogo.deploy.ship import ship, sweep_rows
    from ndogo.experiments.store import base_lang, open_store

    store = open_store(directory)
    try:
        done = store.rows(status="done")
    finally:
        store.close()
    lang = base_lang(choice["lang"])  # "wol@masakhaner2" when chosen among rows of two corpora
    mine = [r for r in done if r.get("path") == choice["path"] and r.get("lang") == lang]
    base = [r for r in done if r.get("lang") == lang and r.get("model") == choice["model"]
            and r.get("is_baseline")]
    if not mine:
        raise ValueError(f"{directory}: no finished row for {choice['path']}")
    rows = sweep_rows(mine[0])
    spread = {"seeds": choice.get("seeds"), "f1_std": choice.get("f1_std")} if len(choice.get("seeds") or []) > 1 \
        else None
    return ship(choice["path"], out, lang=lang, rows=rows, command=choice.get("command"),
                seed_spread=spread, baseline=base[0] if base else None, warning=choice.get("baseline_warning"))
