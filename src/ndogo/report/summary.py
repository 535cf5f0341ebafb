"""From stored rows to the study's numbers: mean ± std over seeds, Δ and ratios to the baseline.

One summary per (model, language, recipe) of one task. The baseline of a summary is the
same model's fine-tuned model on the same language (recipe "baseline"), so Δ F1,
size ratio and speed-up always compare like with like. F1 is shown in points
(×100) as MasakhaNER papers report it.

The score of a summary is its rows' headline metric (`row.headline`): entity F1 for NER rows, the
task's own (accuracy for POS and topic, macro-F1 for sentiment) otherwise. Its fields keep the names
`f1` and `dev_f1` (every table and plot reads them); `metric` says which metric they hold.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ndogo.experiments.row import (
    BASELINE,
    DEFAULT_METRIC,
    dev_headline,
    headline,
    metric_label,
    metric_of,
    still_rising,
    task_of,
)
from ndogo.tasks import DEFAULT_TASK, get_task, task_names


@dataclass
class Summary:
    """One method on one language, over its seeds."""

    model: str
    lang: str
    recipe: str
    recipe_spec: str
    start: str
    seeds: list[int]
    f1: list[float]  # the headline metric per seed (entity F1 for NER; `metric` names it)
    per_type: dict[str, float]
    size_bytes: float | None
    latency_ms_b1: float | None
    throughput_b32: float | None
    sparsity: float | None
    params: float | None
    nonzero_params: float | None
    paths: list[str] = field(default_factory=list)
    baseline_paths: list[str] = field(default_factory=list)
    data: str = ""
    dev_f1: list[float] = field(default_factory=list)  # the dev headline metric per seed, where the rows carry it
    metric: str = DEFAULT_METRIC  # the key of the headline metric `f1` and `dev_f1` hold (f1, accuracy, macro_f1)
    task: str = DEFAULT_TASK  # the name of the task its rows are of (`row.task_of`)
    # filled against the baseline summary
    delta: float | None = None  # F1 points: the mean over seeds of (this seed - the baseline of the same seed)
    dev_delta: float | None = None  # dev F1 points, paired the same way: what selection reads
    delta_std: float = 0.0  # std over seeds of the paired test deltas (0 with one seed)
    dev_delta_std: float = 0.0
    paired: bool = True  # False where no seed of the baseline matches and its mean over seeds stood in
    size_x: float | None = None  # times smaller than the baseline
    speedup_b1: float | None = None  # times faster than the baseline at batch 1
    # raw sentence to its output (tokenizing, decoding): what a caller waits for, beside the forward pass's
    latency_e2e_ms_b1: float | None = None
    speedup_e2e_b1: float | None = None  # times faster than the baseline end to end at batch 1
    speedup_b32: float | None = None  # times the baseline's throughput at batch 32
    # seed -> why its model may not have converged: dev chose the last epoch its schedule allowed
    still_rising: dict[int, str] = field(default_factory=dict)

    @property
    def metric_label(self) -> str:
        """The headline metric as tables print it: "F1", "accuracy", "macro-F1"."""
        return metric_label(self.metric)

    @property
    def f1_mean(self) -> float:
        return statistics.fmean(self.f1)

    @property
    def f1_std(self) -> float:
        return statistics.stdev(self.f1) if len(self.f1) > 1 else 0.0

    @property
    def dev_f1_mean(self) -> float | None:
        return statistics.fmean(self.dev_f1) if self.dev_f1 else None

    def f1_text(self) -> str:
        """F1 in points, with ± std over seeds where there is more than one."""
        text = f"{100 * self.f1_mean:.2f}"
        return text + (f" ± {100 * self.f1_std:.2f}" if len(self.f1) > 1 else "")


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
    return statistics.fmean(values) if values else None


def summarize(rows: list[dict[str, Any]]) -> list[Summary]:
    """Summaries of done rows, in the order methods first appear (baseline first).

    Rows of two tasks never share a summary or a baseline, even on one language code (MasakhaNER's
    and MasakhaPOS's hau): a POS model's accuracy is no seed of a NER model's F1.
    """
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("status") == "done" and headline(row) is not None:
            groups.setdefault((task_of(row), row["model"], row["lang"], row["recipe"]), []).append(row)
    out = []
    timed: dict[int, list[dict[str, Any]]] = {}  # id(summary) -> its rows, for the speed-ups paired by seed
    for (task, model, lang, recipe), group in groups.items():
        _check_one_row_per_seed(group)
        types = sorted({t for r in group for t in r.get("per_type", {})})
        per_type = {t: statistics.fmean(r["per_type"][t]["f1"] for r in group if t in r.get("per_type", {}))
                    for t in types}
        out.append(Summary(
            model=model, lang=lang, recipe=recipe, recipe_spec=group[0].get("recipe_spec", ""),
            start=group[0].get("start", "finetuned"), seeds=[r["seed"] for r in group],
            f1=[headline(r) or 0.0 for r in group],
            per_type=per_type, size_bytes=_mean(group, "size_bytes"), latency_ms_b1=_mean(group, "latency_ms_b1"),
            throughput_b32=_mean(group, "throughput_b32"), sparsity=_mean(group, "sparsity"),
            params=_mean(group, "params"), nonzero_params=_mean(group, "nonzero_params"),
            paths=[r.get("path", "") for r in group], baseline_paths=[r.get("baseline_path") or "" for r in group],
            data=group[0].get("data", ""),
            dev_f1=[dev_headline(r) or 0.0 for r in group]
            if all(dev_headline(r) is not None for r in group) else [],
            metric=metric_of(group[0]), task=task, latency_e2e_ms_b1=_mean(group, "latency_e2e_ms_b1"),
            still_rising={r["seed"]: why for r in group if (why := still_rising(r))},
        ))
        timed[id(out[-1])] = group
    base = {(s.task, s.model, s.lang): s for s in out if s.recipe == BASELINE}
    for s in out:
        b = base.get((s.task, s.model, s.lang))
        if b is None:
            continue
        s.delta, s.delta_std, s.paired = _paired(s.seeds, s.f1, b.seeds, b.f1)
        if s.dev_f1 and b.dev_f1:
            s.dev_delta, s.dev_delta_std, _ = _paired(s.seeds, s.dev_f1, b.seeds, b.dev_f1)
        if s.size_bytes and b.size_bytes:
            s.size_x = b.size_bytes / s.size_bytes
        rows, base_rows = timed[id(s)], timed[id(b)]
        s.speedup_b1 = _times(rows, base_rows, "latency_ms_b1", lower_is_faster=True)
        s.speedup_e2e_b1 = _times(rows, base_rows, "latency_e2e_ms_b1", lower_is_faster=True)
        s.speedup_b32 = _times(rows, base_rows, "throughput_b32", lower_is_faster=False)
    return out


def _times(rows: list[dict[str, Any]], base_rows: list[dict[str, Any]], key: str,
           lower_is_faster: bool) -> float | None:
    """How many times faster than the baseline: each seed against the baseline of the same seed, then the mean.

    A seed's cells are timed in one sweep run beside the same other jobs as its own baseline, so the ratio
    within a run is the measurement; two runs' timings differ by more than a chain's seeds do (one teacher
    timed at 31.97 and 23.51 ms in two runs). Where some seed has no timed baseline of its own, the ratio of
    the means stands in, as `_paired` does for F1.
    """
    def value(row: dict[str, Any]) -> float | None:
        v = row.get(key)
        return float(v) if isinstance(v, int | float) and v > 0 else None

    own = {r["seed"]: value(r) for r in base_rows}
    pairs = [(own.get(r["seed"]), value(r)) for r in rows]
    if pairs and all(base is not None and x is not None for base, x in pairs):
        return statistics.fmean(base / x if lower_is_faster else x / base for base, x in pairs)  # type: ignore[operator]
    mine, base = _mean(rows, key), _mean(base_rows, key)
    if not mine or not base:
        return None
    return base / mine if lower_is_faster else mine / base


def _paired(seeds: list[int], values: list[float], base_seeds: list[int],
            base_values: list[float]) -> tuple[float, float, bool]:
    """Δ in points, each seed against the baseline of the same seed: mean, std over seeds, paired or not.

    A single-seed cell compared with a three-seed baseline mean would mix two kinds of noise (its
    own seed's and the baseline's spread); a seed's fine-tuned model is the one its compression was
    made from. Where some seed has no baseline of its own (students of one teacher, whose seeds are
    the students'), every seed is read against the baseline's mean instead: never a subset of seeds.
    """
    own = dict(zip(base_seeds, base_values, strict=True))
    paired = all(seed in own for seed in seeds)
    anchor = statistics.fmean(base_values)
    deltas = [100 * (v - (own[seed] if paired else anchor)) for seed, v in zip(seeds, values, strict=True)]
    return statistics.fmean(deltas), statistics.stdev(deltas) if len(deltas) > 1 else 0.0, paired


def _check_one_row_per_seed(group: list[dict[str, Any]]) -> None:
    """Refuse to average two rows of one seed: they are two experiments, not a seed spread.

    A report over several sources (`--also`) meets this when a language was measured on two corpora
    (MasakhaNER 1.0 and 2.0) or at two budgets: averaging them would print a mean ± std that no
    experiment measured.
    """
    by_seed: dict[Any, dict[str, Any]] = {}
    metrics = list(dict.fromkeys(metric_of(r) for r in group))
    if len(metrics) > 1:
        row = group[0]
        raise ValueError(f"{row['lang']}: {row['model']} {row['recipe']} has rows of several headline metrics "
                         f"({', '.join(metrics)}): rows of two tasks, never averaged; report each task on its own")
    for row in group:
        first = by_seed.setdefault(row["seed"], row)
        if first is row:
            continue
        differ = [f"{key} {first.get(key) or '–'} / {row.get(key) or '–'}" for key in ("data", "recipe_spec")
                  if (first.get(key) or "") != (row.get(key) or "")]
        raise ValueError(
            f"{row['lang']}: {row['model']} {row['recipe']} has two rows for seed {row['seed']} (cells "
            f"{first.get('cell_id')} and {row.get('cell_id')}{': ' + '; '.join(differ) if differ else ''}): "
            "they are two experiments, not seeds of one; report each source on its own, or keep one of them "
            "(a sweep folder reused after its config changed holds both: run the new config into a fresh --out)")


def scores_label(summaries: list[Summary]) -> str:
    """The headline metric the summaries share, as tables and plots print it ("F1", "accuracy"); "score"
    where they mix several (a report over two tasks' rows)."""
    found = {s.metric for s in summaries}
    return metric_label(found.pop()) if len(found) == 1 else "score"


def task_order(names: Iterable[str]) -> list[str]:
    """The task names given, once each, in the tasks' own order (the default task, NER, first); a task this
    version does not know (rows of a newer ndogo) after them, by name."""
    known = task_names()
    return sorted(set(names), key=lambda n: (known.index(n) if n in known else len(known), n))


def task_title(name: str) -> str:
    """A task as reports name it ("Topic Classification"); a task this version does not know by its name."""
    try:
        return get_task(name).title
    except ValueError:
        return name


def task_heading(name: str, metric: str) -> str:
    """A task's section title in a report of several tasks: its title and its metric's label
    ("Topic Classification — accuracy")."""
    return f"{task_title(name)} — {metric_label(metric)}"


def ordered(values: list[str]) -> list[str]:
    """Unique values in first-seen order, baseline first."""
    seen = list(dict.fromkeys(values))
    return sorted(seen, key=lambda v: v != BASELINE)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: smaller cost (x) and higher F1 (y), by x.

    Written out because it is five lines: a point is on the front when its F1 is
    higher than that of every point at least as cheap.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front
