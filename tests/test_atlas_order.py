"""bench/lab/atlas_order.py: the per-method order of languages and its rank correlations with facts."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def test_baseline_f1_is_read_from_the_rows_and_orders_the_loss(tmp_path: Path) -> None:
    """`--fact baseline_f1` correlates each method's loss with the language's own baseline F1, taken
    from the rows (mean over seeds), not from the facts CSV; a baseline that found nothing is left out."""
    # four languages: the weaker the baseline, the larger the quantized model's loss (ρ = +1), while
    # training size runs the other way (ρ = -1); aaa has two baseline seeds, averaged to 0.60.
    baselines = {"aaa": [0.58, 0.62], "bbb": [0.70], "ccc": [0.80], "ddd": [0.90], "zzz": [0.0]}
    losses = {"aaa": 0.08, "bbb": 0.04, "ccc": 0.02, "ddd": 0.01, "zzz": 0.0}
    rows = []
    for lang, f1s in baselines.items():
        for seed, f1 in enumerate(f1s):
            rows.append([f"{lang}-b{seed}", "m", lang, "baseline", seed, "done", f1])
        rows.append([f"{lang}-q", "m", lang, "q8", 0, "done", f1s[0] - losses[lang]])
    _write(tmp_path / "rows.csv", ["cell_id", "model", "lang", "recipe", "seed", "status", "f1"], rows)
    sizes = {"aaa": 4000, "bbb": 3000, "ccc": 2000, "ddd": 1000, "zzz": 500}
    _write(tmp_path / "facts.csv", ["lang", "tokenizer", "train_sentences", "fertility_test"],
           [[lang, "tok", n, 1.0 + i / 10] for i, (lang, n) in enumerate(sizes.items())])

    out = tmp_path / "order.csv"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "lab" / "atlas_order.py"), str(tmp_path / "rows.csv"),
                           "--facts", str(tmp_path / "facts.csv"), "--tokenizer", "tok",
                           "--fact", "baseline_f1", "--csv", str(out)],
                          capture_output=True, text=True, check=True)
    assert "ρ with baseline_f1 (p)" in done.stdout
    (line,) = list(csv.DictReader(out.open(encoding="utf-8")))
    assert line["method"] == "q8" and line["languages"] == "4"  # zzz's baseline found nothing
    assert line["worst_first"].split()[0] == "aaa"
    assert float(line["rho_baseline_f1"]) == 1.0
    assert float(line["rho_train_sentences"]) == -1.0
