"""The pruning sweep's view: a table per model language and an F1-vs-sparsity plot per language.

It reads the rows of `ndogo prune-sweep`'s CSV (`ndogo.experiments.prune_sweep`: a
row per pruned model and evaluation language) and draws, per model language,
every variant (one-shot, +N epochs of recovery, pruned before fine-tuning) on
its own language and zero-shot on the others. `ndogo report` on the same folder
gives the sweep's general view (tables per method, trade-off plots).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


def variant(row: dict[str, Any]) -> str:
    """Column name of a row's pruning variant: one-shot, +N epochs recovery, or before fine-tuning."""
    if row["when"] == "before":
        return "before FT"
    return f"+{row['recover_epochs']} ep" if row["recover_epochs"] else "one-shot"


def write_reports(rows: list[dict[str, Any]], out: Path, langs: list[str]) -> list[Path]:
    """sweep.md (one table per model language) and f1-vs-sparsity-<lang>.png from the rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    lines = ["# F1 against sparsity", "", "Rows: sparsity of the encoder's Linear weights (achieved, over those "
             "weights). Columns: test F1 on each language for each variant; the model's own language first, the "
             "others zero-shot. Sparsity 0 is the dense fine-tuned model.", ""]
    for lang in langs:
        mine = [r for r in rows if r["model_lang"] == lang]
        if not mine:
            continue
        dense = {r["eval_lang"]: r for r in mine if r["when"] == "dense"}
        variants = sorted({variant(r) for r in mine if r["when"] != "dense"},
                          key=lambda v: (v == "before FT", v != "one-shot", v))
        evals = [lang, *sorted({r["eval_lang"] for r in mine} - {lang})]
        table: dict[float, dict[str, dict[str, Any]]] = defaultdict(dict)
        for r in mine:
            if r["when"] == "dense":
                for v in variants or ["one-shot"]:
                    table[0.0][f"{v}|{r['eval_lang']}"] = r
            else:
                table[r["sparsity"]][f"{variant(r)}|{r['eval_lang']}"] = r
        cols = [(v, e) for v in variants or ["one-shot"] for e in evals]
        lines += [f"## {lang} model", "",
                  "| sparsity | achieved | size MiB | " + " | ".join(f"{e} {v}" for v, e in cols) + " |",
                  "|---" * (3 + len(cols)) + "|"]
        for s in sorted(table):
            cells_ = table[s]
            any_row = next(iter(cells_.values()))
            oneshot = cells_.get(f"one-shot|{lang}", any_row)
            size = f"{int(oneshot['size_bytes']) / 2**20:.1f}" if oneshot["when"] != "before" else ""
            vals = [f"{cells_[f'{v}|{e}']['f1']:.4f}" if f"{v}|{e}" in cells_ else "" for v, e in cols]
            lines.append(f"| {s:g} | {float(oneshot['achieved_sparsity']):.4f} | {size} | " + " | ".join(vals) + " |")
        lines.append("")

        fig, ax = plt.subplots(figsize=(7, 4.5))
        styles = {"one-shot": "o-", "before FT": "s-"}
        for v in variants:
            for e in evals:
                pts = sorted((s, c[f"{v}|{e}"]["f1"]) for s, c in table.items() if f"{v}|{e}" in c)
                if len(pts) < 2:
                    continue
                style = styles.get(v, "^-") if e == lang else styles.get(v, "^-").replace("-", "--")
                ax.plot(*zip(*pts, strict=True), style, label=f"{e} {v}" + ("" if e == lang else " (zero-shot)"),
                        alpha=1.0 if e == lang else 0.6)
        if lang in dense:
            ax.axhline(dense[lang]["f1"], color="grey", lw=0.8, ls=":", label=f"{lang} dense")
        ax.set(xlabel="sparsity (encoder Linear weights)", ylabel="test F1", ylim=(0, 1),
               title=f"{lang} model: F1 against magnitude-pruning sparsity")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        png = out / f"f1-vs-sparsity-{lang}.png"
        fig.tight_layout()
        fig.savefig(png, dpi=120)
        plt.close(fig)
        paths.append(png)
    md = out / "sweep.md"
    md.write_text("\n".join(lines) + "\n")
    return [md, *paths]
