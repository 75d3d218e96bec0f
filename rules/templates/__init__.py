"""The obligation templates: each turns a rule version and the facts into obligation instances.

A new rule of a known kind is a new rule file; only a new *kind* of obligation needs code here.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from rules.catalogue import RuleVersion
from rules.templates import answers, cycle, periodic, plan
from rules.view import TRAINING


TEMPLATES: dict[str, Callable] = {
    "total-per-period": periodic.total_per_period,
    "count-per-period": periodic.count_per_period,
    "annual-deadline-while": periodic.annual_deadline_while,
    "cycle": cycle.cycle,
    "deadline-after-trigger": answers.deadline_after_trigger,
    "duration-from-start": answers.duration_from_start,
    "milestone": plan.milestone,
    "fixed-deadline": plan.fixed_deadline,
    "indicator-target": plan.indicator_target,
}


def _names(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _names(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _names(v)


def judged_from_digests(rules: Iterable[RuleVersion]) -> bool:
    """Whether these rules can be judged from a snapshot that holds most training records as
    digests (rules.view.TrainingDigest): every rule that names training records is a yearly
    total of hours filtered on off-job at most (the compact case of `total_per_period`). A rule
    that reads them one by one needs them all; asking a view of digests for them raises."""
    for rule in rules:
        if TRAINING in _names(rule.parameters):
            if rule.template != "total-per-period" or periodic._compact_filter(rule.parameters) is None:
                return False
    return True
