"""What the scheduler judged back then is exactly what a replay computes today."""
import dataclasses
import datetime as dt

from adapters.facts_file import read_facts_file
from adapters.notices import recheck


def test_recorded_judgments_replay_identically_after_the_record_grows(make_app, tmp_path, contract_example,
                                                                        write_facts, clock):
    app = make_app(f"sqlite:///{tmp_path}/d.db", engine="durable")
    app.record.load(read_facts_file(contract_example))
    for day in ("2023-10-01", "2023-12-31", "2024-07-01"):
        clock.advance(hours=1)
        app.notices.sweep(dt.date.fromisoformat(day))
    clock.advance(days=3)
    # A late record of an old course changes today's judgment of 2023 …
    app.record.load(read_facts_file(write_facts(
        "events:\n  - {id: late-1, type: training-recorded, date: 2023-05-06, person: p-001, hours: 8, off_job: true}\n")))
    now = [j for j in app.compliance.check(dt.date(2023, 12, 31)) if j.rule == "training-hours" and j.subject == "p-001"]
    assert now[0].status == "met"
    # … but not what the sweeps recorded then, which a replay reproduces exactly.
    results = recheck(app)
    assert len(results) == 3 and all(r["same"] and r["same_rule_versions"] for r in results), results


def test_a_tampered_recorded_judgment_would_be_caught(make_app, tmp_path, contract_example):
    from adapters.notices import judgment_digest
    app = make_app(f"sqlite:///{tmp_path}/d.db")
    app.record.load(read_facts_file(contract_example))
    js = app.compliance.check(dt.date(2024, 1, 1))
    altered = list(js)
    altered[0] = dataclasses.replace(js[0], status="met" if js[0].status != "met" else "open")
    assert judgment_digest(js) != judgment_digest(altered)


def test_the_streamed_digest_is_the_digest_of_the_whole_array(make_app, tmp_path, contract_example):
    """Sweeps recorded before the digest was streamed must still recheck: same bytes hashed."""
    import hashlib
    import json

    from adapters.notices import judgment_digest
    app = make_app(f"sqlite:///{tmp_path}/d.db")
    app.record.load(read_facts_file(contract_example))
    js = app.compliance.check(dt.date(2024, 7, 1))
    assert len(js) > 5
    whole = json.dumps([j.to_json() | {"explanation": None} for j in js], ensure_ascii=False, sort_keys=True)
    assert judgment_digest(js) == hashlib.sha256(whole.encode()).hexdigest()
