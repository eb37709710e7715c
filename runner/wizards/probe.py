"""The batch-size throughput probe as a wizard: powers of two, one at a time, until memory runs out."""

from __future__ import annotations

from runner.playbook import batch_probe
from runner.wizards.engine import Kind
from runner.wizards.substudy import StagePlan, WizardError, outcome, series, stage_trials
from runner.wizards.timing import trial_split
from store import studies

THROUGHPUT_METRIC = "examples_per_s"
MEMORY_METRIC = "peak_memory_mb"


def batch_sizes(start: int, cap: int) -> list[int]:
    """start, 2 x start, ... up to cap (powers of two when start is one)."""
    if start < 1 or cap < start:
        raise WizardError(f"--start must be >= 1 and <= --cap, got start {start}, cap {cap}")
    sizes = [start]
    while sizes[-1] * 2 <= cap:
        sizes.append(sizes[-1] * 2)
    return sizes


class BatchProbe(Kind):
    kind = "probe-batch"
    stages = ("probe",)
    titles = {"probe": "throughput at doubling batch sizes"}

    def plans(self, stage, results):
        o = self.options
        return [StagePlan(
            study_name=f"{self.wizard.name}.probe",
            title=f"Throughput of {self.wizard.base_study} at batch sizes {o['start']}..{o['cap']}",
            vary=(o["batch_param"], tuple(batch_sizes(o["start"], o["cap"]))),
            fixed=o["fixed"], max_train_steps=o["steps"], concurrency=1,
            objective=(THROUGHPUT_METRIC, "max"), gpus_per_trial=o["gpus_per_trial"],
            # Sizes run smallest first, one at a time: after the first that fails (OOM), the
            # runner stops the larger ones before it would launch the next.
            halt_on_failure=True,
        )]

    def runs(self) -> list[batch_probe.ProbeRun]:
        study = studies.by_name(self.db, f"{self.wizard.name}.probe")
        out = []
        for t in sorted(stage_trials(self.db, study), key=lambda t: t.params[self.options["batch_param"]]):
            how = outcome(t)
            if how == "not run":
                continue
            _, thr = series(self.db, t, THROUGHPUT_METRIC)
            _, mem = series(self.db, t, MEMORY_METRIC)
            peak = max((m for m in mem if m is not None), default=None)
            out.append(batch_probe.ProbeRun(
                batch_size=int(t.params[self.options["batch_param"]]),
                outcome="oom" if how == "oom" else ("ok" if how == "ok" else "failed"),
                examples_per_s=tuple(float(v) for v in thr if v is not None),
                peak_memory_mb=peak, detail=t.detail or ""))
        return out

    def conclude(self, stage, results, answers):
        runs = self.runs()
        result = batch_probe.decide(runs, cap=self.options["cap"], skip=self.options["skip"])
        out = result.to_json()
        rec = next((r for r in result.rows if r.batch_size == result.recommended), None)
        steps = self.options["train_steps"]  # None: a --command probe told no step count
        if rec is not None and rec.time_per_step_s is not None and steps:
            startup = self.startup_s(rec.batch_size)
            out["training_time"] = {"steps": steps, "startup_s": startup, "seconds":
                                    batch_probe.training_time_s(rec.time_per_step_s, steps) + startup}
        out["gpus_per_trial"] = self.options["gpus_per_trial"]
        out["not_run"] = self.not_run()
        return out

    def startup_s(self, batch_size: int) -> float:
        """The start-up (spawn to first step: imports, data, model) the probe measured at this size,
        0 if unknown: a whole training run pays it once, on top of its steps."""
        study = studies.by_name(self.db, f"{self.wizard.name}.probe")
        trial = next((t for t in stage_trials(self.db, study)
                      if int(t.params[self.options["batch_param"]]) == batch_size), None)
        split = trial_split(self.db, trial) if trial is not None else None
        return split.startup_s if split is not None else 0.0

    def not_run(self) -> list[dict]:
        """The sizes stopped before they started (after a smaller one failed), with why."""
        study = studies.by_name(self.db, f"{self.wizard.name}.probe")
        return [{"batch_size": int(t.params[self.options["batch_param"]]), "detail": t.detail or ""}
                for t in stage_trials(self.db, study) if outcome(t) == "not run"]

    def finish(self, results):
        r = results["probe"]
        verdict = (f"batch size {r['recommended']}" if r.get("recommended") else "no batch size ran")
        return verdict, r
