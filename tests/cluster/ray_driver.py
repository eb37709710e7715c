"""Runs inside a network and PID namespace of its own (see tests/cluster/test_ray_executor.py):
starts a two-node Ray cluster on loopback, runs playbook-runner against it, kills things, and
prints one JSON object with what a user would look at (trial states, attempts, placements,
stored points, runner logs).

    python tests/cluster/ray_driver.py SCENARIO WORKDIR     (SCENARIO: grow, spread, ..., node_death, all)

The head node starts alone; the second node joins in the middle of the first scenario (grow),
or right away when another one runs alone.

Everything it starts dies with the namespace's first process (unshare --kill-child); it still
stops the cluster itself (ray stop --force sees only this PID namespace).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import store  # noqa: E402
from store import studies, trials  # noqa: E402

PORT = 6380
ADDRESS = f"127.0.0.1:{PORT}"
RAY = str(Path(sys.executable).with_name("ray"))
WAIT_S = float(os.environ.get("RAY_DRIVER_WAIT_S", 150))
# Fast node-death detection (the defaults take ~15 s): the GCS checks each raylet every 0.5 s.
FAST_HEALTH = {"RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "3",
               "RAY_health_check_timeout_ms": "500", "RAY_health_check_initial_delay_ms": "0"}

TRIAL = """\
import os, sys, time
from runner.report import Reporter

print("CUDA_VISIBLE_DEVICES=" + os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)"), flush=True)

steps, pause = int(sys.argv[1]), float(sys.argv[2])
report = Reporter(flush_interval_s=0.05)
for step in range(steps):
    report.log(step, loss=1.0 / (step + 1))
    print(f"step {step}", flush=True)
    time.sleep(pause)
report.flush()
"""


def study_text(name: str, xs: list[int], steps: int, pause: float, **extra: object) -> str:
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in extra.items())
    manual = "\n".join(f"[[trial]]\nx = {x}\n" for x in xs)
    return textwrap.dedent(f"""\
        [study]
        name = "{name}"
        command = "python trial.py {{max_train_steps}} {pause} {{x}}"
        max_train_steps = {steps}
        objective = {{ metric = "loss", mode = "min" }}
        trials = 0
        concurrency = {len(xs)}
        executor = "ray"
        ray_address = "{ADDRESS}"
        """) + lines + f"""

[params.x]
role = "nuisance"
values = {json.dumps(xs)}

{manual}"""


def node_env(tag: str, work: Path) -> dict[str, str]:
    return {**os.environ, **FAST_HEALTH, "RAY_USAGE_STATS_ENABLED": "0", "NODE_TAG": tag,
            "PLAYBOOK_RAY_SCRATCH": str(work / f"scratch-{tag}")}


def ray_start(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([RAY, "start", "--node-ip-address=127.0.0.1", "--object-store-memory=80000000",
                           *args], env=env, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"ray start {args} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")


def start_head(work: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    ray_start(["--head", f"--port={PORT}", "--include-dashboard=false", "--disable-usage-stats",
               "--num-cpus=2", "--num-gpus=0", f"--temp-dir={temp}", '--resources={"node_a": 1}'],
              node_env("a", work))


def start_worker(work: Path) -> None:
    """The second node: its own CPUs, resources and scratch folder."""
    ray_start([f"--address={ADDRESS}", "--num-cpus=2", '--resources={"node_b": 1}'], node_env("b", work))


def kill_node(tag: str) -> list[int]:
    """What a machine's death does: every process of node `tag` (raylet, workers, trials) dies at once."""
    mark = f"\0NODE_TAG={tag}\0".encode()
    killed = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = b"\0" + Path(entry.path, "environ").read_bytes()
        except OSError:
            continue
        if mark in environ:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except ProcessLookupError:
                pass
    return killed


def until(condition, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    raise RuntimeError(f"gave up waiting for {what}")


def runner(work: Path, *args: str, log: str) -> subprocess.Popen:
    out = open(work / log, "ab")
    return subprocess.Popen([sys.executable, "-m", "runner", "--db", str(work / "pb.db"), *args], cwd=work,
                            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})


def stored_points(work: Path, study: str) -> dict[int, list[int]]:
    """Steps of `loss` stored per trial number, as `export --metrics` shows a user."""
    done = subprocess.run([sys.executable, "-m", "runner", "--db", str(work / "pb.db"), "export", study,
                           "--metrics", "loss", "--format", "json"], capture_output=True, text=True, cwd=work,
                          timeout=120)
    try:
        rows = json.loads(done.stdout)
    except ValueError:  # the runner has not registered the study yet
        return {}
    out: dict[int, list[int]] = {}
    for row in rows:
        out.setdefault(int(row["trial"]), []).append(int(row["step"]))
    return {k: sorted(v) for k, v in out.items()}


def trial_rows(work: Path, study: str) -> list[dict]:
    db = store.connect(work / "pb.db")
    try:
        found = studies.by_name(db, study)
        if found is None:  # not registered yet
            return []
        rows = []
        for t in trials.list_for_study(db, found.id):
            folder = Path(t.trial_dir)
            placement = json.loads((folder / "placement.json").read_text()) if (folder / "placement.json").exists() else None
            earlier = sorted(p.name for p in folder.glob("attempt-*"))
            old_placements = [json.loads((folder / e / "placement.json").read_text()) for e in earlier
                              if (folder / e / "placement.json").exists()]
            lines = (folder / "metrics.jsonl").read_text().splitlines() if (folder / "metrics.jsonl").exists() else []
            stdout = (folder / "stdout.log").read_text() if (folder / "stdout.log").exists() else ""
            rows.append({"number": t.number, "state": t.state.value, "attempt": t.attempt, "reason": t.reason,
                         "detail": t.detail, "placement": placement, "earlier": earlier,
                         "earlier_placements": old_placements, "metric_lines": len(lines),
                         "stdout_last": stdout.strip().splitlines()[-1] if stdout.strip() else "",
                         "stdout_first": stdout.strip().splitlines()[0] if stdout.strip() else "",
                         "exit": json.loads((folder / "exit.json").read_text()) if (folder / "exit.json").exists() else None})
        return rows
    finally:
        db.conn.close()


def points_now(work: Path, study: str) -> dict[int, int]:
    return {k: len(v) for k, v in stored_points(work, study).items()}


def setup(work: Path, name: str, text: str) -> Path:
    folder = work / name
    folder.mkdir(parents=True)
    (folder / "trial.py").write_text(TRIAL)
    (folder / "study.toml").write_text(text)
    return folder


def scenario_grow(work: Path) -> dict:
    """The runner starts with the head node alone (2 CPUs: one slot for a trial of 2 CPUs); node b
    joins mid-study, and the trials still queued spread to it."""
    folder = setup(work, "grow", study_text("grow", [1, 2, 3, 4], steps=10, pause=0.4, cpus_per_trial=2))
    proc = runner(folder, "run", "study.toml", log="runner.log")
    until(lambda: points_now(folder, "grow").get(1), "the first trial's first points stored")
    start_worker(work)
    code = proc.wait(timeout=WAIT_S)
    return {"code": code, "trials": trial_rows(folder, "grow"), "points": stored_points(folder, "grow"),
            "log": (folder / "runner.log").read_text()}


def scenario_unplaceable(work: Path) -> dict:
    """A trial asking for 3 CPUs where each node has 2 (4 in all: the runner starts it): Ray cannot
    place it. It says why it waits, and a `stop` ends it at once, through the running runner."""
    folder = setup(work, "toobig", study_text("toobig", [1], steps=5, pause=0.1, cpus_per_trial=3))
    proc = runner(folder, "run", "study.toml", log="runner.log")
    waiting = until(lambda: next((r for r in trial_rows(folder, "toobig")
                                  if r["state"] == "starting" and r["detail"]), None), "a waiting reason")
    status = subprocess.run([sys.executable, "-m", "runner", "--db", str(folder / "pb.db"), "status", "toobig"],
                            capture_output=True, text=True, cwd=folder, timeout=120)
    stop = subprocess.run([sys.executable, "-m", "runner", "--db", str(folder / "pb.db"), "stop", "toobig/1"],
                          capture_output=True, text=True, cwd=folder, timeout=120)
    try:
        code = proc.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = "timed out"
    return {"code": code, "waiting": waiting, "status": status.stdout + status.stderr,
            "stop": stop.stdout + stop.stderr, "trials": trial_rows(folder, "toobig"),
            "log": (folder / "runner.log").read_text()}


def scenario_spread(work: Path) -> dict:
    """Four trials at once over two nodes of two CPUs each."""
    folder = setup(work, "spread", study_text("spread", [1, 2, 3, 4], steps=10, pause=0.3))
    proc = runner(folder, "run", "study.toml", log="runner.log")
    code = proc.wait(timeout=WAIT_S)
    return {"code": code, "trials": trial_rows(folder, "spread"), "points": stored_points(folder, "spread"),
            "log": (folder / "runner.log").read_text(), "scratch_left": _scratch_left(work)}


def _scratch_left(work: Path) -> list[str]:
    return sorted(str(p.relative_to(work)) for tag in "ab" for p in (work / f"scratch-{tag}").glob("*/*"))


def scenario_gpus(work: Path) -> dict:
    """A node with two GPUs (declared to Ray: this machine has none, and Ray only hands out their
    numbers) joins; trials of one GPU each get one card each, named by Ray's CUDA_VISIBLE_DEVICES."""
    ray_start([f"--address={ADDRESS}", "--num-cpus=2", "--num-gpus=2", '--resources={"node_c": 1}'],
              node_env("c", work))
    try:
        folder = setup(work, "gpus", study_text("gpus", [1, 2], steps=5, pause=0.2, gpus_per_trial=1))
        proc = runner(folder, "run", "study.toml", log="runner.log")
        code = proc.wait(timeout=WAIT_S)
        return {"code": code, "trials": trial_rows(folder, "gpus"), "log": (folder / "runner.log").read_text()}
    finally:
        kill_node("c")  # the other scenarios run on nodes a and b only
        until(lambda: alive_nodes() == 2, "node c to be marked dead")


def alive_nodes() -> int:
    code = (f"import ray; ray.init(address={ADDRESS!r}, logging_level='ERROR'); "
            "print('ALIVE', sum(n['Alive'] for n in ray.nodes()))")
    done = subprocess.run([sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=120)
    # Ray may print its own warnings on stdout too (a raylet's lagging heartbeats, on a busy machine)
    counts = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("ALIVE ")]
    return int(counts[-1]) if counts else -1


def scenario_restart(work: Path) -> dict:
    """The runner killed -9 while two trials run; a new runner adopts them."""
    folder = setup(work, "restart", study_text("restart", [1, 2], steps=30, pause=0.2))
    first = runner(folder, "run", "study.toml", log="runner1.log")
    until(lambda: (p := points_now(folder, "restart")) and len(p) == 2 and min(p.values()) >= 3,
          "both trials' first points stored")
    first.kill()
    first.wait()
    time.sleep(1.5)  # the trials write on while no runner watches
    second = runner(folder, "serve", "--until-idle", "--executor", "ray", "--address", ADDRESS, log="runner2.log")
    code = second.wait(timeout=WAIT_S)
    return {"code": code, "trials": trial_rows(folder, "restart"), "points": stored_points(folder, "restart"),
            "log": (folder / "runner2.log").read_text()}


def scenario_node_death(work: Path) -> dict:
    """Node b dies while a trial runs on it: that trial is lost and, with requeue_lost, runs again."""
    folder = setup(work, "death", study_text("death", [1, 2], steps=30, pause=0.25, requeue_lost=True))
    proc = runner(folder, "run", "study.toml", log="runner.log")

    def on_b():
        return any(r["placement"] and "scratch-b" in r["placement"].get("scratch", "") and r["number"] in
                   points_now(folder, "death") for r in trial_rows(folder, "death"))
    until(on_b, "a trial running on node b with stored points")
    killed = kill_node("b")
    code = proc.wait(timeout=WAIT_S)
    return {"code": code, "killed": len(killed), "trials": trial_rows(folder, "death"),
            "points": stored_points(folder, "death"), "log": (folder / "runner.log").read_text(),
            "node_b_left": len(kill_node("b"))}


STUBBORN = """\
import signal, sys, time
from runner.report import Reporter

if sys.argv[3] == "2":  # this one ignores SIGTERM: only the SIGKILL after the grace ends it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
report = Reporter(flush_interval_s=0.05)
for step in range(1000):
    report.log(step, loss=1.0 / (step + 1))
    time.sleep(0.2)
"""


def scenario_stop(work: Path) -> dict:
    """`stop` with no runner alive: it serves the database's Ray trials through Ray, SIGTERM then SIGKILL."""
    folder = setup(work, "stopme", study_text("stopme", [1, 2], steps=1000, pause=0.2))
    (folder / "trial.py").write_text(STUBBORN)
    first = runner(folder, "run", "study.toml", log="runner1.log")
    until(lambda: (p := points_now(folder, "stopme")) and len(p) == 2 and min(p.values()) >= 2,
          "both trials' first points stored")
    first.kill()
    first.wait()
    os.environ["RAY_ADDRESS"] = ADDRESS  # where `stop` finds the cluster
    try:
        stop = runner(folder, "stop", "stopme", "--grace", "1", log="stop.log")
    finally:
        del os.environ["RAY_ADDRESS"]
    try:
        code = stop.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        stop.kill()
        code = "timed out"
    return {"code": code, "log": (folder / "stop.log").read_text(), "trials": trial_rows(folder, "stopme"),
            "scratch_left": _scratch_left(work)}


SCENARIOS = {"grow": scenario_grow, "spread": scenario_spread, "gpus": scenario_gpus, "restart": scenario_restart,
             "stop": scenario_stop, "unplaceable": scenario_unplaceable,
             "node_death": scenario_node_death}  # node b dies last


def main(which: str, work: Path) -> int:
    results: dict = {}
    try:
        start_head(work)
        chosen = list(SCENARIOS) if which == "all" else [which]
        if "grow" not in chosen:  # else node b joins in the middle of it
            start_worker(work)
        for name in chosen:
            try:
                results[name] = SCENARIOS[name](work)
            except Exception as exc:  # the other scenarios still run; the test says which failed
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
    print("RESULT " + json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
