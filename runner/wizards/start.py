"""Creating (or resuming) a wizard from what the user asked for, and reopening a stored one."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import tomli_w
from sqlite_utils import Database

from runner import gpus, launch
from runner.spec import SpecError, parse
from runner.wizards.engine import Kind
from runner.wizards.substudy import WizardError, base_spec, reference_values
from store import studies
from store import wizards as wizard_store
from store.studies import Study
from store.wizards import Wizard


def kind_class(kind: str) -> type[Kind]:
    """The class of a wizard kind (imported on demand: each pulls in its own decisions)."""
    if kind == "probe-batch":
        from runner.wizards.probe import BatchProbe as cls
    elif kind == "warmup":
        from runner.wizards.warmup import Warmup as cls
    elif kind == "length":
        from runner.wizards.length import Length as cls
    else:
        from runner.wizards.decide import Decide as cls
    return cls


def open_wizard(db: Database, db_path: Path, wizard: Wizard) -> Kind:
    return kind_class(wizard.kind)(db, db_path, wizard)


def by_name(db: Database, db_path: Path, name: str) -> Kind:
    w = wizard_store.get_by_name(db, name)
    if w is None:
        known = ", ".join(x.name for x in wizard_store.list_all(db)) or "none yet"
        raise WizardError(f"no wizard named {name!r} (wizards: {known})")
    return open_wizard(db, db_path, w)


def _check_name(name: str) -> None:
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", name):
        raise WizardError(f"--name {name!r}: letters, digits, '.', '_' or '-' only (it names studies)")


def _create(db, db_path, kind: str, name: str, base: str, options: dict) -> Kind:
    _check_name(name)
    cls = kind_class(kind)
    w, created = wizard_store.create_or_resume(db, kind, name, base, options, cls.stages[0])
    wizard = cls(db, db_path, w)
    if not created:
        wizard.retry_stopped()
    return wizard


def _study(db, name: str) -> Study:
    try:
        return studies.require(db, name)
    except studies.UnknownStudy as exc:
        raise WizardError(str(exc)) from None


def _need_param(spec, name: str, flag: str, what: str) -> None:
    if not any(p.name == name for p in spec.params):
        raise WizardError(f"study {spec.name!r} has no parameter {name!r} for the {what}; its parameters are "
                          f"{', '.join(p.name for p in spec.params) or 'none'} (choose one with {flag})")


def start_probe(db: Database, db_path: Path, *, study: str | None = None, command: str | None = None,
                name: str | None = None, batch_param: str = "batch_size", start: int = 8, cap: int = 4096,
                steps: int = 30, skip: int = 5, train_steps: int | None = None,
                gpus_per_trial: int | None = None, overrides: dict | None = None,
                from_trial: int | None = None) -> Kind:
    """The throughput probe of a study (or of a bare command with a {batch_size} placeholder)."""
    if (study is None) == (command is None):
        raise WizardError("probe-batch needs a study name or --command, not both")
    # Every check that needs no store comes first: a refused command must leave nothing behind.
    from runner.wizards.probe import batch_sizes

    batch_sizes(start, cap)
    if steps <= skip + 2:
        raise WizardError(f"--steps {steps} leaves too few measured steps after skipping {skip} warm-up steps")
    if study is None:
        name = name or "probe-batch"
        _check_name(name)
        base = _command_study(db, db_path, name, command, batch_param, overrides or {})
    else:
        base = _study(db, study)
        name = name or f"{base.name}.probe-batch"
    spec = base_spec(base)
    _need_param(spec, batch_param, "--batch-param", "batch size")
    fixed = reference_values(db, base, spec, from_trial=from_trial, overrides=overrides or {},
                             varied={batch_param})
    if gpus_per_trial is None:
        gpus_per_trial = 1 if gpus.discover() else 0
    options = {"batch_param": batch_param, "start": start, "cap": cap, "steps": steps, "skip": skip,
               # A --command has no step count of its own: its stand-in study's 1000 is not one.
               "train_steps": train_steps or (spec.max_train_steps if study is not None else None),
               "gpus_per_trial": gpus_per_trial,
               "fixed": fixed}
    return _create(db, db_path, "probe-batch", name, base.name, options)


COMMAND_BATCH_PLACEHOLDER = 1  # never run: every probe trial sets the batch size itself


def _command_study(db, db_path, name: str, command: str, batch_param: str, overrides: dict) -> Study:
    """A base study for a bare command: no trials of its own, only the batch-size parameter.

    Its file depends on the command alone (the batch value is a placeholder the probe
    replaces), so a later run with other probe options resumes against the same study.
    """
    unknown = set(overrides) - {batch_param}
    if unknown:
        raise WizardError(f"--set {', '.join(sorted(unknown))}: a --command has no parameter but "
                          f"{batch_param!r}; write the other values into the command")
    folder = Path(db_path).resolve().parent / "wizards"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.command.toml"
    text = tomli_w.dumps({
        "study": {"name": f"{name}.command", "goal": f"the command probed by {name}", "command": command,
                  "workdir": str(Path.cwd()), "max_train_steps": 1000, "trials": 0,
                  "objective": {"metric": "examples_per_s", "mode": "max"}},
        "params": {batch_param: {"role": "fixed", "value": COMMAND_BATCH_PLACEHOLDER}},
    })
    try:
        spec = parse(tomllib.loads(text), path=path, text=text)
    except SpecError as exc:
        raise WizardError(f"--command: {'; '.join(exc.problems)}") from exc
    stored = studies.by_name(db, spec.name)
    if stored is not None and stored.config_hash != spec.config_hash:
        raise WizardError(f"the name {name!r} already probed another command ({stored.command_template}); "
                          f"pass --name to probe this one")
    path.write_text(text)
    return launch.register(db, db_path, spec)[0]


def start_warmup(db: Database, db_path: Path, *, study: str, name: str | None = None,
                 lr_param: str = "learning_rate", warmup_param: str = "warmup_steps",
                 low: float | None = None, high: float | None = None, points: int = 7,
                 horizon: int | None = None, max_train_steps: int | None = None,
                 loss_metric: str = "train_loss", grad_metric: str = "grad_norm",
                 eval_param: str | None = "eval_every", concurrency: int = 2,
                 overrides: dict | None = None, from_trial: int | None = None) -> Kind:
    base = _study(db, study)
    spec = base_spec(base)
    _need_param(spec, lr_param, "--lr-param", "learning rate")
    _need_param(spec, warmup_param, "--warmup-param", "warmup length")
    lr = spec.param(lr_param)
    low = low if low is not None else lr.low
    high = high if high is not None else lr.high
    if low is None or high is None or not 0 < low < high:
        raise WizardError(f"the learning-rate sweep needs 0 < --low < --high (got {low}, {high}); "
                          f"{lr_param} in {base.name!r} is not a range to take them from")
    steps = max_train_steps or spec.max_train_steps
    fixed = reference_values(db, base, spec, from_trial=from_trial, overrides=overrides or {},
                             varied={lr_param, warmup_param})
    options = {"lr_param": lr_param, "warmup_param": warmup_param, "low": low, "high": high,
               "points": points, "horizon": horizon or default_horizon(steps), "max_train_steps": steps,
               "loss_metric": loss_metric, "grad_metric": grad_metric, "concurrency": concurrency,
               "eval_param": eval_param if eval_param and any(p.name == eval_param for p in spec.params) else None,
               "fixed": fixed}
    return _create(db, db_path, "warmup", name or f"{base.name}.warmup", base.name, options)


def default_horizon(max_train_steps: int) -> int:
    """The lr sweep's short horizon: a quarter of the run (instability shows early), at least 20 steps."""
    return min(max_train_steps, max(20, max_train_steps // 4))


def start_decide(db: Database, db_path: Path, *, baseline: str, candidate: str, name: str | None = None,
                 seeds: int = 5, complexity: str | None = None,
                 concurrency: int = 2) -> Kind:
    if seeds < 2:
        raise WizardError(f"--seeds {seeds}: at least 2 seeds a side are needed to see any variance")
    from runner.playbook.adopt import COMPLEXITIES

    if complexity is not None and complexity not in COMPLEXITIES:
        raise WizardError(f"--complexity {complexity!r}: expected one of {', '.join(COMPLEXITIES)}")
    from runner.wizards.decide import resolve_side

    sides = {"baseline": resolve_side(db, baseline), "candidate": resolve_side(db, candidate)}
    metrics = {s: _study(db, sides[s]["study"]).objective_metric for s in sides}
    if metrics["baseline"] != metrics["candidate"]:
        raise WizardError(f"the two sides optimize different objectives ({metrics['baseline']} vs "
                          f"{metrics['candidate']}); compare trials of studies with the same objective")
    default = f"{sides['baseline']['study']}.decide-{sides['candidate']['label']}".replace("/", "-")
    # The complexity is an answer, not an option: giving it on a later run must resume the
    # wizard (its seeds are already run), not conflict with the run that paused to ask.
    options = {**sides, "seeds": seeds, "concurrency": concurrency}
    kind = _create(db, db_path, "decide", name or re.sub(r"[^A-Za-z0-9._-]", "-", default),
                   sides["baseline"]["study"], options)
    if complexity is not None:
        _answer_complexity(kind, complexity)
    return kind


def _answer_complexity(kind: Kind, complexity: str) -> None:
    """Record --complexity, unless the wizard already decided with another answer."""
    given = kind.wizard.state.get("answers", {}).get("complexity")
    if given == complexity:
        return
    if kind.wizard.result is not None:
        raise WizardError(f"wizard {kind.wizard.name!r} already decided with complexity {given!r}; "
                          f"pass --name to decide again with {complexity!r}")
    kind.answer("complexity", complexity)

