"""The run database: every run of a panel, a sweep or a script in one SQLite file (WAL mode), so nothing
is lost when a kernel restarts and a sweep resumes where it stopped.

    db = RunDB()                                   # $WORKBENCH_DB, else the user's data folder (default_path)
    run_id = db.save_run("workbench.experiments.teacher_fit", config, records)
    info, records = db.load(run_id)
    db.to_dataframe(experiment=...)                # tidy rows: one per record, config fields and metrics as columns
    db.export("runs.csv") / db.export("runs.parquet")  # Parquet needs pyarrow (the 'parquet' extra)

Tables: `runs` (experiment, config JSON, config hash, seed, status, timestamps, workbench and JAX versions,
host), `records` (progress, status, kind and metrics JSON of each record), `sweeps` (grid, seeds),
`sweep_runs` (membership) and `fits` (scaling-law fits of a sweep's metric against a field, `runs.scaling`).
A run is written with its records in one transaction, so a reader never sees half of it; a full disk rolls the
transaction back and earlier runs stay intact. The schema version is SQLite's `user_version`; `MIGRATIONS[v]`
upgrades version v to v + 1 (a read-only file of an older schema is read as it is: a table it lacks reads as
empty). No pickle: metrics are JSON in which a non-finite float is tagged ({"$float": "nan"}), so a string "nan"
stays a string.

A run's JSON is encoded before the write lock is taken; a write that waits past `TIMEOUT` raises `RunDBLocked`
(a sweep tries it again). A file or folder that is read-only (or a 0444 file) is opened read-only, and immutable
when no writer has a log open, so reading creates no -wal or -shm file. `import_run` checks what it stores and
imports a run once.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack, cast

import numpy as np

from workbench.core import checks
from workbench.core.config import Config
from workbench.core.declare import declare
from workbench.core.experiment import STATUSES, Record
from workbench.runs.runfile import parse_record
from workbench.runs.store import record_fields, restore

__all__ = ["RunDB", "RunDBError", "RunDBLocked", "default_path"]

if TYPE_CHECKING:
    import pandas as pd

MIGRATIONS = (
    (
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, config TEXT NOT NULL, config_hash TEXT NOT NULL,
            seed INTEGER, status TEXT NOT NULL, label TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
            ended REAL NOT NULL, elapsed REAL, workbench_version TEXT, jax_version TEXT, host TEXT, error TEXT)""",
        "CREATE INDEX runs_hash ON runs (config_hash, status)",
        "CREATE INDEX runs_experiment ON runs (experiment, created)",
        """CREATE TABLE records (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE, idx INTEGER NOT NULL,
            done INTEGER NOT NULL, total INTEGER NOT NULL, unit TEXT NOT NULL, kind TEXT NOT NULL,
            status TEXT NOT NULL, elapsed REAL NOT NULL, metrics TEXT NOT NULL, PRIMARY KEY (run_id, idx))""",
        """CREATE TABLE sweeps (
            id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, experiment TEXT NOT NULL, base_config TEXT NOT NULL,
            grid TEXT NOT NULL, seeds TEXT NOT NULL, zip INTEGER NOT NULL, created REAL NOT NULL)""",
        """CREATE TABLE sweep_runs (
            sweep_id INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE, PRIMARY KEY (sweep_id, run_id))""",
    ),
    (  # 2: scaling-law fits stored with their sweep (workbench.runs.scaling)
        """CREATE TABLE fits (
            sweep_id INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE, metric TEXT NOT NULL,
            axis TEXT NOT NULL, fit TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (sweep_id, metric, axis))""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
EXPERIMENTS = "workbench.experiments"  # the package whose experiments' configs an import checks
EXPORT_FORMAT = "workbench-run/1"  # `export_run` JSON: tagged non-finite floats (older exports wrote "nan")
DONE = ("finished", "diverged")  # a sweep's point in one of these states is not run again
RUN_STATUSES = (*STATUSES, "error")  # a run row's status: a record's, or "error" for a run that raised
TEXT_META = ("label", "status", "error", "host", "workbench_version", "jax_version")
RUN_COLUMNS = ("run_id", "experiment", "run_status")  # to_dataframe's columns of the run
RECORD_COLUMNS = ("done", "total", "unit", "kind", "status", "elapsed")  # ... and of the record
TIMEOUT = 5.0  # seconds a write waits for another process's transaction before "locked"


class RunDBError(RuntimeError):
    """The database cannot be used as asked (locked, read-only, newer schema, not a database, disk full)."""


class RunDBLocked(RunDBError):
    """Another process held the write lock longer than the RunDB's timeout; nothing was written (try again)."""


def marked_readonly(path: Path) -> bool:
    """Whether this process may not write `path`, or its mode has no write bit (a 0444 file, even for root)."""
    try:
        return not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222
    except OSError:
        return False


@declare()
def default_path() -> Path:
    """$WORKBENCH_DB, else runs.sqlite in the user's data folder ($XDG_DATA_HOME/wide-deep-workbench, by default
    ~/.local/share/wide-deep-workbench): one place whatever the working directory, so a notebook, the app and
    `python -m workbench runs` see the same runs."""
    if os.environ.get("WORKBENCH_DB"):
        return Path(os.environ["WORKBENCH_DB"])
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "wide-deep-workbench" / "runs.sqlite"


def encode(value: Any) -> Any:
    """JSON-ready copy of a metric: arrays to nested lists, a non-finite float to {"$float": "nan"}."""
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if hasattr(value, "tolist"):
        return encode(np.asarray(value).tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": str(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"metrics: {type(value).__name__} values cannot be stored (numbers, text, lists and arrays can)")


def decode(value: Any, arrays: bool = True) -> Any:
    """Inverse of `encode`; with `arrays`, a list of numbers comes back as a numpy array, as the experiment
    yielded it (configs keep their lists: a tuple field is given a list)."""
    if isinstance(value, dict):
        if set(value) == {"$float"}:
            return float(value["$float"])
        return {k: decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        items = [decode(v, arrays) for v in value]
        if not arrays:
            return items
        try:
            array = np.asarray(items)
        except ValueError:  # ragged
            return items
        return array if array.dtype.kind in "biuf" and array.size else items
    return value


def config_hash(experiment: str, config: dict) -> str:
    """sha256 of the experiment's name and its config as canonical JSON: equal configs, equal hashes."""
    text = json.dumps([experiment, encode(config)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run_meta(host: str | None = None) -> dict:
    """Where and with what a run was made: workbench and JAX versions, host name."""
    return {"workbench_version": _version("wide-deep-workbench"), "jax_version": _version("jax"),
            "host": host or socket.gethostname()}  # fmt: skip


def check_meta(meta: dict) -> dict:
    """A run's metadata (`save_run`'s meta) checked: times are seconds since 1970, texts are text, the status is a
    run's; a ValueError names the field."""
    for name in ("created", "ended"):
        value = meta.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e11
        ):
            raise ValueError(f"{name}: must be a time in seconds since 1970-01-01 (a number), got {value!r:.60}")
    for name in TEXT_META:
        if meta.get(name) is not None and not isinstance(meta[name], str):
            raise ValueError(f"{name}: must be text, got {meta[name]!r:.60}")
    if meta.get("status") is not None and meta["status"] not in RUN_STATUSES:
        raise ValueError(f"status: must be one of {', '.join(RUN_STATUSES)}, got {meta['status']!r:.60}")
    return meta


def run_rows(experiment: str, config: dict, records: Sequence[Record], meta: dict) -> tuple[dict, list[tuple]]:
    """The `runs` row and the `records` rows (each without its run id) of one run, JSON-encoded here, before any
    write lock is taken (300 records of 20k floats take seconds to encode)."""
    check_meta(meta)
    last = records[-1] if records else None
    now = time.time()
    row = dict(
        experiment=experiment,
        config=json.dumps(encode(config), sort_keys=True),
        config_hash=config_hash(experiment, config),
        seed=config.get("seed") if isinstance(config.get("seed"), int) else None,
        status=meta.get("status") or (last.status if last else "stopped"),
        label=meta.get("label", ""),
        created=meta.get("created", now),
        ended=meta.get("ended", now),
        elapsed=last.elapsed if last else None,
        error=meta.get("error"),
        **{**run_meta(), **{k: meta[k] for k in ("workbench_version", "jax_version", "host") if meta.get(k)}},
    )
    rows = [(i, r.done, r.total, r.unit, r.kind, r.status, r.elapsed, json.dumps(encode(r.metrics), allow_nan=False))
            for i, r in enumerate(records)]  # fmt: skip
    return row, rows


class RunFilters(TypedDict, total=False):
    """The filters of `RunDB.runs` (and of `to_dataframe`, `export`)."""

    experiment: str | None
    sweep_id: int | None
    limit: int | None


class RunDB:
    """One SQLite run database (see the module docstring). A RunDB holds one connection, used by one call at a
    time, so it may be shared by threads; several processes (each with its RunDB) may share the file."""

    def __init__(self, path: str | os.PathLike | None = None, *, timeout: float = TIMEOUT, readonly: bool = False):
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path: must be a file path (str or os.PathLike), got {type(path).__name__}")
        self.path = Path(path) if path is not None else default_path()
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self.skipped: list[str] = []  # rows the last `runs` call could not read, and why
        self.already = False  # whether the last `import_run` found the run already there
        self.schema = SCHEMA_VERSION  # the file's schema (lower for a read-only file of an older schema)
        if self.path.is_dir():
            raise RunDBError(f"runs database {self.path}: is a folder; give a file path")
        self._marked = self.path.exists() and (marked_readonly(self.path) or marked_readonly(self.path.parent))
        self.readonly = readonly or self._marked
        if self.readonly and not self.path.exists():
            raise RunDBError(f"runs database {self.path}: does not exist (no run was saved there; nothing created)")
        if not self.readonly and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True)
            if self.path.parent.name == ".workbench":  # the default folder keeps itself out of git, as .pytest_cache
                (self.path.parent / ".gitignore").write_text("*\n")
        self._migrate()

    # ---- connections and transactions
    def _connect(self) -> sqlite3.Connection:
        """A connection; read-only where asked, and immutable where the file or its folder is read-only and no writer
        has a write-ahead log open: such a reader creates no -wal or -shm file (none could be made, or they would be
        left behind read-only)."""
        mode = "ro" if self.readonly else "rwc"
        if self.readonly and self._marked and not Path(f"{self.path}-wal").exists():
            mode += "&immutable=1"
        uri = f"{self.path.resolve().as_uri()}?mode={mode}"
        conn = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: no fsync per commit; a crashed process loses nothing
        return conn

    def _error(self, err: sqlite3.Error) -> RunDBError:
        text, where = str(err).lower(), f"runs database {self.path}"
        if "locked" in text or "busy" in text:
            return RunDBLocked(f"{where}: locked by another process (waited {self.timeout:g} s); nothing was written")
        if "readonly" in text or "read-only" in text:
            return RunDBError(f"{where}: the file is read-only; nothing was written")
        if "full" in text:
            return RunDBError(f"{where}: the disk is full; this write was rolled back, earlier runs are intact")
        if "not a database" in text or "malformed" in text or "no such" in text or "already exists" in text:
            return RunDBError(f"{where}: not a workbench run database ({err}); the file was left unchanged")
        return RunDBError(f"{where}: {err}")

    @contextmanager
    def _transaction(self, write: bool = True):
        """This RunDB's connection (opened once, one transaction at a time) inside BEGIN IMMEDIATE (writes) or
        BEGIN (reads); rolled back on any error."""
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE" if write and not self.readonly else "BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                finally:
                    conn.row_factory = None
            except sqlite3.Error as err:
                raise self._error(err) from None
            except UnicodeDecodeError as err:  # a corrupted page inside a text column
                raise RunDBError(f"runs database {self.path}: damaged (unreadable text: {err.reason})") from None

    def close(self) -> None:
        """Close the connection (it is also closed when the RunDB is garbage collected)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _migrate(self) -> None:
        """Create or upgrade the schema; refuse a file of a newer schema before writing anything."""
        with self._transaction(write=False) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RunDBError(
                f"runs database {self.path}: written by a newer workbench (schema {version}; this one reads up to "
                f"{SCHEMA_VERSION}); upgrade wide-deep-workbench to use it. Nothing was written"
            )
        if version == SCHEMA_VERSION:
            return
        if self.readonly and version >= 1:  # every later migration only adds tables: read it as it is
            self.schema = version
            return
        if self.readonly:
            raise RunDBError(f"runs database {self.path}: read-only at schema {version}, needs {SCHEMA_VERSION}")
        try:
            with self._lock:  # outside any transaction
                assert self._conn is not None  # opened by the read above
                self._conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as err:
            raise self._error(err) from None
        with self._transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for step in MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ---- writing
    @staticmethod
    def _insert_run(conn: sqlite3.Connection, row: dict, rows: list[tuple]) -> int:
        cursor = conn.execute(
            f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
        )
        run_id = cursor.lastrowid
        assert run_id is not None
        conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [(run_id, *r) for r in rows])
        return run_id

    def save_run(self, experiment: str, config: Config | dict, records: Sequence[Record], **meta: Any) -> int:
        """Write one run (a Config or its dict, and its records) in one transaction; its id. `meta` may give
        label, status, created, ended, error, host, workbench_version, jax_version."""
        row, rows = run_rows(experiment, _fields(config), records, meta)  # encoded before the write lock
        with self._transaction() as conn:
            return self._insert_run(conn, row, rows)

    def save_point(
        self, sweep_id: int, experiment: str, config: Config | dict, records: Sequence[Record], **meta: Any
    ) -> tuple[int, bool]:
        """A sweep's point, written at most once: if a finished (or diverged) run of the same config hash exists, it is
        linked to the sweep and nothing else is written; an error row of the point in this sweep is replaced, never
        added to. (run id, whether it was new)."""
        row, rows = run_rows(experiment, _fields(config), records, meta)  # encoded before the write lock
        with self._transaction() as conn:
            conn.execute(
                "DELETE FROM runs WHERE config_hash = ? AND status = 'error' AND id IN "
                "(SELECT run_id FROM sweep_runs WHERE sweep_id = ?)",
                (row["config_hash"], sweep_id),
            )
            done = conn.execute(
                "SELECT id FROM runs WHERE config_hash = ? AND status IN (?, ?) ORDER BY id LIMIT 1",
                (row["config_hash"], *DONE),
            ).fetchone()
            run_id = self._insert_run(conn, row, rows) if done is None else done[0]
            conn.execute("INSERT OR IGNORE INTO sweep_runs VALUES (?, ?)", (sweep_id, run_id))
        return run_id, done is None

    def sweep(self, experiment: str, base_config: dict, grid: dict, seeds: Sequence, zip: bool) -> int:
        """The id of the sweep with these settings (created on first use, found again on a rerun)."""
        body = dict(experiment=experiment, base=encode(base_config), grid=encode(grid), seeds=encode(list(seeds)))
        key = hashlib.sha256(json.dumps([body, bool(zip)], sort_keys=True).encode()).hexdigest()
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO sweeps (key, experiment, base_config, grid, seeds, zip, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, experiment, json.dumps(body["base"]), json.dumps(body["grid"]), json.dumps(body["seeds"]),
                 int(zip), time.time()),
            )  # fmt: skip
            return conn.execute("SELECT id FROM sweeps WHERE key = ?", (key,)).fetchone()[0]

    def save_fit(self, sweep_id: int, metric: str, axis: str, fit: dict) -> None:
        """Store a scaling-law fit of a sweep's `metric` against its field `axis` (JSON), replacing an earlier fit of
        the same three."""
        text = json.dumps(encode(fit), sort_keys=True, allow_nan=False)  # encoded before the write lock
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM sweeps WHERE id = ?", (sweep_id,)).fetchone() is None:
                raise ValueError(f"sweep_id: no sweep {sweep_id} in {self.path}")
            conn.execute(
                "INSERT OR REPLACE INTO fits (sweep_id, metric, axis, fit, created) VALUES (?, ?, ?, ?, ?)",
                (sweep_id, metric, axis, text, time.time()),
            )

    def delete(self, run_id: int) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    # ---- reading
    def finished(self, hashes: Iterable[str]) -> dict[str, int]:
        """{config hash: run id} of the hashes that have a finished (or diverged) run."""
        hashes = list(hashes)
        with self._transaction(write=False) as conn:
            out = {}
            for i in range(0, len(hashes), 500):
                chunk = hashes[i : i + 500]
                rows = conn.execute(
                    f"SELECT config_hash, MIN(id) FROM runs WHERE status IN (?, ?) AND config_hash IN "
                    f"({', '.join('?' * len(chunk))}) GROUP BY config_hash",
                    [*DONE, *chunk],
                ).fetchall()
                out.update(dict(rows))
        return out

    def runs(self, experiment: str | None = None, sweep_id: int | None = None, limit: int | None = None) -> list[dict]:
        """Run rows, newest first: id, experiment, config (dict), seed, status, label, times, versions, host."""
        where, args = [], []
        if experiment is not None:
            where.append("experiment = ?")
            args.append(experiment)
        if sweep_id is not None:
            where.append("id IN (SELECT run_id FROM sweep_runs WHERE sweep_id = ?)")
            args.append(sweep_id)
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {checks.integer('limit', limit, 0, 2**62)}"
        with self._transaction(write=False) as conn:
            conn.row_factory = sqlite3.Row
            rows = [dict(r) for r in conn.execute(sql, args)]
        readable, self.skipped = [], []
        for row in rows:
            try:
                row["config"] = decode(json.loads(row["config"]), arrays=False)
            except (ValueError, TypeError, RecursionError) as err:  # a garbled row: skipped, said, never fatal
                self.skipped.append(f"run {row['id']}: config unreadable ({type(err).__name__})")
                continue
            readable.append(row)
        return readable

    def sweeps(self) -> list[dict]:
        """Sweep rows, newest first, with their number of runs and of those, the runs that raised (errors)."""
        with self._transaction(write=False) as conn:
            conn.row_factory = sqlite3.Row
            sql = (
                "SELECT s.*, COUNT(r.run_id) AS runs, COUNT(CASE WHEN x.status = 'error' THEN 1 END) AS errors "
                "FROM sweeps s LEFT JOIN sweep_runs r ON r.sweep_id = s.id LEFT JOIN runs x ON x.id = r.run_id "
            )
            rows = [dict(r) for r in conn.execute(sql + "GROUP BY s.id ORDER BY s.id DESC")]
        for row in rows:
            row.update({k: json.loads(row[k]) for k in ("base_config", "grid", "seeds")})
        return rows

    def fits(self, sweep_id: int | None = None) -> list[dict]:
        """Stored scaling-law fits, newest first: sweep_id, metric, axis, created and the fit (dict); none in a
        read-only file of schema 1, which has no fits table."""
        if self.schema < 2:
            return []
        sql = "SELECT * FROM fits" + (" WHERE sweep_id = ?" if sweep_id is not None else "") + " ORDER BY created DESC"
        with self._transaction(write=False) as conn:
            conn.row_factory = sqlite3.Row
            rows = [dict(r) for r in conn.execute(sql, () if sweep_id is None else (sweep_id,))]
        for row in rows:
            row["fit"] = decode(json.loads(row["fit"]), arrays=False)
        return rows

    def records(self, run_id: int) -> list[Record]:
        """The records of one run, in order (metrics decoded; a row whose metrics do not parse is skipped)."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT done, total, unit, kind, status, elapsed, metrics FROM records WHERE run_id = ? ORDER BY idx",
                (run_id,),
            ).fetchall()
        out = []
        for done, total, unit, kind, status, elapsed, metrics in rows:
            try:
                out.append(Record(done, total, unit, decode(json.loads(metrics)), status, kind, elapsed))
            except (ValueError, TypeError, RecursionError):
                continue
        return out

    def load(self, run_id: int) -> tuple[dict, list[Record]]:
        """(run row, records) of one run."""
        with self._transaction(write=False) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise ValueError(f"run_id: no run {run_id} in {self.path}")
        info = dict(row)
        info["config"] = decode(json.loads(info["config"]), arrays=False)
        return info, self.records(run_id)

    def to_dataframe(self, run_ids: Iterable[int] | None = None, **filters: Unpack[RunFilters]) -> pd.DataFrame:
        """Tidy pandas rows, one per record: run columns (run_id, experiment, run_status), the config's scalar
        fields, the record's progress (done, total, unit, kind, status, elapsed) and its scalar metrics. A name
        that another column holds is kept prefixed, never overwritten: a config field named like a run or record
        column as "config.<name>", a metric named like any other column (lr, width, status) as "metric.<name>".
        Filters as in `runs`."""
        import pandas as pd

        infos = self.runs(**filters)
        if run_ids is not None:
            wanted = set(run_ids)
            infos = [i for i in infos if i["id"] in wanted]
        fixed = set(RUN_COLUMNS + RECORD_COLUMNS)
        configs = {info["id"]: _flat(info["config"]) for info in infos}
        taken = fixed.union(*configs.values())
        rows = []
        for info in reversed(infos):
            head = {"run_id": info["id"], "experiment": info["experiment"], "run_status": info["status"]}
            head.update({f"config.{k}" if k in fixed else k: v for k, v in configs[info["id"]].items()})
            for r in self.records(info["id"]):
                row: dict[str, Any] = dict(head, done=r.done, total=r.total, unit=r.unit, kind=r.kind)
                row.update(status=r.status, elapsed=r.elapsed)
                metrics = {k: v for k, v in r.metrics.items() if np.ndim(v) == 0 and not isinstance(v, dict)}
                row.update({f"metric.{k}" if k in taken else k: v for k, v in metrics.items()})
                rows.append(row)
        return pd.DataFrame(rows)

    def export(self, path: str | os.PathLike, **filters: Unpack[RunFilters]) -> Path:
        """Write `to_dataframe(**filters)` as CSV (.csv) or Parquet (.parquet, needs pyarrow)."""
        path = Path(path)
        frame = self.to_dataframe(**filters)
        if path.suffix == ".csv":
            frame.to_csv(path, index=False)
        elif path.suffix == ".parquet":
            if importlib.util.find_spec("pyarrow") is None:
                raise ValueError("path: Parquet export needs pyarrow (pip install 'wide-deep-workbench[parquet]')")
            frame.to_parquet(path, index=False)
        else:
            raise ValueError(f"path: must end in .csv or .parquet, got {path.name!r}")
        return path

    def export_run(self, run_id: int) -> dict:
        """One run as a JSON-ready dict: the panel's export format ({"config", "records"}) plus the run row."""
        info, records = self.load(run_id)
        body = {k: v for k, v in info.items() if k not in ("id", "config")}
        records_ = [encode(record_fields(r)) for r in records]
        return {"format": EXPORT_FORMAT, **body, "config": encode(info["config"]), "records": records_}

    def import_run(self, path: str | os.PathLike, experiment: str | None = None) -> tuple[int, int]:
        """Import an exported run: `export_run` JSON, a panel's JSON export, or a JSON-lines RunStore file.
        A truncated or garbled line of a JSON-lines file is skipped; the run's times, status and texts are checked
        and a workbench experiment's config is checked by its Config (a ValueError names the field). A run already
        in the database (same config hash, status and records' progress) is not written twice: its id is returned
        and `already` is set. (run id, lines skipped)."""
        if not Path(path).is_file():
            raise ValueError(f"path: {path} is not a file")
        text = Path(path).read_text(errors="replace")
        try:
            body, skipped = json.loads(text), 0
        except json.JSONDecodeError:
            body, skipped = _json_lines(text)
        except RecursionError:
            raise ValueError(f"path: {path} nests JSON too deeply to be an exported run") from None
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ValueError(f"path: {path} is not an exported run (expected a JSON object with 'records')")
        read = decode if body.get("format") == EXPORT_FORMAT else lambda m: decode(restore(m))
        records, bad = [], 0
        for i, d in enumerate(body["records"]):
            try:
                records.append(parse_record(i, d, read))  # the checks of a panel's Load, record by record
            except (TypeError, ValueError):
                bad += 1
        if not records:
            raise ValueError(f"path: {path} holds no readable record ({skipped + bad} lines or records refused)")
        meta = {k: body[k] for k in ("label", "status", "created", "ended", "error", "host") if body.get(k)}
        meta.update({k: body[k] for k in ("workbench_version", "jax_version") if body.get(k)})
        try:
            name, config = checked_config(experiment or body.get("experiment") or "unknown", body.get("config") or {})
            row, rows = run_rows(name, config, records, meta)
        except (ValueError, TypeError) as err:
            raise ValueError(f"path: {path} refused: {err}") from None
        progress = [r[:7] for r in rows]  # idx, done, total, unit, kind, status, elapsed
        with self._transaction() as conn:
            for (run_id,) in conn.execute(
                "SELECT id FROM runs WHERE config_hash = ? AND status = ?", (row["config_hash"], row["status"])
            ).fetchall():
                theirs = conn.execute(
                    "SELECT idx, done, total, unit, kind, status, elapsed FROM records WHERE run_id = ? ORDER BY idx",
                    (run_id,),
                ).fetchall()
                if theirs == progress:
                    self.already = True
                    return run_id, skipped + bad
            self.already = False
            return self._insert_run(conn, row, rows), skipped + bad


def checked_config(experiment: object, config: object) -> tuple[str, dict]:
    """(experiment, fields) of an imported run: a workbench experiment's config checked by its `Config.from_dict`
    (its name made the full module name); another experiment's config kept as it is (no code named by a file is
    imported)."""
    if not isinstance(experiment, str) or not experiment.strip():
        raise ValueError(f"experiment: must be an experiment's name (text), got {experiment!r:.60}")
    if not isinstance(config, dict):
        raise ValueError(f"config: must be an object of fields, got {type(config).__name__}")
    config = cast("dict", decode(config, arrays=False))
    short = experiment.removeprefix(f"{EXPERIMENTS}.")
    if not short.isidentifier() or importlib.util.find_spec(f"{EXPERIMENTS}.{short}") is None:
        if experiment.startswith(f"{EXPERIMENTS}."):
            raise ValueError(f"experiment: {experiment} is not a workbench experiment")
        return experiment, config
    module = importlib.import_module(f"{EXPERIMENTS}.{short}")
    if not isinstance(getattr(module, "Config", None), type) or not issubclass(module.Config, Config):
        return module.__name__, config
    try:
        return module.__name__, module.Config.from_dict(config).to_dict()
    except (ValueError, TypeError) as err:
        raise ValueError(f"config: not a valid {short} config ({err})") from None


def _flat(config: dict, prefix: str = "") -> dict:
    """A config's scalar fields by their dotted paths (a group's fields as 'model.width'); lists left out."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif np.ndim(v) == 0:
            out[f"{prefix}{k}"] = v
    return out


def _fields(config: object) -> dict:
    """A Config's fields as a dict (a dict as it is)."""
    if not isinstance(config, (dict, Config)):
        raise TypeError(f"config: must be a Config or a dict of its fields, got {type(config).__name__}")
    return config if isinstance(config, dict) else config.to_dict()


def _json_lines(text: str) -> tuple[dict, int]:
    """A RunStore file (a {"config", "fields"} line, then one record per line) as an export body; lines
    that are truncated, hold NUL bytes or are not JSON objects are counted and skipped."""
    config, records, skipped = None, [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        line = line.replace("\x00", "").strip()  # a crash can leave NUL bytes before or instead of a line
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            skipped += 1
            continue
        if isinstance(obj, dict) and "fields" in obj and config is None and not records:
            config = obj["fields"]
        elif isinstance(obj, dict) and "metrics" in obj:
            records.append(obj)
        else:
            skipped += 1
    return {"config": config, "records": records}, skipped
