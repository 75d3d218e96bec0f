"""Obligation instances, their judgments, and the judging step that both engines implement.

A template derives `Instance`s from the facts (who owes what, due when, fulfilled when); an
engine classifies each as met, met-late, open, overdue or breached. The plain-Python reference
engine below is the specification; durable_rules (adapters/durable_engine.py) must agree with it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Protocol

STATUSES = ("met", "met-late", "open", "overdue", "breached")


class Case(NamedTuple):
    """What the judging step sees: dates as ordinals; satisfied 0 when not fulfilled."""
    key: str
    as_of: int
    due: int
    satisfied: int
    late_possible: bool


def judge(case: Case) -> str:
    """The reference judgment (DOMAIN.md: as of the end of the day; on the due date still open)."""
    if case.satisfied:
        return "met" if case.satisfied <= case.due else "met-late"
    if case.as_of <= case.due:
        return "open"
    return "overdue" if case.late_possible else "breached"


class JudgingEngine(Protocol):
    name: str

    def judge_all(self, cases: list[Case]) -> dict[str, str]:
        ...


class ReferenceEngine:
    name = "reference"

    def judge_all(self, cases: list[Case]) -> dict[str, str]:
        return {c.key: judge(c) for c in cases}


@dataclass(slots=True)
class Instance:
    rule: str
    subject: str
    subject_kind: str
    jurisdiction: str
    period: str
    due: dt.date
    satisfied_on: dt.date | None
    late_possible: bool
    trigger: str | None = None
    provisional: bool = False
    unit: str | None = None  # the unit answerable (a person's unit, a center's host …)
    facts: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    # computation in words, per language; None when there is none (most instances: no dict each)
    detail: dict[str, str] | None = None

    @property
    def key(self) -> str:
        return "|".join([self.rule, self.subject, self.period, self.trigger or ""])

    def case(self, as_of: dt.date) -> Case:
        return Case(self.key, as_of.toordinal(), self.due.toordinal(),
                    self.satisfied_on.toordinal() if self.satisfied_on else 0, self.late_possible)


@dataclass(slots=True)
class Judgment:
    rule: str
    rule_version: int
    jurisdiction: str
    subject: str
    subject_kind: str
    period: str
    trigger: str | None
    due: str
    status: str
    satisfied_on: str | None
    provisional: bool
    citation: dict[str, str]
    explanation: str
    title: str
    unit: str | None
    facts: list[str]
    as_of: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_json(self, explanation: bool = True) -> dict[str, Any]:
        """The judgment as `check --json` prints it (`explanation=False`: null in its place)."""
        out = {
            "rule": self.rule, "rule_version": self.rule_version, "jurisdiction": self.jurisdiction,
            "subject": self.subject, "subject_kind": self.subject_kind, "period": self.period,
            "trigger": self.trigger, "due": self.due, "status": self.status,
            "satisfied_on": self.satisfied_on, "citation": self.citation,
            "explanation": self.explanation if explanation else None, "title": self.title, "unit": self.unit,
            "facts": self.facts, "as_of": self.as_of,
        }
        if self.provisional:
            out["provisional"] = True
        if self.values:
            out["values"] = self.values
        return out


def count_by_status(judgments: Iterable[Judgment]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for j in judgments:
        counts[j.status] += 1
    return counts
