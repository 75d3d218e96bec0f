"""The facts as the rules see them on one as-of date, from the read-model rows.

Retracted facts are gone (for every as-of date, once the retraction is known); events dated
after the as-of date have not happened yet. Pure: built from plain rows.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

STATUTORY = ("mandatory-verification", "type-evaluation")


@lru_cache(maxsize=8192)
def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@dataclass(frozen=True)
class F:
    """One fact in the view."""
    id: str
    type: str
    date: dt.date | None
    seq: int
    fields: dict[str, Any]
    jurisdiction: str | None = None


@dataclass
class Interval:
    start: dt.date
    end: dt.date | None  # the day the subject left (inclusive), or None

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass
class FactView:
    as_of: dt.date
    units: dict[str, dict] = field(default_factory=dict)
    people: dict[str, dict] = field(default_factory=dict)
    centers: dict[str, dict] = field(default_factory=dict)
    plans: dict[str, dict] = field(default_factory=dict)
    by_type: dict[str, list[F]] = field(default_factory=lambda: defaultdict(list))
    by_subject: dict[tuple[str, str], list[F]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, rows: Iterable[dict], as_of: dt.date) -> "FactView":
        rows = list(rows)
        retracted = {r["refers"] for r in rows if r["type"] == "event-retracted"}
        view = cls(as_of)
        cut = as_of.isoformat()
        # Rows sorted once by (date, seq): every per-type and per-subject list comes out ordered.
        rows.sort(key=lambda r: (r.get("date") or "", r["seq"]))
        for r in rows:
            if r["fact_id"] in retracted or r["type"] == "event-retracted":
                continue
            fields = r["fields"]
            t = r["type"]
            if t == "unit-registered":
                view.units[fields["id"]] = dict(fields, lead_lab_ended=None)
                continue
            if t == "person-registered":
                view.people[fields["id"]] = dict(fields)
                continue
            if t == "center-registered":
                view.centers[fields["id"]] = dict(fields)
                continue
            if t == "plan-published":
                view.plans[fields["key"]] = dict(fields)
                continue
            if r.get("date") and r["date"] > cut:
                continue
            day = _day(r["date"]) if r.get("date") else None
            f = F(r["fact_id"], t, day, r["seq"], fields, r.get("jurisdiction"))
            view.by_type[t].append(f)
            subject = r.get("subject")
            if subject:
                view.by_subject[(t, subject)].append(f)
        return view

    def of(self, fact_type: str, subject: str) -> list[F]:
        return self.by_subject.get((fact_type, subject), [])

    # -- jurisdictions ---------------------------------------------------------------------
    def unit_jurisdiction(self, unit_id: str | None) -> str | None:
        unit = self.units.get(unit_id or "")
        return unit.get("jurisdiction") if unit else None

    def person_jurisdiction(self, person_id: str) -> str | None:
        return self.unit_jurisdiction(self.people[person_id].get("unit"))

    def center_jurisdiction(self, center_id: str) -> str | None:
        return self.unit_jurisdiction(self.centers[center_id].get("host"))

    # -- subjects over time ------------------------------------------------------------------
    def statutory_intervals(self, person_id: str, duties: Iterable[str] = STATUTORY) -> list[Interval]:
        """When the person held statutory duties; a change to other duties or an end is leaving."""
        person = self.people[person_id]
        duties = set(duties)
        since = person.get("since")
        timeline: list[tuple[dt.date, bool]] = []
        start_day = dt.date.fromisoformat(since) if since else dt.date.min
        timeline.append((start_day, bool(duties & set(person.get("duties", [])))))
        changes = self.of("person-duties-changed", person_id) + self.of("person-duties-ended", person_id)
        changes.sort(key=lambda f: (f.date, f.seq))
        for f in changes:
            holds = bool(duties & set(f.fields.get("duties", []))) if f.type == "person-duties-changed" else False
            timeline.append((f.date, holds))
        intervals: list[Interval] = []
        current: Interval | None = None
        for day, holds in timeline:
            if holds and current is None:
                current = Interval(day, None)
            elif not holds and current is not None:
                current.end = day
                intervals.append(current)
                current = None
        if current is not None:
            intervals.append(current)
        return [i for i in intervals if i.start <= self.as_of]

    def lead_lab_interval(self, unit_id: str) -> Interval | None:
        unit = self.units[unit_id]
        starts = [f.date for f in self.of("lead-lab-started", unit_id)]
        since = unit.get("lead_lab_since")
        start = dt.date.fromisoformat(since) if since else (min(starts) if starts else None)
        if start is None or start > self.as_of:
            return None
        ends = [f.date for f in self.of("lead-lab-ended", unit_id) if f.date >= start]
        return Interval(start, min(ends) if ends else None)

    def approved_centers(self, jurisdiction: str):
        """(center id, life) of every center of the jurisdiction approved for construction — the
        centers SH-CNTR binds (批准筹建后)."""
        for cid in sorted(self.centers):
            if self.center_jurisdiction(cid) != jurisdiction:
                continue
            life = self.center_life(cid)
            if life["approval"] is not None:
                yield cid, life

    def center_life(self, center_id: str) -> dict[str, Any]:
        """Approval (with its construction years), acceptance and revocation as of the view."""
        approvals = self.of("center-approved", center_id)
        accepted = self.of("center-accepted", center_id)
        revoked = self.of("center-revoked", center_id)
        return {
            "approval": approvals[0] if approvals else None,
            "accepted": accepted[0].date if accepted else None,
            "accepted_fact": accepted[0] if accepted else None,
            "revoked": revoked[0].date if revoked else None,
            "revoked_fact": revoked[0] if revoked else None,
        }
