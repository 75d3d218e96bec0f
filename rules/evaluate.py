"""Evaluation: judgments = f(facts known, as-of date, rule versions, working-day calendar).

Pure: the caller hands in the read-model rows already cut at the known-at time; nothing here
reads the clock or the store. The judging step runs in the given engine (reference or
durable_rules); everything else is shared, so the two can only differ in judging.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from rules.calendar import WorkdayCalendar
from rules.catalogue import RuleVersion
from rules.judgment import Instance, JudgingEngine, Judgment, ReferenceEngine
from rules.templates import TEMPLATES
from rules.view import FactView

STATUS_WORDS = {
    "zh": {"met": "按期履行", "met-late": "逾期后履行", "open": "未到期,尚未履行", "overdue": "已逾期,仍可补正",
           "breached": "未履行,已不可补正"},
    "en": {"met": "fulfilled on time", "met-late": "fulfilled late", "open": "not yet fulfilled, not yet due",
           "overdue": "overdue, can still be fulfilled", "breached": "not fulfilled and can no longer be"},
}


class _Values(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def explain(rule: RuleVersion, inst: Instance, status: str, lang: str) -> str:
    values = _Values(inst.values)
    values.update(subject=inst.subject, period=inst.period, due=inst.due.isoformat(),
                  satisfied_on=inst.satisfied_on.isoformat() if inst.satisfied_on else "—",
                  status=STATUS_WORDS[lang][status])
    text = rule.explanation.get(lang) or rule.explanation["zh"]
    out = text.format_map(values)
    if inst.detail.get(lang):
        out += ("。" if lang == "zh" else ". ") + inst.detail[lang]
    sep = ";" if lang == "zh" else "; "
    return out + sep + values["status"]


def derive_instances(rows: Iterable[dict], as_of: dt.date, rules: list[RuleVersion],
                     calendar: WorkdayCalendar) -> list[tuple[RuleVersion, Instance]]:
    view = FactView.build(rows, as_of)
    pairs: list[tuple[RuleVersion, Instance]] = []
    for rule in rules:
        for inst in TEMPLATES[rule.template](rule, view, calendar):
            pairs.append((rule, inst))
    return pairs


def evaluate(rows: Iterable[dict], as_of: dt.date, rules: list[RuleVersion], calendar: WorkdayCalendar,
             engine: JudgingEngine | None = None, lang: str = "zh") -> list[Judgment]:
    engine = engine or ReferenceEngine()
    pairs = derive_instances(rows, as_of, rules, calendar)
    statuses = engine.judge_all([inst.case(as_of) for _, inst in pairs])
    if len(statuses) != len({inst.key for _, inst in pairs}):
        raise RuntimeError(f"engine {engine.name} judged {len(statuses)} of {len(pairs)} instances")
    judgments = []
    for rule, inst in pairs:
        status = statuses[inst.key]
        judgments.append(Judgment(
            rule=rule.id, rule_version=rule.version, jurisdiction=inst.jurisdiction, subject=inst.subject,
            subject_kind=inst.subject_kind, period=inst.period, trigger=inst.trigger,
            due=inst.due.isoformat(), status=status,
            satisfied_on=inst.satisfied_on.isoformat() if inst.satisfied_on else None,
            provisional=inst.provisional, citation=rule.short_citation, explanation=explain(rule, inst, status, lang),
            title=rule.title, unit=inst.unit, facts=list(inst.facts), as_of=as_of.isoformat(),
            values={k: v for k, v in inst.values.items() if k != "name"},
        ))
    judgments.sort(key=lambda j: (j.rule, j.subject, j.due, j.period, j.trigger or ""))
    return judgments
