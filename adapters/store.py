"""The event store: eventsourcing on SQLAlchemy (SQLite by default, PostgreSQL in production),
plus the tables that live beside it in the same transaction:

- `facts`: the read model the rules evaluate — one row per recorded fact, with the commit time
  the store took (`recorded_at`, UTC), never a time a client supplied;
- `record_chain`: a SHA-256 hash chain over the stored events in commit order (audit);
- `access_tokens`, `outbox`: operational state (tokens, deliveries still to make).

One write transaction at a time: SQLite takes its write lock at BEGIN (IMMEDIATE), PostgreSQL an
advisory transaction lock, so notification ids, the chain and commit order agree.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import sqlite3
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Callable, Iterator
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import _created_event_classes
from eventsourcing.persistence import JSONTranscoder, StoredEvent
from eventsourcing.utils import get_topic
from sqlalchemy import (BigInteger, Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text,
                        create_engine, event, text)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from domain.facts import ReusedEncoder

metadata = MetaData()

facts = Table(
    "facts", metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("fact_id", String(200), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("date", String(10)),
    Column("subject", String(200)),
    Column("refers", String(200)),
    Column("payload", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("jurisdiction", String(32)),
    Column("aggregate", String(36), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("actor", String(200)),
    Column("source", Text),
    Index("facts_type_idx", "type"),
    Index("facts_subject_idx", "subject"),
    Index("facts_recorded_idx", "recorded_at"),
)

# The training register as the rules read it: one row per training-recorded fact, with typed
# columns, so judging a million records reads columns instead of decoding a million JSON
# payloads. Since round 9 of the benchmarks it is a training record's only read-model row (no
# `facts` row: its fields are the columns, its content hash and register are here too), which
# halves what a training record costs to store. Written in the same transaction as the fact's
# event. Rows written before then (content_hash NULL) also have a `facts` row.
training = Table(
    "training", metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("fact_id", String(200), nullable=False),
    Column("person", String(200), nullable=False),
    Column("date", String(10), nullable=False),
    Column("hours", Float, nullable=False),
    Column("off_job", Integer, nullable=False),
    Column("course", Text),
    Column("note", Text),
    Column("jurisdiction", String(32)),
    Column("recorded_at", String(32), nullable=False),
    Column("content_hash", String(64)),
    Column("aggregate", String(36)),
    Column("actor", String(200)),
    Column("source", Text),
    # covering what a person's digest reads (adapters.record.RecordService._digests), in its order
    Index("training_digest_idx", "person", "date", "seq", "off_job", "hours", "fact_id"),
    # a fact id is one fact: repeats and references are looked up here as in `facts`
    Index("training_fact_idx", "fact_id", unique=True),
)
TRAINING_COLUMNS = ("seq", "fact_id", "person", "date", "hours", "off_job", "course", "note", "jurisdiction",
                    "recorded_at", "content_hash", "aggregate", "actor", "source")
# added to a `training` table made before they were (see Store._create_schema)
_TRAINING_ADDED = {"content_hash": "VARCHAR(64)", "aggregate": "VARCHAR(36)", "actor": "VARCHAR(200)",
                   "source": "TEXT"}


# How metrolex keeps a SQLite file (bench, round 9): pages of 16 KB, which a new file takes (an
# existing one keeps its own), and a page cache of 16 MB per connection (the default is 2 MB). A
# bulk load's inserts into the training indexes, spread over the B-tree by person, then touch
# fewer pages and find most of them in memory. Loading medium's facts: 21.0-21.4 -> 19.3-19.4 us a
# fact. The bench also reports its raw baseline with the same settings (`load_ratio_same_pragmas`).
SQLITE_STORAGE_PRAGMAS = ("page_size=16384", "cache_size=-16384")


class EncodedJSON(str):
    """A value that is already JSON text (see `Store.creation`)."""


def training_table_row(seq: int, fact_id: str, fields: dict, jurisdiction: str | None, recorded_at: str,
                       content_hash: str | None, aggregate: str | None, actor: str | None,
                       source: str | None) -> tuple:
    """A training-recorded fact's row of the `training` table, in TRAINING_COLUMNS order."""
    return (seq, fact_id, fields["person"], fields["date"], float(fields["hours"]), 1 if fields["off_job"] else 0,
            fields.get("course"), fields.get("note"), jurisdiction, recorded_at, content_hash, aggregate, actor,
            source)
FACT_COLUMNS = ("seq", "fact_id", "type", "date", "subject", "refers", "payload", "content_hash", "jurisdiction",
                "aggregate", "recorded_at", "actor", "source")

record_chain = Table(
    "record_chain", metadata,
    Column("notification_id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=False),
    Column("recorded_at", String(32), nullable=False),
    Column("link", String(64), nullable=False),
)

access_tokens = Table(
    "access_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("unit", String(200)),
    Column("created_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
)

outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("notice_key", String(300), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("address", String(500), nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False, default=0.0),
    Column("status", String(16), nullable=False, default="pending"),
    Column("last_error", Text),
    Index("outbox_key_channel", "notice_key", "channel", "address", unique=True),
)

notices = Table(
    "notices", metadata,
    Column("key", String(400), primary_key=True),
    Column("rule", String(64), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("copy_to", Text, nullable=False),
    Column("due", String(10), nullable=False),
    Column("as_of", String(10), nullable=False),
    Column("issued_at", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Index("notices_recipient_idx", "recipient"),
)

sweeps = Table(
    "sweeps", metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("as_of", String(10), nullable=False),
    Column("ran_at", String(32), nullable=False),
    Column("issued", Integer, nullable=False),
    Column("by", String(200)),
)

# Read-model checkpoints: what a sweep reads from `facts` and `training` (the rows of every
# fact but the training records, and each person's training digest) as of a seq, in one
# marshalled body, so that a fresh process reads one row and then only the facts after it
# (adapters.record: RecordService._restore, _write_checkpoint). Derived data, like `facts` and
# `training`, which are never changed, so a checkpoint never goes stale, only behind; written
# by a sweep once enough facts are new, and only the newest is kept (not part of the record:
# the chain does not cover it).
read_checkpoints = Table(
    "read_checkpoints", metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("format", String(64), nullable=False),
    Column("written_at", String(32), nullable=False),
    Column("body", LargeBinary, nullable=False),
)

EVENTS_TABLE = "record_events"
GENESIS = "0" * 64

_pending_session: list[scoped_session] = []
_construct_lock = threading.Lock()


def _session_for_app() -> scoped_session:
    """Handed to eventsourcing-sqlalchemy (SQLALCHEMY_SCOPED_SESSION_TOPIC) while a Store builds
    its application, so events and read-model rows commit in one transaction."""
    return _pending_session[-1]


class Transcoder(JSONTranscoder):
    """eventsourcing's JSONTranscoder with an encoder kept between calls (JSONEncoder builds its
    C encoder anew for every call; see domain.facts.ReusedEncoder): the same bytes for the same
    state (tests/unit/test_transcoder.py), ~2 us less for each event stored."""

    def __init__(self) -> None:
        super().__init__()
        self._encode = ReusedEncoder(self.encoder)

    def encode(self, obj: Any) -> bytes:
        return self._encode(obj).encode("utf8")

    def transcoded(self, obj: Any) -> dict:
        """`obj`, of a registered type (a datetime …), in the form the encoder writes it: what its
        default hook returns ({"_type_", "_data_"}), made before encoding. A state holding it
        encodes to the same bytes, without the encoder calling back into Python for it (for a
        creation's timestamp: 6.6 -> 4.5 us a person's event), and decodes to `obj` again."""
        return self._encode_obj(obj)


class Record(Application):
    """The eventsourcing application whose events are the record of metrology administration."""

    name = "Record"

    def construct_transcoder(self) -> Transcoder:
        """The faster transcoder, with the transcodings eventsourcing registers (UUID, Decimal,
        datetime)."""
        transcoder = Transcoder()
        self.register_transcodings(transcoder)
        return transcoder


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def format_instant(instant: dt.datetime) -> str:
    """Commit times as sortable UTC text with microseconds."""
    return instant.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def chain_link(previous: str, notification_id: int, originator_id: object, version: int,
               topic: str, state: bytes, recorded_at: str) -> str:
    h = hashlib.sha256()
    h.update(previous.encode())
    h.update(f"|{notification_id}|{originator_id}|{version}|{topic}|{recorded_at}|".encode())
    h.update(bytes(state))
    return h.hexdigest()


@lru_cache(maxsize=None)
def _topic(cls: type) -> str:
    return get_topic(cls)


@lru_cache(maxsize=None)
def _created_event_class(cls: type) -> type:
    """The event class eventsourcing made from the aggregate's decorated `__init__`."""
    classes = _created_event_classes[cls]
    assert len(classes) == 1, classes
    return classes[0]


def creation_template(transcoder: Transcoder, originator_topic: str) -> tuple[bytes, bytes] | bool:
    """(what comes before the timestamp's ISO text, what comes after it up to the first argument)
    of a creation state as `transcoder` writes it (see Store.creation), or False where a sample
    timestamp's ISO text is not found in it once."""
    sample = dt.datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=dt.timezone.utc)
    written = transcoder.encode({"timestamp": transcoder.transcoded(sample), "originator_topic": originator_topic,
                                 "key": ""})
    iso = sample.isoformat().encode()
    if written.count(iso) != 1 or not written.endswith(b',"key":""}'):
        return False
    head, tail = written.split(iso)
    return head, tail[:-len(b'"key":""}')]


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]").search


def _copy_field(v: object) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, str):
        if _COPY_SPECIAL(v) is None:
            return v
        # chained replaces, backslash first (str.translate with a table takes a slow path per
        # character on non-ASCII text: 60 µs for a 1.5 kB notice)
        return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return repr(v)


def copy_text(rows: list[tuple]) -> str:
    """Rows in PostgreSQL's COPY text format: tab-separated, \\N for NULL, backslash escapes."""
    return "".join("\t".join(map(_copy_field, row)) + "\n" for row in rows)


class WalCheckpointer:
    """SQLite: copies the write-ahead log into the database file in a thread of its own, after
    bulk writes, instead of in the writer's commit.

    SQLite checkpoints in whichever connection commits once the log holds 1,000 pages: a load
    waited there ~35 ms every third file of 10,000 facts (copying and two fsyncs), and the log it
    left grew with the record. Here a PASSIVE checkpoint (it never waits for a lock, nor holds up
    readers or the writer) runs on a connection of its own while the next file is being read and
    checked; sqlite3 lets go of the GIL while it runs. The writer's automatic checkpoint stays on
    as the fallback (a checkpoint that another process's reader held back, a thread that fell
    behind). Bench, medium, loading everything: ~0.25-0.3 s less of ~2.6 s, in alternating runs.

    Started by the first write that asks for it (nothing at import or open), stopped by `close`;
    a process forked from one that started it starts its own. A failed checkpoint is counted and
    left to the next one, or to the writer's fallback: the record is intact either way."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.runs = 0
        self.failures = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def wake(self) -> None:
        with self._lock:
            if self._stopping:
                return
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._wake = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._wake,), daemon=True,
                                                name="metrolex-wal-checkpoint")
                self._thread.start()
        self._wake.set()

    def _run(self, wake: threading.Event) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            self.failures += 1  # (the next wake starts a new thread and tries again)
            return
        try:
            while True:
                wake.wait()
                wake.clear()
                if self._stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.Error:
                    self.failures += 1
        finally:
            conn.close()

    def close(self, timeout: float = 60.0) -> None:
        with self._lock:
            self._stopping = True
            thread = self._thread if self._pid == os.getpid() else None
        self._wake.set()
        if thread is not None:
            thread.join(timeout)


class Store:
    """Engine, scoped session and the Record application for one store URL."""

    def __init__(self, url: str, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.url = url
        self.clock = clock
        self.is_sqlite = url.startswith("sqlite")
        self.mark = "?" if self.is_sqlite else "%s"  # the driver's placeholder in raw SQL
        kwargs: dict = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        self.checkpointer: WalCheckpointer | None = None
        self._creation_templates: dict[type, tuple[bytes, bytes] | bool] = {}  # see creation
        if self.is_sqlite:
            self._sqlite_pragmas(self.engine)
            database = self.engine.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                self.checkpointer = WalCheckpointer(database)
        self.session = scoped_session(sessionmaker(bind=self.engine, autoflush=True))
        # one factory for read sessions (a sessionmaker is a new Session class: made per read, each
        # was a class and its reference cycles left for the collector)
        self._reader = sessionmaker(bind=self.engine)
        # Several processes may open a new database at once: create its tables one at a time.
        guard = None
        if not self.is_sqlite:
            guard = self.engine.connect()
            guard.execute(text("SELECT pg_advisory_lock(7311001)"))
            guard.commit()
        try:
            self._create_schema()
        finally:
            if guard is not None:
                guard.execute(text("SELECT pg_advisory_unlock(7311001)"))
                guard.commit()
                guard.close()

    def _create_schema(self) -> None:
        from sqlalchemy import inspect
        inspector = inspect(self.engine)
        had_training = inspector.has_table("training")
        training_columns = {c["name"] for c in inspector.get_columns("training")} if had_training else set()
        metadata.create_all(self.engine)
        if had_training and not set(_TRAINING_ADDED) <= training_columns:
            # a store made before training records had no `facts` row: their rows gain the columns
            # (NULL in the old rows, whose facts row still holds them) and the index on fact_id;
            # under the write lock, looking again (another process may be opening it too)
            with self.engine.connect() as conn:
                if self.is_sqlite:
                    conn.info["write"] = True  # BEGIN IMMEDIATE (see _sqlite_pragmas)
                with conn.begin():
                    conn.info.pop("write", None)
                    present = {c["name"] for c in inspect(conn).get_columns("training")}
                    for name, sql_type in _TRAINING_ADDED.items():
                        if name not in present:
                            conn.execute(text(f"ALTER TABLE training ADD COLUMN {name} {sql_type}"))
                    conn.execute(text("CREATE UNIQUE INDEX IF NOT EXISTS training_fact_idx ON training (fact_id)"))
        with _construct_lock:
            _pending_session.append(self.session)
            try:
                self.app = Record(env={
                    "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
                    "SQLALCHEMY_SCOPED_SESSION_TOPIC": "adapters.store:_session_for_app",
                    "CREATE_TABLE": "y",
                })
            finally:
                _pending_session.pop()
        self.session.commit()
        self.session.remove()
        if not self.is_sqlite:
            self._install_pg_guards()
        if not had_training:
            self._backfill_training()
        with self.engine.begin() as conn:  # a store made before the index was declared
            conn.execute(text("CREATE INDEX IF NOT EXISTS training_digest_idx "
                              "ON training (person, date, seq, off_job, hours, fact_id)"))
            if not self.is_sqlite and conn.execute(text(  # checkpoints come compressed: not again (pglz)
                    "SELECT attstorage FROM pg_attribute WHERE attrelid = 'read_checkpoints'::regclass "
                    "AND attname = 'body'")).scalar() != "e":
                conn.execute(text("ALTER TABLE read_checkpoints ALTER COLUMN body SET STORAGE EXTERNAL"))

    def _backfill_training(self) -> None:
        """A store written before the `training` table existed: fill it once from `facts` (the
        rows keep their facts row, so their content hash and the rest stay there)."""
        import json
        with self.engine.connect() as conn:
            owed = conn.execute(text("SELECT COUNT(*) FROM facts WHERE type = 'training-recorded'")).scalar()
        if not owed:
            return
        with self.writing() as session:
            have = {r[0] for r in session.execute(text("SELECT seq FROM training"))}
            rows = []
            for r in session.execute(text(
                    "SELECT seq, fact_id, payload, jurisdiction, recorded_at FROM facts "
                    "WHERE type = 'training-recorded' ORDER BY seq")):
                if r[0] not in have:
                    rows.append(training_table_row(r[0], r[1], json.loads(r[2]), r[3], r[4], None, None, None, None))
            self.insert_rows(session, "training", TRAINING_COLUMNS, rows)

    @staticmethod
    def _sqlite_pragmas(engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):  # pragma: no cover - driver hook
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            for pragma in SQLITE_STORAGE_PRAGMAS:  # (the page size first: it only takes on a new file)
                cur.execute(f"PRAGMA {pragma}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover - driver hook
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

    def _install_pg_guards(self) -> None:
        """The record is append-only: PostgreSQL refuses UPDATE and DELETE on its tables.

        Installed once per database; a store that finds them in place changes nothing (DDL while
        another process writes would take exclusive locks and could deadlock with it)."""
        tables = (EVENTS_TABLE, "record_chain", "facts", "notices", "training")

        def guarded(conn) -> set[str]:
            return {r[0] for r in conn.execute(text(
                "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE t.tgname = 'metrolex_append_only'"))}
        with self.engine.connect() as conn:
            if set(tables) <= guarded(conn):
                return
        ddl = """
        CREATE OR REPLACE FUNCTION metrolex_refuse_change() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'metrolex: the record is append-only (% on %)', TG_OP, TG_TABLE_NAME; END;
        $$ LANGUAGE plpgsql;
        """
        with self.engine.begin() as conn:
            # Wait for any write in flight (same lock as `writing`) rather than deadlock with it.
            conn.execute(text("SELECT pg_advisory_xact_lock(7311002)"))
            conn.execute(text(ddl))
            present = guarded(conn)  # again, under the lock: another process may have just installed them
            for table in tables:
                if table not in present:
                    conn.execute(text(
                        f"CREATE TRIGGER metrolex_append_only BEFORE UPDATE OR DELETE ON {table} "
                        "FOR EACH ROW EXECUTE FUNCTION metrolex_refuse_change()"))

    # -- transactions -------------------------------------------------------------------------
    # a write of at least this many rows (events, facts, training records, links) is followed by a
    # checkpoint in the background (SQLite; see WalCheckpointer); smaller ones leave it to SQLite
    CHECKPOINT_AFTER_ROWS = 1000

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One write transaction: yields the session; on success chains the new events and commits.

        The commit time (`recorded_at`) is the store's clock once the write lock is held."""
        conn = self.engine.connect()
        if self.is_sqlite:
            conn.info["write"] = True
        conn.begin()  # SQLite: BEGIN IMMEDIATE (see _sqlite_pragmas)
        conn.info.pop("write", None)
        session = Session(bind=conn, autoflush=True)
        self.session.registry.set(session)
        try:
            if not self.is_sqlite:
                session.execute(text("SELECT pg_advisory_xact_lock(7311002)"))
            session.info["recorded_at"] = format_instant(self.clock())
            yield session
            session.flush()
            self._extend_chain(session)
            session.flush()
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            self.session.remove()
            conn.close()
        if self.checkpointer is not None and session.info.get("rows", 0) >= self.CHECKPOINT_AFTER_ROWS:
            self.checkpointer.wake()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        session = self._reader()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def insert_rows(self, session: Session, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """Plain rows into a table, in the session's transaction, straight through the driver
        (executemany on SQLite; on PostgreSQL COPY, or execute_values for rows with bytes or
        booleans): no per-row ORM or Core work."""
        if not rows:
            return
        session.info["rows"] = session.info.get("rows", 0) + len(rows)
        conn = session.connection()
        cols = ", ".join(columns)
        if self.is_sqlite:
            sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(columns))})"
            for i in range(0, len(rows), 5000):
                conn.exec_driver_sql(sql, rows[i:i + 5000])
        else:
            cur = conn.connection.dbapi_connection.cursor()
            try:
                if any(isinstance(v, (bytes, memoryview, bool)) for v in rows[0]):
                    from psycopg2.extras import execute_values
                    execute_values(cur, f"INSERT INTO {table} ({cols}) VALUES %s", rows, page_size=1000)
                else:
                    # COPY, PostgreSQL's bulk load: several times faster than INSERT … VALUES.
                    cur.copy_expert(f"COPY {table} ({cols}) FROM STDIN", io.StringIO(copy_text(rows)))
            finally:
                cur.close()

    # The highest seq stored: facts and training records share one sequence (a training record
    # has its row in `training` only; see the table).
    TOP_SEQ = "SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM facts UNION ALL SELECT MAX(seq) FROM training) AS tops"

    def next_seq(self, session: Session) -> int:
        """The seq the next fact gets (callers hold the write lock, so nobody else writes)."""
        return (session.execute(text(self.TOP_SEQ)).scalar() or 0) + 1

    def creation(self, cls: type, **kwargs) -> tuple:
        """(originator id, topic, state) of the event that would create `cls(**kwargs)`, in
        stored form, without building the aggregate: for a new aggregate whose only event is its
        creation (kwargs in the order of its `__init__`, which is the order of the event's state).
        A value given as `EncodedJSON` is already its JSON text and goes in as it is (after the
        others: a mapping's order is not kept). Tests compare what it stores with the aggregate
        built the usual way.

        The timestamp and topic are written from a template (`creation_template`: the
        transcoder's own encoding of a sample creation, split where the sample timestamp's ISO
        text stands), and only the arguments are encoded: a person's event 6.7 -> 5.1 us.
        Where the template cannot be made, the whole state is encoded."""
        event_cls = _created_event_class(cls)
        transcoder = self.app.mapper.transcoder
        template = self._creation_templates.get(cls)
        if template is None:
            template = self._creation_templates[cls] = creation_template(transcoder, _topic(cls))
        encoded = None
        if EncodedJSON in map(type, kwargs.values()):  # (a register: its records are spliced in)
            encoded = {k: v for k, v in kwargs.items() if type(v) is EncodedJSON}
            kwargs = {k: v for k, v in kwargs.items() if k not in encoded}
        timestamp = event_cls.create_timestamp()
        if template:
            head, tail = template
            body = head + timestamp.isoformat().encode() + tail + transcoder.encode(kwargs)[1:]
        else:
            body = transcoder.encode({"timestamp": transcoder.transcoded(timestamp), "originator_topic": _topic(cls),
                                      **kwargs})
        if encoded:
            body = body[:-1] + "".join(f",{json.dumps(k)}:{v}" for k, v in encoded.items()).encode() + b"}"
        return cls.create_id(kwargs["key"]), _topic(event_cls), body

    def get_many(self, session: Session, ids: set[UUID]) -> dict[UUID, object]:
        """The aggregates with these ids that the store holds, each reconstructed from its stored
        events as `repository.get` does (every event's `mutate`, in version order), read in the
        session's transaction with one query per 500 ids. Ids it does not hold are left out."""
        found: dict[UUID, object] = {}
        if not ids:
            return found
        mapper = self.app.mapper
        dbapi = session.connection().connection.dbapi_connection
        order = sorted(ids)
        mark = self.mark
        cur = dbapi.cursor()
        try:
            for i in range(0, len(order), 500):
                part = order[i:i + 500]
                cur.execute(f"SELECT originator_id, originator_version, topic, state FROM {EVENTS_TABLE} "
                            f"WHERE originator_id IN ({', '.join([mark] * len(part))}) "
                            "ORDER BY originator_id, originator_version",
                            [u.bytes if self.is_sqlite else str(u) for u in part])
                for raw_id, version, topic, state in cur.fetchall():
                    originator_id = UUID(bytes=raw_id) if isinstance(raw_id, (bytes, memoryview)) \
                        else UUID(str(raw_id))
                    stored = StoredEvent(originator_id=originator_id, originator_version=version, topic=topic,
                                         state=bytes(state))
                    found[originator_id] = mapper.to_domain_event(stored).mutate(found.get(originator_id))
        finally:
            cur.close()
        return found

    def append(self, session: Session, aggregates, created=()) -> int:
        """Store new events in the current write transaction.

        `aggregates`: their pending events go through the eventsourcing mapper (topic,
        transcoded state) exactly as `Application.save` would. `created`: (originator id, topic,
        state) of creation events already in stored form (see `RecordService` — a new aggregate
        whose only event is its creation need not be built to be stored). All rows go in with one
        batched insert; the unique (originator_id, version) index still refuses a concurrent
        write to the same aggregate."""
        mapper = self.app.mapper
        rows = []
        as_id = (lambda u: u.bytes) if self.is_sqlite else str
        for aggregate in aggregates:
            for domain_event in aggregate.collect_events():
                stored = mapper.to_stored_event(domain_event)
                rows.append((as_id(stored.originator_id), stored.originator_version, stored.topic, stored.state))
        for originator_id, topic, state in created:
            rows.append((as_id(originator_id), 1, topic, state))
        self.insert_rows(session, EVENTS_TABLE, ("originator_id", "originator_version", "topic", "state"), rows)
        return len(rows)

    def _extend_chain(self, session: Session) -> None:
        """Link the events this transaction stored into the chain (read and written straight
        through the driver: a file of 10,000 registrations stores 10,000 events)."""
        cur = session.connection().connection.dbapi_connection.cursor()
        try:
            cur.execute("SELECT notification_id, link FROM record_chain ORDER BY notification_id DESC LIMIT 1")
            last = cur.fetchone()
            last_id, previous = (last[0], last[1]) if last else (0, GENESIS)
            cur.execute(f"SELECT id, originator_id, originator_version, topic, state FROM {EVENTS_TABLE} "
                        f"WHERE id > {self.mark} ORDER BY id", (last_id,))
            rows = cur.fetchall()
        finally:
            cur.close()
        if not rows:
            return
        recorded_at = session.info["recorded_at"]
        links = []
        for row in rows:
            previous = chain_link(previous, row[0], row[1], row[2], row[3], row[4], recorded_at)
            links.append((row[0], recorded_at, previous))
        self.insert_rows(session, "record_chain", ("notification_id", "recorded_at", "link"), links)

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.session.remove()
        self.engine.dispose()
