"""The me5s teacher rules side by side (issue #37): each rule's best epoch, dev curve, dev and test F1.

Which rule trains a teacher "until dev stops improving" is chosen on dev; this gathers, for each
teacher trained under a rule, what its run recorded: sweep rows (a result store's baseline row and
its `training` record) and stand-alone probe runs (their metrics.json: dev only, test not measured).

    python bench/lab/teacher_rules.py --csv docs/bench/teachers-me5s-rules.csv \\
        --store linear-10-p2=runs/conv-hau --store linear-10-p2=runs/conv-swa \\
        --store plateau-p2=runs/plateau-swa --store wsd-p2=runs/wsd-swa \\
        --probe linear-10-p4=runs/me5s-swa-p4 --rows linear-3=docs/bench/atlas-me5s.csv
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from ndogo.experiments.store import Store, load_rows

FIELDS = ["rule", "lang", "seed", "schedule", "epochs", "patience", "best_epoch", "epochs_run", "dev_curve", "dev_f1",
          "test_f1", "source"]


def from_store(rule: str, folder: str) -> list[dict[str, object]]:
    store = Store(Path(folder))
    try:
        rows = [r for r in store.rows() if r["recipe"] == "baseline" and r.get("status") == "done"]
    finally:
        store.close()
    out = []
    for r in rows:
        training = next(iter((r.get("training") or {}).values()), {})
        spec = r.get("chain") or ""
        out.append({"rule": rule, "lang": r["lang"], "seed": r["seed"],
                    "schedule": "wsd" if "schedule=wsd" in spec else "plateau" if "schedule=plateau" in spec
                    else "linear", "epochs": _option(spec, "epochs"), "patience": training.get("patience"),
                    "best_epoch": training.get("best_epoch"), "epochs_run": training.get("epochs_run"),
                    "dev_curve": " ".join(f"{x:.5f}" for x in training.get("dev_curve", [])),
                    "dev_f1": round(r["dev_f1"], 5), "test_f1": round(r["f1"], 5), "source": folder})
    return out


def from_probe(rule: str, folder: str) -> dict[str, object]:
    m = json.loads((Path(folder) / "metrics.json").read_text())
    cfg = m["config"]
    curve = [h.get("dev_f1", h.get("dev")) for h in m["history"]]
    return {"rule": rule, "lang": ",".join(cfg["langs"]), "seed": cfg["seed"],
            "schedule": cfg.get("schedule", "linear"), "epochs": cfg["epochs"], "patience": cfg.get("patience"),
            "best_epoch": m["best_epoch"],
            "epochs_run": m["epochs_run"], "dev_curve": " ".join(f"{x:.5f}" for x in curve),
            "dev_f1": round(m.get("best_dev", m.get("best_dev_f1")), 5), "test_f1": "", "source": folder}


def from_rows(rule: str, path: str) -> list[dict[str, object]]:
    return [{"rule": rule, "lang": r["lang"], "seed": r["seed"], "schedule": "linear", "epochs": "",
             "patience": "", "best_epoch": "", "epochs_run": "", "dev_curve": "",
             "dev_f1": round(r["dev_f1"], 5) if r.get("dev_f1") is not None else "", "test_f1": round(r["f1"], 5),
             "source": path}
            for r in load_rows(Path(path)) if r["recipe"] == "baseline" and r.get("f1") is not None]


def _option(spec: str, key: str) -> str:
    for part in spec.replace("|", ",").split(","):
        name, _, value = part.strip().partition("=")
        if name.split(":")[-1] == key:
            return value
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", default=[], help="RULE=RUNDIR (a sweep's result store)")
    parser.add_argument("--probe", action="append", default=[], help="RULE=RUN (a stand-alone finetune run)")
    parser.add_argument("--rows", action="append", default=[], help="RULE=CSV (committed rows' baselines)")
    parser.add_argument("--csv", required=True)
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    for pair in args.rows:
        rows += from_rows(*pair.split("=", 1))
    for pair in args.store:
        rows += from_store(*pair.split("=", 1))
    for pair in args.probe:
        rows.append(from_probe(*pair.split("=", 1)))
    rows.sort(key=lambda r: (str(r["lang"]), str(r["rule"])))
    with open(args.csv, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.csv}: {len(rows)} teachers")


if __name__ == "__main__":
    main()
