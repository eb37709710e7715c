"""runner.integrations with the real frameworks: what a Trainer run writes through the callbacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import torch

from runner.report import Reporter

SAMPLES = Path(__file__).resolve().parents[2] / "sample_studies"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_runner_imports_no_framework():
    code = ("import sys, runner, runner.cli, runner.report, runner.integrations; "
            "bad = [m for m in ('transformers', 'lightning', 'pytorch_lightning', 'torch') "
            "if m in sys.modules]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


class _Tokens(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.ids = torch.randint(16, (n, 8), generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def test_hf_callback_under_gradient_accumulation(tmp_path, monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    from runner.integrations.hf import PlaybookCallback

    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "metrics.jsonl"
    model = GPT2LMHeadModel(GPT2Config(vocab_size=16, n_positions=8, n_embd=16, n_layer=1, n_head=2,
                                       bos_token_id=0, eos_token_id=0))
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4,
        gradient_accumulation_steps=2, learning_rate=1e-3, logging_steps=1, eval_strategy="steps",
        eval_steps=2, save_strategy="steps", save_steps=2, report_to="none", disable_tqdm=True,
        use_cpu=True, save_only_model=True)
    callback = PlaybookCallback(Reporter(path), eval_prefix="val_")
    trainer = Trainer(model=model, args=args, train_dataset=_Tokens(64), eval_dataset=_Tokens(8),
                      callbacks=[callback])
    trainer.train()
    trainer.evaluate(_Tokens(8), metric_key_prefix="test")  # after training, at the last step
    callback.reporter.close()
    records = _records(path)
    written = Counter((name, r["step"]) for r in records for name in r.get("m", {}))
    assert max(written.values()) == 1
    assert written[("test_loss", 4)] == 1 and "test_runtime" not in {name for name, _ in written}
    series = Counter(name for r in records for name in r.get("m", {}))
    # One train_loss per step: Trainer's end-of-training average (also called train_loss) is not a point.
    assert {n: series[n] for n in ("train_loss", "grad_norm", "lr", "examples_per_s")} == dict.fromkeys(
        ("train_loss", "grad_norm", "lr", "examples_per_s"), 4)
    assert series["val_loss"] == 2 and "eval_loss" not in series and "val_runtime" not in series
    assert "epoch" not in series and "loss" not in series and "learning_rate" not in series
    val = {r["step"]: r["m"]["val_loss"] for r in records if "val_loss" in r.get("m", {})}
    marks = [(r["step"], Path(r["checkpoint"]).name, r["objective"]) for r in records if "checkpoint" in r]
    assert marks == [(2, "checkpoint-2", val[2]), (4, "checkpoint-4", val[4])]
    assert all(r["m"]["examples_per_s"] > 0 for r in records if "examples_per_s" in r.get("m", {}))


def test_lightning_reports_the_norm_before_clipping(tmp_path):
    """Clipped at 0.001, the gradient norms reported are still the real ones (far above it)."""
    metrics = tmp_path / "metrics.jsonl"
    env = {**os.environ, "PLAYBOOK_METRICS_FILE": str(metrics)}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "PLAYBOOK_PARAMS"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "train.py", "--steps", "6", "--eval-every", "3", "--grad-clip", "0.001",
         "--train-size", "256", "--val-size", "64", "--out", str(tmp_path)],
        cwd=SAMPLES / "lightning_tiny", env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    records = _records(metrics)
    norms = {r["step"]: r["m"]["grad_norm"] for r in records if "grad_norm" in r.get("m", {})}
    assert sorted(norms) == list(range(6))
    assert min(norms.values()) > 0.1  # unclipped: clipping would have made them <= 0.001
    lrs = [r["m"]["lr"] for r in records if "lr" in r.get("m", {})]
    assert lrs[0] > lrs[-1]  # the cosine schedule's lr, as stepped every optimizer step


def test_hf_callback_under_torchrun_reports_from_process_zero_only(tmp_path):
    """Two DDP processes (gloo, CPU) with every rank's Reporter enabled: the callback itself keeps to
    world process zero, so no rank-suffixed names appear and each point is written once."""
    metrics = tmp_path / "metrics.jsonl"
    env = {**os.environ, "PLAYBOOK_METRICS_FILE": str(metrics), "PLAYBOOK_ALL_RANKS": "1"}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "PLAYBOOK_PARAMS"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "train.py",
         "--steps", "6", "--eval-every", "3", "--train-size", "256", "--val-size", "32", "--out", str(tmp_path)],
        cwd=SAMPLES / "hf_tiny", env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    records = _records(metrics)
    written = Counter((name, r["step"]) for r in records for name in r.get("m", {}))
    assert max(written.values()) == 1
    assert not [name for name, _ in written if "/rank" in name]
    assert sorted(step for name, step in written if name == "train_loss") == list(range(1, 7))
    assert [r["step"] for r in records if "checkpoint" in r] == [3, 6]


def test_sample_study_files_load():
    import runner.spec

    for folder, objective in (("hf_tiny", "eval_loss"), ("lightning_tiny", "val_error")):
        spec = runner.spec.load(SAMPLES / folder / "study.toml")
        assert spec.workdir == (SAMPLES / folder).resolve()
        assert spec.objective_metric == objective and spec.objective_mode == "min"
        assert spec.by_role("scientific") and spec.by_role("nuisance")


def test_lightning_default_checkpoints_go_to_the_trial_folder(tmp_path, monkeypatch):
    """A ModelCheckpoint without a dirpath saves under the trial's folder, not the working directory;
    without a monitor its checkpoint is marked with the objective logged at its step."""
    import lightning as L

    from runner.integrations.lightning import PlaybookCallback, PlaybookLogger

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            loss = self.layer(batch[0]).pow(2).mean()
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trial_dir, workdir = tmp_path / "trial", tmp_path / "workdir"
    trial_dir.mkdir(), workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("PLAYBOOK_TRIAL_DIR", str(trial_dir))
    monkeypatch.setenv("PLAYBOOK_METRICS_FILE", str(trial_dir / "metrics.jsonl"))
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    reporter = Reporter()
    trainer = L.Trainer(max_steps=3, log_every_n_steps=1, logger=PlaybookLogger("train_loss", reporter),
                        callbacks=[PlaybookCallback(reporter)], enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(Tiny(), torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(32, 2)),
                                                     batch_size=8))
    reporter.close()
    saved = list(trial_dir.rglob("*.ckpt"))
    assert saved and not list(workdir.rglob("*.ckpt"))
    records = _records(trial_dir / "metrics.jsonl")
    marks = [r for r in records if "checkpoint" in r]
    assert [Path(r["checkpoint"]) for r in marks] == saved
    # No monitor: marked with the objective logged at the checkpoint's own step (the last of 3: index 2).
    losses = {r["step"]: r["m"]["train_loss"] for r in records if "train_loss" in r.get("m", {})}
    assert [(r["step"], r["objective"]) for r in marks] == [(2, losses[2])]
