"""Which reminders, overdue notices and escalations are due as of a day (pure).

The policy is data in each rule file (`reminders:`): days before the due date, a repeat interval
for overdue notices, and escalation after N days overdue. A sweep issues what is due in a window
(due ≤ now and not yet issued), never only what matches today exactly, so a scheduler that was
down catches up — but only with the latest step of each kind: nobody needs last month's
"30 days left" reminder today.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable

from rules.judgment import Judgment


@dataclass(frozen=True)
class PlannedNotice:
    key: str
    rule: str
    rule_version: int
    subject: str
    period: str
    trigger: str | None
    kind: str  # reminder | overdue (contract); an escalated overdue notice names escalated_to
    step: int
    due: str
    status: str
    recipient: str
    copy_to: tuple[str, ...] = ()
    jurisdiction: str = "shanghai"
    citation: dict[str, str] = field(default_factory=dict)
    title: str = ""
    explanation: str = ""
    escalated_to: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "rule": self.rule, "rule_version": self.rule_version, "subject": self.subject,
                "period": self.period, "trigger": self.trigger, "kind": self.kind, "step": self.step,
                "due": self.due, "status": self.status, "recipient": self.recipient,
                "copy_to": list(self.copy_to), "jurisdiction": self.jurisdiction, "citation": self.citation,
                "title": self.title, "explanation": self.explanation, "escalated_to": self.escalated_to}


def notice_key(j: Judgment, kind: str, step: int) -> str:
    """The idempotency key: obligation instance, kind, step (offset or repeat), rule version."""
    return "|".join([j.rule, f"v{j.rule_version}", j.subject, j.period, j.trigger or "-", kind, str(step)])


def plan_notices(judgments: Iterable[Judgment], policies: dict[str, dict], as_of: dt.date,
                 division: dict[str, str], supervisors: dict[str, str | None],
                 copies: dict[str, list[str]] | None = None) -> list[PlannedNotice]:
    """Everything the rules call for as of the end of `as_of` (before de-duplication against the record)."""
    out: list[PlannedNotice] = []
    copies = copies or {}
    for j in judgments:
        if j.status in ("met", "met-late"):
            continue
        policy = policies.get(j.rule) or {}
        due = dt.date.fromisoformat(j.due)
        recipient = j.unit or j.subject
        common = dict(rule=j.rule, rule_version=j.rule_version, subject=j.subject, period=j.period,
                      trigger=j.trigger, due=j.due, status=j.status, jurisdiction=j.jurisdiction,
                      citation=j.citation, title=j.title, explanation=j.explanation,
                      copy_to=tuple(copies.get(j.subject, ()) or j.values.get("copy_units", ())))
        if j.status == "open":
            steps = [k for k in policy.get("before_due_days", []) if due - dt.timedelta(days=k) <= as_of]
            if steps:
                step = min(steps)
                out.append(PlannedNotice(key=notice_key(j, "reminder", step), kind="reminder", step=step,
                                         recipient=recipient, **common))
            continue
        days_over = (as_of - due).days  # ≥ 1 here
        every = policy.get("overdue_every_days")
        step = (days_over - 1) // every if every else 0
        after = policy.get("escalate_after_days")
        copy_to = common.pop("copy_to")
        escalated_to = None
        if after is not None and days_over >= max(after, 1):
            # Escalation: the overdue notice also goes to the supervising unit or the division.
            to = policy.get("escalate_to", "division")
            escalated_to = (supervisors.get(recipient) if to == "supervisor" else None) or \
                division.get(j.jurisdiction) or f"division:{j.jurisdiction}"
            copy_to = copy_to + (escalated_to,)
        copy_to = tuple(u for u in dict.fromkeys(copy_to) if u != recipient)  # nobody twice
        out.append(PlannedNotice(key=notice_key(j, "overdue", step), kind="overdue", step=step,
                                 recipient=recipient, copy_to=copy_to, escalated_to=escalated_to, **common))
    return out
