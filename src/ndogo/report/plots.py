"""The report's plots (matplotlib, written as PNG): one panel per language.

- F1 against sparsity, one line per family of pruning recipes (the same chain at
  several sparsities, e.g. prune after fine-tuning with and without recovery),
  starting from the dense baseline at sparsity 0.
- F1 against size on disk and against batch-1 latency, every method a point,
  with the Pareto front (nothing else is both cheaper and better) drawn through.
- The atlas: a language × method heatmap of ΔF1 (and of size and speed-up), so which
  languages degrade first under which method is read at a glance.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter, ScalarFormatter

from ndogo.report.summary import BASELINE, Summary, ordered, pareto_front, scores_label

SPARSITY_OPTION = re.compile(r"sparsity=[0-9.eE+-]+,?")
SPARSITY_VALUE = re.compile(r"sparsity=([0-9.eE+-]+)")


WIDTH_IN, DPI = 13.0, 110  # 1,430 px: the report page's width, so a plot is read at its own size


def _panels(n: int) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure the width of the page, two panels a row (one for one language), titles kept inside."""
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH_IN, (6.5 if cols == 1 else 5.0) * rows), squeeze=False,
                             layout="constrained")
    flat = [a for row in axes for a in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


STRUCTURED = re.compile(r"method=(heads|ffn)")


def pruning_unit(spec: str) -> str:
    """What a recipe's `sparsity=` counts: the pruned weights, or whole attention heads / FFN neurons."""
    found = STRUCTURED.findall(spec)
    return {"heads": "attention heads", "ffn": "FFN neurons"}[found[-1]] if found else "encoder Linear weights"


def family(spec: str) -> str:
    """A recipe with its sparsity taken out: recipes that differ only in sparsity form one curve."""
    return SPARSITY_OPTION.sub("", spec).replace(":|", " |").rstrip(":,") or "dense"


def requested_sparsity(s: Summary, baseline: float | None = None) -> float | None:
    """The sparsity a recipe asked for (its last `sparsity=` option), else the measured one.

    The study plots F1 against the pruning level; the measured sparsity of the whole
    model is lower (embeddings and norms are not pruned), so the requested one is used.
    A measured sparsity counts only for a recipe that prunes, and only beyond the baseline's
    own zeros (me5s's fine-tuned weights are 9% zeros already).
    """
    found = SPARSITY_VALUE.findall(s.recipe_spec)
    if found:
        return float(found[-1])
    own = baseline or 0.0
    prunes = "prune" in s.recipe_spec  # a student or a quantized model may hold zeros; it is no pruned model
    return s.sparsity if prunes and s.sparsity is not None and s.sparsity - own > 0.005 else None


def plot_sparsity(summaries: list[Summary], path: Path, title: str = "") -> Path | None:
    """F1 against sparsity per language; None when no recipe prunes (nothing to show). `title` heads the
    suptitle (the task, in a report of several)."""
    zeros = {(s.model, s.lang): s.sparsity for s in summaries if s.recipe == BASELINE}
    levels = {id(s): requested_sparsity(s, zeros.get((s.model, s.lang))) for s in summaries}
    if not any(levels.values()):
        return None
    langs = ordered([s.lang for s in summaries])
    several_models = len({s.model for s in summaries}) > 1
    fig, axes = _panels(len(langs))
    for ax, lang in zip(axes, langs, strict=True):
        here = [s for s in summaries if s.lang == lang]
        base = {s.model: s for s in here if s.recipe == BASELINE}
        curves: dict[tuple[str, str], list[Summary]] = {}
        for s in here:
            if levels[id(s)]:
                curves.setdefault((s.model, family(s.recipe_spec)), []).append(s)
        for (model, name), points in curves.items():
            points = sorted(points, key=lambda s: levels[id(s)] or 0.0)
            start = [base[model]] if model in base else []
            xs = [0.0] * len(start) + [100 * (levels[id(s)] or 0.0) for s in points]
            ys = [100 * s.f1_mean for s in start + points]
            errs = [100 * s.f1_std for s in start + points]
            unit = pruning_unit(points[0].recipe_spec)
            name = name if unit.startswith("encoder") else f"{name} ({unit} removed)"
            label = f"{model}: {name}" if several_models else name  # amh's only curve is me5s's: say so
            ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=label)
        for b in base.values():
            ax.axhline(100 * b.f1_mean, color="grey", linestyle=":", linewidth=1)
        ax.set(title=lang, xlabel="pruned (%)", ylabel=f"test {scores_label(here)}", xlim=(-3, 100))
        ax.grid(alpha=0.3)
        if curves:
            ax.legend(fontsize=8)
        else:  # e.g. a baseline that found no entity: its pruning cells were not run
            ax.text(0.5, 0.5, "no pruned model measured", ha="center", va="center", color="grey",
                    transform=ax.transAxes)
    fig.suptitle(f"{title}{scores_label(summaries)} against sparsity: % of the encoder's Linear weights, or of its "
                 "heads / FFN neurons for structured recipes (legend)\ndotted: dense baseline; bars: std over seeds",
                 fontsize=10)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_tradeoff(summaries: list[Summary], attr: str, xlabel: str, path: Path, scale: float = 1.0,
                  logx: bool = False, title: str = "") -> Path | None:
    """F1 against a cost (size or latency) per language, with the Pareto front."""
    langs = ordered([s.lang for s in summaries if getattr(s, attr) is not None])
    if not langs:
        return None
    fig, axes = _panels(len(langs))
    for ax, lang in zip(axes, langs, strict=True):
        here = [s for s in summaries if s.lang == lang and getattr(s, attr) is not None]
        xs = [getattr(s, attr) * scale for s in here]
        ys = [100 * s.f1_mean for s in here]
        front = pareto_front(list(zip(xs, ys, strict=True)))
        ax.scatter(xs, ys, color="tab:blue", zorder=3)
        fx = [xs[i] for i in front]
        fy = [ys[i] for i in front]
        ax.step(fx, fy, where="post", color="tab:red", linewidth=1.5, label="Pareto front", zorder=2)
        ax.scatter(fx, fy, facecolors="none", edgecolors="tab:red", s=90, zorder=4)
        if logx and min(xs) > 0 and max(xs) / min(xs) > 8:
            # sizes span orders of magnitude once quantization and trimming stack; plain numbers on the axis
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(title=lang, xlabel=xlabel, ylabel=f"test {scores_label(here)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        labels = [s.recipe if len({t.model for t in here}) == 1 else f"{s.model}/{s.recipe}" for s in here]
        place_labels(fig, ax, xs, ys, labels)
    fig.suptitle(f"{title}{scores_label(summaries)} against {xlabel.split(' (')[0]} (red: Pareto front)")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def place_labels(fig: plt.Figure, ax: plt.Axes, xs: list[float], ys: list[float], labels: list[str],
                 fontsize: float = 8) -> None:
    """Label each point without two labels overlapping: each goes to the first free slot near its point.

    Written here because matplotlib has no label placement (adjustText would be a
    dependency for one loop). Candidate offsets are tried nearest first, measured
    in pixels after a draw, so the check uses the real text extents.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    offsets = [(4, 4), (4, -12), (-4, 4), (-4, -12)] + [(4, 4 + 11 * k * sign) for k in range(1, 8)
                                                          for sign in (1, -1)]
    for i in sorted(range(len(xs)), key=lambda i: (xs[i], ys[i])):
        for dx, dy in offsets:
            text = ax.annotate(labels[i], (xs[i], ys[i]), fontsize=fontsize, xytext=(dx, dy),
                               textcoords="offset points", ha="left" if dx > 0 else "right",
                               arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5} if abs(dy) > 12 else None)
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in placed):
                placed.append(box)
                break
            text.remove()
        else:  # no free slot: keep the first one (rare; a dense cluster of near-identical points)
            text = ax.annotate(labels[i], (xs[i], ys[i]), fontsize=fontsize, xytext=offsets[0],
                               textcoords="offset points")
            placed.append(text.get_window_extent(renderer))


def plot_heatmap(summaries: list[Summary], path: Path, model: str | None = None, title: str = "") -> Path | None:
    """Language × method: test ΔF1 against the baseline, times smaller, times faster at batch 1.

    A ΔF1 inside the baseline's seed spread (its std over seeds, where it has more than
    one) is printed in brackets: noise, not an effect. None when the grid is too small
    for a map to say more than the table (fewer than two languages or two methods).
    """
    here = [s for s in summaries if s.recipe != BASELINE and (model is None or s.model == model)]
    bases = [s for s in summaries if s.recipe == BASELINE and (model is None or s.model == model)]
    # a baseline that found no entity (a tokenizer that cannot read the language) keeps its row, marked,
    # so the map shows the language and why it has nothing, instead of dropping it
    empty = {s.lang for s in bases if s.f1_mean == 0.0}
    langs = ordered([s.lang for s in here] + sorted(empty))
    methods = ordered([s.recipe for s in here])
    if len(langs) < 2 or len(methods) < 2:
        return None
    spread = {s.lang: 100 * s.f1_std for s in summaries
              if s.recipe == BASELINE and (model is None or s.model == model) and len(s.f1) > 1}
    cell = {(s.lang, s.recipe): s for s in here}
    score = scores_label(here + bases)
    panels = [(f"test Δ{score} (points)", "delta", 1.0, "RdBu"), ("times smaller", "size_x", 1.0, "Greens"),
              ("times faster, batch 1", "speedup_b1", 1.0, "Purples")]
    panels = [p for p in panels if any(getattr(s, p[1]) is not None for s in here)]
    height = 0.45 * len(langs) + 1.6
    fig, axes = plt.subplots(len(panels), 1, figsize=(WIDTH_IN, height * len(panels)), squeeze=False,
                             layout="constrained")
    for ax, (name, attr, scale, cmap) in zip([a for row in axes for a in row], panels, strict=True):
        grid = [[getattr(cell[(lg, m)], attr) * scale if (lg, m) in cell and getattr(cell[(lg, m)], attr)
                 is not None else math.nan for m in methods] for lg in langs]
        values = [v for row in grid for v in row if not math.isnan(v)]
        if attr == "delta":
            bound = max(1.0, min(10.0, max(abs(v) for v in values)))  # past ±10 points every collapse looks alike
            image = ax.imshow(grid, cmap=cmap, vmin=-bound, vmax=bound, aspect="auto")
        else:
            image = ax.imshow(grid, cmap=cmap, vmin=min(1.0, min(values)), vmax=max(values), aspect="auto")
        for i, lg in enumerate(langs):
            for j, _ in enumerate(methods):
                v = grid[i][j]
                if math.isnan(v):
                    text = "not run" if lg in empty else "–"
                elif attr == "delta":
                    text = f"{v:+.1f}"
                    if lg in spread and abs(v) <= spread[lg]:
                        text = f"({text})"
                else:
                    text = f"{v:.1f}×"
                dark = not math.isnan(v) and abs(image.norm(v) - (0.5 if attr == "delta" else 0.0)) > 0.35
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(langs)), [f"{lg} (baseline {score} 0)" if lg in empty else lg for lg in langs],
                      fontsize=9)
        ax.set_title(name + (f" — {model}" if model else ""), fontsize=10)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(f"{title}Per language and method, against each language's fp32 baseline"
                 + (f" (bracketed Δ{score}: inside the baseline's seed spread)" if spread else ""))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def write_plots(summaries: list[Summary], out: Path, suffix: str = "", title: str = "") -> list[Path]:
    """Every plot the rows allow; plots without data (no pruning, no latency) are left out.

    A report of several tasks calls this once per task: `suffix` ends its files' names (`_<task>`) and
    `title` heads each figure's title, so no plot puts one task's points beside another's.
    """
    made = [
        plot_sparsity(summaries, out / f"f1_vs_sparsity{suffix}.png", title),
        plot_tradeoff(summaries, "size_bytes", "size on disk (MB)", out / f"f1_vs_size{suffix}.png", scale=1e-6,
                      logx=True, title=title),
        plot_tradeoff(summaries, "latency_ms_b1", "latency at batch 1 (ms)", out / f"f1_vs_latency{suffix}.png",
                      title=title),
        *[plot_heatmap(summaries, out / f"atlas_{m}{suffix}.png", m, title)
          for m in ordered([s.model for s in summaries])],
    ]
    return [p for p in made if p is not None]
