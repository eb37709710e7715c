import json
import math

import numpy as np
from playbook_synth import LR, WD, WIDTH, curve, curves, lr_grid, study, trial

from runner.playbook.check import Check, jsonable, worst
from runner.playbook.checklist import CHECK_KEYS, ChecklistOptions, overall, reads_metric, run_checklist

STEPS = np.arange(0, 501, 25)


def small_study():
    """Two widths x 6 lrs with curves for every trial; the top lr diverges."""
    trials, items = [], []
    for i, lr in enumerate(lr_grid(6)):
        for j, width in enumerate((32, 512)):
            n = 2 * i + j + 1
            params = {"learning_rate": lr, "weight_decay": 1e-4, "width": width, "batch_size": 64}
            if i == 5:
                trials.append(trial(n, params, feasible=False, reason="diverged", last_step=40))
                continue
            val = 0.2 + abs(np.log10(lr) + 2.5) / 10 + np.exp(-STEPS / 100) - 0.02 * j
            trials.append(trial(n, params, float(val.min()), best_step=500, last_step=500,
                                started_at=0.0, ended_at=10.0 * (1 + j)))
            items += [curve(n, "val_loss", STEPS, val), curve(n, "train_loss", STEPS, val - 0.1),
                      curve(n, "grad_norm", STEPS, np.full(len(STEPS), 1.0 + i))]
    return study((LR, WD, WIDTH), trials, max_train_steps=500), curves(*items)


def test_every_check_answers_with_a_verdict_and_strict_json():
    s, c = small_study()
    checks = run_checklist(s, c)
    assert [ch.key for ch in checks] == list(CHECK_KEYS)
    for ch in checks:
        assert ch.verdict in ("ok", "warning", "problem", "n/a") and ch.summary and ch.title
        assert "\n" not in ch.summary
    text = json.dumps([ch.to_dict() for ch in checks], allow_nan=False)
    assert "learning_rate" in text
    verdicts = {ch.key: ch.verdict for ch in checks}
    assert verdicts["infeasible_trials"] == "ok"  # 2 of 12: data, not a problem
    assert verdicts["training_length"] == "warning"  # every best step at the end
    assert verdicts["compute"] != "n/a"  # trial times give a seconds axis
    assert overall(checks) == worst([ch.verdict for ch in checks])


def test_options_reach_the_checks():
    s, c = small_study()
    checks = {ch.key: ch for ch in run_checklist(s, c, ChecklistOptions(grad_metric="nope", lr_param="weight_decay"))}
    assert checks["gradient_norm"].verdict == "n/a"
    assert checks["instability"].evidence["lr_param"] == "weight_decay"


def test_reads_metric_selects_what_the_checks_use():
    wanted = [n for n in ("val_loss", "train_loss", "grad_norm", "examples_per_s", "flops", "lr", "val_error",
                          "elapsed_s", "loss") if reads_metric(n, "val_loss")]
    assert wanted == ["val_loss", "train_loss", "grad_norm", "examples_per_s", "flops", "elapsed_s", "loss"]


def test_worst_and_jsonable():
    assert worst(["ok", "n/a", "warning"]) == "warning" and worst(["n/a"]) == "n/a" and worst([]) == "n/a"
    assert worst(["warning", "problem", "ok"]) == "problem"
    assert jsonable({1: (np.float64(math.nan), np.int64(3), math.inf, "x")}) == {"1": [None, 3, None, "x"]}
    check = Check("k", "t", "ok", "s", {"a": np.float32(0.5)})
    assert json.dumps(check.to_dict(), allow_nan=False)


def test_when_the_objective_never_arrived_the_checks_say_so_not_no_feasible_trial():
    params = {"learning_rate": 0.01, "weight_decay": 1e-4, "width": 32, "batch_size": 64}
    missing = [trial(n, params, state="failed", reason="no_objective", feasible=None) for n in (1, 2)]
    checks = run_checklist(study((LR, WD, WIDTH), missing, max_train_steps=500), curves())
    summaries = [c.summary for c in checks]
    assert not any(s.startswith(("no feasible trial yet", "no feasible trial with a")) for s in summaries), summaries
    explained = [c for c in checks if c.summary.startswith("no trial reported val_loss")]
    assert explained and all(c.verdict == "n/a" for c in explained)
    assert explained[0].summary == "no trial reported val_loss: 2 trial(s) ended no_objective (trials 1, 2)"
    assert "Reporter" in explained[0].advice
    gradients = next(c for c in checks if c.key == "gradient_norm")
    assert gradients.summary == "no trial reported val_loss: 2 trial(s) ended no_objective (trials 1, 2)"
    # one trial with an objective: the checks speak of the study as usual
    ok = trial(3, params, 0.5, started_at=0.0, ended_at=1.0)
    assert not any(c.summary.startswith("no trial reported")
                   for c in run_checklist(study((LR, WD, WIDTH), [*missing, ok], max_train_steps=500), curves()))
