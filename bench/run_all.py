"""Run every benchmark, print one table, write bench/results/latest.json.

    .venv/bin/python bench/run_all.py            # the full figures (~7 minutes on 2 cores)
    .venv/bin/python bench/run_all.py --quick    # small sizes, to check the scripts work
    .venv/bin/python bench/run_all.py --only ingest reporter
    .venv/bin/python bench/run_all.py --no-peers # as if MLflow and TensorBoard were not installed

The table's columns: figure, ours, baseline, ratio (ours/baseline: throughput for
ingest, time for the others), goal, met?. The peers (MLflow, TensorBoard) are the
optional `bench` extra; without them their rows say so and the rest still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import cli_startup  # noqa: E402
import hf_callback  # noqa: E402
import ingest  # noqa: E402
import peers  # noqa: E402
import ray_latency  # noqa: E402
import read  # noqa: E402
import reporter  # noqa: E402
import scheduler  # noqa: E402
import tui_ssh  # noqa: E402
from _common import RESULTS_DIR  # noqa: E402

COLUMNS = ("figure", "ours", "baseline", "ratio", "goal", "met?")
STUDY = {"full": (1000, 10_000), "quick": (40, 500)}  # the study opened by read_study and tui


def tui(quick: bool) -> dict:
    """tui_bench's first-frame and open figures (not live: it is heavy, run it on its own)."""
    import tui_bench

    n, steps = STUDY["quick" if quick else "full"]
    repeats = 1 if quick else 9
    out = {"first_frame": tui_bench.first_frame(repeats)}
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as tmp:
        path = Path(tmp) / "study" / "playbook.db" if quick else read.study_path(n, steps)
        read.ensure_study(path, n, steps)
        db = tui_bench.connect(path)
        study_id = db.execute("SELECT id FROM studies WHERE name = 'bench'").fetchone()[0]
        db.conn.close()
        out["study"] = {"trials": n, "steps": steps}
        out["poller"] = tui_bench.poller_read(path, study_id)
        out["app"] = asyncio.run(tui_bench.app_open(path, n, repeats))
    out["goal"] = f"open: the table's first screen painted in <= {tui_bench.OPEN_GOAL_S * 1e3:.0f} ms (median)"
    out["goal_met"] = out["app"]["open_median_s"] <= tui_bench.OPEN_GOAL_S
    return out


def tui_rows(res: dict) -> list[tuple[str, ...]]:
    ff, ap, st = res["first_frame"], res["app"], res["study"]
    ms = 1e3
    return [
        ("TUI first frame", f"{ff['app_ready_s'] * ms:.0f} ms", f"import textual {ff['import_textual_s'] * ms:.0f} ms",
         f"{ff['ready_over_import_textual']:.2f}x", "", ""),
        ("TUI first frame", f"{ff['app_ready_s'] * ms:.0f} ms", f"hello-world app {ff['hello_app_ready_s'] * ms:.0f} ms",
         f"{ff['ready_over_hello_app']:.2f}x", "", ""),
        (f"TUI open {st['trials']}x{st['steps']}x4: first screen of the table painted",
         f"median {ap['open_median_s'] * ms:.0f} ms, p90 {ap['open_p90_s'] * ms:.0f} ms", "", "",
         "<= 300 ms", "yes" if res["goal_met"] else "NO"),
        (f"TUI open {st['trials']}x{st['steps']}x4: every row in, curves drawn",
         f"median {ap['open_to_all_rows_median_s'] * ms:.0f} ms, "
         f"{statistics.median(ap['open_to_plot_s']) * ms:.0f} ms", "", "", "", ""),
    ]


def ingest_full() -> dict:
    return ingest.run_sizes()


def ingest_quick() -> dict:
    return ingest.run_sizes(sizes=(1, 4), points=8_000, repeats=1, mlflow_points=400, log_metric_calls=20,
                            tb_points=2_000, write_rates=((1, 1, 50), (1, 150, 4)))


FULL: dict[str, Callable[[], dict]] = {
    "reporter": lambda: reporter.run(calls=200_000),
    "ingest": ingest_full,
    "read": lambda: read.run(n_trials=200, steps=10_000, repeats=5),
    "read_study": lambda: read.run_study(*STUDY["full"], repeats=5),
    "read_long": lambda: read.run_long(),
    "scheduler": lambda: scheduler.run(n_trials=10),
    "tui": lambda: tui(quick=False),
    "hf_callback": lambda: hf_callback.run(steps=400),
    "cli_startup": lambda: cli_startup.run(n_trials=1000, repeats=7),
    "tui_ssh": lambda: tui_ssh.run(n_trials=8, window=20.0),
}
QUICK: dict[str, Callable[[], dict]] = {
    "reporter": lambda: reporter.run(calls=20_000),
    "ingest": ingest_quick,
    "read": lambda: read.run(n_trials=20, steps=2_000, repeats=2),
    "read_study": lambda: _quick_study(),
    "read_long": lambda: read.run_long(steps=50_000, repeats=2),
    "scheduler": lambda: scheduler.run(n_trials=4),
    "tui": lambda: tui(quick=True),
    "hf_callback": lambda: hf_callback.run(steps=40),
    "cli_startup": lambda: cli_startup.run(n_trials=100, repeats=2),
    "tui_ssh": lambda: tui_ssh.run(n_trials=8, window=5.0),
}
ROWS: dict[str, Callable[[dict], list[tuple[str, ...]]]] = {
    "reporter": reporter.summary_rows, "ingest": ingest.summary_rows, "read": read.summary_rows,
    "read_study": read.study_rows, "read_long": read.long_rows, "scheduler": scheduler.summary_rows, "tui": tui_rows,
    "hf_callback": hf_callback.summary_rows, "cli_startup": cli_startup.summary_rows,
    "tui_ssh": tui_ssh.summary_rows,
}

ray_latency.register(FULL, QUICK, ROWS)  # where Ray, root and unshare are there


def _quick_study() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-read-study-") as tmp:
        return read.run_study(*STUDY["quick"], repeats=2, path=Path(tmp) / "study" / "playbook.db")


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    line = "  ".join("-" * w for w in widths)
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True)))
    print(line)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: checks that the scripts work")
    ap.add_argument("--only", nargs="+", choices=list(FULL), help="run only these benchmarks")
    ap.add_argument("--no-peers", action="store_true", help="skip MLflow and TensorBoard, as if not installed")
    args = ap.parse_args()
    if args.no_peers:
        os.environ[peers.NO_PEERS_ENV] = "1"
    plan = QUICK if args.quick else FULL
    names = args.only or list(plan)

    results, rows, timings = {}, [], {}
    for name in names:
        print(f"running {name}...", flush=True)
        t0 = time.perf_counter()
        res = plan[name]()
        timings[name] = time.perf_counter() - t0
        results[name] = res
        rows.extend(ROWS[name](res))
        print(f"  {name}: {timings[name]:.1f} s", flush=True)

    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(f"\n{when}, {os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"peers: {', '.join(f'{k} {v}' for k, v in peers.versions().items())}")
    print_table(rows)
    print()
    if args.quick:
        print("quick: sizes too small for the goals to mean anything; this only checks that the scripts run")
    for name, res in results.items():
        if res.get("goal"):
            print(f"{name}: goal {res['goal']}: {'met' if res.get('goal_met') else 'NOT met'}")

    out = {
        "when": when,
        "quick": args.quick,
        "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                    "platform": platform.platform(), "cpus": os.cpu_count()},
        "peers": peers.versions(),
        "seconds": timings,
        "table": [dict(zip(COLUMNS, r, strict=True)) for r in rows],
        "results": results,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / "latest.json"
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"wrote {os.path.relpath(path)} ({sum(timings.values()):.0f} s in all)")


if __name__ == "__main__":
    main()
