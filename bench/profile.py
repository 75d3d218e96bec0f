"""Profile one phase of the benchmark with cProfile and print the top functions.

    python -m bench.profile --scale medium --workdir /tmp/mxprof build     # load a store once (kept)
    python -m bench.profile --scale medium --workdir /tmp/mxprof load      # profile loading 3 chunks (fresh store)
    python -m bench.profile --scale medium --workdir /tmp/mxprof check     # profile check / replay / incremental / remind
    ...                                                          durable | replay | incremental | remind

`remind` records notices: profile it last (or rebuild). `--out FILE` keeps the pstats dump
(e.g. for snakeviz); py-spy works too: `py-spy record -o out.svg -- python -m bench.profile … check`.
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import sys
import time
from pathlib import Path

from bench.workload import DEFAULT_AS_OF, DEFAULT_SEED, Workload, chunked, facts_document, write_plan_files

PHASES = ("build", "load", "check", "durable", "replay", "incremental", "remind")


def build(w: Workload, store: Path, chunk: int) -> None:
    from adapters.bootstrap import bootstrap
    from adapters.plans import import_plan
    for p in store.parent.glob(store.name + "*"):
        p.unlink()
    app = bootstrap(store_url=f"sqlite:///{store}", engine="reference")
    t0 = time.perf_counter()
    for n, part in enumerate(chunked(w.fact_records(), chunk)):
        app.record.load(facts_document(part, f"bench-facts-{n:04d}"), actor="bench")
        print(f"chunk {n} {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    for path in write_plan_files(w, store.parent / "plans"):
        import_plan(app.record, path, actor="bench")
    for n, part in enumerate(chunked(w.task_records(), chunk)):
        app.record.load(facts_document(part, f"bench-tasks-{n:04d}"), actor="bench")
    app.close()
    print(f"built {store} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", choices=PHASES)
    p.add_argument("--scale", default="medium")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--as-of", default=DEFAULT_AS_OF.isoformat())
    p.add_argument("--workdir", required=True)
    p.add_argument("--chunk", type=int, default=10_000)
    p.add_argument("--chunks", type=int, default=3, help="chunks to load when profiling `load`")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative)")
    p.add_argument("--out", help="write the pstats dump here")
    p.add_argument("--pg", help="`load` only: profile loading into a fresh PostgreSQL database on this server URL")
    a = p.parse_args(argv)
    w = Workload(a.scale, seed=a.seed, as_of=dt.date.fromisoformat(a.as_of))
    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / "profile.db"
    if a.phase == "build":
        build(w, store, a.chunk)
        return 0

    from adapters.bootstrap import bootstrap
    from adapters.compliance import Filters
    pg_name = None
    if a.phase == "load":
        if a.pg:
            from bench.measure import create_pg_database
            pg_name, url = create_pg_database(a.pg)
        else:
            target = workdir / "profile-load.db"
            for f in workdir.glob("profile-load.db*"):
                f.unlink()
            url = f"sqlite:///{target}"
        app = bootstrap(store_url=url, engine="reference")
        docs = [facts_document(part, f"bench-facts-{n:04d}")
                for n, part in zip(range(a.chunks), chunked(w.fact_records(), a.chunk))]
        run = lambda: [app.record.load(d, actor="bench") for d in docs]  # noqa: E731
    else:
        if not store.exists():
            raise SystemExit(f"no store at {store}: run the `build` phase first")
        app = bootstrap(store_url=f"sqlite:///{store}", engine="durable" if a.phase == "durable" else "reference")
        as_of = w.as_of
        person = w.probe_person
        run = {
            "check": lambda: app.compliance.check(as_of),
            "durable": lambda: app.compliance.check(as_of),
            "replay": lambda: app.compliance.replay(as_of, None),
            "incremental": lambda: app.compliance.check(as_of, filters=Filters(subjects={person})),
            "remind": lambda: app.notices.sweep(as_of, by="profile"),
        }[a.phase]
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    run()
    prof.disable()
    took = time.perf_counter() - t0
    app.close()
    if pg_name:
        from bench.measure import drop_pg_database
        drop_pg_database(a.pg, pg_name)
    print(f"{a.phase}: {took:.2f}s (under cProfile)")
    if a.out:
        prof.dump_stats(a.out)
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats(a.sort).print_stats(a.top)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
