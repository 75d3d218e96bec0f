"""通知: a reminder, overdue notice or escalation the scheduler issued for one obligation instance.

Its id derives from the idempotency key (rule, version, subject, instance, kind, step), so the
store's uniqueness of aggregate ids makes each notice exist once however many schedulers run.
"""
from __future__ import annotations

from eventsourcing.domain import event

from domain.errors import DomainError
from domain.subject import Subject

NOTICE_KINDS = ("reminder", "overdue", "escalation")


class NoticeError(DomainError):
    pass


class Notice(Subject):
    prefix = "notice"

    @event("Issued")
    def __init__(self, key: str, rule: str, rule_version: int, subject: str, period: str,
                 kind: str, step: int, due: str, as_of: str, recipient: str, copy_to: list[str],
                 message: dict) -> None:
        self.check_kind(kind)
        self.key = key
        self.rule = rule
        self.rule_version = rule_version
        self.subject = subject
        self.period = period
        self.kind = kind
        self.step = step
        self.due = due
        self.as_of = as_of
        self.recipient = recipient
        self.copy_to = list(copy_to)
        self.message = message
        self.deliveries: dict[str, str] = {}

    @staticmethod
    def check_kind(kind: str) -> None:
        if kind not in NOTICE_KINDS:
            raise NoticeError(f"unknown notice kind {kind!r}")

    @event("Delivered")
    def record_delivery(self, channel: str, address: str, attempt: int) -> None:
        self.deliveries[f"{channel}:{address}"] = "delivered"

    @event("DeliveryFailed")
    def record_delivery_failure(self, channel: str, address: str, attempt: int, error: str) -> None:
        self.deliveries[f"{channel}:{address}"] = f"failed:{attempt}"
