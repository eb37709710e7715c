"""The clipping threshold from every logged step, read through a real store, and one answer in every view."""

import numpy as np
import pytest

from runner import launch
from runner.playbook.gradients import gradient_norm
from runner.spec import load
from runner.study_data import load_checklist_inputs
from store import metrics, trials
from store.metrics import TrialUpdate
from tui.data.trial_data import read_trial_detail

STUDY = """
[study]
name = "norms"
command = "python trainer.py --lr {lr}"
max_train_steps = 10000
objective = { metric = "val_loss", mode = "min" }
trials = 1

[params.lr]
role = "nuisance"
low = 0.01
high = 0.5
scale = "log"
"""
STEPS = 10_000


def norms() -> np.ndarray:
    """Heavy-tailed norms over 10,000 steps, with a bump every 4th step (a periodic batch of long
    sequences): a curve downsampled to 500 points keeps only every 20th step and misses the bumps."""
    base = np.random.default_rng(7).lognormal(0.0, 0.5, STEPS)
    return base * np.where(np.arange(1, STEPS + 1) % 4 == 0, 3.0, 1.0)


@pytest.fixture
def stored(db, db_path, make_study):
    study, _ = launch.register(db, db_path, load(make_study(STUDY)))
    t = trials.list_for_study(db, study.id)[0]
    assert trials.claim(db, t.id, "cpu0", "host")
    trials.mark_running(db, t.id, 12345, None)
    grad = norms()
    rows = [(t.id, "grad_norm", s, float(g), None) for s, g in zip(range(1, STEPS + 1), grad, strict=True)]
    rows += [(t.id, "val_loss", s, 1.0 / s, None) for s in range(1000, STEPS + 1, 1000)]
    metrics.write_updates(db, [TrialUpdate(t.id, rows=rows, last_step=STEPS, best=(1.0 / STEPS, STEPS))],
                          {t.id: "min"})
    trials.finish(db, t.id, trials.TrialState.COMPLETED, feasible=1)
    return study, t, grad


def test_analyze_clips_at_the_p90_of_every_step_within_1_percent(db, stored):
    study, _, grad = stored
    check = gradient_norm(*load_checklist_inputs(db, study))
    truth = float(np.percentile(grad, 90))
    threshold = check.evidence["recommended_threshold"]
    assert threshold == pytest.approx(truth, rel=0.01)
    row = check.evidence["trials"][0]
    assert row["points"] == STEPS and row["every_step"] is True
    # At the threshold 10% of the updates are clipped, as the playbook's default means.
    assert row["clipped_share_at_threshold"] == pytest.approx(0.10, abs=0.001)


def test_the_trial_screen_shows_the_same_p90_and_histogram_as_analyze(db, stored):
    study, t, grad = stored
    check = gradient_norm(*load_checklist_inputs(db, study))
    stats = read_trial_detail(db, t.id, None, "val_loss", "min").grad_stats
    assert stats.p90 == check.evidence["recommended_threshold"] and stats.sampled == STEPS
    histogram = check.evidence["best_histogram"]
    assert list(stats.edges) == histogram["edges"] and list(stats.counts) == histogram["counts"]
    assert sum(stats.counts) == STEPS  # every step in a bin, the spikes too
    assert stats.edges[0] == pytest.approx(grad.min()) and stats.edges[-1] == pytest.approx(grad.max())
