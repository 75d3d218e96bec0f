"""The benchmark's workload generator (bench/workload.py): deterministic, the advertised counts,
and facts the product accepts (loaded into a temporary SQLite store)."""
from __future__ import annotations

import datetime as dt

import pytest

from bench.workload import (REFERENCE, SCALES, Counts, Workload, chunked, facts_document, plan_yaml, scale_factor,
                            write_plan_files)

TINY = "0.01%"  # 0.0001 of the reference: 2 units, 10 people, 100 training records, 1 center, 2 tasks


def _everything(w: Workload) -> list:
    return list(w.fact_records()) + [("plan", p) for p in w.plans()] + list(w.task_records())


def test_scales_are_the_advertised_fractions():
    assert SCALES == {"small": 0.01, "medium": 0.10, "full": 1.0}
    assert Counts.at(1.0).as_dict() == REFERENCE
    assert Counts.at(0.1) == Counts(units=300, lead_labs=200, people=10_000, training=100_000, centers=50, tasks=2_000)
    assert Counts.at(0.01) == Counts(units=30, lead_labs=20, people=1_000, training=10_000, centers=5, tasks=200)
    assert scale_factor(TINY) == pytest.approx(0.0001)
    with pytest.raises(ValueError):
        scale_factor("huge")


def test_same_seed_same_facts_other_seed_other_facts():
    a, b = Workload(TINY, seed=7), Workload(TINY, seed=7)
    assert _everything(a) == _everything(b)
    assert _everything(a) != _everything(Workload(TINY, seed=8))


def test_advertised_counts_at_a_tiny_scale():
    w = Workload(TINY)
    c = w.counts
    census = w.census()
    assert census["sections"]["units"] == c.units
    assert census["sections"]["people"] == c.people
    assert census["sections"]["centers"] == c.centers
    assert census["event_types"]["training-recorded"] == c.training
    assert census["lead_labs"] == c.lead_labs
    assert census["tasks"] == c.tasks
    assert census["event_types"].get("task-milestone-set", 0) >= c.tasks  # every task has a milestone (up to as_of)
    assert census["event_types"]["center-approved"] == c.centers
    units = w.units()
    assert sum(1 for u in units if u["kind"] == "regulator") == 1
    assert len({u["id"] for u in units}) == len(units)


def test_counts_at_small_scale_without_loading():
    w = Workload("small")
    census = w.census()
    assert census["event_types"]["training-recorded"] == 10_000
    assert census["sections"]["people"] == 1_000
    assert census["sections"]["units"] == 30 and census["lead_labs"] == 20
    assert census["tasks"] == 200 and census["sections"]["centers"] == 5
    as_of = w.as_of.isoformat()
    assert all(r["date"] <= as_of for s, r in w.fact_records() if s == "events")


def test_chunks_become_facts_documents():
    w = Workload(TINY)
    chunks = list(chunked(w.fact_records(), 50))
    assert sum(len(c) for c in chunks) == sum(1 for _ in w.fact_records())
    doc = facts_document(chunks[0], "bench-0")
    assert doc.jurisdiction == "shanghai" and len(doc.records) == 50
    assert doc.records[0].section == "units" and doc.records[0].index == 0


def test_plan_file_reads_back_through_the_product(tmp_path):
    from adapters.plans import read_plan
    w = Workload(TINY)
    plan = w.plans()[0]
    path = tmp_path / "plan.yaml"
    path.write_text(plan_yaml(plan), encoding="utf-8")
    fact = read_plan(path)
    assert fact.fields["key"] == f"shanghai-{plan['year']}"
    assert [t["number"] for t in fact.fields["tasks"]] == [t["number"] for t in plan["tasks"]]
    assert fact.fields["tasks"][0]["leads"] == plan["tasks"][0]["leads"]


def test_facts_load_without_error_into_a_sqlite_store(tmp_path):
    from adapters.bootstrap import bootstrap
    from adapters.plans import import_plan
    w = Workload(TINY)
    app = bootstrap(store_url=f"sqlite:///{tmp_path / 'bench.db'}", engine="reference")
    try:
        recorded = 0
        for n, part in enumerate(chunked(w.fact_records(), 40)):  # several transactions, references across them
            recorded += app.record.load(facts_document(part, f"facts-{n}"), actor="test").recorded
        for path in write_plan_files(w, tmp_path / "plans"):
            recorded += import_plan(app.record, path, actor="test")[1].recorded
        for n, part in enumerate(chunked(w.task_records(), 40)):
            recorded += app.record.load(facts_document(part, f"tasks-{n}"), actor="test").recorded
        assert recorded == len(_everything(w))
        judgments = app.compliance.check(w.as_of)
        rules = {j.rule for j in judgments}
        assert {"training-hours", "task-milestone"} <= rules
        assert any(j.subject == w.probe_person for j in judgments)
        # loading the same chunk again records nothing new (ids are stable)
        first = next(iter(chunked(w.fact_records(), 40)))
        again = app.record.load(facts_document(first, "facts-0"), actor="test")
        assert again.recorded == 0 and again.repeated == len(first)
    finally:
        app.close()


def test_as_of_cuts_the_history():
    early = Workload(TINY, as_of=dt.date(2023, 6, 30))
    assert all(r["date"] <= "2023-06-30" for s, r in early.fact_records() if s == "events")
    assert all(e["date"] <= "2023-06-30" for e in early.task_events())
