"""The result store of a sweep: one SQLite file, one row per cell, written atomically.

SQLite because it is in Python's standard library, survives `kill -9` at any
moment (each write is one transaction, journaled to disk before it counts), and
lets anyone query the results without ndogo. The cell id is the primary key,
so a cell rerun after a kill replaces its row: none is lost, none duplicated.

Columns that reports sort and filter on are real columns (`row.py` marks them); the full
row (per-type F1, durations, versions, machine...) is kept as JSON beside them.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ndogo.experiments.row import (
    KEY,
    PER_TYPE_PREFIX,
    STORED,
    check_row,
    check_row_values,
    csv_required,
    parse_value,
    task_of,
    training_columns,
)

STORE = "results.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    cell_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    lang TEXT NOT NULL,
    recipe TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    f1 REAL,
    size_bytes INTEGER,
    latency_ms_b1 REAL,
    sparsity REAL,
    metric TEXT,
    accuracy REAL,
    macro_f1 REAL,
    error TEXT,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    row TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    config_path TEXT,
    config TEXT,
    argv TEXT,
    environment TEXT
);
"""
# Columns added to `cells` after stores were first written: a store without them is brought up to date
# (ALTER TABLE ... ADD COLUMN, empty for its old rows, which are NER rows of f1) rather than refused.
ADDED_COLUMNS = {"metric": "TEXT", "accuracy": "REAL", "macro_f1": "REAL"}


class Store:
    """Open (or create) the store of a sweep directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STORE
        self.directory.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open every transaction ourselves (BEGIN IMMEDIATE), so a
        # write is one explicit unit that either lands whole or not at all.
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as err:  # not a database at all: name the file, not a traceback
            self.conn.close()
            raise ValueError(f"{self.path}: not a sweep results database ({err})") from None
        try:
            self.conn.execute("PRAGMA synchronous=FULL")
            check = self.conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            with self.transaction() as c:
                for statement in _statements(SCHEMA):  # executescript would commit on its own
                    c.execute(statement)
        except sqlite3.DatabaseError as err:  # damaged pages, or a file that only starts like a database
            self.conn.close()
            raise ValueError(f"{self.path}: damaged sweep results database ({err}); restore it from a copy or "
                             "start the sweep in a new directory") from None
        for table, sql in (("cells", SCHEMA.split(";")[0]), ("sweeps", SCHEMA.split(";")[1])):
            have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            want = {line.split()[0] for line in sql.splitlines()[2:] if line.strip() and not line.startswith(")")}
            added = [c for c in ADDED_COLUMNS if c not in have] if table == "cells" and "row" in have else []
            if added:
                with self.transaction() as c:
                    for column in added:
                        c.execute(f"ALTER TABLE cells ADD COLUMN {column} {ADDED_COLUMNS[column]}")
                have |= set(added)
            if not want <= have:
                self.conn.close()
                raise ValueError(f"{self.path}: not an ndogo results database (table {table} lacks "
                                 f"{', '.join(sorted(want - have))})")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def begin_sweep(self, config_path: str, config: str, argv: list[str], environment: dict[str, Any]) -> int:
        """Record one invocation (a first run or a resume) with its config and environment."""
        with self.transaction() as c:
            cur = c.execute("INSERT INTO sweeps (started, config_path, config, argv, environment) VALUES (?,?,?,?,?)",
                            (time.time(), config_path, config, json.dumps(argv), json.dumps(environment)))
            return int(cur.lastrowid or 0)

    def sweeps(self) -> list[dict[str, Any]]:
        cur = self.conn.execute("SELECT id, started, config_path, config, argv, environment FROM sweeps ORDER BY id")
        return [{"id": r[0], "started": r[1], "config_path": r[2], "config": r[3], "argv": json.loads(r[4] or "[]"),
                 "environment": json.loads(r[5] or "{}")} for r in cur.fetchall()]

    def statuses(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT cell_id, status FROM cells").fetchall())

    def mark_running(self, row: dict[str, Any]) -> None:
        """Claim a cell (its row says who it is); a crash leaves it 'running' and a resume reruns it."""
        with self.transaction() as c:
            c.execute(
                "INSERT INTO cells (cell_id, model, lang, recipe, seed, status, started, attempts, row) "
                "VALUES (:cell_id, :model, :lang, :recipe, :seed, 'running', :started, 1, :row) "
                "ON CONFLICT(cell_id) DO UPDATE SET status='running', started=excluded.started, "
                "attempts=attempts+1, error=NULL",
                {**_key_columns(row), "started": time.time(), "row": json.dumps(row, default=str)},
            )

    def put(self, row: dict[str, Any]) -> None:
        """Write a finished (done or failed) cell's row in one transaction, replacing any earlier one."""
        if row.get("status") not in ("done", "failed"):
            raise ValueError(f"a stored row is done or failed, not {row.get('status')!r}")
        check_row(row)
        values = {**_key_columns(row), "status": row["status"], **{c: row.get(c) for c in STORED},
                  "error": row.get("error"), "started": row.get("started"),
                  "finished": row.get("finished", time.time()), "row": json.dumps(row, default=str)}
        names = [*KEY, "status", *STORED, "error", "started", "finished"]
        updates = ", ".join(f"{n}=excluded.{n}" for n in names if n != "cell_id")
        with self.transaction() as c:
            c.execute(
                f"INSERT INTO cells ({', '.join(names)}, attempts, row) "
                f"VALUES ({', '.join(':' + n for n in names)}, 1, :row) "
                f"ON CONFLICT(cell_id) DO UPDATE SET {updates}, row=excluded.row",
                values,
            )

    def rows(self, status: str | None = None) -> list[dict[str, Any]]:
        """Stored rows (full JSON, with the store's status and attempts), in the order cells were first run."""
        query = "SELECT row, status, attempts FROM cells"
        args: tuple[Any, ...] = ()
        if status:
            query += " WHERE status = ?"
            args = (status,)
        out = []
        try:
            found = self.conn.execute("SELECT cell_id, " + query[len("SELECT "):] + " ORDER BY rowid", args).fetchall()
        except sqlite3.DatabaseError as err:
            raise ValueError(f"{self.path}: cannot read the results ({err})") from None
        for cell_id, row, st, attempts in found:
            try:
                data = json.loads(row)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{self.path}: the row of cell {cell_id} is not valid JSON ({err})") from None
            if not isinstance(data, dict):
                raise ValueError(f"{self.path}: the row of cell {cell_id} is not a JSON object")
            data.update(status=st, attempts=attempts)
            # the CSV's training columns, from the JSON record (rows stored before those columns existed too)
            data.update({k: v for k, v in training_columns(data).items() if data.get(k) in (None, "")})
            try:  # a row edited by hand, or written by a bug, is refused here, before any report ranks it
                check_row_values(data)
            except ValueError as err:
                raise ValueError(f"{self.path}: cell {cell_id}: {err}") from None
            out.append(data)
        return out

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0])


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _key_columns(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in KEY}


def open_store(directory: str | Path, must_exist: bool = True) -> Store:
    """The store of a sweep directory; with `must_exist`, a clear error where there is none."""
    if must_exist and not (Path(directory) / STORE).is_file():
        raise FileNotFoundError(f"{directory}: no sweep results here ({STORE} is absent); run `ndogo sweep` first")
    return Store(directory)


def load_rows(source: str | Path, status: str | None = "done") -> list[dict[str, Any]]:
    """The rows of a sweep directory, or of a CSV of rows (`ndogo report`'s results.csv, docs/bench/*.csv).

    Committed CSVs are the evidence that outlives a sweep's directory, so `recommend`
    and the tables read them as they read a store. Values are typed by the row's columns;
    per-type F1 (f1_<TYPE>) goes back under `per_type`, as the store keeps it. `status`
    None: every row, failed ones too (a failed cell's row says why it could not run).
    """
    path = Path(source)
    if path.is_dir():
        store = open_store(path)
        try:
            return store.rows(status=status)
        finally:
            store.close()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: neither a sweep directory nor a CSV of rows")
    return read_csv_rows(path, status)


CSV_FIELD_LIMIT = csv.field_size_limit()  # Python's own (131,072 characters): no column of a row comes near it


def read_csv_rows(path: Path, status: str | None = "done") -> list[dict[str, Any]]:
    """The rows of a CSV, each typed and checked by the row's columns (`row.check_row_values`).

    Anything that is not a row of results (a missing column, a field past csv's limit, a value out of
    its column's range, a line with more or fewer fields than the header) is refused with the file and
    the line it starts on: committed CSVs are edited by hand, and one bad row would otherwise be ranked.
    """
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as handle:  # -sig: a spreadsheet's byte-order mark
        reader = csv.reader(handle)
        header = _next_record(reader, path, 1)
        if header is None:
            raise ValueError(f"{path}: empty; not a CSV of sweep rows")
        missing = [c for c in csv_required(header) if c not in header]
        if missing:
            raise ValueError(f"{path}:1: not a CSV of sweep rows (no {missing[0]} column; a CSV of rows has "
                             f"{', '.join(csv_required(header))})")
        twice = next((name for i, name in enumerate(header) if name in header[:i]), None)
        if twice is not None:
            raise ValueError(f"{path}:1: column {twice} appears twice in the header")
        while True:
            line = reader.line_num + 1  # where the next record starts (a quoted field may span lines)
            fields = _next_record(reader, path, line)
            if fields is None:
                break
            if not fields:
                continue  # a blank line
            if len(fields) != len(header):
                raise ValueError(f"{path}:{line}: {len(fields)} fields, but the header names {len(header)} columns")
            try:
                row = _typed_row(dict(zip(header, fields, strict=True)))
                check_row_values(row)
            except ValueError as err:
                raise ValueError(f"{path}:{line}: {err}") from None
            if status is None or row["status"] == status:
                rows.append(row)
    return rows


def _next_record(reader: Any, path: Path, line: int) -> list[str] | None:
    """The next record of `reader`, None at the end; csv's and the decoder's errors as one line naming `line`."""
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as err:
        if "field larger than field limit" in str(err):
            raise ValueError(f"{path}:{line}: a field longer than {CSV_FIELD_LIMIT} characters; no column of a "
                             "row of results is that long (not a CSV of sweep rows?)") from None
        raise ValueError(f"{path}:{line}: not a CSV of sweep rows ({err})") from None
    except UnicodeDecodeError as err:  # decoded in chunks: find the line itself
        bad = next((n for n, text in enumerate(path.read_bytes().splitlines(), 1) if not _utf8(text)), line)
        raise ValueError(f"{path}:{bad}: not UTF-8 text ({err.reason})") from None


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _typed_row(raw: dict[str, str]) -> dict[str, Any]:
    """A CSV record as a row: values typed by their columns, per-type F1 (f1_<TYPE>) back under `per_type`."""
    row: dict[str, Any] = {"per_type": {}}
    for name, text in raw.items():
        if name.startswith(PER_TYPE_PREFIX):
            if text:
                row["per_type"][name[len(PER_TYPE_PREFIX):]] = {"f1": parse_value(name, text)}
            continue
        row[name] = parse_value(name, text)
    return row


# MasakhaNER 1.0 and 2.0 both hold hau, wol, luo...: read together, the same language on two corpora
# is two experiments. Rows on the first corpus seen keep their code; rows on any other corpus are
# labelled "wol@masakhaner2", so tables, plots and `recommend` keep them apart and name the corpus.
CORPUS_MARK = "@"


def corpus_name(data: str | None) -> str:
    """The corpus a row was measured on, by its folder or hub name ("masakhaner2"); "" if unrecorded."""
    return Path(str(data).rstrip("/")).name if data else ""


def base_lang(label: str) -> str:
    """The language code of a label: "wol@masakhaner2" -> "wol"."""
    return label.split(CORPUS_MARK, 1)[0]


def label_corpora(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, those on another corpus than the first one seen of their task relabelled `lang@corpus`.

    Rows that do not record their corpus are taken to be on the first one. Each task has its own
    first corpus: a topic row is no NER row on another corpus (reports keep tasks apart already),
    so NER's hau stays "hau" beside SIB-200's rows rather than becoming "hau@masakhaner".
    """
    measured = [r for r in rows if r.get("task") or r.get("status") == "done"]
    by_corpus: dict[str, str] = {}
    for row in measured:
        by_corpus.setdefault(corpus_name(row.get("data")), task_of(row))

    def task(row: dict[str, Any]) -> str:
        # a cell not measured (failed, running) records no task: it is of the task measured on its corpus
        if row.get("task") or row.get("status") == "done":
            return task_of(row)
        return by_corpus.get(corpus_name(row.get("data")), task_of(row))

    first: dict[str, str] = {}
    for row in rows:
        if row.get("data"):
            first.setdefault(task(row), corpus_name(row.get("data")))
    out = []
    for row in rows:
        name = corpus_name(row.get("data"))
        if name and name != first.get(task(row), "") and CORPUS_MARK not in row["lang"]:
            row = {**row, "lang": f"{row['lang']}{CORPUS_MARK}{name}"}
        out.append(row)
    return out


def load_sources(sources: Sequence[str | Path], status: str | None = "done") -> list[dict[str, Any]]:
    """The rows of several sweep directories or CSVs read as one (`report --also`, `recommend --also`).

    A cell id found in several sources is taken from the last; a language measured on more than one
    corpus is told apart by `label_corpora`, so that MasakhaNER 1.0's and 2.0's wol are never averaged.
    """
    by_id: dict[str, dict[str, Any]] = {}
    for source in sources:
        by_id.update({r["cell_id"]: r for r in load_rows(source, status)})
    return label_corpora(list(by_id.values()))
