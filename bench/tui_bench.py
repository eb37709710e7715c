"""playbook-tui: time to the first frame, and time to open a big study (run by hand).

1. First frame: a child process starts the app headless on an empty database and
   reports when it is ready (first screen composed and painted) and when the
   first snapshot is on screen ("No studies"); the baseline is a child running
   `python -c "import textual"` (and `python -c "pass"` for the interpreter alone,
   and a hello-world Textual app with a header and footer for Textual's own cost).
2. Opening a study of N trials x S steps x 4 metrics (default 1,000 x 10,000: 40M
   points). The study is registered through the store (a real study file, so the
   playbook's analyses run), then states, summaries and points are written with
   executemany straight into the schema (not timed; the file is kept and reused).
   Timed: the poller's first read of the study view (fresh connection, file dropped
   from the page cache, best effort), then in the app: enter on the study until its
   table holds every trial (goal <= 300 ms), until the curves plot is drawn, and
   moving the cursor until the next trial's curves are drawn.

    .venv/bin/python bench/tui_bench.py [--trials 1000] [--steps 10000] [--rebuild] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import drop_file_cache  # noqa: E402

from runner.launch import register  # noqa: E402
from runner.spec import load  # noqa: E402
from store import connect, trials  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("grad_norm", "lr", "train_loss", "val_loss")  # sorted: key order
OPEN_GOAL_S = 0.300
STUDY = """\
[study]
name = "bench"
goal = "How long does a big study take to open?"
command = "python train.py --lr {{lr}} --width {{width}}"
max_train_steps = {steps}
objective = {{ metric = "val_loss", mode = "min" }}
trials = {per_width}

[params.lr]
role = "nuisance"
low = 1e-4
high = 1.0
scale = "log"

[params.width]
role = "scientific"
values = [64, 256]
"""

FIRST_FRAME = """\
import json, sys, time
from tui.app import make_app
from textual.widgets import Static

out = {}

async def auto(pilot):
    out["ready"] = time.time()
    empty = pilot.app.screen.query_one("#empty", Static)
    while "No studies" not in str(empty.render()):
        await pilot.pause(0.005)
    out["first_snapshot"] = time.time()
    pilot.app.exit()

make_app(sys.argv[1]).run(headless=True, size=(100, 30), auto_pilot=auto)
print(json.dumps(out))
"""


HELLO_FRAME = """\
import json, time
from textual.app import App
from textual.widgets import Footer, Header, Static

out = {}

class Hello(App):
    def compose(self):
        yield Header()
        yield Static("hello")
        yield Footer()

async def auto(pilot):
    out["ready"] = time.time()
    pilot.app.exit()

Hello().run(headless=True, size=(100, 30), auto_pilot=auto)
print(json.dumps(out))
"""


def child_seconds(args: list[str]) -> tuple[float, dict]:
    """Wall seconds of a child python, and the times it printed (relative to its start)."""
    t0 = time.time()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, check=True)
    wall = time.time() - t0
    marks = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    return wall, {k: v - t0 for k, v in marks.items()}


def first_frame(repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "empty.db")
        connect(db).conn.close()
        bare = [child_seconds(["-c", "pass"])[0] for _ in range(repeats)]
        textual = [child_seconds(["-c", "import textual"])[0] for _ in range(repeats)]
        hello = [child_seconds(["-c", HELLO_FRAME])[1]["ready"] for _ in range(repeats)]
        app = [child_seconds(["-c", FIRST_FRAME, db])[1] for _ in range(repeats)]
    ready = statistics.median(a["ready"] for a in app)
    snap = statistics.median(a["first_snapshot"] for a in app)
    base = statistics.median(textual)
    return {"python_pass_s": statistics.median(bare), "import_textual_s": base,
            "hello_app_ready_s": statistics.median(hello), "app_ready_s": ready,
            "first_snapshot_s": snap, "ready_over_import_textual": ready / base,
            "first_snapshot_over_import_textual": snap / base,
            "ready_over_hello_app": ready / statistics.median(hello)}


# -- the big study ----------------------------------------------------------------------


def build(path: Path, n_trials: int, steps: int) -> int:
    """Register the study and write every trial's outcome and points; returns the study id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    spec_path = path.parent / "study.toml"
    spec_path.write_text(STUDY.format(steps=steps, per_width=n_trials // 2))
    db = connect(path)
    study, added = register(db, path, load(spec_path))
    assert added == n_trials, added
    rng = random.Random(7)
    conn = db.conn
    rows = trials.list_for_study(db, study.id)
    for i, t in enumerate(rows):
        conn.execute("BEGIN")
        state, feasible, best = _outcome(i, n_trials, rng)
        last = steps - 1 if state != "queued" else None
        conn.execute("UPDATE trials SET state = ?, feasible = ?, best_value = ?, best_step = ?, last_step = ?, "
                     "slot = ? WHERE id = ?", [state, feasible, best, last if best is not None else None, last,
                                               "cpu" if state == "running" else None, t.id])
        if state != "queued":
            conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", _points(t.id, steps, rng))
        conn.execute("COMMIT")
        if i % 100 == 99:
            print(f"  built {i + 1}/{n_trials} trials", file=sys.stderr)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return study.id


def _outcome(i: int, n: int, rng: random.Random) -> tuple[str, int | None, float | None]:
    if i >= n - n // 50:
        return "queued", None, None
    if i >= n - n // 50 - n // 30:
        return "running", None, 0.3 + 0.2 * rng.random()
    if i % 20 == 7:
        return "failed", 0, None  # diverged: infeasible
    return "completed", 1, 0.1 + 0.3 * rng.random()


def _points(trial_id: int, steps: int, rng: random.Random) -> list[tuple]:
    base, r = 1.0 + rng.random(), rng.random
    values = {
        "grad_norm": lambda s: 1.0 + r() + (20.0 if r() < 0.001 else 0.0),
        "lr": lambda s: 3e-4 * (1 + math.cos(math.pi * s / steps)) / 2,
        "train_loss": lambda s: base * math.exp(-s / 3000) + 0.05 * r(),
        "val_loss": lambda s: base * math.exp(-s / 4000) + 0.1,
    }
    return [(trial_id, name, s, values[name](s), 1.7e9 + s * 0.1) for name in METRICS for s in range(steps)]


def poller_read(path: Path, study_id: int) -> dict:
    """The poller's first read of the study view, on a fresh connection and a cold file."""
    from tui.snapshot import StorePoller, View

    cold = drop_file_cache(path)
    poller = StorePoller(path)
    try:
        poller.poll(View())
        poller.load_probe()  # the app loads these before any study opens
        poller.warm_up()
        t0 = time.perf_counter()
        snap = poller.poll(View(study_id))
        first = time.perf_counter() - t0
        trial = snap.study_detail.trials[0].id
        t0 = time.perf_counter()
        poller.poll(View(study_id, trial))  # the cursor lands: curves only (trials cached)
        curves = time.perf_counter() - t0
    finally:
        poller.close()
    return {"cache_dropped": cold, "study_view_first_read_s": first, "highlighted_curves_read_s": curves}


async def app_open(path: Path, n_trials: int, repeats: int) -> dict:
    from tui.app import make_app
    from tui.screens import RunnerStatus

    stamps = _stamp_app(n_trials)
    app = make_app(path)
    runs = []
    async with app.run_test(size=(100, 30)) as pilot:
        status = app.screen.query_one(RunnerStatus)
        await until(pilot, lambda: "no runner" in str(status.render()))
        await pilot.pause(1.5)  # the poller's warm-up imports (on its first idle tick) are done
        for _ in range(repeats):
            runs.append(await open_once(pilot, stamps))
            await pilot.press("escape")
            await pilot.pause(0.3)
    opens = [r[0] for r in runs]
    return {"open_to_table_s": opens, "open_to_plot_s": [r[1] for r in runs],
            "cursor_to_plot_s": [r[2] for r in runs],
            "open_to_table_median_s": statistics.median(opens),
            "open_over_goal": statistics.median(opens) / OPEN_GOAL_S}


def _stamp_app(n_trials: int) -> dict:
    """Record when the table is full and when the plot shows a trial's curves, from inside the app.

    (Pilot's press() returns only once the app is idle, which a plot build in a
    thread postpones, so its return says little about when the user sees the table.)
    """
    from tui.screens import StudyScreen
    from tui.widgets.plot import PlotWidget

    stamps: dict = {}
    show, built = StudyScreen.show, PlotWidget.on_plot_widget_built

    def timed_show(self, snap):
        show(self, snap)
        if self.query_one("#trials").row_count == n_trials:
            stamps.setdefault("table", time.perf_counter())

    def timed_built(self, message):
        built(self, message)
        if self.id == "study-plot" and self.drawn and self.spec.series:
            stamps.setdefault(self.spec.series[0].label.split()[0], time.perf_counter())

    StudyScreen.show, PlotWidget.on_plot_widget_built = timed_show, timed_built
    return stamps


async def open_once(pilot, stamps: dict) -> tuple[float, float, float]:
    """Seconds from enter to the full table, to trial #1's plot; then from down to trial #2's plot."""
    stamps.clear()
    t0 = time.perf_counter()
    await pilot.press("enter")
    await until(pilot, lambda: "table" in stamps and "#1" in stamps)
    t1 = time.perf_counter()
    await pilot.press("down")
    await until(pilot, lambda: "#2" in stamps)
    return stamps["table"] - t0, stamps["#1"] - t0, stamps["#2"] - t1


async def until(pilot, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("tui bench: timed out waiting for the app")
        await pilot.pause(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "playbook-tui-bench"))
    parser.add_argument("--rebuild", action="store_true", help="build the big study's file again")
    args = parser.parse_args()
    path = Path(args.dir) / f"bench-{args.trials}x{args.steps}" / "playbook.db"
    result: dict = {"first_frame": first_frame(args.repeats)}
    if args.rebuild or not path.exists():
        for stale in path.parent.glob("playbook.db*"):
            stale.unlink()
        t0 = time.perf_counter()
        build(path, args.trials, args.steps)
        result["build_s"] = time.perf_counter() - t0
    db = connect(path)
    study_id = db.execute("SELECT id FROM studies WHERE name = 'bench'").fetchone()[0]
    points = db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    db.conn.close()
    result["study"] = {"trials": args.trials, "steps": args.steps, "points": points, "file": str(path),
                       "file_mb": round(path.stat().st_size / 2**20)}
    result["poller"] = poller_read(path, study_id)
    result["app"] = asyncio.run(app_open(path, args.trials, args.repeats))
    print(json.dumps(result, indent=2))
    ff, ap = result["first_frame"], result["app"]
    print(f"\nfirst frame {ff['app_ready_s'] * 1e3:.0f} ms = {ff['ready_over_import_textual']:.2f}x "
          f"`import textual` ({ff['import_textual_s'] * 1e3:.0f} ms) = {ff['ready_over_hello_app']:.2f}x a "
          f"hello-world Textual app's ({ff['hello_app_ready_s'] * 1e3:.0f} ms); first snapshot "
          f"{ff['first_snapshot_s'] * 1e3:.0f} ms = {ff['first_snapshot_over_import_textual']:.2f}x")
    print(f"open {args.trials} trials x {args.steps} steps: table in {ap['open_to_table_median_s'] * 1e3:.0f} ms "
          f"= {ap['open_over_goal']:.2f}x the 300 ms goal; poller's cold read "
          f"{result['poller']['study_view_first_read_s'] * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
