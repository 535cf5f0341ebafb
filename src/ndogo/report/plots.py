"""The report's plots (matplotlib, written as PNG): one panel per language.

- F1 against sparsity, one line per family of pruning recipes (the same chain at
  several sparsities, e.g. prune after fine-tuning with and without recovery),
  starting from the dense baseline at sparsity 0.
- F1 against size on disk and against batch-1 latency, every method a point,
  with the Pareto front (nothing else is both cheaper and better) drawn through.
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

from ndogo.report.summary import BASELINE, Summary, ordered, pareto_front

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


def requested_sparsity(s: Summary) -> float | None:
    """The sparsity a recipe asked for (its last `sparsity=` option), else the measured one.

    The study plots F1 against the pruning level; the measured sparsity of the whole
    model is lower (embeddings and norms are not pruned), so the requested one is used.
    """
    found = SPARSITY_VALUE.findall(s.recipe_spec)
    if found:
        return float(found[-1])
    return s.sparsity if s.sparsity is not None and s.sparsity > 0.005 else None


def plot_sparsity(summaries: list[Summary], path: Path) -> Path | None:
    """F1 against sparsity per language; None when no recipe prunes (nothing to show)."""
    levels = {id(s): requested_sparsity(s) for s in summaries}
    if not any(levels.values()):
        return None
    langs = ordered([s.lang for s in summaries])
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
            label = name if len({m for m, _ in curves}) == 1 else f"{model}: {name}"
            ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=label)
        for b in base.values():
            ax.axhline(100 * b.f1_mean, color="grey", linestyle=":", linewidth=1)
        ax.set(title=lang, xlabel="pruned (%): of the encoder's Linear weights, or of its heads / FFN neurons "
               "for structured recipes (legend)", ylabel="test F1", xlim=(-3, 100))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("F1 against sparsity (dotted: dense baseline; bars: std over seeds)")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_tradeoff(summaries: list[Summary], attr: str, xlabel: str, path: Path, scale: float = 1.0,
                  logx: bool = False) -> Path | None:
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
        ax.set(title=lang, xlabel=xlabel, ylabel="test F1")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        labels = [s.recipe if len({t.model for t in here}) == 1 else f"{s.model}/{s.recipe}" for s in here]
        place_labels(fig, ax, xs, ys, labels)
    fig.suptitle(f"F1 against {xlabel.split(' (')[0]} (red: Pareto front)")
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


def write_plots(summaries: list[Summary], out: Path) -> list[Path]:
    """Every plot the rows allow; plots without data (no pruning, no latency) are left out."""
    made = [
        plot_sparsity(summaries, out / "f1_vs_sparsity.png"),
        plot_tradeoff(summaries, "size_bytes", "size on disk (MB)", out / "f1_vs_size.png", scale=1e-6, logx=True),
        plot_tradeoff(summaries, "latency_ms_b1", "latency at batch 1 (ms)", out / "f1_vs_latency.png"),
    ]
    return [p for p in made if p is not None]
