"""Run every benchmark, print one table, write bench/results/latest.json.

    .venv/bin/python bench/run_all.py            # the full figures (~2 minutes on 2 cores)
    .venv/bin/python bench/run_all.py --quick    # small sizes, to check the scripts work
    .venv/bin/python bench/run_all.py --only ingest reporter
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sqlite3
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import ingest  # noqa: E402
import read  # noqa: E402
import reporter  # noqa: E402
from _common import RESULTS_DIR  # noqa: E402

FULL = {
    "reporter": lambda: reporter.run(calls=200_000),
    "ingest": lambda: ingest.run(steps=20_000, repeats=3),
    "read": lambda: read.run(n_trials=200, steps=10_000, repeats=5),
}
QUICK = {
    "reporter": lambda: reporter.run(calls=20_000),
    "ingest": lambda: ingest.run(steps=2_000, repeats=1),
    "read": lambda: read.run(n_trials=20, steps=2_000, repeats=2),
}
MODULES = {"reporter": reporter, "ingest": ingest, "read": read}


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("figure", "ours", "baseline", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: checks that the scripts work")
    ap.add_argument("--only", nargs="+", choices=list(FULL), help="run only these benchmarks")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    names = args.only or list(plan)

    results, rows, timings = {}, [], {}
    for name in names:
        print(f"running {name}...", flush=True)
        t0 = time.perf_counter()
        res = plan[name]()
        timings[name] = time.perf_counter() - t0
        results[name] = res
        rows.extend(MODULES[name].summary_rows(res))
        print(f"  {name}: {timings[name]:.1f} s", flush=True)

    print()
    print_table(rows)
    print()
    for name, res in results.items():
        if res.get("goal"):
            print(f"{name}: goal {res['goal']}: {'met' if res.get('goal_met') else 'NOT met'}")

    out = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                    "platform": platform.platform(), "cpus": os.cpu_count()},
        "seconds": timings,
        "table": [dict(zip(("figure", "ours", "baseline", "ratio"), r, strict=True)) for r in rows],
        "results": results,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / "latest.json"
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"wrote {os.path.relpath(path)} ({sum(timings.values()):.0f} s in all)")


if __name__ == "__main__":
    main()
