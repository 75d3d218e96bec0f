"""The one place that knows concrete classes: store, record, rules, engine, scheduler, channels."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

from adapters.compliance import ComplianceService
from adapters.record import RecordService
from adapters.settings import Settings
from adapters.store import Store, utc_now
from rules.calendar import WorkdayCalendar
from rules.catalogue import Catalogue
from rules.judgment import JudgingEngine, ReferenceEngine


@dataclass
class App:
    settings: Settings
    store: Store
    record: RecordService
    catalogue: Catalogue
    calendar: WorkdayCalendar
    engine: JudgingEngine
    compliance: ComplianceService
    clock: Callable[[], dt.datetime]
    extras: dict = field(default_factory=dict)

    @property
    def notices(self):
        from adapters.notices import NoticeService
        if "notices" not in self.extras:
            self.extras["notices"] = NoticeService(self)
        return self.extras["notices"]

    def close(self) -> None:
        self.store.close()


def make_engine(name: str) -> JudgingEngine:
    if name == "reference":
        return ReferenceEngine()
    if name == "durable":
        from adapters.durable_engine import DurableEngine
        return DurableEngine()
    raise ValueError(f"unknown engine {name!r} (durable | reference)")


def bootstrap(settings: Settings | None = None, *, store_url: str | None = None,
              clock: Callable[[], dt.datetime] = utc_now, engine: str = "durable",
              catalogue: Catalogue | None = None, calendar: WorkdayCalendar | None = None) -> App:
    settings = settings or Settings.from_env(store_url)
    if store_url:
        from adapters.settings import sqlalchemy_url
        settings.store_url = sqlalchemy_url(store_url)
    store = Store(settings.store_url, clock=clock)
    record = RecordService(store)
    catalogue = catalogue or Catalogue.bundled()
    calendar = calendar or WorkdayCalendar.bundled()
    judging = make_engine(engine)
    return App(settings, store, record, catalogue, calendar, judging,
               ComplianceService(record, catalogue, calendar, judging), clock)
