"""产业计量测试中心: an industrial metrology test center from approval for construction (批准筹建)
to acceptance (验收) or revocation (撤销), per SH-CNTR 沪市监计量〔2023〕213号.

Major events (重大事项) must be notified in writing within 5 working days (五(二)); an order to
rectify (责令限期整改) is answered by a completed rectification, and a review may find it failed
(五(三)). Answers may name the event they answer (refers_to); otherwise they answer the oldest
one still unanswered, which the rules decide on the facts, not here.
"""
from __future__ import annotations

from eventsourcing.domain import event

from domain.errors import ReferenceMismatchError
from domain.subject import Subject


class Center(Subject):
    prefix = "center"

    @event("Registered")
    def __init__(self, key: str, fact_id: str, content_hash: str, name: str, host: str,
                 contacts: dict | None = None) -> None:
        self.key = key
        self.name = name
        self.host = host
        self.contacts = contacts or {}
        self.approved_on: str | None = None
        self.accepted_on: str | None = None
        self.revoked_on: str | None = None
        self.major_events: list[str] = []
        self.rectification_orders: list[str] = []
        self._note(fact_id, content_hash, "center-registered")

    def check_answers(self, refers_to: str | None, wanted: str) -> None:
        """The event an answer names must be a `wanted` event of this very center."""
        if refers_to is None:
            return
        pool = self.major_events if wanted == "center-major-event" else self.rectification_orders
        if refers_to not in pool:
            raise ReferenceMismatchError(
                f"refers_to {refers_to!r} is not a {wanted} of center {self.key!r}")

    @event("ApprovedForConstruction")
    def approve(self, fact_id: str, content_hash: str, date: str, construction_years: int | None) -> None:
        """批准筹建; the construction period (一般为2—3年) runs from this day."""
        self._note(fact_id, content_hash, "center-approved")
        self.approved_on = date
        self.construction_years = construction_years

    @event("MajorEventOccurred")
    def report_major_event(self, fact_id: str, content_hash: str, date: str, summary: str | None) -> None:
        self._note(fact_id, content_hash, "center-major-event")
        self.major_events.append(fact_id)

    @event("MajorEventNotified")
    def notify_major_event(self, fact_id: str, content_hash: str, date: str, refers_to: str | None) -> None:
        """书面告知 the regulator of a major event."""
        self._note(fact_id, content_hash, "center-major-event-notified")

    @event("AnnualReportFiled")
    def file_annual_report(self, fact_id: str, content_hash: str, date: str, year: int) -> None:
        """每年11月底前报送筹建情况及典型案例."""
        self._note(fact_id, content_hash, "center-annual-report-filed")

    @event("ExchangeActivityHeld")
    def hold_exchange_activity(self, fact_id: str, content_hash: str, date: str, title: str | None = None) -> None:
        self._note(fact_id, content_hash, "exchange-activity-held")

    @event("RectificationOrdered")
    def order_rectification(self, fact_id: str, content_hash: str, date: str, deadline: str) -> None:
        """责令限期整改."""
        self._note(fact_id, content_hash, "rectification-ordered")
        self.rectification_orders.append(fact_id)

    @event("RectificationFailed")
    def fail_rectification(self, fact_id: str, content_hash: str, date: str, refers_to: str | None) -> None:
        """A review found the rectification insufficient: the order stays unfulfilled."""
        self._note(fact_id, content_hash, "rectification-failed")

    @event("RectificationCompleted")
    def complete_rectification(self, fact_id: str, content_hash: str, date: str, refers_to: str | None) -> None:
        self._note(fact_id, content_hash, "rectification-completed")

    @event("AcceptanceApplied")
    def apply_for_acceptance(self, fact_id: str, content_hash: str, date: str) -> None:
        self._note(fact_id, content_hash, "center-acceptance-applied")

    @event("Accepted")
    def accept(self, fact_id: str, content_hash: str, date: str) -> None:
        """验收通过: fulfils the construction period."""
        self._note(fact_id, content_hash, "center-accepted")
        self.accepted_on = date

    @event("Revoked")
    def revoke(self, fact_id: str, content_hash: str, date: str) -> None:
        """撤销资格: owes nothing due after this day; what was due stays owed."""
        self._note(fact_id, content_hash, "center-revoked")
        self.revoked_on = date
