"""Measurements: metrolex on one store (SQLite or PostgreSQL) beside raw-database baselines, in
one run on the same machine.

Figures (see BENCHMARKS.md for the method):
- load: `RecordService.load(FactsDocument)` in chunks (one transaction each) + plan import, facts/s;
  baseline: the same rows inserted raw (sqlite3 executemany, or psycopg2 execute_values, in
  batches of 1,000, one transaction per chunk, WAL on SQLite);
- first check: `app.compliance.check(as_of)` on a fresh app right after the load: it reads every
  row and writes the read-model checkpoint (extra figure, `check_first_s`);
- sweep: `app.compliance.check(as_of)` over every obligation. Cold: the best of `repeat` fresh
  processes, one app each, after the first check, so they start from its checkpoint, as
  `metrolex check` does (every run recorded; `check_in_process_s`: the same on fresh apps in the
  benchmark's own process, which has loaded the record and replayed it by then). Warm: the
  same app again. Baseline: a hand-written `GROUP BY … HAVING` over the same training records
  (a table with a covering index), best of 3;
- durable check: the same check with engine="durable" (extra figure);
- replay: `app.compliance.replay_stream(as_of, None)` consumed judgment by judgment (as
  `metrolex audit replay --json` prints it) in fresh processes as the sweep's cold check (best of
  `repeat`; `replay_in_process_s`: fresh apps in this process), facts/s; baseline: a
  raw read (best of 3) of the facts table (one
  row per fact; record_events is read too, as an extra: it holds one event per file of training
  records);
- load, extra: every row metrolex stored (facts, training, record_events, record_chain), inserted
  raw in the same transactions (`load_ratio_all_rows`);
- incremental: one more training record loaded, then the re-judgment of that person
  (`check(as_of, filters=Filters(subjects={person}))`);
- remind: `app.notices.sweep(as_of)`;
- peak RSS: resource.getrusage(RUSAGE_SELF).ru_maxrss of the process that ran the backend, or
  of a fresh process that ran a cold check or replay for it, whichever is higher.
"""
from __future__ import annotations

import datetime as dt
import gc
import hashlib
import inspect
import json
import os
import platform
import resource
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

from bench.workload import Workload, chunked, facts_document, write_plan_files

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 1_000
REGISTRATION = {"units": "unit-registered", "people": "person-registered", "centers": "center-registered"}
SUBJECT_KEYS = ("person", "center", "unit", "plan")

# name, comparison, target, scale at which the goal is set
GOALS = (
    ("load_ratio", ">=", 0.4, "medium"),
    ("sweep_ratio", "<=", 10.0, "medium"),
    ("incremental_ms", "<=", 20.0, "medium"),
    ("replay_ratio", ">=", 0.25, "medium"),
    ("peak_rss_mb", "<=", 1500.0, "full"),
)


# -- small helpers ---------------------------------------------------------------------------------
class Progress:
    """Progress lines on stderr: `[bench sqlite   12.3s] …`."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label, self.enabled, self.start = label, enabled, time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[bench {self.label} {time.perf_counter() - self.start:7.1f}s] {message}", file=sys.stderr,
                  flush=True)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def current_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:  # pragma: no cover - not Linux
        pass
    return None


def machine_info() -> dict:
    cpu, ram = None, None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:  # pragma: no cover
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu or platform.processor(), "ram_gb": ram,
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(), "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def product_version() -> dict:
    """The product's commit and whether the working tree differs from it (read-only git)."""
    import subprocess
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.splitlines()
        return {"commit": head or None, "modified_files": len(dirty)}
    except (OSError, subprocess.SubprocessError):  # pragma: no cover - no git
        return {"commit": None}


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# -- the rows the baselines insert ---------------------------------------------------------------
FACT_COLUMNS = ("fact_id", "type", "date", "subject", "refers", "payload", "content_hash", "jurisdiction",
                "aggregate", "recorded_at", "actor", "source")


def baseline_row(section: str, data: dict, jurisdiction: str, recorded_at: str, source: str) -> tuple:
    """The facts-table row metrolex stores for a record (same columns and content; the baselines
    skip validation, the domain model and the event store: that is what they measure)."""
    fields = {k: v for k, v in data.items() if k not in ("id", "type")}
    if section == "events":
        fact_type, fact_id = data["type"], data["id"]
        subject = next((fields[k] for k in SUBJECT_KEYS if k in fields), None)
    elif section == "plans":
        fact_type, fact_id, subject = "plan-published", f"plan:{data['key']}", data["key"]
        fields = dict(data)
    else:
        fact_type = REGISTRATION[section]
        fact_id, subject = f"{fact_type.split('-')[0]}:{data['id']}", data["id"]
        fields = dict(data)
        if section == "units":
            fields.setdefault("jurisdiction", jurisdiction)
    payload = _canonical(fields)
    digest = hashlib.sha256(_canonical({"type": fact_type, **fields}).encode()).hexdigest()
    return (fact_id, fact_type, fields.get("date"), subject, fields.get("refers_to") or fields.get("retracts"),
            payload, digest, fields.get("jurisdiction", jurisdiction), str(uuid.uuid5(uuid.NAMESPACE_URL, fact_id)),
            recorded_at, "bench", source)


def training_row(data: dict) -> tuple:
    return (data["id"], data["person"], int(data["date"][:4]), float(data["hours"]), 1 if data["off_job"] else 0)


def plan_fields(plan: dict) -> dict:
    """The plan-published fields adapters.plans.read_plan builds from a plan file."""
    key = f"{plan['jurisdiction']}-{plan['year']}"
    return {"key": key, "jurisdiction": plan["jurisdiction"], "year": plan["year"],
            "document": {k: str(v) for k, v in plan["document"].items()}, "groups": plan["groups"],
            "tasks": [dict(t) for t in plan["tasks"]]}


SWEEP_SQL = ("SELECT person, year, SUM(hours) AS total FROM bench_training WHERE off_job = 1 "
             "GROUP BY person, year HAVING SUM(hours) < 16")


class SqliteBaseline:
    """Raw sqlite3: the same rows, executemany in batches of 1,000, WAL (synchronous=NORMAL, as
    metrolex sets it), one transaction per chunk."""

    name = "sqlite3"

    def __init__(self, path: Path, pragmas: tuple[str, ...] = ()) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        for pragma in pragmas:  # (before WAL: a page size only takes on a new file)
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript("""
            CREATE TABLE bench_facts (seq INTEGER PRIMARY KEY AUTOINCREMENT, fact_id TEXT NOT NULL UNIQUE,
              type TEXT NOT NULL, date TEXT, subject TEXT, refers TEXT, payload TEXT NOT NULL,
              content_hash TEXT NOT NULL, jurisdiction TEXT, aggregate TEXT NOT NULL, recorded_at TEXT NOT NULL,
              actor TEXT, source TEXT);
            CREATE INDEX bench_facts_type ON bench_facts(type);
            CREATE INDEX bench_facts_subject ON bench_facts(subject);
            CREATE INDEX bench_facts_recorded ON bench_facts(recorded_at);
            CREATE TABLE bench_training (fact_id TEXT PRIMARY KEY, person TEXT NOT NULL, year INTEGER NOT NULL,
              hours REAL NOT NULL, off_job INTEGER NOT NULL);
        """)
        self.insert = f"INSERT INTO bench_facts ({', '.join(FACT_COLUMNS)}) VALUES ({', '.join('?' * len(FACT_COLUMNS))})"

    def insert_chunk(self, rows: list[tuple]) -> float:
        t0 = time.perf_counter()
        self.conn.execute("BEGIN")
        for i in range(0, len(rows), BATCH):
            self.conn.executemany(self.insert, rows[i:i + BATCH])
        self.conn.execute("COMMIT")
        return time.perf_counter() - t0

    def add_training(self, rows: list[tuple], retracted: list[str]) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO bench_training VALUES (?, ?, ?, ?, ?)", rows)
        self.conn.executemany("DELETE FROM bench_training WHERE fact_id = ?", [(r,) for r in retracted])
        self.conn.execute("COMMIT")

    def prepare_sweep(self) -> str:
        self.conn.execute("CREATE INDEX bench_training_cover ON bench_training(off_job, person, year, hours)")
        self.conn.execute("ANALYZE")
        plan = self.conn.execute("EXPLAIN QUERY PLAN " + SWEEP_SQL).fetchall()
        return "; ".join(str(r[-1]) for r in plan)

    def sweep(self) -> tuple[float, int]:
        t0 = time.perf_counter()
        rows = self.conn.execute(SWEEP_SQL).fetchall()
        return time.perf_counter() - t0, len(rows)

    @staticmethod
    def read_events(store_path: str, table: str = "record_events") -> tuple[float, int]:
        conn = sqlite3.connect(store_path)
        try:
            t0 = time.perf_counter()
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()
            return time.perf_counter() - t0, len(rows)
        finally:
            conn.close()

    def close(self) -> None:
        self.conn.close()


class PgBaseline:
    """Raw psycopg2 on the same (fresh) database: the same rows, execute_values in pages of 1,000
    (psycopg2's bulk form of executemany), one transaction per chunk."""

    name = "psycopg2"

    def __init__(self, url: str) -> None:
        import psycopg2
        from psycopg2.extras import execute_values
        self.url, self._execute_values = url, execute_values
        self.conn = psycopg2.connect(url)
        with self.conn, self.conn.cursor() as cur:
            cur.execute("""
                CREATE TABLE bench_facts (seq BIGSERIAL PRIMARY KEY, fact_id VARCHAR(200) NOT NULL UNIQUE,
                  type VARCHAR(64) NOT NULL, date VARCHAR(10), subject VARCHAR(200), refers VARCHAR(200),
                  payload TEXT NOT NULL, content_hash VARCHAR(64) NOT NULL, jurisdiction VARCHAR(32),
                  aggregate VARCHAR(36) NOT NULL, recorded_at VARCHAR(32) NOT NULL, actor VARCHAR(200), source TEXT);
                CREATE INDEX bench_facts_type ON bench_facts(type);
                CREATE INDEX bench_facts_subject ON bench_facts(subject);
                CREATE INDEX bench_facts_recorded ON bench_facts(recorded_at);
                CREATE TABLE bench_training (fact_id VARCHAR(200) PRIMARY KEY, person VARCHAR(200) NOT NULL,
                  year INTEGER NOT NULL, hours DOUBLE PRECISION NOT NULL, off_job INTEGER NOT NULL);
            """)
        self.insert = f"INSERT INTO bench_facts ({', '.join(FACT_COLUMNS)}) VALUES %s"
        with self.conn, self.conn.cursor() as cur:
            cur.execute("CREATE TABLE bench_facts_copy (LIKE bench_facts INCLUDING DEFAULTS INCLUDING INDEXES)")

    def copy_chunk(self, rows: list[tuple]) -> float:
        """The same rows with COPY (text format), PostgreSQL's bulk load — the way metrolex writes its
        read-model rows on PostgreSQL: an extra baseline (`load_ratio_copy`)."""
        import io
        from adapters.store import copy_text
        t0 = time.perf_counter()
        with self.conn, self.conn.cursor() as cur:
            cur.copy_expert(f"COPY bench_facts_copy ({', '.join(FACT_COLUMNS)}) FROM STDIN", io.StringIO(copy_text(rows)))
        return time.perf_counter() - t0

    def insert_chunk(self, rows: list[tuple]) -> float:
        t0 = time.perf_counter()
        with self.conn, self.conn.cursor() as cur:
            self._execute_values(cur, self.insert, rows, page_size=BATCH)
        return time.perf_counter() - t0

    def add_training(self, rows: list[tuple], retracted: list[str]) -> None:
        with self.conn, self.conn.cursor() as cur:
            self._execute_values(cur, "INSERT INTO bench_training VALUES %s", rows, page_size=BATCH)
            if retracted:
                cur.execute("DELETE FROM bench_training WHERE fact_id = ANY(%s)", (retracted,))

    def prepare_sweep(self) -> str:
        with self.conn, self.conn.cursor() as cur:
            cur.execute("CREATE INDEX bench_training_cover ON bench_training(off_job, person, year, hours)")
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE bench_training")  # visibility map: index-only scans
            cur.execute("EXPLAIN " + SWEEP_SQL)
            plan = " | ".join(r[0].strip() for r in cur.fetchall())
        self.conn.autocommit = False
        return plan

    def sweep(self) -> tuple[float, int]:
        with self.conn, self.conn.cursor() as cur:
            t0 = time.perf_counter()
            cur.execute(SWEEP_SQL)
            rows = cur.fetchall()
            return time.perf_counter() - t0, len(rows)

    def close(self) -> None:
        self.conn.close()


# -- every row metrolex stored, inserted raw -----------------------------------------------------------
STORED_TABLES = ("facts", "training", "record_events", "record_chain")


def _stored_transactions(fetch) -> list[dict[str, list[tuple]]]:
    """The rows of each write transaction of the store (by commit time), table by table. `fetch`
    runs a query and returns the rows as tuples."""
    times = [r[0] for r in fetch("SELECT DISTINCT recorded_at FROM record_chain ORDER BY recorded_at")]
    by_time: dict[str, dict[str, list[tuple]]] = {t: {name: [] for name in STORED_TABLES} for t in times}
    for name in ("facts", "training", "record_chain"):
        cols = fetch(f"SELECT * FROM {name} LIMIT 0", columns=True)
        at = cols.index("recorded_at")
        for row in fetch(f"SELECT * FROM {name}"):
            by_time.setdefault(row[at], {n: [] for n in STORED_TABLES})[name].append(tuple(row))
    for row in fetch("SELECT c.recorded_at, e.* FROM record_events e JOIN record_chain c ON c.notification_id = e.id"):
        by_time[row[0]]["record_events"].append(tuple(row[1:]))
    return [by_time[t] for t in sorted(by_time)]


def all_rows_baseline_sqlite(store_path: str, target: Path) -> tuple[float, int]:
    """Every row of the record's tables, inserted raw into a fresh SQLite file with the same
    schema (tables and indexes), one transaction per metrolex transaction, batches of 1,000."""
    src = sqlite3.connect(store_path)

    def fetch(sql: str, columns: bool = False):
        cur = src.execute(sql)
        return [d[0] for d in cur.description] if columns else cur.fetchall()
    ddl = [r[0] for r in src.execute("SELECT sql FROM sqlite_master WHERE tbl_name IN "
                                     f"({', '.join('?' * len(STORED_TABLES))}) AND sql IS NOT NULL",
                                     STORED_TABLES)]
    txs = _stored_transactions(fetch)
    src.close()
    for p in target.parent.glob(target.name + "*"):
        p.unlink()
    dst = sqlite3.connect(str(target), isolation_level=None)
    dst.execute("PRAGMA journal_mode=WAL")
    dst.execute("PRAGMA synchronous=NORMAL")
    for stmt in ddl:
        dst.execute(stmt)
    seconds, n = 0.0, 0
    for tx in txs:
        t0 = time.perf_counter()
        dst.execute("BEGIN")
        for name in STORED_TABLES:
            rows = tx[name]
            if rows:
                sql = f"INSERT INTO {name} VALUES ({', '.join('?' * len(rows[0]))})"
                for i in range(0, len(rows), BATCH):
                    dst.executemany(sql, rows[i:i + BATCH])
                n += len(rows)
        dst.execute("COMMIT")
        seconds += time.perf_counter() - t0
    dst.close()
    return seconds, n


def all_rows_baseline_pg(url: str) -> tuple[float, int]:
    """The same on PostgreSQL: tables LIKE the record's (indexes included) in a schema of their own."""
    import psycopg2
    from psycopg2.extras import execute_values
    conn = psycopg2.connect(url)
    try:
        def fetch(sql: str, columns: bool = False):
            with conn.cursor() as cur:
                cur.execute(sql)
                return [d[0] for d in cur.description] if columns else cur.fetchall()
        txs = _stored_transactions(fetch)
        with conn, conn.cursor() as cur:
            cur.execute("DROP SCHEMA IF EXISTS bench_copy CASCADE; CREATE SCHEMA bench_copy")
            for name in STORED_TABLES:
                cur.execute(f"CREATE TABLE bench_copy.{name} (LIKE public.{name} INCLUDING DEFAULTS INCLUDING INDEXES)")
        seconds, n = 0.0, 0
        for tx in txs:
            t0 = time.perf_counter()
            with conn, conn.cursor() as cur:
                for name in STORED_TABLES:
                    if tx[name]:
                        execute_values(cur, f"INSERT INTO bench_copy.{name} VALUES %s", tx[name], page_size=BATCH)
                        n += len(tx[name])
            seconds += time.perf_counter() - t0
        return seconds, n
    finally:
        conn.close()


# -- PostgreSQL: a fresh database per run -----------------------------------------------------------
def pg_reachable(url: str) -> str | None:
    """None when PostgreSQL answers at `url`, else why not."""
    try:
        import psycopg2
    except ImportError as exc:  # pragma: no cover
        return f"psycopg2 not installed: {exc}"
    try:
        conn = psycopg2.connect(url, connect_timeout=3)
        conn.close()
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {url}: {str(exc).strip()}"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def create_pg_database(url: str) -> tuple[str, str]:
    import psycopg2
    name = f"metrolex_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name, _with_database(url, name)


def drop_pg_database(url: str, name: str) -> None:
    import psycopg2
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


# -- goals ------------------------------------------------------------------------------------------
def evaluate_goals(figures: dict, scale_name: str, complete: bool = True) -> dict:
    out = {}
    for name, op, target, at in GOALS:
        value = figures.get(name)
        holds = None if value is None else (value >= target if op == ">=" else value <= target)
        entry = {"value": value, "goal": f"{op} {target:g}", "goal_at_scale": at, "holds": holds,
                 "at_goal_scale": scale_name == at}
        if name == "peak_rss_mb" and not complete and value is not None:
            # a peak up to where the run stopped is only a lower bound: it can show a failure, not a pass
            entry["note"] = "lower bound: the run did not complete"
            if holds:
                entry["holds"] = None
        out[name] = entry
    return out


def _best(fn: Callable[[], tuple[float, int]], times: int = 3) -> tuple[float, int]:
    results = [fn() for _ in range(times)]
    return min(r[0] for r in results), results[0][1]


# -- one backend ------------------------------------------------------------------------------------
def run_backend(backend: str, workload: Workload, workdir: Path, *, pg_url: str = DEFAULT_PG, chunk: int = 10_000,
                durable: bool = True, progress: Progress | None = None,
                save: Callable[[dict], None] | None = None, repeat: int = 3) -> dict:
    """Everything for one backend: load (metrolex and baseline), sweep, durable check, replay,
    incremental, remind, peak RSS. `save` gets the results after every phase (partial results
    survive a time limit). The cold check and the cold replay are each the best of `repeat` fresh
    apps, as the raw baselines are the best of three runs; every run is recorded."""
    from adapters.bootstrap import bootstrap
    from adapters.compliance import Filters
    from adapters.plans import import_plan
    from rules.judgment import count_by_status

    say = progress or Progress(backend, enabled=False)
    res: dict[str, Any] = {"backend": backend, "phases_done": [], "figures": {}, "baselines": {}, "extra": {},
                           "rss_mb_after": {}}
    fig, base, extra = res["figures"], res["baselines"], res["extra"]

    lock = threading.Lock()
    stop = threading.Event()
    child_peak = [0.0]  # the highest peak RSS of a process that ran metrolex for this backend

    def peak() -> float:
        return max(peak_rss_mb(), child_peak[0])

    def sample() -> None:
        """Every 5 s: the peak so far, saved, so that a run stopped by a time limit still tells
        how much memory it had reached (a lower bound of its peak)."""
        while not stop.wait(5.0):
            with lock:
                fig["peak_rss_mb"] = peak()
                res["rss_mb_last_sample"] = {"current": current_rss_mb(), "peak": peak_rss_mb(),
                                             "after_phase": (res["phases_done"] or ["-"])[-1]}
                if save:
                    save(res)

    sampler = threading.Thread(target=sample, name="bench-rss", daemon=True)
    sampler.start()

    def done(phase: str) -> None:
        with lock:
            _done(phase)

    def _done(phase: str) -> None:
        res["phases_done"].append(phase)
        res["rss_mb_after"][phase] = {"current": current_rss_mb(), "peak": peak_rss_mb(),
                                      "fresh_process_peak": child_peak[0] or None}
        fig["peak_rss_mb"] = peak()
        if save:
            save(res)

    as_of = workload.as_of
    workdir.mkdir(parents=True, exist_ok=True)
    pg_name = None
    if backend == "sqlite":
        store_path = workdir / "metrolex.db"
        for p in workdir.glob("*.db*"):
            p.unlink()
        store_url = f"sqlite:///{store_path}"
        baseline: SqliteBaseline | PgBaseline = SqliteBaseline(workdir / "baseline.db")
        # extra: the same raw inserts with metrolex's own storage settings (page size, page cache)
        from adapters.store import SQLITE_STORAGE_PRAGMAS
        same_pragmas: SqliteBaseline | None = SqliteBaseline(workdir / "baseline-same-pragmas.db",
                                                             SQLITE_STORAGE_PRAGMAS)
        res["store"] = str(store_path)
    else:
        pg_name, store_url = create_pg_database(pg_url)
        baseline = PgBaseline(store_url)
        same_pragmas = None
        res["store"] = store_url
        with baseline.conn, baseline.conn.cursor() as cur:
            cur.execute("SHOW server_version")
            res["server_version"] = cur.fetchone()[0]
    say(f"store {res['store']}")
    app = None
    try:
        # ---- baseline load -------------------------------------------------------------------
        say(f"baseline: {baseline.name} insert of the same rows (batches of {BATCH}, one transaction per chunk)")
        recorded_at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        b_seconds, b_rows, training, retracted = 0.0, 0, [], []
        c_seconds = 0.0  # PostgreSQL: the same rows with COPY (extra)
        p_seconds = 0.0  # SQLite: the same rows into a file with metrolex's storage settings (extra)

        def insert(rows: list[tuple]) -> None:
            nonlocal b_seconds, b_rows, c_seconds, p_seconds
            b_seconds += baseline.insert_chunk(rows)
            if hasattr(baseline, "copy_chunk"):
                c_seconds += baseline.copy_chunk(rows)
            if same_pragmas is not None:
                p_seconds += same_pragmas.insert_chunk(rows)
            b_rows += len(rows)

        for n, part in enumerate(chunked(workload.fact_records(), chunk)):
            insert([baseline_row(s, d, workload.jurisdiction, recorded_at, f"bench-facts-{n:04d}") for s, d in part])
            training = [training_row(d) for s, d in part if d.get("type") == "training-recorded"]
            retracted = [d["retracts"] for s, d in part if d.get("type") == "event-retracted"]
            baseline.add_training(training, retracted)  # untimed: the sweep baseline's table
        for plan in workload.plans():
            insert([baseline_row("plans", plan_fields(plan), workload.jurisdiction, recorded_at, f"plan-{plan['year']}")])
        for n, part in enumerate(chunked(workload.task_records(), chunk)):
            insert([baseline_row(s, d, workload.jurisdiction, recorded_at, f"bench-tasks-{n:04d}") for s, d in part])
        base["load_rows"] = b_rows
        base["load_s"] = round(b_seconds, 3)
        base["load_events_per_s"] = round(b_rows / b_seconds, 1)
        if c_seconds:
            base["load_copy_s"] = round(c_seconds, 3)
            base["load_copy_events_per_s"] = round(b_rows / c_seconds, 1)
        if same_pragmas is not None:
            same_pragmas.close()
            base["load_same_pragmas_s"] = round(p_seconds, 3)
            base["load_same_pragmas_events_per_s"] = round(b_rows / p_seconds, 1)
            say(f"baseline with metrolex's storage settings ({', '.join(SQLITE_STORAGE_PRAGMAS)}): "
                f"{b_rows / p_seconds:,.0f} rows/s")
        base["sweep_plan"] = baseline.prepare_sweep()
        say(f"baseline: {b_rows:,} rows in {b_seconds:.2f}s = {b_rows / b_seconds:,.0f} rows/s")
        done("baseline-load")

        # ---- metrolex load -------------------------------------------------------------------
        app = bootstrap(store_url=store_url, engine="reference")
        total_hint = b_rows
        loaded, load_s, gen_s, chunks = 0, 0.0, 0.0, []
        phase_s: dict[str, float] = {}
        by_type: dict[str, int] = {}

        def load_stream(records: Iterable, label: str) -> None:
            nonlocal loaded, load_s, gen_s
            it = iter(chunked(records, chunk))
            n = 0
            while True:
                g0 = time.perf_counter()
                part = next(it, None)
                if part is None:
                    break
                doc = facts_document(part, f"bench-{label}-{n:04d}", workload.jurisdiction)
                gen_s += time.perf_counter() - g0
                t0 = time.perf_counter()
                result = app.record.load(doc, actor="bench")
                took = time.perf_counter() - t0
                load_s += took
                phase_s[label] = phase_s.get(label, 0.0) + took
                loaded += result.recorded
                for k, v in result.by_type.items():
                    by_type[k] = by_type.get(k, 0) + v
                chunks.append({"label": label, "n": len(part), "s": round(took, 3)})
                say(f"load {label} chunk {n}: {len(part):,} facts in {took:.2f}s ({len(part) / took:,.0f}/s); "
                    f"{loaded:,}/{total_hint:,} loaded, {loaded / load_s:,.0f} facts/s overall")
                n += 1

        load_stream(workload.fact_records(), "facts")
        plan_dir = workdir / "plans"
        paths = write_plan_files(workload, plan_dir)
        for path in paths:
            t0 = time.perf_counter()
            _fact, result = import_plan(app.record, path, actor="bench")
            took = time.perf_counter() - t0
            load_s += took
            phase_s["plans"] = phase_s.get("plans", 0.0) + took
            loaded += result.recorded
            by_type["plan-published"] = by_type.get("plan-published", 0) + result.recorded
            chunks.append({"label": "plan", "n": 1, "s": round(took, 3), "file_bytes": path.stat().st_size})
            say(f"plan import {path.name}: {took:.2f}s ({path.stat().st_size / 1e6:.1f} MB)")
        load_stream(workload.task_records(), "tasks")
        fig["load_events"] = loaded
        fig["load_s"] = round(load_s, 3)
        fig["load_events_per_s"] = round(loaded / load_s, 1)
        fig["load_ratio"] = round(fig["load_events_per_s"] / base["load_events_per_s"], 4)
        if "load_copy_events_per_s" in base:
            extra["load_ratio_copy"] = round(fig["load_events_per_s"] / base["load_copy_events_per_s"], 4)
        if "load_same_pragmas_events_per_s" in base:
            extra["load_ratio_same_pragmas"] = round(fig["load_events_per_s"] / base["load_same_pragmas_events_per_s"], 4)
        extra["load_phase_s"] = {k: round(v, 3) for k, v in phase_s.items()}
        extra["generate_s"] = round(gen_s, 3)
        extra["loaded_by_type"] = dict(sorted(by_type.items()))
        extra["load_chunks"] = chunks
        if loaded != b_rows:
            extra["load_count_mismatch"] = f"metrolex recorded {loaded}, baseline inserted {b_rows}"
        say(f"metrolex load: {loaded:,} facts in {load_s:.1f}s = {loaded / load_s:,.0f}/s; "
            f"load_ratio {fig['load_ratio']:.3f}"
            + (f" (against COPY of the same rows, {base['load_copy_events_per_s']:,.0f} rows/s: "
               f"{extra['load_ratio_copy']:.3f})" if "load_ratio_copy" in extra else "")
            + (f" (against the baseline with metrolex's storage settings: {extra['load_ratio_same_pragmas']:.3f})"
               if "load_ratio_same_pragmas" in extra else ""))
        done("load")
        try:
            # In a child process: it holds every stored row at once, which must not count
            # towards this process's peak RSS.
            if backend == "sqlite":
                a_s, a_rows = _in_child(all_rows_baseline_sqlite, str(res["store"]), workdir / "all-rows.db")
            else:
                a_s, a_rows = _in_child(all_rows_baseline_pg, store_url)
            extra["all_rows_baseline"] = {"rows": a_rows, "s": round(a_s, 3), "facts_per_s": round(loaded / a_s, 1)}
            extra["load_ratio_all_rows"] = round(fig["load_events_per_s"] / (loaded / a_s), 4)
            say(f"every row metrolex stored ({a_rows:,}: facts, training, record_events, record_chain) inserted "
                f"raw in {a_s:.2f}s; load_ratio_all_rows {extra['load_ratio_all_rows']:.3f}")
        except Exception as exc:  # an extra figure: report, never fail the run
            extra["all_rows_baseline_error"] = f"{type(exc).__name__}: {exc}"

        app.close()  # the loading app; every figure below starts from a fresh bootstrap
        app = None

        # ---- sweep -------------------------------------------------------------------------
        # `metrolex check` is a fresh process: the first check of a fresh app reads the whole read
        # model (cold). The service keeps the app (and, since 03db864, its rows) between checks (warm).
        def cold_runs(kind: str) -> list[dict]:
            """`repeat` runs of a cold check or replay, each in a fresh process, as the command runs."""
            out = []
            for _ in range(repeat):
                run = _in_child(_cold_run, kind, store_url, as_of.isoformat())
                child_peak[0] = max(child_peak[0], run["peak_rss_mb"])
                out.append(run)
            return out

        def sweep_phase() -> None:
            nonlocal app
            say(f"check (reference engine, a fresh process each = cold, as `metrolex check` runs; best of {repeat})")
            fresh = cold_runs("check")
            check_s = min(r["s"] for r in fresh)
            fig["check_s"] = round(check_s, 3)
            extra["check_cold_runs_s"] = [round(r["s"], 3) for r in fresh]
            extra["judgments"] = fresh[0]["judgments"]
            extra["judgments_by_status"] = fresh[0]["by_status"]
            extra["judgments_by_rule"] = fresh[0]["by_rule"]
            if any((r["judgments"], r["by_status"]) != (fresh[0]["judgments"], fresh[0]["by_status"]) for r in fresh):
                extra["check_runs_disagree"] = [r["by_status"] for r in fresh]
            say(f"check in fresh processes: {check_s:.2f}s (runs: {_runs_text(r['s'] for r in fresh)})")
            say(f"check (fresh apps in this process, after the load and the replays; best of {repeat})")
            runs = []
            for n in range(repeat):
                if app is not None:  # the previous cold app: let it go before the next starts
                    app.close()
                    app = None
                    gc.collect()
                app = bootstrap(store_url=store_url, engine="reference")
                t0 = time.perf_counter()
                judgments = app.compliance.check(as_of)
                runs.append(time.perf_counter() - t0)
                if n < repeat - 1:
                    del judgments
            extra["check_in_process_s"] = round(min(runs), 3)
            extra["check_in_process_runs_s"] = [round(t, 3) for t in runs]
            if (len(judgments), count_by_status(judgments)) != (extra["judgments"], extra["judgments_by_status"]):
                extra["check_in_process_disagrees"] = count_by_status(judgments)
            del judgments  # one check's judgments in memory at a time
            t0 = time.perf_counter()
            app.compliance.check(as_of)
            fig["check_warm_s"] = round(time.perf_counter() - t0, 3)
            sweep_s, sweep_rows = _best(baseline.sweep)
            base["sweep_s"] = round(sweep_s, 4)
            base["sweep_rows"] = sweep_rows
            fig["sweep_ratio"] = round(check_s / sweep_s, 1)
            fig["sweep_ratio_warm"] = round(fig["check_warm_s"] / sweep_s, 1)
            extra["sweep_ratio_in_process"] = round(extra["check_in_process_s"] / sweep_s, 1)
            say(f"check: {extra['judgments']:,} judgments in {check_s:.2f}s cold (fresh processes; in this "
                f"process: {_runs_text(runs)}), {fig['check_warm_s']:.2f}s warm; "
                f"GROUP BY baseline {sweep_s * 1000:.1f} ms ({sweep_rows:,} person-years short); "
                f"sweep_ratio {fig['sweep_ratio']:,.1f} (warm {fig['sweep_ratio_warm']:,.1f}, "
                f"in this process {extra['sweep_ratio_in_process']:,.1f})")

        def first_check_phase() -> None:
            # The first sweep after the load, on a fresh app: it reads every row from the tables
            # and (since 0abe284) writes the read-model checkpoint that later fresh apps start
            # from. Reported beside the cold figure, which is the best of the fresh apps after it.
            say("first check after the load (fresh app: reads every row, writes the read-model checkpoint)")
            app_f = bootstrap(store_url=store_url, engine="reference")
            try:
                t0 = time.perf_counter()
                app_f.compliance.check(as_of)
                fig["check_first_s"] = round(time.perf_counter() - t0, 3)
            finally:
                app_f.close()
                del app_f
                gc.collect()
            say(f"first check: {fig['check_first_s']}s")

        def durable_phase() -> None:
            say("check (durable engine, fresh app = cold)")
            app_d = bootstrap(store_url=store_url, engine="durable")
            try:
                t0 = time.perf_counter()
                n_d = len(app_d.compliance.check(as_of))
                fig["durable_check_s"] = round(time.perf_counter() - t0, 3)
                extra["durable_judgments"] = n_d
            finally:
                app_d.close()
                del app_d
                gc.collect()
            say(f"durable check: {fig['durable_check_s']}s ({n_d:,} judgments)")

        def replay_phase() -> None:
            say(f"audit replay (a fresh process each = cold, as `metrolex audit replay` runs; best of {repeat})")
            from sqlalchemy import func, select
            from adapters.store import facts as facts_table
            from adapters.store import training as training_table
            fresh = cold_runs("replay")
            replay_s = min(r["s"] for r in fresh)
            extra["replay_events_cited"] = fresh[0]["events_cited"]
            say(f"audit replay in fresh processes: {replay_s:.2f}s (runs: {_runs_text(r['s'] for r in fresh)}); "
                f"fresh apps in this process:")
            runs = []
            for _ in range(repeat):
                app_r = bootstrap(store_url=store_url, engine="reference")
                try:
                    with app_r.store.reading() as s:  # (a training record has its row in `training` only)
                        n_facts = sum(s.execute(select(func.count()).select_from(t)).scalar()
                                      for t in (facts_table, training_table))
                    t0 = time.perf_counter()
                    replayed = _replay(app_r, as_of)
                    runs.append(time.perf_counter() - t0)
                    if _cited(replayed) != extra["replay_events_cited"]:
                        extra["replay_in_process_disagrees"] = _cited(replayed)
                    del replayed
                finally:
                    app_r.close()
                    del app_r
                    gc.collect()
            extra["replay_cold_runs_s"] = [round(r["s"], 3) for r in fresh]
            extra["replay_in_process_s"] = round(min(runs), 3)
            extra["replay_in_process_runs_s"] = [round(t, 3) for t in runs]
            fig["replay_s"] = round(replay_s, 3)
            fig["replay_events"] = n_facts
            fig["replay_events_per_s"] = round(n_facts / replay_s, 1)
            # The baseline reads the record raw, one row per fact with its payload: the load
            # baseline's `bench_facts` table, which has every fact in the shape of metrolex's `facts`
            # table (until round 9 it read metrolex's own `facts` table, which then held every
            # fact; now a training record's row is in `training` only). `record_events` has no
            # row per fact (a file's training records are one register event), so reading it is
            # kept as an extra figure only. Raw reads hold every row at once: they run in a child
            # process, so that their memory is not counted as metrolex's peak RSS.
            read_s, read_rows = _in_child(_raw_read_best, backend, str(workdir / "baseline.db"), store_url,
                                          "bench_facts")
            base["read_facts_s"] = round(read_s, 4)
            base["read_facts_rows"] = read_rows
            base["read_events_per_s"] = round(read_rows / read_s, 1)
            ev_s, ev_rows = _in_child(_raw_read_best, backend, str(res["store"]), store_url, "record_events")
            extra["read_record_events"] = {"rows": ev_rows, "s": round(ev_s, 4), "rows_per_s": round(ev_rows / ev_s, 1),
                                           "facts_per_s": round(n_facts / ev_s, 1)}
            fig["replay_ratio"] = round(fig["replay_events_per_s"] / base["read_events_per_s"], 4)
            extra["replay_ratio_in_process"] = round(n_facts / extra["replay_in_process_s"] / base["read_events_per_s"], 4)
            say(f"replay: {n_facts:,} facts in {replay_s:.2f}s cold (fresh processes; in this process: "
                f"{_runs_text(runs)}); "
                f"raw read of one facts-shaped row per fact (bench_facts) {read_rows:,} rows "
                f"in {read_s:.3f}s; replay_ratio {fig['replay_ratio']:.4f} (record_events: {ev_rows:,} rows in "
                f"{ev_s:.3f}s)")

        def replay_warm_phase() -> None:
            if "replay_events" not in fig:
                return
            t0 = time.perf_counter()
            _replay(app, as_of)
            fig["replay_warm_s"] = round(time.perf_counter() - t0, 3)
            fig["replay_ratio_warm"] = round(fig["replay_events"] / fig["replay_warm_s"] / base["read_events_per_s"], 4)
            say(f"replay (warm app): {fig['replay_warm_s']:.2f}s; replay_ratio_warm {fig['replay_ratio_warm']:.4f}")

        def incremental_phase() -> None:
            person = workload.probe_person
            new = {"id": "tr-bench-incremental", "type": "training-recorded", "date": as_of.isoformat(),
                   "person": person, "hours": 8, "off_job": True, "course": "基准增量"}
            t0 = time.perf_counter()
            app.record.load(facts_document([("events", new)], "bench-incremental", workload.jurisdiction),
                            actor="bench")
            extra["incremental_load_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            t0 = time.perf_counter()
            mine = app.compliance.check(as_of, filters=Filters(subjects={person}))
            fig["incremental_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            extra["incremental_judgments"] = len(mine)
            extra["incremental_sees_new_fact"] = any(new["id"] in j.facts for j in mine)
            t0 = time.perf_counter()
            app.compliance.check(as_of, filters=Filters(rules={"training-hours"}, subjects={person}))
            extra["incremental_rule_filter_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            extra["incremental_subject_rows_ms"] = _subject_rows_what_if(app, person, as_of,
                                                                         Filters(subjects={person}))
            say(f"incremental: load {extra['incremental_load_ms']} ms, re-judge {fig['incremental_ms']} ms "
                f"(sees the new record: {extra['incremental_sees_new_fact']}; with the rule filter too: "
                f"{extra['incremental_rule_filter_ms']} ms; what-if only the person's rows: "
                f"{extra['incremental_subject_rows_ms']} ms)")

        def remind_phase() -> None:
            say("remind: every reminder due (warm app, as the scheduler runs it)")
            t0 = time.perf_counter()
            try:
                swept = app.notices.sweep(as_of, by="bench")
            except Exception:
                # The sweep failed (reported under errors): how long it ran, and the same work
                # without the write (judge + plan), so the cost is still known.
                extra["remind_s_until_failure"] = round(time.perf_counter() - t0, 3)
                t1 = time.perf_counter()
                planned = app.notices.plan(as_of)
                extra["remind_plan_only_s"] = round(time.perf_counter() - t1, 3)
                extra["remind_planned"] = len(planned)
                say(f"remind failed after {extra['remind_s_until_failure']}s; planning alone "
                    f"({len(planned):,} notices) takes {extra['remind_plan_only_s']}s")
                raise
            fig["remind_s"] = round(time.perf_counter() - t0, 3)
            extra["reminders_issued"] = len(swept.issued)
            by_kind: dict[str, int] = {}
            for p in swept.issued:
                by_kind[p.kind] = by_kind.get(p.kind, 0) + 1
            extra["reminders_by_kind"] = by_kind
            say(f"remind: {extra['reminders_issued']:,} notices in {fig['remind_s']:.2f}s")

        # Fresh apps first (each dropped before the next), so that no two read models are in memory
        # at once and the peak RSS is that of one app.
        phases = [("first-check", first_check_phase)] + ([("durable", durable_phase)] if durable else []) + [
            ("replay", replay_phase), ("sweep", sweep_phase), ("replay-warm", replay_warm_phase),
            ("incremental", incremental_phase), ("remind", remind_phase)]
        for phase, fn in phases:
            try:
                fn()
            except Exception as exc:  # the product failed here: reported, the other figures stand
                msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:500]}"
                res.setdefault("errors", {})[phase] = msg
                say(f"{phase} FAILED: {msg}")
                if app is None:
                    app = bootstrap(store_url=store_url, engine="reference")
            done(phase)
    finally:
        if app is not None:
            app.close()
        baseline.close()
        if pg_name:
            try:
                drop_pg_database(pg_url, pg_name)
                say(f"dropped database {pg_name}")
            except Exception as exc:  # pragma: no cover - reported
                res["drop_error"] = str(exc)
    stop.set()
    sampler.join()
    fig["peak_rss_mb"] = peak()
    res["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews figures
    res["complete"] = True
    if save:
        save(res)
    return res


def _in_child(fn, *args):
    import concurrent.futures
    import multiprocessing
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _runs_text(seconds: Iterable[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in seconds)


def _cold_run(kind: str, store_url: str, as_of_text: str) -> dict:
    """In a fresh process: bootstrap, then one check or replay timed (as `metrolex check` /
    `metrolex audit replay --json` run it), with what it found and this process's peak RSS."""
    from adapters.bootstrap import bootstrap
    from rules.judgment import count_by_status
    as_of = dt.date.fromisoformat(as_of_text)
    app = bootstrap(store_url=store_url, engine="reference")
    try:
        if kind == "check":
            t0 = time.perf_counter()
            judgments = app.compliance.check(as_of)
            took = time.perf_counter() - t0
            by_rule: dict[str, int] = {}
            for j in judgments:
                by_rule[j.rule] = by_rule.get(j.rule, 0) + 1
            found = {"judgments": len(judgments), "by_status": count_by_status(judgments),
                     "by_rule": dict(sorted(by_rule.items()))}
        else:
            t0 = time.perf_counter()
            replayed = _replay(app, as_of)
            took = time.perf_counter() - t0
            found = {"events_cited": _cited(replayed)}
    finally:
        app.close()
    return {"s": took, "peak_rss_mb": peak_rss_mb(), **found}


def _raw_read_best(backend: str, store_path: str, url: str, table: str) -> tuple[float, int]:
    """Best of 3 raw reads of a whole table (sqlite3 / psycopg2 fetchall)."""
    if backend == "sqlite":
        return _best(lambda: SqliteBaseline.read_events(store_path, table))
    import psycopg2
    conn = psycopg2.connect(url)
    try:
        def once() -> tuple[float, int]:
            with conn, conn.cursor() as cur:
                t0 = time.perf_counter()
                cur.execute(f"SELECT * FROM {table}")
                rows = cur.fetchall()
                return time.perf_counter() - t0, len(rows)
        return _best(once)
    finally:
        conn.close()


def _replay(app, as_of: dt.date) -> dict:
    """The replay as `metrolex audit replay --json` runs it: judgments streamed one at a time and
    let go once used (here: counted); where the product has no stream, the whole document."""
    stream = getattr(app.compliance, "replay_stream", None)
    if stream is None:
        return app.compliance.replay(as_of, None)
    # as `metrolex audit replay --json` runs it: the command pauses the GC around the whole
    # replay (adapters/commands.py cmd_audit), not only around the judging and the documents,
    # and keeps what is left alive out of the collector's walks (read side: adapters.gcpause)
    from adapters.gcpause import paused_gc
    kept = {"keep": True} if "keep" in inspect.signature(paused_gc).parameters else {}
    with paused_gc(**kept):
        head, judgments = stream(as_of, None)
        n, cited = 0, 0
        for j in judgments:
            n += 1
            cited += len(j["events"])
    return {"judgments_streamed": n, "events_cited": cited, **head}


def _cited(replayed: dict) -> int:
    """Events a replay document cites (its shape has changed across product versions)."""
    if "events_cited" in replayed:
        return replayed["events_cited"]
    if isinstance(replayed.get("events"), list):
        return len(replayed["events"])
    return sum(len(j.get("events", [])) for j in replayed.get("judgments", []))


def _subject_rows_what_if(app, person: str, as_of: dt.date, filters) -> float:
    """Not a product feature: the re-judgment if the read side fetched only the rows of the
    person (and their unit's registration) — a lower bound for a subject-scoped check."""
    from sqlalchemy import or_, select, text
    from adapters.store import facts as t
    t0 = time.perf_counter()
    with app.store.reading() as s:
        rows = [dict(r._mapping, fields=json.loads(r.payload)) for r in s.execute(
            select(t.c.seq, t.c.fact_id, t.c.type, t.c.date, t.c.subject, t.c.refers, t.c.payload, t.c.jurisdiction,
                   t.c.recorded_at).where(or_(t.c.subject == person, t.c.refers.in_(
                       select(t.c.fact_id).where(t.c.subject == person).scalar_subquery()))).order_by(t.c.seq))]
        unit = next((r["fields"]["unit"] for r in rows if r["type"] == "person-registered"), None)
        if unit:
            rows += [dict(r._mapping, fields=json.loads(r.payload)) for r in s.execute(
                select(t.c.seq, t.c.fact_id, t.c.type, t.c.date, t.c.subject, t.c.refers, t.c.payload,
                       t.c.jurisdiction, t.c.recorded_at).where(t.c.fact_id == f"unit:{unit}"))]
        # (a training record's row is in `training` only, since round 9)
        from rules.view import TRAINING_FIELDS, training_row
        rows += [training_row(tuple(r)) for r in s.execute(
            text(f"SELECT {', '.join(TRAINING_FIELDS)} FROM training WHERE person = :p"), {"p": person})]
    rows.sort(key=lambda r: r["seq"])
    app.compliance.check(as_of, filters=filters, rows=rows)
    return round((time.perf_counter() - t0) * 1000, 1)
