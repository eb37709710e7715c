"""keep_checkpoints through the real CLI: a tiny torch training saves a checkpoint per evaluation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import torch

import store
from store import metrics, studies, trials

REPO = Path(__file__).resolve().parents[2]

TRAIN = textwrap.dedent("""
    import argparse, os, sys
    import torch
    sys.path.insert(0, {repo!r})
    from runner.report import Reporter

    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float)
    p.add_argument("--steps", type=int)
    p.add_argument("--out")
    args = p.parse_args()
    torch.manual_seed(0)
    x, xv = torch.randn(64, 4), torch.randn(32, 4)
    w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    y, yv = x @ w + 0.3 * torch.randn(64, 1), xv @ w
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    report = Reporter(flush_every=1)
    for step in range(1, args.steps + 1):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        report.log(step, train_loss=loss.item())
        if step % 3 == 0:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(xv), yv).item()
            report.log(step, val_loss=val)
            path = os.path.join(args.out, f"ckpt-{{step:03d}}.pt")
            torch.save(model.state_dict(), path)
            report.checkpoint(step, path, objective=val)
    report.close()
""")

STUDY = """
[study]
name = "keep"
command = "python train.py --lr {lr} --steps {max_train_steps} --out {trial_dir}"
max_train_steps = 30
objective = { metric = "val_loss", mode = "min" }
trials = 2
keep_checkpoints = 3

[params.lr]
role = "nuisance"
low = 0.05
high = 0.9
"""


def test_only_the_best_checkpoints_stay_on_disk_and_the_store_keeps_every_evaluation(tmp_path, db_path):
    (tmp_path / "train.py").write_text(TRAIN.format(repo=str(REPO)))
    (tmp_path / "keep.toml").write_text(STUDY)
    run = subprocess.run([sys.executable, "-m", "runner", "--db", str(db_path), "run", str(tmp_path / "keep.toml"),
                          "--cpu-slots", "2"], capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout + run.stderr

    db = store.connect(db_path)
    for trial in trials.list_for_study(db, studies.by_name(db, "keep").id):
        rows = metrics.checkpoints(db, trial.id)
        assert len(rows) == 10  # every evaluation's checkpoint is still in the store
        best3 = sorted(rows, key=lambda r: r["objective"])[:3]
        on_disk = sorted(p.name for p in Path(trial.trial_dir).glob("ckpt-*.pt"))
        assert on_disk == sorted(Path(r["path"]).name for r in best3)
        best = min(rows, key=lambda r: r["objective"])
        assert set(torch.load(best["path"])) == {"weight", "bias"}  # the best file is whole
