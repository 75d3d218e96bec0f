"""metrolex benchmarks: a deterministic generator of the reference national workload
(bench.workload) and the measurements against raw-database baselines (bench.measure).

Run `python -m bench --scale small --json` (see BENCHMARKS.md).
"""
