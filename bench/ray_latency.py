"""Ray executor against the local one: trial start latency and metric delay, in the same run.

Setup: a one-node Ray cluster on loopback, inside a network and PID namespace of its own
(the script re-runs itself under `unshare`, as root; everything it started dies with it), and
a study of N trials run one after the other on one slot, once with `--executor local` and
once with `--executor ray`. Each trial writes the time of its first line, then reports a
point every 0.3 s whose value is the time it was reported (Reporter(flush_every=1): every
point goes to the file at once, so the figure is the transport, not the client's batching).
A watcher reads the store every 20 ms.

Figures (medians over trials, and the ratio ray / local):
- start gap: from the previous trial's end (the `ended_at` of its exit record) to the next
  trial's first line: the runner noticing the end, settling it, and starting the next one
  (for Ray: a read through the actor, killing it, creating the next actor on a worker).
- metric delay: from `report.log` in the trial to the point being readable in the store.

    sudo .venv/bin/python bench/ray_latency.py [--trials N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

INSIDE_ENV = "PLAYBOOK_BENCH_IN_NETNS"
PORT = 6381
ADDRESS = f"127.0.0.1:{PORT}"
RAY = str(Path(sys.executable).with_name("ray"))
POINTS = 8
TRIAL = """\
import sys, time
t0 = time.time()
from runner.report import Reporter
with open(sys.argv[1] + "/first_line.txt", "w") as f:
    f.write(repr(t0))
report = Reporter(flush_every=1)
for step in range(POINTS):
    time.sleep(0.3)
    report.log(step, at=time.time())
report.flush()
""".replace("POINTS", str(POINTS))
STUDY = """\
[study]
name = "{name}"
command = "python trial.py {{trial_dir}} {{x}}"
max_train_steps = 1
objective = {{ metric = "at", mode = "min" }}
trials = 0
concurrency = 1

[params.x]
role = "nuisance"
values = {xs}

{manual}
"""


def run_study(work: Path, executor: str, n: int) -> dict:
    """One study under one executor; the start gaps and metric delays it showed."""
    import store
    from store import metrics, studies, trials

    folder = work / executor
    folder.mkdir()
    (folder / "trial.py").write_text(TRIAL)
    xs = list(range(1, n + 1))
    manual = "\n".join(f"[[trial]]\nx = {x}\n" for x in xs)
    (folder / "study.toml").write_text(STUDY.format(name=executor, xs=json.dumps(xs), manual=manual))
    db_path = folder / "pb.db"
    extra = ["--address", ADDRESS] if executor == "ray" else []
    runner = subprocess.Popen([sys.executable, "-m", "runner", "--db", str(db_path), "run", "study.toml",
                               "--cpu-slots", "1", "--executor", executor, *extra], cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    delays: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not db_path.exists() and not stop.is_set():
            time.sleep(0.02)
        db = store.connect(db_path)
        seen: dict[int, int] = {}
        while not stop.is_set():
            study = studies.by_name(db, executor)
            for t in trials.list_for_study(db, study.id) if study else []:
                got = metrics.latest(db, t.id, "at")
                if got is not None and got[0] != seen.get(t.id):
                    delays.append(time.time() - got[1])
                    seen[t.id] = got[0]
            time.sleep(0.02)
        db.conn.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    runner.wait(timeout=600)
    stop.set()
    watcher.join()
    runs = sorted((json.loads((d / "exit.json").read_text())["ended_at"], float((d / "first_line.txt").read_text()))
                  for d in (folder / "runs" / executor).glob("trial-*"))
    gaps = [start - previous_end for (previous_end, _), (_, start) in zip(runs, runs[1:], strict=False)]
    return {"start_gap_s": gaps, "metric_delay_s": delays}


def inside(n: int) -> dict:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    temp = tempfile.mkdtemp(prefix="rb", dir="/tmp")
    subprocess.run([RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={PORT}", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
                    "--object-store-memory=80000000"], env=env, check=True, capture_output=True, timeout=180)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
            return {executor: run_study(Path(tmp), executor, n) for executor in ("local", "ray")}
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


def summarize(res: dict) -> dict:
    out = {}
    for figure in ("start_gap_s", "metric_delay_s"):
        local, ray = statistics.median(res["local"][figure]), statistics.median(res["ray"][figure])
        out[figure] = {"local": local, "ray": ray, "ratio": ray / local if local else None,
                       "n": [len(res["local"][figure]), len(res["ray"][figure])]}
    return out


def run(n_trials: int = 5) -> dict:
    """Runs the measurement inside its own namespaces (needs root and `unshare`)."""
    done = subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child", sys.executable,
                           __file__, "--trials", str(n_trials)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, INSIDE_ENV: "1"}, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"ray_latency printed no result: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return summarize(json.loads(lines[-1][len("RESULT "):]))


def summary_rows(res: dict) -> list[tuple[str, ...]]:
    ms = 1e3
    rows = []
    for figure, label in (("start_gap_s", "trial start: previous end -> next first line"),
                          ("metric_delay_s", "metric delay: report.log -> readable in the store")):
        f = res[figure]
        rows.append((f"Ray vs local, {label} (median)", f"ray {f['ray'] * ms:.0f} ms",
                     f"local {f['local'] * ms:.0f} ms", f"{f['ratio']:.1f}x" if f["ratio"] else "", "", ""))
    return rows


def available() -> bool:
    """Ray installed, and the namespaces this needs (root, unshare)."""
    import importlib.util
    import shutil

    return importlib.util.find_spec("ray") is not None and os.geteuid() == 0 and shutil.which("unshare") is not None


def register(full: dict, quick: dict, rows: dict) -> None:
    """bench/run_all.py's entries, where this can run."""
    if available():
        full["ray"], quick["ray"], rows["ray"] = (lambda: run(5)), (lambda: run(2)), summary_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    if os.environ.get(INSIDE_ENV):
        print("RESULT " + json.dumps(inside(args.trials)), flush=True)
        return
    res = run(args.trials)
    for row in summary_rows(res):
        print("  ".join(row[:4]))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
