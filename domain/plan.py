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

    # What each task fact does to its task (one place: the per-fact events of older stores and
    # the submission's event below both apply it).
    def _apply_task_fact(self, fact_type: str, fact_id: str, content_hash: str, number: int,
                         fields: dict) -> None:
        self._note(fact_id, content_hash, fact_type)
        task = self.tasks[int(number)]
        if fact_type == "task-reassigned":
            task.update(leads=list(fields["leads"]), supporting=list(fields.get("supporting", [])))
        elif fact_type == "task-milestone-set":
            task.setdefault("milestones_set", []).append({"name": fields["name"], "due": fields["due"]})
        elif fact_type == "task-progress-reported":
            task["progress"].append(fact_id)
        elif fact_type == "task-completed":
            task["status"] = "completed"
        else:
            raise TaskError(f"{fact_type!r} is not a task fact")

    @event("TaskFactsRecorded")
    def record_task_facts(self, facts: list[dict]) -> None:
        """A submission's task facts on this plan (one file, one request), in its order, as one
        event: each keeps its type, id, content hash and fields ({"type", "fact_id",
        "content_hash", "fields"}), so each can still be retracted on its own. (A file of task
        facts stored one event each spent most of its time in the event machinery.)"""
        for f in facts:
            fields = f["fields"]
            self._apply_task_fact(f["type"], f["fact_id"], f["content_hash"], fields["task"], fields)

    # One event per task fact: how stores written before round 10 hold them (still replayed).
    @event("TaskReassigned")
    def reassign_task(self, fact_id: str, content_hash: str, date: str, number: int,
                      leads: list[str], supporting: list[str]) -> None:
        """重新分工: a new lead/supporting assignment; the old one stays in the record."""
        self._apply_task_fact("task-reassigned", fact_id, content_hash, number,
                              {"leads": leads, "supporting": supporting})

    @event("MilestoneSet")
    def set_milestone(self, fact_id: str, content_hash: str, date: str, number: int, name: str, due: str) -> None:
        """时间节点 set by the division for a task."""
        self._apply_task_fact("task-milestone-set", fact_id, content_hash, number, {"name": name, "due": due})

    @event("ProgressReported")
    def report_progress(self, fact_id: str, content_hash: str, date: str, number: int, unit: str,
                        text: str, milestone: str | None = None) -> None:
        self._apply_task_fact("task-progress-reported", fact_id, content_hash, number, {})

    def check_can_complete(self, number: int) -> None:
        if self.check_task(number)["status"] == "completed":
            raise TaskError(f"task {number} of plan {self.key!r} is already completed")

    @event("TaskCompleted")
    def complete_task(self, fact_id: str, content_hash: str, date: str, number: int, unit: str | None = None) -> None:
        self._apply_task_fact("task-completed", fact_id, content_hash, number, {})
