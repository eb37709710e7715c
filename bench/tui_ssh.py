"""playbook-tui over SSH: bytes per second written to the terminal while a study runs.

Over SSH every byte the TUI writes crosses the network; a TUI that repaints its
whole table or plot each poll costs tens of KB/s (goal: <= 8 KB/s on the study
screen with 8 live trials at 120x40; `top -d 1` writes about 4 KB/s).

A real runner (`python -m runner run`) runs 8 real trials that log train_loss,
grad_norm and val_loss through runner.report.Reporter steadily (every 50 ms).
The real `playbook-tui --db DB` runs in a private tmux server (a real terminal
emulator) at 120x40; `tmux pipe-pane` copies every byte it writes to a file.
The bench presses enter on the study, waits for the screen to settle, then counts
the bytes over a window. Baseline: `top -d 1` in a second tmux window of the same
size, over the same window. With `--before DIR` a third window runs the TUI from
another checkout (e.g. `git worktree add /tmp/before main`) on the same database at
the same time, so the two figures share the load of the machine.

At the end the runner is stopped, and the bench reads what the TUI's terminal shows
(tmux capture-pane): each trial's last step in the store must be on screen, i.e.
nothing shown was lost to the throttling.

    .venv/bin/python bench/tui_ssh.py [--window 20] [--trials 8] [--before DIR] [--dump FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tui_bench import LIVE_STUDY, LIVE_TRIAL, _kill_ours, _wait_running  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = (120, 40)
GOAL_BPS = 8 * 1024
PERIOD_S = 0.05  # a trial logs a step every 50 ms: a steady, visible stream


class Tmux:
    """A private tmux server (its own socket): windows of SIZE, each piped to a file."""

    def __init__(self, folder: Path):
        self.socket = str(folder / "tmux.sock")
        self.folder = folder
        self.session = False

    def cmd(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True, capture_output=True,
                              text=True).stdout

    def window(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> Path:
        """Start `argv` in a new window; returns the file its terminal output goes to."""
        shell = " ".join(_quote(a) for a in argv)
        env_args = [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
        if not self.session:
            self.cmd("new-session", "-d", "-s", "bench", "-n", name, "-x", str(SIZE[0]), "-y", str(SIZE[1]),
                     "-c", str(cwd), *env_args, shell)
            self.cmd("set-option", "-t", "bench", "window-size", "manual")
            self.session = True
        else:
            self.cmd("new-window", "-d", "-t", "bench", "-n", name, "-c", str(cwd), *env_args, shell)
        self.cmd("resize-window", "-t", f"bench:{name}", "-x", str(SIZE[0]), "-y", str(SIZE[1]))
        out = self.folder / f"{name}.bytes"
        out.touch()
        self.cmd("pipe-pane", "-o", "-t", f"bench:{name}", f"cat >> {_quote(str(out))}")
        return out

    def keys(self, name: str, *keys: str) -> None:
        self.cmd("send-keys", "-t", f"bench:{name}", *keys)

    def screen(self, name: str) -> str:
        return self.cmd("capture-pane", "-p", "-t", f"bench:{name}")

    def kill(self) -> None:
        if self.session:
            subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def tui_argv(code: Path, db: Path) -> list[str]:
    # The entry point's module, run from `code`'s tree (PYTHONPATH), so a second checkout can be compared.
    return [sys.executable, "-c", "import sys; from tui.app import main; sys.exit(main())", "--db", str(db)]


def wait_screen(tmux: Tmux, name: str, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in tmux.screen(name):
        if time.monotonic() > deadline:
            raise SystemExit(f"tui ssh bench: {name!r} never showed {text!r}; its screen:\n{tmux.screen(name)}")
        time.sleep(0.2)


def run(n_trials: int = 8, window: float = 20.0, before: Path | None = None, dump: Path | None = None) -> dict:
    if shutil.which("tmux") is None:
        raise SystemExit("tui ssh bench: needs tmux (apt-get install tmux)")
    tmp = Path(tempfile.mkdtemp(prefix="playbook-tui-ssh-"))
    procs: list[subprocess.Popen] = []
    tmux = Tmux(tmp)
    old_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return _run(tmp, tmux, procs, n_trials, window, before, dump)
    finally:
        tmux.kill()
        _kill_ours(str(tmp), procs)
        signal.signal(signal.SIGTERM, old_term)
        shutil.rmtree(tmp, ignore_errors=True)


def _run(tmp: Path, tmux: Tmux, procs: list, n_trials: int, window: float, before: Path | None,
         dump: Path | None) -> dict:
    study_dir = tmp / "study"
    study_dir.mkdir()
    (study_dir / "trial.py").write_text(LIVE_TRIAL)
    seconds = round(window + 60)  # startup, settling, the window and the final check, with room
    (study_dir / "study.toml").write_text(LIVE_STUDY.format(
        script=study_dir / "trial.py", n=n_trials, seconds=seconds, period=PERIOD_S, probe=-1))
    db, log = tmp / "live.db", tmp / "runner.log"
    with open(log, "wb") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "runner", "--db", str(db), "run", str(study_dir / "study.toml"),
             "--cpu-slots", str(n_trials)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=ROOT, start_new_session=True)
    procs.append(runner)
    _wait_running(db, n_trials, runner, log)

    env = {"TERM": "xterm-256color", "COLORTERM": "truecolor"}
    tuis = {"tui": ROOT} | ({"before": before.resolve()} if before else {})
    files = {}
    for name, code in tuis.items():
        files[name] = tmux.window(name, tui_argv(code, db), env | {"PYTHONPATH": str(code)}, code)
    files["top"] = tmux.window("top", ["top", "-d", "1"], env, tmp)
    for name in tuis:
        wait_screen(tmux, name, "live")  # the studies list
        tmux.keys(name, "Enter")
        wait_screen(tmux, name, "filter: all")  # the study screen
    time.sleep(5.0)  # the first plot built, lazy imports done

    start = {name: f.stat().st_size for name, f in files.items()}
    t0 = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - t0
    rates = {name: (f.stat().st_size - start[name]) / elapsed for name, f in files.items()}
    if dump is not None:  # what our TUI wrote during the window, to see where the bytes go
        with open(files["tui"], "rb") as f:
            f.seek(start["tui"])
            dump.write_bytes(f.read())

    # Nothing lost: stop the trials, let the TUI catch up, and read the steps it shows.
    runner.send_signal(signal.SIGTERM)
    runner.wait(timeout=60)
    conn = sqlite3.connect(db)
    last = dict(conn.execute("SELECT number, last_step FROM trials").fetchall())
    conn.close()
    time.sleep(3.0)
    shown = {}
    for name in tuis:
        screen = tmux.screen(name)
        shown[name] = sorted(n for n, step in last.items() if step is not None and f"{step}/" in screen)
    return {"trials": n_trials, "window_s": elapsed, "size": list(SIZE), "bytes_per_s": rates,
            "last_steps": last, "final_steps_on_screen": shown,
            "goal": f"study screen, {n_trials} live trials, {SIZE[0]}x{SIZE[1]}: <= {GOAL_BPS // 1024} KB/s",
            "goal_met": rates["tui"] <= GOAL_BPS and len(shown["tui"]) == len(last)}


def summary_rows(res: dict) -> list[tuple[str, ...]]:
    r = res["bytes_per_s"]
    kb = 1024
    rows = [(f"TUI bytes to the terminal, {res['trials']} live trials {res['size'][0]}x{res['size'][1]}",
             f"{r['tui'] / kb:.1f} KB/s", f"top -d 1 {r['top'] / kb:.1f} KB/s", f"{r['tui'] / r['top']:.2f}x",
             "<= 8 KB/s", "yes" if res["goal_met"] else "NO")]
    if "before" in r:
        rows.append(("TUI bytes to the terminal: the --before checkout", f"{r['before'] / kb:.1f} KB/s",
                     f"ours {r['tui'] / kb:.1f} KB/s", f"{r['tui'] / r['before']:.2f}x", "", ""))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--window", type=float, default=20.0, help="seconds over which bytes are counted")
    ap.add_argument("--before", type=Path, help="another checkout whose TUI runs beside ours, for comparison")
    ap.add_argument("--dump", type=Path, help="write what our TUI wrote during the window to this file")
    args = ap.parse_args()
    res = run(args.trials, args.window, args.before, args.dump)
    print(json.dumps(res, indent=2))
    for row in summary_rows(res):
        print("  ".join(row))


if __name__ == "__main__":
    main()
