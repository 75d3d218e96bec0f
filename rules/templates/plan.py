"""The work plan and the plan's targets: task milestones the division sets, a fixed deadline
(Jiangsu's mid-term evaluation before the end of 2025), and indicator targets (SH-PLAN 一(三),
JS-OPIN 二): 约束性 (binding) targets are obligations, 预期性 (expected) ones goals to track.

Indicator and evaluation rules bind a jurisdiction once its division keeps a work plan in the
record (a published plan of that jurisdiction): before that nobody is answerable in metrolex."""
from __future__ import annotations

import datetime as dt
import operator

from rules.catalogue import RuleVersion
from rules.judgment import Instance
from rules.units import expander
from rules.view import FactView

COMPARATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "=": operator.eq,
               "~": operator.ge}


def _division(view: FactView, jurisdiction: str) -> str | None:
    for uid, unit in sorted(view.units.items()):
        if unit.get("kind") == "regulator" and unit.get("jurisdiction") == jurisdiction:
            return uid
    return None


def milestone(rule: RuleVersion, view: FactView, calendar) -> list[Instance]:
    p = rule.parameters
    out: list[Instance] = []
    milestones = view.all(p["trigger"])
    if not milestones:
        return out
    tasks = {key: {int(t["number"]): t for t in plan["tasks"]} for key, plan in view.plans.items()}
    # Answers indexed once: (plan, task) → facts, in (date, seq) order.
    answers: dict[tuple[str, int], list] = {}
    for kind in p["answers"]:
        for f in view.all(kind):
            answers.setdefault((f.fields.get("plan"), int(f.fields.get("task", -1))), []).append(f)
    for lst in answers.values():
        lst.sort(key=lambda f: (f.date, f.seq))
    expanded: dict[str, list[str]] = {}
    expand_name = expander(view.units, rule.jurisdiction)

    def units_of(names: list[str]) -> list[str]:
        out_units: list[str] = []
        for name in names:
            if name not in expanded:
                expanded[name] = expand_name(name)
            out_units.extend(expanded[name])
        return out_units

    # What a task's milestones share (most tasks have several): its units, expanded once per task
    # (the lists are read, never changed, by every judgment that cites them, like the task's own).
    of_task: dict[tuple[str, int], tuple] = {}
    jurisdiction, rule_id, binds_from = rule.jurisdiction, rule.id, rule.binds_from
    for m in milestones:
        fields = m.fields
        plan_key = fields["plan"]
        plan = view.plans.get(plan_key)
        if plan is None or plan.get("jurisdiction") != jurisdiction:
            continue
        number = int(fields["task"])
        shared = of_task.get((plan_key, number))
        if shared is None:
            task = tasks[plan_key].get(number)
            if task is not None:
                leads = units_of(task.get("leads", []))
                supporting = units_of(task.get("supporting", []))
                shared = (task, leads[0] if leads else (task.get("leads") or [None])[0],
                          list(dict.fromkeys(leads[1:] + supporting)), f"{plan_key}/{number}")
            of_task[(plan_key, number)] = shared
        if shared is None:
            continue
        task, unit, copy_units, subject = shared
        due = dt.date.fromisoformat(fields["due"])
        if due < binds_from:
            continue
        name = fields["name"]
        done = None
        for f in answers.get((plan_key, number), ()):  # the first answer on or after the milestone
            if f.date >= m.date and (f.type != "task-progress-reported" or f.fields.get("milestone") == name):
                done = f
                break
        out.append(Instance(
            rule_id, subject, "task", jurisdiction, name, due, done.date if done else None, True, m.id, False,
            unit, [m.id, done.id] if done else [m.id],
            {"title": task.get("title", ""), "milestone": name, "leads": task.get("leads", []),
             "supporting": task.get("supporting", []), "copy_units": copy_units},
        ))
    return out


def _tracked(view: FactView, jurisdiction: str) -> bool:
    """A jurisdiction's division opts into plan tracking by publishing a work plan or reporting
    an indicator or evaluation in metrolex; before that nobody in the record is answerable."""
    return any(p.get("jurisdiction") == jurisdiction for p in view.plans.values()) or any(
        f.jurisdiction == jurisdiction for t in ("indicator-reported", "plan-evaluated") for f in view.all(t))


def fixed_deadline(rule: RuleVersion, view: FactView, calendar) -> list[Instance]:
    p = rule.parameters
    if not _tracked(view, rule.jurisdiction):
        return []
    due = dt.date.fromisoformat(str(p["due"]))
    if due < rule.binds_from:
        return []
    done = [f for f in view.all(p["fact"])
            if f.jurisdiction == rule.jurisdiction and all(f.fields.get(k) == v for k, v in (p.get("match") or {}).items())]
    return [Instance(
        rule=rule.id, subject=rule.jurisdiction, subject_kind="jurisdiction", jurisdiction=rule.jurisdiction,
        period=str(due.year), due=due, satisfied_on=done[0].date if done else None, late_possible=True,
        unit=_division(view, rule.jurisdiction), facts=[f.id for f in done[:1]], values={})]


def indicator_target(rule: RuleVersion, view: FactView, calendar) -> list[Instance]:
    p = rule.parameters
    if not _tracked(view, rule.jurisdiction):
        return []
    due = dt.date.fromisoformat(str(p["due"]))
    reports = [f for f in view.all(p["fact"]) if f.jurisdiction == rule.jurisdiction]
    out: list[Instance] = []
    for target in p["targets"]:
        mine = [f for f in reports if f.fields.get("indicator") == target["id"]]
        compare = COMPARATORS[target.get("comparator", ">=")]
        reached = next((f for f in mine if compare(float(f.fields["value"]), float(target["target"]))), None)
        latest = mine[-1] if mine else None
        binding = target.get("attribute") == "约束性"
        out.append(Instance(
            rule=rule.id, subject=f"{rule.jurisdiction}:{target['id']}", subject_kind="indicator",
            jurisdiction=rule.jurisdiction, period=str(due.year), due=due,
            satisfied_on=reached.date if reached else None, late_possible=not binding,
            unit=_division(view, rule.jurisdiction), facts=[f.id for f in mine],
            values={"name": target["name"], "target": target["target"], "unit_of_measure": target.get("unit", ""),
                    "attribute": target.get("attribute"), "binding": binding,
                    "latest": latest.fields["value"] if latest else None},
        ))
    return out
