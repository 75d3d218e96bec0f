"""单位: an agency, institute, center host or the division itself, and its role as lead laboratory.

SH-INST (七): the 市质量监督检验技术研究院 and every district metrology institute act as lead
laboratory (主导实验室) and organize a city-wide comparison (全市范围内的计量比对) every 3 years.
"""
from __future__ import annotations

from eventsourcing.domain import event

from domain.subject import Subject

UNIT_KINDS = ("regulator", "district-bureau", "institute", "district-institute", "center-host", "association", "other")


class Unit(Subject):
    prefix = "unit"

    @event("Registered")
    def __init__(self, key: str, fact_id: str, content_hash: str, name: str, kind: str,
                 jurisdiction: str, lead_lab_since: str | None = None, supervisor: str | None = None,
                 contacts: dict | None = None) -> None:
        self.key = key
        self.name = name
        self.kind = kind
        self.jurisdiction = jurisdiction
        self.lead_lab_since = lead_lab_since
        self.lead_lab_ended: str | None = None
        self.supervisor = supervisor
        self.contacts = contacts or {}
        self.comparisons: list[str] = []
        self._note(fact_id, content_hash, "unit-registered")

    @event("LeadLabStarted")
    def start_lead_lab(self, fact_id: str, content_hash: str, date: str) -> None:
        """成为主导实验室: comparison cycles run from this day."""
        self._note(fact_id, content_hash, "lead-lab-started")
        self.lead_lab_since = date
        self.lead_lab_ended = None

    @event("LeadLabEnded")
    def end_lead_lab(self, fact_id: str, content_hash: str, date: str) -> None:
        """No longer a lead laboratory: owes no comparison cycle due after this day."""
        self._note(fact_id, content_hash, "lead-lab-ended")
        self.lead_lab_ended = date

    @event("ComparisonOrganized")
    def organize_comparison(self, fact_id: str, content_hash: str, date: str, subject: str | None = None) -> None:
        """组织全市计量比对."""
        self._note(fact_id, content_hash, "comparison-organized")
        self.comparisons.append(fact_id)
