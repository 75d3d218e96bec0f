"""Yearly obligations: a total per year (training hours), a count per year (exchange
activities), an annual deadline while a condition holds (the center's report by 30 Nov)."""
from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left, bisect_right
from itertools import accumulate, compress, islice

from rules.catalogue import RuleVersion
from rules.judgment import Instance
from rules.view import T_DATE, T_HOURS, T_ID, T_OFF_JOB, TRAINING, FactView, TrainingDigest, _day


def _matches(fields: dict, wanted: tuple) -> bool:
    for k, v in wanted:
        if fields.get(k) != v:
            return False
    return True


def _compact_filter(p: dict) -> tuple[int, bool] | None:
    """(index, wanted) when the rule sums training hours filtered on off_job only — the case the
    compact training tuples answer without building a fact object per record."""
    wanted = p.get("filter") or {}
    if p["fact"] != TRAINING or p["measure"] != "hours" or set(wanted) - {"off_job"}:
        return None
    return (T_OFF_JOB, wanted["off_job"]) if wanted else (T_OFF_JOB, None)


def _records(rule: RuleVersion, view: FactView, pid: str):
    """The person's records in (date, seq) order as (date text, id, hours, counts) — the generic
    path, for any fact type, measure and filter."""
    p = rule.parameters
    wanted = tuple((p.get("filter") or {}).items())
    return [(f.date.isoformat(), f.id, float(f.fields.get(p["measure"], 0)), _matches(f.fields, wanted))
            for f in view.of(p["fact"], pid)]


_YEARS: dict[int, str] = {}  # "2024" once, not once per person
_YEAR_ENDS: dict[int, dt.date] = {}
_INVERT = bytes.maketrans(b"\x00\x01", b"\x01\x00")


def _add_digest(digest: TrainingDigest, owed: dict[str, list], want: bool | None, cut: str) -> None:
    """The compact loop of `total_per_period` for a person's digest, year by year in C: the same
    totals, the same first day the total reaches the threshold, the same records counted.

    The records are in (date, seq) order, so a year is a slice (found by bisection); its total
    is a sum over whole quarter hours (exact, hence equal to adding the hours one by one as
    floats, and never decreasing: hours are not negative), and only a year whose total reaches
    the threshold is searched for the record that reached it (`accumulate`)."""
    dates, ids, quarters, flags = digest
    n = len(dates)
    if n and dates[-1] > cut:  # records dated after the as-of date have not happened yet
        n = bisect_right(dates, cut)
    if not n:
        return
    earliest, latest = dates[0][:4], dates[n - 1][:4]
    for year_text, acc in owed.items():
        # (as `day[:4]` in the loop: no record's year matches a text of another length)
        if year_text < earliest or year_text > latest or len(year_text) != 4:
            continue
        lo = bisect_left(dates, year_text, 0, n)
        hi = bisect_left(dates, year_text + "~", lo, n)  # "~" sorts after "-": every date of the year
        if lo == hi:
            continue
        q = quarters[lo:hi]
        sel = None
        if want is not None:
            sel = flags[lo:hi] if want else flags[lo:hi].translate(_INVERT)
            if 0 not in sel:  # every record of the year counts
                sel = None
        if sel is None:
            counted, used = q, ids[lo:hi]
            total = sum(q)
            acc[1] = 0.0
        else:
            counted, used = list(compress(q, sel)), list(compress(ids[lo:hi], sel))
            total = sum(counted)
            acc[1] = (sum(q) - total) / 4
        acc[0] = total / 4
        acc[3] = used
        # the first record that reaches the threshold: total/4 >= t exactly when total >= 4t (both exact)
        reach = acc[4] * 4
        if counted and total >= reach:
            i = bisect_left(list(accumulate(counted)), reach)
            acc[2] = dates[lo + i] if sel is None else next(islice(compress(dates[lo:hi], sel), i, None))


def total_per_period(rule: RuleVersion, view: FactView, calendar) -> list[Instance]:
    """SH-INST (八): at least `threshold` of `measure` per calendar year, counting only facts that
    match `filter` (off-job). All of the year counts, also before the person entered duty."""
    p = rule.parameters
    compact = _compact_filter(p)
    base_threshold = float(p["threshold"])
    prorate = p["prorate"]
    last_year = view.as_of.year
    cut = view.as_of.isoformat()
    rule_id, jurisdiction = rule.id, rule.jurisdiction
    duties = frozenset(p["duties"])
    out: list[Instance] = []
    append = out.append
    binds_from = rule.binds_from
    # (year, year text, its last day) of every year the rule binds in, up to the as-of year
    years = []
    for year in range(binds_from.year, last_year + 1):
        due = _YEAR_ENDS.get(year) or _YEAR_ENDS.setdefault(year, dt.date(year, 12, 31))
        if due >= binds_from:  # no year ending before the rule binds is owed (nor looked at)
            years.append((year, _YEARS.get(year) or _YEARS.setdefault(year, str(year)), due))
    # a person's jurisdiction is their unit's (an unknown unit's person is nobody's)
    changed = view.duties_changed()
    for pid, person in view.people_in(jurisdiction):
        if pid in changed:
            intervals = view.statutory_intervals(pid, duties)
            if not intervals:
                continue
            start, end = intervals[0].start, intervals[0].end
            only = len(intervals) == 1
        else:  # (most people) one interval from their start, read without building it
            start = view.registered_start(person, duties)
            if start is None:
                continue
            end, only = None, True
        unit, name = person.get("unit"), person.get("name", pid)
        # The years owed and each one's threshold. A person registered without a start date is
        # bound from the rule's first owed year.
        first = start.year if start != dt.date.min else binds_from.year
        owed: dict[str, list] = {}  # year text → [total, excluded, satisfied, used, threshold, due, year]
        for year, year_text, due in years:
            if year < first:
                continue
            if only:  # (most people: one interval)
                if start > due or (end is not None and end < due):
                    continue
                bound_start = start
            else:
                bound = [i for i in intervals if i.start <= due and (i.end is None or i.end >= due)]
                if not bound:
                    continue
                bound_start = bound[0].start
            threshold = base_threshold
            if prorate and bound_start.year == year:
                days = (due - bound_start).days + 1
                threshold = math.ceil(threshold * days / (366 if year % 4 == 0 else 365) * 2) / 2
            owed[year_text] = [0.0, 0.0, None, [], threshold, due, year]
        if not owed:
            continue
        # One pass over the person's records, in date order, adding each to its year.
        digest = view.training_digest(pid) if compact is not None else None
        if digest is not None:
            _add_digest(digest, owed, compact[1], cut)
        elif compact is not None:
            # the compact tuples read directly (no record object): counts = off_job matches
            want = compact[1]
            for t in view.training_of(pid):
                day = t[T_DATE]
                acc = owed.get(day[:4])
                if acc is None:
                    continue
                if want is not None and bool(t[T_OFF_JOB]) != want:
                    acc[1] += t[T_HOURS]
                    continue
                acc[0] += t[T_HOURS]
                acc[3].append(t[T_ID])
                if acc[2] is None and acc[0] >= acc[4]:
                    acc[2] = day
        else:
            for day, fid, hours, counts in _records(rule, view, pid):
                acc = owed.get(day[:4])
                if acc is None:
                    continue
                if not counts:
                    acc[1] += hours
                    continue
                acc[0] += hours
                acc[3].append(fid)
                if acc[2] is None and acc[0] >= acc[4]:
                    acc[2] = day
        for period, (total, excluded, satisfied, used, threshold, due, year) in owed.items():
            append(Instance(
                rule_id, pid, "person", jurisdiction, period, due, _day(satisfied) if satisfied else None, False,
                None, False, unit, used,
                {"total": int(total) if total.is_integer() else total,
                 "threshold": int(threshold) if threshold.is_integer() else threshold,
                 "not_counted": int(excluded) if excluded.is_integer() else excluded,
                 "year": year, "name": name},
            ))
    return out


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def count_per_period(rule: RuleVersion, view: FactView, calendar) -> list[Instance]:
    """SH-CNTR 四(二): at least `threshold` facts a year, every year from the approval year on;
    a revoked center owes no year whose end is after the revocation."""
    p = rule.parameters
    out: list[Instance] = []
    for cid, life in view.approved_centers(rule.jurisdiction):
        first = life["approval"].date.year
        if not p["first_year_counts"]:
            first += 1
        held = view.of(p["fact"], cid)
        for year in range(first, view.as_of.year + 1):
            due = dt.date(year, 12, 31)
            if due < rule.binds_from or (life["revoked"] and due > life["revoked"]):
                continue
            in_year = [f for f in held if f.date.year == year]
            satisfied = in_year[p["threshold"] - 1].date if len(in_year) >= p["threshold"] else None
            out.append(Instance(
                rule=rule.id, subject=cid, subject_kind="center", jurisdiction=rule.jurisdiction,
                period=str(year), due=due, satisfied_on=satisfied, late_possible=False,
                unit=view.centers[cid].get("host"), facts=[life["approval"].id] + [f.id for f in in_year],
                values={"count": len(in_year), "threshold": p["threshold"], "year": year,
                        "name": view.centers[cid].get("name", cid)},
            ))
    return out


def annual_deadline_while(rule: RuleVersion, view: FactView, calendar) -> list[Instance]:
    """SH-CNTR 五(二): a report by month/day each year in which the center is under construction
    on that day (approved, not yet accepted, not revoked before it)."""
    p = rule.parameters
    out: list[Instance] = []
    for cid, life in view.approved_centers(rule.jurisdiction):
        reports = view.of(p["fact"], cid)
        for year in range(life["approval"].date.year, view.as_of.year + 1):
            due = dt.date(year, p["month"], p["day"])
            if due < rule.binds_from or life["approval"].date > due:
                continue
            if life["accepted"] and life["accepted"] <= due:
                continue
            if life["revoked"] and life["revoked"] < due:
                continue
            filed = [f for f in reports if int(f.fields.get(p["match_field"], f.date.year)) == year]
            out.append(Instance(
                rule=rule.id, subject=cid, subject_kind="center", jurisdiction=rule.jurisdiction,
                period=str(year), due=due, satisfied_on=filed[0].date if filed else None, late_possible=True,
                unit=view.centers[cid].get("host"), facts=[life["approval"].id] + [f.id for f in filed[:1]],
                values={"year": year, "name": view.centers[cid].get("name", cid),
                        "filed": filed[0].date.isoformat() if filed else None},
            ))
    return out
