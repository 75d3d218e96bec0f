"""The scheduler of `metrolex serve`: APScheduler 3.x in the background, one active leader per store.

What runs (only on the leader):
- a catch-up sweep as soon as this process becomes leader (at start-up or on take-over);
- the daily sweep at `settings.sweep_time`, Asia/Shanghai;
- one-off wake-ups on each date within the next 60 days on which a reminder step or overdue
  notice becomes due (scheduler.jobs.next_wakeups), rebuilt after every sweep;
- delivery of the outbox every minute (adapters.delivery, when installed).

Every sweep is `app.notices.sweep(today in Shanghai)`, which catches up everything due and not
yet issued and records each notice once however many sweeps race, so a late, doubled or
repeated run is harmless. The record is the truth: jobs live in a MemoryJobStore of this process
only and are rebuilt from the record whenever a process becomes leader.

APScheduler 3.x hazards and what is done about them:
- a job store shared by several schedulers runs each job several times → one MemoryJobStore per
  SchedulerService, never a shared SQLAlchemyJobStore; leader election picks the one active;
- the default misfire grace time is 1 s (a busy or suspended process silently skips the day's
  sweep) → misfire_grace_time 24 h, coalesce (one run for many missed), max_instances 1;
- naive datetimes are read in the host's zone → timezone Asia/Shanghai set explicitly and only
  aware datetimes are passed (scheduler.jobs.require_aware refuses naive ones);
- "module:function" job references import the module again in the executor; a module declaring
  a durable_rules ruleset at import must not be imported twice → jobs are bound methods.

Leader election: on PostgreSQL a session-level `pg_try_advisory_lock` held on a dedicated
connection for the life of the leader (the server releases it when that connection dies; a
standby polls every few seconds); on SQLite an exclusive `flock` on `<db file>.scheduler.lock`
(released by the kernel when the process dies).
"""
from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from pathlib import Path
from typing import Any, Callable

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from scheduler.jobs import (HORIZON_DAYS, SHANGHAI, next_wakeups, parse_time_of_day, require_aware,
                            today_in_shanghai, wakeup_instants)

log = structlog.get_logger("metrolex.scheduler")

# adapters/store.py takes 7311001 (schema DDL) and 7311002 (write transactions) as transaction locks.
LEADER_LOCK_KEY = 7311003
JOB_DEFAULTS = {"coalesce": True, "misfire_grace_time": 24 * 3600, "max_instances": 1}
WAKEUP_PREFIX = "wakeup:"


def _short(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


# -- leader election ---------------------------------------------------------------------------------
class PostgresLeaderLock:
    """A session-level advisory lock on a dedicated connection (not from the store's pool)."""

    def __init__(self, url: str, key: int = LEADER_LOCK_KEY, name: str = "metrolex-scheduler") -> None:
        self.key = key
        self.url = url
        connect_args: dict[str, Any] = {"connect_timeout": 5, "application_name": name[:63]}
        if make_url(url).get_driver_name() == "psycopg2":
            # the client notices a dead server; the session settings below make the server notice a dead client
            connect_args |= {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
        self._engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=connect_args)
        self._conn = None
        self._held = False
        self._mutex = threading.Lock()

    def _connect(self):
        conn = self._engine.connect()
        for setting in ("tcp_keepalives_idle = 10", "tcp_keepalives_interval = 5", "tcp_keepalives_count = 3",
                        "idle_session_timeout = 0", "statement_timeout = 10000"):
            try:
                conn.execute(text(f"SET {setting}"))
            except Exception:  # older servers lack some settings; none is essential
                pass
        return conn

    def _drop(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:
                pass

    def acquire(self) -> bool:
        with self._mutex:
            if self._held:
                return True  # never ask twice: the lock is re-entrant and would need two unlocks
            try:
                if self._conn is None:
                    self._conn = self._connect()
                self._held = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            except Exception as exc:
                log.warning("scheduler.leader.lock_unavailable", store="postgresql", error=_short(exc))
                self._drop()
            return self._held

    def held(self) -> bool:
        """Whether this session still holds the lock (False once its connection is gone)."""
        with self._mutex:
            if not self._held or self._conn is None:
                return False
            try:
                ok = self._conn.execute(text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid = pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND classid = (CAST(:k AS bigint) >> 32)::oid AND objid = (CAST(:k AS bigint) & 4294967295)::oid "
                    "AND objsubid = 1)"),
                    {"k": self.key}).scalar()
            except Exception as exc:
                log.warning("scheduler.leader.connection_lost", error=_short(exc))
                ok = False
            if not ok:
                self._drop()
            return bool(ok)

    @property
    def backend_pid(self) -> int | None:
        with self._mutex:
            if self._conn is None:
                return None
            try:
                return self._conn.execute(text("SELECT pg_backend_pid()")).scalar()
            except Exception:
                return None

    def release(self) -> None:
        with self._mutex:
            if self._conn is not None and self._held:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                except Exception:
                    pass
            self._drop()

    def close(self) -> None:
        self.release()
        self._engine.dispose()


class FileLeaderLock:
    """An exclusive flock on `<db file>.scheduler.lock`; the kernel drops it with the process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = None
        self._mutex = threading.Lock()

    def acquire(self) -> bool:
        import fcntl
        with self._mutex:
            if self._file is not None:
                return True
            f = open(self.path, "a+b")
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                return False
            f.seek(0)
            f.truncate()
            f.write(f"{socket.gethostname()} {os.getpid()}\n".encode())
            f.flush()
            self._file = f
            return True

    def held(self) -> bool:
        with self._mutex:
            return self._file is not None

    def release(self) -> None:
        import fcntl
        with self._mutex:
            f, self._file = self._file, None
            if f is not None:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                finally:
                    f.close()

    close = release


class SoleLeaderLock:
    """An in-memory SQLite store lives in one process: that process leads."""

    def __init__(self) -> None:
        self._held = False

    def acquire(self) -> bool:
        self._held = True
        return True

    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        self._held = False

    close = release


def leader_lock_for(store, name: str = "metrolex-scheduler"):
    url = make_url(store.url)
    if url.get_backend_name() == "postgresql":
        return PostgresLeaderLock(store.url, name=name)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            return SoleLeaderLock()
        return FileLeaderLock(Path(database).resolve().as_posix() + ".scheduler.lock")
    raise ValueError(f"no leader election for store {url.get_backend_name()!r}")


# -- the service -------------------------------------------------------------------------------------
class SchedulerService:
    """The background scheduler of one process; active only while it is the store's leader."""

    def __init__(self, app, *, poll_seconds: float = 5.0, horizon_days: int = HORIZON_DAYS,
                 wakeup_time: str | dt.time | None = None, delivery_seconds: float = 60.0,
                 now: Callable[[], dt.datetime] | None = None) -> None:
        self.app = app
        self.poll_seconds = poll_seconds
        self.horizon_days = horizon_days
        self.sweep_time = parse_time_of_day(app.settings.sweep_time)
        self.wakeup_time = (parse_time_of_day(wakeup_time) if isinstance(wakeup_time, str)
                            else wakeup_time or self.sweep_time)
        self.delivery_seconds = delivery_seconds
        self._now = now or (lambda: dt.datetime.now(SHANGHAI))  # the real clock APScheduler runs on
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lock = leader_lock_for(app.store, name=f"metrolex-scheduler {self.name}")
        self.jobstore = MemoryJobStore()  # never shared: the record is the truth
        self.scheduler = BackgroundScheduler(
            timezone=SHANGHAI, job_defaults=dict(JOB_DEFAULTS),
            jobstores={"default": self.jobstore}, executors={"default": ThreadPoolExecutor(4)})
        self.scheduler.add_listener(self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        self._leader = False
        self._state = threading.RLock()
        self._sweep_mutex = threading.Lock()
        self._swept = threading.Condition()
        self.sweeps_run = 0
        self.last_sweep = None
        self._stop = threading.Event()
        self._election: threading.Thread | None = None
        self._started = False
        self._delivery_warned = False
        self._channels = None
        self.log = structlog.get_logger("metrolex.scheduler", scheduler=self.name)  # lazy: resolves the configuration per call

    # -- life cycle ---------------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self._leader

    def start(self) -> "SchedulerService":
        if self._started:
            raise RuntimeError("SchedulerService.start: already started (make a new one after shutdown)")
        self._started = True
        self.scheduler.start()
        self._elect()  # decide at once, so is_leader means something when start() returns
        self._election = threading.Thread(target=self._election_loop, name="metrolex-leader-election", daemon=True)
        self._election.start()
        self.log.info("scheduler.started", leader=self._leader, sweep_time=self.sweep_time.strftime("%H:%M"),
                      timezone=str(SHANGHAI), store=make_url(self.app.store.url).render_as_string(hide_password=True))
        return self

    def shutdown(self, wait: bool = True) -> None:
        """Stop electing, let a running job finish, then let go of the leadership."""
        self._stop.set()
        if self._election is not None and self._election is not threading.current_thread():
            self._election.join(timeout=max(self.poll_seconds, 1.0) + 15)
        with self._state:
            was_leader, self._leader = self._leader, False
            if self.scheduler.running:
                self.scheduler.remove_all_jobs()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        self.lock.close()  # only now: a standby must not sweep while our last sweep still runs
        if self._started:
            self.log.info("scheduler.stopped", was_leader=was_leader)

    def _election_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self._elect()
            except Exception:  # the election must go on
                self.log.exception("scheduler.election.failed")

    def _elect(self) -> None:
        with self._state:
            if self._stop.is_set():
                return
            if self._leader and not self.lock.held():
                self.log.warning("scheduler.leader.lost")
                self._step_down()
            if not self._leader and self.lock.acquire():
                self._leader = True
                self.log.info("scheduler.leader.acquired")
                self._install_jobs()

    def _step_down(self) -> None:
        self._leader = False
        self.lock.release()
        if self.scheduler.running:
            self.scheduler.remove_all_jobs()

    def _still_leader(self) -> bool:
        """Checked before each job: the lock may have died with its connection since the last poll."""
        with self._state:
            if not self._leader:
                return False
            if not self.lock.held():
                self.log.warning("scheduler.leader.lost")
                self._step_down()
                return False
            return True

    # -- jobs -----------------------------------------------------------------------------------------
    def _install_jobs(self) -> None:
        s = self.scheduler
        s.add_job(self._job_sweep, DateTrigger(run_date=require_aware(self._now()), timezone=SHANGHAI),
                  args=("catch-up",), id="catch-up-sweep", name="catch-up sweep", replace_existing=True)
        s.add_job(self._job_sweep, CronTrigger(hour=self.sweep_time.hour, minute=self.sweep_time.minute,
                                               timezone=SHANGHAI),
                  args=("daily",), id="daily-sweep", name="daily sweep", replace_existing=True)
        s.add_job(self._job_deliver, IntervalTrigger(seconds=self.delivery_seconds, timezone=SHANGHAI),
                  id="delivery", name="deliver pending notices", replace_existing=True)

    def _today(self) -> dt.date:
        return today_in_shanghai(self.app.clock())

    def _job_sweep(self, reason: str) -> None:
        if not self._still_leader():
            self.log.info("sweep.skipped", reason=reason, why="not the leader")
            return
        try:
            self.run_sweep(self._today(), by=f"scheduler:{reason}")
        except Exception:  # logged here; the next run (or the next wake-up) catches up
            self.log.exception("sweep.failed", reason=reason)
        if reason == "daily":  # what checks kept out of the collector's walks, walked once a day
            from adapters.gcpause import release_kept
            self.log.info("gc.released", unreachable=release_kept())

    def _job_wakeup(self, day: str) -> None:
        if not self._still_leader():
            return
        today = self._today()
        mark = self.app.notices.watermark()
        if mark is not None and mark >= today.isoformat():
            # the daily sweep (same instant by default) already covered today; nothing became due since
            self.log.info("wakeup.already_swept", day=day, watermark=mark)
            return
        self.run_sweep(today, by="scheduler:wakeup")

    def _job_deliver(self) -> None:
        if not self._still_leader():
            return
        try:
            from adapters import delivery
            deliver_pending = delivery.deliver_pending
        except (ImportError, AttributeError) as exc:
            if not self._delivery_warned:
                self._delivery_warned = True
                self.log.warning("delivery.unavailable", error=str(exc),
                                 detail="adapters.delivery is not importable: notices are recorded and shown in "
                                        "the inbox, but not sent by e-mail or webhook")
            return
        if self._channels is None:
            settings = self.app.settings
            if hasattr(delivery, "channels_from_settings"):
                self._channels = delivery.channels_from_settings(settings)
            else:
                self._channels = {"webhook": delivery.WebhookChannel(settings.webhook_secret)}
                if settings.smtp_host:
                    self._channels["email"] = delivery.EmailChannel(settings)
            if "email" not in self._channels:
                self.log.warning("delivery.email_disabled", detail="METROLEX_SMTP_HOST is not set: e-mail stays in the outbox")
        counts = deliver_pending(self.app, self._channels, require_aware(self._now()))
        if counts and any(counts.values()):
            self.log.info("delivery.done", **{k: v for k, v in counts.items() if isinstance(v, int)})

    # -- the sweep and the wake-ups -------------------------------------------------------------------
    def run_sweep(self, as_of: dt.date | dt.datetime, by: str = "scheduler"):
        """Sweep as of the end of `as_of` (a date, or an aware instant read in Shanghai). Runs
        whether or not this process leads (the sweep is safe to race); the leader then rebuilds
        its wake-ups."""
        if isinstance(as_of, dt.datetime):
            as_of = today_in_shanghai(as_of)
        elif not isinstance(as_of, dt.date):
            raise TypeError(f"run_sweep: expected a date, got {type(as_of).__name__}")
        with self._sweep_mutex:
            result = self.app.notices.sweep(as_of, by=f"{by} {self.name}"[:200])
        self.log.info("sweep.done", as_of=as_of.isoformat(), by=by, issued=len(result.issued),
                      already=result.already, skipped=result.skipped)
        if self._leader and self.scheduler.running:
            try:
                self.rebuild_wakeups(as_of)
            except Exception:
                self.log.exception("wakeups.rebuild_failed", as_of=as_of.isoformat())
        with self._swept:
            self.sweeps_run += 1
            self.last_sweep = result
            self._swept.notify_all()
        return result

    def wait_for_sweeps(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until this service has run `count` sweeps (tests, the demo)."""
        with self._swept:
            return self._swept.wait_for(lambda: self.sweeps_run >= count, timeout)

    def rebuild_wakeups(self, as_of: dt.date) -> list[dt.datetime]:
        judgments = self.app.compliance.check(as_of)
        policies = {v.id: v.reminders for v in self.app.catalogue.in_force(as_of)}
        now = require_aware(self._now())
        instants = [t for t in wakeup_instants(next_wakeups(judgments, policies, as_of, self.horizon_days),
                                               self.wakeup_time) if t > now]
        with self._state:
            if not (self._leader and self.scheduler.running):
                return []
            for job in self.scheduler.get_jobs():
                if job.id.startswith(WAKEUP_PREFIX):
                    job.remove()
            for t in instants:
                self.schedule_wakeup(t)
        self.log.info("wakeups.rebuilt", as_of=as_of.isoformat(), count=len(instants),
                      next=instants[0].isoformat() if instants else None)
        return instants

    def schedule_wakeup(self, instant: dt.datetime):
        """A one-off sweep at an aware instant (naive datetimes are refused)."""
        instant = require_aware(instant, "wake-up").astimezone(SHANGHAI)
        return self.scheduler.add_job(self._job_wakeup, DateTrigger(run_date=instant, timezone=SHANGHAI),
                                      args=(instant.date().isoformat(),), id=WAKEUP_PREFIX + instant.isoformat(),
                                      name=f"wake-up {instant.isoformat()}", replace_existing=True)

    def jobs(self) -> list:
        return self.scheduler.get_jobs()

    def _on_job_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            self.log.warning("job.missed", job=event.job_id, scheduled=str(event.scheduled_run_time))
        else:
            self.log.error("job.failed", job=event.job_id, error=repr(event.exception))
