"""工作要点: the division's annual work plan; each task has lead units (牵头部门) and supporting
units (配合部门) as the document names them, and may carry milestones the division sets.

Collective names (各区市场监管局, 各法定计量技术机构 …) are kept as the document writes them;
which registered units they denote is decided when obligations are derived (see
rules/units.py), so that a unit registered later is still covered.
"""
from __future__ import annotations

from eventsourcing.domain import event

from domain.errors import DomainError, UnknownReferenceError
from domain.subject import Subject


class TaskError(DomainError):
    """A command on a task that the plan does not allow."""


class WorkPlan(Subject):
    prefix = "plan"

    @event("Published")
    def __init__(self, key: str, fact_id: str, content_hash: str, jurisdiction: str, year: int,
                 document: dict, groups: list[dict], tasks: list[dict]) -> None:
        self.key = key
        self.jurisdiction = jurisdiction
        self.year = year
        self.document = document
        self.groups = groups
        self.tasks = {int(t["number"]): dict(t, status="assigned", progress=[]) for t in tasks}
        self._note(fact_id, content_hash, "plan-published")

    def check_task(self, number: int) -> dict:
        try:
            return self.tasks[int(number)]
        except KeyError:
            raise UnknownReferenceError(f"plan {self.key!r} has no task {number}") from None

    @event("TaskReassigned")
    def reassign_task(self, fact_id: str, content_hash: str, date: str, number: int,
                      leads: list[str], supporting: list[str]) -> None:
        """重新分工: a new lead/supporting assignment; the old one stays in the record."""
        self._note(fact_id, content_hash, "task-reassigned")
        self.tasks[int(number)].update(leads=list(leads), supporting=list(supporting))

    @event("MilestoneSet")
    def set_milestone(self, fact_id: str, content_hash: str, date: str, number: int, name: str, due: str) -> None:
        """时间节点 set by the division for a task."""
        self._note(fact_id, content_hash, "task-milestone-set")
        self.tasks[int(number)].setdefault("milestones_set", []).append({"name": name, "due": due})

    @event("ProgressReported")
    def report_progress(self, fact_id: str, content_hash: str, date: str, number: int, unit: str,
                        text: str, milestone: str | None = None) -> None:
        self._note(fact_id, content_hash, "task-progress-reported")
        self.tasks[int(number)]["progress"].append(fact_id)

    def check_can_complete(self, number: int) -> None:
        if self.check_task(number)["status"] == "completed":
            raise TaskError(f"task {number} of plan {self.key!r} is already completed")

    @event("TaskCompleted")
    def complete_task(self, fact_id: str, content_hash: str, date: str, number: int, unit: str | None = None) -> None:
        self._note(fact_id, content_hash, "task-completed")
        self.tasks[int(number)]["status"] = "completed"
