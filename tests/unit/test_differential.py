"""Differential: the durable_rules engine and the reference engine give identical judgments —
on the golden facts and on a randomized corpus of facts (hypothesis)."""
from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.durable_engine import DurableEngine
from rules.calendar import WorkdayCalendar
from rules.catalogue import Catalogue
from rules.evaluate import evaluate
from rules.judgment import ReferenceEngine

CAT = Catalogue.bundled()
CAL = WorkdayCalendar.bundled()
DAY0 = dt.date(2022, 6, 1)


def _row(seq, fact_id, type_, fields, date=None, refers=None):
    return {"seq": seq, "fact_id": fact_id, "type": type_, "date": date, "subject": fields.get("person") or fields.get("center") or fields.get("unit") or fields.get("id"),
            "refers": refers, "fields": dict(fields, **({"date": date} if date else {})), "jurisdiction": "shanghai",
            "recorded_at": "2024-01-01T00:00:00.000000+00:00"}


days = st.integers(min_value=0, max_value=1600).map(lambda n: (DAY0 + dt.timedelta(days=n)).isoformat())


def _register_people(draw, rows: list[dict], since) -> int:
    """One to four people of unit u1 appended to `rows`, in duty since a day drawn from `since`;
    returns how many."""
    n_people = draw(st.integers(1, 4))
    for i in range(n_people):
        rows.append(_row(len(rows) + 1, f"person:p{i}", "person-registered",
                         {"id": f"p{i}", "name": "p", "unit": "u1", "since": draw(since),
                          "duties": [draw(st.sampled_from(["mandatory-verification", "type-evaluation", "other"]))]}))
    return n_people


@st.composite
def corpora(draw):
    rows = [_row(1, "unit:u1", "unit-registered", {"id": "u1", "name": "u", "kind": "district-institute",
                                                   "jurisdiction": "shanghai", "lead_lab_since": draw(days)}),
            _row(2, "center:c1", "center-registered", {"id": "c1", "name": "c", "host": "u1"})]
    n_people = _register_people(draw, rows, days)
    seq = len(rows)
    for j in range(draw(st.integers(0, 25))):
        seq += 1
        kind = draw(st.sampled_from(["training", "comparison", "approve", "major", "notify", "order", "complete",
                                     "fail", "report", "exchange", "accept", "revoke", "duties-ended"]))
        d = draw(days)
        p = f"p{draw(st.integers(0, n_people - 1))}"
        fid = f"e{seq}"
        if kind == "training":
            rows.append(_row(seq, fid, "training-recorded", {"person": p, "hours": draw(st.sampled_from([2, 4, 8, 15.5, 16])),
                                                                "off_job": draw(st.booleans())}, d))
        elif kind == "comparison":
            rows.append(_row(seq, fid, "comparison-organized", {"unit": "u1"}, d))
        elif kind == "approve":
            rows.append(_row(seq, fid, "center-approved", {"center": "c1", "construction_years": draw(st.sampled_from([2, 3]))}, d))
        elif kind == "major":
            rows.append(_row(seq, fid, "center-major-event", {"center": "c1"}, d))
        elif kind == "notify":
            rows.append(_row(seq, fid, "center-major-event-notified", {"center": "c1"}, d))
        elif kind == "order":
            rows.append(_row(seq, fid, "rectification-ordered", {"center": "c1", "deadline": draw(days)}, d))
        elif kind == "complete":
            rows.append(_row(seq, fid, "rectification-completed", {"center": "c1"}, d))
        elif kind == "fail":
            rows.append(_row(seq, fid, "rectification-failed", {"center": "c1"}, d))
        elif kind == "report":
            rows.append(_row(seq, fid, "center-annual-report-filed", {"center": "c1", "year": int(d[:4])}, d))
        elif kind == "exchange":
            rows.append(_row(seq, fid, "exchange-activity-held", {"center": "c1"}, d))
        elif kind == "accept":
            rows.append(_row(seq, fid, "center-accepted", {"center": "c1"}, d))
        elif kind == "revoke":
            rows.append(_row(seq, fid, "center-revoked", {"center": "c1"}, d))
        else:
            rows.append(_row(seq, fid, "person-duties-ended", {"person": p}, d))
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=corpora(), as_of=days)
def test_durable_and_reference_agree_on_random_records(rows, as_of):
    day = dt.date.fromisoformat(as_of)
    rules = CAT.in_force(day)
    ref = [j.to_json() for j in evaluate(rows, day, rules, CAL, ReferenceEngine())]
    dur = [j.to_json() for j in evaluate(rows, day, rules, CAL, DurableEngine())]
    assert dur == ref


def test_durable_and_reference_agree_on_the_contract_example(contract_example):
    from adapters.facts_file import read_facts_file
    from adapters.record import rows_in_memory
    rows = rows_in_memory(read_facts_file(contract_example))
    for as_of in ("2023-10-11", "2023-12-31", "2024-07-01", "2026-11-23"):
        day = dt.date.fromisoformat(as_of)
        rules = CAT.in_force(day)
        assert [j.to_json() for j in evaluate(rows, day, rules, CAL, DurableEngine())] == \
               [j.to_json() for j in evaluate(rows, day, rules, CAL, ReferenceEngine())]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=corpora(), as_of=days, retract=st.booleans())
def test_compact_training_records_judge_like_fact_rows(rows, as_of, retract):
    """Training records read as compact tuples (what the store's cache holds) give the same
    judgments as the same records as read-model dicts, and the template's compact path gives the
    same as its generic path over fact objects."""
    import rules.templates.periodic as periodic
    from rules.view import Snapshot, compact_training
    training = [r for r in rows if r["type"] == "training-recorded"]
    if retract and training:
        rows = rows + [_row(len(rows) + 1, "r-1", "event-retracted", {}, as_of, refers=training[0]["fact_id"])]
    day = dt.date.fromisoformat(as_of)
    rules = CAT.in_force(day)
    as_dicts = [j.to_json() for j in evaluate(rows, day, rules, CAL)]
    snap = Snapshot([r for r in rows if r["type"] != "training-recorded"],
                    [compact_training(r) for r in rows if r["type"] == "training-recorded"])
    assert [j.to_json() for j in evaluate(snap, day, rules, CAL)] == as_dicts
    original = periodic._compact_filter
    periodic._compact_filter = lambda p: None
    try:
        assert [j.to_json() for j in evaluate(rows, day, rules, CAL)] == as_dicts
    finally:
        periodic._compact_filter = original


def test_a_snapshot_gives_back_the_rows_it_was_made_of():
    from rules.view import Snapshot, compact_training, training_row
    row = _row(7, "t7", "training-recorded", {"person": "p1", "hours": 15.5, "off_job": False, "course": "c"},
               "2023-05-06")
    row["fields"] = {k: v for k, v in row["fields"].items()}
    assert training_row(compact_training(row)) == {**row, "subject": "p1", "refers": None}
    other = _row(3, "unit:u1", "unit-registered", {"id": "u1"})
    assert [r["seq"] for r in Snapshot([other], [compact_training(row)]).all_rows()] == [3, 7]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=corpora(), as_of=days, retract=st.booleans())
def test_training_grouped_by_person_judges_like_a_flat_list(rows, as_of, retract):
    """The store's cache hands out training records already grouped by person and sorted; the
    view cuts them (as-of date, retractions) when read — the same judgments as from a flat list."""
    from rules.view import Snapshot, compact_training
    training = [compact_training(r) for r in rows if r["type"] == "training-recorded"]
    others = [r for r in rows if r["type"] != "training-recorded"]
    if retract and training:
        others = others + [_row(len(rows) + 1, "r-1", "event-retracted", {}, as_of, refers=training[-1][2])]
    grouped: dict = {}
    for t in sorted(training):
        grouped.setdefault(t[5], []).append(t)
    frozen = {p: list(v) for p, v in grouped.items()}
    day = dt.date.fromisoformat(as_of)
    rules = CAT.in_force(day)
    flat = [j.to_json() for j in evaluate(Snapshot(others, training), day, rules, CAL)]
    assert [j.to_json() for j in evaluate(Snapshot(others, training, grouped), day, rules, CAL)] == flat
    assert grouped == frozen  # the shared lists were not changed


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=corpora(), as_of=days, pick=st.sets(st.sampled_from(["u1", "c1", "p0", "p1", "p2", "nobody"]), min_size=1))
def test_judging_some_subjects_gives_exactly_their_judgments(rows, as_of, pick):
    """Templates skip subjects nobody asked about; what is left is the full judgment, filtered."""
    day = dt.date.fromisoformat(as_of)
    rules = CAT.in_force(day)
    every = [j.to_json() for j in evaluate(rows, day, rules, CAL) if j.subject in pick]
    assert [j.to_json() for j in evaluate(rows, day, rules, CAL, subjects=pick)] == every


def _digest_snapshot(others: list[dict], training: list[tuple]):
    """What the store hands out for a sweep (RecordService.snapshot(digest=True)), made in memory:
    digests for the people who can have one, the records of the others (retracted records, hours
    that are not quarter hours) one by one."""
    from rules.view import Snapshot, T_ID, T_PERSON, digest_of
    retracted = {r["refers"] for r in others if r["type"] == "event-retracted"}
    grouped: dict = {}
    for t in sorted(training):
        grouped.setdefault(t[T_PERSON], []).append(t)
    retracted_people = {t[T_PERSON] for t in training if t[T_ID] in retracted}
    digests, by_person = {}, {}
    for person, lst in grouped.items():
        d = None if person in retracted_people else digest_of(lst)
        if d is None:
            by_person[person] = lst
        else:
            digests[person] = d
    return Snapshot(others, [], by_person, retracted_people, digests), grouped, retracted_people


HOURS = st.sampled_from([0, 0.25, 0.5, 1, 2, 2.75, 4, 7.5, 8, 15.5, 15.75, 16, 0.1, 0.3, 1 / 3])


@st.composite
def training_corpora(draw):
    """People bound by the yearly total (most of them), and many training records over the years,
    several on one day, some after the as-of date."""
    rows = [_row(1, "unit:u1", "unit-registered", {"id": "u1", "name": "u", "kind": "district-institute",
                                                   "jurisdiction": "shanghai"})]
    early = st.integers(min_value=0, max_value=500).map(lambda n: (DAY0 + dt.timedelta(days=n)).isoformat())
    n_people = _register_people(draw, rows, early)
    seq = len(rows)
    for _ in range(draw(st.integers(0, 40))):
        seq += 1
        p = f"p{draw(st.integers(0, n_people - 1))}"
        if draw(st.integers(0, 19)) == 0:
            rows.append(_row(seq, f"e{seq}", "person-duties-ended", {"person": p}, draw(days)))
            continue
        rows.append(_row(seq, f"e{seq}", "training-recorded",
                         {"person": p, "hours": draw(HOURS), "off_job": draw(st.booleans())},
                         draw(st.sampled_from(["2023-03-01", "2024-06-30", "2024-09-01", "2024-12-31",
                                               "2025-01-01"]) | days)))
    return rows


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=training_corpora(), as_of=st.sampled_from(["2024-06-30", "2024-12-31", "2025-03-01"]) | days,
       retract=st.integers(0, 3),
       want=st.sampled_from([True, False, None]), prorate=st.booleans(),
       threshold=st.sampled_from([16, 4, 0.5, 0, 16.3]))
def test_digests_judge_like_training_records(rows, as_of, retract, want, prorate, threshold):
    """A sweep judges most people's training records from their digest (columns read by the
    store in one pass) and the rest one by one: the same judgments as from every record, for
    any off-job filter, threshold and proration, quarter hours or not, retracted or not."""
    import dataclasses
    from rules.view import Snapshot, compact_training
    training = [compact_training(r) for r in rows if r["type"] == "training-recorded"]
    others = [r for r in rows if r["type"] != "training-recorded"]
    for n in range(min(retract, len(training))):
        others = others + [_row(len(rows) + 1 + n, f"r-{n}", "event-retracted", {}, as_of,
                                refers=training[-1 - n][2])]
    day = dt.date.fromisoformat(as_of)
    rules = []
    for rule in CAT.in_force(day):
        if rule.template == "total-per-period":
            p = dict(rule.parameters, prorate=prorate, threshold=threshold,
                     filter={} if want is None else {"off_job": want})
            rule = dataclasses.replace(rule, parameters=p)
        rules.append(rule)
    every = [j.to_json() for j in evaluate(Snapshot(others, training), day, rules, CAL)]
    assert every == [j.to_json() for j in evaluate(others + [r for r in rows if r["type"] == "training-recorded"],
                                                   day, rules, CAL)]
    snap, grouped, retracted_people = _digest_snapshot(others, training)
    assert [j.to_json() for j in evaluate(snap, day, rules, CAL)] == every
    # the digests were used: every person with quarter hours only and nothing retracted
    assert set(snap.digests) == {p for p, lst in grouped.items() if p not in retracted_people
                                 and all((t[3] * 4).is_integer() for t in lst)}


def test_a_view_of_digests_refuses_to_hand_out_records_one_by_one():
    import pytest
    from rules.view import DigestModeError, FactView, compact_training
    rows = [_row(1, "t1", "training-recorded", {"person": "p1", "hours": 2, "off_job": True}, "2023-05-06")]
    snap, _, _ = _digest_snapshot([], [compact_training(r) for r in rows])
    view = FactView.build(snap, dt.date(2023, 12, 31))
    assert view.training_digest("p1").quarters == [8]
    with pytest.raises(DigestModeError):
        view.training_of("p1")
    with pytest.raises(DigestModeError):
        view.all("training-recorded")
    assert view.training_of("nobody") == []
    with pytest.raises(DigestModeError):
        snap.all_rows()


def test_only_rules_that_sum_hours_filtered_on_off_job_are_judged_from_digests():
    import dataclasses
    from rules.templates import judged_from_digests
    rules = CAT.in_force(dt.date(2024, 6, 1))
    assert judged_from_digests(rules)
    hours = next(r for r in rules if r.template == "total-per-period")
    by_course = dataclasses.replace(hours, parameters=dict(hours.parameters, filter={"course": "x"}))
    assert not judged_from_digests(rules + [by_course])
    counted = next(r for r in rules if r.template == "count-per-period")
    of_training = dataclasses.replace(counted, parameters=dict(counted.parameters, fact="training-recorded"))
    assert not judged_from_digests([of_training])
