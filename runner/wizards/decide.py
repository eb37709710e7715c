"""Adopt-or-not as a wizard: re-run baseline and candidate with several seeds, then decide.

PLAYBOOK.md "Deciding whether to adopt a change": characterize trial variance by
re-running the best configuration of each side N times with different seeds, and
adopt only a change that beats the baseline by more than that variance explains and
by enough to pay for the complexity it adds.
"""

from __future__ import annotations

from runner.judging import study_outcomes
from runner.playbook import adopt
from runner.playbook.outcome import Scored, pick_best
from runner.wizards.engine import Kind, Question
from runner.wizards.substudy import StagePlan, WizardError, base_spec, outcome, stage_trials
from store import studies, trials
from store import wizards as wizard_store
from store.studies import Study

SEED_PARAM = "seed"
SIDES = ("baseline", "candidate")


def resolve_side(db, text: str) -> dict:
    """STUDY (its best trial), STUDY/N (trial N), or STUDY:PARAM=VALUE (the best trial with that value)."""
    name, number, where = text, None, None
    if "/" in text:
        name, _, num = text.rpartition("/")
        if not num.isdigit():
            raise WizardError(f"{text!r}: expected STUDY/NUMBER, e.g. digits/3")
        number = int(num)
    elif ":" in text:
        name, _, cond = text.partition(":")
        param, sep, value = cond.partition("=")
        if not sep:
            raise WizardError(f"{text!r}: expected STUDY:PARAM=VALUE, e.g. digits:width=128")
        where = (param, value)
    try:
        study = studies.require(db, name)
    except studies.UnknownStudy as exc:
        raise WizardError(str(exc)) from None
    trial = _pick(db, study, number, where)
    return {"study": study.name, "trial": trial.number, "params": trial.params,
            "best_value": trial.best_value, "label": f"{study.name}/{trial.number}"}


def _pick(db, study: Study, number: int | None, where: tuple[str, str] | None):
    if number is not None:
        t = trials.get_by_number(db, study.id, number)
        if t is None:
            raise WizardError(f"study {study.name!r} has no trial {number}")
        return t
    outcomes = study_outcomes(db, study).outcomes
    done = [Scored(t.number, outcomes[t.number], t.best_value) for t in trials.list_for_study(db, study.id)
            if t.number in outcomes and (where is None or str(t.params.get(where[0])) == where[1])]
    best = pick_best(done, study.objective_mode)  # full, feasible runs only: never a partial one
    if best is None:
        what = f" with {where[0]}={where[1]}" if where else ""
        raise WizardError(f"study {study.name!r} has no finished trial{what} to take as a side (one that "
                          f"trained all {study.max_train_steps} steps and is feasible)")
    return trials.get_by_number(db, study.id, best.number)


class Decide(Kind):
    kind = "decide"
    stages = ("seeds",)
    titles = {"seeds": "re-run baseline and candidate with several seeds"}

    def _side_study(self, side: str) -> Study:
        study = studies.by_name(self.db, self.options[side]["study"])
        if study is None:
            raise WizardError(f"study {self.options[side]['study']!r} is not in this database")
        return study

    def base_study(self) -> Study:
        return self._side_study("baseline")

    def base_spec_for(self, plan: StagePlan):
        return base_spec(self._side_study(plan.study_name.rsplit(".", 1)[1]))

    def plans(self, stage, results):
        seeds = tuple(range(1, self.options["seeds"] + 1))
        out = []
        for side in SIDES:
            ref = self.options[side]
            spec = base_spec(self._side_study(side))
            has_seed = any(p.name == SEED_PARAM for p in spec.params)
            extra = {} if has_seed else {SEED_PARAM: {"role": "scientific", "values": list(seeds),
                                                      "in_command": False}}
            fixed = {k: v for k, v in ref["params"].items() if k != SEED_PARAM}
            out.append(StagePlan(f"{self.wizard.name}.{side}", f"{side}: {ref['label']} with {len(seeds)} seeds",
                                 (SEED_PARAM, seeds), fixed, spec.max_train_steps,
                                 concurrency=self.options["concurrency"], extra_params=extra))
        return out

    def question(self, stage, results, answers):
        if self.options.get("complexity"):  # wizards stored before it became an answer
            return None
        return Question("complexity", "How much complexity does the candidate add?", adopt.COMPLEXITIES)

    def seed_values(self, side: str) -> tuple[list[float], list[str]]:
        """Best objective per seed trial, and a note for each seed that gave none (infeasible seeds)."""
        study = studies.by_name(self.db, f"{self.wizard.name}.{side}")
        values, notes = [], []
        for t in stage_trials(self.db, study):
            if t.best_value is not None and outcome(t) == "ok":
                values.append(float(t.best_value))
            else:
                notes.append(f"{side} seed {t.params.get(SEED_PARAM)}: {outcome(t)} ({t.reason or t.state.value})")
        return values, notes

    def conclude(self, stage, results, answers):
        complexity = self.options.get("complexity") or answers["complexity"]
        (base_v, base_notes), (cand_v, cand_notes) = self.seed_values("baseline"), self.seed_values("candidate")
        mode = self._side_study("baseline").objective_mode
        try:
            decision = adopt.decide(base_v, cand_v, mode=mode, complexity=complexity).to_json()
        except ValueError as exc:
            return {"verdict": "inconclusive", "reasoning": f"cannot compare: {exc}",
                    "failed_seeds": base_notes + cand_notes}
        decision["failed_seeds"] = base_notes + cand_notes
        return decision

    def finish(self, results):
        r = results["seeds"]
        cand = self.options["candidate"]
        if r["verdict"] == "adopt":
            wizard_store.adopt_baseline(self.db, self.options["baseline"]["study"], cand["params"],
                                        cand["label"], r.get("candidate", {}).get("mean"), self.wizard.id)
            r["adopted"] = {"scope": self.options["baseline"]["study"], "params": cand["params"]}
        return f"{r['verdict']}: {cand['label']} vs {self.options['baseline']['label']}", r
