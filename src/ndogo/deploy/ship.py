"""`ndogo ship`: a model directory cut down to what inference needs, with a Hugging Face model card.

A run directory is a workshop: the fine-tuned run keeps a 259 MB optimizer
checkpoint beside 91 MB of weights, stage records, evaluation rows and a lock
file, and transformers writes `model.safetensors` with mode 0600; a user may keep
a `.env`, a `.git/` or the training file there too. A bundle is what one hands to
a server or uploads to the hub, so it is an allow-list, per model kind
(`ndogo.models.files.inference_files`): the weights (or ONNX graph and its
external data), the tokenizer, `config.json`, `ndogo.json` and a `README.md`
model card, every file a plain 0644 copy, and it loads with no other file
(`ndogo.load(bundle)`, and `AutoModelForTokenClassification` for plain Hugging
Face kinds). A file linked from outside the run is refused, not copied. The
bundle's `ndogo.json` and card show local paths relative to where `ship` runs, or
by their name: never the maker's absolute folders.

The card's numbers are copied from the model's own evaluation rows
(`<run>/evals/<lang>-<split>.json`, written by `ndogo evaluate`, or a sweep's
row passed in by `ndogo recommend --ship`); a number that was not measured is
written as "not measured", never estimated. Its recipe and reproducing commands
are the ones stored in the provenance header of each stage the model came from
(`ndogo.json["provenance"]`, written by the code that runs stages: its `call` and
`command`), following its `source` links, so the commands run as written, in
order. Only a model saved before that header existed has its steps read back
from the stage's own keys (`source`, `parent`, `densified_from`, metrics.json). Its usage example is a sentence of the
model's own test set where the corpus is at hand, and otherwise no sentence.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ndogo.compress.provenance import field_default
from ndogo.models.files import META, check_inside, inference_files
from ndogo.models.loading import ModelError, read_meta
from ndogo.models.runner import load_runner, size_on_disk
from ndogo.tasks import task_of_model

FILE_MODE, DIR_MODE = 0o644, 0o755
# Links a stage's ndogo.json keeps to the directory it was made from (models saved before the provenance header).
SOURCE_KEYS = ("source", "parent", "densified_from")
PROVENANCE = "provenance"
MASAKHANER_1 = {"amh", "hau", "ibo", "kin", "lug", "luo", "pcm", "swa", "wol", "yor"}
DATASETS = {"masakhaner": "MasakhaNER 1.0", "masakhane/masakhaner2": "MasakhaNER 2.0"}
# Hub ids of ndogo's short model names (the model card's `base_model`).
HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2", "me5s": "intfloat/multilingual-e5-small"}
TORCH_FREE_KINDS = ("onnx", "ort")
NOT_MEASURED = "not measured"
PROBE = "Musa Aliyu ya je Kano ranar Litinin tare da Amina Bello."
# A FLORES-200 / SIB-200 language code: ISO 639-3 and an ISO 15924 script (`hau_Latn`, `knc_Arab`).
FLORES_CODE = re.compile(r"([a-z]{3})_([A-Z][a-z]{3})")


def iso639(lang: str) -> str:
    """The ISO 639 code of a corpus's language code, as the hub's card metadata `language:` expects it.

    SIB-200 names a language with its script (`hau_Latn`), which the hub does not read as a language;
    the script is kept where the card names the corpus's config. MasakhaNER, MasakhaPOS and AfriSenti
    codes are ISO 639-3 already and come back as they are.
    """
    found = FLORES_CODE.fullmatch(lang)
    return found.group(1) if found else lang


@dataclass
class Step:
    """One stage a model came from: where it was saved, what ndogo.json (and metrics.json) recorded."""

    path: str
    meta: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def provenance(self) -> dict[str, Any]:
        """The header the stage runner wrote (`compress/provenance.py`); empty for a model saved before it."""
        header = self.meta.get(PROVENANCE)
        return header if isinstance(header, dict) else {}

    @property
    def stage(self) -> str:
        return str(self.provenance.get("stage") or self.meta.get("stage")
                   or ("finetune" if self.metrics.get("config") else "model"))


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
        step = Step(str(current), meta, metrics if isinstance(metrics, dict) else {})
        steps.append(step)
        source = step.provenance.get("source")
        nxt = source if isinstance(source, str) else next(
            (meta[k] for k in SOURCE_KEYS if isinstance(meta.get(k), str)), None)
        current = Path(nxt) if nxt else None
    return steps[::-1]


# Settings that change how a stage runs, not what it makes: left out of recipes and commands.
RUN_ONLY = ("threads", "save_every", "eval_batch_size", "show_progress", "keep_checkpoint")
# Filled from the run's context in a recipe (`ndogo compress --lang/--data/--seed`), so a recipe leaves them out.
CONTEXT = ("data", "lang", "langs")
# Where each method stage keeps its config in ndogo.json, and the registry that knows its fields.
METHOD_RECORDS = {"quantize": ("quantization", "ndogo.compress.quantize", "QUANTIZE"),
                  "prune": ("prune", "ndogo.compress.prune", "PRUNE")}


def _flag(f: dataclasses.Field) -> str:
    """A config field's command-line flag, as `ndogo.commands._options.flag` makes it."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _chosen(cls: type | None, record: dict[str, Any], skip: Sequence[str] = (),
            always: Sequence[str] = ()) -> list[tuple[str, str, Any]]:
    """(name, flag, value) of each option `record` set away from `cls`'s default (and those in `always`).

    Without a class (a method this version does not know), every recorded option is kept.
    """
    if cls is None:
        return [(k, "--" + k.replace("_", "-"), v) for k, v in record.items()
                if k not in (*skip, *RUN_ONLY, "method") and v is not None and not isinstance(v, dict)]
    chosen = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name in (*skip, *RUN_ONLY) or f.name not in record:
            continue
        value = record[f.name]
        if value is None or isinstance(value, dict):
            continue
        if f.name in always or value != field_default(f):
            chosen.append((f.name, _flag(f), value))
    return chosen


def _arg(value: Any) -> str:
    """A value as one shell word (lists comma-joined, as the CLI's --lang and sep options read them)."""
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return shlex.quote(str(value))


def _flags(chosen: Sequence[tuple[str, str, Any]]) -> list[str]:
    out = []
    for _, flag, value in chosen:
        if isinstance(value, bool):
            out.append(flag if value else f"--no-{flag[2:]}")
        else:
            out.append(f"{flag} {_arg(value)}")
    return out


def _recipe_options(chosen: Sequence[tuple[str, str, Any]]) -> str:
    from ndogo.compress.recipe import StageCall

    return StageCall("x", {k: v for k, _, v in chosen if k not in CONTEXT}).one_line()[2:]


def _finetune_record(step: Step) -> dict[str, Any]:
    """metrics.json's config, with the pruning `ndogo finetune --prune-*` did recorded as its options."""
    cfg = dict(step.metrics.get("config") or {})
    prune = (cfg.get("extra") or {}).get("prune") if isinstance(cfg.get("extra"), dict) else None
    if isinstance(prune, dict):
        for key in ("sparsity", "schedule", "scope", "include_embeddings"):
            if key in prune:
                cfg[f"prune_{key}"] = prune[key]
    return cfg


def _method_stage(step: Step) -> tuple[str, type | None, dict[str, Any]] | None:
    """(method, its config class or None, its record) of a quantize or prune step."""
    if step.stage not in METHOD_RECORDS:
        return None
    key, module, registry = METHOD_RECORDS[step.stage]
    record = step.meta.get(key)
    if not isinstance(record, dict) or not isinstance(record.get("method"), str):
        return None
    try:
        cls: type | None = getattr(importlib.import_module(module), registry).config_class(record["method"])
    except (ImportError, ValueError, AttributeError):
        cls = None  # a plugin method not loaded here: keep every recorded option
    return record["method"], cls, record


def _trim_record(step: Step) -> dict[str, Any] | None:
    record = step.meta.get("trim")
    return record if step.stage == "trim" and isinstance(record, dict) else None


def stage_call(step: Step) -> str:
    """The step as a recipe stage with every option it set (`trim:corpus=mono.txt,keep=8000`).

    The stored `call` where the step has the provenance header; the rest reads an older model's keys.
    """
    if isinstance(step.provenance.get("call"), str):
        return step.provenance["call"]
    from ndogo.compress.trim import TrimConfig
    from ndogo.train.config import FinetuneStageConfig

    if step.stage == "finetune" and step.metrics.get("config"):
        chosen = _chosen(FinetuneStageConfig, _finetune_record(step), ("model", "out", "extra"),
                         always=("epochs", "lr", "batch_size", "seed"))
        return "finetune:" + _recipe_options(chosen)
    trim = _trim_record(step)
    if trim is not None:
        options = _recipe_options(_chosen(TrimConfig, trim, ("batch_size",)))
        return "trim" + (f":{options}" if options else "")
    method = _method_stage(step)
    if method is not None:
        name, cls, record = method
        options = _recipe_options(_chosen(cls, record, ("method",)))
        return f"{step.stage}:method={name}" + (f",{options}" if options else "")
    if step.stage == "export":
        return f"export:format={'ort' if step.meta.get('kind') == 'ort' else 'onnx'}"
    return step.stage


def step_command(step: Step, previous: str | None) -> str | None:
    """The ndogo command that redoes one step from the directory `previous`, where its record is enough.

    Every option the step's record set is written out, so each command makes what the next one reads.
    A step with the provenance header gives its stored command, its input and output renamed
    `runs/<folder name>`; the rest reads an older model's keys.
    """
    if isinstance(step.provenance.get("command"), str):
        return stored_command(step)
    from ndogo.compress.trim import TrimConfig
    from ndogo.train.config import FinetuneStageConfig

    meta, q = step.meta, shlex.quote
    out = q(f"runs/{Path(step.path).name}")
    if step.stage == "finetune" and step.metrics.get("config"):
        cfg = _finetune_record(step)
        args = [f"--model {q(str(cfg.get('model') or meta.get('base_model')))}"]
        if cfg.get("data"):
            args.append(f"--data {_arg(cfg['data'])}")
        args.append(f"--lang {_arg(cfg.get('langs') or meta.get('langs') or [])}")
        args += _flags(_chosen(FinetuneStageConfig, cfg, ("model", "out", "extra", "data", "langs"),
                               always=("epochs", "lr", "batch_size", "seed")))
        return f"ndogo finetune {' '.join(args)} --out {out}"
    if previous is None:
        return None
    src = q(f"runs/{Path(previous).name}")
    trim = _trim_record(step)
    if trim is not None and trim.get("lang"):
        args = [f"--lang {_arg(trim['lang'])}", *_flags(_chosen(TrimConfig, trim, ("batch_size", "lang")))]
        return f"ndogo trim-vocab {src} {' '.join(args)} --out {out}"
    method = _method_stage(step)
    if method is not None:
        name, cls, record = method
        args = _flags(_chosen(cls, record, ("method",)))
        return f"ndogo {step.stage} {src} --method {q(name)} {' '.join(args)} --out {out}".replace("  ", " ")
    if step.stage == "export":
        fmt = "ort" if meta.get("kind") == "ort" else "onnx"
        extra = f" --platform {meta['ort_platform']}" if fmt == "ort" and meta.get("ort_platform") else ""
        return f"ndogo export {src} --format {fmt}{extra} --out {out}"
    return None


def stored_command(step: Step) -> str:
    """The command the provenance header stored, reading `runs/<source>` and writing `runs/<this model>`.

    Paths are swapped word by word (a folder's path is often the prefix of the next one's,
    `out` and `out.stages/...`), and only the model's input and output: every other path stays
    as recorded and is shown relative or by its name when the card is written.
    """
    header = step.provenance
    source, made = str(header.get("source") or ""), str(header.get("path") or "")
    swap = {made: f"runs/{Path(step.path).name}"}
    if source and Path(source).is_absolute():
        swap[source] = f"runs/{Path(source).name}"
    return shlex.join(swap.get(word, word) for word in shlex.split(header["command"]))


def rebuild_commands(steps: Sequence[Step]) -> tuple[str | None, list[str], str | None]:
    """(where the commands start, the commands in order, the stage they stop before).

    Leading steps no command redoes (a fine-tuned run without its metrics.json, the plain
    model ndogo started from) are the starting point; a step after the first command that
    no command redoes ends the list there, since every later command would read a
    directory none of them made.
    """
    commands: list[str] = []
    start: str | None = None
    for i, step in enumerate(steps):
        command = step_command(step, steps[i - 1].path if i else None)
        if command is None:
            if commands:
                return start, commands, step.stage
            start = step.path
            continue
        commands.append(command)
    return start, commands, None


def read_evals(run: str | Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Evaluation rows kept beside a model (`evals/<lang>-<split>.json`), by (lang, split)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(Path(run, "evals").glob("*.json")):
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            continue
        if isinstance(row, dict) and row.get(row.get("metric", "f1")) is not None and row.get("lang") \
                and row.get("split"):
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


def bundle_files(run: Path, meta: dict[str, Any]) -> list[Path]:
    """The files of `run` inference reads (`ndogo.models.files.inference_files`), ndogo.json left to `ship`.

    An allow-list, not a list of what to leave out: a run folder may hold anything (a `.env`,
    a `.git/`, the training file, a bundle shipped into it earlier), and none of it is the model.
    """
    return [run / name for name in inference_files(run, meta) if name != META]


def _shown(path: str, cwd: Path) -> str:
    """A local path as a bundle may show it: relative to where `ship` runs when inside it, else its name."""
    absolute = Path(os.path.expanduser(path))
    try:
        return str(absolute.relative_to(cwd)) or "."
    except ValueError:
        return absolute.name or path


ABSOLUTE_IN_TEXT = re.compile(r"(?<![\w.~/:-])(?:~|/)[^\s'\"|,;:]*")


def private(value: Any, cwd: Path | None = None) -> Any:
    """`value` (a record, a command) with the maker's absolute paths made relative or cut to their name.

    ndogo.json records every local path absolute (`source`, `parent`, `corpus`, the
    fine-tuning `data`...), which says where a run came from on the maker's disk; a
    bundle is handed to others and should not show `/home/<name>/...`.
    """
    cwd = cwd or Path.cwd().resolve()
    if isinstance(value, dict):
        return {k: private(v, cwd) for k, v in value.items()}
    if isinstance(value, list):
        return [private(v, cwd) for v in value]
    if isinstance(value, str) and ("/" in value or value.startswith("~")):
        return ABSOLUTE_IN_TEXT.sub(lambda m: _shown(m.group(0), cwd) if len(m.group(0)) > 1 else m.group(0), value)
    return value


def _cell(text: str) -> str:
    """Text for a markdown table cell: a pipe would end the cell, even inside backticks."""
    return text.replace("|", "\\|")


def _pct(x: Any) -> float | None:
    return round(100 * float(x), 2) if isinstance(x, int | float) else None


def _fmt(x: Any, unit: str = "", digits: int = 2) -> str:
    return f"{x:.{digits}f}{unit}" if isinstance(x, int | float) else NOT_MEASURED


def _dataset(lang: str | None, dataset: str | None, task: Any = None) -> str:
    if dataset:
        return dataset
    if task is not None and task.hub_dataset:
        return task.hub_dataset
    return "masakhaner" if lang is None or lang in MASAKHANER_1 else "masakhane/masakhaner2"


def ship(run: str | Path, out: str | Path, lang: str | None = None, dataset: str | None = None,
         rows: dict[tuple[str, str], dict[str, Any]] | None = None, command: str | None = None,
         seed_spread: dict[str, Any] | None = None, baseline: dict[str, Any] | None = None,
         warning: str | None = None) -> Path:
    """Write a self-contained bundle of the model in `run` to `out` (which must be new or empty).

    Args:
        run: any model directory ndogo saves.
        out: the bundle directory, outside `run`.
        lang: the language the card reports (default: the first the model was trained on).
        dataset: hub id of the corpus (default: masakhaner for MasakhaNER 1.0 languages, else masakhaner2).
        rows: evaluation rows by (lang, split), used before `<run>/evals/*.json`.
        command: the command that rebuilds the model (recommend's), shown before the per-step ones.
        seed_spread: {"seeds": [...], "f1_std": x} when the F1 is a mean over seeds.
        baseline: the baseline's row ({"f1", "size_bytes", "latency_ms_b1"}) when known from elsewhere.
        warning: a line the card shows above its results (recommend's: the baseline itself is weak).

    Returns:
        `out`. It is checked before returning: it loads with `load_runner` alone and finds the same
        entities as `run` in a probe sentence. On any failure nothing is left in `out`.
    """
    run, out = Path(run), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out}: already exists and is not empty; choose a new bundle directory")
    if out.resolve() == run.resolve():
        raise ValueError(f"{out}: the bundle must be a new directory, not the model itself")
    if run.resolve() in out.resolve().parents:
        raise ValueError(f"{out}: inside the model folder {run}; a bundle there would become part of the model "
                         "(its size, the next bundle); choose a folder outside it")
    source = load_runner(run)  # refuse what cannot be loaded (or links out of `run`) before writing anything
    meta = dict(source.meta)
    check_inside(run, meta, ModelError)
    lang = lang or (meta.get("langs") or [None])[0]
    evals = {**read_evals(run), **(rows or {})}
    steps = lineage(run)
    base_row = baseline or _baseline_row(steps, lang)
    example = example_sentence(lang, steps, dataset, rows)
    created = not out.exists()
    try:
        return _write_bundle(run, out, source, meta, lang, dataset, evals, steps, base_row, example, command,
                             seed_spread, warning)
    except BaseException:
        # a half-written bundle would load as something it is not; leave `out` as it was found
        if created:
            shutil.rmtree(out, ignore_errors=True)
        elif out.is_dir():
            for item in out.iterdir():
                shutil.rmtree(item, ignore_errors=True) if item.is_dir() and not item.is_symlink() else item.unlink()
        raise


def _write_bundle(run: Path, out: Path, source: Any, meta: dict[str, Any], lang: str | None, dataset: str | None,
                  evals: dict[tuple[str, str], dict[str, Any]], steps: list[Step], base_row: dict[str, Any] | None,
                  example: str | None, command: str | None, seed_spread: dict[str, Any] | None,
                  warning: str | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(DIR_MODE)
    files = bundle_files(run, meta)
    for f in files:
        _copy(f, out / f.relative_to(run))
    start, commands, stop = rebuild_commands(steps)
    found = _example_entities(source, example)
    bundle_meta = private({
        **meta, "kind": source.kind, "labels": source.labels, "max_length": source.max_length,
        "bundle": {"source": str(run.resolve()), "files": sorted(str(f.relative_to(run)) for f in files),
                   "recipe": " | ".join(stage_call(s) for s in steps), "commands": commands,
                   "commands_start": Path(start).name if start else None, "commands_stop": stop,
                   "rebuild": command, "example": example,
                   "evals": {f"{k[0]}-{k[1]}": _summary(v) for k, v in sorted(evals.items())}},
    })
    (out / META).write_text(json.dumps(bundle_meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out / META).chmod(FILE_MODE)
    card = model_card(out.name, bundle_meta, steps, evals, lang, _dataset(lang, dataset, task_of_model(meta)),
                      size_on_disk(out),
                      base_row, seed_spread, found, warning)
    (out / "README.md").write_text(card, encoding="utf-8")
    (out / "README.md").chmod(FILE_MODE)
    _check(run, out, example)
    return out


def example_sentence(lang: str | None, steps: Sequence[Step], dataset: str | None = None,
                     rows: dict[tuple[str, str], dict[str, Any]] | None = None) -> str | None:
    """A sentence of the model's language for the card's usage: one from its test set, where that is at hand.

    The corpus is looked for where the model's records say it was (the fine-tuning data,
    the trim's, a sweep row's), then `dataset` and $NDOGO_DATA. None where none is on this
    machine: the card then shows no sentence rather than one in another language.
    """
    if not lang:
        return None
    candidates = [dataset, *((r or {}).get("data") for r in (rows or {}).values())]
    for step in steps[::-1]:
        candidates += [(step.metrics.get("config") or {}).get("data"), (step.meta.get("trim") or {}).get("data"),
                       step.meta.get("data")]
        for key in ("prune", "quantization"):
            if isinstance(step.meta.get(key), dict):
                candidates.append(step.meta[key].get("data"))
    candidates.append(os.environ.get("NDOGO_DATA"))
    task = task_of_model(steps[-1].meta if steps else {})
    for folder in dict.fromkeys(c for c in candidates if isinstance(c, str) and c):
        if not (Path(folder).expanduser() / lang).is_dir():
            continue
        try:
            sentences = task.load(str(Path(folder).expanduser()), lang, ("test",)).splits.get("test", [])
        except (ValueError, OSError):
            continue
        short = [s for s in sentences if 5 <= len(s.tokens) <= 20] or sentences
        # a sentence with an entity in it, for a tagger of entities
        named = [s for s in short if any(t != "O" for t in getattr(s, "tags", []))] or short
        if named:
            return " ".join(named[0].tokens)
    return None


def _example_entities(source: Any, example: str | None) -> list[Any]:
    from ndogo.deploy.predict import Predictor

    return Predictor(source).predict(example)[0] if example else []


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("metric", "f1", "precision", "recall", "accuracy", "macro_f1", "per_type", "sentences", "size_bytes",
            "latency_ms_b1", "latency_e2e_ms_b1",
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


def _check(run: Path, out: Path, example: str | None = None) -> None:
    """The bundle loads with nothing but its own files and tags probe sentences as the source does."""
    from ndogo.deploy.predict import Predictor

    def spans(found: Any) -> Any:
        """What must match: each entity's label and span, each word's tag, or the text's label."""
        if isinstance(found, list):
            return [(e.label, e.start, e.end) if hasattr(e, "label") else (e.text, e.tag) for e in found]
        return found.label

    probes = [PROBE, *([example] if example else [])]
    want = [spans(e) for e in Predictor(load_runner(run)).predict(probes)]
    got = {"PyTorch path": [spans(e) for e in Predictor(load_runner(out)).predict(probes)]}
    if read_meta(out).get("kind") in TORCH_FREE_KINDS:
        from ndogo.deploy.runtime import load

        got["torch-free runtime"] = [spans(e) for e in load(out, threads=1).predict(probes)]
    for path, found in got.items():
        if found != want:
            raise ModelError(f"{out}: the bundle ({path}) predicts otherwise than {run} on a probe sentence; "
                             "not shipped")


def front_matter(name: str, meta: dict[str, Any], evals: dict[tuple[str, str], dict[str, Any]], lang: str | None,
                 dataset: str) -> dict[str, Any]:
    """The card's YAML header: what the hub indexes and renders (language, licence, metrics)."""
    task = task_of_model(meta)
    kind = meta.get("kind", "hf")
    tags = [task.pipeline_tag, task.card_tags[0], "ndogo", *task.card_tags[1:]]
    if kind in TORCH_FREE_KINDS:
        tags += ["onnx"] + (["int8"] if "int8" in json.dumps(meta.get("quantization") or {}) else [])
    header: dict[str, Any] = {
        "language": sorted({iso639(str(x)) for x in meta.get("langs") or ([lang] if lang else [])}),
        "license": task.licence, "datasets": [dataset], "tags": tags, "pipeline_tag": task.pipeline_tag,
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
        metrics = [{"type": m, "value": _pct(row.get(m)), "name": task.metric_names[m]} for m in task.metrics]
        metrics += [{"type": "f1", "value": _pct(v["f1"]), "name": f"F1 {t}"}
                    for t, v in sorted((row.get("per_type") or {}).items())]
        results.append({"task": {"type": task.pipeline_tag, "name": task.title},
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
               seed_spread: dict[str, Any] | None, found: Sequence[Any] = (), warning: str | None = None) -> str:
    """The README.md of a bundle: front matter, then what a user needs to judge and use the model.

    `meta` is the bundle's (paths already made private); `found` the entities the model finds in
    the usage example (`meta["bundle"]["example"]`), shown as its real output; `warning` a line the
    card shows above its results (a weak baseline).
    """
    task = task_of_model(meta)
    kind = meta.get("kind", "hf")
    bundle = meta["bundle"]
    test, dev = evals.get((str(lang), "test")), evals.get((str(lang), "dev"))
    base = str(meta.get("base_model") or NOT_MEASURED)
    what = "Named-entity recognition (PER, ORG, LOC, DATE)" if task.output == "entities" else task.title
    window = ("sub-words (longer sentences are windowed, not truncated)" if task.head == "tokens" else
              "sub-words (a longer text is truncated to it)")
    lines = ["---", _yaml(front_matter(name, meta, evals, lang, dataset)).rstrip(), "---", "",
             f"# {name}", "",
             f"{what} for **{lang}**, made with ndogo "
             f"from `{base}` ({HUB_IDS.get(base, base)}).", "",
             "| | |", "|---|---|",
             f"| base model | `{base}` |", f"| language | {', '.join(meta.get('langs') or [str(lang)])} |",
             f"| model kind | `{kind}` |", f"| recipe | `{_cell(bundle['recipe'])}` |",
             f"| size on disk | {size_bytes / 1e6:.1f} MB |",
             f"| labels | {', '.join(meta.get('labels') or [])} |",
             f"| window | {meta.get('max_length')} {window} |", ""]
    lines += ["## Results", "", *([f"**Warning:** {warning}.", ""] if warning else [])]
    lines += _results_table(test, dev, seed_spread, task)
    lines += ["", "## Speed", ""]
    lines += _speed_lines(test, {"entities": "entities", "tags": "tags", "label": "label"}[task.output])
    lines += ["", "## What the compression cost", ""]
    lines += _cost_lines(test, baseline, size_bytes, task)
    lines += ["", "## How it was made", ""]
    for i, step in enumerate(steps, 1):
        where = f"kind `{step.meta.get('kind', 'hf')}`, saved as `{Path(step.path).name}`"
        lines.append(f"{i}. `{_cell(private(stage_call(step)))}` ({where})")
    if bundle.get("rebuild"):
        lines += ["", "To rebuild it from the fine-tuned baseline, as the sweep did:", "", "```bash",
                  bundle["rebuild"], "```"]
    if bundle["commands"]:
        start = bundle.get("commands_start")
        intro = (f"To rebuild it stage by stage from `runs/{start}` (each command reads the previous one's output; "
                 "local paths are shown relative to where the model was made, or by their name):" if start else
                 "To rebuild it stage by stage (each command reads the previous one's output; local paths are "
                 "shown relative to where the model was made, or by their name):")
        lines += ["", intro, "", "```bash", *bundle["commands"], "```"]
        if bundle.get("commands_stop"):
            lines += ["", f"The `{bundle['commands_stop']}` stage after these is not recorded fully enough to "
                          "write its command; the chain above stops before it."]
    lines += ["", "## Usage", ""]
    if task.output == "entities":
        lines += _usage(name, kind, lang, bundle.get("example"), found)
    else:
        lines += _task_usage(name, kind, lang, bundle.get("example"), found, task)
    lines += ["", "## Known limits", ""]
    lines += _limits(kind, lang, meta) if task.output == "entities" else _task_limits(kind, lang, meta, task)
    lines += ["", "## Data and licence", "",
              f"Trained and evaluated on {DATASETS.get(dataset, dataset)} (`{dataset}`), {task.data_note}", ""]
    return "\n".join(lines)


# a metric's column in the card's results table
COLUMN = {"f1": "F1", "precision": "precision", "recall": "recall", "accuracy": "accuracy", "macro_f1": "macro-F1"}


def _results_table(test: dict[str, Any] | None, dev: dict[str, Any] | None,
                   seed_spread: dict[str, Any] | None, task: Any) -> list[str]:
    types = sorted(set((test or {}).get("per_type") or {}) | set((dev or {}).get("per_type") or {}))
    metrics = list(task.metrics)
    columns = [COLUMN.get(m, m) for m in metrics] + [f"F1 {t}" for t in types]
    lines = [task.results_note, "", "| split | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for split, row in (("test", test), ("dev", dev)):
        if row is None:
            lines.append(f"| {split} | {NOT_MEASURED} |" + " |" * (len(columns) - 1))
            continue
        per = row.get("per_type") or {}
        cells = [_fmt(_pct(row.get(k))) for k in metrics]
        cells += [_fmt(_pct(per[t]["f1"])) if t in per else NOT_MEASURED for t in types]
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    if seed_spread and seed_spread.get("seeds"):
        seeds = ", ".join(map(str, seed_spread["seeds"]))
        lines += ["", f"{COLUMN.get(task.metric, task.metric)} is the mean over seeds {seeds} "
                      f"(standard deviation {_fmt(_pct(seed_spread.get('f1_std')))} points)."]
    else:
        lines += ["", "Seed spread: not measured (one training run)."]
    if test and test.get("sentences"):
        lines.append(f"Test set: {test['sentences']} sentences.")
    return lines


def _speed_lines(test: dict[str, Any] | None, what: str = "entities") -> list[str]:
    if not test or test.get("latency_ms_b1") is None:
        return [f"Latency: {NOT_MEASURED}."]
    tput = test.get("throughput_b32")
    b32 = f"{_fmt(tput, ' sentences/s')} ({_fmt(32000 / tput, ' ms')} per batch of 32)" if tput else NOT_MEASURED
    return [f"Measured by `ndogo evaluate` on the first {test.get('latency_sentences', 200)} test sentences, "
            f"{test.get('threads', '?')} CPU thread(s), on {test.get('cpu') or 'an unrecorded CPU'}:", "",
            f"- batch 1, forward pass: {_fmt(test['latency_ms_b1'], ' ms')} per sentence (median)",
            f"- batch 1, raw sentence to {what} (tokenizing and decoding included): "
            f"{_fmt(test.get('latency_e2e_ms_b1'), ' ms')}",
            f"- batch 32: {b32}",
            f"- peak memory of the evaluating process: {_fmt(test.get('peak_rss_mb'), ' MB', 0)}"]


def _cost_lines(test: dict[str, Any] | None, base: dict[str, Any] | None, size_bytes: int,
                task: Any) -> list[str]:
    m = task.metric
    if not base or not test or base.get(m) is None or test.get(m) is None:
        return [f"Against the fine-tuned baseline: {NOT_MEASURED} (no evaluation of both on the same test set)."]
    lines = [f"Against the fine-tuned fp32 baseline on the same test set: {COLUMN.get(m, m)} "
             f"{_fmt(_pct(base[m]))} → {_fmt(_pct(test[m]))} ({_fmt(_pct(test[m] - base[m]))} points)"]
    if base.get("size_bytes"):
        lines[0] += (f"; size {base['size_bytes'] / 1e6:.1f} → {size_bytes / 1e6:.1f} MB "
                     f"({base['size_bytes'] / size_bytes:.2f}× smaller)")
    if base.get("latency_ms_b1") and test.get("latency_ms_b1"):
        lines[0] += (f"; batch-1 latency {_fmt(base['latency_ms_b1'], ' ms')} → {_fmt(test['latency_ms_b1'], ' ms')} "
                     f"({base['latency_ms_b1'] / test['latency_ms_b1']:.2f}× faster)")
    return [lines[0] + "."]


def _entity_line(found: Sequence[Any]) -> str:
    shown = ", ".join(f"Entity(text={e.text!r}, label={e.label!r}, start={e.start}, end={e.end}, score={e.score:.2f})"
                      for e in found[:2])
    return f"# [[{shown}{', ...' if len(found) > 2 else ''}]]"


def _usage(name: str, kind: str, lang: str | None, example: str | None, found: Sequence[Any]) -> list[str]:
    """How to run the bundle, on a sentence of its own language (`example`) or on the reader's own text."""
    where = f"{lang} " if lang else ""
    if example:
        texts, text = f"[{example!r}]", repr(example)
        body = shlex.quote(json.dumps({"text": example}, ensure_ascii=False))
        result = _entity_line(found)
    else:
        texts, text = "texts", "text"
        body = f"'{{\"text\": \"<a {where}sentence>\"}}'"
        result = f"# texts: a list of {where}sentences; one list of entities per text"
    lines = ["With ndogo (any kind; words are split as MasakhaNER's, long sentences windowed, and each entity "
             "has character offsets, a label and a score)" + (", on a sentence of its test set:" if example else ":"),
             "", "```python", "import ndogo", "",
             f'ner = ndogo.load("{name}")', f"ner.predict({texts})", result, "```", "",
             f"Over HTTP: `ndogo serve {name} --port 8000`, then "
             f"`curl -s localhost:8000/v1/entities -d {body}`.", ""]
    if kind == "hf":
        lines += ["With transformers alone (`aggregation_strategy=\"first\"` labels each word by its first "
                  "sub-word, as ndogo does; `\"simple\"` would return sub-word fragments):", "", "```python",
                  "from transformers import pipeline", "",
                  f'ner = pipeline("token-classification", model="{name}", aggregation_strategy="first")',
                  f"ner({text})" + ("" if example else f"  # text: a {where}sentence"), "```"]
    elif kind in TORCH_FREE_KINDS:
        graph = "model.ort" if kind == "ort" else "model.onnx"
        split = f"{text}.split()" + ("" if example else f"  # text: a {where}sentence, punctuation apart")
        lines += ["`ndogo.load` runs this model on ONNX Runtime without torch or transformers "
                  "(`pip install onnxruntime tokenizers numpy regex`, then ndogo with `--no-deps`). "
                  "With ONNX Runtime directly (label of each word's first sub-word):", "", "```python",
                  "import json, numpy as np, onnxruntime as ort", "from tokenizers import Tokenizer", "",
                  f'sess = ort.InferenceSession("{name}/{graph}", providers=["CPUExecutionProvider"])',
                  f'tok = Tokenizer.from_file("{name}/tokenizer.json")',
                  f'labels = json.load(open("{name}/ndogo.json"))["labels"]',
                  f"words = {split}",
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


def _task_usage(name: str, kind: str, lang: str | None, example: str | None, found: Any, task: Any) -> list[str]:
    """How to run a POS tagger or a text classifier bundle (the entity usage is `_usage`)."""
    where = f"{lang} " if lang else ""
    texts = f"[{example!r}]" if example else "texts"
    if task.output == "label":
        shown = f"# [Label(label={found.label!r}, score={found.score:.2f})]" if example and found else \
            "# one Label(label, score) per text"
        each = "each text gets one label and its probability"
    else:
        shown = ("# [[" + ", ".join(f"WordTag(text={w.text!r}, tag={w.tag!r}, ...)" for w in found[:3])
                 + ", ...]]") if example and found else "# one list of WordTag(text, start, end, tag, score) per text"
        each = "words are split as MasakhaNER's, long sentences windowed, and each word gets its tag"
    from ndogo.deploy.serve import ENDPOINTS

    path, key, _ = ENDPOINTS[task.output]
    body = shlex.quote(json.dumps({"text": example}, ensure_ascii=False)) if example else \
        f"'{{\"text\": \"<a {where}sentence>\"}}'"
    lines = [f"With ndogo (any kind; {each})" + (", on a sentence of its test set:" if example else ":"), "",
             "```python", "import ndogo", "", f'model = ndogo.load("{name}")', f"model.predict({texts})", shown,
             "```", "", f"Over HTTP: `ndogo serve {name} --port 8000`, then `curl -s localhost:8000{path} -d {body}` "
             f"(the answer is under `{key}`).", ""]
    if kind == "hf":
        call = f"{example!r}" if example else f"text  # a {where}sentence"
        extra = ', aggregation_strategy="first"' if task.head == "tokens" else ""
        lines += ["With transformers alone:", "", "```python", "from transformers import pipeline", "",
                  f'model = pipeline("{task.pipeline_tag}", model="{name}"{extra})', f"model({call})", "```"]
    elif kind not in TORCH_FREE_KINDS:
        lines += [f"Kind `{kind}` stores its weights in ndogo's own layout: load it with `ndogo.load` "
                  "(transformers alone cannot)."]
    else:
        lines += ["`ndogo.load` runs this model on ONNX Runtime without torch or transformers "
                  "(`pip install onnxruntime tokenizers numpy regex`, then ndogo with `--no-deps`)."]
    return lines


def _task_limits(kind: str, lang: str | None, meta: dict[str, Any], task: Any) -> list[str]:
    labels = meta.get("labels") or []
    lines = [f"- Trained on one language ({lang}); other languages and domains were not measured.",
             f"- {len(labels)} labels only ({', '.join(labels)}), as the corpus annotates them."]
    if task.head == "sequence":
        lines.append(f"- Texts longer than {meta.get('max_length')} sub-words are truncated to their start.")
    else:
        lines.append(f"- Inputs longer than {meta.get('max_length')} sub-words are windowed by ndogo; the "
                     "transformers pipeline truncates them unless given a `stride`.")
    if kind in TORCH_FREE_KINDS and meta.get("quantization"):
        lines.append("- Weights are int8 (ONNX Runtime dynamic quantization), for CPUs; scores are close to, "
                     "not identical with, the float model's.")
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
