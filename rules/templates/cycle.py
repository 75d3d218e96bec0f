"""SH-INST (七): a lead laboratory organizes one city-wide comparison every 3 years.

Cycles run from the day the lab became a lead lab and then from each comparison it organized;
a cycle is due the day before its N-th anniversary. A late comparison is met-late and starts the
next cycle on its own date. A cycle due before the rule binds is not owed: if a comparison
fulfilled it (or came late, before the rule bound) the next cycle starts on that comparison,
otherwise on the date the rule binds from. Comparisons from before the lab became a lead lab do
not count; a lab that stopped being a lead lab owes no cycle due after that day.
"""
from __future__ import annotations

from rules.catalogue import RuleVersion
from rules.dates import day_before_anniversary
from rules.judgment import Instance
from rules.view import FactView


def cycle(rule: RuleVersion, view: FactView, calendar) -> list[Instance]:
    years = rule.parameters["years"]
    out: list[Instance] = []
    for uid in sorted(view.units):
        if not view.wants(uid) or view.unit_jurisdiction(uid) != rule.jurisdiction:
            continue
        lead = view.lead_lab_interval(uid)
        if lead is None:
            continue
        comps = [f for f in view.of(rule.parameters["fact"], uid) if f.date >= lead.start]
        start, started_by, idx = lead.start, None, 0
        for _ in range(10_000):  # bounded: each turn consumes a comparison or moves start forward
            due = day_before_anniversary(start, years)
            if lead.end is not None and due > lead.end:
                break
            while idx < len(comps) and comps[idx].date < start:
                idx += 1
            c = comps[idx] if idx < len(comps) else None
            if due < rule.binds_from:
                if c is not None and c.date < rule.binds_from:
                    start, started_by, idx = c.date, c.id, idx + 1
                else:
                    start, started_by = rule.binds_from, None
                continue
            if start > view.as_of:
                break
            out.append(Instance(
                rule=rule.id, subject=uid, subject_kind="unit", jurisdiction=rule.jurisdiction,
                period=start.isoformat(), due=due, satisfied_on=c.date if c else None, late_possible=True,
                trigger=started_by, unit=uid, facts=[x for x in (started_by, c.id if c else None) if x],
                values={"name": view.units[uid].get("name", uid), "start": start.isoformat(),
                        "years": years, "comparison": c.id if c else None},
            ))
            if c is None:
                break
            start, started_by, idx = c.date, c.id, idx + 1
    return out
