"""The node side of a Ray trial: one actor per attempt runs the command under the shim in a
node-local scratch folder and hands back what the attempt wrote, a byte range at a time.

Nothing here assumes the runner's trial folder is reachable from the node: the runner asks
`read` for the bytes past what it already has and writes them into its own trial folder
(runner.executors.shipping, both halves). Imported on the cluster's nodes (standard library and runner.process
only); the ray module itself is imported lazily, inside the actor.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

from runner import process
from runner.executors.shipping import has_news, read_streams
from runner.process import TrialPaths

SCRATCH_ENV = "PLAYBOOK_RAY_SCRATCH"  # where a node keeps its trials' files (default: $TMPDIR/playbook-ray)
NEWS_POLL_S = 0.02  # how often a waiting read looks at the files' sizes


def scratch_root() -> Path:
    return Path(os.environ.get(SCRATCH_ENV) or Path(tempfile.gettempdir(), "playbook-ray"))


class TrialActor:
    """One attempt of one trial on a node (wrapped by ray.remote in runner.executors.ray)."""

    def __init__(self, folder: str, argv: list[str], cwd: str, params: dict, env: dict[str, str],
                 attempt: int) -> None:
        import ray

        if not Path(cwd).is_dir():
            raise FileNotFoundError(f"the study folder {cwd} does not exist on node {socket.gethostname()}: "
                                    "every node needs the study's code (and Python environment) at the same path")
        self.paths = TrialPaths(scratch_root() / folder)
        self.attempt = attempt
        context = ray.get_runtime_context()
        self.placement = {
            "executor": "ray", "node_id": context.get_node_id(), "ip": ray.util.get_node_ip_address(),
            "host": socket.gethostname(), "attempt": attempt,
            "gpus": [str(g) for g in context.get_accelerator_ids().get("GPU", [])],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "scratch": str(self.paths.root),
        }
        env = dict(env)
        if self.placement["gpus"]:  # the GPUs Ray gave this actor, not the runner's slot numbers
            env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        self.popen = process.spawn(argv, paths=self.paths, cwd=Path(cwd), params=params, extra_env=env,
                                   attempt=attempt)

    def read(self, positions: dict[str, int], wait_s: float = 0.0) -> dict:
        """What the attempt wrote past `positions` (by stream), its launch record, where it runs, and
        its exit record once every byte before it has been handed out.

        With `wait_s`, it first waits that long for something new (a long poll): the reply is ready
        as soon as the trial writes, and the runner takes it on its next pass.
        """
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not has_news(self.paths, positions):
            time.sleep(NEWS_POLL_S)
        shim_code = self.popen.poll()  # the shim is this process's child: reaped here
        ended = process.read_exit(self.paths)  # read before the streams: nothing is written after it
        if ended is None and shim_code is not None:  # the shim itself was killed (SIGKILL after the grace)
            ended = {"returncode": shim_code, "ended_at": time.time(), "attempt": self.attempt}
        chunks, more = read_streams(self.paths, positions)
        return {"chunks": chunks, "launch": process.read_launch(self.paths), "placement": self.placement,
                "exit": None if more else ended}

    def signal(self, sig: int) -> bool:
        return process.signal_group(self.popen.pid, sig)

    def close(self) -> list[int]:
        """Kill what is left of the attempt and remove its scratch folder (the runner has its files)."""
        killed = []
        if self.popen.poll() is None and process.signal_group(self.popen.pid, signal.SIGKILL):
            killed.append(self.popen.pid)
        if (launched := process.read_launch(self.paths)) is not None:
            killed += process.kill_attempt(launched, self.paths)
        shutil.rmtree(self.paths.root, ignore_errors=True)
        return killed
