"""The checklist's inputs read from a real store file: downsampled curves keep their spikes."""

import math

from runner import launch
from runner.spec import load
from runner.study_data import load_checklist_inputs, load_curves
from store import metrics, trials
from store.metrics import TrialUpdate

STUDY = """
[study]
name = "curves"
command = "python trainer.py --lr {lr} --steps {max_train_steps}"
max_train_steps = 1000
objective = { metric = "val_loss", mode = "min" }
trials = 2

[params.lr]
role = "nuisance"
low = 0.01
high = 0.5
scale = "log"
"""


def stored_study(db, db_path, make_study):
    study, _ = launch.register(db, db_path, load(make_study(STUDY)))
    rows = trials.list_for_study(db, study.id)
    first = rows[0]
    assert trials.claim(db, first.id, "cpu0", "host")
    trials.mark_running(db, first.id, 12345, None)
    points = []
    for step in range(1, 1001):
        grad = 50.0 if step == 505 else 1.0
        points += [(first.id, "grad_norm", step, grad, None), (first.id, "train_loss", step, 2.0 / step, None),
                   (first.id, "lr", step, 0.1, None)]
        if step % 100 == 0:
            points.append((first.id, "val_loss", step, 1.0 / step, None))
    points.append((first.id, "train_loss", 1001, math.nan, None))
    metrics.write_updates(db, [TrialUpdate(first.id, rows=points, last_step=1001, best=(0.001, 1000))],
                          {first.id: "min"})
    trials.finish(db, first.id, trials.TrialState.COMPLETED, feasible=1)
    return study, first


def test_load_curves_downsamples_and_keeps_bucket_highs(db, db_path, make_study):
    study, first = stored_study(db, db_path, make_study)
    data = load_curves(db, study, [first.number], ["grad_norm", "val_loss"], max_points=100)
    grad = data.get(first.number, "grad_norm")
    assert len(grad.steps) <= 100 and grad.total_points == 1000
    assert max(grad.values) == 1.0 and max(grad.highs) == 50.0  # the spike lives in a bucket's high
    assert data.get(first.number, "lr") is None and data.get(first.number, "val_loss").steps[-1] == 1000
    assert data.get(first.number + 1, "grad_norm") is None


def test_checklist_inputs_read_only_the_metrics_the_checks_use(db, db_path, make_study):
    study, first = stored_study(db, db_path, make_study)
    data, curves = load_checklist_inputs(db, study)
    assert curves.metrics(first.number) == ["grad_norm", "train_loss", "val_loss"]  # not lr
    assert curves.get(first.number, "train_loss").has_nonfinite
    result = {t.number: t for t in data.trials}[first.number]
    assert result.best_value == 0.001 and result.duration_s is not None
