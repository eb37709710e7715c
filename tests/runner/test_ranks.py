"""Reporter under torchrun: a real 2-process DDP training (gloo, CPU) run by the real runner.

Every rank runs the same loop and calls Reporter.log; by default only rank 0's
points reach the metrics file, so each point is stored once. With all_ranks the
other ranks' points arrive under suffixed names (train_loss/rank1).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import store
from runner.cli import main as cli
from runner.report import Reporter
from store import metrics, studies, trials

DDP_SCRIPT = Path(__file__).parents[1] / "scripts" / "ddp_trainer.py"
STEPS = 10

COMMAND = ("python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_trainer.py "
           "--steps {max_train_steps} --all-ranks {all_ranks} --lr {lr}")
STUDY = f"""
[study]
name = "ddp"
trials = 1
command = "{COMMAND}"
max_train_steps = {STEPS}
objective = {{ metric = "val_loss", mode = "min" }}
concurrency = 1
timeout = 240

[params.all_ranks]
role = "scientific"
values = [0, 1]

[params.lr]
role = "nuisance"
low = 0.01
high = 0.1
scale = "log"
"""


def test_torchrun_trial_stores_each_point_once(tmp_path, db_path, capsys):
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(DDP_SCRIPT, folder / "ddp_trainer.py")
    (folder / "study.toml").write_text(STUDY)
    assert cli(["--db", str(db_path), "run", str(folder / "study.toml"), "--cpu-slots", "1"]) == 0
    db = store.connect(db_path)
    study = studies.by_name(db, "ddp")
    by_ranks = {json.loads(t.params_json)["all_ranks"]: t for t in trials.list_for_study(db, study.id)}
    rank0_only, every_rank = by_ranks[0], by_ranks[1]
    assert rank0_only.state == "completed", capsys.readouterr()
    lines = (Path(rank0_only.trial_dir) / "metrics.jsonl").read_text().splitlines()
    per_step = Counter(json.loads(line)["step"] for line in lines if "m" in json.loads(line)
                       and "train_loss" in json.loads(line)["m"])
    assert per_step == Counter(range(STEPS))  # one line per step, not one per rank
    stored = metrics.points(db, rank0_only.id)
    assert Counter((name, step) for _, name, step, _, _ in stored) == Counter(
        [("train_loss", s) for s in range(STEPS)] + [("lr", s) for s in range(STEPS)]
        + [("val_loss", s) for s in (4, 9)])
    assert [c["step"] for c in metrics.checkpoints(db, rank0_only.id)] == [4, 9]
    assert all("rank0" in c["path"] for c in metrics.checkpoints(db, rank0_only.id))

    assert every_rank.state == "completed", capsys.readouterr()
    names = Counter(name for _, name, _, _, _ in metrics.points(db, every_rank.id))
    assert names == {"train_loss": STEPS, "lr": STEPS, "val_loss": 2,
                     "train_loss/rank1": STEPS, "lr/rank1": STEPS, "val_loss/rank1": 2}
    assert [c["step"] for c in metrics.checkpoints(db, every_rank.id)] == [4, 9]  # rank 0 marks them alone


def _written(tmp_path: Path, monkeypatch, env: dict[str, str], **kwargs) -> list[dict]:
    path = tmp_path / "m.jsonl"
    path.unlink(missing_ok=True)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "PLAYBOOK_ALL_RANKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rep = Reporter(path, **kwargs)
    rep.log(3, train_loss=1.5)
    rep.checkpoint(3, "c.pt", objective=0.5)
    rep.close()
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_rank_environment_decides_who_writes(tmp_path, monkeypatch):
    assert len(_written(tmp_path, monkeypatch, {})) == 2  # a single process: everything
    assert len(_written(tmp_path, monkeypatch, {"RANK": "0", "WORLD_SIZE": "2"})) == 2
    assert _written(tmp_path, monkeypatch, {"RANK": "1", "WORLD_SIZE": "2"}) == []
    assert _written(tmp_path, monkeypatch, {"LOCAL_RANK": "1"}) == []  # a launcher that sets only LOCAL_RANK
    every = _written(tmp_path, monkeypatch, {"RANK": "1", "WORLD_SIZE": "2", "PLAYBOOK_ALL_RANKS": "1"})
    assert [r["m"] for r in every] == [{"train_loss/rank1": 1.5}]  # suffixed, and no checkpoint mark
    assert [r["m"] for r in _written(tmp_path, monkeypatch, {"RANK": "2"}, all_ranks=True)] == [
        {"train_loss/rank2": 1.5}]
    assert _written(tmp_path, monkeypatch, {"RANK": "1", "PLAYBOOK_ALL_RANKS": "1"}, all_ranks=False) == []
