"""Run a sweep: every cell of the grid once, resumable after any kill, locally or on Ray.

The driver is the only writer of the store. It claims a cell ("running") before
starting it and writes the finished row in one transaction; a kill at any
moment leaves each cell done, or claimed by a dead process, and `--resume`
reruns exactly the cells that are not done. Stage outputs live in
`<DIR>/artifacts`, keyed by what decides them, so a resumed or a later cell
reuses every stage already finished (a fine-tuned baseline is trained once).

A cell built on the fine-tuned baseline waits for its baseline cell; when that
failed, it is recorded as failed without running (it would retrain and fail the
same way). When the baseline is done but learned nothing (dev F1 0: not one
entity found, as when its tokenizer cannot read the language), its dependents are recorded as failed
without running too, saying so: compressing a model that finds nothing scores
nothing, and a ΔF1 of 0 against it would read as a free compression
(`[evaluate] skip_empty_baselines = false` compresses it anyway; `min_baseline_dev_f1` raises the
bar from "found nothing" to a dev F1 floor the config names). Cells whose
recipe starts from the pretrained model run at any time.

On a Ray cluster (`--executor ray --ray-address ...`) cells run on any node, and
every node reads and writes the same `<DIR>/artifacts` and `<DIR>/logs`: `--out`
must be a folder every node mounts at the same path (NFS, a cluster file system).
Before any cell, each node that can run one writes and reads a probe file there, and
a cluster with a node that cannot see the folder is refused. Stages lock their
outputs with flock, which Linux's NFS client turns into NFS locks, so two nodes
never build one stage at the same time. Only the driver opens
`results.sqlite`. A cell whose node dies is run again by Ray on another node (the
stages it finished are reused from the shared artifacts); its row is still written
once, by the driver.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import sys
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ndogo.compress.recipe import bind_recipe
from ndogo.experiments.cell import CellSettings, describe, machine, run_cell, versions
from ndogo.experiments.config import BASELINE, Cell, SweepConfig
from ndogo.experiments.row import DEFAULT_METRIC, dev_headline, headline, metric_label, metric_of
from ndogo.experiments.store import STORE, Store
from ndogo.locks import file_lock

EXECUTORS = ("local", "ray")
PROBE = ".shared-probe"  # under the sweep's folder: written by the driver, read by every node
# A cell whose worker or node dies (a node removed, a spot machine reclaimed) is run again by Ray on
# another node this many times; a failure of the experiment itself is a row and is never retried.
RAY_RETRIES = 3
PROBE_TIMEOUT_S = 300.0  # a node's first task starts a Python worker: seconds, more on a loaded node


@dataclass
class SweepSummary:
    """What one `ndogo sweep` invocation did, for the closing lines and the exit code."""

    total: int
    skipped: int  # done before this invocation
    done: int
    failed: int
    seconds: float
    directory: str
    failures: list[str] = field(default_factory=list)


class SweepError(ValueError):
    """A sweep that cannot start as asked (directory in use, results there without --resume)."""


def exclusive(directory: Path) -> AbstractContextManager[None]:
    """One sweep process per directory: a second one would rerun the first one's running cells."""
    return file_lock(directory / ".sweep.lock", wait=False,
                     busy=SweepError(f"{directory}: another `ndogo sweep` is running in this directory"))


class Schedule:
    """Which cells may start now, in grid order: a dependent once its baseline is done.

    Ready cells are offered in the order of the grid (language by language), so a
    language's compressions run as soon as its baseline is done, before the next
    language's baseline: an interrupted sweep leaves whole languages, not ten
    baselines and nothing else.
    """

    def __init__(self, todo: list[Cell], statuses: dict[str, str]) -> None:
        self.order = {c.id: i for i, c in enumerate(todo)}
        self.waiting = list(todo)
        self.status = dict(statuses)
        self.running: set[str] = set()
        self.reasons: dict[str, str] = {}  # baseline id -> why its dependents cannot run

    def unusable(self, baseline_id: str, reason: str) -> None:
        """A done baseline its dependents must not build on (it learned nothing), and why."""
        self.status[baseline_id] = "unusable"
        self.reasons[baseline_id] = reason

    def ready(self) -> tuple[list[Cell], list[Cell]]:
        """(cells that can start, cells that cannot ever run because their baseline failed)."""
        start, blocked, keep = [], [], []
        for cell in self.waiting:
            need = self.status.get(cell.needs) if cell.needs else "done"
            if need == "done":
                start.append(cell)
            elif need in ("failed", "unusable") and cell.needs not in self.running:
                blocked.append(cell)
            else:
                keep.append(cell)
        self.waiting = keep
        return start, blocked

    def started(self, cell: Cell) -> None:
        self.running.add(cell.id)
        self.status[cell.id] = "running"

    def finished(self, cell: Cell, status: str) -> None:
        self.running.discard(cell.id)
        self.status[cell.id] = status

    def requeue(self, cells: list[Cell]) -> None:
        self.waiting = sorted(cells + self.waiting, key=lambda c: self.order[c.id])

    @property
    def left(self) -> bool:
        return bool(self.waiting or self.running)


def blocked_row(cell: Cell, reason: str | None = None) -> dict[str, Any]:
    """A failed row for a cell whose baseline failed or learned nothing: stored, so the sweep says why it never ran."""
    now = time.time()
    why = reason or f"its baseline cell {cell.needs} failed (see that cell's error)"
    return {**describe(cell), "status": "failed", "started": now, "finished": now, "seconds": 0.0,
            "error": f"not run: {why}", "versions": versions(), "machine": machine(cell.recipe.cpus)}


def unusable_baseline(row: dict[str, Any], floor: float = 0.0) -> str | None:
    """Why a done baseline row cannot carry compressions (it learned nothing), or None when it can.

    Read in the row's own headline metric on dev (entity F1 for NER, accuracy for POS...): the floor
    `min_baseline_dev_f1` keeps its name and is a fraction of that metric.
    """
    dev = dev_headline(row)
    label = metric_label(metric_of(row))
    # Exactly zero by default, not a floor: a baseline that finds even a few entities is a real, if
    # poor, model whose compressions say something (a tiny test model's 0.8 points among them). A
    # config that knows better names its floor (`min_baseline_dev_f1`).
    if row.get("status") != "done" or dev is None or dev > floor:
        return None
    if dev > 0.0:
        return (f"its baseline is too weak to compress (dev {label} {100 * dev:.2f}, at or under the sweep's "
                f"floor min_baseline_dev_f1 = {floor:g}): a Δ{label} against it says little; train the baseline "
                "longer, or lower the floor")
    nothing = "not one entity found" if metric_of(row) == DEFAULT_METRIC else "not one prediction right"
    why = (f"its baseline learned nothing (dev {label} 0.00: {nothing}), so every compression of it "
           f"would score 0 too and its Δ{label} of 0 would read as free")
    unknown = row.get("dev_unknown_words")  # measured by the baseline's cell: the driver loads nothing
    if unknown is not None and float(unknown) >= 0.5:
        why += (f"; {100 * float(unknown):.0f}% of its dev words are the tokenizer's unknown token: this model "
                f"cannot read {row.get('lang')}, so choose one whose vocabulary covers its script")
    return why


TRAINING_STAGES = ("finetune", "distill")


def cell_class(cell: Cell) -> str:
    """"training" for a cell that trains (its baseline, a student, recovery epochs), else "measure".

    They differ by two orders of magnitude (minutes of training against seconds of
    quantizing and scoring), so the time left is estimated per class.
    """
    stages = cell.chain.stages if cell.recipe.name == BASELINE or cell.recipe.recipe.start == "pretrained" \
        else cell.recipe.recipe.stages  # a dependent reuses its baseline's finetune
    trains = any(s.stage in TRAINING_STAGES or float(s.options.get("recover_epochs", 0) or 0) > 0 for s in stages)
    return "training" if trains else "measure"


class Reporter:
    """Progress on the terminal (rich): done, running, failed and left, with time remaining.

    The estimate sums, over the cells left, the mean time of finished cells of the
    same class (training or measuring; finished rows of earlier invocations count),
    divided by how many run at once. Cells of a class with no timing yet are counted,
    not guessed: "~3m + 2 training cells not yet timed".
    """

    def __init__(self, total: int, skipped: int, parallel: int, console: Console, show: bool,
                 pending: list[Cell] | None = None, history: dict[str, list[float]] | None = None) -> None:
        # The live bar only on a terminal: written to a file or a pipe (`make run > log`), rich draws it
        # once, cut to 80 columns, and nothing more until the end. The lines below are printed anyway.
        self.total, self.done, self.failed, self.running = total, skipped, 0, 0
        self.parallel = max(parallel, 1)
        self.durations: list[float] = []
        self.pending = {c.id: cell_class(c) for c in pending or []}
        self.by_class: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
        self.t0 = time.perf_counter()
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[running]} running · {task.fields[failed]} failed · {task.fields[left]} left"),
            TimeElapsedColumn(), TextColumn("· {task.fields[eta]} remaining"),
            console=console, redirect_stdout=False, redirect_stderr=False,
            disable=not (show and console.is_terminal and not console.is_dumb_terminal),
        )
        self.task = self.progress.add_task("sweep", total=total, completed=skipped, **self._fields())

    def _fields(self) -> dict[str, Any]:
        left = self.total - self.done - self.failed
        eta = "?"
        if self.pending:
            known, untimed = 0.0, {"training": 0, "measure": 0}
            for kind in self.pending.values():
                times = self.by_class.get(kind)
                if times:
                    known += sum(times) / len(times)
                else:
                    untimed[kind] += 1
            eta = _duration(known / self.parallel) if known or not any(untimed.values()) else "?"
            eta += "".join(f" + {n} {kind} cell{'s' if n > 1 else ''} not yet timed"
                           for kind, n in untimed.items() if n)
        elif self.durations:
            remaining = sum(self.durations) / len(self.durations) * max(left - self.running, 0) / self.parallel
            eta = _duration(remaining)
        elif left == 0:
            eta = "0s"
        return {"running": self.running, "failed": self.failed, "left": left - self.running, "eta": eta}

    def __enter__(self) -> Reporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, cell: Cell) -> None:
        self.running += 1
        kind = self.pending.pop(cell.id, None) or cell_class(cell)
        self.progress.update(self.task, **self._fields())
        self.note(f"[{self.done + self.failed + self.running}/{self.total}] {cell.label()}: started"
                  + (" (it trains: a line per epoch follows)" if kind == "training" else "")
                  + f"; log {cell.id}.log")

    def note(self, line: str) -> None:
        """One plain line on the console (above the bar on a terminal; no carriage returns in a file)."""
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def finish(self, cell: Cell, row: dict[str, Any], ran: bool = True) -> None:
        self.running -= 1 if ran else 0
        if row["status"] == "done":
            self.done += 1
            what = f"{metric_label(metric_of(row))} {headline(row):.4f}, {row['size_bytes'] / 1e6:.1f} MB"
            if row.get("latency_ms_b1") is not None:
                what += f", {row['latency_ms_b1']:.2f} ms"
        else:
            self.failed += 1
            what = f"[red]failed[/red]: {escape(row.get('error', '')[:200])}"
        self.pending.pop(cell.id, None)
        if ran:
            self.durations.append(row.get("seconds", 0.0))
            if row["status"] == "done":
                self.by_class.setdefault(cell_class(cell), []).append(row.get("seconds", 0.0))
        fields = self._fields()
        self.progress.update(self.task, completed=self.done + self.failed, **fields)
        self.console.print(f"[{self.done + self.failed}/{self.total}] {cell.label()}: {what} "
                           f"({_duration(row.get('seconds', 0.0))}; {fields['running']} running, "
                           f"{fields['left']} left, ~{fields['eta']} remaining)", highlight=False, soft_wrap=True)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def run_sweep(config: SweepConfig, out: str | Path, executor: str = "local", resume: bool = False,
              ray_address: str | None = None, show_progress: bool = True,
              console: Console | None = None, device: str = "auto") -> SweepSummary:
    """Run every cell of `config` not yet done in `out` and store one row per cell.

    `device` is where cells train and evaluate (`auto`: CUDA when the cell sees a GPU; a Ray
    cell sees the GPUs `[resources] gpus` asks for). It is how cells run, not what they are:
    it changes no cell id and no stage's reuse key.
    """
    if executor not in EXECUTORS:
        raise SweepError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if device.strip().lower() != "auto" and executor == "local":
        from ndogo.device import resolve_device

        resolve_device(device)  # a device this machine lacks is refused before the store is created
    out = Path(out)
    if (out / STORE).is_file() and not resume:
        raise SweepError(f"{out}: results of a sweep are already here; pass --resume to continue it "
                         "(finished cells are kept) or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console(file=sys.stderr)  # a fixed file: cells redirect sys.stdout/err to their logs
    with exclusive(out):
        started_ray = executor == "ray" and not _ray_running()
        probe: tuple[str, str] | None = None
        if executor == "ray":
            try:  # before the store exists: a refused cluster leaves nothing that would need --resume
                probe = check_shared_folder(_ray_init(ray_address), out)
            except BaseException:
                _ray_stop(started_ray)
                raise
        if not (out / STORE).is_file():
            # before the store exists: a refused config leaves no results behind that a rerun without
            # --resume would then be refused for
            config.check_runs(config.cells())
        store = Store(out)
        try:
            cells = config.cells()
            env = {"name": config.name, "versions": versions(), "machine": machine(), "executor": executor,
                   "ray_address": ray_address}
            store.begin_sweep(config.path, config.text, sys.argv, env)
            statuses = store.statuses()
            todo = [c for c in cells if statuses.get(c.id) != "done"]
            config.check_runs(todo)
            skipped = len(cells) - len(todo)
            # absolute: Ray workers need not share this process's working directory
            logs = out.resolve() / "logs"
            settings = CellSettings(artifacts=str(out.resolve() / "artifacts"), logs=str(logs))
            schedule = Schedule(todo, {k: v for k, v in statuses.items() if v == "done"})
            by_id = {c.id: c for c in cells}
            needed = {c.needs for c in todo if c.needs}
            for row in store.rows("done"):  # resumed: an empty baseline's dependents are still not run
                if row["cell_id"] in needed:
                    _check_baseline(schedule, by_id[row["cell_id"]], row)
            t0 = time.perf_counter()
            if skipped:
                console.print(f"{out}: {skipped} of {len(cells)} cells already done; running the other {len(todo)}")
            settings = dataclasses.replace(settings, probe=probe, device=device)
            try:
                parallel = 1 if executor == "local" else _ray_parallel(ray_address, cells)
                history: dict[str, list[float]] = {}
                for row in store.rows("done"):
                    if row["cell_id"] in by_id and row.get("seconds"):
                        history.setdefault(cell_class(by_id[row["cell_id"]]), []).append(float(row["seconds"]))
                console.print(f"sweep {config.name}: {len(todo)} cell(s) to run; each cell's full output (every "
                              f"stage, the dev score per epoch) goes to {logs}/<cell id>.log", highlight=False,
                              soft_wrap=True)
                with Reporter(len(cells), skipped, parallel, console, show_progress, todo, history) as reporter:
                    if executor == "local":
                        # the cells run here: their training epochs are reported as they finish
                        settings = dataclasses.replace(settings, echo=reporter.note)
                        _run_local(schedule, store, settings, reporter)
                    else:
                        _run_ray(schedule, store, settings, reporter, ray_address)
            finally:
                (out / PROBE).unlink(missing_ok=True)
                _ray_stop(started_ray)
            rows = {r["cell_id"]: r for r in store.rows()}
            mine = [rows[c.id] for c in cells if c.id in rows]
            failures = [f"{r['model']}/{r['lang']}/{r['recipe']}/seed {r['seed']}: {r.get('error')}"
                        for r in mine if r["status"] == "failed"]
            return SweepSummary(len(cells), skipped, sum(r["status"] == "done" for r in mine), len(failures),
                                time.perf_counter() - t0, str(out), failures)
        finally:
            store.close()


@dataclass
class PlannedCell:
    """A cell of a sweep as `--resume` would find it: its status in the store and what it is likely to cost."""

    cell: Cell
    status: str  # done, failed, running (claimed by a process that may be gone), or "to run"
    to_build: list[str]  # the stages it would run (not built in the artifacts, nor by a cell planned before it)
    estimate: float | None  # seconds, from this store's own timings; None when one of its stages was never timed


def plan_sweep(config: SweepConfig, out: str | Path) -> list[PlannedCell]:
    """What `run_sweep(config, out, resume=True)` would run, without running or writing anything.

    Compute is planned before it is spent: which cells are done in `out`, which are left,
    which stages each would build (a stage another cell built, or will build first, is
    reused: a student trained once serves every chain that starts with it), and about how
    long that takes: per stage, the mean time that stage took where this store's cells ran
    it, plus the mean evaluation. The store is opened read-only and not created when absent.
    """
    import sqlite3

    from ndogo.compress.recipe import source_key
    from ndogo.compress.recipe import stage_key as chain_key

    cells = config.cells()
    statuses: dict[str, str] = {}
    stage_times: dict[str, list[float]] = {}
    evaluate: list[float] = []
    path = Path(out) / STORE
    if path.is_file():
        try:
            conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
            try:
                found = conn.execute("SELECT cell_id, status, row FROM cells").fetchall()
            finally:
                conn.close()
        except sqlite3.DatabaseError as err:
            raise SweepError(f"{path}: not a readable sweep results database ({err})") from None
        for cell_id, status, text in found:
            statuses[cell_id] = status
            if status != "done":
                continue
            row = json.loads(text)
            for stage in row.get("stages") or []:
                if not stage.get("reused") and stage.get("seconds"):
                    stage_times.setdefault(stage["stage"], []).append(float(stage["seconds"]))
            if (row.get("durations") or {}).get("evaluate"):
                evaluate.append(float(row["durations"]["evaluate"]))
    artifacts = Path(out) / "artifacts"
    planned_stages: set[str] = set()
    planned = []
    for cell in cells:
        status = statuses.get(cell.id, "to run")
        to_build: list[str] = []
        estimate: float | None = None
        if status != "done":
            key = source_key(cell.source)
            for bound in bind_recipe(cell.chain, cell.context()):
                key = chain_key(key, bound)
                name = f"{bound.stage.name}-{key[:12]}"
                if not (artifacts / f"{name}.json").is_file() and name not in planned_stages:
                    planned_stages.add(name)
                    to_build.append(bound.stage.name)
            times = [stage_times.get(stage) for stage in to_build] + [evaluate]
            if all(times):
                estimate = sum(sum(t) / len(t) for t in times if t)
        planned.append(PlannedCell(cell, status, to_build, estimate))
    return planned


def _run_local(schedule: Schedule, store: Store, settings: CellSettings, reporter: Reporter) -> None:
    """One cell at a time in this process (the machine's threads go to the cell)."""
    while schedule.left:
        start, blocked = schedule.ready()
        for cell in blocked:
            _record(store, schedule, reporter, cell, blocked_row(cell, schedule.reasons.get(cell.needs)), ran=False)
        if not start:
            if not schedule.left:
                break
            raise RuntimeError("sweep schedule stuck: cells wait on a baseline that is not in the grid")
        schedule.requeue(start[1:])
        cell = start[0]
        store.mark_running(describe(cell))
        schedule.started(cell)
        reporter.start(cell)
        row = run_cell(cell, settings)
        _record(store, schedule, reporter, cell, row)


def _record(store: Store, schedule: Schedule, reporter: Reporter, cell: Cell, row: dict[str, Any],
            ran: bool = True) -> None:
    store.put(row)
    schedule.finished(cell, row["status"])
    if ran and any(c.needs == cell.id for c in schedule.waiting):
        _check_baseline(schedule, cell, row)
    reporter.finish(cell, row, ran)


def _check_baseline(schedule: Schedule, cell: Cell, row: dict[str, Any]) -> None:
    """Mark a finished baseline its dependents must not build on (it found no entity), unless asked to.

    Decided from the row alone (its dev F1 and `dev_unknown_words`, both measured by the cell):
    the driver loads no model, tokenizer or corpus.
    """
    if cell.evaluate.skip_empty_baselines and (reason := unusable_baseline(row, cell.evaluate.min_baseline_dev_f1)):
        schedule.unusable(cell.id, reason)


def _ray_running() -> bool:
    if "ray" not in sys.modules:
        return False
    return bool(sys.modules["ray"].is_initialized())


def _ray_stop(started: bool) -> None:
    """Shut down the local instance (or connection) this sweep started; leave a caller's own alone."""
    if started and _ray_running():
        sys.modules["ray"].shutdown()


def _ray_init(address: str | None) -> Any:
    try:
        import ray
    except ImportError as err:
        raise SweepError(f"--executor ray needs Ray: pip install ray ({err})") from None
    if not ray.is_initialized():
        # A local instance by default; `address` joins a running cluster ("auto" or ray://host:10001).
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": "ERROR", "configure_logging": True}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = os.cpu_count()
        ray.init(**kwargs)
    return ray


def _ray_parallel(address: str | None, cells: list[Cell]) -> int:
    ray = _ray_init(address)
    cpus = ray.cluster_resources().get("CPU", 1)
    need = min((c.recipe.cpus for c in cells), default=1)
    return max(int(cpus // need), 1)


def _run_ray(schedule: Schedule, store: Store, settings: CellSettings, reporter: Reporter,
             address: str | None) -> None:
    """Cells as Ray tasks, each asking for its CPUs and GPUs; this process alone writes the store.

    No more tasks are submitted than the cluster can run at once, so "running"
    on the progress line means running, not queued.
    """
    ray = _ray_init(address)
    # max_retries: Ray reruns a cell whose worker or node died (not one that failed: run_cell returns
    # those as rows), so a lost node costs the cell's time, not its row.
    remote = ray.remote(max_retries=RAY_RETRIES)(run_cell)
    settings = dataclasses.replace(settings, echo=None)  # a worker's lines stay in its cell's log
    inflight: dict[Any, Cell] = {}
    while schedule.left:
        # The cluster as it is now: a node that joined adds its CPUs, one that left takes its own.
        capacity = ray.cluster_resources()
        free_cpus = capacity.get("CPU", 0.0) - sum(c.recipe.cpus for c in inflight.values())
        free_gpus = capacity.get("GPU", 0.0) - sum(c.recipe.gpus for c in inflight.values())
        start, blocked = schedule.ready()
        for cell in blocked:
            _record(store, schedule, reporter, cell, blocked_row(cell, schedule.reasons.get(cell.needs)), ran=False)
        later = []
        for cell in start:
            fits = cell.recipe.cpus <= free_cpus and cell.recipe.gpus <= free_gpus
            if not fits and inflight:
                later.append(cell)
                continue
            # (a cell larger than the whole cluster is still submitted once nothing runs, and Ray says why)
            ref = remote.options(num_cpus=cell.recipe.cpus, num_gpus=cell.recipe.gpus).remote(cell, settings)
            inflight[ref] = cell
            free_cpus -= cell.recipe.cpus
            free_gpus -= cell.recipe.gpus
            store.mark_running(describe(cell))
            schedule.started(cell)
            reporter.start(cell)
        schedule.requeue(later)
        if not inflight:
            if schedule.left:
                raise RuntimeError("sweep schedule stuck: cells wait on a baseline that is not in the grid")
            break
        done, _ = ray.wait(list(inflight), num_returns=1)
        for ref in done:
            cell = inflight.pop(ref)
            try:
                row = ray.get(ref)
            except Exception as err:  # its workers died RAY_RETRIES + 1 times: the cell failed, not the sweep
                row = {**describe(cell), "status": "failed",
                       "error": f"ray task failed after {RAY_RETRIES} retries: {type(err).__name__}: {err}",
                       "started": time.time(), "finished": time.time(), "seconds": 0.0}
            _record(store, schedule, reporter, cell, row)


def _probe_node(folder: str, token: str) -> dict[str, Any]:
    """On one node: does the driver's probe file read back here, and can this node write beside it?"""
    import socket

    import ray

    node = ray.get_runtime_context().get_node_id()
    seen, error = False, ""
    try:
        seen = (Path(folder) / PROBE).read_text() == token
        if seen:
            (Path(folder) / f"{PROBE}-{node}").write_text(token)
    except OSError as err:
        error = f"{type(err).__name__}: {err}"
    return {"node": node, "host": socket.gethostname(), "seen": seen, "error": error}


def _cell_nodes(ray: Any) -> list[dict[str, Any]]:
    """The alive nodes a cell could run on (a head started with no CPU and no GPU runs none)."""
    return [n for n in ray.nodes() if n.get("Alive")
            and (n.get("Resources", {}).get("CPU", 0) > 0 or n.get("Resources", {}).get("GPU", 0) > 0)]


def check_shared_folder(ray: Any, folder: Path, timeout: float = PROBE_TIMEOUT_S) -> tuple[str, str]:
    """Refuse a cluster with a node that does not see `folder` as the driver does; returns the probe.

    The driver writes a fresh token to `<folder>/.shared-probe`; a task pinned to each
    node that can run cells reads it and writes `.shared-probe-<node>` beside it,
    which the driver reads back. A node that mounts nothing there (its own disk at the
    same path) would otherwise build and score models no other node can see. The
    returned (path, token) lets each cell check again, for nodes that join later.
    """
    folder = folder.resolve()
    token = secrets.token_hex(16)
    (folder / PROBE).write_text(token)
    try:
        _probe_nodes(ray, folder, token, timeout)
    except BaseException:
        (folder / PROBE).unlink(missing_ok=True)
        raise
    finally:
        for answer in folder.glob(f"{PROBE}-*"):
            answer.unlink(missing_ok=True)
    return str(folder / PROBE), token


def _probe_nodes(ray: Any, folder: Path, token: str, timeout: float) -> None:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(_probe_node)
    nodes = _cell_nodes(ray)
    refs = {probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(str(folder), token): n for n in nodes}
    ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
    advice = ("with --executor ray, --out must be a folder every node mounts at the same path "
              "(a shared file system such as NFS)")
    for ref in late:
        n = refs[ref]
        raise SweepError(f"{folder}: node {n.get('NodeManagerAddress')} ({n['NodeID'][:12]}) did not answer the "
                         f"shared-folder probe within {timeout:.0f}s; {advice}")
    for ref in ready:
        n = refs[ref]
        try:
            answer = ray.get(ref)
        except Exception as err:  # the node died or could not start a worker
            raise SweepError(f"{folder}: node {n.get('NodeManagerAddress')} ({n['NodeID'][:12]}) could not run "
                             f"the shared-folder probe ({type(err).__name__}); {advice}") from None
        back = folder / f"{PROBE}-{answer['node']}"
        wrote = back.is_file() and back.read_text() == token
        if not (answer["seen"] and wrote):
            why = ("it does not see the probe file the driver wrote there" if not answer["seen"]
                   else "the driver does not see the file it wrote there")
            raise SweepError(f"{folder}: node {answer['host']} ({answer['node'][:12]}) cannot share the sweep's "
                             f"folder: {why}{' (' + answer['error'] + ')' if answer['error'] else ''}; {advice}")
