"""How long to train, as a wizard: the first max_train_steps, and rounds when compute-bound.

PLAYBOOK.md "How long to train". Stage `sweep`: a constant-lr grid without regularization
(--sweep-set weight_decay=0) at the study's max_train_steps; the steps the fastest run needs
to reach a training-loss target (given, or proposed from the sweep) is the first guess for
max_train_steps. Stages `round-1` and `round-2` (optional, for a compute-bound budget): many
short runs over a learning-rate grid, then the best --keep of them again, long, with the
schedule stretched the playbook's way; the report says how well the short runs' ranking
held (Spearman, Kendall) and what the playbook says transfers.

The study names its schedule with two parameters (names chosen with --schedule-param and
--decay-param): `schedule` = constant | linear | cosine, and `decay_steps` = linear: the
final decay's length (peak lr until then); cosine: the cosine's period from the peak to 0.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from sqlite_utils import Database

from runner.playbook import rounds, training_length, warmup
from runner.playbook.check import fmt
from runner.wizards.engine import Kind, config_label
from runner.wizards.substudy import (
    StagePlan,
    WizardError,
    base_spec,
    outcome,
    parse_assignments,
    reference_values,
    series,
    stage_trials,
)
from store import studies
from store.trials import Trial

DEFAULT_SCHEDULE = "linear"


class Length(Kind):
    kind = "length"
    stages = ("sweep", "round-1", "round-2")
    titles = {
        "sweep": "constant-lr sweep: steps to a training-loss target",
        "round-1": "round 1: many short runs (the lr grid, crossed with --vary)",
        "round-2": "round 2: the best of round 1, long, schedule stretched",
    }

    # -- planning ------------------------------------------------------------------------
    def plans(self, stage, results):
        o = self.options
        name = f"{self.wizard.name}.{stage}"
        if stage == "sweep":
            fixed = {**o["fixed"], **o["sweep_fixed"], o["schedule_param"]: "constant", o["decay_param"]: 0}
            grid = tuple(warmup.lr_grid(o["low"], o["high"], o["points"]))
            return [StagePlan(name, self.titles[stage], (o["lr_param"], grid), fixed, o["horizon"],
                              concurrency=o["concurrency"])]
        if stage == "round-1":
            fixed = {**o["fixed"], o["schedule_param"]: o["schedule"], o["decay_param"]: o["decay_steps"]}
            configs = round1_configurations(o)
            return [StagePlan(name, f"{self.titles[stage]} ({o['round1_steps']} steps, {o['schedule']})",
                              (o["lr_param"], tuple(c[o["lr_param"]] for c in configs)), fixed, o["round1_steps"],
                              concurrency=o["concurrency"], configurations=configs)]
        stretch = self.stretch()
        fixed = {**o["fixed"], o["schedule_param"]: stretch.schedule, o["decay_param"]: stretch.decay_steps}
        chosen = tuple(results["round-1"]["chosen"])
        return [StagePlan(name, f"{self.titles[stage]} ({stretch.why})",
                          (o["lr_param"], tuple(c[o["lr_param"]] for c in chosen)), fixed,
                          stretch.max_train_steps, concurrency=o["concurrency"], configurations=chosen)]

    def describe(self, plans: list[StagePlan]) -> tuple[str, ...]:
        """The shared plan lines, plus the schedule each stage runs with (what the user confirms)."""
        o = self.options
        stage = plans[0].study_name.rsplit(".", 1)[1] if plans else ""
        extra = {
            "sweep": f"schedule: constant lr{''.join(f', {k} = {v}' for k, v in o['sweep_fixed'].items())}",
            "round-1": f"schedule: {o['schedule']}, {o['decay_param']} = {o['decay_steps']} of "
                       f"{o['round1_steps']} steps",
            "round-2": f"schedule: {self.stretch().why}",
        }.get(stage)
        return super().describe(plans) + ((extra,) if extra else ())

    def stretch(self) -> rounds.Stretch:
        o = self.options
        return rounds.stretch_schedule(o["schedule"], o["round1_steps"], o["round2_steps"], o["decay_steps"])

    def optional(self, stage):
        return True  # the sweep alone answers "not compute-bound"; the rounds alone "compute-bound"

    def skip(self, stage, results):
        return stage == "round-2" and not (results.get("round-1") or {}).get("chosen")

    # -- reading results ----------------------------------------------------------------
    def _trials(self, stage: str) -> list[Trial]:
        return [t for t in stage_trials(self.db, studies.by_name(self.db, f"{self.wizard.name}.{stage}"))
                if outcome(t) != "not run"]

    def _lr(self, t: Trial) -> float:
        return float(t.params[self.options["lr_param"]])

    def _curve(self, t: Trial) -> warmup.LossCurve:
        steps, values = series(self.db, t, self.options["loss_metric"])
        return warmup.LossCurve(steps, values)

    def conclude(self, stage, results, answers):
        o = self.options
        ts = self._trials(stage)
        if stage == "sweep":
            runs = [training_length.SweepCurve(self._lr(t), self._curve(t), _run_outcome(t)) for t in ts]
            out = training_length.initial_steps(runs, o["horizon"], o["target"]).to_json()
            out["trials"] = {str(self._lr(t)): t.number for t in ts}
            return out
        rows = [{"config": config_label(self._config(t)), "params": self._config(t), "objective": _score(t),
                 "outcome": outcome(t), "trial": t.number} for t in sorted(ts, key=lambda t: t.number)]
        if stage == "round-1":
            return self._round1(rows)
        return self._round2(rows, results["round-1"]["rows"])

    def _round1(self, rows: list[dict]) -> dict:
        """Round 1's configurations and the --keep best of them, best first, for round 2."""
        o = self.options
        best = rounds.best_configurations({r["config"]: r["objective"] for r in rows}, o["keep"],
                                          self.base_study().objective_mode)
        chosen = [_by_label(rows)[label] for label in best]
        return {"rows": rows, "chosen": chosen, "steps": o["round1_steps"], "schedule": o["schedule"],
                "decay_steps": o["decay_steps"], "stretch": self.stretch().to_json() if chosen else None}

    def _round2(self, rows: list[dict], short_rows: list[dict]) -> dict:
        """Round 2 against round 1: the rank correlation, and whether each varied parameter's best held."""
        mode = self.base_study().objective_mode
        long = {r["config"]: r["objective"] for r in rows}
        short = {r["config"]: r["objective"] for r in short_rows if r["config"] in long}
        best_long = rounds.best_configurations(long, 1, mode)
        best_short = rounds.best_configurations(short, 1, mode)
        params = _by_label(rows)
        per_param = [rounds.param_transfer(name, params[best_short[0]][name], params[best_long[0]][name])
                     for name in self._varied()] if best_short and best_long else []
        return {"rows": rows, "steps": self.options["round2_steps"], "stretch": self.stretch().to_json(),
                "transfer": rounds.transfer(short, long, mode).to_json(),
                "best": params[best_long[0]] if best_long else None, "params": per_param,
                "round1_objective": {k: short.get(k) for k in long}}

    def _config(self, t: Trial) -> dict:
        return {name: t.params[name] for name in self._varied()}

    def _varied(self) -> list[str]:
        return [self.options["lr_param"], *self.options["vary"]]

    def finish(self, results):
        parts = []
        sweep = results.get("sweep")
        if sweep:
            parts.append(f"max_train_steps {sweep['max_train_steps']}" if sweep.get("max_train_steps")
                         else f"no run reached the target ({sweep['summary']})")
        r2 = results.get("round-2")
        if r2:
            t = r2["transfer"]
            parts.append(f"rounds: {t['verdict']} (rho {fmt(t['spearman'])}); round 2's best "
                         f"{config_label(r2['best']) if r2.get('best') else 'none'}")
        verdict = "; ".join(parts) or "nothing run"
        return verdict, {"verdict": verdict, "stages": results}


def round1_configurations(o: dict) -> tuple[dict, ...]:
    """Round 1's points: the lr grid crossed with every --vary parameter's values, lr first."""
    grid = warmup.lr_grid(o["low"], o["high"], o["round1_points"])
    names = [o["lr_param"], *o["vary"]]
    return tuple(dict(zip(names, values, strict=True))
                 for values in itertools.product(grid, *o["vary"].values()))


def _by_label(rows: list[dict]) -> dict[str, dict]:
    return {r["config"]: r["params"] for r in rows}


def _score(t: Trial) -> float | None:
    """A trial's objective (its best value) when it trained all its steps; None otherwise."""
    return float(t.best_value) if outcome(t) == "ok" and t.best_value is not None else None


def _run_outcome(t: Trial) -> str:
    return {"ok": "ok", "diverged": "diverged"}.get(outcome(t), "failed")


# -- starting -----------------------------------------------------------------------------


def start_length(db: Database, db_path: Path, *, study: str, name: str | None = None,
                 lr_param: str = "learning_rate", schedule_param: str = "schedule",
                 decay_param: str = "decay_steps", low: float | None = None, high: float | None = None,
                 points: int = 5, horizon: int | None = None, target: float | None = None,
                 loss_metric: str = "train_loss", sweep_overrides: dict | None = None,
                 round1_steps: int | None = None, round2_steps: int | None = None, round1_points: int = 6,
                 keep: int = 3, vary: dict[str, list] | None = None, schedule: str | None = None,
                 decay_steps: int | None = None,
                 concurrency: int = 2, overrides: dict | None = None, from_trial: int | None = None) -> Kind:
    """Create (or resume) a training-length wizard; every option is checked before anything is stored."""
    from runner.wizards.start import _create, _need_param, _study

    base = _study(db, study)
    spec = base_spec(base)
    for param, flag, what in ((lr_param, "--lr-param", "learning rate"),
                              (schedule_param, "--schedule-param", "lr schedule"),
                              (decay_param, "--decay-param", "decay length")):
        _need_param(spec, param, flag, what)
    lr = spec.param(lr_param)
    low = low if low is not None else lr.low
    high = high if high is not None else lr.high
    if low is None or high is None or not 0 < low < high:
        raise WizardError(f"the learning-rate sweeps need 0 < --low < --high (got {low}, {high}); "
                          f"{lr_param} in {base.name!r} is not a range to take them from")
    if points < 2 or round1_points < 2:
        raise WizardError(f"--points {points} / --round1-points {round1_points}: at least 2 learning rates")
    if target is not None and not target > 0:
        raise WizardError(f"--target {target}: a training loss above 0")
    if keep < 2:
        raise WizardError(f"--keep {keep}: round 2 needs at least 2 configurations to compare ranks (3 or more "
                          "for a rank correlation)")
    vary = vary or {}
    for param, values in vary.items():
        _need_param(spec, param, "--vary", "round-1 grid")
        if param in (lr_param, schedule_param, decay_param) or not values:
            raise WizardError(f"--vary {param}: a parameter other than the lr and the schedule's, with at least "
                              "one value (--vary NAME=V1,V2)")
    fixed = reference_values(db, base, spec, from_trial=from_trial, overrides=overrides or {},
                             varied={lr_param, schedule_param, decay_param, *vary})
    _check_overrides(spec, base.name, sweep_overrides or {})
    round2_steps = round2_steps or spec.max_train_steps
    round1_steps = round1_steps or max(1, round2_steps // 4)
    schedule = schedule or _study_schedule(fixed, schedule_param)
    if decay_steps is None:
        decay_steps = round1_steps // 2 if schedule == "linear" else round1_steps
    try:
        rounds.stretch_schedule(schedule, round1_steps, round2_steps, decay_steps)
    except ValueError as exc:
        raise WizardError(f"--round1-steps/--round2-steps/--decay-steps: {exc}") from None
    fixed = {k: v for k, v in fixed.items() if k not in (schedule_param, decay_param)}
    options = {"lr_param": lr_param, "schedule_param": schedule_param, "decay_param": decay_param,
               "low": low, "high": high, "points": points, "horizon": horizon or spec.max_train_steps,
               "target": target, "loss_metric": loss_metric, "sweep_fixed": sweep_overrides or {},
               "round1_steps": round1_steps, "round2_steps": round2_steps, "round1_points": round1_points,
               "keep": keep, "vary": vary, "schedule": schedule, "decay_steps": decay_steps,
               "concurrency": concurrency,
               "fixed": fixed}
    return _create(db, db_path, "length", name or f"{base.name}.length", base.name, options)


def parse_vary(items: list[str]) -> dict[str, list]:
    """--vary NAME=V1,V2,... (each value a TOML literal, else text) as {NAME: [V1, V2, ...]}."""
    out: dict[str, list] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise WizardError(f"--vary {item!r}: expected NAME=V1,V2,..., e.g. --vary width=64,256")
        out[name.strip()] = [parse_assignments([f"v={v.strip()}"])["v"] for v in text.split(",")]
    return out


def _check_overrides(spec, study: str, values: dict) -> None:
    unknown = set(values) - {p.name for p in spec.params}
    if unknown:
        raise WizardError(f"--sweep-set names no parameter of {study!r}: {', '.join(sorted(unknown))} "
                          f"(parameters: {', '.join(p.name for p in spec.params)})")


def _study_schedule(fixed: dict, schedule_param: str) -> str:
    """The study's own schedule for the rounds, when it decays; else linear (constant has nothing to stretch)."""
    value = fixed.get(schedule_param)
    return value if value in ("linear", "cosine") else DEFAULT_SCHEDULE
