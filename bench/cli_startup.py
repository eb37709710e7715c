"""Start-up of the read-only commands (`status`, `export`) on a 1,000-trial database.

Each command runs as a fresh `python -m runner` process, timed from spawn to exit (median of
`repeats`). Baselines in the same run: a bare `python -c pass`, and the same command with the
modules every command imported before they were made lazy (`runner.service`, the scheduler,
and `runner.wizard_cli`, both of which pull in scipy, and numpy, which sqlite-utils imported)
imported first: the before/after of that change. Also timed, without a goal: `status --all`
(every one of the 1,000 rows) and `status --json`.

    .venv/bin/python bench/cli_startup.py [--trials 1000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import print_result  # noqa: E402

GOAL_S = 0.25
ROOT = Path(__file__).resolve().parents[1]
# What every command imported before: the scheduler, the wizards (scipy) and numpy (through sqlite-utils).
OLD_IMPORTS = "import numpy, runner.service, runner.wizard_cli; "
MORE = (("status --all", ["status", "bench", "--all"]), ("status --json", ["status", "bench", "--json"]))


# As users run it: bytecode cached (this machine's environment sets PYTHONDONTWRITEBYTECODE, which would
# add compiling every module of the project from source to each start); one untimed run writes the cache.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(argv: list[str], repeats: int) -> float:
    """Median wall seconds of a fresh process running argv, after one untimed run (stdout discarded;
    must exit 0)."""
    times = []
    subprocess.run(argv, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"cli_startup bench: {argv} exited {done.returncode}: {done.stderr[-500:]}")
    return statistics.median(times)


def run(n_trials: int = 1000, repeats: int = 7) -> dict:
    import tui_bench

    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        db = Path(tmp) / "study" / "playbook.db"
        tui_bench.build(db, n_trials, 20)  # 20 steps a trial: the table is what these commands read
        py = sys.executable
        out: dict = {"name": "cli_startup", "params": {"trials": n_trials, "repeats": repeats},
                     "bare_python_s": _time([py, "-c", "pass"], repeats)}
        for label, args in (("status", ["status", "bench"]), ("export", ["export", "bench", "--format", "csv"])):
            argv = ["--db", str(db), *args]
            ours = _time([py, "-m", "runner", *argv], repeats)
            old = _time([py, "-c", f"import sys; {OLD_IMPORTS}from runner.cli import main; "
                                   f"sys.exit(main({argv!r}))"], repeats)
            out[label] = {"ours_s": ours, "eager_imports_s": old, "ratio_vs_eager": ours / old,
                          "over_bare_python_s": ours - out["bare_python_s"],
                          "ratio_vs_bare_python": ours / out["bare_python_s"]}
        for label, args in MORE:
            out[label] = {"ours_s": _time([py, "-m", "runner", "--db", str(db), *args], repeats)}
    out["goal"] = f"status and export <= {GOAL_S * 1e3:.0f} ms on a {n_trials}-trial database"
    out["goal_met"] = all(out[k]["ours_s"] <= GOAL_S for k in ("status", "export"))
    return out


def summary_rows(res: dict) -> list[tuple[str, ...]]:
    n, bare = res["params"]["trials"], res["bare_python_s"] * 1e3
    rows = []
    for label in ("status", "export"):
        r = res[label]
        rows.append((f"`{label}` start to exit, {n} trials", f"{r['ours_s'] * 1e3:.0f} ms",
                     f"eager imports {r['eager_imports_s'] * 1e3:.0f} ms; bare python {bare:.0f} ms",
                     f"{r['ratio_vs_eager']:.2f}x", f"<= {GOAL_S * 1e3:.0f} ms",
                     "yes" if r["ours_s"] <= GOAL_S else "NO"))
    for label, _ in MORE:
        if label in res:
            rows.append((f"`{label}`, {n} trials", f"{res[label]['ours_s'] * 1e3:.0f} ms", "", "", "", ""))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    res = run(args.trials, args.repeats)
    print_result(res)
    for row in summary_rows(res):
        print(" | ".join(row))


if __name__ == "__main__":
    main()
