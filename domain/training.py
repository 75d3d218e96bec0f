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


class TrainingRegister(Subject):
    """培训台账: the training records filed together in one submission (one file, one request).

    A register is how a large submission is stored: one event carries all of its records, each
    with its own fact id and content hash, so each can still be retracted on its own. A record
    that the same submission also retracts is stored as its own `TrainingRecord` instead."""

    prefix = "training-register"

    @event("Filed")
    def __init__(self, key: str, records: list[dict]) -> None:
        self.key = key
        self.size = len(records)
        for record in records:
            self._note(record["fact_id"], record["content_hash"], "training-recorded")
