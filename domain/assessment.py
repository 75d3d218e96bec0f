"""指标与评估: reports of the plan's indicators (SH-PLAN 一(三), JS-OPIN 二) and the plan's
mid-term and final evaluations (JS-OPIN 七(四), SH-PLAN 七(一)). One aggregate per report."""
from __future__ import annotations

from eventsourcing.domain import event

from domain.subject import Subject

EVALUATIONS = ("mid-term", "final")


class IndicatorReport(Subject):
    prefix = "indicator-report"

    @event("Reported")
    def __init__(self, key: str, fact_id: str, content_hash: str, jurisdiction: str, indicator: str,
                 value: float, date: str) -> None:
        self.key = key
        self.jurisdiction = jurisdiction
        self.indicator = indicator
        self.value = value
        self.date = date
        self._note(fact_id, content_hash, "indicator-reported")


class PlanEvaluation(Subject):
    prefix = "plan-evaluation"

    @event("Completed")
    def __init__(self, key: str, fact_id: str, content_hash: str, jurisdiction: str, evaluation: str,
                 date: str) -> None:
        self.key = key
        self.jurisdiction = jurisdiction
        self.evaluation = evaluation
        self.date = date
        self._note(fact_id, content_hash, "plan-evaluated")
