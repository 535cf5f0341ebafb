"""`ndogo ship`: a model directory cut down to what inference needs, with a Hugging Face model card.

A run directory is a workshop: the fine-tuned run keeps a 259 MB optimizer
checkpoint beside 91 MB of weights, stage records, evaluation rows and a lock
file, and transformers writes `model.safetensors` with mode 0600. A bundle is
what one hands to a server or uploads to the hub: the weights (or ONNX graph),
the tokenizer, the label map (`config.json` / `ndogo.json`) and a `README.md`
model card, every file 0644, and it loads with no other file
(`ndogo.load(bundle)`, and `AutoModelForTokenClassification` for plain
Hugging Face kinds).

The card's numbers are copied from the model's own evaluation rows
(`<run>/evals/<lang>-<split>.json`, written by `ndogo evaluate`, or a sweep's
row passed in by `ndogo recommend --ship`); a number that was not measured is
written as "not measured", never estimated. Its recipe and reproducing commands
are read from the `ndogo.json` (and `metrics.json`) of each stage the model
came from, following their `source` links.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ndogo.models.loading import ModelError, read_meta, write_meta
from ndogo.models.runner import load_runner, model_files, size_on_disk

FILE_MODE, DIR_MODE = 0o644, 0o755
# What training leaves beside a model that inference never reads (model_files already drops
# checkpoint/, evals/, metrics.json, training_args.bin and the lock file).
LEFTOVERS = ("optimizer*", "scheduler*", "rng_state*", "trainer_state.json", "*.pt", "*.pth", "*.ckpt", "*.tmp",
             "*.partial", "*.lock")
# Links a stage's ndogo.json keeps to the directory it was made from.
SOURCE_KEYS = ("source", "parent", "densified_from")
MASAKHANER_1 = {"amh", "hau", "ibo", "kin", "lug", "luo", "pcm", "swa", "wol", "yor"}
DATASETS = {"masakhaner": "MasakhaNER 1.0", "masakhane/masakhaner2": "MasakhaNER 2.0"}
# Hub ids of ndogo's short model names (the model card's `base_model`).
HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2", "me5s": "intfloat/multilingual-e5-small"}
TORCH_FREE_KINDS = ("onnx", "ort")
NOT_MEASURED = "not measured"
PROBE = "Musa Aliyu ya je Kano ranar Litinin tare da Amina Bello."


@dataclass
class Step:
    """One stage a model came from: where it was saved, what ndogo.json (and metrics.json) recorded."""

    path: str
    meta: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def stage(self) -> str:
        return str(self.meta.get("stage") or ("finetune" if self.metrics.get("config") else "model"))


def lineage(run: str | Path, limit: int = 20) -> list[Step]:
    """The chain of stage directories that produced `run`, oldest first (those still on disk)."""
    steps: list[Step] = []
    seen: set[str] = set()
    current: Path | None = Path(run)
    while current is not None and current.is_dir() and str(current.resolve()) not in seen and len(steps) < limit:
        seen.add(str(current.resolve()))
        meta = read_meta(current)
        metrics_file = current / "metrics.json"
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
        except (ValueError, OSError):
            metrics = {}
        steps.append(Step(str(current), meta, metrics if isinstance(metrics, dict) else {}))
        nxt = next((meta[k] for k in SOURCE_KEYS if isinstance(meta.get(k), str)), None)
        current = Path(nxt) if nxt else None
    return steps[::-1]


def stage_call(step: Step) -> str:
    """The step as a recipe stage (`quantize:method=onnx-int8`), from what its ndogo.json recorded."""
    meta = step.meta
    if step.stage == "finetune":
        cfg = step.metrics.get("config", {})
        opts = {k: cfg[k] for k in ("epochs", "lr", "batch_size", "seed") if cfg.get(k) is not None}
        return "finetune" + (":" + ",".join(f"{k}={v}" for k, v in opts.items()) if opts else "")
    if step.stage == "quantize" and isinstance(meta.get("quantization"), dict):
        return f"quantize:method={meta['quantization'].get('method')}"
    if step.stage == "trim" and isinstance(meta.get("trim"), dict):
        keep = meta["trim"].get("keep")
        return "trim" + (f":keep={keep}" if keep else "")
    if step.stage == "export":
        return f"export:format={'ort' if meta.get('kind') == 'ort' else 'onnx'}"
    return step.stage


def step_command(step: Step, previous: str | None) -> str | None:
    """The ndogo command that redoes one step from the previous step's directory, where it is certain."""
    meta, q = step.meta, shlex.quote
    out = q(f"runs/{Path(step.path).name}")
    if step.stage == "finetune" and step.metrics.get("config"):
        cfg = step.metrics["config"]
        args = [f"--model {q(str(cfg.get('model') or meta.get('base_model')))}"]
        if cfg.get("data"):
            args.append(f"--data {q(str(cfg['data']))}")
        args.append(f"--lang {q(','.join(cfg.get('langs') or meta.get('langs') or []))}")
        for key in ("epochs", "lr", "batch_size", "seed", "max_length", "max_steps", "patience"):
            if cfg.get(key) is not None:
                args.append(f"--{key.replace('_', '-')} {cfg[key]}")
        return f"ndogo finetune {' '.join(args)} --out {out}"
    if previous is None:
        return None
    src = q(f"runs/{Path(previous).name}")
    if step.stage == "quantize" and isinstance(meta.get("quantization"), dict):
        return f"ndogo quantize {src} --method {q(str(meta['quantization'].get('method')))} --out {out}"
    if step.stage == "export":
        fmt = "ort" if meta.get("kind") == "ort" else "onnx"
        extra = f" --platform {meta['ort_platform']}" if fmt == "ort" and meta.get("ort_platform") else ""
        return f"ndogo export {src} --format {fmt}{extra} --out {out}"
    return None


def read_evals(run: str | Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Evaluation rows kept beside a model (`evals/<lang>-<split>.json`), by (lang, split)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(Path(run, "evals").glob("*.json")):
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            continue
        if isinstance(row, dict) and "f1" in row and row.get("lang") and row.get("split"):
            rows[(str(row["lang"]), str(row["split"]))] = row
    return rows


def sweep_rows(row: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """A sweep's row as evaluation rows: its measured split, and dev beside it when the row carries it."""
    lang, split = str(row["lang"]), str(row.get("split") or "test")
    machine = row.get("machine") or {}
    main = {**row, "cpu": row.get("cpu") or machine.get("cpu"), "threads": row.get("threads") or machine.get("threads")}
    rows = {(lang, split): main}
    if split != "dev" and row.get("dev_f1") is not None:
        rows[(lang, "dev")] = {"lang": lang, "split": "dev", "f1": row["dev_f1"], "precision": row.get("dev_precision"),
                               "recall": row.get("dev_recall"), "per_type": row.get("dev_per_type") or {}}
    return rows


def _copy(src: Path, dst: Path) -> None:
    """Copy a file's bytes (not its mode: transformers writes weights 0600) and make it 0644."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.parent.chmod(DIR_MODE)
    shutil.copyfile(src, dst)
    dst.chmod(FILE_MODE)


def bundle_files(run: Path) -> list[Path]:
    """The files of `run` inference reads: model_files without what training leaves behind."""
    return [p for p in model_files(run)
            if not any(fnmatch.fnmatch(p.name, pat) for pat in LEFTOVERS)
            and not any(part.startswith("checkpoint") for part in p.relative_to(run).parts[:-1])]


def _cell(text: str) -> str:
    """Text for a markdown table cell: a pipe would end the cell, even inside backticks."""
    return text.replace("|", "\\|")


def _pct(x: Any) -> float | None:
    return round(100 * float(x), 2) if isinstance(x, int | float) else None


def _fmt(x: Any, unit: str = "", digits: int = 2) -> str:
    return f"{x:.{digits}f}{unit}" if isinstance(x, int | float) else NOT_MEASURED


def _dataset(lang: str | None, dataset: str | None) -> str:
    if dataset:
        return dataset
    return "masakhaner" if lang is None or lang in MASAKHANER_1 else "masakhane/masakhaner2"


def ship(run: str | Path, out: str | Path, lang: str | None = None, dataset: str | None = None,
         rows: dict[tuple[str, str], dict[str, Any]] | None = None, command: str | None = None,
         seed_spread: dict[str, Any] | None = None, baseline: dict[str, Any] | None = None,
         warning: str | None = None) -> Path:
    """Write a self-contained bundle of the model in `run` to `out` (which must be new or empty).

    Args:
        run: any model directory ndogo saves.
        out: the bundle directory.
        lang: the language the card reports (default: the first the model was trained on).
        dataset: hub id of the corpus (default: masakhaner for MasakhaNER 1.0 languages, else masakhaner2).
        rows: evaluation rows by (lang, split), used before `<run>/evals/*.json`.
        command: the command that rebuilds the model (recommend's), shown before the per-step ones.
        seed_spread: {"seeds": [...], "f1_std": x} when the F1 is a mean over seeds.
        baseline: the baseline's row ({"f1", "size_bytes", "latency_ms_b1"}) when known from elsewhere.
        warning: a line the card shows above its results (recommend's: the baseline itself is weak).

    Returns:
        `out`. It is checked before returning: it loads with `load_runner` alone and finds the same
        entities as `run` in a probe sentence.
    """
    run, out = Path(run), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out}: already exists and is not empty; choose a new bundle directory")
    if out.resolve() == run.resolve():
        raise ValueError(f"{out}: the bundle must be a new directory, not the model itself")
    source = load_runner(run)  # refuse what cannot be loaded before writing anything
    meta = dict(source.meta)
    lang = lang or (meta.get("langs") or [None])[0]
    evals = {**read_evals(run), **(rows or {})}
    steps = lineage(run)
    base_row = baseline or _baseline_row(steps, lang)

    out.mkdir(parents=True, exist_ok=True)
    out.chmod(DIR_MODE)
    files = bundle_files(run)
    for f in files:
        _copy(f, out / f.relative_to(run))
    calls = [stage_call(s) for s in steps]
    commands = [c for c in (step_command(s, steps[i - 1].path if i else None) for i, s in enumerate(steps)) if c]
    bundle_meta = {
        **meta, "kind": source.kind, "labels": source.labels, "max_length": source.max_length,
        "bundle": {"source": str(run), "files": sorted(str(f.relative_to(run)) for f in files),
                   "recipe": " | ".join(calls), "commands": commands, "rebuild": command,
                   "evals": {f"{k[0]}-{k[1]}": _summary(v) for k, v in sorted(evals.items())}},
    }
    write_meta(out, bundle_meta)
    (out / "ndogo.json").chmod(FILE_MODE)
    card = model_card(out.name, bundle_meta, steps, evals, lang, _dataset(lang, dataset), size_on_disk(out),
                      base_row, seed_spread, warning)
    (out / "README.md").write_text(card, encoding="utf-8")
    (out / "README.md").chmod(FILE_MODE)
    _check(run, out)
    return out


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("f1", "precision", "recall", "per_type", "sentences", "size_bytes", "latency_ms_b1", "latency_e2e_ms_b1",
            "throughput_b32", "threads", "cpu", "peak_rss_mb")
    return {k: row[k] for k in keys if row.get(k) is not None}


def _baseline_row(steps: Sequence[Step], lang: str | None) -> dict[str, Any] | None:
    """The evaluation row of the fine-tuned model this one was compressed from, where it was measured."""
    for step in steps[:-1]:
        if step.stage == "finetune":
            row = read_evals(step.path).get((str(lang), "test"))
            if row:
                return row
    return None


def _check(run: Path, out: Path) -> None:
    """The bundle loads with nothing but its own files and tags a probe sentence as the source does."""
    from ndogo.deploy.predict import Predictor

    def spans(entities: Sequence[Any]) -> list[tuple[str, int, int]]:
        return [(e.label, e.start, e.end) for e in entities]

    want = spans(Predictor(load_runner(run)).predict(PROBE)[0])
    got = {"PyTorch path": spans(Predictor(load_runner(out)).predict(PROBE)[0])}
    if read_meta(out).get("kind") in TORCH_FREE_KINDS:
        from ndogo.deploy.runtime import load

        got["torch-free runtime"] = spans(load(out, threads=1).predict(PROBE)[0])
    for path, found in got.items():
        if found != want:
            raise ModelError(f"{out}: the bundle ({path}) finds other entities than {run} in a probe sentence; "
                             "not shipped")


def ship_recommendation(directory: str | Path, choice: dict[str, Any], out: str | Path) -> Path:
    """Ship the model `ndogo recommend` chose, its card filled from the sweep's own rows."""
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


def front_matter(name: str, meta: dict[str, Any], evals: dict[tuple[str, str], dict[str, Any]], lang: str | None,
                 dataset: str) -> dict[str, Any]:
    """The card's YAML header: what the hub indexes and renders (language, licence, metrics)."""
    kind = meta.get("kind", "hf")
    tags = ["token-classification", "ner", "ndogo", "masakhaner"]
    if kind in TORCH_FREE_KINDS:
        tags += ["onnx"] + (["int8"] if "int8" in json.dumps(meta.get("quantization") or {}) else [])
    header: dict[str, Any] = {
        "language": sorted(set(meta.get("langs") or ([lang] if lang else []))),
        "license": "cc-by-nc-4.0", "datasets": [dataset], "tags": tags, "pipeline_tag": "token-classification",
    }
    if kind == "hf":
        header["library_name"] = "transformers"
    base = str(meta.get("base_model") or "")
    hub = HUB_IDS.get(base) or (base if base.count("/") == 1 and not Path(base).exists() else None)
    if hub:
        header["base_model"] = hub
    results = []
    for split in ("test", "dev"):
        row = evals.get((str(lang), split))
        if not row:
            continue
        metrics = [{"type": "f1", "value": _pct(row["f1"]), "name": "F1 (entity-level, seqeval)"},
                   {"type": "precision", "value": _pct(row.get("precision")), "name": "Precision"},
                   {"type": "recall", "value": _pct(row.get("recall")), "name": "Recall"}]
        metrics += [{"type": "f1", "value": _pct(v["f1"]), "name": f"F1 {t}"}
                    for t, v in sorted((row.get("per_type") or {}).items())]
        results.append({"task": {"type": "token-classification", "name": "Named Entity Recognition"},
                        "dataset": {"type": dataset, "name": f"{DATASETS.get(dataset, dataset)} ({lang})",
                                    "config": lang, "split": split},
                        "metrics": [m for m in metrics if m["value"] is not None]})
    if results:
        header["model-index"] = [{"name": name, "results": results}]
    return header


def _yaml(header: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000)


def model_card(name: str, meta: dict[str, Any], steps: Sequence[Step], evals: dict[tuple[str, str], dict[str, Any]],
               lang: str | None, dataset: str, size_bytes: int, baseline: dict[str, Any] | None,
               seed_spread: dict[str, Any] | None, warning: str | None = None) -> str:
    """The README.md of a bundle: front matter, then what a user needs to judge and use the model."""
    kind = meta.get("kind", "hf")
    bundle = meta["bundle"]
    test, dev = evals.get((str(lang), "test")), evals.get((str(lang), "dev"))
    base = str(meta.get("base_model") or NOT_MEASURED)
    lines = ["---", _yaml(front_matter(name, meta, evals, lang, dataset)).rstrip(), "---", "",
             f"# {name}", "",
             f"Named-entity recognition (PER, ORG, LOC, DATE) for **{lang}**, made with ndogo "
             f"from `{base}` ({HUB_IDS.get(base, base)}).", "",
             "| | |", "|---|---|",
             f"| base model | `{base}` |", f"| language | {', '.join(meta.get('langs') or [str(lang)])} |",
             f"| model kind | `{kind}` |", f"| recipe | `{_cell(bundle['recipe'])}` |",
             f"| size on disk | {size_bytes / 1e6:.1f} MB |",
             f"| labels | {', '.join(meta.get('labels') or [])} |",
             f"| window | {meta.get('max_length')} sub-words (longer sentences are windowed, not truncated) |", ""]
    lines += ["## Results", "", *([f"**Warning:** {warning}.", ""] if warning else [])]
    lines += _results_table(test, dev, seed_spread)
    lines += ["", "## Speed", ""]
    lines += _speed_lines(test)
    lines += ["", "## What the compression cost", ""]
    lines += _cost_lines(test, baseline, size_bytes)
    lines += ["", "## How it was made", ""]
    for i, step in enumerate(steps, 1):
        where = f"kind `{step.meta.get('kind', 'hf')}`, saved as `{Path(step.path).name}`"
        lines.append(f"{i}. `{stage_call(step)}` ({where})")
    if bundle.get("rebuild"):
        lines += ["", "To rebuild it from the fine-tuned baseline, as the sweep did:", "", "```bash",
                  bundle["rebuild"], "```"]
    if bundle["commands"]:
        lines += ["", "To rebuild it stage by stage (each command reads the previous one's output):", "",
                  "```bash", *bundle["commands"], "```"]
    lines += ["", "## Usage", ""]
    lines += _usage(name, kind)
    lines += ["", "## Known limits", ""]
    lines += _limits(kind, lang, meta)
    lines += ["", "## Data and licence", "",
              f"Trained and evaluated on {DATASETS.get(dataset, dataset)} (`{dataset}`), whose annotations are "
              "licensed CC BY-NC 4.0 (Adelani et al. 2021, 2022): the model inherits the non-commercial "
              "restriction, hence `license: cc-by-nc-4.0`. Cite the MasakhaNER papers in anything that reports "
              "results with it.", ""]
    return "\n".join(lines)


def _results_table(test: dict[str, Any] | None, dev: dict[str, Any] | None,
                   seed_spread: dict[str, Any] | None) -> list[str]:
    types = sorted(set((test or {}).get("per_type") or {}) | set((dev or {}).get("per_type") or {}))
    lines = ["Entity-level F1 (seqeval's default mode, as MasakhaNER reports it), in points.", "",
             "| split | F1 | precision | recall | " + " | ".join(f"F1 {t}" for t in types) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(types)]
    for split, row in (("test", test), ("dev", dev)):
        if row is None:
            lines.append(f"| {split} | {NOT_MEASURED} | | | " + " | ".join("" for _ in types) + " |")
            continue
        per = row.get("per_type") or {}
        cells = [_fmt(_pct(row.get(k))) for k in ("f1", "precision", "recall")]
        cells += [_fmt(_pct(per[t]["f1"])) if t in per else NOT_MEASURED for t in types]
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    if seed_spread and seed_spread.get("seeds"):
        lines += ["", f"F1 is the mean over seeds {', '.join(map(str, seed_spread['seeds']))} "
                      f"(standard deviation {_fmt(_pct(seed_spread.get('f1_std')))} points)."]
    else:
        lines += ["", "Seed spread: not measured (one training run)."]
    if test and test.get("sentences"):
        lines.append(f"Test set: {test['sentences']} sentences.")
    return lines


def _speed_lines(test: dict[str, Any] | None) -> list[str]:
    if not test or test.get("latency_ms_b1") is None:
        return [f"Latency: {NOT_MEASURED}."]
    tput = test.get("throughput_b32")
    b32 = f"{_fmt(tput, ' sentences/s')} ({_fmt(32000 / tput, ' ms')} per batch of 32)" if tput else NOT_MEASURED
    return [f"Measured by `ndogo evaluate` on the first {test.get('latency_sentences', 200)} test sentences, "
            f"{test.get('threads', '?')} CPU thread(s), on {test.get('cpu') or 'an unrecorded CPU'}:", "",
            f"- batch 1, forward pass: {_fmt(test['latency_ms_b1'], ' ms')} per sentence (median)",
            f"- batch 1, raw sentence to entities (tokenizing and decoding included): "
            f"{_fmt(test.get('latency_e2e_ms_b1'), ' ms')}",
            f"- batch 32: {b32}",
            f"- peak memory of the evaluating process: {_fmt(test.get('peak_rss_mb'), ' MB', 0)}"]


def _cost_lines(test: dict[str, Any] | None, base: dict[str, Any] | None, size_bytes: int) -> list[str]:
    if not base or not test:
        return [f"Against the fine-tuned baseline: {NOT_MEASURED} (no evaluation of both on the same test set)."]
    lines = [f"Against the fine-tuned fp32 baseline on the same test set: F1 {_fmt(_pct(base['f1']))} → "
             f"{_fmt(_pct(test['f1']))} ({_fmt(_pct(test['f1'] - base['f1']))} points)"]
    if base.get("size_bytes"):
        lines[0] += (f"; size {base['size_bytes'] / 1e6:.1f} → {size_bytes / 1e6:.1f} MB "
                     f"({base['size_bytes'] / size_bytes:.2f}× smaller)")
    if base.get("latency_ms_b1") and test.get("latency_ms_b1"):
        lines[0] += (f"; batch-1 latency {_fmt(base['latency_ms_b1'], ' ms')} → {_fmt(test['latency_ms_b1'], ' ms')} "
                     f"({base['latency_ms_b1'] / test['latency_ms_b1']:.2f}× faster)")
    return [lines[0] + "."]


def _usage(name: str, kind: str) -> list[str]:
    lines = ["With ndogo (any kind; words are split as MasakhaNER's, long sentences windowed, and each entity "
             "has character offsets, a label and a score):", "", "```python", "import ndogo", "",
             f'ner = ndogo.load("{name}")', 'ner.predict(["Musa Aliyu ya je Kano ranar Litinin."])',
             "# [[Entity(text='Musa Aliyu', label='PER', start=0, end=10, score=...), ...]]", "```", "",
             f"Over HTTP: `ndogo serve {name} --port 8000`, then "
             "`curl -s localhost:8000/v1/entities -d '{\"text\": \"Musa ya je Kano.\"}'`.", ""]
    if kind == "hf":
        lines += ["With transformers alone (`aggregation_strategy=\"first\"` labels each word by its first "
                  "sub-word, as ndogo does; `\"simple\"` would return sub-word fragments):", "", "```python",
                  "from transformers import pipeline", "",
                  f'ner = pipeline("token-classification", model="{name}", aggregation_strategy="first")',
                  'ner("Musa Aliyu ya je Kano ranar Litinin.")', "```"]
    elif kind in TORCH_FREE_KINDS:
        graph = "model.ort" if kind == "ort" else "model.onnx"
        lines += ["`ndogo.load` runs this model on ONNX Runtime without torch or transformers "
                  "(`pip install onnxruntime tokenizers numpy regex`, then ndogo with `--no-deps`). "
                  "With ONNX Runtime directly (label of each word's first sub-word):", "", "```python",
                  "import json, numpy as np, onnxruntime as ort", "from tokenizers import Tokenizer", "",
                  f'sess = ort.InferenceSession("{name}/{graph}", providers=["CPUExecutionProvider"])',
                  f'tok = Tokenizer.from_file("{name}/tokenizer.json")',
                  f'labels = json.load(open("{name}/ndogo.json"))["labels"]',
                  'words = "Musa Aliyu ya je Kano ranar Litinin .".split()',
                  "enc = tok.encode(words, is_pretokenized=True)",
                  'feed = {"input_ids": np.array([enc.ids], dtype=np.int64),',
                  '        "attention_mask": np.array([enc.attention_mask], dtype=np.int64)}',
                  'logits = sess.run(["logits"], feed)[0][0]',
                  "first = {}", "for pos, w in enumerate(enc.word_ids):",
                  "    if w is not None and w not in first:", "        first[w] = pos",
                  "print([(w, labels[int(logits[first[i]].argmax())]) for i, w in enumerate(words)])", "```"]
    else:
        lines += [f"Kind `{kind}` stores its weights in ndogo's own layout: load it with `ndogo.load` "
                  "(transformers alone cannot)."]
    return lines


def _limits(kind: str, lang: str | None, meta: dict[str, Any]) -> list[str]:
    lines = [f"- Trained on one language ({lang}) of news text; other languages and domains (social media, "
             "speech transcripts) were not measured.",
             "- Four entity types only (PER, ORG, LOC, DATE), as annotated in MasakhaNER.",
             "- ndogo splits raw text into MasakhaNER-style words (punctuation apart, Yorùbá tone marks and Hausa "
             "apostrophes kept inside words); tools that split words differently can get different entities.",
             f"- Inputs longer than {meta.get('max_length')} sub-words are windowed by ndogo; the transformers "
             "pipeline truncates them unless given a `stride`."]
    if kind in TORCH_FREE_KINDS and meta.get("quantization"):
        lines.append("- Weights are int8 (ONNX Runtime dynamic quantization), for CPUs; scores are close to, "
                     "not identical with, the float model's.")
    return lines
