"""`python -m bench --scale small|medium|full [--json]`: generate the reference workload, load it into
metrolex on SQLite and (where reachable) PostgreSQL, measure each figure beside its raw-database
baseline, print the ratios and whether each goal holds. Progress goes to stderr.

Each backend runs in its own child process (so its peak RSS is its own); a child writes its
results after every phase, so a run stopped by --time-limit still reports what it measured.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import (DEFAULT_PG, GOALS, Progress, evaluate_goals, machine_info, pg_reachable,
                           product_version, run_backend)
from bench.workload import DEFAULT_AS_OF, DEFAULT_SEED, SCALES, Workload

BACKENDS = ("sqlite", "postgresql")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", default="small",
                   help=f"{' | '.join(SCALES)} (1 %%, 10 %%, 100 %% of the reference), a factor or a percentage "
                        "(default small)")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--pg", default=os.environ.get("METROLEX_BENCH_PG", DEFAULT_PG),
                   help=f"PostgreSQL server URL; a fresh database is created per run and dropped (default {DEFAULT_PG})")
    p.add_argument("--no-pg", action="store_true", help="SQLite only")
    p.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--as-of", default=DEFAULT_AS_OF.isoformat(), help="the as-of day of check/replay/remind")
    p.add_argument("--chunk", type=int, default=10_000, help="records per facts document (one transaction)")
    p.add_argument("--no-durable", action="store_true", help="skip the durable engine's check")
    p.add_argument("--repeat", type=int, default=3,
                   help="fresh apps per cold figure (check, replay); the best counts, every run is recorded "
                        "(the raw baselines are the best of 3)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds per backend; a child over it is stopped and its partial results reported")
    p.add_argument("--workdir", default=None, help="where SQLite files and plan files go (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--out", default=None, help="also write the JSON results to this file")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--in-process", action="store_true", help="run backends in this process (for profiling)")
    p.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    p.add_argument("--result-file", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.repeat < 1:
        p.error("--repeat must be at least 1")
    return a


def _workload(a: argparse.Namespace) -> Workload:
    return Workload(a.scale, seed=a.seed, as_of=dt.date.fromisoformat(a.as_of))


def _child(a: argparse.Namespace) -> int:
    result_file = Path(a.result_file)

    def save(res: dict) -> None:
        tmp = result_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(res, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, result_file)

    run_backend(a.child, _workload(a), Path(a.workdir) / a.child, pg_url=a.pg, chunk=a.chunk,
                durable=not a.no_durable, progress=Progress(f"{a.child:<10}", not a.quiet), save=save,
                repeat=a.repeat)
    return 0


def _run_child(a: argparse.Namespace, backend: str, workdir: Path) -> dict:
    result_file = workdir / f"result-{backend}.json"
    cmd = [sys.executable, "-m", "bench", "--child", backend, "--result-file", str(result_file),
           "--workdir", str(workdir), "--scale", str(a.scale), "--seed", str(a.seed), "--as-of", a.as_of,
           "--chunk", str(a.chunk), "--pg", a.pg, "--repeat", str(a.repeat)] + (["--no-durable"] if a.no_durable else []) + \
          (["--quiet"] if a.quiet else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(Path(__file__).resolve().parent.parent))
    status = None
    try:
        rc = proc.wait(timeout=a.time_limit)
        if rc != 0:
            status = f"child exited with code {rc}"
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        status = f"stopped by --time-limit {a.time_limit:g}s"
    res = json.loads(result_file.read_text(encoding="utf-8")) if result_file.exists() else {"backend": backend}
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    if status or not res.get("complete"):
        done = res.get("phases_done") or []
        res["incomplete"] = f"{status or 'no complete result'}; phases done: {', '.join(done) or 'none'}"
    return res


def _print_text(results: dict) -> None:
    print(f"metrolex benchmark — scale {results['scale']} (factor {results['factor']:g}), seed {results['seed']}, "
          f"as of {results['as_of']}")
    m = results["machine"]
    print(f"machine: {m['nproc']} × {m['cpu']}, {m['ram_gb']} GB RAM, Python {m['python']}, SQLite {m['sqlite']}; "
          f"{m['date']}")
    print("workload: " + ", ".join(f"{k} {v:,}" for k, v in results["counts"].items()))
    prod = results.get("product") or {}
    print(f"product: commit {prod.get('commit')} ({prod.get('modified_files', '?')} modified files)")
    for backend, res in results["backends"].items():
        print(f"\n== {backend}")
        if res.get("skipped"):
            print(f"   skipped: {res['skipped']}")
            continue
        if res.get("incomplete"):
            print(f"   INCOMPLETE: {res['incomplete']}")
        for phase, msg in (res.get("errors") or {}).items():
            print(f"   ERROR in {phase}: {msg}")
        f, b, x = res.get("figures", {}), res.get("baselines", {}), res.get("extra", {})

        def show(label: str, value, base=None, ratio=None) -> None:
            print(f"   {label:<34} {value!s:>16}  {('baseline ' + str(base)) if base is not None else '':<28} "
                  f"{('ratio ' + str(ratio)) if ratio is not None else ''}")

        if "load_events_per_s" in f:
            show("load facts/s", f["load_events_per_s"], b.get("load_events_per_s"), f.get("load_ratio"))
        if "check_s" in f:
            show("check s (every obligation)", f["check_s"], f"{b.get('sweep_s')} s", f.get("sweep_ratio"))
        if "check_first_s" in f:
            show("check s (first after the load)", f["check_first_s"])
        if "check_warm_s" in f:
            show("check s (warm app)", f["check_warm_s"], None, f.get("sweep_ratio_warm"))
        if "durable_check_s" in f:
            show("check s (durable engine)", f["durable_check_s"])
        if "incremental_ms" in f:
            show("incremental re-judge ms", f["incremental_ms"])
        if "replay_events_per_s" in f:
            show("replay facts/s", f["replay_events_per_s"], b.get("read_events_per_s"), f.get("replay_ratio"))
        if "replay_warm_s" in f:
            show("replay s (warm app)", f["replay_warm_s"], None, f.get("replay_ratio_warm"))
        if "remind_s" in f:
            show("remind s", f["remind_s"], None, None)
            print(f"   {'':<34} {x.get('reminders_issued', 0):>16,} notices")
        show("peak RSS MB", f.get("peak_rss_mb"))
        print("   goals:")
        for name, g in res.get("goals", {}).items():
            mark = "n/a" if g["holds"] is None else ("HOLDS" if g["holds"] else "FAILS")
            scope = "" if g["at_goal_scale"] else f"   (goal is set at {g['goal_at_scale']})"
            note = f"   ({g['note']})" if g.get("note") else ""
            print(f"     {name:<16} {g['value']!s:>12} {g['goal']:<10} {mark}{scope}{note}")


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    if a.child:
        return _child(a)
    workload = _workload(a)  # validates the scale early
    say = Progress("main      ", not a.quiet)
    own_workdir = a.workdir is None
    workdir = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="metrolex-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    a.workdir = str(workdir)
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    if a.no_pg and "postgresql" in backends:
        backends.remove("postgresql")
    results = {"scale": a.scale, "factor": workload.factor, "seed": a.seed, "as_of": a.as_of, "chunk": a.chunk,
               "counts": workload.counts.as_dict(), "machine": machine_info(), "product": product_version(),
               "backends": {},
               "goals_defined": [{"name": n, "goal": f"{op} {t:g}", "at": at} for n, op, t, at in GOALS]}
    say(f"scale {a.scale} (factor {workload.factor:g}): " + ", ".join(f"{k} {v:,}" for k, v in results["counts"].items()))
    try:
        for backend in backends:
            if backend not in BACKENDS:
                raise SystemExit(f"unknown backend {backend!r} (sqlite, postgresql)")
            if backend == "postgresql":
                why = pg_reachable(a.pg)
                if why:
                    say(f"postgresql skipped: {why}")
                    results["backends"][backend] = {"skipped": why}
                    continue
                results["pg_url"] = a.pg
            say(f"{backend}: starting")
            if a.in_process:
                res = run_backend(backend, workload, workdir / backend, pg_url=a.pg, chunk=a.chunk,
                                  durable=not a.no_durable, progress=Progress(f"{backend:<10}", not a.quiet),
                                  repeat=a.repeat)
            else:
                res = _run_child(a, backend, workdir)
            res["goals"] = evaluate_goals(res.get("figures", {}), str(a.scale), complete=bool(res.get("complete")))
            results["backends"][backend] = res
            say(f"{backend}: done" + (f" ({res['incomplete']})" if res.get("incomplete") else ""))
    finally:
        if own_workdir and not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(results, ensure_ascii=False, indent=1, default=str)
    if a.out:
        Path(a.out).write_text(text + "\n", encoding="utf-8")
    if a.json:
        print(text)
        _summary_to_stderr(results, a.quiet)
    else:
        _print_text(results)
    return 0


def _summary_to_stderr(results: dict, quiet: bool) -> None:
    if quiet:
        return
    for backend, res in results["backends"].items():
        if res.get("skipped"):
            print(f"[bench] {backend}: skipped — {res['skipped']}", file=sys.stderr)
            continue
        f = res.get("figures", {})
        ratios = ", ".join(f"{k} {f[k]}" for k in ("load_ratio", "sweep_ratio", "incremental_ms", "replay_ratio",
                                                   "remind_s", "peak_rss_mb", "durable_check_s") if k in f)
        print(f"[bench] {backend}: {ratios}", file=sys.stderr)
        for phase, msg in (res.get("errors") or {}).items():
            print(f"[bench]   ERROR in {phase}: {msg}", file=sys.stderr)
        if res.get("incomplete"):
            print(f"[bench]   INCOMPLETE: {res['incomplete']}", file=sys.stderr)
        for name, g in res.get("goals", {}).items():
            mark = "n/a" if g["holds"] is None else ("holds" if g["holds"] else "FAILS")
            print(f"[bench]   goal {name} {g['goal']}: {g['value']} → {mark}"
                  + ("" if g["at_goal_scale"] else f" (goal set at {g['goal_at_scale']})")
                  + (f" ({g['note']})" if g.get("note") else ""), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
