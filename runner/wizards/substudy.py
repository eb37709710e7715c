"""Sub-studies: a wizard stage written as an ordinary study file, derived from a base study.

Every parameter of the base study becomes fixed at a reference value (a trial's, or
the study's best), except the ones the stage varies, which become scientific with the
stage's values: one trial per value. Writing a real file means the stage is
reproducible with `playbook-runner run FILE` and shows up like any study.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from sqlite_utils import Database

from runner import launch
from runner.judging import study_outcomes
from runner.spec import SpecError, StudySpec, load
from store import metrics as metric_store
from store import trials
from store.studies import Study
from store.trials import Trial, TrialState


class WizardError(Exception):
    """A wizard cannot go on as asked: one clear sentence saying what to change."""


@dataclass(frozen=True)
class StagePlan:
    """What one stage runs: one trial per value of `vary` (a single parameter), the rest fixed."""

    study_name: str
    title: str
    vary: tuple[str, tuple]  # (parameter, its values)
    fixed: dict[str, Any]
    max_train_steps: int
    concurrency: int = 1
    objective: tuple[str, str] | None = None  # (metric, mode), when the stage ranks by another
    gpus_per_trial: int | None = None
    extra_params: dict[str, dict] = field(default_factory=dict)  # e.g. a seed the script reads from env
    halt_on_failure: bool = False  # the runner stops the queued trials once one fails (the probe)
    # Instead of one trial per value of `vary`: one trial per configuration (values of several
    # parameters together, as [[trial]]s), e.g. the few best points of an earlier stage.
    configurations: tuple[dict[str, Any], ...] = ()

    @property
    def trial_count(self) -> int:
        return len(self.configurations) if self.configurations else len(self.vary[1])


def derive_config(base: StudySpec, plan: StagePlan, note: str) -> str:
    """The TOML text of `plan` as a study file derived from `base`."""
    data = tomllib.loads(base.config_text)
    study = dict(data["study"])
    study.update(
        name=plan.study_name, goal=plan.title, notes=note, workdir=str(base.workdir),
        max_train_steps=plan.max_train_steps, trials=1, concurrency=plan.concurrency,
    )
    if plan.objective is not None:
        study["objective"] = {"metric": plan.objective[0], "mode": plan.objective[1]}
    if plan.gpus_per_trial is not None:
        study["gpus_per_trial"] = plan.gpus_per_trial
    if plan.halt_on_failure:
        study["halt_on_failure"] = True
    params = {p.name: _derived_param(p, plan) for p in base.params}
    params.update(plan.extra_params)
    if not plan.configurations:
        return tomli_w.dumps({"study": study, "params": params})
    # Every parameter a configuration sets becomes a nuisance choice of the values used, and
    # the study runs exactly the configurations: no searched trials.
    study["trials"] = 0
    for name in plan.configurations[0]:
        used = list(dict.fromkeys(c[name] for c in plan.configurations))
        params[name] = {**{k: v for k, v in params[name].items() if k in ("when", "in_command")},
                        "role": "nuisance", "values": used}
    return tomli_w.dumps({"study": study, "params": params, "trial": [dict(c) for c in plan.configurations]})


def _derived_param(p, plan: StagePlan) -> dict:
    name, values = plan.vary
    body: dict[str, Any] = {"role": "scientific", "values": list(values)} if p.name == name else {
        "role": "fixed", "value": plan.fixed.get(p.name, _placeholder(p))}
    if p.when:
        body["when"] = {parent: list(allowed) for parent, allowed in p.when}
    if not p.in_command:
        body["in_command"] = False
    return body


def _placeholder(p) -> Any:
    """A value for a conditional parameter that does not apply (it is dropped from the argv)."""
    if p.value is not None:
        return p.value
    return p.values[0] if p.values else p.low


def register(db: Database, db_path: Path, base: StudySpec, plan: StagePlan, note: str) -> Study:
    """Write the stage's study file beside the database and register it (the engine launches it)."""
    folder = Path(db_path).resolve().parent / "wizards"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{plan.study_name}.toml"
    text = derive_config(base, plan, note)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    try:
        spec = load(path)
    except SpecError as exc:
        raise WizardError(f"cannot plan {plan.study_name}: {exc}") from exc
    return launch.register(db, db_path, spec)[0]


def reference_values(db: Database, base_study: Study, base: StudySpec, *, from_trial: int | None,
                     overrides: dict[str, Any], varied: set[str]) -> dict[str, Any]:
    """Values for every parameter a stage holds fixed.

    From `from_trial` (a trial number of the base study) when given, else from the
    base study's best feasible trial, else the base file's fixed values; `overrides`
    (--set NAME=VALUE) win. Raises WizardError naming each parameter still unset.
    """
    values = {p.name: p.value for p in base.params if p.role == "fixed"}
    source = trials.get_by_number(db, base_study.id, from_trial) if from_trial else None
    if from_trial and source is None:
        raise WizardError(f"study {base_study.name!r} has no trial {from_trial}")
    if source is None:
        best = study_outcomes(db, base_study).best_trial  # a full, feasible run: never a partial one
        source = trials.get_by_number(db, base_study.id, best) if best else None
    if source is not None:
        values.update(source.params)
    unknown = set(overrides) - {p.name for p in base.params}
    if unknown:
        raise WizardError(f"--set names no parameter of {base_study.name!r}: {', '.join(sorted(unknown))} "
                          f"(parameters: {', '.join(p.name for p in base.params)})")
    values.update(overrides)
    missing = [f"{p.name} ({p.role})" for p in base.params
               if p.name not in values and p.name not in varied and not p.when]
    if missing:
        raise WizardError(f"study {base_study.name!r} has no finished trial to take values from; set "
                          f"{', '.join(missing)} with --set NAME=VALUE or --from-trial N")
    return values


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs (VALUE read as a TOML literal: 0.01, 64, true, "adam"; else as text)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise WizardError(f"--set {item!r}: expected NAME=VALUE, e.g. --set learning_rate=0.01")
        try:
            out[name.strip()] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[name.strip()] = text.strip()
    return out


def base_spec(study: Study) -> StudySpec:
    from runner.study_data import stored_spec

    try:
        return stored_spec(study)
    except SpecError as exc:
        raise WizardError(f"the stored config of {study.name!r} no longer validates: {exc}") from exc


# -- reading a stage back --------------------------------------------------------------


def stage_trials(db: Database, study: Study | None) -> list[Trial]:
    return trials.list_for_study(db, study.id) if study is not None else []


def has_work(db: Database, study: Study) -> bool:
    counts = trials.state_counts(db, study.id)
    return any(counts.get(s, 0) for s in ("queued", "starting", "running"))


def outcome(t: Trial) -> str:
    """The wizard's view of how a trial ended: ok | oom | diverged | failed | not run."""
    if t.state is TrialState.COMPLETED:
        return "ok"
    if t.state is TrialState.FAILED:
        return t.reason if t.reason in ("oom", "diverged") else "failed"
    return "not run" if t.started_at is None else "failed"


def series(db: Database, t: Trial, metric: str, max_points: int = 2000) -> tuple[tuple[int, ...], tuple]:
    """(steps, values) of one metric of one trial, downsampled in the store past max_points."""
    s = metric_store.read_series(db, t.id, metric, max_points)
    return tuple(s.steps), tuple(s.values)
