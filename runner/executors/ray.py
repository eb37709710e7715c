"""Trials on a Ray cluster: one named, detached actor per attempt (runner.executors.ray_actor).

The actor asks Ray for `num_gpus = gpus_per_trial` (Ray picks the cards and sets
CUDA_VISIBLE_DEVICES) and the study's cpus_per_trial CPUs, and runs the command under the shim
in a scratch folder on its node. Each runner pass takes the actor's answer to "the bytes of
metrics.jsonl, stdout.log and stderr.log past what the runner's trial folder already holds";
runner.executors.shipping appends them there and finally writes the attempt's exit record:
ingest reads the runner's trial folder as it does for local trials, and no shared filesystem
is needed. The store stays on the runner.

Actors are named after the trial folder and the attempt, in a namespace per database, and
outlive the runner: a restarted runner finds each running attempt by its name (adopt) and
goes on from the sizes of the files it already has, so nothing is shipped twice or run twice.
An actor whose node died ends its attempt `lost` (re-queued when the study says
requeue_lost). Ray is imported only here, when a runner is asked for this executor.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import process
from runner.executors.base import Adopted, AttemptRecord, Capacity, Identity, TrialStart
from runner.executors.ray_actor import TrialActor
from runner.executors.shipping import Shipment, append, write_json
from runner.process import TrialPaths

CLOSE_WAIT_S = 5.0  # how long clean-up waits for an actor to kill its attempt and remove its scratch folder
CUDA_KEYS = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
REACH_TIMEOUT_S = 5.0
READ_WAIT_S = 1.0  # a read waits this long on the node for new bytes: ready as soon as the trial writes
# A read may be waiting when a signal or the clean-up comes: the actor takes them on other threads.
ACTOR_THREADS = 4
MAX_FAILED_READS = 5
NODES_EVERY_S = 3.0  # how often the cluster's nodes are read again (capacity, why a trial is not placed)
PLACE_GRACE_S = 5.0  # an actor not placed after this long is said to wait for a node (creating one takes ~1 s)


class RayUnavailable(Exception):
    """Ray is not installed, or the cluster cannot be reached."""


def namespace_for(db_path: str | Path) -> str:
    """One Ray namespace per database: two runners of different databases never see each other's actors."""
    return "playbook-" + hashlib.sha1(str(Path(db_path).resolve()).encode()).hexdigest()[:12]


def actor_name(paths: TrialPaths, attempt: int) -> str:
    return f"trial-{hashlib.sha1(str(paths.root.resolve()).encode()).hexdigest()[:16]}-a{attempt}"


def _check_reachable(address: str) -> None:
    """A HOST:PORT with nothing listening fails here in seconds (ray.init would retry for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # 'auto', or a ray:// client address: ray.init says what is wrong
    try:
        socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} "
                             "(start one with `ray start --head`, see README: Running on a cluster)") from None


@dataclass
class RayHandle:
    """One attempt on the cluster, as this runner follows it."""

    paths: TrialPaths
    attempt: int
    actor: Any
    shipment: Shipment  # what the runner's trial folder holds of its files (runner.executors.shipping)
    pending: Any = None  # the read in flight
    identity: Identity | None = None
    identity_told: bool = False
    lost: str | None = None  # why, once its actor or node is gone
    failed_reads: int = 0  # in a row
    asks: dict[str, float] | None = None  # what its actor asked Ray for: {"CPU": n, "GPU": n}
    asked_at: float = 0.0  # time.monotonic() when this runner started (or adopted) it

    @property
    def placed(self) -> bool:
        return self.shipment.placed

    @property
    def exit(self) -> dict | None:
        return self.shipment.exit


class RayExecutor:
    name = "ray"

    def __init__(self, db_path: str | Path, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise RayUnavailable("the ray executor needs Ray: pip install 'playbook-tui[ray]'") from exc
        self._ray = ray
        self.address = address or os.environ.get("RAY_ADDRESS") or "auto"
        self.namespace = namespace_for(db_path)
        self._nodes: list[dict[str, float]] | None = None  # the alive nodes' resources, as last read
        self._nodes_at = float("-inf")
        _check_reachable(self.address)
        if not ray.is_initialized():  # else a second runner in this process (`run` taking over)
            try:
                ray.init(address=self.address, namespace=self.namespace, log_to_driver=False,
                         logging_level=logging.WARNING, configure_logging=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RayUnavailable(f"cannot reach the Ray cluster at {self.address}: {exc}") from None
        self._actor = ray.remote(TrialActor)  # every call names its namespace: the connection's may differ

    def capacity(self) -> Capacity:
        """The alive nodes' CPUs (one slot each: a trial takes its study's cpus_per_trial of them)
        and GPUs, read again every NODES_EVERY_S: nodes that join are used, dead ones' go."""
        nodes = self._alive_nodes()
        cpus = sum(n.get("CPU", 0) for n in nodes)
        gpus = sum(n.get("GPU", 0) for n in nodes)
        return Capacity(tuple(range(int(gpus))), int(cpus), can_grow=True)

    def _alive_nodes(self) -> list[dict[str, float]]:
        now = time.monotonic()
        if self._nodes is None or now - self._nodes_at >= NODES_EVERY_S:
            try:
                self._nodes = [dict(n.get("Resources") or {}) for n in self._ray.nodes() if n.get("Alive")]
            except Exception:  # the GCS not answering this once: the last reading stands
                if self._nodes is None:
                    raise
            self._nodes_at = now
        return self._nodes

    def waiting(self, handle: RayHandle) -> str | None:
        """Why an attempt Ray has not placed yet waits (None: placed, ended, or only just asked)."""
        if handle.placed or handle.exit is not None or handle.lost is not None or not handle.asks:
            return None
        if time.monotonic() - handle.asked_at < PLACE_GRACE_S:
            return None
        return why_unplaced(handle.asks, self._alive_nodes())

    def start(self, request: TrialStart) -> RayHandle:
        paths = request.paths
        paths.root.mkdir(parents=True, exist_ok=True)
        process._archive_previous_attempt(paths)  # a re-run starts clean, as a local one does
        write_json(paths.params, request.params)
        write_json(paths.command, {"argv": request.argv, "cwd": str(request.cwd)})
        env = dict(request.env)
        if request.slot.gpus:  # the runner's slot numbers are not the node's cards: Ray's are
            env = {k: v for k, v in env.items() if k not in CUDA_KEYS}
        # Where it runs is known once its node answers; until then the record says "on Ray", so a
        # runner started without --executor ray knows not to take the trial for lost (runner.cli).
        asks = {"CPU": request.cpus, "GPU": len(request.slot.gpus)}
        write_json(paths.placement, {"executor": self.name, "attempt": request.attempt, "node_id": None,
                                      "asks": asks})
        name = actor_name(paths, request.attempt)
        try:
            actor = self._actor.options(
                name=name, namespace=self.namespace, lifetime="detached", max_restarts=0,
                max_concurrency=ACTOR_THREADS,
                num_cpus=asks["CPU"], num_gpus=asks["GPU"], scheduling_strategy="SPREAD",
            ).remote(name, list(request.argv), str(request.cwd), request.params, env, request.attempt)
        except ValueError as exc:  # a live actor has this attempt's name
            raise OSError(f"cannot start on the Ray cluster: {exc}") from None
        return RayHandle(paths, request.attempt, actor, Shipment(paths, request.attempt), asks=asks,
                         asked_at=time.monotonic())

    def identity(self, handle: RayHandle) -> Identity | None:
        return handle.identity

    def resolve(self, handle: RayHandle) -> Identity | None:
        if handle.identity is None or handle.identity_told:
            return None
        handle.identity_told = True
        return handle.identity

    def poll(self, handle: RayHandle) -> tuple[bool, int | None]:
        if handle.exit is None and handle.lost is None:
            handle.shipment.pump(lambda positions: self._reply(handle, positions))
            if handle.identity is None and (launched := handle.shipment.launch) is not None:
                handle.identity = Identity(launched["pid"], launched.get("proc_start"), launched.get("started_at"))
        if handle.exit is not None:
            return True, handle.exit.get("returncode")
        if handle.lost is not None:
            return True, None
        if handle.pending is None:  # the next read, ready by the next pass
            handle.pending = handle.actor.read.remote(dict(handle.shipment.positions), READ_WAIT_S)
        return False, None

    def _reply(self, handle: RayHandle, positions: dict[str, int]) -> dict | None:
        """The actor's answer to the read in flight, once it is ready (None: not yet, or it failed)."""
        if handle.pending is None:
            handle.pending = handle.actor.read.remote(positions, READ_WAIT_S)
        ready, _ = self._ray.wait([handle.pending], timeout=0)
        if not ready:
            return None
        ref, handle.pending = handle.pending, None
        try:
            reply = self._ray.get(ref)
        except self._ray.exceptions.ActorUnavailableError:
            return None  # a hiccup (its node restarting a connection): asked again
        except self._ray.exceptions.RayActorError as exc:
            self._actor_gone(handle, exc)
            return None
        except self._ray.exceptions.RayError as exc:  # the read itself failed on the node: try again
            handle.failed_reads += 1
            if handle.failed_reads >= MAX_FAILED_READS:  # it will not get better: give the attempt up
                handle.lost = f"its node cannot read its files: {str(exc).splitlines()[-1]}"
            return None
        handle.failed_reads = 0
        return reply

    def _actor_gone(self, handle: RayHandle, exc: Exception) -> None:
        if getattr(exc, "actor_init_failed", False):  # e.g. the study folder is not on that node
            message = f"playbook: cannot start on the Ray cluster: {exc}\n"
            append(handle.paths.stderr, message.encode(), rotate=True)
            handle.shipment.end({"returncode": 127, "spawn_error": message.strip(), "attempt": handle.attempt})
            return
        handle.lost = f"its Ray actor is gone (node died or actor killed): {str(exc).splitlines()[0]}"

    def signalable(self, handle: RayHandle) -> bool:
        return True  # the actor takes the signal once it has started the command

    def signal(self, handle: RayHandle, sig: int) -> bool:
        if handle.exit is not None or handle.lost is not None:
            return False
        if not handle.placed and not self._placed_now(handle):
            self._drop_unplaced(handle, sig)
            return True
        handle.actor.signal.remote(int(sig))  # not waited for: the pass goes on
        return True

    def _placed_now(self, handle: RayHandle) -> bool:
        """Whether the actor answered by now (its read is ready: it runs on a node); its reply is taken."""
        if handle.pending is None or not self._ray.wait([handle.pending], timeout=0)[0]:
            return False
        self.poll(handle)
        return handle.placed or handle.exit is not None

    def _drop_unplaced(self, handle: RayHandle, sig: int) -> None:
        """A stop of an attempt Ray never placed: its pending actor goes now (a signal would wait
        behind its creation), and it ends as killed by that signal, having run nothing."""
        try:
            self._ray.kill(handle.actor, no_restart=True)
        except Exception:
            pass
        handle.pending = None
        handle.shipment.end({"returncode": -int(sig), "ended_at": time.time(), "attempt": handle.attempt,
                             "never_placed": True})

    def clean_up(self, handle: RayHandle) -> list[int]:
        """The attempt ended (or was lost): its actor kills what is left, removes its scratch
        folder, and goes, giving back its CPU and GPUs."""
        killed: list[int] = []
        if handle.actor is None:
            return killed
        if handle.lost is None and handle.placed:  # an actor never placed has nothing to close
            try:
                killed = self._ray.get(handle.actor.close.remote(), timeout=CLOSE_WAIT_S)
            except Exception:  # gone already, or slow: the kill below ends it either way
                pass
        try:
            self._ray.kill(handle.actor, no_restart=True)
        except Exception:
            pass
        return killed

    def adopt(self, record: AttemptRecord) -> Adopted:
        paths = record.paths
        ended = process.read_exit(paths, record.attempt)
        launched = process.read_launch(paths, record.attempt)
        identity = (Identity(launched["pid"], launched.get("proc_start"), launched.get("started_at"))
                    if launched is not None else None)
        try:
            actor = self._ray.get_actor(actor_name(paths, record.attempt), namespace=self.namespace)
        except ValueError:
            actor = None
        placement = process.read_placement(paths) or {}
        placed = bool(placement.get("node_id"))
        shipment = Shipment.resume(paths, record.attempt, launch=launched, placed=placed, exit=ended)
        handle = RayHandle(paths, record.attempt, actor, shipment, identity=identity,
                           identity_told=identity is not None, asks=placement.get("asks"), asked_at=time.monotonic())
        if actor is not None and ended is None:
            return Adopted(handle, alive=True, started=True, exit=None, identity=identity)
        if actor is None and ended is None:
            handle.lost = "its Ray actor was gone when the runner came back"
        started = launched is not None or ended is not None or placed
        return Adopted(handle, alive=False, started=started, exit=ended, identity=identity)

    def lost(self, handle: RayHandle) -> str | None:
        return handle.lost

    def oom_kills(self) -> int | None:
        return None


def why_unplaced(asks: dict[str, float], nodes: list[dict[str, float]]) -> str:
    """Why Ray has not placed an actor asking for `asks`, given the alive nodes' resources."""
    kinds = [k for k in ("CPU", "GPU") if asks.get(k)]
    wanted = _resources(asks, kinds)
    if not any(all(node.get(k, 0) >= v for k, v in asks.items()) for node in nodes):
        largest = max(nodes, key=lambda n: tuple(n.get(k, 0) for k in reversed(kinds)), default={})
        has = _resources(largest, kinds) if nodes else "no node at all"
        return (f"waiting for a node: it asks for {wanted}, no Ray node has that much "
                f"(the largest has {has}); add a node, or lower cpus_per_trial / gpus_per_trial")
    return f"waiting for a node: it asks for {wanted}; the Ray nodes that could hold it have none free now"


def _resources(amounts: dict[str, float], kinds: list[str]) -> str:
    return " and ".join(f"{(v := amounts.get(k, 0)):g} {k}" + ("s" if v != 1 else "") for k in kinds)
