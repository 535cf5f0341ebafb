"""The tables of docs/results.md and README.md, built from the committed CSVs in docs/bench/.

A number typed into a document drifts: the lab log came to hold three values for one
student's loss. Here every table of the reference and the README's results table is a
function of committed rows, written between markers

    <!-- generated: NAME -->
    ...
    <!-- end generated -->

by `regenerate` (the command `ndogo docs-tables`); prose outside the markers is never
touched. tests/test_reference.py regenerates and fails on any difference, so a CSV
that changes without its tables, or a table edited by hand, is caught.

The rules are the project's own: rows are read by `load_sources` (a language on a second
corpus is `lang@corpus`), summarised by `summarize` (Δ against the same model's baseline,
mean over seeds), and the "what to ship" table asks `recommend`, the function behind
`ndogo recommend`, so one rule decides a pick everywhere: on dev, with test beside it.
"""

from __future__ import annotations

import csv
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ndogo.experiments.row import DEFAULT_METRIC
from ndogo.experiments.store import base_lang, corpus_name, load_rows, load_sources
from ndogo.report.recommend import recommend
from ndogo.report.study import DISTILL, DYNAMIC_INT8, LLM_INT8, PRUNE, claim_for
from ndogo.report.summary import BASELINE, Summary, summarize

BENCH = Path("docs") / "bench"
# What `ndogo recommend` reads for the atlas (README's command), in that order: the first source's corpus
# keeps plain language codes, MasakhaNER 2.0's languages become lang@masakhaner2.
ATLAS = ("atlas-minilm.csv", "atlas-seeds.csv", "atlas-me5s.csv", "atlas-mnr2.csv")
STUDENTS = "students-aug.csv"
PRUNE_SWEEP = "prune-sweep.csv"
PREDICT_CHECKS = (("retrospective", "predict-check.csv"), ("prospective", "predict-check-prospective.csv"))
COMMAND = "ndogo docs-tables"
BUDGET = 1.0  # points of dev F1: the budget of the "what to ship" table and of the README's command
CORPORA = {"masakhaner": "MasakhaNER 1.0", "masakhaner2": "MasakhaNER 2.0", "masakhapos": "MasakhaPOS",
           "sib200": "SIB-200", "afrisenti": "AfriSenti"}
README_LANGS = ("hau", "swa", "yor")
# The same cells measured again on another machine: (rows, the committed rows they repeat, the machine of
# each). Neither CSV records its CPU's model (/proc/cpuinfo of the Xeon names none), so it is stated here.
REPEATS = (("repro-minilm-hau-intel.csv", "atlas-minilm.csv", "AMD EPYC", "Intel Xeon"),)
# The study's numbers that its claims in report/study.py give only as text.
STUDY_DISTILL_LOSS = (1.3, 1.9)  # F1 points lost by students 22–31% smaller
STUDY_PRUNE_HOLDS = 0.5  # magnitude pruning holds F1 to 50–60% sparsity
STUDY_COLLAPSE = 0.7  # some languages collapse past ~70%


def pts(x: float | None, sign: bool = True) -> str:
    """F1 points (a fraction ×100 already applied), signed for a Δ; "–" where there is none."""
    if x is None:
        return "–"
    return f"{x:+.2f}" if sign else f"{x:.2f}"


def times(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}×"


def mb(size: float | None) -> str:
    return "–" if size is None else f"{size / 1e6:.1f} MB"


def ms(latency: float | None) -> str:
    return "–" if latency is None else f"{latency:.1f} ms"


def table(header: list[str], rows: Iterable[list[str]], right: Iterable[int] = ()) -> str:
    """A GitHub markdown table; columns in `right` are right-aligned (numbers)."""
    right = set(right)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def corpus_of(s: Summary) -> str:
    name = corpus_name(s.data)
    return CORPORA.get(name, name or "unrecorded corpus")


def mean_std(values: list[float]) -> str:
    """mean ± std of points (std over what the list holds: seeds or languages)."""
    text = pts(statistics.fmean(values))
    return text + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")


def delta_text(s: Summary) -> str:
    """Test ΔF1 with the ± std of the method's test F1 over its seeds and their count."""
    spread = f" ± {100 * s.f1_std:.2f}" if len(s.f1) > 1 else ""
    return f"{pts(s.delta)}{spread}, n={len(s.f1)}"


def one_row_per_model(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows that measure one saved model again under another seed kept once.

    students-aug.csv repeats each student seed's teacher (the seed-42 baseline, one model at one path):
    counted three times it would read as three seeds with no spread.
    """
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for r in rows:
        key = (r["model"], r["lang"], r["recipe"], r.get("path") or "")
        if key[3] and key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out


def sparsity_of(spec: str) -> float | None:
    """The sparsity of a one-stage magnitude-pruning recipe, else None."""
    found = re.fullmatch(r"prune:sparsity=([0-9.]+)", spec.strip())
    return float(found.group(1)) if found else None


def lang_order(label: str) -> tuple[bool, str]:
    """MasakhaNER 1.0's languages first, then those measured on a second corpus; alphabetical in each."""
    return ("@" in label, label)


def seed_counts(group: list[Summary]) -> str:
    """Seeds per language: the usual count, and the languages with another count."""
    counts = {s.lang: len(s.f1) for s in group}
    usual = statistics.mode(counts.values())
    other: dict[int, list[str]] = {}
    for lang, n in sorted(counts.items()):
        if n != usual:
            other.setdefault(n, []).append(lang)
    return str(usual) + "".join(f"; {n} on {', '.join(langs)}" for n, langs in sorted(other.items()))


def noise_points(summaries: list[Summary]) -> float | None:
    """Twice the largest seed spread (std, points) of any baseline with several seeds: the noise threshold."""
    spreads = [100 * s.f1_std for s in summaries if s.recipe == BASELINE and len(s.f1) > 1]
    return 2 * max(spreads) if spreads else None


def atlases(summaries: list[Summary]) -> list[tuple[str, str]]:
    """(model, corpus) of each atlas, in the order the rows give them."""
    return list(dict.fromkeys((s.model, corpus_of(s)) for s in summaries))


def of_atlas(summaries: list[Summary], model: str, corpus: str) -> list[Summary]:
    return [s for s in summaries if s.model == model and corpus_of(s) == corpus]


def method_costs(summaries: list[Summary], model: str, corpus: str) -> str:
    """What each method costs one model on one corpus: a row per method over the languages it ran on.

    In the rows' own metric: entity F1 for NER, accuracy for POS and topic, macro-F1 for sentiment."""
    mine = of_atlas(summaries, model, corpus)
    label = mine[0].metric_label if mine else "F1"
    # a baseline that found no entity (F1 0) is left out of the means and named, not averaged in
    bases = [s for s in mine if s.recipe == BASELINE and s.f1_mean > 0]
    empty = sorted(s.lang for s in mine if s.recipe == BASELINE and s.f1_mean == 0)
    rows = []
    if bases:
        f1s = [100 * s.f1_mean for s in bases]
        devs = [100 * s.dev_f1_mean for s in bases if s.dev_f1_mean is not None]
        rows.append([f"**fine-tuned baseline** ({label}, not Δ)",
                     str(len(bases)) + (f" (+ {', '.join(empty)}: F1 0)" if empty else ""), mean_std(f1s).lstrip("+"),
                     "–", mean_std(devs).lstrip("+") if devs else "–",
                     mb(statistics.fmean(s.size_bytes for s in bases if s.size_bytes) if any(
                         s.size_bytes for s in bases) else None), "–", seed_counts(bases)])
    for recipe in dict.fromkeys(s.recipe for s in mine if s.recipe != BASELINE):
        group = [s for s in mine if s.recipe == recipe and s.delta is not None]
        if not group:
            continue
        deltas = [s.delta for s in group if s.delta is not None]
        devs = [s.dev_delta for s in group if s.dev_delta is not None]
        worst = min(group, key=lambda s: s.delta if s.delta is not None else 0.0)
        sizes = [s.size_x for s in group if s.size_x]
        speeds = [s.speedup_b1 for s in group if s.speedup_b1]
        rows.append([f"`{recipe}`", str(len(group)), mean_std(deltas), f"{base_lang(worst.lang)} {pts(worst.delta)}",
                     mean_std(devs) if devs else "–", times(statistics.fmean(sizes) if sizes else None),
                     times(statistics.median(speeds) if speeds else None), seed_counts(group)])
    return table(["method", "languages", f"test Δ{label}, mean ± std over languages", "worst language",
                  f"dev Δ{label}, mean ± std", "smaller", "faster at batch 1 (median)", "seeds per language"],
                 rows, right=(1, 2, 4, 5, 6))


def students_table(summaries: list[Summary], langs: Iterable[str]) -> str:
    """Students per language: test ΔF1 ± its seed spread (n) and dev ΔF1, against the teacher they learned from."""
    langs = list(langs)
    rows = []
    for recipe in dict.fromkeys(s.recipe for s in summaries):
        by_lang = {s.lang: s for s in summaries if s.recipe == recipe}
        if recipe == BASELINE:
            cells = [f"F1 {by_lang[lg].f1_text()}, n={len(by_lang[lg].f1)} "
                     f"(dev {pts(100 * (by_lang[lg].dev_f1_mean or 0), False)})" if lg in by_lang else "–"
                     for lg in langs]
            rows.append(["**teacher** (the seed-42 baseline)", *cells, "–", "–"])
            continue
        cells = [f"{delta_text(by_lang[lg])} (dev {pts(by_lang[lg].dev_delta)})" if lg in by_lang else "–"
                 for lg in langs]
        found = list(by_lang.values())
        sizes = [s.size_x for s in found if s.size_x]
        speeds = [s.speedup_b1 for s in found if s.speedup_b1]
        rows.append([f"`{recipe}`", *cells, times(statistics.fmean(sizes) if sizes else None),
                     times(statistics.median(speeds) if speeds else None)])
    return table(["method", *(f"{lg}: test ΔF1 ± std, seeds (dev ΔF1)" for lg in langs), "smaller",
                  "faster at batch 1 (median)"], rows, right=range(1, len(langs) + 3))


def recipes_table(summaries: list[Summary]) -> str:
    """Each recipe name the tables use, the one-line recipe it stands for, and the models it ran on.

    A name that stands for several recipes (a budget per model, or one language's) lists each with its models.
    """
    specs: dict[str, dict[str, set[str]]] = {}
    for s in summaries:
        spec = s.recipe_spec or "(the fine-tuned model as it is)"
        specs.setdefault(s.recipe, {}).setdefault(spec, set()).add(s.model)
    rows = []
    for name, by_spec in specs.items():
        if len(by_spec) == 1:
            cell = f"`{next(iter(by_spec))}`"
        else:
            cell = " or ".join(f"`{spec}` ({', '.join(sorted(models))})" for spec, models in by_spec.items())
        rows.append([f"`{name}`", cell, ", ".join(sorted(set().union(*by_spec.values())))])
    return table(["recipe", "stages (`ndogo compress --recipe`)", "models"], rows)


@dataclass
class Pick:
    """One `recommend` answer, or why there is none."""

    lang: str
    model: str
    choice: dict[str, Any] | None
    why_not: str = ""


def ship_table(picks: list[Pick], best: dict[str, str]) -> str:
    """Per language and model: the recipe `recommend` picks, dev and test F1 with their drops, size, latency."""
    rows = []
    for p in picks:
        corpus = "MasakhaNER 2.0" if "@" in p.lang else "MasakhaNER 1.0"
        star = "**" if best.get(p.lang) == p.model else ""
        if p.choice is None:
            rows.append([base_lang(p.lang), corpus, p.model, f"nothing: {p.why_not}", "–", "–", "–", "–", "–"])
            continue
        c = p.choice
        dev = "–" if c.get("dev_f1") is None else \
            f"{100 * c['dev_f1']:.2f} ({pts(-c['dev_f1_drop_points'])})"
        spread = f" ± {100 * c['f1_std']:.2f}" if len(c["seeds"]) > 1 else ""
        rows.append([base_lang(p.lang), corpus, f"{star}{p.model}{star}", f"{star}`{c['recipe']}`{star}", dev,
                     f"{100 * c['f1']:.2f}{spread} ({pts(-c['f1_drop_points'])})", str(len(c["seeds"])),
                     f"{mb(c['size_bytes'])} ({times(c['size_x'] or 1.0)})",
                     f"{ms(c['latency_ms_b1'])} ({times(c['speedup_b1'] or 1.0)})"])
    return table(["language", "corpus", "model", "ship", "dev F1 (Δ) ← chose", "test F1 (Δ), reported",
                  "seeds", "size (× smaller)", "latency, batch 1 (× faster)"], rows, right=(4, 5, 6, 7, 8))


def pick_all(sources: list[Path], rows: list[dict[str, Any]],
             budget: float = BUDGET) -> tuple[list[Pick], dict[str, str]]:
    """`recommend` for every language and model the rows hold, and for every language over both models."""
    picks, best = [], {}
    where = f"{sources[0]}: "
    models = list(dict.fromkeys(r["model"] for r in rows))
    for lang in sorted({r["lang"] for r in rows}, key=lang_order):
        for model in models:
            if not any(r["lang"] == lang and r["model"] == model for r in rows):
                continue
            try:
                picks.append(Pick(lang, model, recommend(sources[0], lang, budget, "size", model, "dev", sources[1:])))
            except ValueError as err:
                picks.append(Pick(lang, model, None, short_reason(str(err).removeprefix(where))))
        try:
            best[lang] = recommend(sources[0], lang, budget, "size", None, "dev", sources[1:])["model"]
        except ValueError:
            pass
    return picks, best


def short_reason(message: str) -> str:
    """recommend's refusal, cut to its first clause (the rest tells a user at the terminal what to do)."""
    if "found no entity" in message:
        return "its baseline found no entity (F1 0)"
    return message.split(";")[0]


def versus_table(summaries: list[Summary], noise: float) -> str:
    """minilm against me5s on the languages and methods both ran (MasakhaNER 1.0), each against its own baseline."""
    a = [s for s in summaries if s.model == "minilm" and "@" not in s.lang and s.delta is not None]
    b = [s for s in summaries if s.model == "me5s" and "@" not in s.lang and s.delta is not None]
    base_a = {s.lang: s for s in summaries if s.model == "minilm" and s.recipe == BASELINE and "@" not in s.lang}
    base_b = {s.lang: s for s in summaries if s.model == "me5s" and s.recipe == BASELINE}
    rows = []
    # a baseline that found no entity (minilm cannot read amh's script) is no model to compare
    both = sorted(lg for lg in set(base_a) & set(base_b) if base_a[lg].f1_mean > 0 and base_b[lg].f1_mean > 0)
    if both:
        diff = [100 * (base_b[lg].f1_mean - base_a[lg].f1_mean) for lg in both]
        rows.append(["**baseline test F1** (me5s − minilm)", str(len(both)),
                     pts(statistics.fmean(100 * base_a[lg].f1_mean for lg in both), False),
                     pts(statistics.fmean(100 * base_b[lg].f1_mean for lg in both), False),
                     ", ".join(f"{lg} {d:+.1f}" for lg, d in zip(both, diff, strict=True) if d < -noise) or "–",
                     ", ".join(f"{lg} {d:+.1f}" for lg, d in zip(both, diff, strict=True) if d > noise) or "–"])

    def family(s: Summary) -> str:  # a student is a student whatever its depth
        return re.sub(r"^distil\d+", "distil", s.recipe)

    for name in dict.fromkeys(family(s) for s in a if s.recipe != BASELINE):
        mine = {s.lang: s for s in a if family(s) == name}
        theirs = {s.lang: s for s in b if family(s) == name}
        langs = sorted(set(mine) & set(theirs))
        if not langs:
            continue
        pair = " / ".join(dict.fromkeys([theirs[langs[0]].recipe, mine[langs[0]].recipe]))
        gap = {lg: (theirs[lg].delta or 0.0) - (mine[lg].delta or 0.0) for lg in langs}
        rows.append([f"`{pair}` (ΔF1)", str(len(langs)), pts(statistics.fmean(mine[lg].delta or 0.0 for lg in langs)),
                     pts(statistics.fmean(theirs[lg].delta or 0.0 for lg in langs)),
                     ", ".join(f"{lg} {gap[lg]:+.1f}" for lg in langs if gap[lg] < -noise) or "–",
                     ", ".join(f"{lg} {gap[lg]:+.1f}" for lg in langs if gap[lg] > noise) or "–"])
    return table(["method (me5s / minilm)", "languages with both", "minilm, mean", "me5s, mean",
                  f"minilm better by > {noise:.2f} (me5s − minilm)", f"me5s better by > {noise:.2f}"],
                 rows, right=(1, 2, 3))


# --- where the study's findings hold -----------------------------------------------------------------


def _by_claim(group: list[Summary], claim: Any) -> dict[str, list[Summary]]:
    out: dict[str, list[Summary]] = {}
    for s in group:
        if s.recipe != BASELINE and s.delta is not None and claim_for(s.recipe_spec) is claim:
            out.setdefault(s.recipe, []).append(s)
    return out


def _reduction(values: list[float]) -> float | None:
    """Mean percent saved from ratios (×2 smaller is 50% saved)."""
    return statistics.fmean(100 * (1 - 1 / v) for v in values) if values else None


def prune_holds(group: list[Summary]) -> str:
    by_sparsity = sorted(((sparsity_of(ss[0].recipe_spec) or 0.0, ss) for ss in _by_claim(group, PRUNE).values()),
                         key=lambda x: x[0])
    if not by_sparsity:
        return "not measured"
    held = [sp for sp, ss in by_sparsity if statistics.fmean(s.delta or 0.0 for s in ss) >= -1.0]
    at = {sp: statistics.fmean(s.delta or 0.0 for s in ss) for sp, ss in by_sparsity}
    mid = min(at, key=lambda sp: abs(sp - STUDY_PRUNE_HOLDS))
    words = "holds" if held and max(held) >= STUDY_PRUNE_HOLDS else "does not hold"
    lowest = f"{100 * by_sparsity[0][0]:.0f}%"
    reach = f"within a point to {100 * max(held):.0f}%" if held else f"none within a point (lowest {lowest})"
    return f"{words}: {reach}; at {100 * mid:.0f}% {pts(at[mid])} (mean, {len(by_sparsity[0][1])} languages, one-shot)"


def collapse(group: list[Summary]) -> str:
    bases = {s.lang: s for s in group if s.recipe == BASELINE}
    ss = next((ss for ss in _by_claim(group, PRUNE).values()
               if sparsity_of(ss[0].recipe_spec) == STUDY_COLLAPSE), None)
    if not ss:
        return "not measured"
    fell = [s.lang for s in ss if s.lang in bases and s.f1_mean < 0.5 * bases[s.lang].f1_mean]
    words = "stronger (every language)" if len(fell) == len(ss) else ("holds" if fell else "does not hold")
    return f"{words}: {len(fell)} of {len(ss)} keep less than half their F1 at {100 * STUDY_COLLAPSE:.0f}%"


def distillation(group: list[Summary]) -> str:
    found = _by_claim(group, DISTILL)
    if not found:
        return "not measured"
    ss = next(iter(found.values()))
    mean = statistics.fmean(s.delta or 0.0 for s in ss)
    low, high = STUDY_DISTILL_LOSS
    words = "holds" if -high <= mean <= -low else ("costs less" if mean > -low else "costs more")
    saved = _reduction([s.size_x for s in ss if s.size_x])
    return (f"{words}: `{ss[0].recipe}` {pts(mean)} (mean, {len(ss)} languages), "
            f"{saved:.0f}% smaller" if saved is not None else f"{words}: {pts(mean)}")


def llm_int8(group: list[Summary]) -> str:
    ss = next(iter(_by_claim(group, LLM_INT8).values()), None)
    if not ss:
        return "not measured"
    mean = statistics.fmean(s.delta or 0.0 for s in ss)
    size = _reduction([s.size_x for s in ss if s.size_x]) or 0.0
    speed = _reduction([s.speedup_b1 for s in ss if s.speedup_b1]) or 0.0
    f1_word = "costs less F1" if mean > (LLM_INT8.f1_change or 0.0) else "costs as much F1 or more"
    size_word = "saves less size" if size < (LLM_INT8.size_reduction or 0.0) else "saves as much size"
    time_word = "slower, not faster" if speed < 0 else ("faster, less so" if speed < (LLM_INT8.time_reduction or 0.0)
                                                         else "as fast or faster")
    return (f"{f1_word}, {size_word}, {time_word}: {pts(mean)} F1, {size:.0f}% smaller, "
            f"latency {-speed:+.0f}% ({len(ss)} languages)")


def dynamic_vs_llm(group: list[Summary]) -> str:
    dyn = next(iter(_by_claim(group, DYNAMIC_INT8).values()), None)
    llm = next(iter(_by_claim(group, LLM_INT8).values()), None)
    if not dyn or not llm:
        return "not measured"
    by_lang = {s.lang: s for s in llm}
    langs = [s for s in dyn if s.lang in by_lang]
    worse = sum(1 for s in langs if (s.delta or 0.0) < (by_lang[s.lang].delta or 0.0))
    size_d = _reduction([s.size_x for s in dyn if s.size_x]) or 0.0
    size_l = _reduction([s.size_x for s in llm if s.size_x]) or 0.0
    holds = worse == len(langs) and size_d <= size_l + 0.5
    words = "holds" if holds else ("partly" if worse else "does not hold")
    size_word = "as much size as" if abs(size_d - size_l) <= 0.5 else \
        ("less size than" if size_d < size_l else "more size than")
    return (f"{words}: dynamic int8 loses more on {worse} of {len(langs)} languages and saves {size_word} "
            f"LLM.int8() ({size_d:.0f}% / {size_l:.0f}%)")


def varies(group: list[Summary], noise: float) -> str:
    dyn = next(iter(_by_claim(group, DYNAMIC_INT8).values()), None)
    if not dyn:
        return "not measured"
    worst = min(dyn, key=lambda s: s.delta or 0.0)
    best = max(dyn, key=lambda s: s.delta or 0.0)
    spread = (best.delta or 0.0) - (worst.delta or 0.0)
    words = "holds" if spread > noise else "not past noise"
    return (f"{words}: dynamic int8 from {base_lang(worst.lang)} {pts(worst.delta)} "
            f"to {base_lang(best.lang)} {pts(best.delta)}")


def before_after(prune_rows: list[dict[str, Any]]) -> str:
    """Pruning before fine-tuning against after it with one recovery epoch, at the sparsities both ran."""
    own = [r for r in prune_rows if not r["transfer"] and r["when"] in ("before", "after")]
    before = {(r["model_lang"], r["sparsity"]): r["f1"] for r in own if r["when"] == "before"}
    after = {(r["model_lang"], r["sparsity"]): r["f1"] for r in own
             if r["when"] == "after" and r["recover_epochs"] == 1}
    sparsities = sorted({sp for (_, sp) in before} & {sp for (_, sp) in after})
    if not sparsities:
        return "not measured"
    parts = []
    gains = []
    for sp in sparsities:
        langs = [lg for (lg, s) in before if s == sp and (lg, sp) in after]
        gain = statistics.fmean(100 * (before[(lg, sp)] - after[(lg, sp)]) for lg in langs)
        gains.append((sp, gain))
        parts.append(f"{100 * sp:.0f}% {pts(gain)}")
    high = [g for sp, g in gains if sp >= 0.8]
    words = "holds at high sparsity" if high and all(g > 0 for g in high) else "does not hold"
    langs = sorted({lg for (lg, _) in before})
    return f"{words}: before − after (+1 epoch), test F1 on {', '.join(langs)}: {'; '.join(parts)}"


def recovered(prune_rows: list[dict[str, Any]]) -> str:
    """Pruning after fine-tuning with one recovery epoch: how far F1 stays within a point of dense."""
    own = [r for r in prune_rows if not r["transfer"] and r["model_lang"] == r["eval_lang"]]
    dense = {r["model_lang"]: r["f1"] for r in own if r["when"] == "dense"}
    found: dict[float, list[float]] = {}
    for r in own:
        if r["when"] == "after" and r["recover_epochs"] == 1 and r["model_lang"] in dense:
            found.setdefault(r["sparsity"], []).append(100 * (r["f1"] - dense[r["model_lang"]]))
    if not found:
        return "not measured"
    at = {sp: statistics.fmean(d) for sp, d in sorted(found.items())}
    held = [sp for sp, d in at.items() if d >= -1.0]
    words = "holds" if held and max(held) >= STUDY_PRUNE_HOLDS else "does not hold"
    shown = "; ".join(f"{100 * sp:.0f}% {pts(d)}" for sp, d in at.items() if 0.4 <= sp <= 0.7)
    return (f"{words}: within a point to {100 * max(held):.0f}% " if held else f"{words}: ") + \
        f"(test ΔF1, mean of {', '.join(sorted(dense))}: {shown})"


def read_prune_sweep(path: Path) -> list[dict[str, Any]]:
    """The pruning sweep's CSV (ndogo prune-sweep): one row per model and evaluation language."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [{"model_lang": r["model_lang"], "eval_lang": r["eval_lang"], "when": r["when"],
                 "sparsity": float(r["sparsity"]), "recover_epochs": int(r["recover_epochs"] or 0),
                 "transfer": r["transfer"] == "True", "f1": float(r["f1"])} for r in csv.DictReader(handle)]


def study_table(summaries: list[Summary], prune_rows: list[dict[str, Any]], noise: float) -> str:
    """One line per finding of the study: its words, then ours on each atlas, with the verdict first."""
    groups = {f"{m}, {c}": of_atlas(summaries, m, c) for m, c in atlases(summaries)}
    holds = PRUNE.finding.split(";")[0]
    lines: list[tuple[str, str, Callable[[list[Summary]], str] | None, Callable[[], str] | None]] = [
        ("magnitude pruning, one-shot", holds, prune_holds, None),
        ("… with one recovery epoch (pruning sweep)", holds, None, lambda: recovered(prune_rows)),
        ("… past ~70%", PRUNE.finding.split(";")[1].strip(), collapse, None),
        ("… before fine-tuning (pruning sweep)", "steadier than after fine-tuning", None,
         lambda: before_after(prune_rows)),
        ("distillation", DISTILL.finding, distillation, None),
        ("LLM.int8()", LLM_INT8.finding, llm_int8, None),
        ("dynamic int8", DYNAMIC_INT8.finding, dynamic_vs_llm, None),
        ("by language", "results vary by language", lambda g: varies(g, noise), None),
    ]
    rows = []
    for name, says, per_atlas, once in lines:
        # the pruning sweep ran minilm on MasakhaNER 1.0 only: its lines fill the first column
        if per_atlas is not None:
            ours = [per_atlas(g) for g in groups.values()]
        else:
            ours = [once() if once else "–"] + ["–"] * (len(groups) - 1)
        rows.append([name, says, *ours])
    return table(["finding", "the study", *(f"ours: {g}" for g in groups)], rows)


def predictor_table(checks: list[tuple[str, list[dict[str, str]]]]) -> str:
    """How often a forward check's measured cost fell within the error the prediction stated."""
    rows = []
    for name, found in checks:
        for predictor in (None, "facts", "mean"):
            mine = [r for r in found if predictor is None or r["predictor"] == predictor]
            if not mine:
                continue
            hits = sum(r["within"] == "True" for r in mine)
            misses = [float(r["miss"]) for r in mine]
            langs = sorted({r["lang"] for r in mine})
            rows.append([name, predictor or "all", ", ".join(langs), str(len(mine)),
                         f"{hits} ({100 * hits / len(mine):.0f}%)", f"{statistics.median(misses):.2f}"])
    return table(["check", "predictor", "languages", "predictions", "within the stated error",
                  "median miss (points)"], rows, right=(3, 4, 5))


def machines_table(bench: Path) -> str:
    """Cells measured twice, on two machines: the same cell id (model, chain, seed, data), its F1 on each."""
    def p(x: float | None) -> float | None:
        return None if x is None else 100 * x

    out = []
    for again, first, machine_a, machine_b in REPEATS:
        before = {r["cell_id"]: r for r in load_rows(bench / first)}
        for r in load_rows(bench / again):
            b = before.get(r["cell_id"])
            if b is None or r.get("f1") is None or b.get("f1") is None:
                continue
            out.append([f"{r['model']} {r['lang']} {r['recipe']}", f"{machine_a} / {machine_b}",
                        pts(p(b["f1"]), False), pts(p(r["f1"]), False), pts(p(r["f1"] - b["f1"])),
                        pts(p(b.get("dev_f1")), False), pts(p(r.get("dev_f1")), False),
                        f"[{first}](bench/{first}) / [{again}](bench/{again})"])
    header = ["cell", "machines (first / second)", "test F1, first", "test F1, second", "Δ test", "dev F1, first",
              "dev F1, second", "rows"]
    return table(header, out, right=range(2, 7))


def evidence_table(bench: Path) -> str:
    """Every committed CSV of sweep rows: what it measured, how many rows, with how many threads."""
    rows = []
    for path in sorted(bench.glob("*.csv")):
        try:
            found = load_rows(path, status=None)
        except ValueError:
            continue  # not rows of a sweep (facts, checks, pruning sweep): named where they are used
        done = [r for r in found if r.get("status") == "done"]
        models = sorted({r["model"] for r in found})
        corpora = sorted({CORPORA.get(corpus_name(r.get("data")), corpus_name(r.get("data")) or "–") for r in found})
        threads = sorted({str(r["threads"]) for r in done if r.get("threads")})
        rows.append([f"[{path.name}](bench/{path.name})", ", ".join(models), ", ".join(corpora),
                     str(len({r["lang"] for r in found})), str(len({r["recipe"] for r in found})),
                     ", ".join(str(s) for s in sorted({r["seed"] for r in found})),
                     f"{len(done)} / {len(found) - len(done)}", ", ".join(threads) or "–"])
    return table(["rows", "model", "corpus", "languages", "recipes", "seeds", "done / failed", "threads"],
                 rows, right=(3, 4, 6))


def readme_table(atlas: list[Summary], students: list[Summary], langs: Iterable[str] = README_LANGS) -> str:
    """The README's results: minilm on MasakhaNER 1.0's hau, swa and yor, seeds averaged where there are several."""
    langs = list(langs)
    methods = [(atlas, "onnx-int8", "ONNX Runtime int8"), (atlas, "trimw-int8", "trimmed vocabulary + int8"),
               (atlas, "distil3-int8", "3-layer student + int8"),
               (students, "distil3-aug-trimw-int8", "3-layer student, teacher-labelled text, + trim + int8"),
               (atlas, "llm-int8", "LLM.int8() (bitsandbytes, CPU)"), (atlas, "dynamic-int8", "PyTorch dynamic int8")]

    def find(found: list[Summary], recipe: str, lang: str) -> Summary | None:
        return next((s for s in found if s.model == "minilm" and s.lang == lang and s.recipe == recipe), None)

    base = [find(atlas, BASELINE, lg) for lg in langs]
    rows = [["**fp32 baseline**: test F1 ± std, seeds (dev F1)",
             *(f"{b.f1_text()}, n={len(b.f1)} (dev {pts(100 * (b.dev_f1_mean or 0), False)})" if b else "–"
               for b in base)],
            ["size on disk / batch-1 latency", *(f"{mb(b.size_bytes)} / {ms(b.latency_ms_b1)}" if b else "–"
                                                  for b in base)]]
    for found, recipe, label in methods:
        cells = [find(found, recipe, lg) for lg in langs]
        if not any(cells):
            continue
        rows.append([f"**{label}**: test ΔF1 ± std, seeds (dev ΔF1)",
                     *(f"{delta_text(s)} (dev {pts(s.dev_delta)})" if s else "–" for s in cells)])
        rows.append(["… smaller / faster at batch 1",
                     *(f"{times(s.size_x)} / {times(s.speedup_b1)}" if s else "–" for s in cells)])
    return table(["", *langs], rows, right=range(1, len(langs) + 1))


# --- the other tasks ----------------------------------------------------------------------------------

TASK_MODELS = ("minilm", "me5s")  # the models every task atlas declares (configs/atlas-<task>-<model>.toml)


def task_atlas_paths(bench: Path) -> list[tuple[str, str, Path]]:
    """(task, model, CSV) of every task atlas but NER's (whose rows are ATLAS): the rows of
    configs/atlas-<task>-<model>.toml are committed as docs/bench/atlas-<task>-<model>.csv."""
    from ndogo.tasks import get_task, task_names

    return [(name, model, bench / f"atlas-{name}-{model}.csv") for name in task_names()
            if get_task(name).metric != DEFAULT_METRIC for model in TASK_MODELS]


def task_costs(bench: Path) -> str:
    """For each task and model: the same table as NER's (`method_costs`), in the task's metric, or what is
    not run yet. A heading per task: this region is docs/tasks.md's body."""
    from ndogo.tasks import get_task

    parts: list[str] = []
    headed: set[str] = set()
    for name, model, path in task_atlas_paths(bench):
        task = get_task(name)
        if name not in headed:
            headed.add(name)
            parts.append(f"### {task.title}\n\n*{task.summary}*")
        config = f"configs/atlas-{name}-{model}.toml"
        if not path.is_file():
            parts.append(f"**{model}**: no rows yet ([{config}](../{config}) declares them).")
            continue
        summaries = summarize(one_row_per_model(load_rows(path)))
        corpora = list(dict.fromkeys(corpus_of(s) for s in summaries)) or ["–"]
        parts.append(f"**{model}** on {', '.join(corpora)} (rows: [{path.name}](bench/{path.name}); "
                     f"config: [{config}](../{config})):\n\n" + method_costs(summaries, model, corpora[0]))
    return "\n\n".join(parts)


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):  # ties share the mean of their ranks
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation (Pearson's on ranks; statistics has no ranked mode before Python 3.12)."""
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    return statistics.correlation(_ranks(a), _ranks(b))


def plain_lang(lang: str) -> str:
    """The language a code names across corpora: SIB-200's hau_Latn is MasakhaNER's hau, swh_Latn is swa."""
    from ndogo.data.leakage import LANGUAGE_ALIASES

    base = base_lang(lang).split("_")[0]
    return LANGUAGE_ALIASES.get(base, base)


def cross_task_table(ner: list[Summary], bench: Path, model: str) -> str:
    """One model's methods on every task: the mean test Δ over languages (dev Δ beside it, n languages), each in
    its task's metric; then, for each task, how well a language's NER Δ ranks its Δ on that task (Spearman ρ
    over the languages both measured, the methods both ran)."""
    from ndogo.tasks import get_task

    columns: list[tuple[str, list[Summary]]] = [(f"NER, {CORPORA['masakhaner']} (F1)",
                                                 of_atlas(ner, model, CORPORA["masakhaner"]))]
    for name, m, path in task_atlas_paths(bench):
        if m == model and path.is_file():
            task = get_task(name)
            columns.append((f"{task.title} ({task.metric_label})", summarize(one_row_per_model(load_rows(path)))))
    if len(columns) == 1:
        return f"No task but NER has rows for {model} yet."
    recipes = list(dict.fromkeys(s.recipe for _, group in columns for s in group if s.recipe != BASELINE))
    # a method one task alone ran compares with nothing here (docs/tasks.md has it)
    recipes = [r for r in recipes if sum(any(s.recipe == r for s in group) for _, group in columns) >= 2]
    rows = []
    for recipe in recipes:
        cells = []
        for _, group in columns:
            found = [s for s in group if s.recipe == recipe and s.delta is not None]
            if not found:
                cells.append("–")
                continue
            dev = [s.dev_delta for s in found if s.dev_delta is not None]
            cells.append(f"{pts(statistics.fmean(s.delta for s in found if s.delta is not None))} / "
                         f"{pts(statistics.fmean(dev)) if dev else '–'} ({len(found)})")
        rows.append([f"`{recipe}`", *cells])
    out = table(["method", *(f"{title}: test Δ / dev Δ (languages)" for title, _ in columns)], rows,
                right=range(1, len(columns) + 1))
    ner_by = {(plain_lang(s.lang), s.recipe): s.delta for s in columns[0][1]
              if s.delta is not None and s.recipe != BASELINE}
    corr = []
    for title, group in columns[1:]:
        pairs = [(ner_by[(plain_lang(s.lang), s.recipe)], s.delta) for s in group
                 if s.delta is not None and (plain_lang(s.lang), s.recipe) in ner_by]
        langs = {plain_lang(s.lang) for s in group if (plain_lang(s.lang), s.recipe) in ner_by}
        rho = spearman([a for a, _ in pairs], [b for _, b in pairs])
        corr.append([title, str(len(langs)), str(len(pairs)), "–" if rho is None else f"{rho:+.2f}"])
    return (out + "\n\nMethods that only one task ran are left out here (each task's own table above has them).\n\n"
            + table(["task", "languages shared with NER", "(language, method) pairs",
                     "Spearman ρ of test Δ, NER against the task"], corr, right=(1, 2, 3)))


PARALLEL_FACTS = "sib-facts.csv"  # `ndogo data stats ../shared/data/sib200 --facts --tokenizer minilm --tokenizer me5s`


PARALLEL_MIN_LANGS = 5


def parallel_table(bench: Path, model: str) -> str:
    """The task atlas whose corpus is SIB-200 (the same FLORES-200 sentences in every language, so only the
    language differs): per language, the model tokenizer's sub-words per word, the baseline's score and each
    method's test Δ, ordered by the baseline's dev score; then how each method's Δ ranks with fertility and with
    the baseline's score (Spearman ρ over the languages)."""
    from ndogo.report.facts import read_facts

    found = [(name, path) for name, m, path in task_atlas_paths(bench) if m == model and path.is_file()]
    summaries: list[Summary] = []
    for _, path in found:
        rows = [r for r in load_rows(path) if corpus_name(r.get("data")) == "sib200"]
        summaries += summarize(one_row_per_model(rows))
    if not summaries:
        return f"No SIB-200 rows for {model} yet."
    facts_path = bench / PARALLEL_FACTS
    fertility = {f["lang"]: float(f["fertility_test"]) for f in read_facts([facts_path])
                 if f["tokenizer"] == model} if facts_path.is_file() else {}
    bases = sorted((s for s in summaries if s.recipe == BASELINE), key=lambda s: -(s.dev_f1_mean or 0.0))
    recipes = list(dict.fromkeys(s.recipe for s in summaries if s.recipe != BASELINE))
    by = {(s.lang, s.recipe): s for s in summaries}
    label = bases[0].metric_label if bases else "score"
    rows = []
    for b in bases:
        cells = [pts(by[(b.lang, r)].delta) if (b.lang, r) in by else "–" for r in recipes]
        rows.append([b.lang, f"{fertility[b.lang]:.2f}" if b.lang in fertility else "–",
                     f"{b.f1_text()} (dev {pts(100 * (b.dev_f1_mean or 0.0), False)})", *cells])
    out = table(["language", "sub-words / word", f"baseline {label}, test (dev)", *(f"`{r}`" for r in recipes)],
                rows, right=range(1, len(recipes) + 3))
    corr = []
    for r in recipes:
        pairs = [(by[(b.lang, r)].delta, b) for b in bases if (b.lang, r) in by and by[(b.lang, r)].delta is not None]
        fert = [(d, fertility[b.lang]) for d, b in pairs if b.lang in fertility]
        # under PARALLEL_MIN_LANGS languages a rank correlation is ±1 or 0 by arithmetic, not by evidence
        rho_f = spearman([d for d, _ in fert], [f for _, f in fert]) if len(fert) >= PARALLEL_MIN_LANGS else None
        rho_b = spearman([d for d, _ in pairs], [b.dev_f1_mean or 0.0 for _, b in pairs]) \
            if len(pairs) >= PARALLEL_MIN_LANGS else None
        corr.append([f"`{r}`", str(len(pairs)), "–" if rho_f is None else f"{rho_f:+.2f}",
                     "–" if rho_b is None else f"{rho_b:+.2f}"])
    return (out + "\n\n" + table(["method", "languages", "ρ(Δ, sub-words per word)", f"ρ(Δ, baseline dev {label})"],
                                   corr, right=(1, 2, 3))
            + f"\n\nρ is left out (–) for a method measured on fewer than {PARALLEL_MIN_LANGS} languages.")


# --- far smaller students ------------------------------------------------------------------------------

FAR_STUDENTS = {"minilm": "students-far-minilm.csv", "me5s": "students-far-me5s.csv"}
FAR_TARGETS = {"minilm": (16.0, 8.0), "me5s": (32.0, 10.0)}  # (× smaller, × faster at batch 1): issue #39's


def _meets(deltas: list[float], n: int) -> bool:
    """#39's F1 rule on one split: every language measured, mean loss at most 1 point, none over 2."""
    return len(deltas) == n and statistics.fmean(deltas) >= -1.0 and min(deltas) >= -2.0


def far_students_table(bench: Path, model: str) -> str:
    """Each candidate chain of configs/students-far-<model>.toml: size and speed against the fp32 baseline (batch 1
    and batch 32), dev and test Δ per language (mean ± std over seeds, n) and their mean over the languages
    measured, and whether it meets the targets on dev (the choice) and on test: only once it has three seeds on
    each of the target's three languages (before that, what is missing)."""
    path = bench / FAR_STUDENTS[model]
    # every round of candidates (students-far-minilm.toml, students-far-minilm-2.toml, ...), each declared before
    # its rows; the repository's configs/ sits two levels above docs/bench
    found_configs = sorted(bench.parent.parent.glob(f"configs/students-far-{model}*.toml"))
    configs = [f"configs/{c.name}" for c in found_configs] or [f"configs/students-far-{model}.toml"]
    declared = ", ".join(f"[{c}](../{c})" for c in configs)
    if not path.is_file():
        return f"**{model}**: no rows yet ({declared} declares the candidates)."
    rows_all = load_rows(path)
    summaries = summarize(one_row_per_model(rows_all))
    # speed from every row: each student seed's sweep timed the teacher again beside it, and a seed's
    # ratio is read within its own run (`summary._times`), as `recommend` reads the same CSV
    timed = {(s.lang, s.recipe): s for s in summarize(rows_all)}
    langs = list(README_LANGS)  # the target's languages, measured or not
    bases = {s.lang: s for s in summaries if s.recipe == BASELINE}
    smaller, faster = FAR_TARGETS[model]
    rows = []
    for recipe in dict.fromkeys(s.recipe for s in summaries if s.recipe != BASELINE):
        by = {s.lang: s for s in summaries if s.recipe == recipe}
        cells = []
        for lang in langs:
            x = by.get(lang)
            spread = len(x.f1) > 1 if x is not None else False
            cells.append("–" if x is None or x.delta is None else
                         f"{pts(x.dev_delta)}" + (f" ± {x.dev_delta_std:.2f}" if spread else "") +
                         f" / {pts(x.delta)}" + (f" ± {x.delta_std:.2f}" if spread else "") + f", n={len(x.f1)}")
        found = [by[lg] for lg in langs if lg in by and by[lg].delta is not None]
        size = statistics.fmean(x.size_x for x in found if x.size_x) if any(x.size_x for x in found) else None
        speeds = [timed[(x.lang, recipe)] for x in found]
        b1 = statistics.median(x.speedup_b1 for x in speeds if x.speedup_b1) if any(
            x.speedup_b1 for x in speeds) else None
        e2e = statistics.median(x.speedup_e2e_b1 for x in speeds if x.speedup_e2e_b1) if any(
            x.speedup_e2e_b1 for x in speeds) else None
        b32 = [x.speedup_b32 for x in speeds if x.speedup_b32]
        dev = [x.dev_delta for x in found if x.dev_delta is not None]
        test = [x.delta for x in found if x.delta is not None]
        complete = len(found) == len(langs) and all(len(x.f1) >= 3 for x in found)  # three seeds a language
        fast = size is not None and b1 is not None and size >= smaller and b1 >= faster
        if complete:
            verdict = f"{'yes' if fast and _meets(dev, len(langs)) else 'no'} / " \
                      f"{'yes' if fast and _meets(test, len(langs)) else 'no'}"
        else:
            fewest = min((len(x.f1) for x in found), default=0)
            verdict = f"not yet: {len(found)} of {len(langs)} languages, {fewest} of 3 seeds in the fewest"
        rows.append([f"`{recipe}`", times(size), times(b1), times(e2e), times(statistics.median(b32) if b32 else None),
                     *cells,
                     pts(statistics.fmean(dev)) if dev else "–", pts(statistics.fmean(test)) if test else "–",
                     verdict])
    teacher = ", ".join(f"{lg} {pts(100 * bases[lg].f1_mean, False)} "
                        f"(dev {pts(100 * (bases[lg].dev_f1_mean or 0), False)})" for lg in langs if lg in bases)
    head = (f"**{model}** (rows: [{path.name}](bench/{path.name}); candidates declared in {declared}; "
            f"target: at least {smaller:g}× smaller and {faster:g}× faster at batch 1, mean loss at most 1 point "
            f"and no language over 2, on dev and on test). Teacher F1, test (dev): {teacher}. \"Faster\" is the "
            "forward pass's latency, as every speed-up in these docs; end to end adds tokenizing the raw sentence "
            "and decoding its entities, work that compression does not shrink, so that ratio is smaller.")
    return head + "\n\n" + table(
        ["chain", "smaller", "faster, batch 1 (median)", "faster end to end, batch 1 (median)",
         "faster, batch 32 (median)", *(f"{lg}: dev Δ / test Δ" for lg in langs), "mean dev Δ", "mean test Δ",
         "target met: dev / test"],
        rows, right=range(1, len(langs) + 7))


# What each lever of a student chain does, read off the candidates themselves: a lever is one option of the
# chain's spec (how deep, how wide, how fast it learns, how many vocabulary pieces, how many bits); two chains
# that differ in that option alone measure it. Other options (epochs, patience, teacher-labelled text) must
# match for the pair to count.
LEVERS = {"depth": ("distill", "student_layers"), "width": ("distill", "student_hidden"), "lr": ("distill", "lr"),
          "patience": ("distill", "patience"), "vocabulary": ("trim", "keep"), "bits": ("quantize", "method")}
LEVER_DEFAULTS = {"width": "the teacher's", "lr": "0.0001 (default)", "patience": "none (every epoch)",
                  "vocabulary": "all", "bits": "fp32"}


def _levers(spec: str) -> tuple[dict[str, str], tuple[tuple[str, str], ...]] | None:
    """A student chain's lever settings and everything else in its spec; None for a chain with no student."""
    stages: dict[str, dict[str, str]] = {}
    for part in (p.strip() for p in spec.split("|") if p.strip()):
        name, _, options = part.partition(":")
        stages[name.strip()] = dict(kv.split("=", 1) for kv in options.split(",") if "=" in kv)
    if "distill" not in stages:
        return None
    levers, rest = {}, []
    for lever, (stage, key) in LEVERS.items():
        value = stages.get(stage, {}).get(key)
        if lever == "bits" and value and stages["quantize"].get("matmul"):
            value += f" (MatMul {stages['quantize']['matmul']})"
        levers[lever] = value or LEVER_DEFAULTS.get(lever, "?")
    for stage, options in stages.items():
        rest += [(f"{stage}.{k}", v) for k, v in options.items() if (stage, k) not in LEVERS.values()
                 and not (stage == "quantize" and k == "matmul")]
    return levers, tuple(sorted(rest))


def levers_table(bench: Path, model: str) -> str:
    """For each change of one lever between two declared chains (everything else equal), the mean change in dev and
    test Δ (points), in size and in batch-1 speed (ratios), over the (language, seed) pairs both chains ran.

    Pairs are of one seed: two chains' means over different seeds would read a seed's luck as the lever's (a
    patience-4 student of seed 1 against the patience-2 mean of seeds 42 and 1 once moved test by +0.05 where
    seed 1 alone moved it by +1.95)."""
    path = bench / FAR_STUDENTS[model]
    if not path.is_file():
        return f"No {model} student rows yet."
    rows_all = load_rows(path)
    bases = [r for r in rows_all if r["recipe"] == BASELINE]
    summaries: list[Summary] = []
    seed_of: dict[int, int] = {}
    for seed in sorted({r["seed"] for r in rows_all if r["recipe"] != BASELINE}):
        for s in summarize(bases + [r for r in rows_all if r["recipe"] != BASELINE and r["seed"] == seed]):
            if s.recipe != BASELINE:
                summaries.append(s)
                seed_of[id(s)] = seed
    parsed = {id(s): _levers(s.recipe_spec) for s in summaries}
    changes: dict[tuple[str, str, str], list[tuple[float, float, float, float]]] = {}
    for a in summaries:
        for b in summaries:
            pa, pb = parsed[id(a)], parsed[id(b)]
            if a.lang != b.lang or seed_of[id(a)] != seed_of[id(b)] or pa is None or pb is None or pa[1] != pb[1]:
                continue
            differ = [k for k in LEVERS if pa[0][k] != pb[0][k]]
            if len(differ) != 1 or None in (a.dev_delta, b.dev_delta, a.delta, b.delta, a.size_x, b.size_x,
                                            a.speedup_b1, b.speedup_b1):
                continue
            lever = differ[0]
            if (lever, pb[0][lever], pa[0][lever]) in changes:  # each pair once, in the order first seen
                continue
            changes.setdefault((lever, pa[0][lever], pb[0][lever]), []).append(
                (b.dev_delta - a.dev_delta, b.delta - a.delta, b.size_x / a.size_x, b.speedup_b1 / a.speedup_b1))
    if not changes:
        return f"No two {model} chains differ in one lever alone yet."
    rows = []
    for (lever, old, new), found in sorted(changes.items()):
        rows.append([lever, f"{old} → {new}", str(len(found)), pts(statistics.fmean(f[0] for f in found)),
                     pts(statistics.fmean(f[1] for f in found)), times(statistics.fmean(f[2] for f in found)),
                     times(statistics.fmean(f[3] for f in found))])
    return table(["lever", "change", "pairs", "dev Δ moves by", "test Δ moves by", "size: smaller by",
                  "batch 1: faster by"], rows, right=range(2, 7))


# --- the documents -------------------------------------------------------------------------------------


class Evidence:
    """The committed CSVs under a repository root, read once for all the tables."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.bench = self.root / BENCH
        missing = [name for name in (*ATLAS, STUDENTS, PRUNE_SWEEP, *(f for _, f in PREDICT_CHECKS))
                   if not (self.bench / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.bench / missing[0]}: missing; the reference's tables are built from it")

    @cached_property
    def sources(self) -> list[Path]:
        return [self.bench / name for name in ATLAS]

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        return load_sources(self.sources)

    @cached_property
    def summaries(self) -> list[Summary]:
        return summarize(self.rows)

    @cached_property
    def students(self) -> list[Summary]:
        return summarize(one_row_per_model(load_rows(self.bench / STUDENTS)))

    @cached_property
    def noise(self) -> float:
        return noise_points(self.summaries) or 2.0

    def cost(self, model: str, corpus: str) -> str:
        return method_costs(self.summaries, model, corpus)

    def ship(self) -> str:
        picks, best = pick_all(self.sources, self.rows)
        return ship_table(picks, best)

    def study(self) -> str:
        return study_table(self.summaries, read_prune_sweep(self.bench / PRUNE_SWEEP), self.noise)

    def predictor(self) -> str:
        checks = []
        for name, file in PREDICT_CHECKS:
            with (self.bench / file).open(encoding="utf-8", newline="") as handle:
                checks.append((f"{name} ([{file}](bench/{file}))", list(csv.DictReader(handle))))
        return predictor_table(checks)

    def noise_line(self) -> str:
        seeded = sorted({s.lang for s in self.summaries if s.recipe == BASELINE and len(s.f1) > 1})
        return (f"Noise threshold: **{self.noise:.2f} points**, twice the largest seed spread (std of test F1) of a "
                f"baseline with several seeds ({', '.join(seeded)}); a difference smaller than that is not told "
                "from noise.")


def builders(ev: Evidence) -> dict[str, dict[str, Callable[[], str]]]:
    """Every generated region, by document and name (DOCUMENTS lists the documents)."""
    return {
        "docs/results.md": {
            "ship": ev.ship,
            "cost-minilm": lambda: ev.cost("minilm", "MasakhaNER 1.0"),
            "cost-me5s": lambda: ev.cost("me5s", "MasakhaNER 1.0"),
            "cost-minilm-mnr2": lambda: ev.cost("minilm", "MasakhaNER 2.0"),
            "cost-students": lambda: students_table(ev.students, README_LANGS),
            "study": ev.study,
            "versus": lambda: versus_table(ev.summaries, ev.noise),
            "noise": ev.noise_line,
            "predictor": ev.predictor,
            "machines": lambda: machines_table(ev.bench),
        },
        "README.md": {"readme-results": lambda: readme_table(ev.summaries, ev.students)},
        "docs/rows.md": {
            "evidence": lambda: evidence_table(ev.bench),
            "recipes": lambda: recipes_table(ev.summaries + ev.students),
        },
        "docs/tasks.md": {"task-costs": lambda: task_costs(ev.bench),
                          **{f"cross-task-{m}": (lambda m=m: cross_task_table(ev.summaries, ev.bench, m))
                             for m in TASK_MODELS},
                          **{f"parallel-{m}": (lambda m=m: parallel_table(ev.bench, m)) for m in TASK_MODELS}},
        "docs/students.md": {**{f"far-{m}": (lambda m=m: far_students_table(ev.bench, m)) for m in FAR_STUDENTS},
                             **{f"levers-{m}": (lambda m=m: levers_table(ev.bench, m)) for m in FAR_STUDENTS}},
    }


DOCUMENTS = ("docs/results.md", "README.md", "docs/rows.md", "docs/tasks.md", "docs/students.md")
REGION = re.compile(r"(<!-- generated: ([\w-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def fill(text: str, made: dict[str, Callable[[], str]], where: str) -> tuple[str, list[str]]:
    """The text with each marked region rebuilt, and the names of those whose content changed.

    Every builder must have its region and every region a builder: a region left out of the
    document, or one the code no longer makes, would be a table nobody regenerates.
    """
    found = [m.group(2) for m in REGION.finditer(text)]
    unknown = sorted(set(found) - set(made))
    if unknown:
        raise ValueError(f"{where}: unknown generated region {unknown[0]!r}; known: {', '.join(made)}")
    absent = [name for name in made if name not in found]
    if absent:
        raise ValueError(f"{where}: no `<!-- generated: {absent[0]} -->` … `<!-- end generated -->` region")
    twice = sorted({n for n in found if found.count(n) > 1})
    if twice:
        raise ValueError(f"{where}: region {twice[0]!r} appears twice")
    changed: list[str] = []

    def one(m: re.Match[str]) -> str:
        body = "\n" + made[m.group(2)]().rstrip("\n") + "\n\n"
        if body != m.group(3):
            changed.append(m.group(2))
        return m.group(1) + body + m.group(4)

    return REGION.sub(one, text), changed


def regenerate(root: str | Path, check: bool = False) -> list[str]:
    """Rebuild every generated region of docs/results.md and README.md from docs/bench/*.csv.

    Returns the regions (`file:name`) whose content differs from what is there; with `check`
    nothing is written, so a test or CI can fail on a stale document.
    """
    root = Path(root)
    ev = Evidence(root)
    changed = []
    for doc, made in builders(ev).items():
        path = root / doc
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found (is {root} the repository root?)")
        text = path.read_text(encoding="utf-8")
        new, names = fill(text, made, doc)
        changed += [f"{doc}:{name}" for name in names]
        if names and not check:
            path.write_text(new, encoding="utf-8")
    return changed
