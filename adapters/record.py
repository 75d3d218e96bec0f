"""The record's application service: facts in, aggregates and read-model rows out, one
transaction per file (all of it or none of it).

A fact already recorded with the same content is a no-op; the same id with other content, an
unknown reference, or an answer that names the wrong kind of event refuses the whole file.
"""
from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from uuid import UUID

from sqlalchemy import select

from adapters.facts_file import FactsDocument, FileError, RawRecord
from adapters.store import Store, facts
from domain.assessment import IndicatorReport, PlanEvaluation
from domain.center import Center
from domain.errors import DomainError
from domain.facts import (ANSWERS, Fact, FieldError, canonical_json, derive_event_id, parse_event,
                          parse_registration)
from domain.person import Person
from domain.plan import WorkPlan
from domain.subject import Subject
from domain.training import TrainingRecord
from domain.unit import Unit

REF_PREFIX = {"unit": "unit:", "person": "person:", "center": "center:", "plan": "plan:"}


@dataclass
class LoadResult:
    file: str
    recorded: int = 0
    repeated: int = 0
    by_type: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"file": self.file, "recorded": self.recorded, "already_recorded": self.repeated,
                "by_type": dict(sorted(self.by_type.items()))}


@dataclass
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


def _create(fact: Fact, jurisdiction: str) -> Subject:
    f, h = fact.fields, fact.content_hash
    if fact.type == "unit-registered":
        return Unit(f["id"], fact.id, h, f["name"], f["kind"], f["jurisdiction"], f.get("lead_lab_since"),
                    f.get("supervisor"), _contacts(f))
    if fact.type == "person-registered":
        return Person(f["id"], fact.id, h, f["name"], f["unit"], f["duties"], f.get("since"), _contacts(f))
    if fact.type == "center-registered":
        return Center(f["id"], fact.id, h, f["name"], f["host"], _contacts(f))
    if fact.type == "plan-published":
        return WorkPlan(f["key"], fact.id, h, f["jurisdiction"], f["year"], f["document"], f["groups"], f["tasks"])
    if fact.type == "training-recorded":
        return TrainingRecord(fact.id, fact.id, h, f["person"], f["date"], f["hours"], f["off_job"], f.get("course"))
    if fact.type == "indicator-reported":
        return IndicatorReport(fact.id, fact.id, h, jurisdiction, f["indicator"], f["value"], f["date"])
    if fact.type == "plan-evaluated":
        return PlanEvaluation(fact.id, fact.id, h, jurisdiction, f["evaluation"], f["date"])
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
    "task-reassigned": lambda a, x: a.reassign_task(x.id, x.content_hash, x.date, x.fields["task"],
                                                    x.fields["leads"], x.fields.get("supporting", [])),
    "task-milestone-set": lambda a, x: a.set_milestone(x.id, x.content_hash, x.date, x.fields["task"],
                                                       x.fields["name"], x.fields["due"]),
    "task-progress-reported": lambda a, x: a.report_progress(x.id, x.content_hash, x.date, x.fields["task"],
                                                             x.fields["unit"], x.fields["text"], x.fields.get("milestone")),
    "task-completed": lambda a, x: a.complete_task(x.id, x.content_hash, x.date, x.fields["task"], x.fields.get("unit")),
}


def facts_of(doc: FactsDocument) -> list[Located]:
    """Records → facts, refusing the first bad record with its line and field."""
    out: list[Located] = []
    seen: dict[str, Located] = {}
    occurrences: Counter = Counter()
    for raw in doc.records:
        try:
            if raw.section == "events":
                given, fact_type, fields = parse_event(raw.data)
                if given is None:
                    key = canonical_json({"type": fact_type, **fields})
                    given = derive_event_id(fact_type, fields, occurrences[key])
                    occurrences[key] += 1
                fact = Fact(given, fact_type, fields)
            else:
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


def _label(raw: RawRecord | None) -> str | None:
    if raw is None:
        return None
    rid = raw.data.get("id") if isinstance(raw.data, dict) else None
    return raw.label + (f" id={rid}" if rid else "")


def _order(items: list[Located]) -> list[Located]:
    """Registrations first (units, centers, people, plans), then events; answers after what they
    answer; retractions last — so a file may list things in any order."""
    rank = {"unit-registered": 0, "center-registered": 1, "person-registered": 1, "plan-published": 1}

    def key(item: tuple[int, Located]) -> tuple[int, int]:
        i, loc = item
        t = loc.fact.type
        if t in rank:
            return rank[t], i
        if t == "event-retracted":
            return 4, i
        if t in ANSWERS:
            return 3, i
        return 2, i

    return [loc for _, loc in sorted(enumerate(items), key=key)]


class RecordService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: list[dict] = []
        self._shared: list[dict] = []
        self._by_subject: dict[str, list[dict]] = {}
        self._last_seq = 0
        self._cache_lock = threading.Lock()

    # -- queries against the read model inside the write transaction -------------------------
    @staticmethod
    def _known(session, ids: Iterable[str]) -> dict[str, Any]:
        ids = list(set(ids))
        found: dict[str, Any] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for row in session.execute(select(facts.c.fact_id, facts.c.content_hash, facts.c.type,
                                              facts.c.subject, facts.c.aggregate, facts.c.payload)
                                       .where(facts.c.fact_id.in_(chunk))):
                found[row.fact_id] = row
        return found

    def load(self, doc: FactsDocument, actor: str = "cli",
             progress: Callable[[int, int], None] | None = None) -> LoadResult:
        located = facts_of(doc)
        result = LoadResult(doc.file)
        with self.store.writing() as session:
            self._record(session, doc.file, located, actor, result, progress)
        return result

    def record_facts(self, items: list[Fact], source: str, actor: str, jurisdiction: str = "shanghai") -> LoadResult:
        """Record facts built elsewhere (API, plan import): the same checks, one transaction."""
        result = LoadResult(source)
        with self.store.writing() as session:
            self._record(session, source, [Located(f, None, jurisdiction) for f in items], actor, result, None)
        return result

    def _record(self, session, file: str, located: list[Located], actor: str, result: LoadResult,
                progress: Callable[[int, int], None] | None) -> None:
        def refuse(loc: Located, message: str, field_name: str | None = None) -> FileError:
            raw = loc.raw
            line = (raw.field_lines.get(field_name or "", raw.line) if raw else None)
            return FileError(file, message, line=line, field_name=field_name, record=_label(raw) or loc.fact.id)

        wanted = {loc.fact.id for loc in located}
        for loc in located:
            for _, kind, ref in loc.fact.references():
                wanted.add(REF_PREFIX.get(kind, "") + str(ref))
        known = self._known(session, wanted)
        in_file = {loc.fact.id: loc.fact for loc in located}

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
            for name, kind, ref in fact.references():
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
                else:
                    key = REF_PREFIX[kind] + str(ref)
                    if key not in in_file and key not in known:
                        raise refuse(loc, f"unknown {kind} {ref!r}", name)

        aggregates: dict[Any, Subject] = {}

        def aggregate(cls: type[Subject], key: str) -> Subject:
            agg_id = cls.create_id(key)
            if agg_id not in aggregates:
                aggregates[agg_id] = self.store.app.repository.get(agg_id)
            return aggregates[agg_id]

        rows = []
        recorded_at = session.info["recorded_at"]
        total = len(new)
        for n, loc in enumerate(_order(new), start=1):
            fact = loc.fact
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
                    agg.check_can_retract(target, fact.id)
                    agg.retract(target, fact.id, fact.content_hash, fact.date, fact.fields.get("reason") or "")
                elif fact.type in COMMANDS:
                    cls, key = _aggregate_of(fact)
                    agg = aggregate(cls, key)
                    if fact.type in ANSWERS:
                        agg.check_answers(fact.fields.get("refers_to"), ANSWERS[fact.type])
                    if hasattr(agg, "check_task") and "task" in fact.fields:
                        agg.check_task(fact.fields["task"])
                    COMMANDS[fact.type](agg, fact)
                else:
                    agg = _create(fact, loc.jurisdiction)
                    aggregates[agg.id] = agg
            except DomainError as exc:
                raise refuse(loc, str(exc)) from None
            except KeyError as exc:  # pragma: no cover - guarded above; keeps the message clear
                raise refuse(loc, f"cannot apply: missing {exc}") from None
            rows.append({
                "fact_id": fact.id, "type": fact.type, "date": fact.date, "subject": fact.subject,
                "refers": fact.fields.get("refers_to") or fact.fields.get("retracts"),
                "payload": canonical_json(fact.fields), "content_hash": fact.content_hash,
                "jurisdiction": loc.jurisdiction, "aggregate": str(agg.id), "recorded_at": recorded_at,
                "actor": actor, "source": file,
            })
            result.by_type[fact.type] += 1
            if progress and (n % 1000 == 0 or n == total):
                progress(n, total)
        if aggregates:
            self.store.append(session, [a for a in aggregates.values() if a.pending_events])
        for i in range(0, len(rows), 1000):
            session.execute(facts.insert(), rows[i:i + 1000])
        result.recorded = len(rows)

    SHARED_TYPES = ("unit-registered", "center-registered", "plan-published", "event-retracted")

    def _refresh(self) -> None:
        q = select(facts.c.seq, facts.c.fact_id, facts.c.type, facts.c.date, facts.c.subject,
                   facts.c.refers, facts.c.payload, facts.c.jurisdiction, facts.c.recorded_at) \
            .where(facts.c.seq > self._last_seq).order_by(facts.c.seq)
        with self.store.reading() as session:
            for r in session.execute(q):
                row = r._mapping
                item = {"seq": row["seq"], "fact_id": row["fact_id"], "type": row["type"], "date": row["date"],
                        "subject": row["subject"], "refers": row["refers"], "fields": json.loads(row["payload"]),
                        "jurisdiction": row["jurisdiction"], "recorded_at": row["recorded_at"]}
                self._rows.append(item)
                if item["type"] in self.SHARED_TYPES or not item["subject"]:
                    self._shared.append(item)
                else:
                    self._by_subject.setdefault(item["subject"], []).append(item)
                self._last_seq = row["seq"]

    def fact_rows(self, known_at: str | None = None, subjects: Iterable[str] | None = None) -> list[dict]:
        """The read model as plain dicts, optionally as known at a commit time (UTC text), and
        optionally only what bears on some subjects (their own facts plus the shared ones:
        units, centers, plans, retractions) — which is how one new event is re-judged fast.

        Kept in memory and brought up to date incrementally (rows with a higher seq than the
        last one seen): writes serialize on the store's write lock, so seq order is commit order."""
        with self._cache_lock:
            self._refresh()
            if subjects is None:
                rows = list(self._rows)
            else:
                rows = list(self._shared)
                wanted = set(subjects) | {s.split("/")[0] for s in subjects if "/" in s}  # plan/task → plan
                for subject in wanted:
                    rows.extend(self._by_subject.get(subject, ()))
                rows.sort(key=lambda r: r["seq"])
        if known_at is None:
            return rows
        return [r for r in rows if r["recorded_at"] <= known_at]


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
