"""Evaluation: judgments = f(facts known, as-of date, rule versions, working-day calendar).

Pure: the caller hands in the read-model rows already cut at the known-at time; nothing here
reads the clock or the store. The judging step runs in the given engine (reference or
durable_rules); everything else is shared, so the two can only differ in judging.
"""
from __future__ import annotations

import datetime as dt
import operator
from typing import Iterable

from rules.calendar import WorkdayCalendar
from rules.catalogue import RuleVersion
from rules.judgment import Case, Instance, JudgingEngine, Judgment, ReferenceEngine
from rules.templates import TEMPLATES
from rules.view import FactView, Snapshot

STATUS_WORDS = {
    "zh": {"met": "按期履行", "met-late": "逾期后履行", "open": "未到期,尚未履行", "overdue": "已逾期,仍可补正",
           "breached": "未履行,已不可补正"},
    "en": {"met": "fulfilled on time", "met-late": "fulfilled late", "open": "not yet fulfilled, not yet due",
           "overdue": "overdue, can still be fulfilled", "breached": "not fulfilled and can no longer be"},
}


_ORDER = operator.attrgetter("rule", "subject", "due", "period", "trigger")  # the order of a check's judgments


class _Values(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def explain(rule: RuleVersion, inst: Instance, status: str, lang: str) -> str:
    values = _Values(inst.values, subject=inst.subject, period=inst.period, due=inst.due.isoformat(),
                     satisfied_on=inst.satisfied_on.isoformat() if inst.satisfied_on else "—",
                     status=STATUS_WORDS[lang][status])
    text = rule.explanation.get(lang) or rule.explanation["zh"]
    out = text.format_map(values)
    if inst.detail and inst.detail.get(lang):
        out += ("。" if lang == "zh" else ". ") + inst.detail[lang]
    sep = ";" if lang == "zh" else "; "
    return out + sep + values["status"]


def derive_instances(rows: "Snapshot | Iterable[dict]", as_of: dt.date, rules: list[RuleVersion],
                     calendar: WorkdayCalendar, subjects: set[str] | None = None) -> list[tuple[RuleVersion, Instance]]:
    """Every obligation instance; with `subjects`, only theirs (others may be skipped early)."""
    view = FactView.build(rows, as_of)
    view.wanted = set(subjects) if subjects is not None else None
    pairs: list[tuple[RuleVersion, Instance]] = []
    for rule in rules:
        for inst in TEMPLATES[rule.template](rule, view, calendar):
            if subjects is None or inst.subject in subjects:
                pairs.append((rule, inst))
    return pairs


class _Judged(Judgment):
    """A judgment as `evaluate` makes it: its explanation is written when first read (most
    judgments of a sweep are counted or filtered, not read), and its values drop the name."""

    __slots__ = ("_explanation", "_values", "_why", "_inst")

    def __init__(self, rule: str, rule_version: int, jurisdiction: str, subject: str, subject_kind: str,
                 period: str, trigger: str | None, due: str, status: str, satisfied_on: str | None,
                 provisional: bool, citation: dict, explanation: str | None, title: str, unit: str | None,
                 facts: list[str], as_of: str, values: dict | None = None, why: tuple | None = None,
                 inst: Instance | None = None) -> None:
        # Judgment's fields in its order (so `dataclasses.replace` works), then what the
        # explanation and values are made from when first read. (Judgment's own __init__ would
        # set those two through the properties below: two calls more per judgment, ~33,000 in
        # a sweep.)
        self.rule = rule
        self.rule_version = rule_version
        self.jurisdiction = jurisdiction
        self.subject = subject
        self.subject_kind = subject_kind
        self.period = period
        self.trigger = trigger
        self.due = due
        self.status = status
        self.satisfied_on = satisfied_on
        self.provisional = provisional
        self.citation = citation
        self.title = title
        self.unit = unit
        self.facts = facts
        self.as_of = as_of
        self._explanation = explanation
        self._values = values
        self._why = why
        self._inst = inst

    @property
    def explanation(self) -> str:  # type: ignore[override]
        text = self._explanation
        if text is None:
            rule, lang = self._why
            text = self._explanation = explain(rule, self._inst, self.status, lang)
        return text

    @explanation.setter
    def explanation(self, value: str | None) -> None:
        self._explanation = value

    @property
    def values(self) -> dict:  # type: ignore[override]
        values = self._values
        if values is None:
            values = self._values = {k: v for k, v in self._inst.values.items() if k != "name"}
        return values

    @values.setter
    def values(self, value: dict | None) -> None:
        self._values = value


def evaluate(facts: "Snapshot | Iterable[dict]", as_of: dt.date, rules: list[RuleVersion], calendar: WorkdayCalendar,
             engine: JudgingEngine | None = None, lang: str = "zh", subjects: set[str] | None = None) -> list[Judgment]:
    """Judgments of every obligation instance in force; with `subjects`, only of those subjects."""
    engine = engine or ReferenceEngine()
    pairs = derive_instances(facts, as_of, rules, calendar, subjects)
    day = as_of.toordinal()
    new = tuple.__new__  # a Case made in C (the same tuple as Case(...))
    keys, cases = [], []
    add_key, add_case = keys.append, cases.append
    for _, inst in pairs:
        key = f"{inst.rule}|{inst.subject}|{inst.period}|{inst.trigger or ''}"
        add_key(key)
        satisfied = inst.satisfied_on
        add_case(new(Case, (key, day, inst.due.toordinal(), satisfied.toordinal() if satisfied else 0,
                            inst.late_possible)))
    statuses = engine.judge_all(cases)
    del cases  # (memory: a national sweep has hundreds of thousands)
    if len(statuses) != len(pairs):  # two instances with one key, or an engine that lost some
        raise RuntimeError(f"engine {engine.name} judged {len(statuses)} of {len(pairs)} instances")
    iso: dict[dt.date, str] = {}  # due dates repeat (31 Dec …): one string each
    judgments = []
    append = judgments.append
    as_of_text = as_of.isoformat()
    # each rule version's fields shared by its judgments (its citation dict is read-only)
    last = None
    for key, (rule, inst) in zip(keys, pairs):
        if rule is not last:  # (a rule's instances come together)
            last, rule_id, version, citation, title = rule, rule.id, rule.version, rule.short_citation, rule.title
            why = (rule, lang)
        due = iso.get(inst.due)
        if due is None:
            due = iso[inst.due] = inst.due.isoformat()
        satisfied = inst.satisfied_on
        if satisfied is not None:
            satisfied_text = iso.get(satisfied)
            if satisfied_text is None:
                satisfied_text = iso[satisfied] = satisfied.isoformat()
        else:
            satisfied_text = None
        append(_Judged(rule_id, version, inst.jurisdiction, inst.subject, inst.subject_kind, inst.period,
                       inst.trigger, due, statuses[key], satisfied_text, inst.provisional, citation, None, title,
                       inst.unit, inst.facts, as_of_text, None, why, inst))
    order(judgments)
    return judgments


def order(judgments: list) -> None:
    """Sort judgments in place by rule, subject, due date, period and trigger (no trigger first)."""
    try:  # the key made in C, as long as no two judgments differ only by a trigger and its absence
        judgments.sort(key=_ORDER)
    except TypeError:  # None beside a text: sorted again (a failed sort leaves the same items)
        judgments.sort(key=lambda j: (j.rule, j.subject, j.due, j.period, j.trigger or ""))
