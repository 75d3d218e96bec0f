"""合规判定记录: the judgments a sweep made, recorded so an auditor can later prove that a replay
computes exactly the same (same as-of date, same knowledge, same rule versions)."""
from __future__ import annotations

from eventsourcing.domain import event

from domain.subject import Subject


class ComplianceSweep(Subject):
    prefix = "compliance-sweep"

    @event("Judged")
    def __init__(self, key: str, as_of: str, known_at: str | None, rule_versions: list[str], digest: str,
                 counts: dict[str, int], unmet: list[list]) -> None:
        """`unmet` lists the open, overdue and breached instances; `digest` covers every judgment."""
        self.key = key
        self.as_of = as_of
        self.known_at = known_at
        self.rule_versions = list(rule_versions)
        self.digest = digest
        self.counts = dict(counts)
        self.unmet = [list(x) for x in unmet]
