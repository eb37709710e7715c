"""The state machine every wizard shares: plan a stage, confirm it, run it, conclude it.

A wizard kind (probe, warmup, decide) says which stages it has, what each one runs
(StagePlan list) and what its finished trials mean (a JSON-able result). `advance`
moves a stored wizard as far as it can without the user or the runner: it registers
a confirmed stage's sub-studies, concludes a stage whose trials have all finished,
and stops at the first thing it must wait for. It never blocks, so the TUI calls it
from a worker and the CLI from its loop; everything it knows is in the store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from runner.wizards.substudy import StagePlan, WizardError, has_work, register
from runner.wizards.timing import describe_estimate, measured_timing, stage_seconds
from store import studies, trials
from store import wizards as wizard_store
from store.studies import Study
from store.wizards import Wizard

DONE = "done"


@dataclass(frozen=True)
class Question:
    """What the wizard needs from the user before it goes on."""

    key: str  # "confirm:<stage>" or an answer's name
    text: str
    choices: tuple[str, ...]  # the first is the default


@dataclass(frozen=True)
class Status:
    """Where a wizard stands after `advance`."""

    wizard: Wizard
    stage: str
    stage_title: str
    plan_lines: tuple[str, ...] = ()  # what the current stage runs, with the time estimate
    question: Question | None = None
    running: tuple[str, ...] = ()  # sub-studies with trials queued or running
    stage_results: dict[str, Any] = field(default_factory=dict)
    done: bool = False

    @property
    def result(self) -> dict | None:
        return self.wizard.result


class Kind:
    """One wizard kind. Subclasses set `kind` and `stages` and implement the hooks."""

    kind: str = ""
    stages: tuple[str, ...] = ()
    titles: dict[str, str] = {}

    def __init__(self, db: Database, db_path: Path, wizard: Wizard) -> None:
        self.db, self.db_path, self.wizard = db, Path(db_path), wizard
        self.options = wizard.options

    # hooks --------------------------------------------------------------------------
    def base_study(self) -> Study:
        study = studies.by_name(self.db, self.wizard.base_study)
        if study is None:
            raise WizardError(f"the wizard's base study {self.wizard.base_study!r} is not in this database")
        return study

    def plans(self, stage: str, results: dict[str, Any]) -> list[StagePlan]:
        raise NotImplementedError

    def conclude(self, stage: str, results: dict[str, Any], answers: dict[str, Any]) -> dict:
        """The stage's result (JSON-able); called once every trial of the stage has finished."""
        raise NotImplementedError

    def skip(self, stage: str, results: dict[str, Any]) -> bool:
        """True when a stage does not apply (an earlier result made it moot)."""
        return False

    def question(self, stage: str, results: dict[str, Any], answers: dict[str, Any]) -> Question | None:
        """A question that must be answered before `conclude` (e.g. how complex the change is)."""
        return None

    def optional(self, stage: str) -> bool:
        """Whether the user may skip the stage instead of confirming it."""
        return False

    def finish(self, results: dict[str, Any]) -> tuple[str, dict]:
        """(verdict line, result) once every stage is concluded."""
        raise NotImplementedError

    # the machine ------------------------------------------------------------------------
    def advance(self) -> Status:
        """Go as far as possible now; see the module docstring."""
        while True:
            w = self.wizard
            state = w.state
            results, answers = state.get("results", {}), state.get("answers", {})
            if w.stage == DONE:
                return Status(w, DONE, "finished", stage_results=results, done=True)
            stage = w.stage
            if self.skip(stage, results) or stage in state.get("skipped", []):
                self._move_on(stage, state, None)
                continue
            plans = self.plans(stage, results)
            lines = self.describe(plans)
            if stage not in state.get("confirmed", []):
                choices = ("run", "skip") if self.optional(stage) else ("run",)
                return Status(w, stage, self.titles.get(stage, stage), lines,
                              Question(f"confirm:{stage}", f"Run {self.titles.get(stage, stage)}?", choices),
                              stage_results=results)
            registered = [register(self.db, self.db_path, self.base_spec_for(p), p, self.note(stage))
                          for p in plans]
            running = tuple(s.name for s in registered if has_work(self.db, s))
            if running:
                for s in registered:
                    if s.name in running and not studies.get(self.db, s.id).active:
                        studies.set_active(self.db, s.id, True)  # launched once confirmed
                return Status(w, stage, self.titles.get(stage, stage), lines, running=running,
                              stage_results=results)
            question = self.question(stage, results, answers)
            if question is not None and question.key not in answers:
                return Status(w, stage, self.titles.get(stage, stage), lines, question, stage_results=results)
            self._move_on(stage, state, self.conclude(stage, results, answers))

    def retry_stopped(self) -> int:
        """On resume: the current stage's trials that were stopped while they ran go back to
        the queue (a stopped trial says nothing about its batch size, lr or seed); returns how
        many. Not on every advance: a trial stopped while the wizard is being followed stays
        stopped, and the stage concludes without it."""
        w = self.wizard
        if w.stage == DONE or w.stage not in w.state.get("confirmed", []):
            return 0
        count = 0
        for plan in self.plans(w.stage, w.state.get("results", {})):
            study = studies.by_name(self.db, plan.study_name)
            if study is not None:
                count += len(trials.requeue_stopped(self.db, study.id))
        return count

    def _move_on(self, stage: str, state: dict, result: dict | None) -> None:
        if result is not None:
            state.setdefault("results", {})[stage] = result
        later = self.stages[self.stages.index(stage) + 1:]
        next_stage = later[0] if later else DONE
        verdict = result_json = None
        if next_stage == DONE:
            verdict, result_json = self.finish(state.get("results", {}))
        self.wizard = wizard_store.save(self.db, self.wizard.id, stage=next_stage, state=state,
                                        verdict=verdict, result=result_json)

    def answer(self, key: str, value: str) -> None:
        """Record the user's answer to a Question (confirm:<stage> takes 'run' or 'skip')."""
        state = self.wizard.state
        if key.startswith("confirm:"):
            stage = key.split(":", 1)[1]
            bucket = "skipped" if value == "skip" else "confirmed"
            state.setdefault(bucket, [])
            if stage not in state[bucket]:
                state[bucket].append(stage)
        else:
            state.setdefault("answers", {})[key] = value
        self.wizard = wizard_store.save(self.db, self.wizard.id, stage=self.wizard.stage, state=state,
                                        verdict=self.wizard.verdict, result=self.wizard.result)

    # helpers for kinds ----------------------------------------------------------------------
    def base_spec_for(self, plan: StagePlan):
        from runner.wizards.substudy import base_spec

        return base_spec(self.base_study())

    def note(self, stage: str) -> str:
        # The wizard's creation date, not today's: the note is part of the stage's config, and a
        # config that changed overnight would be refused when the wizard resumes.
        created = time.strftime("%Y-%m-%d", time.localtime(self.wizard.created_at))
        return (f"Planned by the {self.kind} wizard {self.wizard.name!r} (stage {stage}) from study "
                f"{self.wizard.base_study!r} on {created}.")

    def describe(self, plans: list[StagePlan]) -> tuple[str, ...]:
        timing = measured_timing(self.db, self.base_study())
        out = []
        for p in plans:
            name, values = p.vary
            shown = f"{name} = {', '.join(_short(v) for v in values)}" if not p.configurations else \
                "; ".join(config_label(c) for c in p.configurations)
            eta = stage_seconds(timing, p.trial_count, p.concurrency, p.max_train_steps)
            out.append(f"{p.study_name}: {p.trial_count} trial(s) of {p.max_train_steps} steps, "
                       f"{shown}; {describe_estimate(timing, eta, p.max_train_steps)}")
        return tuple(out)


def config_label(config: dict[str, Any]) -> str:
    """'learning_rate=0.03 width=128': a configuration as the wizards show and key it (every digit:
    two configurations never share a label)."""
    return " ".join(f"{k}={v}" for k, v in config.items())


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)

