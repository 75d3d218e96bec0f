"""The scheduler against real stores: SQLite files and PostgreSQL databases, threads and processes.

No mocks: real APScheduler, real stores, real subprocesses killed with SIGKILL. Each PostgreSQL
test gets a database of its own (created and dropped here) on METROLEX_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/test) and is skipped, saying why, when it is unreachable.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import functools
import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from apscheduler.jobstores.memory import MemoryJobStore
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from adapters import audit
from adapters.bootstrap import bootstrap
from adapters.facts_file import read_facts_file
from adapters.scheduling import LEADER_LOCK_KEY, FileLeaderLock, PostgresLeaderLock, SchedulerService
from rules.calendar import WorkdayCalendar
from rules.catalogue import Catalogue
from scheduler.jobs import NaiveDatetimeError, at_shanghai, next_wakeups

SHANGHAI = ZoneInfo("Asia/Shanghai")
D = dt.date.fromisoformat
FIXED = dt.datetime(2024, 1, 31, 9, 0, tzinfo=SHANGHAI)
PG = os.environ.get("METROLEX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[2]

FACTS = """\
jurisdiction: shanghai
units:
  - {id: sh-jlc, name: 市局计量处, kind: regulator}
  - {id: sh-zjy, name: 上海市质量监督检验技术研究院, kind: institute, lead_lab_since: 2023-01-01}
  - {id: sh-pd-jls, name: 浦东新区计量所, kind: district-institute, lead_lab_since: 2020-01-01, supervisor: sh-jlc}
people:
  - {id: p-001, name: 王芳, unit: sh-pd-jls, duties: [mandatory-verification], since: 2022-05-01}
  - {id: p-002, name: 赵磊, unit: sh-zjy, duties: [mandatory-verification], since: 2021-09-01}
centers:
  - {id: c-icv, name: 上海市智能网联汽车产业计量测试中心, host: sh-zjy}
events:
  - {id: ev-t1, type: training-recorded, date: 2023-03-02, person: p-001, hours: 8, off_job: true}
  - {type: center-approved, date: 2023-06-01, center: c-icv, construction_years: 2}
  - {id: ev-me1, type: center-major-event, date: 2023-09-28, center: c-icv, summary: 主任变更}
  - {id: ev-ro1, type: rectification-ordered, date: 2023-10-09, center: c-icv, deadline: 2023-11-15}
"""

# What is overdue as of 2024-01-31 for FACTS, and the latest step of each (the catch-up issues no stale steps).
OVERDUE_AT_2024_01_31 = {
    "center-annual-report|v1|c-icv|2023|-|overdue|4",           # due 2023-11-30, every 14 days
    "center-exchange-activities|v1|c-icv|2023|-|overdue|0",     # due 2023-12-31, no repeats
    "center-major-event|v1|c-icv|2023-09-28|ev-me1|overdue|15",  # due 2023-10-11, every 7 days
    "center-rectification|v1|c-icv|2023-10-09|ev-ro1|overdue|10",  # due 2023-11-15, every 7 days
    "training-hours|v1|p-001|2023|-|overdue|0",
    "training-hours|v1|p-002|2023|-|overdue|0",
}

WORKER = textwrap.dedent("""
    import datetime as dt, json, os, sys, time
    from zoneinfo import ZoneInfo
    from adapters.logging_setup import configure_logging
    configure_logging(level="WARNING")  # stderr; stdout is the protocol
    from adapters.bootstrap import bootstrap
    from adapters.scheduling import SchedulerService
    mode, url, clock = sys.argv[1], sys.argv[2], dt.datetime.fromisoformat(sys.argv[3])
    app = bootstrap(store_url=url, engine="reference", clock=lambda: clock)
    if mode == "sweep-dates":   # wait for the go file, then sweep each date
        go, dates = sys.argv[4], sys.argv[5].split(",")
        svc = SchedulerService(app)
        print("ready", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.002)
        issued = []
        for d in dates:
            issued += [p.key for p in svc.run_sweep(dt.date.fromisoformat(d), by="worker").issued]
        print(json.dumps(issued), flush=True)
    elif mode == "sweep-range":
        svc = SchedulerService(app)
        day, end = dt.date.fromisoformat(sys.argv[4]), dt.date.fromisoformat(sys.argv[5])
        while day <= end:
            r = svc.run_sweep(day, by="worker")
            print(day.isoformat(), len(r.issued), flush=True)
            day += dt.timedelta(days=1)
    elif mode == "lead":
        svc = SchedulerService(app, poll_seconds=float(sys.argv[4])).start()
        print("leader" if svc.is_leader else "standby", flush=True)
        while True:
            time.sleep(1)
""")


# -- stores -------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _rules():
    """Parsed once for the module (they are read-only): parsing them is most of a bootstrap."""
    return Catalogue.bundled(), WorkdayCalendar.bundled()


def make_app(url: str, clock: dt.datetime = FIXED):
    catalogue, calendar = _rules()
    return bootstrap(store_url=url, engine="reference", clock=lambda: clock, catalogue=catalogue, calendar=calendar)


@pytest.fixture
def facts_path(tmp_path) -> Path:
    p = tmp_path / "facts.yaml"
    p.write_text(FACTS, encoding="utf-8")
    return p


@pytest.fixture
def pg_url():
    import psycopg2
    try:
        admin = psycopg2.connect(PG, connect_timeout=3)
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG}: {' '.join(str(exc).split())}")
    admin.autocommit = True
    name = f"metrolex_t_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metrolex.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def apps():
    made = []

    def make(url: str, clock: dt.datetime = FIXED):
        made.append(make_app(url, clock))
        return made[-1]
    yield make
    for app in made:
        app.close()


@pytest.fixture
def services():
    made: list[SchedulerService] = []

    def make(app, **kw) -> SchedulerService:
        made.append(SchedulerService(app, **kw))
        return made[-1]
    yield make
    for svc in made:
        svc.shutdown()


@pytest.fixture
def procs():
    made: list[subprocess.Popen] = []

    def spawn(*args: str) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", WORKER, *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        made.append(p)
        return p
    yield spawn
    for p in made:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        for stream in (p.stdout, p.stderr):
            stream.close()


def notice_keys(app) -> list[str]:
    with app.store.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT key FROM notices ORDER BY key"))]


def assert_each_notice_once(app) -> int:
    with app.store.engine.connect() as conn:
        dupes = conn.execute(text("SELECT key, count(*) FROM notices GROUP BY key HAVING count(*) > 1")).all()
        rows = conn.execute(text("SELECT count(*) FROM notices")).scalar()
        events, aggregates = conn.execute(text(
            "SELECT count(*), count(DISTINCT originator_id) FROM record_events "
            "WHERE topic = 'domain.notice:Notice.Issued'")).one()
        sweeps = conn.execute(text("SELECT count(*), coalesce(sum(issued), 0) FROM sweeps")).one()
    assert dupes == []
    assert events == rows, f"{events} Notice events in the record for {rows} notices rows"
    assert aggregates == rows
    assert sweeps[1] == rows, "the sweeps' own counts of issued notices add up to more than were stored"
    result = audit.verify(app.store)
    assert result.ok, result.problem
    return rows


def clean_run(tmp_path: Path, facts: Path, days: list[dt.date]) -> list[str]:
    """The notices one scheduler alone on a fresh store issues sweeping `days` in order."""
    path = tmp_path / f"clean-{uuid.uuid4().hex[:8]}.db"
    app = make_app(f"sqlite:///{path}")
    try:
        app.record.load(read_facts_file(facts))
        svc = SchedulerService(app)
        for day in days:
            svc.run_sweep(day)
        return notice_keys(app)
    finally:
        app.close()


def wait_until(predicate, timeout: float, step: float = 0.02) -> float | None:
    """Seconds it took for predicate() to hold, or None after timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def days(start: str, end: str) -> list[dt.date]:
    a, b = D(start), D(end)
    return [a + dt.timedelta(days=i) for i in range((b - a).days + 1)]


# -- (a) start-up catch-up on SQLite ----------------------------------------------------------------------
def test_the_start_up_catch_up_sweep_issues_the_overdue_notices_due(tmp_path, facts_path, apps, services):
    url = f"sqlite:///{tmp_path / 'metrolex.db'}"
    app = apps(url)
    app.record.load(read_facts_file(facts_path))
    svc = services(app).start()
    assert svc.is_leader  # alone on its store
    assert svc.wait_for_sweeps(1, timeout=20), "no catch-up sweep ran at start-up"
    assert svc.last_sweep.as_of == "2024-01-31"  # today in Shanghai by the app's clock
    assert set(notice_keys(app)) == OVERDUE_AT_2024_01_31
    assert assert_each_notice_once(app) == 6
    with app.store.engine.connect() as conn:
        by = conn.execute(text("SELECT by FROM sweeps")).scalars().all()
    assert len(by) == 1 and by[0].startswith("scheduler:catch-up")

    # the jobs: a daily sweep at 08:30 Shanghai and a delivery job, with the hazard-proof defaults
    jobs = {j.id: j for j in svc.jobs()}
    assert {"daily-sweep", "delivery"} <= set(jobs)
    daily = jobs["daily-sweep"]
    assert daily.next_run_time.tzinfo is not None and str(daily.next_run_time.tzinfo) == "Asia/Shanghai"
    assert (daily.next_run_time.hour, daily.next_run_time.minute) == (8, 30)
    for job in jobs.values():
        assert (job.coalesce, job.misfire_grace_time, job.max_instances) == (True, 24 * 3600, 1)
        assert callable(job.func) and not isinstance(job.func, str)
    assert str(svc.scheduler.timezone) == "Asia/Shanghai"
    assert isinstance(svc.jobstore, MemoryJobStore) and svc.scheduler._jobstores["default"] is svc.jobstore
    # the daily sweep hands what checks kept out of the collector's walks back to it (gcpause)
    import gc
    app.compliance.check(dt.date(2024, 1, 31))
    assert gc.get_freeze_count() > 0  # a check kept what it left alive
    daily.func(*daily.args)
    assert gc.get_freeze_count() == 0
    svc.shutdown()

    # a restart catches up again and finds nothing new
    again = services(apps(url)).start()
    assert again.wait_for_sweeps(1, timeout=20)
    assert again.last_sweep.issued == [] and again.last_sweep.already == 6
    assert assert_each_notice_once(app) == 6


def test_wakeups_are_rebuilt_after_a_sweep_at_aware_shanghai_instants(tmp_path, apps, services):
    """On the real calendar: a rectification due in 20 days wakes the scheduler on each date the
    policy plans something new (deadline - 14, - 3, + 1, then weekly), at 08:30 Shanghai."""
    now = dt.datetime.now(SHANGHAI)
    today = now.date()
    deadline = today + dt.timedelta(days=20)
    facts = tmp_path / "relative.yaml"
    facts.write_text(textwrap.dedent(f"""\
        jurisdiction: shanghai
        units:
          - {{id: sh-jlc, name: 市局计量处, kind: regulator}}
          - {{id: sh-zjy, name: 上海市质量监督检验技术研究院, kind: institute}}
        centers:
          - {{id: c-icv, name: 上海市智能网联汽车产业计量测试中心, host: sh-zjy}}
        events:
          - {{type: center-approved, date: {today - dt.timedelta(days=100)}, center: c-icv, construction_years: 2}}
          - {{id: ev-ro1, type: rectification-ordered, date: {today - dt.timedelta(days=10)}, center: c-icv, deadline: {deadline}}}
        """), encoding="utf-8")
    app = apps(f"sqlite:///{tmp_path / 'metrolex.db'}", clock=now)
    app.record.load(read_facts_file(facts))
    svc = services(app).start()
    assert svc.wait_for_sweeps(1, timeout=20)
    assert wait_until(lambda: any(j.id.startswith("wakeup:") for j in svc.jobs()), 5) is not None

    wakeups = sorted(j.next_run_time for j in svc.jobs() if j.id.startswith("wakeup:"))
    expected_days = [deadline + dt.timedelta(days=k) for k in (-14, -3, 1, 8, 15, 22, 29, 36)
                     if deadline + dt.timedelta(days=k) <= today + dt.timedelta(days=60)]
    policies = {v.id: v.reminders for v in app.catalogue.in_force(today)}
    planned = next_wakeups(app.compliance.check(today), policies, today, 60)
    assert set(expected_days) <= set(planned)  # other obligations of the center add dates of their own
    assert all(today < d <= today + dt.timedelta(days=60) for d in planned)
    assert wakeups == [at_shanghai(d, "08:30") for d in planned]
    for t in wakeups:
        assert t.tzinfo is not None and str(t.tzinfo) == "Asia/Shanghai" and t.utcoffset() == dt.timedelta(hours=8)
        assert t > now

    # rebuilt, not accumulated: another sweep leaves the same set of wake-ups
    svc.run_sweep(today)
    assert sorted(j.next_run_time for j in svc.jobs() if j.id.startswith("wakeup:")) == wakeups


def test_naive_datetimes_are_refused_by_the_scheduler(tmp_path, apps, services):
    svc = services(apps(f"sqlite:///{tmp_path / 'metrolex.db'}")).start()
    with pytest.raises(NaiveDatetimeError):
        svc.schedule_wakeup(dt.datetime(2030, 1, 1, 8, 30))
    with pytest.raises(NaiveDatetimeError):
        svc.run_sweep(dt.datetime(2024, 1, 31, 9, 0))
    assert not [j for j in svc.jobs() if j.id.startswith("wakeup:")]


def test_a_wakeup_missed_by_hours_still_runs_but_not_one_missed_by_more_than_a_day(tmp_path, apps, services):
    """APScheduler's default grace of 1 s would silently skip a wake-up after a pause or a busy
    spell; ours is 24 h."""
    svc = services(apps(f"sqlite:///{tmp_path / 'metrolex.db'}")).start()
    assert svc.wait_for_sweeps(1, timeout=20)
    seen: dict[str, int] = {}
    done = threading.Event()

    def listen(event):
        if event.job_id.startswith("wakeup:"):
            seen[event.job_id] = event.code
            if len(seen) == 2:
                done.set()
    svc.scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
    now = dt.datetime.now(SHANGHAI)
    late = svc.schedule_wakeup(now - dt.timedelta(hours=3))
    stale = svc.schedule_wakeup(now - dt.timedelta(hours=25))
    assert done.wait(10), f"the scheduler reported only {seen}"
    assert seen == {late.id: EVENT_JOB_EXECUTED, stale.id: EVENT_JOB_MISSED}


def test_each_scheduler_has_a_job_store_of_its_own(tmp_path, apps, services):
    url = f"sqlite:///{tmp_path / 'metrolex.db'}"
    a, b = services(apps(url)), services(apps(url))
    assert isinstance(a.jobstore, MemoryJobStore) and isinstance(b.jobstore, MemoryJobStore)
    assert a.jobstore is not b.jobstore


def test_the_leader_delivers_the_outbox_by_webhook_on_its_own(tmp_path, apps, services):
    """The delivery job (adapters.delivery, when installed) runs on the leader's schedule."""
    if importlib.util.find_spec("adapters.delivery") is None:
        pytest.skip("adapters.delivery is not installed yet: the scheduler logs delivery.unavailable")
    import http.server
    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        facts = tmp_path / "facts.yaml"
        facts.write_text(FACTS.replace(
            "kind: institute, lead_lab_since: 2023-01-01}",
            f"kind: institute, lead_lab_since: 2023-01-01, webhook: 'http://127.0.0.1:{server.server_port}/hook'}}"),
            encoding="utf-8")
        app = apps(f"sqlite:///{tmp_path / 'metrolex.db'}")
        app.record.load(read_facts_file(facts))
        svc = services(app, delivery_seconds=0.2).start()
        assert svc.wait_for_sweeps(1, timeout=20)
        with app.store.engine.connect() as conn:
            expected = set(conn.execute(text("SELECT notice_key FROM outbox WHERE channel = 'webhook'")).scalars())
        assert expected and expected <= OVERDUE_AT_2024_01_31  # the center's host answers for the center

        def all_delivered() -> bool:
            with app.store.engine.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM outbox WHERE status <> 'delivered'")).scalar() == 0
        assert wait_until(all_delivered, timeout=15, step=0.1) is not None, "the delivery job did not empty the outbox"
        assert {r["key"] for r in received} == expected
    finally:
        server.shutdown()
        server.server_close()


# -- (b) concurrent sweeps ----------------------------------------------------------------------------------
def test_concurrent_sweeps_in_threads_and_processes_issue_each_notice_once(store_url, facts_path, tmp_path,
                                                                           apps, services, procs):
    first = apps(store_url)
    first.record.load(read_facts_file(facts_path))
    sweepers = [services(first), services(apps(store_url))]
    issued: list[list[str]] = [[], []]
    thread_days = ["2023-10-12", "2023-11-16", "2023-12-01", "2023-12-07"]
    for day in thread_days:
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def sweep(i: int, day: str = day) -> None:
            try:
                barrier.wait(timeout=10)
                issued[i] += [p.key for p in sweepers[i].run_sweep(D(day)).issued]
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        threads = [threading.Thread(target=sweep, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors

    process_days = ["2024-01-04", "2024-01-11", "2024-01-12", "2024-01-26", "2024-01-31"]
    go = tmp_path / "go"
    workers = [procs("sweep-dates", store_url, FIXED.isoformat(), str(go), ",".join(process_days)) for _ in range(2)]
    for w in workers:
        assert w.stdout.readline().strip() == "ready", w.stderr.read()
    go.touch()
    for w in workers:
        out, err = w.communicate(timeout=60)
        assert w.returncode == 0, err
        issued.append(json.loads(out.strip().splitlines()[-1]))

    everything = [k for keys in issued for k in keys]
    assert len(everything) == len(set(everything)), "a notice was reported issued by two sweepers"
    assert sorted(everything) == notice_keys(first)
    assert assert_each_notice_once(first) == len(everything)
    # none lost: the same notices as one scheduler alone sweeping the same dates
    assert notice_keys(first) == clean_run(tmp_path, facts_path, [D(d) for d in thread_days + process_days])


# -- (c) kill and restart -----------------------------------------------------------------------------------
KILL_RANGE = ("2023-10-05", "2024-01-15")


@pytest.fixture(scope="module")
def clean_range_keys(tmp_path_factory) -> list[str]:
    tmp = tmp_path_factory.mktemp("clean")
    facts = tmp / "facts.yaml"
    facts.write_text(FACTS, encoding="utf-8")
    return clean_run(tmp, facts, days(*KILL_RANGE))


def test_a_scheduler_killed_mid_range_and_a_new_one_issue_every_notice_once(store_url, facts_path, apps, services,
                                                                           procs, clean_range_keys):
    app = apps(store_url)
    app.record.load(read_facts_file(facts_path))
    worker = procs("sweep-range", store_url, FIXED.isoformat(), *KILL_RANGE)
    total = len(days(*KILL_RANGE))
    for _ in range(total // 3):
        line = worker.stdout.readline()
        assert line, f"the worker ended early: {worker.stderr.read()}"
    assert worker.poll() is None, "the worker finished before it could be killed"
    time.sleep(random.uniform(0, 0.02))  # anywhere in the next day's sweep: planning, or inside its transaction
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(timeout=10) == -signal.SIGKILL

    after_kill = notice_keys(app)
    assert 0 < len(after_kill) < len(clean_range_keys), "the kill did not land mid-way"
    assert_each_notice_once(app)

    restarted = services(apps(store_url))
    for day in days(*KILL_RANGE):
        restarted.run_sweep(day)
    keys = notice_keys(app)
    assert set(after_kill) <= set(keys)
    assert keys == clean_range_keys, (sorted(set(clean_range_keys) - set(keys)), sorted(set(keys) - set(clean_range_keys)))
    assert assert_each_notice_once(app) == len(clean_range_keys)
    assert audit.verify(app.store).ok


# -- (d) leader election ------------------------------------------------------------------------------------
def test_exactly_one_scheduler_leads_and_the_other_takes_over_when_it_shuts_down(store_url, facts_path, apps, services):
    first = apps(store_url)
    first.record.load(read_facts_file(facts_path))
    a = services(first, poll_seconds=0.2).start()
    b = services(apps(store_url), poll_seconds=0.2).start()
    assert [a.is_leader, b.is_leader] == [True, False]
    time.sleep(0.7)  # several polls later, still one
    assert [a.is_leader, b.is_leader] == [True, False]
    assert b.jobs() == [] and {"daily-sweep", "delivery"} <= {j.id for j in a.jobs()}
    assert a.wait_for_sweeps(1, timeout=20) and b.sweeps_run == 0

    a.shutdown()
    took = wait_until(lambda: b.is_leader, timeout=5)
    assert took is not None, "the standby did not take over within 5 s"
    assert not a.is_leader
    assert b.wait_for_sweeps(1, timeout=20), "the new leader ran no catch-up sweep"
    assert {"daily-sweep", "delivery"} <= {j.id for j in b.jobs()}
    assert assert_each_notice_once(first) == 6


def test_a_standby_takes_over_from_a_leader_process_killed_with_sigkill(store_url, apps, services, procs):
    app = apps(store_url)
    leader = procs("lead", store_url, FIXED.isoformat(), "0.2")
    assert leader.stdout.readline().strip() == "leader", leader.stderr.read()
    standby = services(app, poll_seconds=0.2).start()
    time.sleep(0.5)
    assert not standby.is_leader
    leader.send_signal(signal.SIGKILL)
    leader.wait(timeout=10)
    took = wait_until(lambda: standby.is_leader, timeout=5)
    assert took is not None, "the standby did not take over within 5 s of the leader's death"


@pytest.mark.postgres
def test_a_leader_whose_lock_connection_dies_notices_and_one_leader_remains(pg_url, apps, services):
    """The server ends the leader's lock session (as when its connection drops): the leader must
    notice at its next check, and afterwards exactly one of the two holds the lock — either the
    standby, or the old leader on a new connection."""
    a = services(apps(pg_url), poll_seconds=0.2).start()
    b = services(apps(pg_url), poll_seconds=0.2).start()
    assert [a.is_leader, b.is_leader] == [True, False]
    assert isinstance(a.lock, PostgresLeaderLock)
    pid = a.lock.backend_pid
    engine = create_engine(make_url(pg_url).set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT")

    def holders() -> list[int]:
        with engine.connect() as conn:
            return list(conn.execute(text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = :k "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
                {"k": LEADER_LOCK_KEY}).scalars())
    try:
        assert holders() == [pid]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        noticed = wait_until(lambda: b.is_leader or (a.is_leader and a.lock.backend_pid not in (None, pid)), 5)
        assert noticed is not None, "the leader did not notice that its lock session was gone"
        time.sleep(0.5)
        assert [a.is_leader, b.is_leader].count(True) == 1
        leader, standby = (a, b) if a.is_leader else (b, a)
        assert holders() == [leader.lock.backend_pid]
        assert standby.jobs() == [] and {"daily-sweep", "delivery"} <= {j.id for j in leader.jobs()}
    finally:
        engine.dispose()


def test_the_sqlite_leader_lock_is_a_flock_beside_the_database(tmp_path, apps, services):
    db = tmp_path / "metrolex.db"
    svc = services(apps(f"sqlite:///{db}")).start()
    assert isinstance(svc.lock, FileLeaderLock) and svc.lock.path == Path(f"{db}.scheduler.lock")
    with open(svc.lock.path, "a+b") as f:
        with pytest.raises(OSError):
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        svc.shutdown()
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # released


# -- serve ---------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_the_api_and_the_scheduler_and_stops_cleanly_on_sigterm(tmp_path):
    db = tmp_path / "metrolex.db"
    port = _free_port()
    metrolex = [sys.executable, "-c", "import sys; from adapters.cli import main; sys.exit(main())"]
    proc = subprocess.Popen([*metrolex, "--store", f"sqlite:///{db}", "--engine", "reference", "serve",
                             "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if importlib.util.find_spec("adapters.api") is None:
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 1, err
            assert "adapters.api" in err and "nothing was started" in err
            return
        import httpx
        up = wait_until(lambda: _health(port), timeout=30, step=0.1)
        assert up is not None, "the API did not answer /api/v1/health"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # JSON lines only
        events = [line.get("event") for line in lines]
        assert "scheduler.leader.acquired" in events and "scheduler.stopped" in events
        with open(f"{db}.scheduler.lock", "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # the leadership was given up
        del httpx
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def _health(port: int) -> bool:
    import httpx
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
