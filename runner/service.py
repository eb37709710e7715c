"""The runner: owns a database (lease), launches queued trials, watches them, ingests metrics.

One loop, one thread. Each pass: heartbeat, commands from the store, ingest new
metric lines, sample the trials' GPU use (every few seconds), enforce stops and
timeouts, reap ended trials, fill free slots (each trial left queued is told why).
Nothing in a pass waits on a trial, so one stuck trial never stalls the others.
Between passes the runner sleeps the poll interval, or less: a trial's exit wakes it.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runner import failures, gpu_sampling, gpus, process, retention
from runner.executors import AttemptRecord, Capacity, Executor, Identity, LocalExecutor, TrialStart
from runner.ingest import TailTarget, collect, dropped_lines_note, ingested_to_the_end
from runner.process import TrialPaths
from runner.scheduler import Slot, Waiting, plan
from runner.spec import SpecError, StudySpec, epoch_steps
from runner.study_data import stored_spec
from store import capture, commands, lease, metrics, studies, trials
from store.db import connect
from store.trials import Trial, TrialState

HEARTBEAT_EVERY_S = 2.0
DEFAULT_GRACE_S = 10.0
# Test-only: seconds the runner sleeps between spawning a trial and recording it as running, to
# widen on purpose the window a kill -9 of the runner must survive (tests/fault/test_lifecycle.py).
PAUSE_BEFORE_RUNNING_ENV = "PLAYBOOK_TEST_PAUSE_BEFORE_RUNNING_S"
GPU_READ_EVERY_S = 2.0  # how often GPUs another process may be using are read again (NVML)


class LeaseLost(Exception):
    """Another runner took over this database."""


@dataclass
class LiveTrial:
    """A trial this runner is watching (started by it, or adopted after a restart)."""

    trial_id: int
    study_id: int
    attempt: int
    handle: object  # the executor's, for this attempt
    paths: TrialPaths
    slot: Slot
    deadline: float | None  # wall-clock time after which it is stopped as timed out
    oom_kills_at_start: int | None
    stop_reason: str | None = None  # 'user' | 'timeout' | 'diverged'
    term_sent_at: float | None = None
    kill_sent: bool = False
    started_at: float = 0.0  # wall clock (the GPU samples' steps count seconds from it)
    exit_fd: int | None = None  # readable once its process ends (see Runner._wait)


class Runner:
    """Runs the trials of active studies in one database until told to stop.

    gpu_indices: GPUs to schedule on (None: discover through NVML, within the runner's own
    CUDA_VISIBLE_DEVICES and `gpu_choice`, the --gpus option; raises gpus.GpuChoiceError).
    cpu_slots: concurrent CPU trials (None: the number of CPU cores).
    schedule: False for a runner that only watches and stops (the CLI's direct stop).
    use_busy_gpus: hand out GPUs another process is using (by default they wait, see gpus.busy_reason).
    nvml: the pynvml module to read GPUs through (None: the real one; tests pass a stand-in).
    executor: where trials run (None: this machine, runner.executors.LocalExecutor).
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        gpu_indices: list[gpus.GpuKey] | None = None,
        cpu_slots: int | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        poll_s: float = 0.2,
        schedule: bool = True,
        log: Callable[[str], None] = print,
        gpu_choice: str | None = None,
        use_busy_gpus: bool = False,
        nvml=None,
        executor: Executor | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self._nvml = nvml
        self.gpu_info: dict[gpus.GpuKey, gpus.Gpu] = {}  # by slot key, where NVML described them
        if gpu_indices is None and not schedule:
            gpu_indices = []  # it launches nothing: the GPUs, and how the environment names them, do not matter
        if gpu_indices is None:
            found = gpus.discover(runner_visible=os.environ.get("CUDA_VISIBLE_DEVICES"),
                                  device_order=os.environ.get("CUDA_DEVICE_ORDER"),
                                  requested=gpu_choice, nvml=nvml)
            self.gpu_info = {g.key: g for g in found}
            gpu_indices = list(self.gpu_info)
        self.use_busy_gpus = use_busy_gpus
        self.host = socket.gethostname()
        self.executor: Executor = executor or LocalExecutor(
            list(gpu_indices), cpu_slots or os.cpu_count() or 1, self.host)
        capacity = self.executor.capacity()
        self.gpus, self.cpu_slots = list(capacity.gpus), capacity.cpu_slots
        self.db = connect(self.db_path)
        self.grace_s = grace_s
        self.poll_s = poll_s
        self.schedule = schedule
        self.log = log
        self.token = uuid.uuid4().hex
        self.live: dict[int, LiveTrial] = {}
        self._specs: dict[int, StudySpec | SpecError] = {}
        self._last_heartbeat = 0.0
        self._owning = False
        self._told_bad_lines: set[int] = set()  # trials whose dropped lines the log has mentioned
        self._pause_before_running_s = _seconds_from_env(PAUSE_BEFORE_RUNNING_ENV)
        self._gpus_in_other_use: dict[gpus.GpuKey, gpus.Gpu] = {}  # slot key -> its reading, as last read
        self._gpus_read_at = float("-inf")
        self._waiting: dict[int, str] = {}  # queued trial -> why it waits, as stored on it
        # Each trial's GPU use as metrics: where NVML described the GPUs, for trials on this machine
        local = isinstance(self.executor, LocalExecutor)
        self._sampler = gpu_sampling.GpuSampler(nvml, log=log) if self.gpu_info and local else None
        self._fired: set[int] = set()  # exit descriptors that woke a wait (see _wait)

    # -- ownership ---------------------------------------------------------

    def start(self) -> None:
        """Take the lease (raises store.lease.LeaseHeld) and recover the previous runner's trials."""
        lease.acquire(self.db, self.token, os.getpid(), self.host, self._owner_alive)
        self._owning = True
        self._last_heartbeat = time.monotonic()
        trials.clear_waiting(self.db)  # what a previous runner said: its reasons are not this one's
        try:
            self._recover()
        except BaseException:  # Ctrl-C or a store error mid-recovery: do not leave the lease behind
            lease.release(self.db, self.token)
            self._owning = False
            raise

    def _owner_alive(self, held: lease.Lease) -> bool:
        if held.host != self.host:
            return True  # cannot check another machine: trust the heartbeat
        return process.is_alive(held.pid, None)

    def close(self) -> None:
        """Release the lease; trials still running keep running and are adopted next time."""
        for live in self.live.values():
            self._close_exit_fd(live)
        if self._sampler is not None:
            self._sampler.close()
        if self._owning:
            try:
                trials.clear_waiting(self.db)  # no scheduler is behind those reasons any more
            except sqlite3.Error:
                pass  # the lease still goes; a stale reason is cleared by the next runner
            lease.release(self.db, self.token)
            self._owning = False
        self.db.conn.close()

    def _recover(self) -> None:
        """Adopt trials whose process survived; settle the rest (never leave a false 'running')."""
        for trial in trials.in_states(self.db, {TrialState.STARTING, TrialState.RUNNING}):
            self._recover_trial(trial)

    def _recover_trial(self, trial: Trial) -> None:
        """One trial a previous runner left starting or running: alive, ended, or never started.

        A runner may have died anywhere between claiming the trial and recording its pid: the
        trial's lock and the shim's launch record tell what happened (see runner.process).
        """
        found = self.executor.adopt(AttemptRecord(TrialPaths(Path(trial.trial_dir)), trial.attempt,
                                                  trial.pid, trial.proc_start, trial.host))
        if found.alive:
            live = self._adopt(trial, found.identity, found.handle)
            self.live[trial.id] = live
            who = self.executor.identity(live.handle)
            self.log(f"adopted running trial {self._label(trial)} (pid {who.pid if who else 'not known yet'})")
            return
        if not found.started:
            if trials.unclaim(self.db, trial.id):
                self.log(f"trial {self._label(trial)} had not started when its runner stopped: queued again")
            return
        live = self._adopt(trial, found.identity, found.handle)
        self._kill_leftovers(live)
        if found.exit is not None:  # it ended while no runner watched: its exit file says how
            self._ingest_to_the_end(live)
            self._settle(live, found.exit.get("returncode"))
        else:
            self._lose(trial, self.executor.lost(live.handle))

    def _adopt(self, trial: Trial, identity: Identity | None, handle: object) -> LiveTrial:
        """Watch a trial another runner started, recording the identity its shim left if the
        row has none yet (that runner died before it could)."""
        if trial.state is TrialState.STARTING and identity is not None:
            trials.mark_running(self.db, trial.id, identity.pid, identity.proc_start, identity.started_at)
            trial = trials.get(self.db, trial.id)
        return self._live_from_row(trial, handle)

    def _resolve_pending(self) -> None:
        """Adopted attempts whose identity was not known yet (its launch record not written): ask again."""
        for live in self.live.values():
            if (learned := self.executor.resolve(live.handle)) is not None:
                trials.mark_running(self.db, live.trial_id, learned.pid, learned.proc_start, learned.started_at)

    def _kill_leftovers(self, live: LiveTrial) -> None:
        """Whatever an ended or lost attempt left running goes (the executor knows how)."""
        if killed := self.executor.clean_up(live.handle):
            self.log(f"trial {self._label(trials.get(self.db, live.trial_id))}: "
                     f"killed {len(killed)} process(es) it left running (pids {killed})")

    def _lose(self, trial: Trial, why: str | None = None) -> None:
        spec = self._spec(trial.study_id)
        if isinstance(spec, StudySpec) and spec.requeue_lost:
            trials.requeue(self.db, trial.id)
            self.log(f"re-queued lost trial {self._label(trial)}" + (f" ({why})" if why else ""))
        else:
            trials.finish(self.db, trial.id, TrialState.LOST,
                          detail=why or "its process was gone when a runner looked (runner or machine died)")
            self.log(f"trial {self._label(trial)} lost: {why or 'no process behind it'}")

    def _live_from_row(self, trial: Trial, handle: object) -> LiveTrial:
        spec = self._spec(trial.study_id)
        timeout = spec.timeout_s if isinstance(spec, StudySpec) else None
        started = trial.started_at or time.time()
        return LiveTrial(
            trial_id=trial.id, study_id=trial.study_id, attempt=trial.attempt, handle=handle,
            paths=TrialPaths(Path(trial.trial_dir)), slot=Slot.from_label(trial.slot),
            deadline=started + timeout if timeout else None,
            oom_kills_at_start=self.executor.oom_kills(), started_at=started,
        )

    # -- the loop ------------------------------------------------------------

    def serve(self, until: Callable[[], bool] | None = None,
              interrupted: Callable[[], bool] | None = None) -> None:
        """Run passes until `until()` is true (never, when None), or `interrupted()` is.

        `interrupted` is asked between passes, even failed ones: a signal handler sets
        what it reads, so a pass is never cut in half (a claimed trial is always recorded
        as started). A store error (locked past the busy timeout, disk full) skips the pass
        and is retried: the trials keep writing their files meanwhile, and the
        offsets make the next good pass pick up everything they wrote.
        """
        reported = False  # log a run of failures once, not every second
        while True:
            if interrupted is not None and interrupted():
                return
            try:
                self.run_pass()
                reported = False
            except sqlite3.OperationalError as exc:
                if not reported:
                    reported = True
                    hint = (" (disk full, or a file size limit?)"
                            if getattr(exc, "sqlite_errorname", "") in ("SQLITE_FULL", "SQLITE_IOERR_WRITE")
                            else "")
                    self.log(f"store error, retrying: {exc}{hint}")
                time.sleep(1.0)
                continue
            if until is not None and until():
                return
            self._wait(self.poll_s)

    def _wait(self, timeout_s: float) -> None:
        """Sleep until the next pass: `timeout_s`, or less as soon as a trial's process ends, so its
        slot is refilled at once (the executor's exit descriptors: pidfds for local trials).

        A descriptor wakes one wait only: the trial is reaped in the pass it woke, and one that
        is not (its end not recorded yet) is then polled as before rather than spun on.
        """
        fds = [fd for live in self.live.values()
               if (fd := self._exit_fd(live)) is not None and fd not in self._fired]
        if not fds:
            time.sleep(timeout_s)
            return
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        self._fired.update(fd for fd, _ in poller.poll(timeout_s * 1000))

    def _exit_fd(self, live: LiveTrial) -> int | None:
        if live.exit_fd is None and (opener := getattr(self.executor, "exit_fd", None)) is not None:
            live.exit_fd = opener(live.handle)
        return live.exit_fd

    def _close_exit_fd(self, live: LiveTrial) -> None:
        if live.exit_fd is not None:
            self._fired.discard(live.exit_fd)
            os.close(live.exit_fd)
            live.exit_fd = None

    def idle(self) -> bool:
        """Nothing running and nothing queued in an active study."""
        if self.live:
            return False
        if not self.schedule:
            return True
        return not trials.queued_in_active_studies(self.db)

    def run_pass(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_EVERY_S:
            if not lease.heartbeat(self.db, self.token):
                self._owning = False
                raise LeaseLost("another runner took over this database")
            self._last_heartbeat = now
        self._handle_commands()
        self._resolve_pending()
        self._ingest(list(self.live.values()))
        self._sample_gpus()
        self._check_divergence_and_timeouts()
        self._escalate_stops()
        self._reap()
        if self.schedule:
            self._launch_queued()
            self._retire_finished_studies()

    def stop_all(self, reason: str = "user") -> None:
        """Ask every live trial to stop (SIGTERM now, SIGKILL after the grace period)."""
        for live in self.live.values():
            live.stop_reason = live.stop_reason or reason

    def live_ids(self, study_id: int | None = None) -> set[int]:
        """Trials this runner watches (of one study, when given)."""
        return {t.trial_id for t in self.live.values() if study_id is None or t.study_id == study_id}

    # -- commands ------------------------------------------------------------

    def _handle_commands(self) -> None:
        for cmd in commands.take_pending(self.db):
            if cmd.kind == "launch_study" and cmd.study_id is not None:
                studies.set_active(self.db, cmd.study_id, True)
                result = "launched"
            elif cmd.kind == "stop_study" and cmd.study_id is not None:
                result = self.stop_study(cmd.study_id)
            elif cmd.kind == "stop_trial" and cmd.trial_id is not None:
                result = self.stop_trial(cmd.trial_id)
            elif cmd.kind == "requeue_trial" and cmd.trial_id is not None:
                result = "requeued" if trials.requeue_ended(self.db, cmd.trial_id) else "not stopped, failed or lost"
            else:
                result = "ignored: incomplete command"
            commands.record_result(self.db, cmd.id, result)

    def stop_trial(self, trial_id: int) -> str:
        if trial_id in self.live:
            self.live[trial_id].stop_reason = self.live[trial_id].stop_reason or "user"
            return "stopping"
        trial = trials.get(self.db, trial_id)
        if trial and trial.state is TrialState.QUEUED:
            trials.finish(self.db, trial_id, TrialState.STOPPED, detail="stopped before it started")
            return "stopped (was queued)"
        return "not running"

    def stop_study(self, study_id: int) -> str:
        """Stop its running trials; its queued trials stay queued until it is launched again."""
        studies.set_active(self.db, study_id, False)
        n = 0
        for live in self.live.values():
            if live.study_id == study_id:
                live.stop_reason = live.stop_reason or "user"
                n += 1
        return f"stopping {n} running trial(s); queued trials wait for the next launch"

    # -- watching ------------------------------------------------------------

    def _spec(self, study_id: int) -> StudySpec | SpecError:
        if study_id not in self._specs:
            study = studies.get(self.db, study_id)
            try:
                self._specs[study_id] = stored_spec(study)
            except SpecError as exc:
                self._specs[study_id] = exc
        return self._specs[study_id]

    def _ingest_to_the_end(self, live: LiveTrial) -> None:
        """Everything an ended trial wrote, however far ingest was behind (a pass reads at most
        MAX_BYTES_PER_PASS), and its unfinished last line counted as bad."""
        while self._ingest([live], final=True):
            pass

    def _ingest(self, live: list[LiveTrial], *, final: bool = False) -> bool:
        """One bounded ingest pass over `live`; True if it stored anything."""
        if not live:
            return False
        targets, modes = [], {}
        rows = {t.id: t for t in trials.in_states(self.db, {TrialState.STARTING, TrialState.RUNNING})}
        for lt in live:
            trial = rows.get(lt.trial_id)
            spec = self._spec(lt.study_id)
            if trial is None or not isinstance(spec, StudySpec):
                continue
            modes[trial.id] = spec.objective_mode
            targets.append(TailTarget(
                trial_id=trial.id, metrics_path=str(lt.paths.metrics),
                stdout_path=str(lt.paths.stdout), metrics_offset=trial.metrics_offset,
                stdout_offset=trial.stdout_offset, objective=spec.objective_metric,
                mode=spec.objective_mode, patterns=spec.metric_patterns,
                capture_json=capture.load(self.db, trial.id) if spec.metric_patterns else None,
                epoch_steps=epoch_steps(spec),
            ))
        now = time.time()
        updates = [u for u in (collect(t, now, final=final) for t in targets) if not u.is_empty()]
        if updates:
            metrics.write_updates(self.db, updates, modes)
            retention.apply_after_ingest(self.db, [u.trial_id for u in updates if u.checkpoints],
                                         self._spec, self.log)  # keep_checkpoints: the N best files stay
        for u in updates:
            if u.bad_lines and u.trial_id not in self._told_bad_lines:
                self._told_bad_lines.add(u.trial_id)
                self.log(f"trial {self._label(rows.get(u.trial_id))}: {dropped_lines_note(u)}")
        return bool(updates)

    def _check_divergence_and_timeouts(self) -> None:
        now = time.time()
        diverged = trials.diverged_running(self.db)
        for live in self.live.values():
            if live.stop_reason:
                continue
            spec = self._spec(live.study_id)
            if live.trial_id in diverged and isinstance(spec, StudySpec) and spec.stop_on_divergence:
                live.stop_reason = "diverged"
            elif live.deadline is not None and now > live.deadline:
                live.stop_reason = "timeout"

    def _escalate_stops(self) -> None:
        now = time.monotonic()
        for live in self.live.values():
            if not live.stop_reason or not self.executor.signalable(live.handle):
                continue
            if live.term_sent_at is None:
                self.executor.signal(live.handle, signal.SIGTERM)
                live.term_sent_at = now
            elif not live.kill_sent and now - live.term_sent_at >= self.grace_s:
                self.executor.signal(live.handle, signal.SIGKILL)
                live.kill_sent = True

    def _reap(self) -> None:
        for live in list(self.live.values()):
            ended, returncode = self.executor.poll(live.handle)
            if not ended:
                continue
            self._kill_leftovers(live)  # stragglers (children the command forked and left behind)
            self._ingest_to_the_end(live)  # the lines written just before the end
            if (why := self.executor.lost(live.handle)) is not None:  # its machine died under it
                self._lose(trials.get(self.db, live.trial_id), why)
            else:
                self._settle(live, returncode)
            self._close_exit_fd(live)
            del self.live[live.trial_id]

    def _settle(self, live: LiveTrial, returncode: int | None) -> None:
        ingested_to_the_end(self.db, live.trial_id, live.paths.metrics, self._spec(live.study_id), self.log)
        trial = trials.get(self.db, live.trial_id)
        oom_now = self.executor.oom_kills()
        spec = self._spec(live.study_id)
        outcome = failures.classify(
            returncode,
            stop_reason=live.stop_reason,
            diverged=bool(trial and trial.diverged),
            stderr_tail=process.stderr_tail(live.paths),
            host_oom_kill=(oom_now is not None and live.oom_kills_at_start is not None
                           and oom_now > live.oom_kills_at_start),
            timeout_s=spec.timeout_s if isinstance(spec, StudySpec) else None,
            missing_objective=(spec.objective_metric if isinstance(spec, StudySpec) and trial
                               and trial.best_value is None else None),
            reported=tuple(n for n in metrics.metric_names(self.db, live.trial_id)
                           if n not in gpu_sampling.SERIES),  # what the trial reported, not the runner
        )
        trials.finish(self.db, live.trial_id, outcome.state, reason=outcome.reason,
                      detail=outcome.detail, feasible=outcome.feasible, exit_code=returncode)
        what = outcome.state.value + (f" ({outcome.reason}: {outcome.detail})" if outcome.reason else "")
        self.log(f"trial {self._label(trial)} {what}")
        if outcome.state is TrialState.FAILED and isinstance(spec, StudySpec) and spec.halt_on_failure:
            self._halt_queued(live.study_id, f"not run: trial {trial.number} failed ({outcome.reason})")

    def _halt_queued(self, study_id: int, why: str) -> None:
        """Stop a study's queued trials; settled before this pass launches anything, so none slips through."""
        for t in trials.in_states(self.db, {TrialState.QUEUED}, study_id=study_id):
            trials.finish(self.db, t.id, TrialState.STOPPED, detail=why)

    # -- launching -----------------------------------------------------------

    def _launch_queued(self) -> None:
        from runner import bayes  # optuna and scipy load only where a runner schedules

        bayes.top_up_active(self.db, self._spec, self.log)  # bayes studies: the next points for free slots
        capacity = self._follow_capacity()
        queue: list[Waiting] = []
        for trial_id, study_id in trials.queued_in_active_studies(self.db):
            spec = self._spec(study_id)
            if isinstance(spec, SpecError):
                trials.finish(self.db, trial_id, TrialState.FAILED, reason="config",
                              detail=str(spec), feasible=None)
                continue
            queue.append(Waiting(trial_id, study_id, spec.gpus_per_trial, spec.concurrency, spec.cpus_per_trial))
        unplaced = self._unplaced()
        if not queue:
            self._say_why_waiting(unplaced)
            return
        running: dict[int, int] = {}
        for live in self.live.values():
            running[live.study_id] = running.get(live.study_id, 0) + 1
        ours = {g for lt in self.live.values() for g in lt.slot.gpus}
        others = self._gpus_used_by_others(ours, queue)
        planned = plan(
            queue, all_gpus=self.gpus,
            busy_gpus=ours | others.keys(),
            cpu_slots=self.cpu_slots,
            busy_cpu=sum(self._cpus(lt.study_id) for lt in self.live.values() if not lt.slot.gpus),
            running_per_study=running,
            others=others,
            can_grow=capacity.can_grow,
        )
        for trial_id, why in planned.impossible:
            trials.finish(self.db, trial_id, TrialState.FAILED, reason="config", detail=why)
        self._say_why_waiting({**planned.waiting, **unplaced})
        for launch in planned.launches:
            self._launch(launch.trial_id, launch.slot)

    def _follow_capacity(self) -> Capacity:
        """The executor's slots now (a cluster's change as nodes join or die); a change is logged.
        Slots held by live trials stay theirs: the plan counts them busy, whatever the new list."""
        capacity = self.executor.capacity()
        gpus_now = list(capacity.gpus)
        if (gpus_now, capacity.cpu_slots) != (self.gpus, self.cpu_slots):
            self.log(f"{self.executor.name} capacity now {capacity.cpu_slots} CPU slot(s), "
                     f"{len(gpus_now)} GPU slot(s) (was {self.cpu_slots}, {len(self.gpus)})")
            self.gpus, self.cpu_slots = gpus_now, capacity.cpu_slots
        return capacity

    def _cpus(self, study_id: int) -> float:
        spec = self._spec(study_id)
        return spec.cpus_per_trial if isinstance(spec, StudySpec) else 1

    def _unplaced(self) -> dict[int, str]:
        """Started trials their executor has not placed yet (no node can hold them now), and why."""
        why_waiting = getattr(self.executor, "waiting", None)
        if why_waiting is None:
            return {}
        return {lt.trial_id: why for lt in self.live.values()
                if not lt.stop_reason and (why := why_waiting(lt.handle)) is not None}

    def _say_why_waiting(self, waiting: dict[int, str]) -> None:
        """Store why each queued trial waits (status and the TUI show it); only what changed is written."""
        changed: dict[int, str | None] = {t: why for t, why in waiting.items() if self._waiting.get(t) != why}
        changed.update({t: None for t in self._waiting if t not in waiting})
        trials.set_waiting(self.db, changed)
        self._waiting = dict(waiting)

    def _gpus_used_by_others(self, ours: set[gpus.GpuKey], queue: list[Waiting]) -> dict[gpus.GpuKey, str]:
        """GPUs none of our trials holds that another process is filling (see gpus.busy_reason),
        with a short why (gpus.busy_note) for the trials that wait.

        Read through NVML at most every GPU_READ_EVERY_S, and only while a waiting trial wants a
        GPU that looks free; a change is logged.
        """
        free = [g for g in self.gpus if g not in ours]
        if self.use_busy_gpus or not self.gpu_info or not free or not any(w.gpus_per_trial for w in queue):
            return {}
        now = time.monotonic()
        if now - self._gpus_read_at >= GPU_READ_EVERY_S:
            self._gpus_read_at = now
            readings = gpus.current(free, nvml=self._nvml)
            others = {k: g for k, g in readings.items() if gpus.busy_reason(g)}
            for k in sorted(others.keys() - self._gpus_in_other_use.keys(), key=gpus.key_order):
                self.log(f"{gpus.busy_reason(others[k])}; trials wait for it "
                         "(serve/run --use-busy-gpus to use it anyway)")
            for k in sorted(self._gpus_in_other_use.keys() - others.keys() - ours, key=gpus.key_order):
                self.log(f"{self.gpu_info[k].described} is free again")
            self._gpus_in_other_use = others
        return {k: gpus.busy_note(g) or "" for k, g in self._gpus_in_other_use.items() if k in free}

    def _sample_gpus(self) -> None:
        """Every few seconds, each GPU trial's utilisation and memory, stored as its metrics
        (runner.gpu_sampling); a no-op without NVML, and never an error of the pass."""
        if self._sampler is None or not self._sampler.due(time.monotonic()):
            return
        watched = []
        for live in self.live.values():
            if live.slot.gpus and all(g in self.gpu_info for g in live.slot.gpus):
                who = self.executor.identity(live.handle)
                watched.append(gpu_sampling.Watched(live.trial_id, live.slot.gpus, who.pid if who else None,
                                                    live.started_at))
        updates = []
        for sample in self._sampler.sample(watched):
            u = metrics.TrialUpdate(trial_id=sample.trial_id)
            u.order_checked.update(gpu_sampling.SERIES)  # the runner's samples are never the trial's fault
            if sample.util_pct is not None:
                u.add(gpu_sampling.GPU_UTIL, sample.step, sample.util_pct, sample.wall)
            if sample.mem_mib is not None:
                u.add(gpu_sampling.GPU_MEM, sample.step, sample.mem_mib, sample.wall)
            updates.append(u)
        if updates:
            metrics.write_updates(self.db, updates, {})

    def _retire_finished_studies(self) -> None:
        """A launched study with nothing left queued or running is no longer active."""
        live_studies = {lt.study_id for lt in self.live.values()}
        for study_id in studies.active_without_work(self.db):
            if study_id not in live_studies:
                studies.set_active(self.db, study_id, False)

    def _launch(self, trial_id: int, slot: Slot) -> None:
        if not trials.claim(self.db, trial_id, slot.label, self.host):
            return
        trial = trials.get(self.db, trial_id)
        spec = self._spec(trial.study_id)
        paths = TrialPaths(Path(trial.trial_dir))
        cards = tuple(self.gpu_info[g] for g in slot.gpus if g in self.gpu_info)
        if cards and len(cards) == len(slot.gpus):
            slot = Slot(slot.gpus, uuids=tuple(g.uuid for g in cards))
        elif any(isinstance(g, str) for g in slot.gpus):  # a MIG instance is named by its UUID only
            trials.finish(self.db, trial_id, TrialState.FAILED, reason="exit", feasible=None,
                          detail=f"cannot start: no UUID known for MIG slot {slot.label}")
            return
        env = {
            **slot.cuda_env(),
            "PLAYBOOK_MAX_TRAIN_STEPS": str(spec.max_train_steps),
            "PLAYBOOK_TRIAL_NUMBER": str(trial.number),
            "PLAYBOOK_STUDY": spec.name,
        }
        try:
            handle = self.executor.start(TrialStart(trial.argv, paths, spec.workdir, trial.params, env,
                                                    trial.attempt, slot, cards, spec.cpus_per_trial))
        except OSError as exc:
            trials.finish(self.db, trial_id, TrialState.FAILED, reason="exit",
                          detail=f"cannot start: {exc}", feasible=None)
            return
        if self._pause_before_running_s:
            time.sleep(self._pause_before_running_s)  # test-only (see PAUSE_BEFORE_RUNNING_ENV)
        who = self.executor.identity(handle)  # None: 'starting' until a remote node says (resolve)
        if who is not None:
            trials.mark_running(self.db, trial_id, who.pid, who.proc_start)
        self.live[trial_id] = LiveTrial(
            trial_id=trial_id, study_id=trial.study_id, attempt=trial.attempt, handle=handle, paths=paths,
            slot=slot,
            deadline=time.time() + spec.timeout_s if spec.timeout_s else None,
            oom_kills_at_start=self.executor.oom_kills(), started_at=time.time(),
        )
        where = " ".join(f"{g.name} {g.uuid}" for g in cards)
        self.log(f"trial {self._label(trial)} started on {slot.label}{f' ({where})' if where else ''} "
                 f"(pid {who.pid if who else 'not known yet'})")

    def _label(self, trial: Trial | None) -> str:
        if trial is None:
            return "?"
        spec = self._spec(trial.study_id)
        name = spec.name if isinstance(spec, StudySpec) else f"study {trial.study_id}"
        return f"{name}/{trial.number}"


def _seconds_from_env(name: str) -> float:
    try:
        return max(0.0, float(os.environ.get(name) or 0))
    except ValueError:
        return 0.0
