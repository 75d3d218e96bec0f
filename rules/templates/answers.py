"""Deadlines that start from a trigger: a major event notified within N working days (SH-CNTR
五(二)), a rectification completed by the deadline the order sets (五(三)), construction finished
(accepted) within the construction period (三(五)1)."""
from __future__ import annotations

import datetime as dt

from rules.calendar import WorkdayCalendar
from rules.catalogue import RuleVersion
from rules.dates import day_before_anniversary
from rules.judgment import Instance
from rules.view import F, FactView


def _fmt_days(days, lang: str) -> str:
    if not days:
        return ""
    if lang == "zh":
        return "、".join(f"{d.month}月{d.day}日" for d, _ in days)
    return ", ".join(d.strftime("%-d %b") for d, _ in days)


def _runs(runs, lang: str) -> str:
    def one(a: dt.date, b: dt.date) -> str:
        if lang == "zh":
            return f"{a.month}月{a.day}日" if a == b else f"{a.month}月{a.day}日至{b.month}月{b.day}日"
        return a.strftime("%-d %b") if a == b else f"{a.strftime('%-d %b')}–{b.strftime('%-d %b')}"
    return ("、" if lang == "zh" else ", ").join(one(a, b) for a, b in runs)


def _working_days_detail(start: dt.date, n: int, count) -> dict[str, str]:
    zh = f"{start.isoformat()}后第{n}个工作日(当日不计)"
    en = f"{n} working days after {start.isoformat()} (that day not counted)"
    if count.holiday_runs:
        zh += f":{_runs(count.holiday_runs, 'zh')}为法定节假日"
        en += f": {_runs(count.holiday_runs, 'en')} {'is a public holiday' if len(count.holiday_runs) == 1 and count.holiday_runs[0][0] == count.holiday_runs[0][1] else 'are public holidays'}"
    if count.makeup_days_counted:
        zh += f",{_fmt_days(count.makeup_days_counted, 'zh')}为调休工作日"
        en += f", {_fmt_days(count.makeup_days_counted, 'en').replace(', ', ' and ')} {'are' if len(count.makeup_days_counted) > 1 else 'is a'} make-up working day{'s' if len(count.makeup_days_counted) > 1 else ''}"
    zh += f",截止{count.due.isoformat()}"
    en += f", so due {count.due.isoformat()}"
    if count.provisional:
        years = "、".join(str(y) for y in count.unknown_years)
        zh += f"(注意:{years}年法定节假日安排尚未公布,按周末推算,属暂定)"
        en += f" (provisional: the official calendar for {', '.join(map(str, count.unknown_years))} is not yet known; weekends only)"
    return {"zh": zh, "en": en}


def match_answers(triggers: list[F], answers: list[F], failures: list[F]) -> dict[str, tuple[F | None, list[F]]]:
    """Which answer fulfils which trigger: by refers_to, else the oldest one still unanswered
    (dated on or before the answer). A failure found after a completion undoes it: the order
    stays unfulfilled until a later completion. Returns trigger id → (fulfilling answer, used)."""
    state: dict[str, tuple[F | None, list[F]]] = {t.id: (None, []) for t in triggers}
    order = {t.id: i for i, t in enumerate(triggers)}
    events = sorted([(a, True) for a in answers] + [(f, False) for f in failures],
                    key=lambda x: (x[0].date, x[0].seq))
    for ans, completes in events:
        target = ans.fields.get("refers_to")
        if target is None:
            candidates = [t for t in triggers if t.date <= ans.date]
            if completes:
                pick = [t for t in candidates if state[t.id][0] is None]
            else:
                pick = [t for t in candidates if state[t.id][0] is not None] or \
                       [t for t in candidates if state[t.id][0] is None]
            target = min(pick, key=lambda t: order[t.id]).id if pick else None
        if target not in state:
            continue
        current, used = state[target]
        if completes:
            if current is None:
                state[target] = (ans, used + [ans])
        else:
            state[target] = (None, used + [ans])
    return state


def deadline_after_trigger(rule: RuleVersion, view: FactView, calendar: WorkdayCalendar) -> list[Instance]:
    p = rule.parameters
    out: list[Instance] = []
    for cid, life in view.approved_centers(rule.jurisdiction):
        # The guideline binds centers approved for construction (批准筹建后): nothing is owed for
        # what happened to an applicant before its approval.
        triggers = [t for t in view.of(p["trigger"], cid) if t.date >= life["approval"].date]
        if not triggers:
            continue
        matched = match_answers(triggers, view.of(p["answer"], cid),
                                view.of(p["failure"], cid) if p.get("failure") else [])
        for t in triggers:
            provisional = False
            detail: dict[str, str] = {}
            if p.get("working_days"):
                count = calendar.add_working_days(t.date, p["working_days"])
                due, provisional = count.due, count.provisional
                detail = _working_days_detail(t.date, p["working_days"], count)
            elif p.get("calendar_days"):
                due = t.date + dt.timedelta(days=p["calendar_days"])
            else:
                due = dt.date.fromisoformat(t.fields[p["deadline_field"]])
            if due < rule.binds_from or (life["revoked"] and due > life["revoked"]):
                continue
            answer, used = matched[t.id]
            out.append(Instance(
                rule=rule.id, subject=cid, subject_kind="center", jurisdiction=rule.jurisdiction,
                period=t.date.isoformat(), trigger=t.id, due=due,
                satisfied_on=answer.date if answer else None, late_possible=True, provisional=provisional,
                unit=view.centers[cid].get("host"), facts=[t.id] + [a.id for a in used],
                values={"name": view.centers[cid].get("name", cid), "event_date": t.date.isoformat(),
                        "summary": t.fields.get("summary") or t.fields.get("reason") or "",
                        "answered_by": answer.id if answer else None,
                        "failed_reviews": [a.id for a in used if a.type == p.get("failure")]},
                detail=detail,
            ))
    return out


def duration_from_start(rule: RuleVersion, view: FactView, calendar) -> list[Instance]:
    """Construction period: due the day before the anniversary of approval that ends it
    (approval + construction years − 1 day); fulfilled by acceptance (验收)."""
    p = rule.parameters
    out: list[Instance] = []
    for cid, life in view.approved_centers(rule.jurisdiction):
        start: F = life["approval"]
        years = start.fields.get(p["years_field"]) or p["default_years"]
        due = day_before_anniversary(start.date, int(years))
        if due < rule.binds_from or (life["revoked"] and due > life["revoked"]):
            continue
        ends = view.of(p["end"], cid)
        end = ends[0] if ends else None
        out.append(Instance(
            rule=rule.id, subject=cid, subject_kind="center", jurisdiction=rule.jurisdiction,
            period=start.date.isoformat(), trigger=start.id, due=due,
            satisfied_on=end.date if end else None, late_possible=True,
            unit=view.centers[cid].get("host"), facts=[start.id] + ([end.id] if end else []),
            values={"name": view.centers[cid].get("name", cid), "years": int(years),
                    "years_given": start.fields.get(p["years_field"]) is not None,
                    "approved": start.date.isoformat()},
        ))
    return out
