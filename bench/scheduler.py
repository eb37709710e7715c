"""Scheduler: the idle gap on a slot between one trial ending and the next one starting.

Setup: a study of N trials (default 10) whose script only writes the time it started
and exits, run by a real runner (`python -m runner --db DB run study.toml --cpu-slots 1`)
in a temporary folder, so the trials run one after the other on one slot.

Figures, for each trial after the first:
- store gap (goal <= 1 s): from the previous trial's end (the `ended_at` its shim wrote
  to exit.json when the process exited) to this trial's `started_at` in the store (the
  runner sets it right after spawning). This is the runner's share: its wait for the
  trial's exit (a pidfd wakes it; before, it slept out a fixed 0.2 s poll), reaping,
  settling and launching.
- script gap: from the previous trial's end to this trial's script running its first
  line, which adds the shim's and the script's interpreter start-up.
Baseline: the same script run back to back by a bare `subprocess.run` loop; its gap is
from one run returning to the next script's first line (interpreter start-up alone).

    .venv/bin/python bench/scheduler.py [--trials N]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import median, print_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOAL_GAP_S = 1.0
GOAL_START_OVER_BARE_S = 0.2
RUN_TIMEOUT_S = 120.0  # 10 instant trials take a few seconds; a hang must not stall the whole bench
TRIAL = """\
import os, sys, time
t = time.time()
with open(sys.argv[sys.argv.index("--out") + 1] + "/started.txt", "w") as f:
    f.write(repr(t))
if os.environ.get("PLAYBOOK_METRICS_FILE"):  # the objective: a trial that reports none is no_objective
    with open(os.environ["PLAYBOOK_METRICS_FILE"], "a") as f:
        f.write('{"step": 0, "m": {"loss": 1.0}}\\n')
"""
STUDY = """\
[study]
name = "gaps"
goal = "How long does a slot sit idle between two trials?"
command = "python {script} --lr {{lr}} --width {{width}} --out {{trial_dir}}"
max_train_steps = 1
objective = {{ metric = "loss", mode = "min" }}
trials = {n}
concurrency = 1

[params.lr]
role = "nuisance"
low = 1e-4
high = 1.0
scale = "log"

[params.width]
role = "scientific"
values = [1]
"""


def _run_study(tmp: Path, n: int) -> list[dict]:
    """Run the study under a real runner; per trial (in start order): started_at, ended, script start."""
    (tmp / "trial.py").write_text(TRIAL)
    (tmp / "study.toml").write_text(STUDY.format(script=tmp / "trial.py", n=n))
    db = tmp / "gaps.db"
    with open(tmp / "runner.log", "wb") as log:
        done = subprocess.run([sys.executable, "-m", "runner", "--db", str(db), "run", str(tmp / "study.toml"),
                               "--cpu-slots", "1"], stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, cwd=ROOT, timeout=RUN_TIMEOUT_S)
    if done.returncode != 0:
        raise SystemExit(f"scheduler bench: the runner exited {done.returncode}; see its log:\n"
                         + (tmp / "runner.log").read_text()[-2000:])
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT state, started_at, trial_dir FROM trials ORDER BY started_at").fetchall()
    conn.close()
    out = []
    for state, started_at, trial_dir in rows:
        if state != "completed":
            raise SystemExit(f"scheduler bench: a trial ended {state}; see {trial_dir}")
        exit_record = json.loads((Path(trial_dir) / "exit.json").read_text())
        script_start = float((Path(trial_dir) / "started.txt").read_text())
        out.append({"started_at": started_at, "ended": exit_record["ended_at"], "script_start": script_start})
    if len(out) != n:
        raise SystemExit(f"scheduler bench: {len(out)} trials ran, expected {n}")
    return out


def _baseline(tmp: Path, n: int) -> list[float]:
    """Gaps of a bare loop running the same script back to back: one run returns -> next first line."""
    gaps, returned = [], None
    for i in range(n):
        out = tmp / f"bare-{i}"
        out.mkdir()
        subprocess.run([sys.executable, str(tmp / "trial.py"), "--out", str(out)], check=True)
        end = time.time()
        if returned is not None:
            gaps.append(float((out / "started.txt").read_text()) - returned)
        returned = end
    return gaps


SHIM_BY_MODULE = ("-m", "runner.shim")  # how the runner started the shim before it ran it isolated


def _to_first_line(tmp: Path, variants: dict[str, list[str]], n: int) -> dict[str, list[float]]:
    """Seconds from spawning `prefix + [python, trial.py]` to the script's first line, per variant;
    the variants take turns, n rounds, so the machine's load falls on each alike."""
    out: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(n):
        for name, prefix in variants.items():
            folder = tmp / f"start-{name}-{i}"
            folder.mkdir()
            argv = [*prefix, sys.executable, str(tmp / "trial.py"), "--out", str(folder)]
            t0 = time.time()
            subprocess.run(argv, check=True, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out[name].append(float((folder / "started.txt").read_text()) - t0)
    return out


def _shim_start(tmp: Path, n: int) -> dict:
    """What the shim adds to a trial's start: the runner's way (process.SHIM), the former `-m`, none."""
    from runner.process import SHIM

    def shim(*how: str) -> list[str]:
        files = [str(tmp / f) for f in ("exit.json", "out.log", "err.log")]
        return [sys.executable, *how, *files, "--"]

    got = _to_first_line(tmp, {"bare": [], "shim": shim(*SHIM), "by_module": shim(*SHIM_BY_MODULE)}, n)
    bare, ours, by_module = (median(got[k]) for k in ("bare", "shim", "by_module"))
    return {"rounds": n, "bare_s": bare, "shim_s": ours, "shim_by_module_s": by_module,
            "added_s": ours - bare, "added_by_module_s": by_module - bare}


def _spread(xs: list[float]) -> dict:
    return {"median_s": median(xs), "max_s": max(xs), "min_s": min(xs)}


def run(n_trials: int = 10) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        t0 = time.perf_counter()
        rows = _run_study(Path(tmp), n_trials)
        wall = time.perf_counter() - t0
        base = _baseline(Path(tmp), n_trials)
        shim = _shim_start(Path(tmp), max(2 * n_trials, 10))
    pairs = list(zip(rows, rows[1:], strict=False))  # consecutive trials on the slot
    store_gaps = [b["started_at"] - a["ended"] for a, b in pairs]
    script_gaps = [b["script_start"] - a["ended"] for a, b in pairs]
    store, script, bare = _spread(store_gaps), _spread(script_gaps), _spread(base)
    return {
        "name": "scheduler",
        "params": {"trials": n_trials, "cpu_slots": 1, "runner_poll_s": 0.2, "wakes_on_exit": "pidfd"},
        "runner_wall_s": wall,
        "store_gap": store,
        "script_gap": script,
        "bare_loop_gap": bare,
        "store_gaps_s": store_gaps,
        "shim_start": shim,
        # A trial's start over a bare `python script`: the runner's share (store gap) and the shim's.
        "trial_start_over_bare_s": script["median_s"] - bare["median_s"],
        "goal": f"idle gap (end -> next started_at) <= {GOAL_GAP_S:g} s, max",
        "goal_met": store["max_s"] <= GOAL_GAP_S,
    }


def summary_rows(res: dict) -> list[tuple[str, ...]]:
    """(figure, ours, baseline, ratio, goal, met?) rows for run_all's table."""
    st, sc, b, sh = res["store_gap"], res["script_gap"], res["bare_loop_gap"], res["shim_start"]
    return [
        (f"slot idle gap, end -> next started_at ({res['params']['trials']} trials)",
         f"median {1e3 * st['median_s']:.0f} ms, max {1e3 * st['max_s']:.0f} ms", "", "",
         f"<= {GOAL_GAP_S:g} s", "yes" if res["goal_met"] else "NO"),
        ("slot idle gap, end -> next script's first line",
         f"median {1e3 * sc['median_s']:.0f} ms, max {1e3 * sc['max_s']:.0f} ms",
         f"bare subprocess loop {1e3 * b['median_s']:.0f} ms", f"{sc['median_s'] / b['median_s']:.1f}x", "", ""),
        ("trial start over a bare `python script` (the same two, difference of medians)",
         f"{1e3 * res['trial_start_over_bare_s']:.0f} ms", "", "", f"<= {1e3 * GOAL_START_OVER_BARE_S:.0f} ms",
         "yes" if res["trial_start_over_bare_s"] <= GOAL_START_OVER_BARE_S else "NO"),
        ("the shim's share: spawn -> script's first line, over bare",
         f"{1e3 * sh['added_s']:.0f} ms (-I -S shim.py)", f"`-m runner.shim` {1e3 * sh['added_by_module_s']:.0f} ms "
         f"(bare {1e3 * sh['bare_s']:.0f} ms)", f"{sh['added_s'] / max(sh['added_by_module_s'], 1e-9):.2f}x", "", ""),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args()
    res = run(args.trials)
    print_result(res)
    for row in summary_rows(res):
        print(" | ".join(row))


if __name__ == "__main__":
    main()
