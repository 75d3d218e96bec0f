"""The reminder policy (pure): reminders before, overdue notices after, escalation as a copy."""
import datetime as dt

from rules.judgment import Judgment
from scheduler.policy import plan_notices


def _j(status, due="2024-06-30", unit="u1", values=None, rule="r"):
    return Judgment(rule=rule, rule_version=1, jurisdiction="shanghai", subject="s1", subject_kind="center",
                    period="2024", trigger=None, due=due, status=status, satisfied_on=None, provisional=False,
                    citation={"document": "d", "clause": "c"}, explanation="", title="t", unit=unit, facts=[],
                    as_of="x", values=values or {})


POLICY = {"r": {"before_due_days": [30, 7, 1], "overdue_every_days": 7, "escalate_after_days": 10,
                "escalate_to": "division"}}


def plan(js, day):
    return plan_notices(js, POLICY, dt.date.fromisoformat(day), {"shanghai": "jlc"}, {})


def test_only_the_latest_reminder_step_is_due():
    assert [(n.kind, n.step) for n in plan([_j("open")], "2024-06-01")] == [("reminder", 30)]
    assert [(n.kind, n.step) for n in plan([_j("open")], "2024-06-25")] == [("reminder", 7)]
    assert plan([_j("open")], "2024-05-30") == []


def test_nothing_for_fulfilled_obligations():
    assert plan([_j("met"), _j("met-late")], "2024-07-30") == []


def test_overdue_notices_repeat_and_escalate_as_a_copy():
    first = plan([_j("overdue")], "2024-07-01")
    assert [(n.kind, n.step, n.copy_to, n.escalated_to) for n in first] == [("overdue", 0, (), None)]
    later = plan([_j("overdue")], "2024-07-11")
    assert [(n.kind, n.step, n.copy_to, n.escalated_to) for n in later] == [("overdue", 1, ("jlc",), "jlc")]
    assert len({n.key for n in first + later}) == 2


def test_the_division_is_never_its_own_copy():
    [n] = plan([_j("overdue", unit="jlc", values={"copy_units": ["jlc", "u2", "u2"]})], "2024-07-20")
    assert n.recipient == "jlc" and n.copy_to == ("u2",)
