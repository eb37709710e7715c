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
   table's first screenful (the rows in view, in order) is painted (goal <= 300 ms), until
   it holds every trial and that frame is painted, until the curves
   plot is drawn, and
   moving the cursor until the next trial's curves are drawn.

3. Live: CPU of the TUI while 32 trials report (goal <= 15% of one core), and the delay
   from a metrics line written to a trial's file to its step on screen (goal <= 1 s).
   A real runner (`python -m runner run`) runs 32 real trials (a stdlib script that
   logs train_loss/grad_norm/val_loss through runner.report.Reporter every 10 ms) and
   one silent probe trial (#2, it only sleeps). The TUI runs in a child process on a
   pseudo-terminal (the real Linux driver; the bench drains and counts its output),
   opens the study and stays there. CPU: /proc/<pid>/stat over a 20 s window;
   baseline: the same TUI, started at the same time, on an idle copy of the database
   (nothing changes in it), over the same window. Delay: the bench appends 25 metrics
   lines with new steps to the probe's metrics.jsonl at random gaps (0.35-0.85 s, so
   their phase against the runner's and the TUI's polls is random), and times when
   the step shows in the TUI's trial table (the child reads the steps cell every
   20 ms); baseline: when it shows in the store (the bench polls SQLite every 20 ms),
   i.e. the runner's ingest alone, so the TUI's own share is the difference.

    .venv/bin/python bench/tui_bench.py [--trials 1000] [--steps 10000] [--rebuild] [--repeats 5]
    .venv/bin/python bench/tui_bench.py --only live [--live-trials 32] [--cpu-window 20] [--probes 25]
    TUI_BENCH_PROFILE=ui.prof ... --only live   # also cProfile the live TUI's UI thread (pstats file)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import drop_file_cache  # noqa: E402

from runner.launch import register  # noqa: E402
from runner.spec import load  # noqa: E402
from store import connect, metrics, trials  # noqa: E402
from store.metrics import TrialUpdate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("grad_norm", "lr", "train_loss", "val_loss")  # sorted: key order
OPEN_GOAL_S = 0.300
FIGURES = ("first-frame", "open", "live")
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
        conn.execute("COMMIT")
        if state != "queued":
            metrics.write_updates(db, [TrialUpdate(t.id, rows=_points(t.id, steps, rng))], {})
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
    from tui.data.snapshot import StorePoller, View

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
    opens, full = [r[5] for r in runs], [r[0] for r in runs]
    return {"open_to_first_screen_s": opens, "open_to_all_rows_s": full,
            "open_to_first_rows_in_s": [r[6] for r in runs],  # before that frame is painted
            "open_to_all_rows_median_s": statistics.median(full), "open_to_all_rows_p90_s": _percentile(full, 0.9), "open_to_plot_s": [r[1] for r in runs],
            "cursor_to_plot_s": [r[2] for r in runs], "open_to_rows_added_s": [r[3] for r in runs],
            "open_to_table_cpu_s": [r[4] for r in runs],
            "open_to_table_cpu_median_s": statistics.median(r[4] for r in runs),
            "open_p90_s": _percentile(opens, 0.9),
            "open_median_s": statistics.median(opens),
            "open_over_goal": statistics.median(opens) / OPEN_GOAL_S}


def _stamp_app(n_trials: int) -> dict:
    """Record when the table's first screenful is right, when the table is full, and when the plot shows a trial's curves, from inside the app.

    (Pilot's press() returns only once the app is idle, which a plot build in a
    thread postpones, so its return says little about when the user sees the table.)
    """
    from tui.widgets.plot import PlotWidget
    from tui.widgets.trial_table import TrialTable

    stamps: dict = {}
    sync, built = TrialTable.resync, PlotWidget.on_plot_widget_built

    def timed_sync(self, *args, **kwargs):
        sync(self, *args, **kwargs)
        table = self
        keys = [r.key.value for r in table.ordered_rows]
        # The first screenful: the rows in view are the first of the current order, with their cells.
        expected = [str(r.id) for r in self.shown_trials()][: max(1, table.size.height - 1)]
        if len(self.trials) == n_trials and keys[: len(expected)] == expected and "first" not in stamps:
            stamps["first"] = time.perf_counter()
            self.app.call_after_refresh(lambda: stamps.setdefault("first_painted", time.perf_counter()))
        if table.row_count == n_trials and "table" not in stamps:
            stamps["table"] = time.perf_counter()

            def painted():  # the table measured and painted (the next refresh)
                stamps.setdefault("painted", time.perf_counter())
                stamps.setdefault("painted_cpu", time.process_time())

            self.app.call_after_refresh(painted)

    def timed_built(self, message):
        built(self, message)
        if self.id == "study-plot" and self.drawn and self.spec.series:
            stamps.setdefault(self.spec.series[0].label.split()[0], time.perf_counter())

    TrialTable.resync, PlotWidget.on_plot_widget_built = timed_sync, timed_built
    return stamps


async def open_once(pilot, stamps: dict) -> tuple[float, ...]:
    """Seconds from enter to the first screenful of the table painted (the rows in view, in
    the current order: "open"), to the full table painted, to trial #1's plot; from down to trial #2's
    plot; from enter to the rows being in the table (before they are measured and painted);
    and the CPU seconds of the whole process (every thread) from enter to the painted table,
    which other load on the machine does not inflate as it does the wall time."""
    stamps.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    await pilot.press("enter")
    await until(pilot, lambda: "painted" in stamps and "first_painted" in stamps and "#1" in stamps)
    t1 = time.perf_counter()
    await pilot.press("down")
    await until(pilot, lambda: "#2" in stamps)
    return (stamps["painted"] - t0, stamps["#1"] - t0, stamps["#2"] - t1, stamps["table"] - t0,
            stamps["painted_cpu"] - c0, stamps["first_painted"] - t0, stamps["first"] - t0)


async def until(pilot, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("tui bench: timed out waiting for the app")
        await pilot.pause(0.002)


# -- live: CPU while trials report, and the delay to the screen ----------------------------

CPU_GOAL_PCT = 15.0
DELAY_GOAL_S = 1.0
PROBE_NUMBER = 2  # the silent trial whose metrics file the bench writes (a row on screen, not the cursor's)
LIVE_TRIAL = """\
import argparse, math, random, time
from runner.report import Reporter

ap = argparse.ArgumentParser()
for name in ("--seconds", "--period", "--lr"):
    ap.add_argument(name, type=float)
ap.add_argument("--seed", type=int)
ap.add_argument("--width", type=int)
ap.add_argument("--probe", type=int)
args = ap.parse_args()
if args.seed == args.probe:  # the bench writes this trial's metrics lines itself
    time.sleep(args.seconds)
    raise SystemExit(0)
rng = random.Random(args.seed)
report = Reporter()
start = time.monotonic()
step = 0
while time.monotonic() - start < args.seconds:
    loss = 2.0 * math.exp(-step / 2000) + 0.05 * rng.random()
    report.log(step, train_loss=loss, grad_norm=1.0 + rng.random(), val_loss=loss + 0.1)
    step += 1
    time.sleep(max(0.0, start + step * args.period - time.monotonic()))
"""
LIVE_STUDY = """\
[study]
name = "live"
goal = "How much CPU does the TUI take while trials report?"
command = "python {script} --seconds {{seconds}} --period {{period}} --seed {{trial_number}} --probe {{probe}} --lr {{lr}} --width {{width}}"
max_train_steps = 100000
objective = {{ metric = "val_loss", mode = "min" }}
trials = {n}
concurrency = {n}

[params.lr]
role = "nuisance"
low = 1e-4
high = 1.0
scale = "log"

[params.width]
role = "scientific"
values = [128]

[params.probe]
role = "fixed"
value = {probe}

[params.seconds]
role = "fixed"
value = {seconds}

[params.period]
role = "fixed"
value = {period}
"""
# The TUI under test, in its own process on a pseudo-terminal (the real Linux driver).
# argv: DB REPORT_FD COMMAND_FD ROWS. It reports JSON lines on REPORT_FD and takes
# commands on COMMAND_FD: `stats`, `watch SECONDS KEY,KEY,...` (poll the trial table's
# steps cells every 20 ms), `quit`. A few of the TUI's functions are wrapped to count
# calls and their wall and thread-CPU seconds (cheap: a clock pair per call).
LIVE_DRIVER = """\
import asyncio, copy, json, os, sys, threading, time, traceback

db, report_fd, command_fd, n_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def emit(**kv):
    os.write(report_fd, (json.dumps(kv) + "\\n").encode())


import textual.app
import textual.screen
import tui.data.snapshot
import tui.widgets.plot
from textual.widgets import DataTable
from tui.app import make_app
from tui.screens.study import StudyScreen

stats = {}


def timed(owner, name, key):
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            s = stats.setdefault(key, [0, 0.0, 0.0])
            s[0] += 1
            s[1] += time.perf_counter() - w0
            s[2] += time.thread_time() - c0

    setattr(owner, name, wrapper)


timed(tui.data.snapshot.StorePoller, "poll", "poller.poll (every wake-up)")
timed(tui.data.snapshot, "read_snapshot", "read_snapshot (store changed)")
timed(tui.data.snapshot, "analyze", "  analyze (runner.playbook)")
timed(tui.data.snapshot, "read_overlay", "  read_overlay (curves)")
timed(StudyScreen, "show", "StudyScreen.show (UI thread)")
timed(tui.widgets.plot, "build_plot", "build_plot (plot thread)")
timed(textual.app.App, "_display", "App._display (frames out)")
timed(textual.screen.Screen, "_refresh_layout", "Screen._refresh_layout (layout passes)")


PROFILE = os.environ.get("TUI_BENCH_PROFILE")  # a file: cProfile the UI thread over the CPU window
profiler = __import__("cProfile").Profile()


async def auto(pilot):
    app = pilot.app
    profiling = False
    try:
        loop = asyncio.get_running_loop()
        commands = asyncio.Queue()

        def read_commands():
            with os.fdopen(command_fd, "r") as f:
                for line in f:
                    loop.call_soon_threadsafe(commands.put_nowait, line.split())
            loop.call_soon_threadsafe(commands.put_nowait, ["quit"])

        threading.Thread(target=read_commands, daemon=True).start()
        deadline = time.monotonic() + 60
        while not (app.snapshot and app.snapshot.studies):
            if time.monotonic() > deadline:
                raise TimeoutError("the studies screen never listed the study")
            await asyncio.sleep(0.02)
        await pilot.press("enter")
        while not (isinstance(app.screen, StudyScreen)
                   and app.screen.query_one("#trials", DataTable).row_count == n_rows):
            if time.monotonic() > deadline:
                raise TimeoutError("the study screen never showed every trial")
            await asyncio.sleep(0.02)
        emit(ready=time.time())
        while True:
            cmd = await commands.get()
            if cmd[0] == "stats":
                emit(stats=copy.deepcopy(stats))
                if PROFILE:  # the UI thread between the first and the second `stats` (the CPU window)
                    if not profiling:
                        profiler.enable()
                        profiling = True
                    else:
                        profiler.disable()
                        profiler.dump_stats(PROFILE)
                        profiling = False
            elif cmd[0] == "watch":
                seconds, keys = float(cmd[1]), cmd[2].split(",")
                table = app.screen.query_one("#trials", DataTable)
                seen = {k: [] for k in keys}
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    now = time.time()
                    for k in keys:
                        text = str(table.get_cell(k, "progress")).split("/")[0]
                        if text.isdigit() and (not seen[k] or seen[k][-1][1] != int(text)):
                            seen[k].append((now, int(text)))
                    await asyncio.sleep(0.02)
                emit(watch=seen)
            else:
                break
    except Exception:
        emit(error=traceback.format_exc())
    finally:
        app.exit()


make_app(db).run(auto_pilot=auto)
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    f = _stat_fields(pid)
    return (int(f[11]) + int(f[12])) / CLK_TCK if f else float("nan")


def group_cpu_seconds(pgids: set[int]) -> float:
    """CPU seconds of every live process whose process group is one of `pgids`."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (f := _stat_fields(entry.name)) and int(f[2]) in pgids:
            total += (int(f[11]) + int(f[12])) / CLK_TCK
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


class TuiChild:
    """The driver above, on a pseudo-terminal whose output a thread drains (and counts)."""

    def __init__(self, db: Path, n_rows: int, size: tuple[int, int] = (120, 40), profile: str | None = None):
        import fcntl
        import pty
        import queue
        import struct
        import termios

        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        report_r, report_w = os.pipe()
        command_r, command_w = os.pipe()
        env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor",
               "COLUMNS": str(size[0]), "LINES": str(size[1])}
        env.pop("TUI_BENCH_PROFILE", None)
        if profile:
            env["TUI_BENCH_PROFILE"] = profile
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LIVE_DRIVER, str(db), str(report_w), str(command_r), str(n_rows)],
            stdin=slave, stdout=slave, stderr=slave, pass_fds=(report_w, command_r), cwd=ROOT, env=env,
            start_new_session=True)
        for fd in (slave, report_w, command_r):
            os.close(fd)
        self.pid = self.proc.pid
        self.out_bytes = 0  # what the TUI wrote to its terminal
        self._tail = b""  # the last of it: a crash's traceback lands there
        self._commands = os.fdopen(command_w, "w", buffering=1)
        self._messages: queue.Queue = queue.Queue()
        threading.Thread(target=self._drain, args=(master,), daemon=True).start()
        threading.Thread(target=self._read, args=(report_r,), daemon=True).start()

    def _drain(self, fd: int) -> None:
        try:
            while data := os.read(fd, 1 << 16):
                self.out_bytes += len(data)
                self._tail = (self._tail + data)[-20000:]
        except OSError:
            pass
        finally:
            os.close(fd)

    def _read(self, fd: int) -> None:
        with os.fdopen(fd) as f:
            for line in f:
                self._messages.put(json.loads(line))
        self._messages.put({"error": f"the TUI child ended (exit status {self.proc.wait()})"})

    def send(self, *words) -> None:
        try:
            self._commands.write(" ".join(str(w) for w in words) + "\n")
        except OSError:
            self._fail("its command pipe is closed")

    def _fail(self, what: str, screen: bool = True):
        """Stop the bench; with the end of what the child's terminal showed (Textual prints
        a crash's traceback there) unless `what` is the driver's own traceback."""
        import re

        text = ""
        if screen:
            time.sleep(0.5)  # the drain thread reads what it printed last
            text = re.sub(r"\x1b(\[[0-9;?<>=$]*[ -/]*[@-~]|\][^\x07]*\x07|.)", "",
                          self._tail.decode(errors="replace"))
            text = f"\nits terminal's last text:\n{text[-3000:]}"
        raise SystemExit(f"tui bench: the TUI child (pid {self.pid}, exit status {self.proc.poll()}) failed: "
                         f"{what}{text}")

    def expect(self, key: str, timeout: float = 60.0):
        import queue

        try:
            message = self._messages.get(timeout=timeout)
        except queue.Empty:
            self._fail(f"it sent no {key!r} in {timeout:.0f} s")
        if key not in message:
            self._fail(str(message.get("error", message)), screen="traceback" not in str(message).lower())
        return message[key]

    def quit(self) -> None:
        try:
            self._commands.write("quit\n")
            self._commands.close()
            self.proc.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):  # ValueError: closed already
            pass  # the caller kills what is left


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    i = (len(xs) - 1) * q
    lo, hi = math.floor(i), math.ceil(i)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def _spread(xs: list[float]) -> dict:
    return {"n": len(xs), "median_s": _percentile(xs, 0.5), "p90_s": _percentile(xs, 0.9),
            "max_s": max(xs) if xs else float("nan")}


def _first_at_least(series: list[tuple[float, int]], step: int, since: float) -> float | None:
    """When a series of (time, shown step) first showed `step` or later, after `since`."""
    return next((t for t, s in series if s >= step and t >= since - 0.05), None)


def _probe(db: Path, trial_id: int, metrics: Path, n: int, rng: random.Random) -> tuple:
    """Append n metrics lines with new steps to the silent probe trial's file, at random
    gaps (so their phase against the runner's and the TUI's polls is random), and poll
    the trial's last_step in the store every 20 ms (the runner's ingest) until 3 s after
    the last. Returns [(written, step)], [(seen in the store, step)]."""
    fd = os.open(metrics, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    conn = sqlite3.connect(db)
    written: list[tuple[float, int]] = []
    stored: list[tuple[float, int]] = []
    next_write, stop = time.monotonic() + rng.uniform(0.35, 0.85), math.inf
    try:
        while time.monotonic() < stop:
            if len(written) < n and time.monotonic() >= next_write:
                step, t = len(written) + 1, time.time()
                os.write(fd, f'{{"t":{t!r},"step":{step},"m":{{"train_loss":{1 / step!r},'
                             f'"grad_norm":1.0,"val_loss":{1 / step + 0.1!r}}}}}\n'.encode())
                written.append((t, step))
                next_write = time.monotonic() + rng.uniform(0.35, 0.85)
                if len(written) == n:
                    stop = time.monotonic() + 3.0
            (last,) = conn.execute("SELECT last_step FROM trials WHERE id = ?", [trial_id]).fetchone()
            if last is not None and (not stored or stored[-1][1] != last):
                stored.append((time.time(), last))
            time.sleep(0.02)
    finally:
        os.close(fd)
        conn.close()
    return written, stored


def _wait_running(db: Path, n: int, runner: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    conn = sqlite3.connect(db)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                running = conn.execute("SELECT COUNT(*) FROM trials WHERE state = 'running'").fetchone()[0]
            except sqlite3.OperationalError:  # the runner has not made the schema yet
                running = 0
            if running == n:
                return
            ended = conn.execute("SELECT COUNT(*) FROM trials WHERE state NOT IN "
                                 "('queued', 'starting', 'running')").fetchone()[0] if running else 0
            if ended:
                runner.poll() is None or runner.wait()
                raise SystemExit(f"tui bench: {ended} trial(s) ended early; runner log:\n"
                                 f"{log.read_text()[-2000:]}")
            if runner.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise SystemExit(f"tui bench: {running}/{n} trials running; runner log:\n{tail}")
            time.sleep(0.1)
    finally:
        conn.close()


def _kill_ours(tmp: str, procs: list) -> int:
    """SIGKILL what this run started: its children's process groups, then any process whose
    command line names the run's temporary folder (the trials and their shims, which the
    runner started in their own sessions). Returns how many were left after 5 s."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    marker = tmp.encode()
    left: list[int] = []
    for _ in range(50):
        left = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    if marker not in f.read():
                        continue
                if (_stat_fields(entry.name) or ["Z"])[0] == "Z":
                    continue  # a zombie: already dead, its parent (ours, or init) reaps it
                os.kill(int(entry.name), signal.SIGKILL)
                left.append(int(entry.name))
            except (OSError, ProcessLookupError):
                pass
        for p in procs:
            if p.poll() is None:
                try:
                    p.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
        if not left:
            break
        time.sleep(0.1)
    return len(left)


def live(n_trials: int = 32, cpu_window: float = 20.0, probes: int = 25, period: float = 0.01) -> dict:
    """CPU of the TUI while n_trials report live, and the delay from a file write to the screen."""
    tmp = tempfile.mkdtemp(prefix="playbook-tui-live-")
    procs: list = []
    children: list[TuiChild] = []
    old_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` cleans up
    try:
        return _live(Path(tmp), procs, children, n_trials, cpu_window, probes, period)
    finally:
        for child in children:
            child.quit()
        left = _kill_ours(tmp, procs + [c.proc for c in children])
        signal.signal(signal.SIGTERM, old_term)
        shutil.rmtree(tmp, ignore_errors=True)
        if left:
            print(f"tui bench: WARNING: {left} process(es) of the live run survived SIGKILL", file=sys.stderr)


def _live(tmp: Path, procs: list, children: list, n_trials: int, cpu_window: float, probes: int,
          period: float) -> dict:
    study_dir = tmp / "study"
    study_dir.mkdir()
    (study_dir / "trial.py").write_text(LIVE_TRIAL)
    seconds = round(cpu_window + 0.85 * probes + 25)  # startup, settling and both figures, with room
    (study_dir / "study.toml").write_text(LIVE_STUDY.format(
        script=study_dir / "trial.py", n=n_trials + 1, seconds=seconds, period=period, probe=PROBE_NUMBER))
    db, idle_db, log = tmp / "live.db", tmp / "idle" / "idle.db", tmp / "runner.log"
    t0 = time.monotonic()
    with open(log, "wb") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "runner", "--db", str(db), "run", str(study_dir / "study.toml"),
             "--cpu-slots", str(n_trials + 1)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=ROOT, start_new_session=True)
    procs.append(runner)
    _wait_running(db, n_trials + 1, runner, log)
    started_s = time.monotonic() - t0

    # The idle copy: the same study, frozen (no runner, nothing changes).
    idle_db.parent.mkdir()
    src, dst = sqlite3.connect(db), sqlite3.connect(idle_db)
    src.backup(dst)
    dst.execute("DELETE FROM lease")
    dst.commit()
    src.close()
    dst.close()
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, number, pid, trial_dir FROM trials ORDER BY number").fetchall()
    conn.close()
    trial_groups = {pid for _, number, pid, _ in rows if pid and number != PROBE_NUMBER}
    probe_id, probe_dir = next((tid, d) for tid, number, _, d in rows if number == PROBE_NUMBER)

    profile = os.environ.get("TUI_BENCH_PROFILE")
    if profile:
        print(f"tui bench: profiling the live TUI's UI thread into {profile}: its CPU figure is inflated",
              file=sys.stderr)
    live_tui = TuiChild(db, n_trials + 1, profile=os.path.abspath(profile) if profile else None)
    idle_tui = TuiChild(idle_db, n_trials + 1)
    children += [live_tui, idle_tui]
    live_tui.expect("ready")
    idle_tui.expect("ready")
    ready_s = time.monotonic() - t0
    time.sleep(2.0)  # let the study screen's first plot build and lazy imports finish

    # Figure 1: CPU over the same window, both TUIs untouched.
    def sample() -> dict:
        return {"t": time.monotonic(), "live": cpu_seconds(live_tui.pid), "idle": cpu_seconds(idle_tui.pid),
                "runner": cpu_seconds(runner.pid), "trials": group_cpu_seconds(trial_groups),
                "machine": machine_busy_seconds(), "live_out": live_tui.out_bytes,
                "idle_out": idle_tui.out_bytes}

    for child in (live_tui, idle_tui):
        child.send("stats")
    before_stats = [c.expect("stats") for c in (live_tui, idle_tui)]
    a = sample()
    time.sleep(cpu_window)
    b = sample()
    for child in (live_tui, idle_tui):
        child.send("stats")
    after_stats = [c.expect("stats") for c in (live_tui, idle_tui)]
    wall = b["t"] - a["t"]
    pct = {k: 100 * (b[k] - a[k]) / wall for k in ("live", "idle", "runner", "trials", "machine")}
    idle_tui.quit()

    # Figure 2: a metrics line written -> its step in the store (the runner) -> in the TUI's table.
    live_tui.send("watch", 0.85 * probes + 4.0, probe_id)
    written, stored = _probe(db, probe_id, Path(probe_dir) / "metrics.jsonl", probes, random.Random(11))
    shown = live_tui.expect("watch", timeout=30)[str(probe_id)]
    conn = sqlite3.connect(db)
    still_running = conn.execute("SELECT COUNT(*) FROM trials WHERE state = 'running'").fetchone()[0]
    conn.close()
    to_store, to_screen, tui_share, unseen = [], [], [], 0
    for t, step in written:
        at_store, on_screen = _first_at_least(stored, step, t), _first_at_least(shown, step, t)
        if at_store is None or on_screen is None:
            unseen += 1
            continue
        to_store.append(at_store - t)
        to_screen.append(on_screen - t)
        tui_share.append(on_screen - at_store)

    def attribution(before: dict, after: dict) -> dict:
        out = {}
        for k, v in after.items():
            calls, w, c = (x - y for x, y in zip(v, before.get(k, [0, 0.0, 0.0]), strict=True))
            out[k] = {"calls": calls, "wall_pct": round(100 * w / wall, 2), "cpu_pct": round(100 * c / wall, 2),
                      "wall_ms_per_call": round(1e3 * w / calls, 2) if calls else None}
        return out

    cpu = {
        "window_s": wall,
        "tui_live_pct_of_core": pct["live"], "tui_idle_pct_of_core": pct["idle"],
        "tui_live_minus_idle_pct": pct["live"] - pct["idle"],
        "tui_live_over_idle": pct["live"] / pct["idle"] if pct["idle"] else float("inf"),
        "tui_live_over_goal": pct["live"] / CPU_GOAL_PCT,
        "runner_pct_of_core": pct["runner"], "trials_pct_of_core": pct["trials"],
        "machine_busy_cores": pct["machine"] / 100, "machine_cores": os.cpu_count(),
        "tui_live_terminal_bytes_per_s": (b["live_out"] - a["live_out"]) / wall,
        "tui_idle_terminal_bytes_per_s": (b["idle_out"] - a["idle_out"]) / wall,
        "tui_live_inside": attribution(before_stats[0], after_stats[0]),
        "tui_idle_inside": attribution(before_stats[1], after_stats[1]),
    }
    delay = {
        "writes": len(written), "unseen_writes": unseen,
        "write_to_store": _spread(to_store), "write_to_screen": _spread(to_screen),
        "store_to_screen": _spread(tui_share),
        "screen_median_over_goal": _percentile(to_screen, 0.5) / DELAY_GOAL_S,
        "screen_p90_over_goal": _percentile(to_screen, 0.9) / DELAY_GOAL_S,
        "screen_median_over_store_median": _percentile(to_screen, 0.5) / _percentile(to_store, 0.5),
    }
    return {"trials_reporting": n_trials, "trial_seconds": seconds, "report_period_s": period,
            "all_running_after_s": started_s, "tuis_ready_after_s": ready_s,
            "trials_running_at_end": still_running, "cpu": cpu, "delay": delay,
            "total_s": time.monotonic() - t0}


def print_live(lv: dict) -> None:
    c, d = lv["cpu"], lv["delay"]
    if lv["trials_running_at_end"] < lv["trials_reporting"] + 1:
        print(f"WARNING: only {lv['trials_running_at_end']} trials were still running at the end: "
              "the figures saw fewer trials reporting than asked")
    print(f"live, {lv['trials_reporting']} trials reporting every {lv['report_period_s'] * 1e3:.0f} ms "
          f"(+1 silent probe; {lv['trials_running_at_end']} running at the end):")
    print(f"  TUI CPU {c['tui_live_pct_of_core']:.1f}% of a core vs {c['tui_idle_pct_of_core']:.1f}% idle "
          f"(+{c['tui_live_minus_idle_pct']:.1f} points, {c['tui_live_over_idle']:.1f}x) = "
          f"{c['tui_live_over_goal']:.2f}x the {CPU_GOAL_PCT:.0f}% goal; runner {c['runner_pct_of_core']:.1f}%, "
          f"trials {c['trials_pct_of_core']:.1f}%, machine {c['machine_busy_cores']:.2f} of "
          f"{c['machine_cores']} cores busy")
    inside = c["tui_live_inside"]
    parts = {"snapshot reads (poller thread)": inside["poller.poll (every wake-up)"]["cpu_pct"],
             "StudyScreen.show": inside["StudyScreen.show (UI thread)"]["cpu_pct"],
             "plot builds (plot thread)": inside["build_plot (plot thread)"]["cpu_pct"]}
    rest = c["tui_live_pct_of_core"] - sum(parts.values())
    print("  inside the live TUI: " + ", ".join(f"{k} {v:.1f}%" for k, v in parts.items())
          + f", the rest (Textual: layout, rendering, messages) {rest:.1f}%; terminal output "
          f"{c['tui_live_terminal_bytes_per_s'] / 1e3:.0f} KB/s vs {c['tui_idle_terminal_bytes_per_s'] / 1e3:.0f} KB/s idle")
    shows = inside["StudyScreen.show (UI thread)"]["calls"] or 1
    layouts = inside.get("Screen._refresh_layout (layout passes)", {}).get("calls", 0)
    print(f"  per snapshot shown: {inside['App._display (frames out)']['calls'] / shows:.1f} frames, "
          f"{layouts / shows:.2f} layout passes of the whole screen")
    print(f"  write -> screen median {d['write_to_screen']['median_s'] * 1e3:.0f} ms, "
          f"p90 {d['write_to_screen']['p90_s'] * 1e3:.0f} ms (n={d['write_to_screen']['n']}, "
          f"{d['unseen_writes']} not seen) = {d['screen_p90_over_goal']:.2f}x the 1 s goal at p90; "
          f"baseline write -> store median {d['write_to_store']['median_s'] * 1e3:.0f} ms, "
          f"p90 {d['write_to_store']['p90_s'] * 1e3:.0f} ms; the TUI's share median "
          f"{d['store_to_screen']['median_s'] * 1e3:.0f} ms, p90 {d['store_to_screen']['p90_s'] * 1e3:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=FIGURES, help="run only these figures (default: all)")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "playbook-tui-bench"))
    parser.add_argument("--rebuild", action="store_true", help="build the big study's file again")
    parser.add_argument("--live-trials", type=int, default=32, help="live: trials reporting at once")
    parser.add_argument("--cpu-window", type=float, default=20.0, help="live: seconds of CPU measured")
    parser.add_argument("--probes", type=int, default=25, help="live: metrics lines timed to the screen")
    args = parser.parse_args()
    figures = args.only or FIGURES
    result: dict = {}
    if "first-frame" in figures:
        result["first_frame"] = first_frame(args.repeats)
    if "open" in figures:
        path = Path(args.dir) / f"bench-{args.trials}x{args.steps}" / "playbook.db"
        if args.rebuild or not path.exists():
            for stale in path.parent.glob("playbook.db*"):
                stale.unlink()
            t0 = time.perf_counter()
            build(path, args.trials, args.steps)
            result["build_s"] = time.perf_counter() - t0
        db = connect(path)
        study_id = db.execute("SELECT id FROM studies WHERE name = 'bench'").fetchone()[0]
        points = metrics.count_points(db)
        db.conn.close()
        result["study"] = {"trials": args.trials, "steps": args.steps, "points": points, "file": str(path),
                           "file_mb": round(path.stat().st_size / 2**20)}
        result["poller"] = poller_read(path, study_id)
        result["app"] = asyncio.run(app_open(path, args.trials, args.repeats))
    if "live" in figures:
        result["live"] = live(args.live_trials, args.cpu_window, args.probes)
    print(json.dumps(result, indent=2))
    print()
    if "first_frame" in result:
        ff = result["first_frame"]
        print(f"first frame {ff['app_ready_s'] * 1e3:.0f} ms = {ff['ready_over_import_textual']:.2f}x "
              f"`import textual` ({ff['import_textual_s'] * 1e3:.0f} ms) = {ff['ready_over_hello_app']:.2f}x a "
              f"hello-world Textual app's ({ff['hello_app_ready_s'] * 1e3:.0f} ms); first snapshot "
              f"{ff['first_snapshot_s'] * 1e3:.0f} ms = {ff['first_snapshot_over_import_textual']:.2f}x")
    if "app" in result:
        ap = result["app"]
        print(f"open {args.trials} trials x {args.steps} steps: first screen of the table in "
              f"{ap['open_median_s'] * 1e3:.0f} ms = {ap['open_over_goal']:.2f}x the 300 ms goal "
              f"(p90 {ap['open_p90_s'] * 1e3:.0f} ms, n={len(ap['open_to_first_screen_s'])}); "
              f"all rows in {ap['open_to_all_rows_median_s'] * 1e3:.0f} ms (p90 "
              f"{ap['open_to_all_rows_p90_s'] * 1e3:.0f} ms; CPU of every thread "
              f"meanwhile, median {ap['open_to_table_cpu_median_s'] * 1e3:.0f} ms); "
              f"poller's cold read {result['poller']['study_view_first_read_s'] * 1e3:.0f} ms")
    if "live" in result:
        print_live(result["live"])


if __name__ == "__main__":
    main()
