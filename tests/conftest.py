"""Shared fixtures: real stores (SQLite in a temp dir; PostgreSQL where reachable), facts files."""
from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PG_URL = os.environ.get("METROLEX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


class FixedClock:
    """An aware clock the tests move by hand (commit times for known-at tests)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += dt.timedelta(**kw)


@pytest.fixture
def clock():
    return FixedClock(dt.datetime(2024, 1, 5, 2, 0, tzinfo=dt.timezone.utc))


def pg_available() -> str | None:
    try:
        import psycopg2
        conn = psycopg2.connect(PG_URL.replace("postgresql+psycopg2://", "postgresql://"), connect_timeout=3)
        conn.close()
        return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"PostgreSQL not reachable at {PG_URL}: {exc}".strip()


@pytest.fixture
def pg_database():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    reason = pg_available()
    if reason:
        pytest.skip(reason)
    import psycopg2
    name = "mx_" + uuid.uuid4().hex[:12]
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        admin.cursor().execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """Each store test runs on SQLite and on PostgreSQL (skipped with a reason where absent)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/metrolex.db"
    return request.getfixturevalue("pg_database")


@pytest.fixture
def make_app(clock):
    from adapters.bootstrap import bootstrap
    apps = []

    def make(url: str, engine: str = "reference"):
        app = bootstrap(store_url=url, engine=engine, clock=clock)
        apps.append(app)
        return app
    yield make
    for app in apps:
        app.close()


@pytest.fixture
def write_facts(tmp_path):
    counter = {"n": 0}

    def write(text: str, suffix: str = ".yaml") -> Path:
        counter["n"] += 1
        p = tmp_path / f"facts{counter['n']}{suffix}"
        p.write_text(text, encoding="utf-8")
        return p
    return write


@pytest.fixture
def contract_example() -> Path:
    return FIXTURES / "contract-example.yaml"
