"""技术人员: a technician and the statutory duties (法制任务) they hold over time.

SH-INST (八): technicians doing mandatory verification (强制检定) and type evaluation (型式评价)
take at least 16 class hours of off-job professional training (脱产专业培训) each year.
"""
from __future__ import annotations

from eventsourcing.domain import event

from domain.subject import Subject

DUTIES = ("mandatory-verification", "type-evaluation", "other")
STATUTORY_DUTIES = ("mandatory-verification", "type-evaluation")


class Person(Subject):
    prefix = "person"

    @event("Registered")
    def __init__(self, key: str, fact_id: str, content_hash: str, name: str, unit: str,
                 duties: list[str], since: str | None = None, contacts: dict | None = None) -> None:
        self.key = key
        self.name = name
        self.unit = unit
        self.duties = list(duties)
        self.since = since
        self.contacts = contacts or {}
        self._note(fact_id, content_hash, "person-registered")

    @property
    def is_statutory(self) -> bool:
        return any(d in STATUTORY_DUTIES for d in self.duties)

    @event("DutiesChanged")
    def change_duties(self, fact_id: str, content_hash: str, date: str, duties: list[str]) -> None:
        """岗位职责变更; a change to non-statutory duties is leaving (离开法制岗位)."""
        self._note(fact_id, content_hash, "person-duties-changed")
        self.duties = list(duties)

    @event("DutiesEnded")
    def end_duties(self, fact_id: str, content_hash: str, date: str) -> None:
        self._note(fact_id, content_hash, "person-duties-ended")
        self.duties = []
