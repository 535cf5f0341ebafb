"""`ndogo recommend`: the smallest (or fastest) model a sweep found within an F1 budget.

This answers the user's real question, "what can I ship for my language that
loses at most X points?", from rows already measured: no model is run.

The choice is made on dev F1 by default (`split="dev"`): which recipe stays
within the budget is read from dev, and test F1 is reported beside it, never
used to choose. `split="test"` exists for rows that carry no dev F1 (sweeps
from before it was recorded) and says so wherever it is shown.

"F1" is the rows' headline metric: entity F1 for NER, the task's own for other tasks (accuracy for
POS and topic, macro-F1 for sentiment), so `--max-f1-drop 1` is one point of that metric. Rows of
two metrics are never ranked together (a point of F1 is no point of accuracy).
"""

from __future__ import annotations

import math
import shlex
import statistics
from collections.abc import Sequence
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
              model: str | None = None, split: str = "dev", also: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The best recipe for `lang` whose mean `split` score is at most `max_f1_drop` points below the baseline's.

    The score is the rows' headline metric (F1 for NER, accuracy for POS and topic...): the budget is in
    its points, and rows of two metrics are refused.

    `also` adds the rows of other sweeps or CSVs (more seeds, another model, another corpus: a language
    measured on a second corpus is chosen for as `lang@corpus`, e.g. wol@masakhaner2).
    """
    rows = load_sources([directory, *also])
    return recommend_rows(rows, str(directory), lang, max_f1_drop, optimize, model, split)


def recommend_rows(rows: list[dict[str, Any]], where: str, lang: str, max_f1_drop: float, optimize: str = "size",
                   model: str | None = None, split: str = "dev") -> dict[str, Any]:
    """`recommend` on rows already read (the report chooses for every language from one read)."""
    if split not in SPLITS:
        raise ValueError(f"--split must be dev or test, got {split!r}")
    if not math.isfinite(max_f1_drop):
        raise ValueError(f"--max-f1-drop must be a finite number of points of the rows' metric, got {max_f1_drop}")
    if optimize not in OPTIMIZE:
        raise ValueError(f"--optimize must be one of {', '.join(OPTIMIZE)}, got {optimize!r}")
    if max_f1_drop < 0:
        raise ValueError(f"--max-f1-drop is a loss in points of the rows' metric (F1 for NER) and cannot be "
                         f"negative, got {max_f1_drop}")
    directory = where
    for row in rows:  # the readers check every row; rows handed in by code are checked here
        try:
            check_row_values(row)
        except ValueError as err:
            raise ValueError(f"{directory}: cell {row.get('cell_id')}: {err}") from None
    rows = [r for r in rows if r.get("status") == "done"]
    metric = one_metric(rows, directory)
    label = metric_label(metric)
    lang = corpus_label(rows, lang, directory)
    found = [s for s in summarize(rows) if s.lang == lang and (model is None or s.model == model)]
    if not found:
        langs = ", ".join(sorted({r["lang"] for r in rows})) or "none (no cell of this sweep has finished)"
        raise ValueError(f"{directory}: no finished cells for language {lang!r}"
                         + (f" and model {model!r}" if model else "") + f"; languages here: {langs}")
    key = OPTIMIZE[optimize]
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

    def drop(s: Summary) -> float | None:
        return s.dev_delta if split == "dev" else s.delta

    within = [s for s in found if drop(s) is not None and -drop(s) <= max_f1_drop + 1e-9
              and getattr(s, key) is not None]
    if not within:
        raise ValueError(f"{directory}: nothing for {lang} within {max_f1_drop:g} {split} {label} point(s) has "
                         f"{key}")
    best = min(within, key=lambda s: (getattr(s, key), -s.f1_mean))
    base = next(s for s in found if s.model == best.model and s.recipe == BASELINE)
    return {
        "lang": lang, "max_f1_drop": max_f1_drop, "optimize": optimize, "model": best.model,
        # the headline metric every "f1" key below holds (entity F1 for NER; accuracy for POS...)
        "metric": metric, "metric_label": label,
        "recipe": best.recipe, "recipe_spec": best.recipe_spec, "start": best.start, "seeds": best.seeds,
        "f1": round(best.f1_mean, 4), "f1_std": round(best.f1_std, 4), "baseline_f1": round(base.f1_mean, 4),
        "f1_drop_points": round(-(best.delta or 0.0), 2) + 0.0, "size_bytes": best.size_bytes,
        "baseline_size_bytes": base.size_bytes, "size_x": _r(best.size_x),
        "latency_ms_b1": best.latency_ms_b1, "baseline_latency_ms_b1": base.latency_ms_b1,
        "speedup_b1": _r(best.speedup_b1), "sparsity": best.sparsity, "path": best.paths[0],
        "candidates": len(found), "within_budget": len(within), "chosen_on": split,
        "dev_f1": round(best.dev_f1_mean, 4) if best.dev_f1_mean is not None else None,
        "baseline_dev_f1": round(base.dev_f1_mean, 4) if base.dev_f1_mean is not None else None,
        "dev_f1_drop_points": round(-best.dev_delta, 2) + 0.0 if best.dev_delta is not None else None,
        # each seed against its own seed's baseline, then the mean and spread over seeds
        "f1_drop_std": round(best.delta_std, 2), "dev_f1_drop_std": round(best.dev_delta_std, 2),
        # the choice is made on one split; the other says whether it agrees about the budget
        "other_split_within_budget": _within(best.delta if split == "dev" else best.dev_delta, max_f1_drop),
        "command": reproduce(best, lang),
        "baseline_warning": weak_baseline(base, split),
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


def format_recommendation(c: dict[str, Any]) -> str:
    """A few lines for people: the choice, its numbers against the baseline, the command."""
    chosen = c.get("chosen_on", "test")
    label = c.get("metric_label") or "F1"  # the rows' headline metric: the budget is in its points
    lines = [f"{c['lang']}: {c['recipe']} ({c['recipe_spec'] or 'the fine-tuned model as it is'}) "
             f"of model {c['model']}, the best by {c['optimize']} of {c['within_budget']} within "
             f"{c['max_f1_drop']:g} {chosen} {label} point(s) ({c['candidates']} measured; chosen on {chosen})"]
    if c.get("baseline_warning"):
        lines.append(f"  warning  {c['baseline_warning']}")
    if c.get("dev_f1") is not None:
        dev_std = f" ± {c['dev_f1_drop_std']:.2f}" if len(c["seeds"]) > 1 and c.get("dev_f1_drop_std") else ""
        lines.append(f"  dev {label}   {100 * c['dev_f1']:.2f} (baseline {100 * c['baseline_dev_f1']:.2f}, "
                     f"drop {c['dev_f1_drop_points']:.2f}{dev_std} points){'  <- chose' if chosen == 'dev' else ''}")
    seeds = len(c["seeds"])
    test_std = f" ± {c['f1_drop_std']:.2f}" if seeds > 1 and c.get("f1_drop_std") is not None else ""
    lines.append(f"  test {label}  {100 * c['f1']:.2f} (baseline {100 * c['baseline_f1']:.2f}, "
                 f"drop {c['f1_drop_points']:.2f}{test_std} points, over {seeds} seed(s))"
                 f"{'  <- chose' if chosen == 'test' else '  (reported, not used to choose)'}")
    agrees = c.get("other_split_within_budget")
    other = "test" if chosen == "dev" else "dev"
    other_drop = c["f1_drop_points"] if chosen == "dev" else c.get("dev_f1_drop_points")
    if agrees is True:
        lines.append(f"  {other} agrees: within the {c['max_f1_drop']:g}-point budget too")
    elif agrees is False:
        lines.append(f"  {other} disagrees: it loses {other_drop:.2f} points, over the {c['max_f1_drop']:g}-point "
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
