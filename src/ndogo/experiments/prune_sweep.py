"""F1 against sparsity, per language, pruned after or before fine-tuning, with zero-shot transfer.

The sweep is a list of independent cells (model language × when × sparsity ×
recovery epochs); `run_cell` turns one into rows (one per evaluation
language) and `run_sweep` runs the cells not yet in `sweep.csv`, appending
rows as each finishes, so an interrupted sweep resumes where it stopped.
`cells`, `run_cell` and `write_reports` are the three pieces a generic sweep
runner needs to absorb this one. Two sweeps over disjoint cells (say one-shot
and recovery) may share an output folder and run at once: rows are appended
under a file lock and the tables are drawn from every row in the CSV.

Pruned models are written, scored, and deleted (unless `keep_models`), since
a full sweep of three languages would otherwise leave over a gigabyte behind;
runs pruned *before* fine-tuning are kept, being a full fine-tuning each.
"""

from __future__ import annotations

import csv
import fcntl
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ndogo.data.corpus import KNOWN_TYPES

FIELDS = ["cell", "model_lang", "when", "sparsity", "recover_epochs", "eval_lang", "transfer", "f1", "precision",
          "recall", *[f"f1_{t}" for t in KNOWN_TYPES], "achieved_sparsity", "model_sparsity", "size_bytes",
          "train_dev_f1", "seconds", "model"]


@dataclass
class SweepSpec:
    """Everything that decides a pruning sweep."""

    out: str
    runs: str = "runs/minilm-{lang}"  # fine-tuned model of each language
    langs: list[str] = field(default_factory=lambda: ["hau", "swa", "yor"])  # whose models are pruned
    data: str | None = None
    eval_langs: list[str] | None = None  # scored on (zero-shot beside the model's own); default: langs
    sparsities: list[float] = field(default_factory=lambda: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    recover_epochs: list[int] = field(default_factory=lambda: [0])
    transfer: bool = True
    scope: str = "layer"
    include_embeddings: bool = False
    before: list[float] = field(default_factory=list)  # sparsities pruned before fine-tuning
    before_model: str = "minilm"
    before_epochs: int = 10
    before_lr: float = 1e-4
    before_batch_size: int = 16
    split: str = "test"
    threads: int | None = None
    keep_models: bool = False


@dataclass(frozen=True)
class Cell:
    """One model to build and score: `when` is dense (the run as is), after or before fine-tuning."""

    lang: str
    when: str
    sparsity: float
    recover_epochs: int = 0

    @property
    def key(self) -> str:
        return f"{self.lang}-{self.when}-s{self.sparsity:g}-r{self.recover_epochs}"


def cells(spec: SweepSpec) -> list[Cell]:
    """All cells, cheapest first: dense (where 0 is a sparsity), one-shot, recovery, before.

    Within each, sparsities in the order given and every language at one
    sparsity before the next, so a sweep cut short is still balanced across languages.
    """
    for s in [*spec.sparsities, *spec.before]:
        if not 0 <= s < 1:
            raise ValueError(f"sparsities must be in [0, 1), got {s}")
    out = [Cell(lang, "dense", 0.0) for lang in spec.langs] if 0 in spec.sparsities else []
    for r in sorted(set(spec.recover_epochs)):
        out += [Cell(lang, "after", s, r) for s in spec.sparsities for lang in spec.langs if s > 0]
    out += [Cell(lang, "before", s) for s in spec.before for lang in spec.langs if s > 0]
    return out


def eval_langs(spec: SweepSpec, cell: Cell) -> list[str]:
    """The model's own language first, then (with transfer) the others, zero-shot."""
    others = [x for x in (spec.eval_langs or spec.langs) if x != cell.lang]
    return [cell.lang, *(others if spec.transfer else [])]


def build(spec: SweepSpec, cell: Cell) -> tuple[Path, dict[str, Any]]:
    """The model directory a cell scores, and what building it recorded."""
    from ndogo.compress.prune import prune
    from ndogo.compress.prune.magnitude import MagnitudeConfig
    from ndogo.models.loading import read_meta

    source = Path(spec.runs.format(lang=cell.lang))
    if cell.when == "dense":
        return source, {}
    target = Path(spec.out) / "models" / cell.key
    if cell.when == "after":
        if not (target / "ndogo.json").is_file():
            cfg = MagnitudeConfig(sparsity=cell.sparsity, scope=spec.scope, include_embeddings=spec.include_embeddings,
                                  recover_epochs=cell.recover_epochs, data=spec.data, lang=cell.lang,
                                  threads=spec.threads, show_progress=cell.recover_epochs > 0)
            prune(source, target, cfg)
        meta = read_meta(target)
        return target, {"achieved_sparsity": meta["sparsity"],
                        "train_dev_f1": (meta.get("recovery") or {}).get("best_dev_f1")}
    from ndogo.compress.prune.magnitude import achieved_sparsity, finetune_pruning, masks_from_zeros, prunable
    from ndogo.models.loading import load_for_tokens
    from ndogo.train.finetune import FinetuneConfig, finetune

    ft = FinetuneConfig(model=spec.before_model, data=spec.data, langs=[cell.lang], out=str(target),
                        epochs=spec.before_epochs, lr=spec.before_lr, batch_size=spec.before_batch_size,
                        threads=spec.threads)
    metrics = finetune(ft, **finetune_pruning(ft, cell.sparsity, "oneshot", spec.scope, spec.include_embeddings))
    model = load_for_tokens(target)
    names = [f"{n}.weight" for n, _ in prunable(model, spec.include_embeddings)]
    return target, {"achieved_sparsity": round(achieved_sparsity(masks_from_zeros(model, names)), 6),
                    "train_dev_f1": metrics["best_dev_f1"]}


def run_cell(spec: SweepSpec, cell: Cell, skip: set[str] | frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Build the cell's model and score it on each evaluation language not in `skip`; one row each."""
    from ndogo.evaluate import evaluate

    t0 = time.perf_counter()
    model, built = build(spec, cell)
    rows = []
    for lang in eval_langs(spec, cell):
        if lang in skip:
            continue
        r = evaluate(model, spec.data, lang, spec.split, speed=False, threads=spec.threads)
        rows.append({
            "cell": cell.key, "model_lang": cell.lang, "when": cell.when, "sparsity": cell.sparsity,
            "recover_epochs": cell.recover_epochs, "eval_lang": lang, "transfer": lang != cell.lang,
            "f1": round(r["f1"], 4), "precision": round(r["precision"], 4), "recall": round(r["recall"], 4),
            **{f"f1_{t}": round(r["per_type"][t]["f1"], 4) if t in r["per_type"] else "" for t in KNOWN_TYPES},
            "achieved_sparsity": built.get("achieved_sparsity", 0.0), "model_sparsity": r["sparsity"],
            "size_bytes": r["size_bytes"], "train_dev_f1": built.get("train_dev_f1") or "",
            "seconds": round(time.perf_counter() - t0, 1), "model": str(model),
        })
    if cell.when == "after" and not spec.keep_models:
        shutil.rmtree(model)
    return rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a sweep CSV (numbers as floats), empty if there is none yet."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for k in ("sparsity", "f1", "precision", "recall", "achieved_sparsity", "model_sparsity"):
            row[k] = float(row[k])
        row["recover_epochs"] = int(row["recover_epochs"])
    return rows


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append rows under an exclusive lock, so sweeps of disjoint cells can share one CSV."""
    with path.open("a", newline="") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if f.tell() == 0:
            writer.writeheader()
        writer.writerows(rows)
        f.flush()


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


def run_sweep(spec: SweepSpec, show_progress: bool = True) -> list[Path]:
    """Run every cell whose rows are not in OUT/sweep.csv yet, then write the tables and plots."""
    from ndogo.compress.prune.magnitude import SCOPES

    if spec.scope not in SCOPES:  # checked here, not after the dense cells have been scored
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {spec.scope!r}")
    # Only dense and after cells read a fine-tuned run; a before-only sweep starts from the pretrained model.
    needs_run = {c.lang for c in cells(spec) if c.when != "before"}
    for lang in spec.langs:
        if lang in needs_run and not Path(spec.runs.format(lang=lang)).is_dir():
            raise ValueError(f"no fine-tuned model for {lang} at {spec.runs.format(lang=lang)}")
    from ndogo.data.corpus import lang_dir, resolve_data

    root = Path(resolve_data(spec.data))
    if root.is_dir():  # a language the local corpus lacks fails now, not after the first cells are scored
        for lang in dict.fromkeys([*spec.langs, *(spec.eval_langs or [])]):
            lang_dir(root, lang)
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "sweep.csv"
    done = defaultdict(set)
    for r in read_rows(csv_path):
        done[r["cell"]].add(r["eval_lang"])
    todo = [c for c in cells(spec) if not set(eval_langs(spec, c)) <= done[c.key]]
    for cell in tqdm(todo, desc="prune sweep", unit="cell", disable=not show_progress):
        rows = run_cell(spec, cell, skip=done[cell.key])
        append_rows(csv_path, rows)
        if show_progress:
            tqdm.write(f"{cell.key}: " + ", ".join(f"{r['eval_lang']} {r['f1']:.4f}" for r in rows))
    rows = read_rows(csv_path)
    return [csv_path, *write_reports(rows, out, list(dict.fromkeys(r["model_lang"] for r in rows)))]
