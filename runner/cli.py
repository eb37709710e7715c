"""playbook-runner: run, watch, stop and export studies without the TUI.

    playbook-runner [--db PATH] run STUDY.toml [--detach]
    playbook-runner [--db PATH] serve [--until-idle] [--detach]
    playbook-runner [--db PATH] status [STUDY] [--json] [--all]
    playbook-runner [--db PATH] watch STUDY
    playbook-runner [--db PATH] stop STUDY|STUDY/N|TRIAL_ID
    playbook-runner [--db PATH] add-trials STUDY SAMPLES
    playbook-runner [--db PATH] export STUDY --format csv|json
    playbook-runner [--db PATH] analyze STUDY [--json]
    playbook-runner [--db PATH] compare A B [--json]      (a study is NAME, its latest version, or NAME@N)
    playbook-runner [--db PATH] probe-batch STUDY | --command CMD [--start 8 --cap 4096 --steps 30]
    playbook-runner [--db PATH] warmup STUDY [--low --high --points --early-check --also-100x]
    playbook-runner [--db PATH] decide BASELINE CANDIDATE [--seeds 5 --complexity none|some|"a lot"]
    playbook-runner [--db PATH] length STUDY [--target LOSS --sweep-set NAME=VALUE --rounds --keep 3]
    playbook-runner [--db PATH] wizards [NAME] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import io
import json
import os
import shlex
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runner.gpus import GpuChoiceError, check_choice
from runner.judging import StudyOutcomes, study_outcomes
from runner.limits import MAX_TRIALS
from runner.owner import live_owner, start_detached
from runner.playbook.outcome import infeasible_causes
from runner.printed import capture_record
from runner.spec import SpecError, capture_warnings, load
from runner.text import printable, printable_line
from store import StoreError, commands, connect, lease, locate_db, studies, trials
from store import capture as capture_store
from store import wizards as wizard_store
from store.db import explain as explain_store_error
from store.studies import Study, StudyConflict
from store.trials import Trial, TrialState
from store.wizards import WizardConflict

if TYPE_CHECKING:
    from runner.service import Runner

# runner.service (the scheduler, and scipy through the playbook checks) is imported by the commands
# that run trials, not by every command: a read-only one (status, export) starts in a fraction of it.

EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE  # what a shell reports for a reader that went away
# Commands that only make sense on a database that exists: they never create one.
NEEDS_EXISTING_DB = frozenset({"status", "watch", "stop", "add-trials", "export", "analyze", "wizards", "refine",
                               "compare"})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _command_word(argv)
    args = _parser(with_wizards=command not in _OWN_COMMANDS).parse_args(argv)
    try:
        for module in _PRELOAD.get(command, ()):
            importlib.import_module(module)
    except KeyboardInterrupt:  # Ctrl-C while the libraries load: nothing has started yet
        return EXIT_INTERRUPTED
    db_path, source = locate_db(args.db)
    print(printable(f"database: {db_path} ({source})"), file=sys.stderr)
    try:
        if args.command in NEEDS_EXISTING_DB and not db_path.is_file():
            raise CliError(f"no database at {db_path} ({source}); `playbook-runner run STUDY.toml` "
                           "creates one, or pass --db PATH")
        status = args.func(args, db_path)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        return _reader_went_away()
    except (CliError, SpecError, StoreError, StudyConflict, lease.LeaseHeld, WizardConflict,
            GpuChoiceError) as exc:
        return _error(str(exc))
    except sqlite3.Error as exc:  # locked past the busy timeout, damaged after opening, disk full
        return _error(explain_store_error(db_path, exc))
    except Exception as exc:
        if not _is_wizard_error(exc):
            raise
        return _error(str(exc))


def _error(text: str) -> int:
    """One `error:` line (a spec error's list of problems keeps its lines), with any terminal escapes a
    file name or study value carries shown, never obeyed."""
    print(printable(f"error: {text}"), file=sys.stderr)
    return EXIT_USAGE


def _is_wizard_error(exc: Exception) -> bool:
    """A WizardError can only come from a command that imported the wizards (they pull in scipy)."""
    substudy = sys.modules.get("runner.wizards.substudy")
    return substudy is not None and isinstance(exc, substudy.WizardError)


def _grace(args) -> float:
    """--grace, or the runner's default (the runner's module is imported only by the commands that run)."""
    from runner.service import DEFAULT_GRACE_S

    return DEFAULT_GRACE_S if args.grace is None else args.grace


def _new_runner(db_path: Path, args, **kwargs) -> Runner:
    from runner.service import Runner

    if "executor" not in kwargs and _on_a_cluster(db_path, getattr(args, "executor", None)):
        kwargs.update(gpu_indices=[], executor=_ray_executor(db_path, args))  # e.g. `stop` with no runner
    return Runner(db_path, grace_s=_grace(args), log=_log, **kwargs)


def _on_a_cluster(db_path: Path, chosen: str | None) -> bool:
    """Whether trials of this database run on a Ray cluster: a local runner would take them for lost."""
    from runner.executors.where import ran_on_ray

    db = connect(db_path)
    try:
        live = trials.in_states(db, {TrialState.STARTING, TrialState.RUNNING})
    finally:
        db.conn.close()
    on_ray = sum(ran_on_ray(t.trial_dir, t.attempt) for t in live)
    if on_ray and chosen == "local":
        raise CliError(f"{on_ray} running trial(s) of this database run on a Ray cluster; "
                       "run this with --executor ray (and --address HOST:PORT)")
    return bool(on_ray)


def _lease_lost() -> type[Exception]:
    from runner.service import LeaseLost

    return LeaseLost


def _reader_went_away() -> int:
    """`... | head` closed our stdout: stop quietly, as a C tool killed by SIGPIPE would."""
    # What is left in stdout's buffer would fail again at exit: send it nowhere instead.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_PIPE_CLOSED


def _hint(db_path: Path, *args: str) -> str:
    """A playbook-runner command line to copy into a shell, every path and name quoted."""
    return shlex.join(["playbook-runner", "--db", str(db_path), *map(str, args)])


# The commands this module defines: for these the wizards' subcommands (whose module imports the
# scheduler and scipy) are left out of the parser. Help (no command word) still lists every command.
_OWN_COMMANDS = frozenset({"run", "serve", "status", "watch", "stop", "add-trials", "export", "analyze"})
# What the commands that start work import, loaded before the first line they print (as when every
# command imported them): Ctrl-C after that line lands in the command's own handling, not in an import.
_PRELOAD = {"run": ("runner.service", "runner.launch"), "serve": ("runner.service",),
            "stop": ("runner.service",), "add-trials": ("runner.launch",)}


def _command_word(argv: list[str]) -> str | None:
    """The subcommand in argv: the first word that is not an option or --db's value."""
    words = iter(argv)
    for word in words:
        if word == "--db":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _parser(with_wizards: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="playbook-runner",
        description="Headless run manager for playbook-tui studies.",
    )
    p.add_argument("--db", help="database file (default: $PLAYBOOK_DB, else the nearest .playbook/playbook.db "
                   "in this folder or one above, else ./.playbook/playbook.db)")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="register a study file, run its trials, show progress")
    run.add_argument("study_file")
    run.add_argument("--detach", action="store_true",
                     help="run in the background (survives closing the terminal) and return")
    _slot_args(run)
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="own the database and run every launched study")
    serve.add_argument("--until-idle", action="store_true", help="exit when nothing is left to run")
    serve.add_argument("--detach", action="store_true", help="start in the background and return")
    _slot_args(serve)
    serve.set_defaults(func=cmd_serve)

    status = sub.add_parser("status", help="studies and trials, from the store")
    status.add_argument("study", nargs="?")
    status.add_argument("--json", action="store_true")
    status.add_argument("--all", action="store_true", dest="show_all",
                        help="every trial (a table of more than 50 is folded by default)")
    status.set_defaults(func=cmd_status)

    watch = sub.add_parser("watch", help="follow a study's progress until it is done")
    watch.add_argument("study")
    watch.set_defaults(func=cmd_watch)

    stop = sub.add_parser("stop", help="stop a study or a trial (SIGTERM, then SIGKILL after a grace period)")
    stop.add_argument("target", help="STUDY, STUDY/NUMBER or a trial id")
    stop.add_argument("--grace", type=float, default=None, help="seconds before SIGKILL (default 10)")
    stop.set_defaults(func=cmd_stop)

    add = sub.add_parser("add-trials", help="queue more quasi-random samples (each crossed with every scientific value)")
    add.add_argument("study")
    add.add_argument("samples", type=int, help="how many more nuisance samples")
    add.set_defaults(func=cmd_add_trials)

    export = sub.add_parser("export", help="one row per trial: params, state, best objective "
                            "(or, with --metrics, every stored metric point)")
    export.add_argument("study")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--metrics", nargs="*", metavar="NAME",
                        help="every stored point instead, one row each: trial, metric, step, value, "
                             "wall_time (NAMEs: only those metrics)")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.set_defaults(func=cmd_export)

    analyze = sub.add_parser("analyze", help="the playbook's checklist for a study, with the evidence")
    analyze.add_argument("study")
    analyze.add_argument("--json", action="store_true", help="every check with every number behind it")
    analyze.set_defaults(func=cmd_analyze)

    from runner import compare_cli

    compare_cli.add_parser(sub)
    if with_wizards:
        from runner import wizard_cli

        wizard_cli.add_parsers(sub)
        from runner import refine_cli  # scipy, through the checks it reads: like the wizards

        refine_cli.add_parser(sub)
    return p


def _slot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpu-slots", type=int, default=None,
                   help="trials running at once on CPU (default: number of cores)")
    p.add_argument("--grace", type=float, default=None,
                   help="seconds between SIGTERM and SIGKILL when stopping a trial")
    p.add_argument("--gpus", default=None, metavar="LIST",
                   help="GPUs to use: nvidia-smi numbers or UUIDs (2,3), or 'none' (default: all the "
                        "runner's CUDA_VISIBLE_DEVICES allows)")
    p.add_argument("--use-busy-gpus", action="store_true",
                   help="also hand out GPUs another process is using (default: trials wait for them)")
    p.add_argument("--executor", choices=("local", "ray"), default=None,
                   help="where trials run: this machine, or a Ray cluster (default: the study file's "
                        "executor, else local)")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="the Ray cluster (default: the study file's ray_address, else $RAY_ADDRESS, else auto)")


def _runner(db_path: Path, args) -> Runner:
    """The runner `run`/`serve` asked for; a --gpus or CUDA_VISIBLE_DEVICES it cannot honour
    raises GpuChoiceError (one line, exit 2)."""
    if args.executor == "ray":  # GPUs and CPUs are the cluster's: none of this machine's is read
        return _new_runner(db_path, args, gpu_indices=[], executor=_ray_executor(db_path, args))
    return _new_runner(db_path, args, cpu_slots=args.cpu_slots, gpu_choice=args.gpus,
                       use_busy_gpus=args.use_busy_gpus)


def _ray_executor(db_path: Path, args):
    """Connected to the cluster (Ray is imported only here); one line and exit 2 if it cannot be."""
    from runner.executors.ray import RayExecutor, RayUnavailable

    try:
        return RayExecutor(db_path, address=getattr(args, "address", None))
    except RayUnavailable as exc:
        raise CliError(str(exc)) from None


# -- run / serve -------------------------------------------------------------


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM


class _Signals:
    """SIGINT and SIGTERM while a runner serves: noted by the handler, acted on between passes.

    A pass cut in half could leave a trial claimed but not yet recorded as running. A second
    SIGINT before the first was acted on (a pass stuck in the store) raises KeyboardInterrupt.
    A signal the caller's shell ignores (SIGINT in a background job) stays ignored.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is not signal.SIG_IGN:
                self._previous[sig] = signal.signal(sig, self._note)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _note(self, signum: int, frame) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is None or signum == signal.SIGTERM:
            self.received = signum

    def pending(self) -> bool:
        return self.received is not None

    def take(self) -> int | None:
        got, self.received = self.received, None
        return got


def cmd_run(args, db_path: Path) -> int:
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # Until the runner serves (then _Signals takes over): unwind, so a lease just taken is released.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return _run(args, db_path)
    except KeyboardInterrupt:  # before the runner served (loading, registering, recovering)
        print("\ninterrupted while starting: this run launched no trial", file=sys.stderr)
        return EXIT_INTERRUPTED


def _exit_on_sigterm(signum: int, frame) -> None:
    print("terminated (SIGTERM)", file=sys.stderr)  # before the runner served, or while following one
    raise SystemExit(EXIT_TERMINATED)


def _run(args, db_path: Path) -> int:
    from runner import launch  # scipy, via the search: imported here, not for every command

    spec = load(args.study_file)
    args.executor = args.executor or spec.executor  # the command line over the study file
    args.address = args.address or spec.ray_address or None
    check_choice(args.gpus)  # before the study is stored: a bad --gpus changes nothing
    for warning in capture_warnings(spec):
        print(printable_line(f"warning: {warning}"), file=sys.stderr)
    db = connect(db_path)
    before = studies.by_name(db, spec.name)
    study, added = launch.register(db, db_path, spec)
    if before is not None and study.version > before.version:
        print(printable_line(f"{args.study_file} changed since {before.label} was registered: it is "
                             f"{study.label}, a new version ({before.label} keeps its trials; "
                             f"address it as {before.address})"))
    counts = trials.state_counts(db, study.id)
    total = sum(v for k, v in counts.items() if k != "infeasible")
    print(printable_line(f"study {studies.distinct_label(db, study)}: {total} trials ({added} new), "
                         f"{counts.get('queued', 0)} queued; trial folders in {study.run_dir}"))
    studies.set_active(db, study.id, True)
    owner = live_owner(db)
    if owner is not None:
        print(printable_line(f"runner pid {owner.pid} on {owner.host} owns this database and will run it"))
        if args.detach:
            print(printable_line(f"follow it with: {_hint(db_path, 'watch', spec.name)}"))
            return 0
        return _follow(db, db_path, study, take_over=lambda: _take_over(db_path, args, study))
    if args.detach:
        _start_detached(db_path, args)
        print(printable_line(f"follow it with: {_hint(db_path, 'watch', spec.name)}"))
        return 0
    try:
        return _run_foreground(db_path, args, study)
    except lease.LeaseHeld as exc:  # another run started at the same moment and won the lease
        print(f"runner pid {exc.lease.pid} on {exc.lease.host} took this database first and will run it")
        return _follow(db, db_path, study, take_over=lambda: _take_over(db_path, args, study))


def _take_over(db_path: Path, args, study: Study) -> int:
    """The runner this run followed is gone while its study has work left: run it here."""
    print("the runner is gone: this run takes over the database", flush=True)
    try:
        return _run_foreground(db_path, args, study)
    except KeyboardInterrupt:  # during recovery: no pass ran
        print("\ninterrupted while taking over: no runner owns this database; the next one adopts "
              "the running trials", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run_foreground(db_path: Path, args, study: Study) -> int:
    """Own the database until nothing is left to run; raises LeaseHeld if another runner owns it.

    Ctrl-C stops this study's trials (and only them: a study another `run` follows goes on,
    and that `run` takes over the database once this one has gone). SIGTERM leaves every
    trial running for the next runner to adopt.
    """
    runner = _runner(db_path, args)
    try:
        runner.start()  # Ctrl-C here is the caller's: the runner has not served yet
    except BaseException:
        runner.close()
        raise
    try:
        gpus_note = f"{len(runner.gpus)} GPU slot(s)" if runner.gpus else "no GPU found, CPU slots"
        if runner.executor.name != "local":  # the slots are the cluster's
            gpus_note = f"{runner.executor.name} cluster: {len(runner.gpus)} GPU slot(s)"
        print(f"runner pid {os.getpid()}: {gpus_note}, {runner.cpu_slots} CPU slot(s)", flush=True)
        progress = _Progress(runner.db, study)

        def done() -> bool:
            progress.tick()
            return runner.idle()

        with _Signals() as signals:
            runner.serve(until=done, interrupted=signals.pending)
            received = signals.take()
            if received == signal.SIGTERM:
                return _terminated(runner)
            if received == signal.SIGINT:
                return _stop_own_study(runner, study, signals)
        progress.tick(force=True)
    except _lease_lost() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pressed again while a pass was stuck
        print("\ninterrupted: left the running trials running; the next runner adopts them")
        return EXIT_INTERRUPTED
    finally:
        runner.close()
    return _exit_status(connect(db_path), study)


def _stop_own_study(runner: Runner, study: Study, signals: _Signals) -> int:
    """After Ctrl-C: stop this study's running trials, wait for them, then give up the database."""
    print(f"\ninterrupted: stopping running trials of {study.name} ({len(runner.live_ids(study.id))}); "
          "Ctrl-C again to leave them running", flush=True)
    runner.schedule = False  # launch nothing more while winding down
    runner.stop_study(study.id)
    runner.serve(until=lambda: not runner.live_ids(study.id), interrupted=signals.pending)
    if signals.take() is not None:
        print("left the remaining trials running; the next runner adopts them")
    _say_left_running(runner)
    return EXIT_INTERRUPTED


def _terminated(runner: Runner) -> int:
    print(f"terminated (SIGTERM): the runner stopped; {len(runner.live)} running trial(s) continue, "
          "and the next runner adopts them", flush=True)
    return EXIT_TERMINATED


def _say_left_running(runner: Runner) -> None:
    if n := len(runner.live):
        print(f"{n} trial(s) keep running with no runner; a `run` following them, or "
              f"`playbook-runner --db {runner.db_path} serve`, takes them over", flush=True)


def _exit_status(db, study: Study) -> int:
    """0 when every trial finished (failures are results too); 1 if some are still queued."""
    return 1 if trials.state_counts(db, study.id).get("queued") else 0


def cmd_serve(args, db_path: Path) -> int:
    if args.detach:
        _start_detached(db_path, args, until_idle=args.until_idle)
        return 0
    db = connect(db_path)
    owner = live_owner(db)
    if owner is not None:
        raise CliError(f"runner pid {owner.pid} on {owner.host} already owns this database")
    runner = _runner(db_path, args)
    try:
        runner.start()
        print(f"runner pid {os.getpid()} serving {db_path}"
              f" ({len(runner.gpus)} GPU slot(s), {runner.cpu_slots} CPU slot(s))", flush=True)
        # SIGTERM and Ctrl-C end the runner cleanly (lease released); trials keep running.
        with _Signals() as signals:
            runner.serve(until=runner.idle if args.until_idle else None, interrupted=signals.pending)
        if signals.received is not None:
            print("runner stopped; running trials continue and are adopted by the next runner")
    except _lease_lost() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("runner stopped; running trials continue and are adopted by the next runner")
    finally:
        runner.close()
    return 0


def _start_detached(db_path: Path, args, until_idle: bool = True) -> None:
    serve_args = ["--until-idle"] if until_idle else []
    if getattr(args, "cpu_slots", None):
        serve_args += ["--cpu-slots", str(args.cpu_slots)]
    serve_args += ["--grace", str(_grace(args))]
    if getattr(args, "gpus", None) is not None:
        serve_args += ["--gpus", args.gpus]
    if getattr(args, "use_busy_gpus", False):
        serve_args.append("--use-busy-gpus")
    if getattr(args, "executor", None):
        serve_args += ["--executor", args.executor] + (["--address", args.address] if args.address else [])
    proc = start_detached(db_path, serve_args)
    print(f"runner started in the background (pid {proc.pid}); log: {db_path.parent / 'runner.log'}")


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {printable_line(message)}", flush=True)


class _Progress:
    """A one-line summary of a study, printed when it changes (at most every 2 s)."""

    def __init__(self, db, study: Study):
        self.db, self.study = db, study
        self.last_line = ""
        self.last_time = 0.0

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_time < 2.0:
            return
        self.last_time = now
        line = _summary_line(self.db, self.study)
        if line != self.last_line:
            print(line, flush=True)
            self.last_line = line


def _summary_line(db, study: Study) -> str:
    """The study's progress as one line, its names escaped (they come from study files and trials)."""
    s = study_outcomes(db, study)
    c = s.counts
    done = sum(c.get(k, 0) for k in ("completed", "failed", "stopped", "lost"))
    total = done + c.get("queued", 0) + c.get("starting", 0) + c.get("running", 0)
    best = (f"best {study.objective_metric} {s.best_value:.6g} (trial {s.best_trial})"
            if s.best_value is not None else f"no {study.objective_metric} yet")
    return printable_line(
        f"[{study.label}] {done}/{total} finished: {c.get('completed', 0)} completed, "
        f"{c.get('failed', 0)} failed ({c['infeasible']} infeasible), "
        f"{c.get('running', 0) + c.get('starting', 0)} running, {c.get('queued', 0)} queued | {best}")


def _follow(db, db_path: Path, study: Study, take_over: Callable[[], int] | None = None) -> int:
    """Print progress from the store until the study has nothing queued or running.

    If the runner goes while the study has work left, `take_over()` (a `run`'s) becomes the
    runner; without it (`watch`) this says how to start one.
    """
    progress = _Progress(db, study)
    states: dict[int, str] = {}
    try:
        while True:
            for t in trials.list_for_study(db, study.id):
                if states.get(t.id) != t.state.value:
                    if t.id in states or t.state is not TrialState.QUEUED:
                        reason = f" ({t.reason}: {t.detail})" if t.reason else ""
                        _log(f"trial {study.name}/{t.number} {t.state.value}{reason}")
                    states[t.id] = t.state.value
            progress.tick()
            row = studies.get(db, study.id)
            counts = trials.state_counts(db, study.id)
            active_work = counts.get("running", 0) + counts.get("starting", 0)
            if not active_work and (not row.active or not counts.get("queued")):
                progress.tick(force=True)
                return 0
            if live_owner(db) is None and (counts.get("queued") or active_work):
                if take_over is None:
                    print(printable_line("no runner owns this database any more; start one with "
                                         f"`{_hint(db_path, 'serve')}`"))
                    return 1
                try:
                    return take_over()
                except lease.LeaseHeld as exc:  # another runner took it first: follow that one
                    print(printable_line(f"runner pid {exc.lease.pid} on {exc.lease.host} took over this database"))
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("\nstopped following; the runner goes on")
        return 0


def cmd_watch(args, db_path: Path) -> int:
    db = connect(db_path)
    return _follow(db, db_path, _study(db, args.study))


# -- status / stop / export --------------------------------------------------


def _study(db, name: str) -> Study:
    try:
        return studies.require(db, name)
    except studies.UnknownStudy as exc:
        raise CliError(str(exc)) from None


def resolve_target(db, text: str) -> Study | Trial:
    """STUDY, STUDY/NUMBER, or a bare trial id."""
    if "/" in text:
        name, _, number = text.rpartition("/")
        study = _study(db, name)
        if not number.isdigit() or not (t := trials.get_by_number(db, study.id, int(number))):
            raise CliError(f"study {name!r} has no trial {number!r}")
        return t
    with contextlib.suppress(studies.UnknownStudy):
        return studies.require(db, text)
    if text.isdigit() and (t := trials.get(db, int(text))):
        return t
    raise CliError(f"no study or trial {text!r} (studies: {studies.known_names(db)}; a trial is STUDY/NUMBER, "
                   "a version STUDY@N)")


def cmd_stop(args, db_path: Path) -> int:
    db = connect(db_path)
    target = resolve_target(db, args.target)
    owner = live_owner(db)
    if owner is not None:
        if isinstance(target, Study):
            commands.enqueue(db, "stop_study", study_id=target.id)
        else:
            commands.enqueue(db, "stop_trial", trial_id=target.id)
        print(f"asked runner pid {owner.pid} to stop {args.target}")
        return 0
    return _stop_without_runner(db_path, args, target)


def _stop_without_runner(db_path: Path, args, target: Study | Trial) -> int:
    """Become a short-lived runner that only stops: it adopts every running trial (it owns the
    database meanwhile), stops the target's, waits for those alone, and hands the database back.
    Other trials keep running for the next runner; queued trials wait for one."""
    runner = _new_runner(db_path, args, schedule=False)
    try:
        runner.start()
        if isinstance(target, Study):
            result = runner.stop_study(target.id)
            stopping = runner.live_ids(target.id)
        else:
            result = runner.stop_trial(target.id)
            stopping = runner.live_ids() & {target.id}
        print(f"{args.target}: {result}", flush=True)
        with _Signals() as signals:
            runner.serve(until=lambda: not stopping & runner.live_ids(), interrupted=signals.pending)
        if signals.received is not None:
            print(f"stopped waiting: {len(stopping & runner.live_ids())} trial(s) were sent SIGTERM and may "
                  "still be running; `stop` again sends SIGKILL after the grace period")
            return EXIT_INTERRUPTED
        _say_left_running(runner)
    except KeyboardInterrupt:
        print("\ninterrupted: nothing more was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        runner.close()
    return 0


def cmd_status(args, db_path: Path) -> int:
    db = connect(db_path)
    chosen = [_study(db, args.study)] if args.study else studies.list_all(db)
    report = {
        "database": str(db_path),
        "runner": _runner_info(db),
        "studies": [_study_record(db, s) for s in chosen],
    }
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")  # one write: json.dump writes per token
        return 0
    from runner.status_view import render_status

    render_status(report, show_all=args.show_all)
    return 0


def _runner_info(db) -> dict | None:
    owner = live_owner(db)
    if owner is None:
        return None
    return {"pid": owner.pid, "host": owner.host, "heartbeat_age_s": round(time.time() - owner.heartbeat_at, 1)}


def _study_record(db, study: Study) -> dict:
    s = study_outcomes(db, study)
    return {
        "name": study.name,
        "version": study.version,
        "label": study.label,  # 'tiny v2' from version 2 on
        "previous": _previous_address(db, study),
        "refines": study.refines,
        "goal": study.goal,
        "notes": study.notes,
        "active": bool(study.active),
        "config_path": study.config_path,
        "reproduce_command": study.reproduce_command,
        "objective": {"metric": study.objective_metric, "mode": study.objective_mode},
        "max_train_steps": study.max_train_steps,
        "counts": s.counts,
        "infeasible_by": infeasible_causes(s.outcomes.values()),
        "best_value": s.best_value,
        "best_trial": s.best_trial,
        "baseline": _baseline_record(db, study),
        "trials": _trial_records(db, study, s),
    }


def _previous_address(db, study: Study) -> str | None:
    """The version before this one as a command addresses it (NAME@N), None for a first version."""
    previous = studies.get(db, study.previous_id) if study.previous_id is not None else None
    return previous.address if previous is not None else None


def _baseline_record(db, study: Study) -> dict | None:
    """The configuration last adopted for this study by `decide` (None until one is)."""
    b = wizard_store.current_baseline(db, study.name)
    if b is None:
        return None
    return {"params": b.params, "source": b.source, "objective_mean": b.objective_mean,
            "adopted_at": b.adopted_at}


def _trial_records(db, study: Study, outcomes: StudyOutcomes) -> list[dict]:
    """Every trial of the study, from three queries (not three per trial: a 1,000-trial status is instant)."""
    roles = trials.roles_by_trial(db, study.id)
    saved = capture_store.for_study(db, study.id)
    return [_trial_record(study, t, outcomes, roles.get(t.id, {}), saved.get(t.id))
            for t in trials.list_for_study(db, study.id)]


def _trial_record(study: Study, t: Trial, outcomes: StudyOutcomes, roles: dict[str, str],
                  saved_capture: str | None) -> dict:
    """One trial; its outcome and feasibility are runner.playbook.outcome's, as in every view."""
    capture = capture_record(saved_capture, finished=t.state.is_finished())
    o = outcomes.of(t.number, t.state.value, t.reason, t.feasible, t.last_step, t.detail)
    return {
        "id": t.id,
        "number": t.number,
        "source": t.source,
        "state": t.state.value,
        "outcome": o.label,
        "outcome_why": o.why,
        "partial": o.partial,
        "reason": t.reason,
        "detail": t.detail,
        "feasible": o.feasible,
        "params": t.params,
        "roles": roles,
        "best_value": t.best_value,
        "best_step": t.best_step,
        "last_step": t.last_step,
        "max_train_steps": study.max_train_steps,
        "slot": t.slot,
        "started_at": t.started_at,
        "ended_at": t.ended_at,
        "trial_dir": t.trial_dir,
        "bad_lines": t.bad_lines,
        "bad_line_sample": t.bad_line_sample,  # the first dropped line, with why
        "out_of_order": t.out_of_order,  # metrics.jsonl points merged at a step their series had
        "out_of_order_sample": t.out_of_order_sample,
        "capture": capture,
        # max_train_steps in the unit of the steps (they differ when it counts epochs: step_unit)
        "progress_total": (capture or {}).get("progress_total") or study.max_train_steps,
    }


def cmd_add_trials(args, db_path: Path) -> int:
    db = connect(db_path)
    study = _study(db, args.study)
    if not 1 <= args.samples <= MAX_TRIALS:
        raise CliError(f"samples: expected a number from 1 to {MAX_TRIALS:,} (MAX_TRIALS), got {args.samples:,}")
    from runner import launch

    added = launch.add_trials(db, study, args.samples)
    print(printable_line(f"queued {added} new trial(s) in {study.label}; run them with: "
                         f"{_hint(db_path, 'run', study.config_path)}"))
    return 0


def cmd_export(args, db_path: Path) -> int:
    db = connect(db_path)
    study = _study(db, args.study)
    if args.metrics is not None:
        return _export_points(db, study, args)
    outcomes = study_outcomes(db, study)
    rows = [_export_row(study, t, outcomes) for t in trials.list_for_study(db, study.id)]  # one query
    if args.format == "json":
        text = json.dumps(rows, indent=2, default=str) + "\n"
    else:
        param_names = sorted({k for r in rows for k in r["params"]})
        columns = ["study", "trial", "source", "state", "outcome", "outcome_why", "partial", "reason", "detail",
                   "feasible",
                   *[f"param.{n}" for n in param_names], "objective", "best_value", "best_step",
                   "last_step", "max_train_steps", "started_at", "ended_at", "trial_dir"]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            flat = {k: v for k, v in row.items() if k != "params"}
            flat.update({f"param.{k}": v for k, v in row["params"].items()})
            writer.writerow(flat)
        text = buffer.getvalue()
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {len(rows)} trials to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


POINT_COLUMNS = ("study", "trial", "metric", "step", "value", "wall_time")


def _export_points(db, study: Study, args) -> int:
    """Every stored point of the study's trials, a trial at a time (a big study does not fit
    in memory at once): CSV rows, or one JSON array of objects. NaN is empty / null."""
    from store import metrics  # its blocks decode with numpy: only this export needs it

    wanted = sorted(set(args.metrics))
    rows = trials.list_for_study(db, study.id)
    if wanted:
        stored = {name for t in rows for name in metrics.metric_names(db, t.id)}
        if missing := [n for n in wanted if n not in stored]:
            raise CliError(f"export {study.name} --metrics: no stored points of {', '.join(missing)}; "
                           f"stored metrics: {', '.join(sorted(stored)) or 'none yet'}")
    out = open(args.output, "w", newline="") if args.output else sys.stdout  # noqa: SIM115
    count = 0
    try:
        writer = csv.writer(out) if args.format == "csv" else None
        if writer:
            writer.writerow(POINT_COLUMNS)
        else:
            out.write("[")
        for trial in rows:
            points = ([p for n in wanted for p in metrics.points(db, trial.id, n)] if wanted
                      else metrics.points(db, trial.id))
            for _, name, step, value, wall in points:
                row = (study.label, trial.number, name, step, value, wall)
                if writer:
                    writer.writerow(row)
                else:
                    out.write((",\n" if count else "\n") + json.dumps(dict(zip(POINT_COLUMNS, row, strict=True))))
                count += 1
        if not writer:
            out.write("\n]\n")
    finally:
        if args.output:
            out.close()
    if args.output:
        print(f"wrote {count} points to {args.output}", file=sys.stderr)
    return 0


def _export_row(study: Study, t: Trial, outcomes: StudyOutcomes) -> dict:
    """One trial as export writes it: the trial's row and its outcome (the same as _trial_record's,
    without the roles and capture status export does not show)."""
    o = outcomes.of(t.number, t.state.value, t.reason, t.feasible, t.last_step, t.detail)
    return {
        "study": study.label, "trial": t.number, "source": t.source, "state": t.state.value,
        "outcome": o.label, "outcome_why": o.why, "partial": o.partial,
        "reason": t.reason, "detail": t.detail, "feasible": o.feasible,
        "params": t.params, "objective": study.objective_metric, "best_value": t.best_value,
        "best_step": t.best_step, "last_step": t.last_step,
        "max_train_steps": study.max_train_steps, "started_at": t.started_at,
        "ended_at": t.ended_at, "trial_dir": t.trial_dir,
    }


def cmd_analyze(args, db_path: Path) -> int:
    """The checklist; exit status 0 whatever the verdicts (they are findings, not errors)."""
    from runner.analyze_view import analyze_report, render_analyze

    db = connect(db_path)
    report = analyze_report(db, _study(db, args.study))
    if args.json:
        json.dump(report, sys.stdout, indent=2, allow_nan=False)
        print()
        return 0
    render_analyze(report)
    return 0
