"""The order of a check's judgments: rule, subject, due date, period, then trigger (none first)."""
import random
from types import SimpleNamespace

from rules.evaluate import order


def _j(rule, subject, due, period, trigger):
    return SimpleNamespace(rule=rule, subject=subject, due=due, period=period, trigger=trigger)


def _expected(items):
    return sorted(items, key=lambda j: (j.rule, j.subject, j.due, j.period, j.trigger or ""))


def test_judgments_are_ordered_by_rule_subject_due_period_and_trigger():
    rnd = random.Random(7)
    items = [_j(rnd.choice("AB"), rnd.choice("xyz"), f"2025-0{rnd.randint(1, 9)}-01", rnd.choice(["2024", "2025"]),
                rnd.choice(["e1", "e2", "e3"])) for _ in range(300)]
    got = list(items)
    rnd.shuffle(got)
    order(got)
    assert [vars(j) for j in got] == [vars(j) for j in _expected(items)]


def test_a_missing_trigger_beside_a_trigger_sorts_first_and_nothing_is_lost():
    # attrgetter's tuple cannot compare None with a text: the fallback key must take over
    items = [_j("R", "s", "2025-01-01", "p", t) for t in ("b", None, "a")] + [_j("Q", "s", "2025-01-01", "p", None)]
    got = list(reversed(items))
    order(got)
    assert [(j.rule, j.trigger) for j in got] == [("Q", None), ("R", None), ("R", "a"), ("R", "b")]
    assert sorted(map(id, got)) == sorted(map(id, items))
