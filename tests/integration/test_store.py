"""The record on a real store — one shared test case, run on SQLite and on PostgreSQL."""
from __future__ import annotations

import hashlib
from uuid import UUID

import pytest
from sqlalchemy import text

from adapters import audit
from adapters.facts_file import FileError, read_facts_file


def _snapshot(app) -> str:
    """A digest of every stored row of the record's tables (to prove nothing changed)."""
    h = hashlib.sha256()
    with app.store.engine.connect() as conn:
        for table in ("record_events", "record_chain", "facts", "training"):
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")):
                h.update(repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)).encode())
    return h.hexdigest()


def test_a_contract_file_loads_and_loading_it_again_records_nothing(store_url, make_app, contract_example):
    app = make_app(store_url)
    first = app.record.load(read_facts_file(contract_example))
    assert first.recorded == 24 and first.repeated == 0
    before = _snapshot(app)
    second = app.record.load(read_facts_file(contract_example))
    assert second.recorded == 0 and second.repeated == 24
    assert _snapshot(app) == before
    assert audit.verify(app.store).ok


BAD_AFTER_GOOD = """units:
  - {id: u1, name: 单位, kind: institute, lead_lab_since: 2023-01-01}
events:
  - {id: ok-1, type: comparison-organized, date: 2023-06-10, unit: u1}
  - {id: bad-1, type: comparison-organized, date: 2023-06-11, unit: nobody}
"""


def test_a_bad_record_after_good_ones_stores_nothing(store_url, make_app, write_facts, contract_example):
    app = make_app(store_url)
    app.record.load(read_facts_file(contract_example))
    before = _snapshot(app)
    with pytest.raises(FileError) as err:
        app.record.load(read_facts_file(write_facts(BAD_AFTER_GOOD)))
    assert err.value.line == 5 and err.value.field == "unit" and "unknown unit" in err.value.message
    assert _snapshot(app) == before


def test_the_same_id_with_other_content_is_refused(store_url, make_app, write_facts, contract_example):
    app = make_app(store_url)
    app.record.load(read_facts_file(contract_example))
    before = _snapshot(app)
    changed = "events:\n  - {id: ev-t1, type: training-recorded, date: 2023-03-02, person: p-001, hours: 9, off_job: true}\n"
    with pytest.raises(FileError) as err:
        app.record.load(read_facts_file(write_facts(changed)))
    assert "already recorded with different content" in err.value.message
    assert _snapshot(app) == before


def test_answers_must_name_an_event_of_the_right_kind_and_center(store_url, make_app, write_facts, contract_example):
    app = make_app(store_url)
    app.record.load(read_facts_file(contract_example))
    wrong = "events:\n  - {type: center-major-event-notified, date: 2023-10-09, center: c-icv, refers_to: ev-ro1}\n"
    with pytest.raises(FileError) as err:
        app.record.load(read_facts_file(write_facts(wrong)))
    assert err.value.field == "refers_to"


def test_a_retraction_in_a_later_file_hides_the_fact_for_every_as_of_date(store_url, make_app, write_facts,
                                                                           contract_example, clock):
    import datetime as dt
    app = make_app(store_url)
    app.record.load(read_facts_file(contract_example))
    clock.advance(days=1)
    app.record.load(read_facts_file(write_facts(
        "events:\n  - {id: r-t1, type: event-retracted, date: 2024-01-06, retracts: ev-t1, reason: 录入错误}\n")))
    j = [j for j in app.compliance.check(dt.date(2023, 12, 31)) if j.rule == "training-hours" and j.subject == "p-001"][0]
    assert j.values["total"] == 0
    known_before = "2024-01-05T12:00:00+00:00"
    from adapters.timeparse import parse_known_at
    old = [j for j in app.compliance.check(dt.date(2023, 12, 31), parse_known_at(known_before))
           if j.rule == "training-hours" and j.subject == "p-001"][0]
    assert old.values["total"] == 8


def test_the_chain_detects_a_changed_byte(store_url, make_app, contract_example):
    app = make_app(store_url)
    app.record.load(read_facts_file(contract_example))
    assert audit.verify(app.store).ok
    with app.store.engine.begin() as conn:
        if not app.store.is_sqlite:
            conn.execute(text("ALTER TABLE record_events DISABLE TRIGGER metrolex_append_only"))
        state = bytearray(conn.execute(text("SELECT state FROM record_events WHERE id = 4")).scalar())
        state[len(state) // 2] ^= 0x01  # one bit of one byte
        conn.execute(text("UPDATE record_events SET state = :s WHERE id = 4"), {"s": bytes(state)})
    result = audit.verify(app.store)
    assert not result.ok and result.first_bad == 4


def test_the_chain_detects_a_deleted_event(store_url, make_app, contract_example):
    app = make_app(store_url)
    app.record.load(read_facts_file(contract_example))
    with app.store.engine.begin() as conn:
        if not app.store.is_sqlite:
            conn.execute(text("ALTER TABLE record_events DISABLE TRIGGER metrolex_append_only"))
        conn.execute(text("DELETE FROM record_events WHERE id = 7"))
    result = audit.verify(app.store)
    assert not result.ok and result.first_bad == 7


def test_a_seal_verifies_and_a_rewritten_history_does_not(store_url, make_app, contract_example, write_facts):
    app = make_app(store_url)
    app.record.load(read_facts_file(contract_example))
    head = audit.seal(app.store, "now")
    app.record.load(read_facts_file(write_facts(
        "events:\n  - {type: exchange-activity-held, date: 2023-09-01, center: c-icv}\n")))
    assert audit.verify_against(app.store, head).ok  # the record grew; its sealed prefix is intact
    forged = dict(head, root_hash="00" * 32)
    assert not audit.verify_against(app.store, forged).ok


@pytest.mark.postgres
def test_postgresql_refuses_update_and_delete_on_the_record(pg_database, make_app, contract_example):
    app = make_app(pg_database)
    app.record.load(read_facts_file(contract_example))
    for statement in ("UPDATE record_events SET topic = 'x' WHERE id = 1", "DELETE FROM facts WHERE seq = 1",
                      "UPDATE record_chain SET link = 'x'", "DELETE FROM training"):
        with pytest.raises(Exception) as err:
            with app.store.engine.begin() as conn:
                conn.execute(text(statement))
        assert "append-only" in str(err.value)


def test_aggregates_replay_from_the_store(store_url, make_app, contract_example):
    from domain.center import Center
    app = make_app(store_url)
    app.record.load(read_facts_file(contract_example))
    center = app.store.app.repository.get(Center.create_id("c-icv"))
    assert center.revoked_on == "2026-09-01" and center.major_events == ["ev-me1"]


FRESH = """units:
  - {id: u9, name: 新单位, kind: institute, lead_lab_since: 2023-01-01, email: u9@example.org}
people:
  - {id: p9, name: 新人, unit: u9, duties: [type-evaluation], since: 2022-05-01}
events:
  - {id: tr9, type: training-recorded, date: 2023-03-02, person: p9, hours: 7.5, off_job: true, course: 课程}
  - {id: tr10, type: training-recorded, date: 2023-04-02, person: p9, hours: 2, off_job: false}
"""


def test_new_aggregates_stored_from_their_creation_event_replay_like_built_ones(store_url, make_app, write_facts):
    """Creations that nothing else in the file touches skip building the aggregate: what is
    stored must replay into the same aggregate as building it would give, with the same topic."""
    from adapters.record import _creation, facts_of
    from domain.person import Person
    from domain.unit import Unit
    app = make_app(store_url)
    doc = read_facts_file(write_facts(FRESH))
    app.record.load(doc)
    built = {}
    for loc in facts_of(doc):
        cls, kwargs = _creation(loc.fact, loc.jurisdiction)
        built[loc.fact.id] = cls(**kwargs)
    for cls, key, fact_id in ((Unit, "u9", "unit:u9"), (Person, "p9", "person:p9")):
        stored = app.store.app.repository.get(cls.create_id(key))
        expected = built[fact_id]
        assert type(stored) is cls and stored.version == 1
        mine = {k: v for k, v in vars(stored).items() if k not in ("_created_on", "_modified_on", "_pending_events")}
        theirs = {k: v for k, v in vars(expected).items() if k not in ("_created_on", "_modified_on", "_pending_events")}
        assert mine == theirs
        topic = app.store.app.mapper.to_stored_event(expected.collect_events()[0]).topic
        with app.store.engine.connect() as conn:
            stored_topic = conn.execute(text("SELECT topic FROM record_events ORDER BY id")).all()
        assert (topic,) in stored_topic
    # The file's training records are one register event; each is still its own fact.
    from domain.training import TrainingRegister
    with app.store.engine.connect() as conn:
        aggregate_ids = {r[0] for r in conn.execute(text("SELECT aggregate FROM training"))}
    assert len(aggregate_ids) == 1
    import uuid
    register = app.store.app.repository.get(uuid.UUID(aggregate_ids.pop()))
    assert type(register) is TrainingRegister and register.size == 2
    assert register.facts == {"tr9": built["tr9"].facts["tr9"], "tr10": built["tr10"].facts["tr10"]}
    assert audit.verify(app.store).ok


def test_creation_writes_the_bytes_the_transcoder_writes_for_the_whole_state(store_url, make_app, monkeypatch):
    """Store.creation writes the timestamp and topic from a template and encodes only the
    arguments: the same id, topic and bytes as the transcoder's encoding of the whole state, at
    the same timestamp (a person, a unit); and with a template that cannot be made, the same."""
    import datetime as dt
    from adapters import store as store_module
    from adapters.record import _creation
    from adapters.store import _created_event_class, _topic
    from domain.facts import parse_registration, person_fact
    app = make_app(store_url)
    transcoder = app.store.app.mapper.transcoder
    when = dt.datetime(2026, 11, 24, 9, 30, 0, 120000, tzinfo=dt.timezone.utc)
    facts = [person_fact({"id": "p-7", "name": "王伟", "unit": "u-1", "duties": ["mandatory-verification", "other"],
                          "since": "2020-01-02", "email": "w@example.org"}),
             person_fact({"id": 'p "8"', "name": "𠮷\u2028", "unit": "u-1", "duties": []}),
             parse_registration("units", {"id": "u-1", "name": "所", "kind": "lab", "webhook": "http://x/"}, "shanghai")]
    for fact in facts:
        cls, kwargs = _creation(fact, "shanghai")
        event_cls = _created_event_class(cls)
        monkeypatch.setattr(event_cls, "create_timestamp", staticmethod(lambda: when))
        whole = transcoder.encode({"timestamp": transcoder.transcoded(when), "originator_topic": _topic(cls), **kwargs})
        assert app.store.creation(cls, **kwargs) == (cls.create_id(kwargs["key"]), _topic(event_cls), whole)
    monkeypatch.setattr(store_module, "creation_template", lambda transcoder, topic: False)
    app.store._creation_templates.clear()
    assert app.store.creation(cls, **kwargs)[2] == whole


def test_a_record_filed_in_a_register_is_retracted_on_its_own(store_url, make_app, write_facts):
    from adapters.compliance import Filters
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(FRESH)))
    retract = "events:\n  - {id: r1, type: event-retracted, date: 2023-05-01, retracts: tr9}\n"
    app.record.load(read_facts_file(write_facts(retract)))
    rows = {r["fact_id"] for r in app.record.fact_rows()}
    assert {"tr9", "tr10", "r1"} <= rows
    js = app.compliance.check(__import__("datetime").date(2024, 1, 31), filters=Filters(subjects={"p9"}, rules={"training-hours"}))
    assert [j.facts for j in js if j.period == "2023"] == [[]]
    with pytest.raises(FileError) as err:
        app.record.load(read_facts_file(write_facts(retract.replace("r1", "r2"))))
    assert "already retracted" in err.value.message
    # A record retracted in its own file is stored on its own aggregate, and the retraction holds.
    both = ("events:\n  - {id: tr11, type: training-recorded, date: 2023-06-02, person: p9, hours: 20, off_job: true}\n"
            "  - {id: tr12, type: training-recorded, date: 2023-06-03, person: p9, hours: 1, off_job: true}\n"
            "  - {id: r3, type: event-retracted, date: 2023-06-04, retracts: tr11}\n")
    app.record.load(read_facts_file(write_facts(both)))
    js = app.compliance.check(__import__("datetime").date(2024, 1, 31), filters=Filters(subjects={"p9"}, rules={"training-hours"}))
    assert [j.facts for j in js if j.period == "2023"] == [["tr12"]]
    assert audit.verify(app.store).ok


def test_only_the_people_whose_training_records_are_retracted_have_their_lists_cut(store_url, make_app,
                                                                                   write_facts):
    """The read model remembers whose training records a retraction takes away (the others'
    lists are handed to the rules uncut); a full check and a per-person check agree."""
    import datetime as dt

    from adapters.compliance import Filters
    app = make_app(store_url)
    other = ("people:\n  - {id: p8, name: 另一人, unit: u9, duties: [type-evaluation], since: 2022-05-01}\n"
             "events:\n  - {id: tr8, type: training-recorded, date: 2023-03-05, person: p8, hours: 16, off_job: true}\n")
    app.record.load(read_facts_file(write_facts(FRESH)))
    app.record.load(read_facts_file(write_facts(other)))
    assert app.record.snapshot().retracted_people == set()
    # a retraction of something that is not a training record marks nobody
    app.record.load(read_facts_file(write_facts(
        "events:\n  - {id: lab9, type: lead-lab-ended, date: 2023-09-01, unit: u9}\n"
        "  - {id: r0, type: event-retracted, date: 2023-09-02, retracts: lab9}\n")))
    app.record.load(read_facts_file(write_facts(
        "events:\n  - {id: r1, type: event-retracted, date: 2023-05-01, retracts: tr9}\n")))
    assert app.record.snapshot().retracted_people == {"p9"}
    day = dt.date(2024, 1, 31)
    full = {(j.subject, j.period): j.facts for j in app.compliance.check(day, filters=Filters(rules={"training-hours"}))}
    assert full[("p9", "2023")] == [] and full[("p8", "2023")] == ["tr8"]
    for person in ("p8", "p9"):
        alone = app.compliance.check(day, filters=Filters(subjects={person}, rules={"training-hours"}))
        assert {(j.subject, j.period): j.facts for j in alone} == {k: v for k, v in full.items() if k[0] == person}


def _filed(app) -> dict[str, dict]:
    """The training records as their register events hold them (the record, not the read model):
    fact id → the entry, `{"fact_id", "content_hash", **fields}`."""
    from eventsourcing.persistence import StoredEvent

    from domain.training import TrainingRegister
    mapper = app.store.app.mapper
    out = {}
    with app.store.engine.connect() as conn:
        for oid, version, topic, state in conn.execute(text(
                "SELECT originator_id, originator_version, topic, state FROM record_events ORDER BY id")):
            if "TrainingRegister" not in topic:
                continue
            oid = __import__("uuid").UUID(bytes=oid) if isinstance(oid, bytes) else __import__("uuid").UUID(str(oid))
            event = mapper.to_domain_event(StoredEvent(oid, version, topic, bytes(state)))
            assert isinstance(event, TrainingRegister.Filed)
            for entry in event.records:
                out[entry["fact_id"]] = dict(entry, register=str(oid))
    return out


TRAINING_ROW = "SELECT seq, fact_id, person, date, hours, off_job, course, note, content_hash, aggregate FROM training"


def test_a_training_record_is_one_training_row_equal_to_its_filed_entry(store_url, make_app, write_facts):
    """A training record's only read-model row is its `training` row (no `facts` row): its
    columns are the fields its register event holds, its content hash is the fact's, and its
    aggregate is the register."""
    from domain.facts import content_hash
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(FRESH + "  - {id: tr11, type: training-recorded, date: 2023-05-02, "
                                                "person: p9, hours: 3, off_job: true, note: 补录}\n")))
    filed = _filed(app)
    with app.store.engine.connect() as conn:
        rows = conn.execute(text(TRAINING_ROW + " ORDER BY seq")).all()
        in_facts = conn.execute(text("SELECT COUNT(*) FROM facts WHERE type = 'training-recorded'")).scalar()
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM facts UNION ALL SELECT seq FROM training"))]
    assert in_facts == 0
    assert sorted(seqs) == list(range(1, len(seqs) + 1))  # one sequence across both tables
    assert [r[1] for r in rows] == ["tr9", "tr10", "tr11"]
    for seq, fid, person, date, hours, off_job, course, note, digest, aggregate in rows:
        entry = filed[fid]
        fields = {k: v for k, v in entry.items() if k not in ("fact_id", "content_hash", "register")}
        assert (person, date, hours, off_job, course, note) == (
            fields["person"], fields["date"], float(fields["hours"]), int(fields["off_job"]), fields.get("course"),
            fields.get("note"))
        assert digest == entry["content_hash"] == content_hash("training-recorded", fields)
        assert aggregate == entry["register"]


def _as_older_store(app, layout: str) -> None:
    """Turn a store into one written before training records lost their `facts` row:
    each has a facts row too, and the `training` table is missing (`"none"`) or lacks the columns
    and the index added since (`"narrow"`)."""
    from domain.facts import canonical_json
    filed = _filed(app)
    with app.store.engine.begin() as conn:
        rows = conn.execute(text("SELECT seq, fact_id, date, person, jurisdiction, aggregate, recorded_at, actor, "
                                 "source FROM training")).all()
        for seq, fid, date, person, jurisdiction, aggregate, recorded_at, actor, source in rows:
            fields = {k: v for k, v in filed[fid].items() if k not in ("fact_id", "content_hash", "register")}
            conn.execute(text(
                "INSERT INTO facts (seq, fact_id, type, date, subject, refers, payload, content_hash, jurisdiction, "
                "aggregate, recorded_at, actor, source) VALUES (:seq, :fid, 'training-recorded', :date, :person, "
                "NULL, :payload, :hash, :j, :agg, :at, :actor, :source)"),
                dict(seq=seq, fid=fid, date=date, person=person, payload=canonical_json(fields),
                     hash=filed[fid]["content_hash"], j=jurisdiction, agg=aggregate, at=recorded_at, actor=actor,
                     source=source))
        if layout == "none":
            conn.execute(text("DROP TABLE training"))
        else:
            conn.execute(text("DROP INDEX training_fact_idx"))
            for column in ("content_hash", "aggregate", "actor", "source"):
                conn.execute(text(f"ALTER TABLE training DROP COLUMN {column}"))


@pytest.mark.parametrize("layout", ["none", "narrow"])
def test_an_older_store_opens_and_keeps_its_training_records(store_url, make_app, write_facts, layout):
    """A store written before training records lost their `facts` row: opening it adds what is
    missing (the table, filled from `facts`; or the new columns), its records are still known
    (a repeat is a repeat, a change is refused), and new ones go in as today's."""
    import datetime as dt

    from adapters.compliance import Filters
    url = store_url
    app = make_app(url)
    app.record.load(read_facts_file(write_facts(FRESH)))
    day, only = dt.date(2024, 1, 31), Filters(subjects={"p9"}, rules={"training-hours"})
    before = [(j.period, j.status, j.facts) for j in app.compliance.check(day, filters=only)]
    with app.store.engine.connect() as conn:
        narrow = conn.execute(text("SELECT seq, fact_id, person, date, hours, off_job, course, note FROM training "
                                   "ORDER BY seq")).all()
    app.close()
    _as_older_store(make_app(url), layout)
    older = make_app(url)
    with older.store.engine.connect() as conn:
        assert conn.execute(text("SELECT seq, fact_id, person, date, hours, off_job, course, note FROM training "
                                 "ORDER BY seq")).all() == narrow
    assert [(j.period, j.status, j.facts) for j in older.compliance.check(day, filters=only)] == before
    again = older.record.load(read_facts_file(write_facts(FRESH)))
    assert again.recorded == 0 and again.repeated == 4
    with pytest.raises(FileError) as err:
        older.record.load(read_facts_file(write_facts(FRESH.replace("hours: 2,", "hours: 3,"))))
    assert "already recorded with different content" in err.value.message
    more = older.record.load(read_facts_file(write_facts(
        "events:\n  - {id: tr12, type: training-recorded, date: 2023-06-02, person: p9, hours: 9, off_job: true}\n"
        "  - {id: r1, type: event-retracted, date: 2023-06-03, retracts: tr9}\n")))
    assert more.recorded == 2
    after = {j.period: j.facts for j in older.compliance.check(day, filters=only)}
    assert after["2023"] == ["tr12"]  # tr9 (an old row) retracted; tr10 is not off-job
    assert audit.verify(older.store).ok
    if not url.startswith("sqlite"):  # a table made again is append-only again
        with pytest.raises(Exception) as err:
            with older.store.engine.begin() as conn:
                conn.execute(text("DELETE FROM training"))
        assert "append-only" in str(err.value)


def test_fact_rows_give_training_records_exactly_as_filed(store_url, make_app, write_facts):
    """The read model serves training records from the `training` table: the rows must be the
    facts as their register event holds them (same fields, same key order as the payload)."""
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(FRESH + "  - {id: tr11, type: training-recorded, date: 2023-05-02, "
                                                "person: p9, hours: 3, off_job: true, note: 补录}\n")))
    rows = [r for r in app.record.fact_rows() if r["type"] == "training-recorded"]
    filed = _filed(app)
    with app.store.engine.connect() as conn:
        recorded_at = conn.execute(text("SELECT MAX(recorded_at) FROM record_chain")).scalar()
    assert len(rows) == len(filed) == 3
    for r in rows:
        entry = filed[r["fact_id"]]
        fields = [(k, v) for k, v in entry.items() if k not in ("fact_id", "content_hash", "register")]
        assert list(r["fields"].items()) == fields
        assert (r["date"], r["subject"], r["jurisdiction"], r["recorded_at"]) == (
            entry["date"], entry["person"], "shanghai", recorded_at)


TRICKY = r'''units:
  - {id: "u\\7", name: "单位\t制表", kind: institute}
people:
  - {id: p7, name: "张\\三", unit: "u\\7", duties: [type-evaluation]}
events:
  - {id: "t\\7", type: training-recorded, date: 2023-03-02, person: p7, hours: 0.00001, off_job: true,
     course: "line one\nline two\r\\N \\ end\t", note: "𠮷"}
'''


def test_text_with_tabs_newlines_and_backslashes_is_stored_exactly(store_url, make_app, write_facts):
    """PostgreSQL rows go in with COPY (its text format escapes tabs, newlines, backslashes and
    \\N): what is read back must be exactly what was recorded, on both stores."""
    import json
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(TRICKY)))
    rows = {r["fact_id"]: r for r in app.record.fact_rows()}
    training = rows["t\\7"]["fields"]
    assert training["course"] == "line one\nline two\r\\N \\ end" and training["note"] == "𠮷"
    assert training["hours"] == 0.00001
    assert rows["unit:u\\7"]["fields"]["name"] == "单位\t制表"
    assert rows["person:p7"]["fields"]["name"] == "张\\三"
    entry = _filed(app)["t\\7"]
    with app.store.engine.connect() as conn:
        course, note, actor = conn.execute(text("SELECT course, note, actor FROM training WHERE fact_id = :f"),
                                           {"f": "t\\7"}).one()
    assert {k: v for k, v in entry.items() if k not in ("fact_id", "content_hash", "register")} == training
    assert (course, note, actor) == (training["course"], training["note"], "cli")
    assert audit.verify(app.store).ok


def test_a_notice_stored_from_its_creation_event_replays_like_a_built_one(store_url, make_app):
    from domain.notice import Notice, NoticeError
    app = make_app(store_url)
    args = dict(key="training-hours|v1|p1|2023|reminder|1", rule="training-hours", rule_version=1, subject="p1",
                period="2023", kind="reminder", step=1, due="2023-12-31", as_of="2023-12-01", recipient="u1",
                copy_to=["sh-jlc"], message={"zh": "提醒", "en": "reminder"})
    with app.store.writing() as session:
        app.store.append(session, [], [app.store.creation(Notice, **args)])
    stored = app.store.app.repository.get(Notice.create_id(args["key"]))
    built = Notice(*args.values())
    skip = ("_created_on", "_modified_on", "_pending_events")
    assert {k: v for k, v in vars(stored).items() if k not in skip} == \
        {k: v for k, v in vars(built).items() if k not in skip}
    assert stored.deliveries == {} and stored.version == 1
    with pytest.raises(NoticeError):
        Notice.check_kind("rumour")


DIGESTS = """units:
  - {id: u9, name: 单位九, kind: institute}
people:
  - {id: q1, name: 甲, unit: u9, duties: [mandatory-verification], since: 2022-01-01}
  - {id: q2, name: 乙, unit: u9, duties: [type-evaluation], since: 2023-07-01}
  - {id: q3, name: 丙, unit: u9, duties: [mandatory-verification], since: 2022-01-01}
  - {id: q4, name: 丁, unit: u9, duties: [mandatory-verification], since: 2022-01-01}
events:
  - {id: d1, type: training-recorded, date: 2023-12-31, person: q1, hours: 8, off_job: true}
  - {id: d2, type: training-recorded, date: 2023-01-01, person: q1, hours: 7.75, off_job: true}
  - {id: d3, type: training-recorded, date: 2023-01-01, person: q1, hours: 4, off_job: false}
  - {id: d4, type: training-recorded, date: 2023-06-01, person: q1, hours: 0.25, off_job: true}
  - {id: d5, type: training-recorded, date: 2024-02-01, person: q1, hours: 16, off_job: true}
  - {id: d6, type: training-recorded, date: 2024-05-01, person: q1, hours: 16, off_job: true}
  - {id: d7, type: training-recorded, date: 2023-08-01, person: q2, hours: 0.1, off_job: true}
  - {id: d8, type: training-recorded, date: 2023-09-01, person: q2, hours: 15.9, off_job: true}
  - {id: d9, type: training-recorded, date: 2023-03-01, person: q3, hours: 10, off_job: true}
  - {id: d10, type: training-recorded, date: 2023-04-01, person: q3, hours: 10, off_job: true}
  - {id: d11, type: training-recorded, date: 2023-04-01, person: q4, hours: 20, off_job: true}
  - {id: d12, type: event-retracted, date: 2023-05-01, retracts: d10}
"""


def test_a_sweep_reads_training_records_as_digests_and_judges_as_from_every_record(store_url, make_app, write_facts):
    """`check` of everyone reads each person's training records as one row of columns from the
    store (in (date, seq) order), without the records retracted; people with hours that are not
    quarter hours are read record by record. The judgments are those of the full snapshot."""
    import datetime as dt

    from adapters.compliance import Filters
    from rules.view import T_ID, FactView, digest_of
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(DIGESTS)))
    # the second file's records come later in seq but earlier in date (a digest is in date order)
    app.record.load(read_facts_file(write_facts(
        "events:\n  - {id: d13, type: training-recorded, date: 2022-12-31, person: q1, hours: 1.5, off_job: true}\n"
        "  - {id: d14, type: training-recorded, date: 2023-01-01, person: q1, hours: 2, off_job: true}\n")))
    digests, refused = app.record._digests(10 ** 9)
    assert refused == {"q2"}  # 0.1 and 15.9 hours
    full = app.record.snapshot()
    for person, digest in digests.items():
        assert digest == digest_of(full.by_person[person])
    assert digests["q1"].ids == ["d13", "d2", "d3", "d14", "d4", "d1", "d5", "d6"]
    snap = make_app(store_url).record.snapshot(digest=True)  # (`app` holds every record now)
    assert set(snap.digests) == {"q1", "q3", "q4"} and set(snap.by_person) == {"q2"}
    view = FactView.build(snap, dt.date(2024, 12, 31))  # the view leaves the retracted record out
    assert view.training_digest("q3") == digest_of([t for t in full.by_person["q3"] if t[T_ID] != "d10"])
    assert view.training_digest("q3").ids == ["d9"] and view.training_digest("q1") == digests["q1"]
    for day in (dt.date(2023, 12, 31), dt.date(2024, 3, 1), dt.date(2024, 12, 31)):
        fresh = make_app(store_url)  # a fresh app holds no training records: the sweep's digests
        swept = [j.to_json() for j in fresh.compliance.check(day)]
        assert not fresh.record._training_held
        assert swept == [j.to_json() for j in app.compliance.check(day, rows=app.record.snapshot())]
        by = {(j["subject"], j["period"]): j for j in swept if j["rule"] == "training-hours"}
        assert by[("q2", "2023")]["status"] == "met" and by[("q3", "2023")]["facts"] == ["d9"]
    assert by[("q1", "2023")]["facts"] == ["d2", "d14", "d4", "d1"]
    assert by[("q1", "2023")]["satisfied_on"] == "2023-12-31"
    assert by[("q1", "2024")]["satisfied_on"] == "2024-02-01"
    # re-judging one person reads only theirs, also when nothing is held
    one = make_app(store_url).compliance.check(dt.date(2024, 12, 31), filters=Filters(subjects={"q1"}))
    assert [j.to_json() for j in one] == [j for j in swept if j["subject"] == "q1"]
    # the app keeps its digests between sweeps and reads again only the people with new records
    kept = dict(fresh.record._digest_cache[1])
    fresh.record.load(read_facts_file(write_facts(
        "events:\n  - {id: d15, type: training-recorded, date: 2024-01-05, person: q1, hours: 3, off_job: true}\n"
        "  - {id: d16, type: training-recorded, date: 2024-01-05, person: q4, hours: 0.3, off_job: true}\n"
        "  - {id: d17, type: event-retracted, date: 2024-02-01, retracts: d5}\n")))
    again = [j.to_json() for j in fresh.compliance.check(day)]
    every = make_app(store_url)  # (a full snapshot of `fresh` would make it let its digests go)
    assert again == [j.to_json() for j in every.compliance.check(day, rows=every.record.snapshot())]
    assert again != swept
    top, digests, refused = fresh.record._digest_cache
    # (q1 and q3 have retracted records: they are read one by one when a snapshot is made)
    assert refused == {"q2", "q4"} and set(digests) == {"q1", "q3"} and digests["q3"] is kept["q3"]
    assert digests["q1"] is not kept["q1"] and digests["q1"].ids[-3:] == ["d15", "d5", "d6"]


def test_the_read_side_leaves_no_reference_cycles_behind(store_url, make_app, write_facts):
    """check, replay and re-judging one subject keep what they leave alive out of the collector's
    walks (adapters.gcpause: `keep`); that is safe only because they make no reference cycles,
    which only the collector could free."""
    import datetime as dt
    import gc

    from adapters.compliance import Filters
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(DIGESTS)))
    day = dt.date(2024, 12, 31)
    app.compliance.check(day)  # the first reads build the app's caches (kept, not garbage)
    gc.unfreeze()
    gc.collect()
    try:
        gc.set_debug(gc.DEBUG_SAVEALL)  # cycles found are kept in gc.garbage, for the message
        for run in (lambda: app.compliance.check(day), lambda: app.compliance.replay(day, None),
                    lambda: app.compliance.check(day, filters=Filters(subjects={"q1"})),
                    lambda: app.compliance.check(day, known_at="2999-01-01")):
            judged = run()
            assert judged
            del judged
            assert gc.get_freeze_count() > 0
            gc.unfreeze()
            assert gc.collect() == 0, sorted({type(o).__name__ for o in gc.garbage})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_a_sweeps_two_reads_stop_at_the_same_seq(store_url, make_app, write_facts):
    """A sweep reads the other facts and the digests on two connections (at once, on
    PostgreSQL): both stop at the seq taken first, so a file committed in between is in neither."""
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(DIGESTS)))
    before = app.record._top()
    app.record.load(read_facts_file(write_facts(
        "units:\n  - {id: u10, name: 后来的单位, kind: institute}\n"
        "events:\n  - {id: d20, type: training-recorded, date: 2024-01-05, person: q1, hours: 3, off_job: true}\n")))
    fresh = make_app(store_url)
    fresh.record._top = lambda: before  # as if the second file committed just after the seq was taken
    snap = fresh.record.snapshot(digest=True)
    assert "d20" not in snap.digests["q1"].ids and "u10" not in {r["subject"] for r in snap.rows}
    assert snap.digests["q1"] == app.record._digests(before)[0]["q1"]
    # so do a full snapshot's two reads (the training records on a second connection, on PostgreSQL)
    from rules.view import T_ID
    full = make_app(store_url)
    full.record._top = lambda: before
    snap = full.record.snapshot()
    assert "d20" not in {t[T_ID] for t in snap.training} and "u10" not in {r["subject"] for r in snap.rows}
    assert len(snap.training) == DIGESTS.count("training-recorded")
    del full.record._top
    snap = full.record.snapshot()
    assert "d20" in {t[T_ID] for t in snap.training} and "u10" in {r["subject"] for r in snap.rows}
    del fresh.record._top
    snap = fresh.record.snapshot(digest=True)
    assert "d20" in snap.digests["q1"].ids and "u10" in {r["subject"] for r in snap.rows}


LATER = """people:
  - {id: q5, name: 戊, unit: u9, duties: [mandatory-verification], since: 2023-03-01}
events:
  - {id: e1, type: training-recorded, date: 2022-12-31, person: q1, hours: 3, off_job: true}
  - {id: e2, type: training-recorded, date: 2024-01-05, person: q4, hours: 0.3, off_job: true}
  - {id: e3, type: training-recorded, date: 2023-05-05, person: q5, hours: 16, off_job: true}
  - {id: e4, type: event-retracted, date: 2024-06-01, retracts: d5}
"""


def _checkpoints(app) -> list[tuple]:
    with app.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT seq, format FROM read_checkpoints ORDER BY seq"))]


def _rows_read_from(app) -> list[int]:
    """Spy: the seq after which each read of the facts table started."""
    seen, read = [], app.record._read_rows

    def spied(dbapi, top):
        seen.append(app.record._last_seq)
        return read(dbapi, top)
    app.record._read_rows = spied
    return seen


def test_a_fresh_service_starts_from_the_newest_checkpoint_and_reads_only_later_facts(
        store_url, make_app, write_facts):
    """A sweep writes a read-model checkpoint (once enough facts are new); a fresh service reads
    it and then only the facts recorded after it, and judges as if it had read everything."""
    import datetime as dt

    from adapters.compliance import Filters
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(DIGESTS)))
    top = app.record._top()
    app.record.checkpoint_every = 10 ** 6
    day = dt.date(2024, 12, 31)
    app.compliance.check(day)
    assert _checkpoints(app) == []  # not enough new facts to be worth one
    app.record.checkpoint_every = 1
    app.compliance.check(day)  # (no new fact since the last sweep: the same rows)
    assert _checkpoints(app) == [(top, app.record._checkpoint_format)]

    def everything(at):  # the judgments from every stored row, read afresh
        full = make_app(store_url)
        full.record._restore_tried = True  # (no checkpoint)
        return [j.to_json() for j in full.compliance.check(at, rows=full.record.snapshot())]

    fresh = make_app(store_url)
    read = _rows_read_from(fresh)
    assert [j.to_json() for j in fresh.compliance.check(day)] == everything(day)
    assert read == [] and fresh.record._checkpoint_seq == top  # nothing read but the checkpoint

    app.record.load(read_facts_file(write_facts(LATER)))
    later = app.record._top()
    for at in (day, dt.date(2023, 12, 31)):
        fresh = make_app(store_url)
        fresh.record.checkpoint_every = 10 ** 6
        read = _rows_read_from(fresh)
        assert [j.to_json() for j in fresh.compliance.check(at)] == everything(at)
        assert read == [top]  # from the checkpoint on
    # re-judging one person and a replay start from it too
    fresh = make_app(store_url)
    read = _rows_read_from(fresh)
    one = [j.to_json() for j in fresh.compliance.check(day, filters=Filters(subjects={"q5"}))]
    assert one == [j for j in everything(day) if j["subject"] == "q5"] and read == [top]
    replayer = make_app(store_url)
    replayed = replayer.compliance.replay(day, None)
    assert [{k: v for k, v in j.items() if k != "events"} for j in replayed["judgments"]] == everything(day)
    assert replayer.record._digest_cache is None  # (a replay reads every record: it holds no digests)
    # the next sweep of a service writes a newer one, and only the newest is kept
    fresh = make_app(store_url)
    fresh.record.checkpoint_every = 1
    fresh.compliance.check(day)
    assert _checkpoints(app) == [(later, app.record._checkpoint_format)]


def test_a_checkpoint_holds_each_repeated_text_once(store_url, make_app, write_facts):
    """Equal texts in a checkpoint (types, dates, commit times, field names …) are written once
    and read back as one object; the rows and digests read back equal what the sweep held."""
    import datetime as dt
    import marshal
    import zlib
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(DIGESTS)))
    app.record.checkpoint_every = 1
    app.compliance.check(dt.date(2024, 12, 31))
    held_rows = [dict(r) for r in app.record._rows]
    held_digests = {p: tuple(d) for p, d in app.record._digest_cache[1].items()}
    with app.store.engine.connect() as conn:
        body = conn.execute(text("SELECT body FROM read_checkpoints")).scalar()
    body = bytes(body) if app.store.is_sqlite else zlib.decompress(body)
    rows_part, digests_part = marshal.loads(body)
    rows, _ = marshal.loads(rows_part)
    digests, _ = marshal.loads(digests_part)
    assert [r[1] for r in rows] == [r["fact_id"] for r in held_rows]
    assert [r[6] for r in rows] == [r["fields"] for r in held_rows]
    assert {p: tuple(d) for p, d in digests.items()} == held_digests
    by_text: dict = {}
    for r in rows:
        for value in (r[2], r[3], r[7], r[8], *r[6].keys()):
            if value is not None:
                assert by_text.setdefault(value, value) is value, value
    dates = [d for digest in digests.values() for d in digest[0]]
    assert len(dates) > len(set(dates))  # (the file has people trained on the same day)
    assert len({id(d) for d in dates}) == len(set(dates))


def test_a_checkpoint_of_another_format_or_unreadable_is_not_used(store_url, make_app, write_facts):
    import datetime as dt
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(DIGESTS)))
    top, day = app.record._top(), dt.date(2024, 12, 31)
    expected = [j.to_json() for j in app.compliance.check(day, rows=app.record.snapshot())]
    for form, body in ((app.record._checkpoint_format + "-older", b"\x00"),
                       (app.record._checkpoint_format, b"not marshalled")):
        with app.store.engine.begin() as conn:
            conn.execute(text("DELETE FROM read_checkpoints"))
            conn.execute(text("INSERT INTO read_checkpoints VALUES (:s, :f, 'x', :b)"), {"s": top, "f": form, "b": body})
        fresh = make_app(store_url)
        fresh.record.checkpoint_every = 10 ** 6
        read = _rows_read_from(fresh)
        assert [j.to_json() for j in fresh.compliance.check(day)] == expected
        assert read == [0]  # every row read from the store
    # the next sweep that writes one replaces it, also at the same seq, and it is used
    fresh = make_app(store_url)
    fresh.record.checkpoint_every = 1
    assert [j.to_json() for j in fresh.compliance.check(day)] == expected
    assert _checkpoints(app) == [(top, app.record._checkpoint_format)]
    fresh = make_app(store_url)
    read = _rows_read_from(fresh)
    assert [j.to_json() for j in fresh.compliance.check(day)] == expected and read == []


def test_a_sweep_does_not_wait_on_a_busy_store_to_write_its_checkpoint(store_url, make_app, write_facts):
    """Another connection holds the lock a checkpoint needs: the sweep judges, logs that it did
    not write one, and the next sweep writes it."""
    import datetime as dt
    import time
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(DIGESTS)))
    day = dt.date(2024, 12, 31)
    expected = [j.to_json() for j in app.compliance.check(day, rows=app.record.snapshot())]
    fresh = make_app(store_url)
    fresh.record.checkpoint_every = 1
    if app.store.is_sqlite:  # the database's write lock, held by another connection
        import sqlite3
        blocker = sqlite3.connect(app.store.engine.url.database, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
    else:
        blocker = app.store.engine.connect()
        blocker.exec_driver_sql("LOCK TABLE read_checkpoints IN SHARE MODE")  # reads, no writes
    try:
        t0 = time.monotonic()
        assert [j.to_json() for j in fresh.compliance.check(day)] == expected
        assert time.monotonic() - t0 < 10 and _checkpoints(app) == [] and fresh.record._checkpoint_seq == 0
    finally:
        blocker.rollback()
        blocker.close()
    fresh.compliance.check(day)
    assert _checkpoints(app) == [(app.record._top(), app.record._checkpoint_format)]


def test_a_service_holding_every_record_sweeps_from_them_and_lets_its_digests_go(store_url, make_app, write_facts):
    """Memory: a service holds everyone's digests or every training record, not both (after a
    replay or a reminder sweep it holds the records; its sweeps then judge from them)."""
    import datetime as dt
    app = make_app(store_url)
    app.record.load(read_facts_file(write_facts(DIGESTS)))
    day = dt.date(2024, 12, 31)
    expected = [j.to_json() for j in app.compliance.check(day, rows=app.record.snapshot())]
    service = make_app(store_url)
    assert [j.to_json() for j in service.compliance.check(day)] == expected
    assert service.record._digest_cache is not None and not service.record._training_held
    service.compliance.replay(day, None)
    assert service.record._digest_cache is None and service.record._training_held
    app.record.load(read_facts_file(write_facts(LATER)))
    expected = [j.to_json() for j in app.compliance.check(day, rows=app.record.snapshot())]
    assert [j.to_json() for j in service.compliance.check(day)] == expected
    assert service.record._digest_cache is None


def test_loading_a_file_leaves_the_collector_nothing_of_it_to_walk(store_url, make_app, write_facts):
    """The collector is paused while a file loads; the file's facts must be gone before it
    resumes, or the collection that starts as soon as it resumes (it counts every object made
    while paused) walks all of them: 30-50 ms a file of 10,000 records, at times a full
    collection of the process."""
    import gc
    app = make_app(store_url)
    people = "".join(f"  - {{id: p{i}, name: 人{i}, unit: u1, duties: [mandatory-verification]}}\n" for i in range(300))
    records = "".join(f"  - {{id: t{i}, type: training-recorded, date: 2023-03-{1 + i % 28:02d}, person: p{i % 300}, "
                      f"hours: 2, off_job: true}}\n" for i in range(3000))
    app.record.load(read_facts_file(write_facts("units:\n  - {id: u1, name: 单位, kind: institute}\npeople:\n" + people)))
    doc = read_facts_file(write_facts("events:\n" + records))
    walks = []

    def watch(phase, info):  # what each collection that starts is about to walk
        if phase == "start":
            walks.append(sum(len(gc.get_objects(g)) for g in range(info["generation"] + 1)))
    gc.collect()
    gc.callbacks.append(watch)
    try:
        result = app.record.load(doc)
    finally:
        gc.callbacks.remove(watch)
    assert result.recorded == 3000
    assert max(walks, default=0) < 1000  # the 3,000 facts alone are 12,000 objects (fact, dicts, place)


def test_aggregates_read_together_are_those_the_repository_reconstructs(store_url, make_app, contract_example):
    """A file's commands act on aggregates read in one query (Store.get_many): each must be what
    `repository.get` gives, events of several versions applied in order; unknown ids are left out."""
    import uuid
    app = make_app(store_url)
    app.record.load(read_facts_file(contract_example))
    with app.store.engine.connect() as conn:
        versions = dict(conn.execute(text(
            "SELECT originator_id, MAX(originator_version) FROM record_events GROUP BY originator_id")).all())
    ids = {uuid.UUID(bytes=k) if isinstance(k, (bytes, memoryview)) else uuid.UUID(str(k)) for k in versions}
    assert max(versions.values()) > 1  # some aggregate has more than its creation
    missing = uuid.uuid4()
    with app.store.writing() as session:
        got = app.store.get_many(session, ids | {missing})
    assert set(got) == ids
    for agg_id in ids:
        expected = app.store.app.repository.get(agg_id)
        assert type(got[agg_id]) is type(expected) and got[agg_id].version == expected.version
        assert vars(got[agg_id]) == vars(expected)


def test_a_new_sqlite_store_takes_the_storage_settings_and_an_older_file_keeps_its_pages(tmp_path, make_app,
                                                                                         write_facts):
    """New SQLite files get 16 KB pages and every connection a 16 MB page cache (see
    adapters.store.SQLITE_STORAGE_PRAGMAS); a file made before keeps its page size and still
    opens, loads and judges."""
    import sqlite3

    fresh = make_app(f"sqlite:///{tmp_path}/fresh.db")
    fresh.record.load(read_facts_file(write_facts(FRESH)))
    with fresh.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 16384
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -16384
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    older = tmp_path / "older.db"
    raw = sqlite3.connect(older)
    raw.execute("PRAGMA page_size=4096")
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("CREATE TABLE placeholder (x)")  # (a file with pages of its own)
    raw.close()
    app = make_app(f"sqlite:///{older}")
    assert app.record.load(read_facts_file(write_facts(FRESH))).recorded == 4
    with app.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
    assert [j.facts for j in app.compliance.check(__import__("datetime").date(2024, 1, 31))
            if j.subject == "p9" and j.period == "2023"] == [["tr9"]]
    assert audit.verify(app.store).ok


def test_an_older_store_opened_by_two_processes_at_once_gains_its_columns_once(tmp_path, make_app, write_facts,
                                                                                monkeypatch):
    """Another process may add the training columns between this one's first look and its own
    ALTER TABLE: the columns are looked up again under the write lock, so it adds none twice."""
    import sqlite3

    import adapters.store as store_module
    url = f"sqlite:///{tmp_path}/older.db"
    app = make_app(url)
    app.record.load(read_facts_file(write_facts(FRESH)))
    app.close()
    _as_older_store(make_app(url), "narrow")
    real_create_all = store_module.metadata.create_all

    def create_all_then_the_other_process_migrates(*args, **kwargs):
        real_create_all(*args, **kwargs)
        other = sqlite3.connect(tmp_path / "older.db")
        for name, sql_type in store_module._TRAINING_ADDED.items():
            other.execute(f"ALTER TABLE training ADD COLUMN {name} {sql_type}")
        other.commit()
        other.close()
    monkeypatch.setattr(store_module.metadata, "create_all", create_all_then_the_other_process_migrates)
    older = make_app(url)  # (before the second look: "duplicate column name: content_hash")
    monkeypatch.undo()
    assert older.record.load(read_facts_file(write_facts(FRESH))).repeated == 4
    assert audit.verify(older.store).ok


TASK_FACTS = """events:
  - {id: tk1, type: task-reassigned, date: 2023-04-01, plan: shanghai-2023, task: 1, leads: [市计量院]}
  - {id: tk2, type: task-milestone-set, date: 2023-04-02, plan: shanghai-2023, task: 1, name: 中期, due: 2023-06-30}
  - {id: tk3, type: task-progress-reported, date: 2023-06-01, plan: shanghai-2023, task: 1, unit: 市计量院,
     text: 已完成一半, milestone: 中期}
  - {id: tk4, type: task-milestone-set, date: 2023-04-02, plan: shanghai-2023, task: 2, name: 年底, due: 2023-12-31}
  - {id: tk5, type: task-completed, date: 2023-12-01, plan: shanghai-2023, task: 1, unit: 市计量院}
  - {id: tk6, type: event-retracted, date: 2023-07-01, retracts: tk4, reason: 录入错误}
"""


def _plan_topics(app, plan_id) -> list[str]:
    with app.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT originator_id, topic FROM record_events ORDER BY id")).all()
    def as_uuid(oid) -> UUID:  # (SQLite: 16 bytes; PostgreSQL: a uuid)
        return UUID(bytes=bytes(oid)) if isinstance(oid, (bytes, memoryview)) else UUID(str(oid))
    return [topic.rsplit(".", 1)[-1] for oid, topic in rows if as_uuid(oid) == plan_id]


def test_a_files_task_facts_are_one_event_of_their_plan_and_each_is_retracted_on_its_own(
        store_url, make_app, write_facts):
    """A file's task facts on a plan are stored as one event of the plan (WorkPlan.TaskFactsRecorded):
    the plan replays from the store with every fact applied in file order, the read model shows
    them, a retraction in the same file or a later one takes one fact, and a repeat is a no-op."""
    from adapters.plans import bundled_path, import_plan, show_plan
    from domain.plan import WorkPlan
    app = make_app(store_url)
    import_plan(app.record, bundled_path("shanghai-2023"))
    plan_id = WorkPlan.create_id("shanghai-2023")
    result = app.record.load(read_facts_file(write_facts(TASK_FACTS)))
    assert result.recorded == 6
    assert _plan_topics(app, plan_id) == ["Published", "TaskFactsRecorded", "FactRetracted"]
    plan = app.store.app.repository.get(plan_id)
    assert plan.tasks[1]["leads"] == ["市计量院"] and plan.tasks[1]["supporting"] == []
    assert plan.tasks[1]["milestones_set"] == [{"name": "中期", "due": "2023-06-30"}]
    assert plan.tasks[1]["progress"] == ["tk3"] and plan.tasks[1]["status"] == "completed"
    assert plan.fact_types["tk4"] == "task-milestone-set" and plan.retracted == {"tk4": "tk6"}
    shown = {t["number"]: t for t in show_plan(app.record, 2023)["tasks"]}
    assert shown[1]["milestones_set"] == [{"name": "中期", "due": "2023-06-30"}] and shown[1]["status"] == "completed"
    assert "milestones_set" not in shown[2]  # retracted

    before = _snapshot(app)
    again = app.record.load(read_facts_file(write_facts(TASK_FACTS)))
    assert (again.recorded, again.repeated) == (0, 6) and _snapshot(app) == before

    app.record.load(read_facts_file(write_facts(
        "events:\n  - {id: tk7, type: event-retracted, date: 2023-08-01, retracts: tk3}\n")))
    assert app.store.app.repository.get(plan_id).retracted == {"tk4": "tk6", "tk3": "tk7"}
    before = _snapshot(app)
    with pytest.raises(FileError) as err:
        app.record.load(read_facts_file(write_facts(
            "events:\n  - {id: tk8, type: event-retracted, date: 2023-08-02, retracts: tk3}\n")))
    assert "already retracted" in err.value.message
    with pytest.raises(FileError) as err:
        app.record.load(read_facts_file(write_facts(
            "events:\n  - {id: tk9, type: task-milestone-set, date: 2023-04-02, plan: shanghai-2023, task: 1,"
            " name: 年中, due: 2023-06-30}\n"
            "  - {id: tk10, type: task-completed, date: 2023-12-01, plan: shanghai-2023, task: 99}\n")))
    assert err.value.line == 3 and "no task 99" in err.value.message
    assert _snapshot(app) == before
    assert audit.verify(app.store).ok


def test_registrations_read_once_are_held_and_what_was_missing_is_read_again(store_url, make_app, write_facts):
    """The service holds the registrations it has read (the record never changes them): a repeat
    is still a repeat, other content is still refused, and a person another service registers
    after this one missed them is found."""
    app = make_app(store_url)
    other = make_app(store_url)  # another process on the same store
    app.record.load(read_facts_file(write_facts(FRESH)))
    training = "events:\n  - {{id: {id}, type: training-recorded, date: 2023-05-02, person: {person}, hours: 1, off_job: true}}\n"
    app.record.load(read_facts_file(write_facts(training.format(id="h1", person="p9"))))
    assert "person:p9" in app.record._registered  # held
    before = _snapshot(app)
    with pytest.raises(FileError) as err:
        app.record.load(read_facts_file(write_facts(training.format(id="h2", person="p10"))))
    assert "unknown person 'p10'" in err.value.message and "person:p10" not in app.record._registered
    with pytest.raises(FileError) as err:
        app.record.load(read_facts_file(write_facts(
            "people:\n  - {id: p9, name: 改名, unit: u9, duties: [type-evaluation], since: 2022-05-01}\n")))
    assert "already recorded with different content" in err.value.message
    assert app.record.load(read_facts_file(write_facts(FRESH))).repeated == 4
    assert _snapshot(app) == before
    other.record.load(read_facts_file(write_facts(
        "people:\n  - {id: p10, name: 又一人, unit: u9, duties: [type-evaluation], since: 2022-05-01}\n")))
    assert app.record.load(read_facts_file(write_facts(training.format(id="h2", person="p10")))).recorded == 1


def _training_file(n: int, first: int = 0) -> str:
    return FRESH.split("events:")[0] + "events:\n" + "".join(
        f"  - {{id: bulk-{i}, type: training-recorded, date: 2023-05-02, person: p9, hours: 1, off_job: true}}\n"
        for i in range(first, first + n))


def _wait(predicate, seconds: float = 20.0) -> bool:
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_bulk_write_is_checkpointed_in_the_background_and_a_small_one_is_left_to_sqlite(tmp_path, make_app,
                                                                                         write_facts):
    """SQLite: after a write of 1,000 rows or more, the store's checkpointer copies the log into
    the database file on its own connection (the file grows at once, although the log is far
    below SQLite's own 1,000-page threshold); a small write does not start it; closing the store
    stops it."""
    db = tmp_path / "metrolex.db"
    app = make_app(f"sqlite:///{db}")
    checkpointer = app.store.checkpointer
    assert checkpointer is not None
    app.record.load(read_facts_file(write_facts(FRESH)))
    assert checkpointer.runs == 0 and checkpointer._thread is None
    size_before = db.stat().st_size
    app.record.load(read_facts_file(write_facts(_training_file(1500))))
    assert _wait(lambda: checkpointer.runs >= 1), (checkpointer.runs, checkpointer.failures)
    assert db.stat().st_size > size_before + 100_000
    assert checkpointer.failures == 0
    thread = checkpointer._thread
    app.close()
    assert not thread.is_alive()


def test_without_the_checkpointer_the_bulk_write_stays_in_the_log(tmp_path, make_app, write_facts, monkeypatch):
    """The same write with the threshold out of reach: the database file does not grow (the
    writer's own checkpoint waits for 1,000 pages): what the test above sees is the checkpointer."""
    from adapters.store import Store
    monkeypatch.setattr(Store, "CHECKPOINT_AFTER_ROWS", 10**9)
    db = tmp_path / "metrolex.db"
    app = make_app(f"sqlite:///{db}")
    app.record.load(read_facts_file(write_facts(FRESH)))
    size_before = db.stat().st_size
    app.record.load(read_facts_file(write_facts(_training_file(1500))))
    assert app.store.checkpointer._thread is None
    assert db.stat().st_size < size_before + 100_000


def test_a_checkpointer_that_cannot_open_the_file_counts_it_and_the_next_wake_tries_again(tmp_path):
    from adapters.store import WalCheckpointer
    checkpointer = WalCheckpointer(str(tmp_path / "missing-dir" / "x.db"))
    checkpointer.wake()
    assert _wait(lambda: checkpointer.failures == 1)
    (tmp_path / "missing-dir").mkdir()
    checkpointer.wake()
    assert _wait(lambda: checkpointer.runs == 1), (checkpointer.runs, checkpointer.failures)
    checkpointer.close()
    assert not checkpointer._thread.is_alive()
