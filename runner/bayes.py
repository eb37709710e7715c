"""Bayesian optimization as a study's search (`search = "bayes"`): the playbook's exploitation phase.

The store is the only record. Whenever a bayes study has a free slot, the runner asks this module
for the next point: an in-memory Optuna study is rebuilt from the stored trials of one scientific
value (finished ones with their objective and feasibility, queued and running ones as pending),
its sampler proposes the nuisance values, and the point is queued as an ordinary trial.

- Scientific values stay crossed: each combination of them is its own optimization stream with
  a budget of `study.trials` searched trials; the stream that has run fewest is served first.
- The first `startup_trials` points of every stream are the study's quasi-random (Halton) points,
  queued at registration like an exploration study's; the model also waits for two finished
  trials. Manual [[trial]]s of a stream teach the model but do not use its budget.
- Infeasible trials (crashed, out of memory, diverged) are given to the sampler as violating a
  constraint, so the model learns where not to go; trials whose feasibility is unknown
  (stopped, timed out, lost) are left out.
- Reproducible: the sampler is seeded with `seed + n`, n the number of searched trials the
  stream already has, so the same results give the same next point. With concurrency 1 a whole
  study replays exactly; with more, which trials have finished when a slot frees depends on timing.
- Parallel: at most `concurrency` trials of the study are queued or running; pending points are
  shown to the sampler (TPE's constant liar) so parallel asks spread out.
"""

from __future__ import annotations

import json
import sqlite3
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from runner.plan import make_trial
from runner.search import _round, nuisance_samples, resolve, scientific_grid
from runner.spec import ParamSpec, SpecError, StudySpec
from store import studies, trials
from store.trials import Trial, TrialState

# One ask per study per runner pass: a GP ask takes seconds on a busy CPU, and a pass must stay well
# inside the lease's heartbeat (store.lease.LEASE_TTL_S); the next pass, 0.2 s later, asks again.
MAX_ASKS_PER_PASS = 1
MIN_FINISHED_FOR_MODEL = 2  # below this the model has nothing to compare: continue the Halton sequence
_PENDING_STATES = {TrialState.QUEUED, TrialState.STARTING, TrialState.RUNNING}


@dataclass(frozen=True)
class Observation:
    """One trial as the model sees it."""

    values: dict[str, Any]
    objective: float | None = None
    feasible: bool | None = None  # None: unknown (left out) or still pending
    pending: bool = False


# -- pure: the next point of one stream ------------------------------------------------------


def next_values(spec: StudySpec, sci: dict[str, Any], history: list[Observation], index: int) -> dict[str, Any]:
    """The resolved values of the `index`-th searched trial of the stream with scientific values `sci`.

    history: the stream's trials so far (finished and pending, manual ones included).
    """
    usable = [o for o in history if not o.pending and _teaches(o)]
    if index < spec.search.startup_trials or len(usable) < MIN_FINISHED_FOR_MODEL:
        return resolve(spec, {**halton_point(spec, index), **sci})
    chosen = _ask(spec, sci, history, seed=spec.seed + index)
    return resolve(spec, {**chosen, **sci})


def halton_point(spec: StudySpec, index: int) -> dict[str, Any]:
    """The study's `index`-th quasi-random nuisance point (the one an exploration study would run)."""
    return nuisance_samples(spec, index + 1)[index]


def _teaches(o: Observation) -> bool:
    return o.feasible is False or (o.feasible is True and o.objective is not None)


def distribution(p: ParamSpec):
    """The Optuna distribution of a scientific or nuisance parameter, in its own scale."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if p.kind == "choice":
        return CategoricalDistribution(list(p.values))
    if p.kind == "int":
        return IntDistribution(int(p.low), int(p.high), log=p.is_log)
    return FloatDistribution(float(p.low), float(p.high), log=p.is_log)


def _ask(spec: StudySpec, sci: dict[str, Any], history: list[Observation], *, seed: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    nuisance = {p.name: p for p in spec.by_role("nuisance")}
    direction = "minimize" if spec.objective_mode == "min" else "maximize"
    with warnings.catch_warnings():  # multivariate TPE and the GP sampler are "experimental" to Optuna
        warnings.simplefilter("ignore")
        study = optuna.create_study(direction=direction, sampler=_sampler(spec, seed))
        for trial in _frozen_trials(spec, history, nuisance):
            study.add_trial(trial)
        asked = study.ask()
        chosen = _suggest(spec, sci, asked, nuisance)
    return chosen


def _sampler(spec: StudySpec, seed: int):
    from optuna.samplers import GPSampler, TPESampler

    if spec.search.sampler == "gp":
        return GPSampler(seed=seed, n_startup_trials=0)
    # multivariate + group: the nuisance dimensions interact (lr with momentum, weight decay), and
    # group handles conditional parameters; constant_liar spreads out the asks of parallel slots.
    return TPESampler(seed=seed, n_startup_trials=0, multivariate=True, group=True, constant_liar=True)


def _frozen_trials(spec: StudySpec, history: list[Observation], nuisance: dict[str, ParamSpec]) -> list:
    """The stream's trials as Optuna trials: finished ones with value and constraint, pending ones running.

    An infeasible trial that never reported gets the worst value seen: the constraint, not the
    value, is what keeps the model away from it.
    """
    import optuna

    values = [o.objective for o in history if o.feasible and o.objective is not None]
    worst = (max(values) if spec.objective_mode == "min" else min(values)) if values else 0.0
    out = []
    for o in history:
        if not o.pending and not _teaches(o):
            continue
        params = {n: v for n, v in o.values.items() if n in nuisance and _inside(nuisance[n], v)}
        if set(params) != {n for n in o.values if n in nuisance}:
            continue  # a manual trial outside the space (or an older config's): it cannot be placed
        dists = {n: distribution(nuisance[n]) for n in params}
        if o.pending:
            out.append(optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING,
                                                 params=params, distributions=dists))
            continue
        value = o.objective if o.objective is not None else worst
        out.append(optuna.trial.create_trial(value=float(value), params=params, distributions=dists,
                                             constraints={"feasible": 0.0 if o.feasible else 1.0}))
    return out


def _inside(p: ParamSpec, value: Any) -> bool:
    if p.kind == "choice":
        return value in p.values
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return p.low <= value <= p.high and (p.kind != "int" or int(value) == value)


def _suggest(spec: StudySpec, sci: dict[str, Any], asked, nuisance: dict[str, ParamSpec]) -> dict[str, Any]:
    """Ask the trial for every nuisance parameter that applies (conditionals follow their parents)."""
    assigned: dict[str, Any] = {p.name: p.value for p in spec.by_role("fixed")} | sci
    chosen: dict[str, Any] = {}
    for p in spec.params:
        if p.name not in nuisance or (p.when and not p.applies(assigned | chosen)):
            continue
        chosen[p.name] = _suggest_one(asked, p)
    # A conditional that does not apply still needs a value for resolve(), which then drops it.
    return {n: chosen.get(n, nuisance[n].values[0] if nuisance[n].kind == "choice" else nuisance[n].low)
            for n in nuisance}


def _suggest_one(asked, p: ParamSpec) -> Any:
    if p.kind == "choice":
        return asked.suggest_categorical(p.name, list(p.values))
    if p.kind == "int":
        return asked.suggest_int(p.name, int(p.low), int(p.high), log=p.is_log)
    # Six significant digits, as the quasi-random search writes them, kept inside the range.
    return min(max(_round(asked.suggest_float(p.name, p.low, p.high, log=p.is_log)), p.low), p.high)


# -- pure: which streams get the free slots ---------------------------------------------------


def stream_key(spec: StudySpec, values: dict[str, Any]) -> str:
    return json.dumps({p.name: values.get(p.name) for p in spec.by_role("scientific")}, sort_keys=True)


def plan_asks(spec: StudySpec, stored: list[tuple[str, Observation]], free: int) -> list[dict[str, Any]]:
    """Values for up to `free` new searched trials: each goes to the scientific value that has
    searched fewest (the grid's order breaks ties), and stops at `study.trials` per value.

    stored: (source, observation) for every trial of the study; the points planned here join
    the history as pending, so one call's asks differ.
    """
    history = list(stored)
    out: list[dict[str, Any]] = []
    grid = scientific_grid(spec)
    for _ in range(max(free, 0)):
        keys = [stream_key(spec, sci) for sci in grid]
        searched = {k: 0 for k in keys}
        for source, o in history:
            key = stream_key(spec, o.values)
            if source == "search" and key in searched:
                searched[key] += 1
        open_streams = [i for i, k in enumerate(keys) if searched[k] < spec.trials]
        if not open_streams:
            break
        pick = min(open_streams, key=lambda i: searched[keys[i]])
        stream = [o for _, o in history if stream_key(spec, o.values) == keys[pick]]
        values = next_values(spec, grid[pick], stream, searched[keys[pick]])
        out.append(values)
        history.append(("search", Observation(values, pending=True)))
    return out


def observation(trial: Trial) -> Observation:
    if trial.state in _PENDING_STATES:
        return Observation(trial.params, pending=True)
    feasible = None if trial.feasible is None else bool(trial.feasible)
    return Observation(trial.params, objective=trial.best_value, feasible=feasible)


# -- the runner's edge -------------------------------------------------------------------------


def top_up(db: Database, study_id: int, spec: StudySpec) -> int:
    """Queue the next point of a bayes study when fewer than `concurrency` of its trials are queued
    or running (MAX_ASKS_PER_PASS at a time); returns how many were queued."""
    rows = trials.list_for_study(db, study_id)
    pending = sum(1 for t in rows if t.state in _PENDING_STATES)
    free = min(spec.concurrency - pending, MAX_ASKS_PER_PASS)
    if free <= 0:
        return 0
    asks = plan_asks(spec, [(t.source, observation(t)) for t in rows], free)
    if not asks:
        return 0
    study = studies.get(db, study_id)
    first = trials.next_number(db, study_id)
    new = [make_trial(spec, study.run_dir, first + i, "search", values) for i, values in enumerate(asks)]
    return trials.insert_new(db, study_id, new)


def top_up_active(db: Database, spec_of: Callable[[int], StudySpec | SpecError],
                  log: Callable[[str], None]) -> None:
    """Top up every launched bayes study (the runner calls this before it fills slots).

    A model error is logged and that study simply gets no new point this pass; store errors
    go up to the runner's retry.
    """
    for study in studies.list_all(db):
        spec = spec_of(study.id) if study.active else None
        if not isinstance(spec, StudySpec) or not spec.search.is_bayes:
            continue
        try:
            top_up(db, study.id, spec)
        except sqlite3.OperationalError:
            raise
        except Exception as exc:  # an optimizer bug must not take the runner down
            log(f"study {spec.name}: Bayesian optimization could not propose a point: {exc!r}")
