"""The record's application service: facts in, aggregates and read-model rows out, one
transaction per file (all of it or none of it).

A fact already recorded with the same content is a no-op; the same id with other content, an
unknown reference, or an answer that names the wrong kind of event refuses the whole file.
"""
from __future__ import annotations

import json
import marshal
import threading
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterable, NamedTuple
from uuid import UUID



import structlog
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from adapters.facts_file import FactsDocument, FileError, RawRecord
from adapters.gcpause import paused_gc
from adapters.store import (FACT_COLUMNS, TRAINING_COLUMNS, EncodedJSON, Store, format_instant,
                            training_table_row)
from rules.view import T_PERSON, T_RECORDED, TRAINING, TRAINING_FIELDS, Snapshot, TrainingDigest
from domain.assessment import IndicatorReport, PlanEvaluation
from domain.center import Center
from domain.errors import DomainError
from domain.facts import (ANSWERS, Fact, FieldError, canonical_json, derive_event_id, parse_event,
                          parse_registration, person_fact, training_fact)
from domain.person import Person
from domain.plan import WorkPlan
from domain.subject import Subject
from domain.training import TrainingRecord, TrainingRegister
from domain.unit import Unit



@dataclass
class LoadResult:
    file: str
    recorded: int = 0
    repeated: int = 0
    by_type: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"file": self.file, "recorded": self.recorded, "already_recorded": self.repeated,
                "by_type": dict(sorted(self.by_type.items()))}


class Known(NamedTuple):
    fact_id: str
    content_hash: str
    type: str
    subject: str | None
    aggregate: str


_as_known = partial(tuple.__new__, Known)  # a row as a Known, made in C


@dataclass(slots=True)
class Located:
    fact: Fact
    raw: RawRecord | None
    jurisdiction: str


def _contacts(fields: dict) -> dict:
    return {k: fields[k] for k in ("email", "webhook") if fields.get(k)}


# type → (aggregate class, key of the aggregate, command)
def _aggregate_of(fact: Fact) -> tuple[type[Subject], str]:
    t, f = fact.type, fact.fields
    if t == "unit-registered":
        return Unit, f["id"]
    if t == "person-registered":
        return Person, f["id"]
    if t == "center-registered":
        return Center, f["id"]
    if t == "plan-published":
        return WorkPlan, f["key"]
    if t == "training-recorded":
        return TrainingRecord, fact.id
    if t == "indicator-reported":
        return IndicatorReport, fact.id
    if t == "plan-evaluated":
        return PlanEvaluation, fact.id
    if t in ("comparison-organized", "lead-lab-started", "lead-lab-ended"):
        return Unit, f["unit"]
    if t.startswith("person-"):
        return Person, f["person"]
    if t.startswith("task-"):
        return WorkPlan, f["plan"]
    return Center, f["center"]


def _creation(fact: Fact, jurisdiction: str) -> tuple[type[Subject], dict[str, Any]]:
    """The aggregate a registration (or a self-contained fact) creates, and its arguments in the
    order of its `__init__` (which is the order of the created event's state)."""
    f, h = fact.fields, fact.content_hash
    if fact.type == "unit-registered":
        return Unit, dict(key=f["id"], fact_id=fact.id, content_hash=h, name=f["name"], kind=f["kind"],
                          jurisdiction=f["jurisdiction"], lead_lab_since=f.get("lead_lab_since"),
                          supervisor=f.get("supervisor"), contacts=_contacts(f))
    if fact.type == "person-registered":
        return Person, dict(key=f["id"], fact_id=fact.id, content_hash=h, name=f["name"], unit=f["unit"],
                            duties=f["duties"], since=f.get("since"), contacts=_contacts(f))
    if fact.type == "center-registered":
        return Center, dict(key=f["id"], fact_id=fact.id, content_hash=h, name=f["name"], host=f["host"],
                            contacts=_contacts(f))
    if fact.type == "plan-published":
        return WorkPlan, dict(key=f["key"], fact_id=fact.id, content_hash=h, jurisdiction=f["jurisdiction"],
                              year=f["year"], document=f["document"], groups=f["groups"], tasks=f["tasks"])
    if fact.type == "training-recorded":
        return TrainingRecord, dict(key=fact.id, fact_id=fact.id, content_hash=h, person=f["person"],
                                    date=f["date"], hours=f["hours"], off_job=f["off_job"], course=f.get("course"))
    if fact.type == "indicator-reported":
        return IndicatorReport, dict(key=fact.id, fact_id=fact.id, content_hash=h, jurisdiction=jurisdiction,
                                     indicator=f["indicator"], value=f["value"], date=f["date"])
    if fact.type == "plan-evaluated":
        return PlanEvaluation, dict(key=fact.id, fact_id=fact.id, content_hash=h, jurisdiction=jurisdiction,
                                    evaluation=f["evaluation"], date=f["date"])
    raise AssertionError(fact.type)


COMMANDS: dict[str, Callable[[Any, Fact], None]] = {
    "comparison-organized": lambda a, x: a.organize_comparison(x.id, x.content_hash, x.date, x.fields.get("subject")),
    "lead-lab-started": lambda a, x: a.start_lead_lab(x.id, x.content_hash, x.date),
    "lead-lab-ended": lambda a, x: a.end_lead_lab(x.id, x.content_hash, x.date),
    "person-duties-changed": lambda a, x: a.change_duties(x.id, x.content_hash, x.date, x.fields["duties"]),
    "person-duties-ended": lambda a, x: a.end_duties(x.id, x.content_hash, x.date),
    "center-approved": lambda a, x: a.approve(x.id, x.content_hash, x.date, x.fields.get("construction_years")),
    "center-major-event": lambda a, x: a.report_major_event(x.id, x.content_hash, x.date, x.fields.get("summary")),
    "center-major-event-notified": lambda a, x: a.notify_major_event(x.id, x.content_hash, x.date, x.fields.get("refers_to")),
    "center-annual-report-filed": lambda a, x: a.file_annual_report(x.id, x.content_hash, x.date, x.fields["year"]),
    "exchange-activity-held": lambda a, x: a.hold_exchange_activity(x.id, x.content_hash, x.date, x.fields.get("title")),
    "rectification-ordered": lambda a, x: a.order_rectification(x.id, x.content_hash, x.date, x.fields["deadline"]),
    "rectification-failed": lambda a, x: a.fail_rectification(x.id, x.content_hash, x.date, x.fields.get("refers_to")),
    "rectification-completed": lambda a, x: a.complete_rectification(x.id, x.content_hash, x.date, x.fields.get("refers_to")),
    "center-acceptance-applied": lambda a, x: a.apply_for_acceptance(x.id, x.content_hash, x.date),
    "center-accepted": lambda a, x: a.accept(x.id, x.content_hash, x.date),
    "center-revoked": lambda a, x: a.revoke(x.id, x.content_hash, x.date),
}
# A plan's task facts: gathered from a file, in its order, and stored as one event of the plan
# (WorkPlan.record_task_facts), each checked against the plan as it comes.
TASK_FACTS = frozenset(("task-reassigned", "task-milestone-set", "task-progress-reported", "task-completed"))


def facts_of(doc: FactsDocument) -> list[Located]:
    """Records → facts, refusing the first bad record with its line and field."""
    out: list[Located] = []
    seen: dict[str, Located] = {}
    occurrences: Counter = Counter()
    for raw in doc.records:
        try:
            if raw.section == "events":
                data = raw.data
                # (most records of a large file: a direct path, equal to the general one)
                fact = training_fact(data) if type(data) is dict and data.get("type") == TRAINING else None
                if fact is None:
                    given, fact_type, fields = parse_event(data)
                    if given is None:
                        key = canonical_json({"type": fact_type, **fields})
                        given = derive_event_id(fact_type, fields, occurrences[key])
                        occurrences[key] += 1
                    fact = Fact(given, fact_type, fields)
            else:
                fact = person_fact(raw.data) if raw.section == "people" else None
                if fact is None:
                    fact = parse_registration(raw.section, raw.data, doc.jurisdiction)
        except FieldError as exc:
            line = raw.field_lines.get(exc.field or "", raw.line)
            raise FileError(doc.file, exc.message, line=line, field_name=exc.field, record=_label(raw)) from None
        located = Located(fact, raw, fact.fields.get("jurisdiction", doc.jurisdiction))
        prior = seen.get(fact.id)
        if prior is not None:
            if prior.fact.content_hash != fact.content_hash:
                raise FileError(doc.file, f"id {fact.id!r} is used twice in this file with different content",
                                line=raw.line, field_name="id", record=_label(raw))
            continue
        seen[fact.id] = located
        out.append(located)
    return out


def _shared(value: Any, pool: dict) -> Any:
    """`value` with each text in it (in mappings and lists too, keys included) replaced by the
    first equal text met in `pool`: a copy, for `marshal` to write each text once."""
    kind = type(value)
    if kind is str:
        return pool.setdefault(value, value)
    if kind is dict:
        return {pool.setdefault(k, k) if type(k) is str else k: _shared(v, pool) for k, v in value.items()}
    if kind is list:
        return [_shared(v, pool) for v in value]
    return value


def _label(raw: RawRecord | None) -> str | None:
    if raw is None:
        return None
    rid = raw.data.get("id") if isinstance(raw.data, dict) else None
    return raw.label + (f" id={rid}" if rid else "")


def _order(items: list[Located]) -> list[Located]:
    """Registrations first (units, centers, people, plans), then events; answers after what they
    answer; retractions last — so a file may list things in any order. (Stable: in file order
    within each of those five groups.)"""
    groups: tuple[list[Located], ...] = ([], [], [], [], [])
    rank = _ORDER_RANK
    for loc in items:
        groups[rank.get(loc.fact.type, 2)].append(loc)
    if len(groups[2]) == len(items):  # (a register of training records …) already in order
        return groups[2]
    return [loc for group in groups for loc in group]


_ORDER_RANK = {"unit-registered": 0, "center-registered": 1, "person-registered": 1, "plan-published": 1,
               "event-retracted": 4, **{t: 3 for t in ANSWERS}}


def register_entry(fact_id: str, content_hash: str, payload: str) -> str:
    """A training record's entry in its register's event, as JSON text: `{"fact_id": …,
    "content_hash": …, **fields}`, made from the fact's canonical payload (the fields' JSON)
    instead of encoding the fields again. It decodes to that mapping (keys in another order,
    which a mapping does not keep); tests/integration/test_store.py replays a register."""
    head = '{"fact_id":' + _json_text(fact_id) + ',"content_hash":' + _json_text(content_hash)
    return head + ("}" if payload == "{}" else "," + payload[1:])


_json_text = json.encoder.encode_basestring  # a str as JSON text, as the canonical encoder writes it


class RecordService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: list[dict] = []
        self._training: list[tuple] = []
        self._training_by_person: dict[str, list[tuple]] = {}
        self._interned: dict = {}
        # people some of whose training records are retracted: only their lists need the
        # retractions cut out (see rules.view.Snapshot.retracted_people)
        self._retracted_people: set[str] = set()
        self._shared: list[dict] = []
        self._by_subject: dict[str, list[dict]] = {}
        self._last_seq = 0
        self._training_seq = 0  # the training records held are those up to here
        self._training_held = False
        self._digest_in_index_order: bool | None = None  # SQLite: see _DIGEST_SQLITE
        # (top seq, digests, people refused a digest), kept between sweeps
        self._digest_cache: tuple[int, dict[str, TrainingDigest], set[str]] | None = None
        self._cache_lock = threading.Lock()
        self._restore_tried = False
        self._checkpoint_seq = 0  # the newest read-model checkpoint this service read or wrote
        self._registered: dict[str, Known] = {}  # see _known

    # -- queries against the read model inside the write transaction -------------------------
    # A fact id's row: in `facts`, or for a training record in `training` (rows written before
    # training records lost their facts row have both; the `facts` one is read, it comes first).
    _KNOWN = ("SELECT fact_id, content_hash, type, subject, aggregate FROM facts WHERE fact_id {match} "
              "UNION ALL SELECT fact_id, content_hash, 'training-recorded', person, aggregate FROM training "
              "WHERE fact_id {match} AND content_hash IS NOT NULL")

    # Registrations (units, people, centers, plans) read before, by fact id. What the record holds
    # never changes (it is append-only: a repeat is a no-op, other content is refused), so a row
    # read once stays true, and files refer to the same people again and again: the bench's
    # training files looked up ~6,000 people each, 35 % of their lookups. Bounded.
    _HELD_TYPES = frozenset(("unit-registered", "person-registered", "center-registered", "plan-published"))
    _HELD_MAX = 250_000

    def _known(self, session, ids: Iterable[str]) -> dict[str, Known]:
        """What the record already holds of these fact ids (repeats, references): registrations
        read before from memory, the rest with one indexed lookup per 500 ids straight through
        the driver (on SQLite in id order: neighbouring lookups then share the index pages they
        read, ~40 % less time for a file of 10,000)."""
        wanted = set(ids)
        held = self._registered
        found: dict[str, Known] = {}
        if held:
            found = {i: held[i] for i in wanted & held.keys()}
            wanted -= found.keys()
        read = self._read_known(session, sorted(wanted))
        found.update(read)
        if len(held) < self._HELD_MAX:
            held.update((i, row) for i, row in read.items() if row.type in self._HELD_TYPES)
        return found

    def _read_known(self, session, ids: list[str]) -> dict[str, Known]:
        found: dict[str, Known] = {}
        if not ids:
            return found
        cur = session.connection().connection.dbapi_connection.cursor()
        try:
            if not self.store.is_sqlite:  # one round trip: an array parameter
                cur.execute(self._KNOWN.format(match="= ANY(%(ids)s)"), {"ids": ids})
                for row in map(_as_known, cur.fetchall()):
                    found.setdefault(row[0], row)
                return found
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ", ".join("?" * len(chunk))
                cur.execute(self._KNOWN.format(match=f"IN ({marks})"), chunk + chunk)
                for row in map(_as_known, cur.fetchall()):
                    found.setdefault(row[0], row)
        finally:
            cur.close()
        return found

    def load(self, doc: FactsDocument, actor: str = "cli",
             progress: Callable[[int, int], None] | None = None) -> LoadResult:
        with paused_gc():
            located = facts_of(doc)
            result = LoadResult(doc.file)
            with self.store.writing() as session:
                self._record(session, doc.file, located, actor, result, progress)
            # Let the file's facts go while the collector is still paused: a collection would
            # otherwise start as soon as it resumes (it counts every object made while paused)
            # and walk them all. At 10,000 records a file that was 30-50 ms, and now and then a
            # full collection of the process (~250 ms in the bench).
            del located
        return result

    def record_facts(self, items: list[Fact], source: str, actor: str, jurisdiction: str = "shanghai") -> LoadResult:
        """Record facts built elsewhere (API, plan import): the same checks, one transaction."""
        result = LoadResult(source)
        with paused_gc(), self.store.writing() as session:
            self._record(session, source, [Located(f, None, jurisdiction) for f in items], actor, result, None)
        return result

    def _record(self, session, file: str, located: list[Located], actor: str, result: LoadResult,
                progress: Callable[[int, int], None] | None) -> None:
        def refuse(loc: Located, message: str, field_name: str | None = None) -> FileError:
            raw = loc.raw
            line = (raw.field_lines.get(field_name or "", raw.line) if raw else None)
            return FileError(file, message, line=line, field_name=field_name, record=_label(raw) or loc.fact.id)

        in_file = {loc.fact.id: loc.fact for loc in located}
        wanted = set(in_file)
        wanted.update(ref[3] for loc in located for ref in loc.fact.reference_keys)
        known = self._known(session, wanted)

        new: list[Located] = []
        for loc in located:
            row = known.get(loc.fact.id)
            if row is not None:
                if row.content_hash != loc.fact.content_hash:
                    what = loc.fact.type.replace("-registered", "")
                    raise refuse(loc, f"{loc.fact.id!r} is already recorded with different content; "
                                      f"nothing recorded is changed — record a correction instead"
                                      + (f" (a new {what} id)" if loc.fact.type.endswith("registered") else ""),
                                 "id")
                result.repeated += 1
                continue
            new.append(loc)

        def ref_type(ref: str) -> tuple[str | None, str | None]:
            if ref in in_file:
                f = in_file[ref]
                return f.type, f.subject
            row = known.get(ref)
            return (row.type, row.subject) if row is not None else (None, None)

        retracted_here: dict[str, str] = {}
        for loc in new:
            fact = loc.fact
            for name, kind, ref, key in fact.reference_keys:
                if kind == "event":
                    rtype, rsubject = ref_type(ref)
                    if rtype is None:
                        raise refuse(loc, f"unknown event {ref!r}", name)
                    if name == "refers_to":
                        want = ANSWERS[fact.type]
                        if rtype != want or rsubject != fact.fields.get("center"):
                            raise refuse(loc, f"{ref!r} is a {rtype} of {rsubject!r}, not a {want} "
                                              f"of center {fact.fields.get('center')!r}", name)
                    if name == "retracts":
                        if rtype == "event-retracted":
                            raise refuse(loc, f"{ref!r} is itself a retraction", name)
                        if ref in retracted_here and retracted_here[ref] != fact.id:
                            raise refuse(loc, f"{ref!r} is retracted twice in this file", name)
                        retracted_here[ref] = fact.id
                elif key not in in_file and key not in known:
                    raise refuse(loc, f"unknown {kind} {ref!r}", name)

        aggregates: dict[Any, Subject] = {}
        agg_ids: dict[tuple[type, str], UUID] = {}  # (a uuid5 each: a file of task events acts on few)

        def aggregate(cls: type[Subject], key: str) -> Subject:
            agg_id = agg_ids.get((cls, key))
            if agg_id is None:
                agg_id = agg_ids[(cls, key)] = cls.create_id(key)
            if agg_id not in aggregates:
                aggregates[agg_id] = self.store.app.repository.get(agg_id)
            return aggregates[agg_id]

        # A new aggregate that nothing else in this file touches is stored straight from its
        # creation event (no aggregate object needed); one that a later fact of the file acts on
        # (a command, a retraction) is built, so its guards see it.
        touched: set[tuple[type, str]] = set()
        for loc in new:
            fact = loc.fact
            if fact.type == "event-retracted":
                target = in_file.get(fact.fields["retracts"])
                if target is not None:
                    touched.add(_aggregate_of(target))
            elif fact.type in COMMANDS or fact.type in TASK_FACTS:
                touched.add(_aggregate_of(fact))
        # The recorded aggregates that the file's commands and retractions act on, read in one
        # query (one `repository.get` each took ~0.3-0.6 ms: 544 of them in a file of 10,000)
        # (those the file creates are not found, and are built from their creation below)
        for cls, key in touched:
            agg_ids[(cls, key)] = cls.create_id(key)
        wanted_ids = set(agg_ids.values())
        wanted_ids.update(UUID(known[loc.fact.fields["retracts"]].aggregate) for loc in new
                          if loc.fact.type == "event-retracted" and loc.fact.fields["retracts"] in known)
        aggregates.update(self.store.get_many(session, wanted_ids))
        created: list[tuple[UUID, str, bytes]] = []
        register: list[str] = []  # the register's entries, as JSON text (register_entry)
        register_id: UUID | None = None
        register_text = ""

        task_facts: dict[UUID, list[dict]] = {}  # a plan's task facts of this file, not yet stored

        def store_task_facts(agg: Subject) -> None:
            batch = task_facts.pop(agg.id, None)
            if batch:
                agg.record_task_facts(batch)

        rows: list[tuple] = []
        training_rows: list[tuple] = []
        recorded_at = session.info["recorded_at"]
        seq = self.store.next_seq(session)
        total = len(new)
        last_agg, agg_text = None, ""
        register_append, training_append = register.append, training_rows.append
        for n, loc in enumerate(_order(new), start=1):
            fact = loc.fact
            if fact.type == TRAINING and (not touched or (TrainingRecord, fact.id) not in touched):
                # (most facts of a large file) an entry of the submission's register, as JSON
                # text made from the fact's payload (see register_entry), and its training row
                if register_id is None:
                    register_key = f"{session.info['recorded_at']}|{fact.id}"
                    register_id = TrainingRegister.create_id(register_key)
                    register_text = str(register_id)
                fact_id = fact.id
                payload, digest = fact.encoded
                register_append(register_entry(fact_id, digest, payload))
                training_append(training_table_row(seq, fact_id, fact.fields, loc.jurisdiction, recorded_at, digest,
                                                   register_text, actor, file))
                seq += 1
                if progress and (n % 1000 == 0 or n == total):
                    progress(n, total)
                continue
            try:
                if fact.type == "event-retracted":
                    target = fact.fields["retracts"]
                    if target in in_file:
                        cls, key = _aggregate_of(in_file[target])
                        agg = aggregate(cls, key)
                    else:
                        agg_id = UUID(known[target].aggregate)
                        if agg_id not in aggregates:
                            aggregates[agg_id] = self.store.app.repository.get(agg_id)
                        agg = aggregates[agg_id]
                    store_task_facts(agg)  # (what it retracts may be one of them)
                    agg.check_can_retract(target, fact.id)
                    agg.retract(target, fact.id, fact.content_hash, fact.date, fact.fields.get("reason") or "")
                    agg_id = agg.id
                elif fact.type in TASK_FACTS:
                    cls, key = _aggregate_of(fact)
                    agg = aggregate(cls, key)
                    agg.check_task(fact.fields["task"])
                    agg_id = agg.id
                    batch = task_facts.get(agg_id)
                    if batch is None:
                        batch = task_facts[agg_id] = []
                    batch.append({"type": fact.type, "fact_id": fact.id, "content_hash": fact.content_hash,
                                  "fields": fact.fields})
                elif fact.type in COMMANDS:
                    cls, key = _aggregate_of(fact)
                    agg = aggregate(cls, key)
                    if fact.type in ANSWERS:
                        agg.check_answers(fact.fields.get("refers_to"), ANSWERS[fact.type])
                    COMMANDS[fact.type](agg, fact)
                    agg_id = agg.id
                else:
                    cls, kwargs = _creation(fact, loc.jurisdiction)
                    if (cls, kwargs["key"]) in touched:
                        agg = cls(**kwargs)
                        aggregates[agg.id] = agg
                        agg_id = agg.id
                    else:
                        created.append(self.store.creation(cls, **kwargs))
                        agg_id = created[-1][0]
            except DomainError as exc:
                raise refuse(loc, str(exc)) from None
            except KeyError as exc:  # pragma: no cover - guarded above; keeps the message clear
                raise refuse(loc, f"cannot apply: missing {exc}") from None
            f = fact.fields
            if agg_id is not last_agg:  # (consecutive facts often act on one aggregate)
                last_agg, agg_text = agg_id, str(agg_id)
            if fact.type == "training-recorded":  # (its only read-model row: see adapters.store.training)
                training_rows.append(training_table_row(seq, fact.id, f, loc.jurisdiction, recorded_at,
                                                        fact.content_hash, agg_text, actor, file))
            else:
                rows.append((seq, fact.id, fact.type, f.get("date"), fact.subject,
                             f.get("refers_to") or f.get("retracts"), fact.payload, fact.content_hash,
                             loc.jurisdiction, agg_text, recorded_at, actor, file))
            seq += 1
            if progress and (n % 1000 == 0 or n == total):
                progress(n, total)
        for agg_id, batch in task_facts.items():  # (the plans' task facts not stored before a retraction)
            aggregates[agg_id].record_task_facts(batch)
        result.by_type.update(loc.fact.type for loc in new)
        if register:
            created.append(self.store.creation(TrainingRegister, key=register_key,
                                               records=EncodedJSON("[" + ",".join(register) + "]")))
            assert created[-1][0] == register_id
        self.store.append(session, [a for a in aggregates.values() if a.pending_events], created)
        self.store.insert_rows(session, "facts", FACT_COLUMNS, rows)
        self.store.insert_rows(session, "training", TRAINING_COLUMNS, training_rows)
        result.recorded = len(rows) + len(training_rows)

    SHARED_TYPES = ("unit-registered", "center-registered", "plan-published", "event-retracted")

    # A person's training records as columns (rules.view.TrainingDigest), read by the store in one
    # pass over the covering index on (person, date, seq, …), in that order. On PostgreSQL, ORDER
    # BY says so. On SQLite, the aggregates see the rows in the order of the index scan that does
    # the grouping: the plan is checked once (no temporary B-tree), and where it is not that plan,
    # the seqs are read too and every person's order is checked. The last column says whether
    # some hours are not whole quarter hours (no digest then).
    _DIGEST_SQLITE = (
        "SELECT person, group_concat(date), {seqs}, json_group_array(fact_id), "
        "group_concat(CAST(hours * 4 AS INTEGER)), group_concat(off_job, ''), "
        "max(hours * 4 <> CAST(hours * 4 AS INTEGER)) "
        "FROM training INDEXED BY training_digest_idx WHERE seq <= ?{people} GROUP BY person")
    _DIGEST_PG = (
        "SELECT person, string_agg(date, ',' ORDER BY date, seq), NULL, "
        "json_agg(fact_id ORDER BY date, seq)::text, "
        "string_agg(trunc(hours * 4)::bigint::text, ',' ORDER BY date, seq), "
        "string_agg(off_job::text, '' ORDER BY date, seq), bool_or(hours * 4 <> trunc(hours * 4)) "
        "FROM training WHERE seq <= %s{people} GROUP BY person")
    _FLAGS = bytes.maketrans(b"01", b"\x00\x01")

    def _top(self) -> int:
        """The highest seq committed (writes take their seqs in commit order)."""
        with self.store.reading() as session:
            return session.connection().exec_driver_sql(self.store.TOP_SEQ).scalar() or 0

    def _refresh(self, training: bool = True, top: int | None = None) -> int:
        """Bring the in-memory read model up to date: rows with a higher seq than the last seen
        (up to `top`, or the highest committed), and (when asked, or once they are held) the
        training records. Training records come from the narrow `training` table as plain tuples
        (see rules.view.TRAINING_FIELDS); everything else from `facts`, with its fields decoded.
        Returns the highest seq now known."""
        if top is None:
            top = self._top()
        self._restore(top)
        with self.store.reading() as session:
            dbapi = session.connection().connection.dbapi_connection
            between = (f"seq > {self._mark} AND seq <= {self._mark}", (self._training_seq, top))
            if (training or self._training_held) and top > self._training_seq:
                if top > self._last_seq and not self.store.is_sqlite:
                    # PostgreSQL reads the training records on a second connection while this
                    # one reads the other facts (the server's scan overlaps this process's work)
                    with ThreadPoolExecutor(1, thread_name_prefix="metrolex-training") as pool:
                        pending = pool.submit(self._read_training_apart, *between)
                        self._read_rows(dbapi, top)
                        fresh = pending.result()
                else:
                    if top > self._last_seq:
                        self._read_rows(dbapi, top)
                    fresh = self._read_training(dbapi, *between)
                self._hold_training(fresh, top)
            elif top > self._last_seq:
                self._read_rows(dbapi, top)
        return top

    def _read_training_apart(self, where: str, params: tuple) -> list[tuple]:
        with self.store.reading() as session:
            return self._read_training(session.connection().connection.dbapi_connection, where, params)

    @property
    def _mark(self) -> str:
        return self.store.mark

    def _cursor(self, dbapi, name: str):
        # PostgreSQL: a server-side cursor, so that a batch at a time crosses the wire (a client
        # cursor would hold the whole result in libpq's memory first).
        return dbapi.cursor() if self.store.is_sqlite else dbapi.cursor(name=f"metrolex_{name}")

    def _read_rows(self, dbapi, top: int) -> None:
        mark = self._mark
        cur = self._cursor(dbapi, "facts")
        try:
            cur.execute(
                "SELECT seq, fact_id, type, date, subject, refers, payload, jurisdiction, recorded_at FROM facts "
                f"WHERE seq > {mark} AND seq <= {mark} AND type <> 'training-recorded' ORDER BY seq",
                (self._last_seq, top))
            loads = json.loads
            # Values that repeat across rows (types, dates, commit times, courses …) are kept
            # once: a million training records would otherwise hold a million copies of each.
            # Rows come in batches (memory stays flat), and a batch's payloads are decoded
            # as one JSON array, so their keys are shared too.
            same = self._interned.setdefault
            place = self._place
            retractions: list[str] = []
            while True:
                batch = cur.fetchmany(5000)
                if not batch:
                    break
                decoded = loads("[" + ",".join(r[6] for r in batch) + "]")
                items = []
                for (seq, fact_id, type_, date, subject, refers, _, jurisdiction, recorded_at), fields \
                        in zip(batch, decoded):
                    item = {"seq": seq, "fact_id": fact_id, "type": same(type_, type_),
                            "date": same(date, date) if date else date, "subject": subject,
                            "refers": refers, "fields": fields, "jurisdiction": same(jurisdiction, jurisdiction),
                            "recorded_at": same(recorded_at, recorded_at)}
                    items.append(item)
                    if type_ == "event-retracted":
                        retractions.append(refers)
                self._rows += items
                place(items)
                del batch, decoded, items
        finally:
            cur.close()
        cur = dbapi.cursor()
        try:
            for i in range(0, len(retractions), 500):  # whose training records are retracted (a few)
                part = retractions[i:i + 500]
                cur.execute(f"SELECT person FROM training WHERE fact_id IN ({', '.join([mark] * len(part))})",
                            tuple(part))
                self._retracted_people.update(p for p, in cur.fetchall())
        finally:
            cur.close()
        self._last_seq = top

    def _place(self, items: list[dict]) -> None:
        """Each row held by the subject it is about, or among the rows every subject's judging reads."""
        shared, by_subject, shared_types = self._shared, self._by_subject, self.SHARED_TYPES
        for item in items:
            subject = item["subject"]
            if not subject or item["type"] in shared_types:
                shared.append(item)
            else:
                held = by_subject.get(subject)
                if held is None:
                    by_subject[subject] = [item]
                else:
                    held.append(item)

    def _read_training(self, dbapi, where: str, params: tuple) -> list[tuple]:
        """Training records as compact tuples, in seq order."""
        same = self._interned.setdefault
        cur = self._cursor(dbapi, "training")
        try:
            cur.execute(f"SELECT {', '.join(TRAINING_FIELDS)} FROM training WHERE {where} ORDER BY seq", params)
            fresh = []
            while True:
                batch = cur.fetchmany(20000)
                if not batch:
                    break
                fresh.extend([(same(d, d), seq, fid, hours, off_job, person,
                               same(course, course) if course else course, note, same(jur, jur), same(rec, rec))
                              for d, seq, fid, hours, off_job, person, course, note, jur, rec in batch])
                del batch
        finally:
            cur.close()
        return fresh

    @staticmethod
    def _grouped(records: list[tuple], into: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
        """Records added to their person's list in `into`, each list in (date, seq) order and
        replaced, never changed in place (a snapshot may be handing out the old one)."""
        added: dict[str, list[tuple]] = {}
        for t in records:
            lst = added.get(t[T_PERSON])
            if lst is None:
                added[t[T_PERSON]] = [t]
            else:
                lst.append(t)
        for person, new in added.items():
            old = into.get(person)
            merged = new if old is None else old + new
            merged.sort()  # in C, and fast on the sorted runs it mostly is
            into[person] = merged
        return into

    def _hold_training(self, fresh: list[tuple], top: int) -> None:
        self._training.extend(fresh)
        self._grouped(fresh, self._training_by_person)
        self._training_seq = top
        self._training_held = True
        # Holding every record, a service does not also hold everyone's digest (at full, both
        # would be ~300 MB more than either): its sweeps judge from the records.
        self._digest_cache = None

    def _training_of_people(self, people: Iterable[str], top: int) -> dict[str, list[tuple]]:
        """Some people's training records (through the index on person), grouped and ordered as
        the held ones are; for when not every record is held."""
        people = sorted(set(people))
        out: dict[str, list[tuple]] = {}
        if not people:
            return out
        mark = self._mark
        with self.store.reading() as session:
            dbapi = session.connection().connection.dbapi_connection
            for i in range(0, len(people), 500):
                part = people[i:i + 500]
                self._grouped(self._read_training(
                    dbapi, f"person IN ({', '.join([mark] * len(part))}) AND seq <= {mark}", (*part, top)), out)
        return out

    def _digests(self, top: int, people: list[str] | None = None) -> tuple[dict[str, TrainingDigest], set[str]]:
        """Every person's (or these people's) training records up to `top` as digests, and the
        people who get none (some hours not whole quarter hours, or records not in order): their
        records are read one by one. One query, one row per person."""
        sqlite = self.store.is_sqlite
        rows: list[tuple] = []
        with self.store.reading() as session:
            cur = session.connection().connection.dbapi_connection.cursor()
            try:
                if sqlite and self._digest_in_index_order is None:
                    cur.execute("EXPLAIN QUERY PLAN " + self._DIGEST_SQLITE.format(seqs="NULL", people=""), (top,))
                    plan = " | ".join(str(r[-1]) for r in cur.fetchall())
                    self._digest_in_index_order = ("COVERING INDEX training_digest_idx" in plan
                                                   and "TEMP B-TREE" not in plan)
                # some people: a search of the index, not the scan whose plan was checked
                seqs = "NULL" if self._digest_in_index_order and people is None else "group_concat(seq)"
                parts = [people[i:i + 500] for i in range(0, len(people), 500)] if people is not None else [[]]
                for part in parts:
                    where = f" AND person IN ({', '.join([self._mark] * len(part))})" if part else ""
                    sql = (self._DIGEST_SQLITE.format(seqs=seqs, people=where) if sqlite
                           else self._DIGEST_PG.format(people=where))
                    cur.execute(sql, (top, *part))
                    rows.extend(cur.fetchall())
            finally:
                cur.close()
        ids = json.loads("[" + ",".join(r[3] for r in rows) + "]")
        flags_of = self._FLAGS
        digests: dict[str, TrainingDigest] = {}
        refused: set[str] = set()
        for (person, dates, seqs, _, quarters, flags, inexact), person_ids in zip(rows, ids):
            if inexact:
                refused.add(person)
                continue
            dates = dates.split(",")
            if seqs is not None:  # SQLite, not grouping by the index scan: check each order
                keys = list(zip(dates, map(int, seqs.split(","))))
                if keys != sorted(keys):
                    refused.add(person)
                    continue
            digests[person] = TrainingDigest(dates, person_ids, list(map(int, quarters.split(","))),
                                             flags.encode("ascii").translate(flags_of))
        return digests, refused

    def _current_digests(self, top: int) -> tuple[dict[str, TrainingDigest], set[str]]:
        """The digests as of `top` (copies of the containers; the digests are not changed by
        anyone): kept between checks, and only the people with new training records read again."""
        held = self._digest_cache
        if held is None:
            digests, refused = self._digests(top)
        else:
            digests, refused = dict(held[1]), set(held[2])
            if held[0] != top:
                with self.store.reading() as session:
                    changed = sorted({p for (p,) in session.connection().exec_driver_sql(
                        f"SELECT DISTINCT person FROM training WHERE seq > {self._mark} AND seq <= {self._mark}",
                        (held[0], top))})
                if changed:
                    fresh, fresh_refused = self._digests(top, changed)
                    for person in changed:
                        digests.pop(person, None)
                        refused.discard(person)
                    digests.update(fresh)
                    refused |= fresh_refused
        self._digest_cache = (top, digests, refused)
        return dict(digests), set(refused)

    # -- read-model checkpoints ------------------------------------------------------------------
    # What a row and a digest hold, and how they are written: a body of another format is not
    # read (change this when either changes).
    CHECKPOINT_FORMAT = f"(rows9,digests4)/marshal{marshal.version}"
    checkpoint_every = 1000  # facts recorded since the newest checkpoint before a sweep writes one

    @property
    def _checkpoint_format(self) -> str:
        # PostgreSQL sends a bytea as hex text: compressed (zlib, fastest level) it is a quarter
        # of the size, and fetching and inflating it takes half the time (medium: 56 -> ~27 ms);
        # SQLite hands the bytes over as they are stored, so there compressing costs more than it saves
        return self.CHECKPOINT_FORMAT + ("" if self.store.is_sqlite else "+zlib1")

    def _restore(self, top: int, digests: bool = False) -> None:
        """A fresh service starts from the newest read-model checkpoint at or below `top` (see
        adapters.store.read_checkpoints), if there is one it can read; then only the facts after
        it are read. Tried once; a service that already holds rows never restores. The digests
        are read too only for a sweep (`digests`): a replay does not hold them (at full, 100,000
        people's)."""
        if self._restore_tried:
            return
        self._restore_tried = True
        if self._last_seq:
            return
        with self.store.reading() as session:
            found = session.connection().exec_driver_sql(
                f"SELECT seq, format, body FROM read_checkpoints WHERE seq <= {self._mark} "
                "ORDER BY seq DESC LIMIT 1", (top,)).first()
        if found is None:
            return
        seq, form, body = found
        if form != self._checkpoint_format:
            structlog.get_logger("metrolex.record").info("checkpoint.skipped", seq=seq, format=form,
                                                         reason="another format")
            return
        try:
            body = bytes(body) if self.store.is_sqlite else zlib.decompress(body)
            rows_part, digests_part = marshal.loads(body)  # two bodies: either is read alone
            del body
            rows, retracted = marshal.loads(rows_part)
            del rows_part
            restored = [{"seq": r[0], "fact_id": r[1], "type": r[2], "date": r[3], "subject": r[4], "refers": r[5],
                         "fields": r[6], "jurisdiction": r[7], "recorded_at": r[8]} for r in rows]
            del rows
            held = None
            if digests and self._digest_cache is None:
                people, refused = marshal.loads(digests_part)
                new = tuple.__new__
                held = {person: new(TrainingDigest, d) for person, d in people.items()}
            del digests_part
        except (ValueError, EOFError, TypeError, IndexError, KeyError, zlib.error) as exc:
            structlog.get_logger("metrolex.record").warning("checkpoint.unreadable", seq=seq, error=str(exc))
            return
        self._place(restored)
        self._rows = restored
        self._retracted_people = set(retracted)
        self._last_seq = self._checkpoint_seq = seq
        if held is not None:
            self._digest_cache = (seq, held, set(refused))

    def _write_checkpoint(self, top: int) -> None:
        """After a sweep: the rows and digests it read, as of `top`, once `checkpoint_every`
        facts have been recorded since the newest checkpoint; older ones are dropped. A store
        that cannot take it (read-only, busy) is left as it is: the sweep does not depend on it."""
        held = self._digest_cache
        if top - self._checkpoint_seq < self.checkpoint_every or held is None or held[0] != top \
                or self._last_seq != top:
            return
        # Text that repeats (types, dates, people, field names, commit times …) goes in once:
        # marshal writes one object met again as a reference to it, and reads it back as one
        # (medium: 100,000 dates in the digests are 2,480 texts; a fresh process reads the
        # digests in 21 ms instead of 28, and holds fewer objects).
        pool: dict = {}
        share = partial(_shared, pool=pool)
        rows = [(r["seq"], r["fact_id"], share(r["type"]), share(r["date"]), share(r["subject"]), share(r["refers"]),
                 share(r["fields"]), share(r["jurisdiction"]), share(r["recorded_at"])) for r in self._rows]
        digests = {p: (list(map(share, d.dates)), d.ids, d.quarters, d.off_job) for p, d in held[1].items()}
        body = marshal.dumps((marshal.dumps((rows, sorted(self._retracted_people))),
                              marshal.dumps((digests, sorted(held[2])))))
        del rows, digests, pool
        if not self.store.is_sqlite:
            body = zlib.compress(body, 1)
        try:
            with self.store.engine.begin() as conn:
                # not wait long behind a load (on SQLite, for its write lock): the next sweep writes it
                conn.exec_driver_sql("PRAGMA busy_timeout = 200" if self.store.is_sqlite
                                     else "SET LOCAL lock_timeout = '200ms'")
                try:
                    # older ones go, and one at this seq too: written by another version, or
                    # unreadable, it would otherwise stand in the way of this one for good
                    conn.execute(text("DELETE FROM read_checkpoints WHERE seq <= :seq"), {"seq": top})
                    conn.execute(text("INSERT INTO read_checkpoints (seq, format, written_at, body) "
                                      "VALUES (:seq, :format, :at, :body) ON CONFLICT (seq) DO NOTHING"),
                                 {"seq": top, "format": self._checkpoint_format,
                                  "at": format_instant(self.store.clock()), "body": body})
                finally:
                    if self.store.is_sqlite:
                        conn.exec_driver_sql("PRAGMA busy_timeout = 60000")
        except SQLAlchemyError as exc:
            structlog.get_logger("metrolex.record").warning("checkpoint.not_written", seq=top,
                                                            error=str(exc).splitlines()[0])
            return
        self._checkpoint_seq = top

    def snapshot(self, known_at: str | None = None, subjects: Iterable[str] | None = None,
                 digest: bool = False) -> Snapshot:
        """The read model for evaluation: the rows (dicts) of everything but training records,
        and the training records as compact tuples — optionally as known at a commit time (UTC
        text) and optionally only what bears on some subjects (their own facts plus the shared
        ones: units, centers, plans, retractions), which is how one new event is re-judged fast.

        With `digest` (and neither of the others), most people's training records come as
        digests (rules.view.TrainingDigest) straight from the store, and only the others' one by
        one: what judging the yearly totals needs, without a tuple per record — unless this
        service already holds every record (after a replay or a reminder sweep): then those.

        Kept in memory and brought up to date incrementally: writes serialize on the store's
        write lock and take their seqs under it, so seq order is commit order. Training records
        are held once something has needed all of them (a full snapshot, a replay)."""
        digest = digest and known_at is None and subjects is None and not self._training_held
        with self._cache_lock, paused_gc(keep=True):
            digests = None
            if digest:
                top = self._top()
                self._restore(top, digests=True)
                if self.store.is_sqlite:
                    self._refresh(training=False, top=top)
                    digests, refused = self._current_digests(top)
                else:
                    # PostgreSQL groups the digests in its own process, on a second connection,
                    # while this one reads the other facts (at medium: 0.26 s -> 0.16 s); both up
                    # to the same seq, so they agree. (On SQLite both are this process's work,
                    # under one interpreter lock: in a thread it was slower.)
                    with ThreadPoolExecutor(1, thread_name_prefix="metrolex-digests") as pool:
                        pending = pool.submit(self._current_digests, top)
                        self._refresh(training=False, top=top)
                        digests, refused = pending.result()
                self._write_checkpoint(top)
                rows, training = list(self._rows), []
                # (people some of whose records are retracted keep their digests: the view leaves
                # those records out, as from a list; at medium 207 people, whose 2,465 records
                # were read again one by one, 10-20 ms of a cold check)
                by_person = self._training_of_people(refused, top)
            elif subjects is None:
                top = self._refresh(training=True)
                rows, training = list(self._rows), list(self._training)
                by_person = dict(self._training_by_person)
            else:
                top = self._refresh(training=False)
                rows, training = list(self._shared), []
                wanted = set(subjects) | {s.split("/")[0] for s in subjects if "/" in s}  # plan/task → plan
                held = self._training_by_person if self._training_held else self._training_of_people(wanted, top)
                by_person = {}
                for subject in wanted:
                    rows.extend(self._by_subject.get(subject, ()))
                    if subject in held:
                        by_person[subject] = held[subject]
                        training.extend(by_person[subject])
                rows.sort(key=lambda r: r["seq"])
        if known_at is not None:
            rows = [r for r in rows if r["recorded_at"] <= known_at]
            training = [t for t in training if t[T_RECORDED] <= known_at]
            by_person = None  # grouped again from the cut list
        return Snapshot(rows, training, by_person,
                        set(self._retracted_people) if by_person is not None else None, digests)

    def fact_rows(self, known_at: str | None = None, subjects: Iterable[str] | None = None) -> list[dict]:
        """Every fact of the read model as a plain dict (training records included), in commit
        order; as `snapshot` for `known_at` and `subjects`."""
        return self.snapshot(known_at, subjects).all_rows()


def rows_in_memory(doc: FactsDocument, recorded_at: str = "1970-01-01T00:00:00.000000+00:00",
                   start_seq: int = 1) -> list[dict]:
    """The read-model rows a document would produce, without a store (for pure evaluation in
    tests and previews). References are not checked here; `RecordService.load` checks them."""
    rows = []
    for seq, loc in enumerate(_order(facts_of(doc)), start=start_seq):
        fact = loc.fact
        rows.append({"seq": seq, "fact_id": fact.id, "type": fact.type, "date": fact.date,
                     "subject": fact.subject, "refers": fact.fields.get("refers_to") or fact.fields.get("retracts"),
                     "fields": json.loads(canonical_json(fact.fields)), "jurisdiction": loc.jurisdiction,
                     "recorded_at": recorded_at})
    return rows
