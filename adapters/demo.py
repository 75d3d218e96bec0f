"""`metrolex demo`: the main job end to end on an embedded store, with nothing else to start.

Loads the bundled 2023 Shanghai work points and a bundled sample of agencies, people and events,
runs the scheduler's daily sweep over the sample period (the same job APScheduler runs in
`serve`, driven here by a simulated clock), and prints what was reminded and judged.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

from adapters.bootstrap import bootstrap
from adapters.cli import print_judgment_table
from adapters.facts_file import read_facts_file
from adapters.plans import bundled_path, import_plan
from adapters.timeparse import InputError, parse_day
from rules.judgment import count_by_status

SAMPLE = "bundled/samples/shanghai-sample.yaml"


def run_demo(args) -> int:
    start, end = parse_day(args.start, "--from"), parse_day(args.end, "--to")
    if end < start:
        raise InputError("--to is before --from")
    if args.store:
        url, where = args.store, args.store
    else:
        path = Path("metrolex-demo.db").resolve()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        url, where = f"sqlite:///{path}", str(path)
    say = (lambda *a, **k: print(*a, **k, file=sys.stderr)) if args.json else print
    app = bootstrap(store_url=url, engine=args.engine)
    try:
        say(f"metrolex demo — embedded store {where}")
        fact, result = import_plan(app.record, bundled_path("shanghai-2023"), actor="demo")
        say(f"1. work plan {fact.fields['key']}: {len(fact.fields['tasks'])} tasks "
            f"({'imported' if result.recorded else 'already there'})")
        sample = Path(str(resources.files("adapters").joinpath(SAMPLE)))
        loaded = app.record.load(read_facts_file(sample), actor="demo")
        by = loaded.by_type
        say(f"2. sample facts: {loaded.recorded} recorded ({by['unit-registered']} units, {by['person-registered']} people, "
            f"{by['center-registered']} centers, {loaded.recorded - by['unit-registered'] - by['person-registered'] - by['center-registered']} events)")
        say(f"3. the scheduler's daily sweep from {start} to {end}:")
        issued: list[dict] = []
        day = start
        total = (end - start).days + 1
        while day <= end:
            sweep = app.notices.sweep(day, by="demo")
            for p in sweep.issued:
                issued.append({"date": day.isoformat()} | p.to_json())
                esc = f" (escalated to {p.escalated_to})" if p.escalated_to else ""
                say(f"   {day}  {p.kind:8} {p.rule:28} {p.subject:12} due {p.due} → {p.recipient}{esc}")
            if sys.stderr.isatty() and not args.json:
                print(f"\r   … day {(day - start).days + 1}/{total}", end="\r", file=sys.stderr, flush=True)
            day += dt.timedelta(days=1)
        kinds = Counter(n["kind"] for n in issued)
        say(f"   {len(issued)} notices: {kinds.get('reminder', 0)} reminders, {kinds.get('overdue', 0)} overdue notices "
            f"({sum(1 for n in issued if n['escalated_to'])} escalated to the division)")
        judgments = app.compliance.check(end)
        say(f"4. judgments as of {end}:")
        if args.json:
            print(json.dumps({"store": where, "notices": issued, "judgments": [j.to_json() for j in judgments]},
                             ensure_ascii=False, indent=2))
        else:
            print_judgment_table(judgments)
            counts = count_by_status(judgments)
            print(f"\nDone. {sum(counts.values())} obligation instances judged. Explore the same record:")
            store = f"--store sqlite:///{where}" if not args.store else f"--store {args.store}"
            print(f"  metrolex {store} check --as-of {end} --status overdue")
            print(f"  metrolex {store} inbox sh-jlc")
            print(f"  metrolex {store} plan show 2023")
            print(f"  metrolex {store} audit verify")
        return 0
    finally:
        app.close()
