"""Issuing notices: the scheduler's sweep, the inbox, and the preview (simulate).

Each notice is recorded once: a Notice aggregate whose id derives from its idempotency key,
and a `notices` row with that key as primary key, in the same write transaction; concurrent
sweeps serialize on the store's write lock and the loser finds the notices already there.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from sqlalchemy import func, select

from adapters.gcpause import paused_gc
from adapters.store import notices, sweeps
from domain.compliance import ComplianceSweep
from domain.notice import Notice
from rules.judgment import Judgment, count_by_status
from rules.view import T_RECORDED, Snapshot
from scheduler.messages import render
from scheduler.policy import PlannedNotice, plan_notices


NOTICE_COLUMNS = ("key", "rule", "subject", "kind", "step", "recipient", "copy_to", "due", "as_of", "issued_at",
                  "payload")
OUTBOX_COLUMNS = ("notice_key", "channel", "address", "payload", "attempts", "next_attempt_at", "status")


@dataclass
class SweepResult:
    as_of: str
    issued: list[PlannedNotice] = field(default_factory=list)
    already: int = 0
    skipped: str | None = None


class NoticeService:
    def __init__(self, app) -> None:
        self.app = app

    # -- inputs of the policy ------------------------------------------------------------------
    def _context(self, rows: list[dict]):
        divisions: dict[str, str] = {}
        supervisors: dict[str, str | None] = {}
        contacts: dict[str, dict] = {}
        for r in rows:
            f = r["fields"]
            if r["type"] == "unit-registered":
                if f.get("kind") == "regulator":
                    divisions.setdefault(f.get("jurisdiction", "shanghai"), f["id"])
                supervisors[f["id"]] = f.get("supervisor")
                contacts[f["id"]] = {k: f[k] for k in ("email", "webhook") if f.get(k)}
        copies: dict[str, list[str]] = {}  # task milestones carry their own (expanded) copies
        return divisions, supervisors, contacts, copies

    def plan(self, as_of: dt.date, rows: list[dict] | None = None,
             judgments: list[Judgment] | None = None, context: tuple | None = None) -> list[PlannedNotice]:
        rows = self.app.record.snapshot() if rows is None else rows
        judgments = self.app.compliance.check(as_of, rows=rows) if judgments is None else judgments
        divisions, supervisors, _, copies = context or self._context(rows.rows if isinstance(rows, Snapshot) else rows)
        policies = {v.id: v.reminders for v in self.app.catalogue.in_force(as_of)}
        return plan_notices(judgments, policies, as_of, divisions, supervisors, copies)

    def watermark(self) -> str | None:
        with self.app.store.reading() as s:
            return s.execute(select(func.max(sweeps.c.as_of))).scalar()

    # -- the sweep -------------------------------------------------------------------------------
    def sweep(self, as_of: dt.date, by: str = "remind") -> SweepResult:
        # Bulk work over every judgment: the cyclic GC would walk the whole read model again and
        # again while the notices, the digest and the rows are built (it took half the time).
        with paused_gc():
            return self._sweep(as_of, by)

    def _sweep(self, as_of: dt.date, by: str) -> SweepResult:
        result = SweepResult(as_of.isoformat())
        mark = self.watermark()  # cheap early exit; checked again under the write lock below
        if mark is not None and as_of.isoformat() < mark:
            result.skipped = f"already swept through {mark}; an earlier date issues nothing new"
            return result
        rows = self.app.record.snapshot()
        known_at = max(max((r["recorded_at"] for r in rows.rows), default=""),
                       max((t[T_RECORDED] for t in rows.training), default="")) or None
        judgments = self.app.compliance.check(as_of, rows=rows)
        context = self._context(rows.rows)
        planned = self.plan(as_of, rows, judgments, context)
        record = judgment_record(self.app, as_of, known_at, judgments)
        del judgments, rows  # what is written from here on is the plan and the record (memory)
        contacts = context[2]
        store = self.app.store
        with store.writing() as session:
            mark = session.execute(select(func.max(sweeps.c.as_of))).scalar()
            if mark is not None and as_of.isoformat() < mark:
                result.skipped = f"already swept through {mark}; an earlier date issues nothing new"
                return result
            keys = [p.key for p in planned]
            existing: set[str] = set()
            for i in range(0, len(keys), 500):
                existing |= set(session.execute(select(notices.c.key).where(notices.c.key.in_(keys[i:i + 500]))).scalars())
            fresh = [p for p in planned if p.key not in existing]
            result.already = len(planned) - len(fresh)
            issued_at = session.info["recorded_at"]
            # In batches, so that a sweep issuing tens of thousands of notices holds one batch of
            # aggregates, rows and deliveries at a time (all in the one transaction).
            for start in range(0, len(fresh), 2000):
                created, rows_out, deliveries = [], [], []
                for p in fresh[start:start + 2000]:
                    message = {lang: render(p, lang) for lang in ("zh", "en")}
                    # A new notice's only event is its creation: stored without building it.
                    Notice.check_kind(p.kind)
                    created.append(store.creation(
                        Notice, key=p.key, rule=p.rule, rule_version=p.rule_version, subject=p.subject,
                        period=p.period, kind=p.kind, step=p.step, due=p.due, as_of=as_of.isoformat(),
                        recipient=p.recipient, copy_to=list(p.copy_to), message=message))
                    payload = json.dumps(p.to_json() | {"message": message, "as_of": as_of.isoformat(),
                                                        "issued_at": issued_at}, ensure_ascii=False)
                    rows_out.append((p.key, p.rule, p.subject, p.kind, p.step, p.recipient,
                                     json.dumps(list(p.copy_to), ensure_ascii=False), p.due, as_of.isoformat(),
                                     issued_at, payload))
                    sent: set[tuple[str, str]] = set()
                    for who in (p.recipient, *p.copy_to):
                        for channel, address in contacts.get(who, {}).items():
                            if (channel, address) in sent:  # two units may share an address
                                continue
                            sent.add((channel, address))
                            deliveries.append((p.key, channel, address, payload, 0, 0.0, "pending"))
                store.append(session, [], created)
                # straight through the driver (executemany / COPY), as the record's rows are
                store.insert_rows(session, "notices", NOTICE_COLUMNS, rows_out)
                store.insert_rows(session, "outbox", OUTBOX_COLUMNS, deliveries)
            if store.app.recorder.select_events(record.id, limit=1) == []:
                store.append(session, [record])
            session.execute(sweeps.insert(), [{"as_of": as_of.isoformat(), "ran_at": issued_at,
                                               "issued": len(fresh), "by": by}])
            result.issued = fresh
        return result

    # -- reading ---------------------------------------------------------------------------------
    def inbox(self, unit: str) -> list[dict]:
        with self.app.store.reading() as s:
            rows = s.execute(select(notices.c.payload).order_by(notices.c.issued_at, notices.c.key)).scalars().all()
        out = []
        for text in rows:
            p = json.loads(text)
            if p["recipient"] == unit or unit in p.get("copy_to", []):
                out.append(p)
        return out

    def issued(self, subject: str | None = None) -> list[dict]:
        q = select(notices.c.payload).order_by(notices.c.issued_at, notices.c.key)
        if subject:
            q = q.where(notices.c.subject == subject)
        with self.app.store.reading() as s:
            return [json.loads(t) for t in s.execute(q).scalars()]

    def simulate(self, start: dt.date, end: dt.date, progress=None) -> list[dict]:
        """What the daily sweep would issue, day by day, without touching the record."""
        rows = self.app.record.snapshot()
        with self.app.store.reading() as s:
            seen = set(s.execute(select(notices.c.key)).scalars())
        out = []
        day = start
        total = (end - start).days + 1
        while day <= end:
            for p in self.plan(day, rows):
                if p.key not in seen:
                    seen.add(p.key)
                    out.append({"date": day.isoformat()} | p.to_json() | {"message": render(p, "zh")})
            if progress:
                progress((day - start).days + 1, total)
            day += dt.timedelta(days=1)
        return out


def judgment_digest(judgments: list[Judgment]) -> str:
    """SHA-256 of the judgments as one JSON array (sorted keys, explanations left out), hashed
    one judgment at a time: the same bytes as `json.dumps([...])`, without holding them."""
    h = hashlib.sha256(b"[")
    encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
    for n, j in enumerate(judgments):
        if n:
            h.update(b", ")
        h.update(encode(j.to_json(explanation=False)).encode())
    h.update(b"]")
    return h.hexdigest()


def rule_versions(app, as_of: dt.date) -> list[str]:
    """The rule versions in force on a day, as a sweep records them."""
    return sorted(f"{v.id}@{v.jurisdiction}:v{v.version}" for v in app.catalogue.in_force(as_of))


def judgment_record(app, as_of: dt.date, known_at: str | None, judgments: list[Judgment]) -> ComplianceSweep:
    versions = rule_versions(app, as_of)
    counts = {status: n for status, n in count_by_status(judgments).items() if n}
    unmet = [[j.rule, j.rule_version, j.subject, j.period, j.trigger, j.due, j.status]
             for j in judgments if j.status in ("open", "overdue", "breached")]
    key = f"{as_of.isoformat()}|{known_at}|{','.join(versions)}"
    return ComplianceSweep(key, as_of.isoformat(), known_at, versions, judgment_digest(judgments), counts, unmet)


def _sweep_records(app):
    from uuid import UUID

    from sqlalchemy import text as sql
    with app.store.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sql(
            "SELECT DISTINCT originator_id FROM record_events WHERE topic LIKE 'domain.compliance:%'"))]
    for agg_id in ids:
        if isinstance(agg_id, (bytes, memoryview)):
            agg_id = UUID(bytes=bytes(agg_id))
        elif not isinstance(agg_id, UUID):
            agg_id = UUID(str(agg_id))
        yield app.store.app.repository.get(agg_id)


def recorded_judgments(app, subject: str) -> list[dict]:
    """The open, overdue and breached judgments the sweeps recorded about a subject."""
    out = []
    for rec in _sweep_records(app):
        for rule, version, subj, period, trigger, due, status in rec.unmet:
            if subj == subject:
                out.append({"as_of": rec.as_of, "known_at": rec.known_at, "rule": rule, "rule_version": version,
                            "period": period, "trigger": trigger, "due": due, "status": status})
    return sorted(out, key=lambda x: (x["as_of"], x["rule"], x["period"]))


def recheck(app) -> list[dict]:
    """Replay every recorded sweep and compare: the determinism an auditor relies on."""
    out = []
    for rec in _sweep_records(app):
        as_of = dt.date.fromisoformat(rec.as_of)
        digest = judgment_digest(app.compliance.check(as_of, rec.known_at))
        out.append({"as_of": rec.as_of, "known_at": rec.known_at, "recorded_digest": rec.digest,
                    "replayed_digest": digest, "same_rule_versions": rule_versions(app, as_of) == rec.rule_versions,
                    "same": digest == rec.digest})
    return sorted(out, key=lambda x: (x["as_of"], x["known_at"] or ""))

