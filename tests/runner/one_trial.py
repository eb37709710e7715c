"""One manual trial of tests/scripts/trainer.py, registered in a real store: what runner tests start from."""

from __future__ import annotations

import store
from runner import launch
from runner.spec import load
from store import trials

STUDY = """
[study]
name = "s"
command = "python trainer.py --lr {lr} --steps {max_train_steps}"
max_train_steps = 5
objective = { metric = "val_loss", mode = "min" }
trials = 0
concurrency = 1

[params.lr]
role = "nuisance"
values = [0.1]

[[trial]]
lr = 0.1
"""


def registered(make_study, db_path):
    """The database, the study and its one queued trial."""
    db = store.connect(db_path)
    study, _ = launch.register(db, db_path, load(make_study(STUDY)))
    (trial,) = trials.list_for_study(db, study.id)
    return db, study, trial
