"""培训记录: one course a technician attended, with its class hours (学时) and whether it was off-job.

Each record is its own aggregate, so a million records append without reading each other.
"""
from __future__ import annotations

from eventsourcing.domain import event

from domain.subject import Subject


class TrainingRecord(Subject):
    prefix = "training"

    @event("Recorded")
    def __init__(self, key: str, fact_id: str, content_hash: str, person: str, date: str,
                 hours: float, off_job: bool, course: str | None = None) -> None:
        self.key = key
        self.person = person
        self.date = date
        self.hours = hours
        self.off_job = off_job
        self.course = course
        self._note(fact_id, content_hash, "training-recorded")
