"""The warmup procedure as a wizard: lr sweep, early-instability check, warmup sweeps, clipping.

PLAYBOOK.md "Instability, warmup and clipping": find lr* and the smallest unstable
learning rate with warmup off, then sweep warmup_steps (orders of magnitude, at most
10% of max_train_steps) at base_lr = 10 x that unstable rate (100 x as an optional
second pass) and keep the shortest warmup that trains stably; the p90 of the logged
gradient norms is the clipping threshold.
"""

from __future__ import annotations

from runner.playbook import warmup
from runner.wizards.engine import Kind
from runner.wizards.substudy import StagePlan, outcome, series, stage_trials
from store import studies
from store.trials import Trial

STAGE_FACTOR = {"warmup-10x": warmup.BASE_LR_FACTORS[0], "warmup-100x": warmup.BASE_LR_FACTORS[1]}


class Warmup(Kind):
    kind = "warmup"
    stages = ("lr-sweep", "early-check", "warmup-10x", "warmup-100x")
    titles = {
        "lr-sweep": "learning-rate sweep without warmup",
        "early-check": f"early-instability check at 2 x lr* ({warmup.EARLY_CHECK_STEPS} steps, eval every step)",
        "warmup-10x": "warmup sweep at 10 x the unstable learning rate",
        "warmup-100x": "second warmup sweep at 100 x the unstable learning rate",
    }

    # -- planning ------------------------------------------------------------------------
    def plans(self, stage, results):
        o = self.options
        name = f"{self.wizard.name}.{stage}"
        fixed = {**o["fixed"], o["warmup_param"]: 0}
        if stage == "lr-sweep":
            grid = tuple(warmup.lr_grid(o["low"], o["high"], o["points"]))
            return [StagePlan(name, self.titles[stage], (o["lr_param"], grid), fixed, o["horizon"],
                              concurrency=o["concurrency"])]
        if stage == "early-check":
            lr = 2 * results["lr-sweep"]["lr_star"]
            if o.get("eval_param"):
                fixed[o["eval_param"]] = 1
            return [StagePlan(name, self.titles[stage], (o["lr_param"], (lr,)), fixed,
                              warmup.EARLY_CHECK_STEPS)]
        base_lr = self.base_lr(stage, results)
        steps = o["max_train_steps"]
        grid = tuple(warmup.warmup_grid(steps))
        fixed = {**o["fixed"], o["lr_param"]: base_lr}
        return [StagePlan(name, f"{self.titles[stage]} (base lr {base_lr:.4g})", (o["warmup_param"], grid),
                          fixed, steps, concurrency=o["concurrency"])]

    def base_lr(self, stage: str, results: dict) -> float:
        return STAGE_FACTOR[stage] * results["lr-sweep"]["unstable_lr"]

    def skip(self, stage, results):
        sweep = results.get("lr-sweep")
        if stage == "lr-sweep" or sweep is None:
            return False
        if stage == "early-check":
            return sweep.get("lr_star") is None
        if sweep.get("unstable_lr") is None:
            return True  # nothing unstable: warmup is not needed for stability here
        return stage == "warmup-100x" and results.get("warmup-10x", {}).get("recommended") is None

    def optional(self, stage):
        return stage in ("early-check", "warmup-100x")

    # -- reading results ----------------------------------------------------------------
    def _trials(self, stage: str) -> list[Trial]:
        return stage_trials(self.db, studies.by_name(self.db, f"{self.wizard.name}.{stage}"))

    def _curve(self, t: Trial) -> warmup.LossCurve:
        steps, values = series(self.db, t, self.options["loss_metric"])
        return warmup.LossCurve(steps, values)

    def _norms(self, t: Trial | None) -> dict | None:
        if t is None:
            return None
        _, values = series(self.db, t, self.options["grad_metric"])
        finite = [float(v) for v in values if v is not None]
        return warmup.clipping(finite).to_json() if finite else None

    def conclude(self, stage, results, answers):
        o = self.options
        ts = [t for t in self._trials(stage) if outcome(t) != "not run"]
        if stage == "lr-sweep":
            runs = [warmup.SweepRun(float(t.params[o["lr_param"]]), self._curve(t), _run_outcome(t)) for t in ts]
            out = warmup.lr_sweep(runs).to_json()
            star = next((t for t in ts if out.get("lr_star") is not None
                         and float(t.params[o["lr_param"]]) == out["lr_star"]), None)
            out["clipping_at_lr_star"] = self._norms(star)
            out["trials"] = {str(float(t.params[o["lr_param"]])): t.number for t in ts}
            return out
        if stage == "early-check":
            return {"learning_rate": float(ts[0].params[o["lr_param"]]) if ts else None,
                    "stability": _stability_json(warmup.early_check(self._curve(ts[0]))) if ts else None}
        runs = [warmup.WarmupRun(int(t.params[o["warmup_param"]]), self._curve(t), _run_outcome(t)) for t in ts]
        # The bar for "trains" is what lr* achieved: a warmup sweep that is dead at every length
        # must not call its least-dead run stable.
        out = warmup.warmup_verdict(runs, base_learning_rate=self.base_lr(stage, results),
                                    max_train_steps=o["max_train_steps"],
                                    reference_progress=results["lr-sweep"].get("lr_star_progress"),
                                    optimizers=warmup.optimizers_named(self.base_study().config_text)).to_json()
        chosen = next((t for t in ts if out.get("recommended") is not None
                       and int(t.params[o["warmup_param"]]) == out["recommended"]), None)
        out["clipping"] = self._norms(chosen)
        out["trials"] = {str(int(t.params[o["warmup_param"]])): t.number for t in ts}
        return out

    def finish(self, results):
        sweep = results["lr-sweep"]
        best = next((results[s] for s in ("warmup-100x", "warmup-10x")
                     if results.get(s, {}).get("recommended") is not None), None)
        if sweep.get("unstable_lr") is None:
            verdict = "no unstable learning rate found: warmup is not needed for stability in this range"
        elif best is None:
            verdict = (f"no warmup up to {max(warmup.warmup_grid(self.options['max_train_steps']))} steps "
                       f"trained stably at 10 x {sweep['unstable_lr']:.4g}")
        else:
            verdict = (f"warmup {best['recommended']} steps trains stably at lr "
                       f"{best['base_learning_rate']:.4g} (unstable without: {sweep['unstable_lr']:.4g})")
        return verdict, {"verdict": verdict, "stages": results}


def _run_outcome(t: Trial) -> str:
    how = outcome(t)
    return {"ok": "ok", "diverged": "diverged"}.get(how, "failed")


def _stability_json(s) -> dict:
    from runner.playbook.check import jsonable

    return {"verdict": s.verdict, "reason": s.reason, "evidence": jsonable(s.evidence)}
