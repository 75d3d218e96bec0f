"""The obligation templates: each turns a rule version and the facts into obligation instances.

A new rule of a known kind is a new rule file; only a new *kind* of obligation needs code here.
"""
from __future__ import annotations

from typing import Callable

from rules.templates import answers, cycle, periodic, plan


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
