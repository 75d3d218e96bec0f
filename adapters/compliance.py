"""Compliance queries: check, replay, explain, history — the read side over the record."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterator

from adapters.gcpause import paused_gc
from adapters.record import RecordService
from rules.calendar import WorkdayCalendar
from rules.catalogue import Catalogue
from rules.evaluate import evaluate
from rules.judgment import JudgingEngine, Judgment
from rules.templates import judged_from_digests
from rules.view import T_DATE, T_ID, T_PERSON, T_RECORDED, TRAINING, Snapshot, training_fields


@dataclass
class Filters:
    units: set[str] | None = None
    rules: set[str] | None = None
    statuses: set[str] | None = None
    subjects: set[str] | None = None

    def keep(self, j: Judgment) -> bool:
        return ((not self.units or j.unit in self.units or j.subject in self.units)
                and (not self.rules or j.rule in self.rules)
                and (not self.statuses or j.status in self.statuses)
                and (not self.subjects or j.subject in self.subjects))


class ComplianceService:
    def __init__(self, record: RecordService, catalogue: Catalogue, calendar: WorkdayCalendar,
                 engine: JudgingEngine) -> None:
        self.record, self.catalogue, self.calendar, self.engine = record, catalogue, calendar, engine

    def check(self, as_of: dt.date, known_at: str | None = None, filters: Filters | None = None,
              lang: str = "zh", rows: "Snapshot | list[dict] | None" = None) -> list[Judgment]:
        with paused_gc(keep=True):
            return self._check(as_of, known_at, filters, lang, rows)

    def _check(self, as_of: dt.date, known_at: str | None, filters: Filters | None, lang: str,
               rows: "Snapshot | list[dict] | None") -> list[Judgment]:
        rules = self.catalogue.in_force(as_of, filters.rules if filters and filters.rules else None)
        if rows is None:
            # Judging some subjects needs only their facts and the shared ones (re-judging after
            # one new event stays fast however large the record is). Judging everyone needs each
            # person's training records only as a digest, read by the store in one pass.
            rows = self.record.snapshot(known_at, filters.subjects if filters and filters.subjects else None,
                                        digest=judged_from_digests(rules))
        judgments = evaluate(rows, as_of, rules, self.calendar, self.engine, lang,
                             filters.subjects if filters and filters.subjects else None)
        return [j for j in judgments if filters is None or filters.keep(j)]

    def replay(self, as_of: dt.date, known_at: str | None, lang: str = "zh") -> dict:
        """check as it would have been, with the events each judgment rests on (both times)."""
        with paused_gc(keep=True):
            out, judgments = self.replay_stream(as_of, known_at, lang)
            out["judgments"] = list(judgments)
            return out

    def replay_stream(self, as_of: dt.date, known_at: str | None, lang: str = "zh") -> tuple[dict, Iterator[dict]]:
        """`replay` as (everything but the judgments, the judgments one at a time): what
        `metrolex audit replay --json` prints, without holding the whole answer in memory."""
        snap = self.record.snapshot(known_at)
        by_id = {r["fact_id"]: r for r in snap.rows}
        judgments = self.check(as_of, known_at, lang=lang, rows=snap)
        # Training records are found through their person (a handful each), not through an
        # index of every record: a national record has a million of them.
        by_person = snap.by_person
        if by_person is None:
            by_person = {}
            for t in snap.training:
                by_person.setdefault(t[T_PERSON], []).append(t)
        shared: dict[str, dict] = {}  # events several judgments cite (approvals, plans …), built once

        def event(fid: str) -> dict | None:
            """A cited event that is not a training record (those are found through their person)."""
            r = by_id.get(fid)
            if r is None:
                return None
            e = shared.get(fid)
            if e is None:
                e = shared[fid] = {"id": fid, "type": r["type"], "date": r["date"],
                                   "recorded_at": r["recorded_at"], "fields": r["fields"]}
            return e

        def each() -> Iterator[dict]:
            with paused_gc(keep=True):  # while the documents are built (resumed when the stream ends or is closed)
                yield from documents()

        def documents() -> Iterator[dict]:
            person, training = None, None  # a person's judgments come one after another: one index each
            for j in judgments:
                if j.subject_kind != "person":
                    training = None
                elif j.subject != person or training is None:
                    person = j.subject
                    lst = by_person.get(person)
                    training = {t[T_ID]: t for t in lst} if lst else None
                out = j.to_json()
                if training is None:
                    out["events"] = [e for e in map(event, j.facts) if e is not None]
                else:
                    out["events"] = events = []
                    for f in j.facts:
                        t = training.get(f)
                        if t is not None:
                            events.append({"id": f, "type": TRAINING, "date": t[T_DATE], "recorded_at": t[T_RECORDED],
                                           "fields": training_fields(t)})
                        else:
                            e = event(f)
                            if e is not None:
                                events.append(e)
                yield out

        head = {
            "as_of": as_of.isoformat(), "known_at": known_at,
            "rule_versions": [v.summary() for v in self.catalogue.in_force(as_of)],
            "retractions": [event(r["fact_id"]) for r in snap.rows if r["type"] == "event-retracted"],
        }
        return head, each()

    def explain(self, as_of: dt.date, rule: str, subject: str, period: str | None, known_at: str | None,
                lang: str = "zh") -> list[dict]:
        rows = self.record.fact_rows(known_at)
        by_id = {r["fact_id"]: r for r in rows}
        out = []
        for j in self.check(as_of, known_at, Filters(rules={rule}, subjects={subject}), lang, rows):
            if period and j.period != period and j.trigger != period:
                continue
            version = next(v for v in self.catalogue.in_force(as_of) if v.id == j.rule)
            out.append({
                "judgment": j.to_json(),
                "rule": version.summary() | {"quote": version.citation.get("quote"),
                                             "choices": list(version.choices)},
                "events": [{"id": f, "type": by_id[f]["type"], "date": by_id[f]["date"],
                            "recorded_at": by_id[f]["recorded_at"], "fields": by_id[f]["fields"]}
                           for f in j.facts if f in by_id],
                "computation": j.explanation,
            })
        return out

    def history(self, subject: str) -> list[dict]:
        rows = self.record.fact_rows()
        retracted = {r["refers"]: r["fact_id"] for r in rows if r["type"] == "event-retracted"}
        own = {r["fact_id"] for r in rows if r["subject"] == subject}
        mine = [r for r in rows if r["subject"] == subject or r["fields"].get("host") == subject
                or (r["type"] == "event-retracted" and r["refers"] in own)]
        return [{"id": r["fact_id"], "type": r["type"], "date": r["date"], "recorded_at": r["recorded_at"],
                 "retracted_by": retracted.get(r["fact_id"]), "fields": r["fields"]} for r in mine]
