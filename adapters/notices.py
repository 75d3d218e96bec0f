"""Issuing notices: the scheduler's sweep, the inbox, and the preview (simulate).

Each notice is recorded once: a Notice aggregate whose id derives from its idempotency key,
and a `notices` row with that key as primary key, in the same write transaction; concurrent
sweeps serialize on the store's write lock and the loser finds the notices already there.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from sqlalchemy import func, select

from adapters.store import format_instant, notices, outbox, sweeps
from domain.notice import Notice
from rules.judgment import Judgment
from scheduler.messages import render
from scheduler.policy import PlannedNotice, plan_notices


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
             judgments: list[Judgment] | None = None) -> list[PlannedNotice]:
        rows = self.app.record.fact_rows() if rows is None else rows
        judgments = self.app.compliance.check(as_of, rows=rows) if judgments is None else judgments
        divisions, supervisors, _, copies = self._context(rows)
        policies = {v.id: v.reminders for v in self.app.catalogue.in_force(as_of)}
        return plan_notices(judgments, policies, as_of, divisions, supervisors, copies)

    def watermark(self) -> str | None:
        with self.app.store.reading() as s:
            return s.execute(select(func.max(sweeps.c.as_of))).scalar()

    # -- the sweep -------------------------------------------------------------------------------
    def sweep(self, as_of: dt.date, by: str = "remind") -> SweepResult:
        result = SweepResult(as_of.isoformat())
        rows = self.app.record.fact_rows()
        planned = self.plan(as_of, rows)
        _, _, contacts, _ = self._context(rows)
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
            aggregates, rows_out, deliveries = [], [], []
            for p in fresh:
                message = {lang: render(p, lang) for lang in ("zh", "en")}
                aggregates.append(Notice(p.key, p.rule, p.rule_version, p.subject, p.period, p.kind, p.step,
                                         p.due, as_of.isoformat(), p.recipient, list(p.copy_to), message))
                payload = p.to_json() | {"message": message, "as_of": as_of.isoformat(), "issued_at": issued_at}
                rows_out.append({"key": p.key, "rule": p.rule, "subject": p.subject, "kind": p.kind, "step": p.step,
                                 "recipient": p.recipient, "copy_to": json.dumps(list(p.copy_to), ensure_ascii=False),
                                 "due": p.due, "as_of": as_of.isoformat(), "issued_at": issued_at,
                                 "payload": json.dumps(payload, ensure_ascii=False)})
                for who in (p.recipient, *p.copy_to):
                    for channel, address in contacts.get(who, {}).items():
                        deliveries.append({"notice_key": p.key, "channel": channel, "address": address,
                                           "payload": json.dumps(payload, ensure_ascii=False), "attempts": 0,
                                           "next_attempt_at": 0.0, "status": "pending"})
            if aggregates:
                store.app.save(*aggregates)
                session.execute(notices.insert(), rows_out)
            if deliveries:
                session.execute(outbox.insert(), deliveries)
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
        rows = self.app.record.fact_rows()
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


def now_instant(app) -> str:
    return format_instant(app.clock())
