"""Property-based fuzzing of the HTTP API against its own OpenAPI description (schemathesis).

A real SQLite store holds the contract's facts and the bundled 2023 plan (the `world` of
test_api.py); every operation of /openapi.json is called with generated requests, valid and
invalid, under a division token (the role that reaches every handler). For each request:

- the server does not fail: no 5xx and no exception out of the application
  (`not_a_server_error`), and a documented response matches its documented schema
  (`response_schema_conformance`);
- a POST that the API refuses (any 4xx) stores nothing: the rows of record_events, record_chain
  and facts are the same after the call as before it.

Two tests, one item per operation each:

- `test_no_server_error_and_no_write_on_a_refusal`: every phase of schemathesis: the
  description's examples, its coverage cases (boundaries, each kind of wrong value, unexpected
  methods, a missing token) and random generation;
- `test_requests_naming_known_things`: random generation only, where half of the examples name
  things the store has (task n of the 2023 plan, center c-icv, person p-001, …) in the path and
  the body, so that requests also get past the lookups to the validation and recording behind.

Examples per operation are bounded (METROLEX_FUZZ_EXAMPLES, default 25) so that the module runs
in the default `python -m pytest` run; set it higher to fuzz longer. Each run draws new examples;
METROLEX_FUZZ_SEED (printed with a failing example) repeats a run. With pytest 9.2 the items of
one test share a node id (schemathesis 4.32 names them the old way); `-k` matches their names,
e.g. `-k "facts"`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import random

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sqlalchemy import text  # noqa: E402

from adapters.api import CENTER_EVENTS, create_app  # noqa: E402
from adapters.bootstrap import bootstrap  # noqa: E402
from adapters.facts_file import read_facts_file  # noqa: E402
from adapters.plans import bundled_path, import_plan  # noqa: E402
from adapters.tokens import create_token  # noqa: E402
from tests.e2e.test_api import FACTS  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("METROLEX_FUZZ_EXAMPLES", "25"))
# A new seed each run; a failing example prints it (in the `fuzz_world` argument): run the module
# again with METROLEX_FUZZ_SEED set to it for the same requests in the same order.
SEED = int(os.environ.get("METROLEX_FUZZ_SEED") or random.SystemRandom().getrandbits(32))
RECORD_TABLES = ("record_events", "record_chain", "facts", "training")
# Today is 2024-01-05 in Shanghai, as in test_api.py.
NOW = dt.datetime(2024, 1, 5, 2, 0, tzinfo=dt.timezone.utc)

DAYS = st.dates(dt.date(2023, 1, 1), dt.date(2024, 12, 31)).map(dt.date.isoformat)
UNIT_NAMES = st.sampled_from(["市局计量处", "sh-zjy", "sh-pd-jls", "各区市场监管局"])
# Things the store has, and values it takes, by the name of a path or query parameter or of a
# field of the body.
KNOWN = {
    "year": st.just(2023),
    "n": st.integers(1, 17),
    "center": st.just("c-icv"),
    "unit": st.sampled_from(["sh-jlc", "sh-zjy", "sh-pd-jls"]),
    "subject": st.sampled_from(["p-001", "p-002", "c-icv", "sh-zjy", "sh-pd-jls"]),
    "person": st.sampled_from(["p-001", "p-002"]),
    "rule": st.sampled_from(["training-hours", "comparison-cycle", "center-annual-report", "task-milestone"]),
    "type": st.sampled_from(CENTER_EVENTS),
    "leads": st.lists(UNIT_NAMES, min_size=1, max_size=2, unique=True),
    "supporting": st.lists(UNIT_NAMES, max_size=2, unique=True),
    "date": DAYS,
    "due": DAYS,
    "as_of": DAYS,
}


class World:
    """The bootstrapped app, the FastAPI application over it and a division token."""

    def __init__(self, app, api, token: str) -> None:
        self.app, self.api, self.token = app, api, token

    def __repr__(self) -> str:  # Hypothesis prints the arguments of a failing example
        return f"World(the contract's facts and the 2023 plan; METROLEX_FUZZ_SEED={SEED})"


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory):
    """The store, the FastAPI application over it and a division token, once for the module."""
    from rules.calendar import WorkdayCalendar
    from rules.catalogue import Catalogue

    tmp = tmp_path_factory.mktemp("fuzz")
    app = bootstrap(store_url=f"sqlite:///{tmp}/fuzz.db", engine="reference", clock=lambda: NOW,
                    catalogue=Catalogue.bundled(), calendar=WorkdayCalendar.bundled())
    facts = tmp / "facts.yaml"
    facts.write_text(FACTS, encoding="utf-8")
    app.record.load(read_facts_file(facts))
    import_plan(app.record, bundled_path("shanghai-2023"))
    token = create_token(app.store, "division", None)
    yield World(app, create_app(app), token)
    app.close()


def load_schema(config: dict):
    """The API's own description, read from /openapi.json as a client reads it (no token).

    Read at collection, so that each operation is a test of its own, from the API over an empty
    in-memory store: the description does not depend on the data. The requests go to the
    application of `fuzz_world` (`case.call(app=...)`), never to this one.

    (`schemathesis.pytest.from_fixture` would defer this to a fixture, but schemathesis 4.32 reads
    and sets `Function._nodeid`, which pytest 9.2 no longer has.)"""
    described = bootstrap(store_url="sqlite://", engine="reference", clock=lambda: NOW)
    try:
        # An explicit configuration: no schemathesis.toml in the working directory changes the run.
        settings = schemathesis.Config.from_dict({"seed": SEED, **config})
        return schemathesis.openapi.from_asgi("/openapi.json", create_app(described), config=settings)
    finally:
        described.close()


# Every phase: examples, coverage cases and random generation, valid and invalid.
schema = load_schema({})
# Random generation only, where the test also names known things (schema examples and coverage
# cases cannot be combined with `@schema.given`).
generated = load_schema({"phases": {"examples": {"enabled": False}, "coverage": {"enabled": False},
                                    "stateful": {"enabled": False}}})


def record_digest(app) -> str:
    """A digest of every row of the record's tables, in a fixed order."""
    h = hashlib.sha256()
    with app.store.engine.connect() as conn:
        for table in RECORD_TABLES:
            h.update(f"\0{table}\0".encode())
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")):
                h.update(repr(tuple(row)).encode("utf-8", "backslashreplace"))
                h.update(b"\n")
    return h.hexdigest()


def name_known_things(case, data) -> None:
    """Point the path and query parameters and the body's fields at things the store has."""
    for where, values in (("path", case.path_parameters), ("query", case.query), ("body", case.body)):
        if not isinstance(values, dict):
            continue
        for name in list(values):
            if name in KNOWN and not (where == "body" and name in ("year", "n")):
                values[name] = data.draw(KNOWN[name], label=f"{where} {name}")


def check_call(case, fuzz_world) -> None:
    """Call the API with the division's token; no server error, a documented response as
    documented, and nothing stored on a refused POST."""
    app, api, token = fuzz_world.app, fuzz_world.api, fuzz_world.token
    is_post = case.method.upper() == "POST"
    before = record_digest(app) if is_post else None
    response = case.call(app=api, headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error,
                                             schemathesis.checks.response_schema_conformance])
    if is_post and 400 <= response.status_code < 500:
        assert record_digest(app) == before, (
            f"POST {case.formatted_path} was refused with {response.status_code} but the record "
            f"changed\nrequest: {case.as_curl_command(headers={'Authorization': 'Bearer …'})}\n"
            f"response: {response.text[:500]}")


SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@schema.parametrize()
@SETTINGS
def test_no_server_error_and_no_write_on_a_refusal(case, fuzz_world):
    check_call(case, fuzz_world)


@generated.parametrize()
@generated.given(known=st.booleans(), data=st.data())
@SETTINGS
def test_requests_naming_known_things(case, known, data, fuzz_world):
    if known:
        name_known_things(case, data)
    check_call(case, fuzz_world)
