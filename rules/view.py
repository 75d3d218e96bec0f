"""The facts as the rules see them on one as-of date, from the read-model rows.

Retracted facts are gone (for every as-of date, once the retraction is known); events dated
after the as-of date have not happened yet. Pure: built from plain rows.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, NamedTuple

STATUTORY = ("mandatory-verification", "type-evaluation")


_REGISTRATIONS = ("unit-registered", "person-registered", "center-registered", "plan-published")

TRAINING = "training-recorded"
# A training record in compact form: a plain tuple in this order, which sorts by (date, seq).
TRAINING_FIELDS = ("date", "seq", "fact_id", "hours", "off_job", "person", "course", "note", "jurisdiction",
                   "recorded_at")
T_DATE, T_SEQ, T_ID, T_HOURS, T_OFF_JOB, T_PERSON, T_COURSE, T_NOTE, T_JURISDICTION, T_RECORDED = range(10)


def training_fields(t: tuple) -> dict[str, Any]:
    """The fields of a compact training record, as its facts row stores them."""
    # keys in sorted order, as the payload (canonical JSON) decodes
    hours = t[T_HOURS]
    hours = int(hours) if float(hours).is_integer() else hours
    course, note = t[T_COURSE], t[T_NOTE]
    if note is None:  # most records: one literal
        if course is None:
            return {"date": t[T_DATE], "hours": hours, "off_job": bool(t[T_OFF_JOB]), "person": t[T_PERSON]}
        return {"course": course, "date": t[T_DATE], "hours": hours, "off_job": bool(t[T_OFF_JOB]),
                "person": t[T_PERSON]}
    out: dict[str, Any] = {} if course is None else {"course": course}
    out["date"] = t[T_DATE]
    out["hours"] = hours
    out["note"] = note
    out["off_job"] = bool(t[T_OFF_JOB])
    out["person"] = t[T_PERSON]
    return out


def training_row(t: tuple) -> dict[str, Any]:
    """A compact training record as a read-model row (the shape `fact_rows` gives)."""
    return {"seq": t[T_SEQ], "fact_id": t[T_ID], "type": TRAINING, "date": t[T_DATE], "subject": t[T_PERSON],
            "refers": None, "fields": training_fields(t), "jurisdiction": t[T_JURISDICTION],
            "recorded_at": t[T_RECORDED]}


def compact_training(row: dict) -> tuple:
    """A training-recorded read-model row → its compact tuple."""
    f = row["fields"]
    return (row["date"], row["seq"], row["fact_id"], float(f["hours"]), 1 if f["off_job"] else 0, f["person"],
            f.get("course"), f.get("note"), row.get("jurisdiction"), row.get("recorded_at"))


class TrainingDigest(NamedTuple):
    """One person's training records as columns, in (date, seq) order: what the yearly total
    needs (rules.templates.periodic), without a tuple per record; the view leaves out the records
    retracted (`FactView.training_digest`). Only for a person all of whose hours are whole quarter
    hours, so that sums of `quarters` are exact and equal to adding the hours one by one as floats."""
    dates: list[str]
    ids: list[str]
    quarters: list[int]  # hours × 4
    off_job: bytes  # 1 or 0 per record


def digest_of(records: list[tuple]) -> TrainingDigest | None:
    """The digest of one person's compact records (any order), or None when some hours are not
    whole quarter hours (the records are then judged one by one)."""
    ordered = sorted(records)
    quarters = [t[T_HOURS] * 4 for t in ordered]
    if not all(q.is_integer() for q in quarters):
        return None
    return TrainingDigest([t[T_DATE] for t in ordered], [t[T_ID] for t in ordered], [int(q) for q in quarters],
                          bytes(1 if t[T_OFF_JOB] else 0 for t in ordered))


def digest_without(digest: TrainingDigest, gone: set[str]) -> TrainingDigest:
    """The digest without the records whose ids are in `gone` (retracted: a retracted fact is
    gone for every as-of date once the retraction is known); the same digest if none is."""
    ids = digest.ids
    keep = [i for i, fact_id in enumerate(ids) if fact_id not in gone]
    if len(keep) == len(ids):
        return digest
    dates, quarters, flags = digest.dates, digest.quarters, digest.off_job
    return TrainingDigest([dates[i] for i in keep], [ids[i] for i in keep], [quarters[i] for i in keep],
                          bytes([flags[i] for i in keep]))


class DigestModeError(RuntimeError):
    """A rule asked for a person's training records one by one from a view that holds only their
    digest: the caller must judge that rule from a full snapshot."""


@dataclass
class Snapshot:
    """What evaluation reads: read-model rows (dicts) for everything but training records, and
    the training records as compact tuples (a million of them must not cost a million dicts)."""
    rows: list[dict]
    training: list[tuple] = field(default_factory=list)
    # optional: the same training records grouped by person, each list in (date, seq) order;
    # read-only (shared with the cache that made it)
    by_person: dict[str, list[tuple]] | None = None
    # optional, with by_person: the people some of whose training records the rows retract —
    # only their lists need the retractions taken out (None: check every list)
    retracted_people: set[str] | None = None
    # optional, with by_person: the training records of most people as digests instead (see
    # TrainingDigest; the view leaves out the records the rows retract, as from by_person's lists);
    # by_person then holds the records of the others (hours that are not quarter hours), and
    # `training` is empty
    digests: dict[str, TrainingDigest] | None = None

    def all_rows(self) -> list[dict]:
        """Every fact as a dict, in commit (seq) order."""
        if self.digests is not None:
            raise DigestModeError("a snapshot of digests holds no training records one by one")
        if not self.training:
            return list(self.rows)
        out = self.rows + [training_row(t) for t in self.training]
        out.sort(key=lambda r: r["seq"])
        return out


@lru_cache(maxsize=8192)
def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _start_of(person: dict) -> dt.date:
    """The day a person's registration says they started (dt.date.min when it does not say)."""
    since = person.get("since")
    return _day(since) if since else dt.date.min


def _by_date_seq(f: "F") -> tuple:
    return (f.date or dt.date.min, f.seq)


class F(NamedTuple):
    """One fact in the view (immutable; built once per stored row and reused across views)."""
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
    _sorted_ids: set[int] = field(default_factory=set)
    # training records by person, compact (see TRAINING_FIELDS), sorted on first access
    training: dict[str, list[tuple]] = field(default_factory=dict)
    _presorted: dict[str, list[tuple]] | None = None
    # only these subjects are asked about (None: all); templates may skip the others
    wanted: set[str] | None = None
    _cut: str = ""
    _retracted: set = field(default_factory=set)
    _retracted_people: set[str] | None = None
    _digests: dict[str, TrainingDigest] | None = None
    _duties_changed: set[str] | None = None

    @classmethod
    def build(cls, facts: "Snapshot | Iterable[dict]", as_of: dt.date) -> "FactView":
        grouped = None
        if isinstance(facts, Snapshot):
            rows, training, grouped = facts.rows, facts.training, facts.by_person
        else:
            rows, training = (facts if isinstance(facts, list) else list(facts)), []
        retracted = {r["refers"] for r in rows if r["type"] == "event-retracted"}
        view = cls(as_of)
        cut = as_of.isoformat()
        by_type, by_subject = view.by_type, view.by_subject
        by_person = view.training
        if grouped is not None:
            # Already grouped and sorted: cut (as-of, retractions) per person when read.
            view._presorted = grouped
            view._cut, view._retracted = cut, retracted
            view._retracted_people = facts.retracted_people
            view._digests = facts.digests
            training = ()
        for t in training:
            if t[T_DATE] <= cut and t[T_ID] not in retracted:
                lst = by_person.get(t[T_PERSON])
                if lst is None:
                    by_person[t[T_PERSON]] = [t]
                else:
                    lst.append(t)
        new = tuple.__new__  # an F made in C (the same tuple as F(...))
        for r in rows:
            t = r["type"]
            if t == TRAINING:
                if r["fact_id"] not in retracted and (not r.get("date") or r["date"] <= cut):
                    c = compact_training(r)
                    by_person.setdefault(c[T_PERSON], []).append(c)
                continue
            if t == "event-retracted" or r["fact_id"] in retracted:
                continue
            if t in _REGISTRATIONS:
                fields = r["fields"]
                if t == "unit-registered":
                    view.units[fields["id"]] = dict(fields, lead_lab_ended=None)
                elif t == "person-registered":
                    view.people[fields["id"]] = dict(fields)
                elif t == "center-registered":
                    view.centers[fields["id"]] = dict(fields)
                else:
                    view.plans[fields["key"]] = dict(fields)
                continue
            date = r.get("date")
            if date and date > cut:
                continue
            f = r.get("_fact")
            if f is None or f.id != r["fact_id"] or f.seq != r["seq"]:
                # Memoized on the row: a stored fact is the same F in every view (rows never change).
                f = r["_fact"] = new(F, (r["fact_id"], t, _day(date) if date else None, r["seq"], r["fields"],
                                         r.get("jurisdiction")))
            by_type[t].append(f)
            subject = r.get("subject")
            if subject:
                by_subject[(t, subject)].append(f)
        return view

    def _sorted(self, lst: list[F]) -> list[F]:
        # Lists are filled in commit order; the rules read them in (date, seq) order. Sorting on
        # first access keeps building a view linear in the number of facts.
        if id(lst) not in self._sorted_ids:
            lst.sort(key=_by_date_seq)
            self._sorted_ids.add(id(lst))
        return lst

    def all(self, fact_type: str) -> list[F]:
        if fact_type == TRAINING and fact_type not in self.by_type:
            if self._digests:
                raise DigestModeError("every training record was asked for from a view of digests")
            persons = set(self.training) | set(self._presorted or ())
            self.by_type[TRAINING] = [f for person in sorted(persons) for f in self.of(TRAINING, person)]
        lst = self.by_type.get(fact_type)
        return self._sorted(lst) if lst else []

    def of(self, fact_type: str, subject: str) -> list[F]:
        if fact_type == TRAINING and (TRAINING, subject) not in self.by_subject:
            self.by_subject[(TRAINING, subject)] = [
                F(t[T_ID], TRAINING, _day(t[T_DATE]), t[T_SEQ], training_fields(t), t[T_JURISDICTION])
                for t in self.training_of(subject)]
        lst = self.by_subject.get((fact_type, subject))
        return self._sorted(lst) if lst else []

    def wants(self, subject: str) -> bool:
        return self.wanted is None or subject in self.wanted

    def training_digest(self, person: str) -> TrainingDigest | None:
        """The person's training records as a digest (a snapshot of digests), or None: read
        them with `training_of`. Without the records the rows retract, as `training_of` leaves
        them out of a list; dated after the as-of date too: cut them by date."""
        digests = self._digests
        digest = None if digests is None else digests.get(person)
        retracted = self._retracted
        if digest is not None and retracted and (self._retracted_people is None or person in self._retracted_people):
            digest = digest_without(digest, retracted)
        return digest

    def training_of(self, person: str) -> list[tuple]:
        """The person's training records (compact), in (date, seq) order."""
        if self._presorted is not None and person not in self.training:
            lst = self._presorted.get(person)
            if not lst:
                if self._digests is not None and person in self._digests:
                    raise DigestModeError(f"the training records of {person!r} are held as a digest only")
                return []
            cut, retracted = self._cut, self._retracted
            if retracted and (self._retracted_people is None or person in self._retracted_people):
                lst = [t for t in lst if t[T_DATE] <= cut and t[T_ID] not in retracted]
            elif lst[-1][T_DATE] > cut:
                lst = [t for t in lst if t[T_DATE] <= cut]
            self.training[person] = lst
            self._sorted_ids.add(id(lst))
            return lst
        lst = self.training.get(person)
        if not lst:
            return []
        if id(lst) not in self._sorted_ids:
            lst.sort()
            self._sorted_ids.add(id(lst))
        return lst

    # -- jurisdictions ---------------------------------------------------------------------
    def unit_jurisdiction(self, unit_id: str | None) -> str | None:
        unit = self.units.get(unit_id or "")
        return unit.get("jurisdiction") if unit else None

    def people_in(self, jurisdiction: str) -> list[tuple[str, dict]]:
        """(id, registration) of the people asked about whose unit is in `jurisdiction`, by id."""
        wanted, of_unit = self.wanted, self.unit_jurisdiction
        out = []
        for pid in sorted(self.people):
            if wanted is not None and pid not in wanted:
                continue
            person = self.people[pid]
            if of_unit(person.get("unit")) == jurisdiction:
                out.append((pid, person))
        return out

    def person_jurisdiction(self, person_id: str) -> str | None:
        return self.unit_jurisdiction(self.people[person_id].get("unit"))

    def center_jurisdiction(self, center_id: str) -> str | None:
        return self.unit_jurisdiction(self.centers[center_id].get("host"))

    # -- subjects over time ------------------------------------------------------------------
    def registered_start(self, person: dict, duties: frozenset[str]) -> dt.date | None:
        """For a person none of whose duties changed or ended (not in `duties_changed`): the day
        they began holding some of `duties` (dt.date.min when registered without a start), or
        None when they hold none of them or begin after the as-of date."""
        if duties.isdisjoint(person.get("duties", ())):
            return None
        start = _start_of(person)
        return start if start <= self.as_of else None

    def duties_changed(self) -> set[str]:
        """The people some of whose duties changed or ended (found once per view): everyone else
        holds the duties they were registered with, from their start date on."""
        changed = self._duties_changed
        if changed is None:
            changed = self._duties_changed = {s for t, s in self.by_subject
                                              if t in ("person-duties-changed", "person-duties-ended")}
        return changed

    def statutory_intervals(self, person_id: str, duties: Iterable[str] = STATUTORY) -> list[Interval]:
        """When the person held statutory duties; a change to other duties or an end is leaving."""
        person = self.people[person_id]
        if not isinstance(duties, frozenset):
            duties = frozenset(duties)
        if person_id not in self.duties_changed():
            # no change of duties (most people): one interval from the start, or none
            start = self.registered_start(person, duties)
            return [Interval(start, None)] if start is not None else []
        holds = not duties.isdisjoint(person.get("duties", ()))
        timeline: list[tuple[dt.date, bool]] = [(_start_of(person), holds)]
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
            if not self.wants(cid) or self.center_jurisdiction(cid) != jurisdiction:
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
