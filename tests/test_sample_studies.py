"""The sample studies are real trainings: run each train.py as the runner would and check what it reports.

Each script runs as a subprocess (the interpreter running pytest, the study's
folder as working directory, PLAYBOOK_METRICS_FILE set), and the assertions
read the JSON lines the Reporter wrote. Every test here takes a few seconds
on one or two CPU cores.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import runner.spec

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_studies"
DIGITS = SAMPLES / "digits"
TRANSFORMER = SAMPLES / "tiny_transformer"
UNIGRAM_ENTROPY = 2.87  # nats: the loss of predicting character frequencies only (textgen corpus)

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")


def _env(metrics: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PLAYBOOK_METRICS_FILE", "PLAYBOOK_PARAMS")}
    if metrics is not None:
        env["PLAYBOOK_METRICS_FILE"] = str(metrics)
    return env


def _start(folder: Path, args: list[str], metrics: Path | None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "train.py", *args], cwd=folder, env=_env(metrics),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _records(metrics: Path) -> list[dict]:
    return [json.loads(line) for line in metrics.read_text().splitlines()]  # NaN/Infinity parse


def _series(records: list[dict], name: str) -> dict[int, float]:
    return {r["step"]: r["m"][name] for r in records if name in r.get("m", {})}


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _smoothed_min(losses: list[float], window: int = 10) -> float:
    return min(_mean(losses[i:i + window]) for i in range(len(losses) - window + 1))


# -- study files ----------------------------------------------------------------


@pytest.mark.parametrize("folder", [DIGITS, TRANSFORMER], ids=lambda p: p.name)
def test_study_file_loads(folder):
    spec = runner.spec.load(folder / "study.toml")
    assert spec.workdir == folder.resolve()
    assert (spec.workdir / spec.argv_template[1]).is_file()  # python train.py ...
    assert spec.argv_template[0] == sys.executable  # `python` means the runner's interpreter
    assert spec.by_role("scientific") and spec.by_role("nuisance")


def test_study_objectives():
    digits = runner.spec.load(DIGITS / "study.toml")
    assert (digits.name, digits.objective_metric, digits.objective_mode) == ("digits", "val_error", "min")
    transformer = runner.spec.load(TRANSFORMER / "study.toml")
    assert (transformer.name, transformer.objective_metric) == ("tiny-transformer", "val_loss")
    warmups = transformer.param("warmup_steps").values
    assert 0 in warmups and max(warmups) <= transformer.max_train_steps // 10


# -- digits -----------------------------------------------------------------------


@needs_torch
def test_digits_learns_and_reports_every_step(tmp_path):
    metrics, out_dir = tmp_path / "metrics.jsonl", tmp_path / "trial"
    rc, out, err = _finish(_start(DIGITS, ["--lr", "0.1", "--width", "128", "--steps", "300",
                                           "--eval-every", "50", "--out", str(out_dir)], metrics))
    assert rc == 0, err
    records = _records(metrics)
    losses = _series(records, "train_loss")
    assert sorted(losses) == list(range(1, 301))
    for name in ("grad_norm", "lr", "examples_per_s"):
        assert sorted(_series(records, name)) == list(range(1, 301)), name
    assert all(math.isfinite(v) for v in losses.values())
    assert losses[1] > 2.0  # about ln(10): chance
    assert _mean(losses[s] for s in range(251, 301)) < 0.5  # really learns
    val_error = _series(records, "val_error")
    assert sorted(val_error) == [50, 100, 150, 200, 250, 300]
    assert sorted(_series(records, "val_loss")) == sorted(val_error)
    assert val_error[300] < 0.25  # chance is 0.9
    lrs = _series(records, "lr")
    assert lrs[1] == pytest.approx(0.1) and lrs[300] < 0.001  # cosine decay to ~0
    # Checkpoint marks carry the objective; only the best file is kept on disk.
    marks = [r for r in records if "checkpoint" in r]
    assert marks and [m["objective"] for m in marks] == sorted((m["objective"] for m in marks), reverse=True)
    assert Path(marks[-1]["checkpoint"]).is_file()
    assert [p.name for p in out_dir.iterdir()] == [Path(marks[-1]["checkpoint"]).name]


@needs_torch
def test_digits_diverges_at_a_huge_learning_rate(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    rc, out, err = _finish(_start(DIGITS, ["--lr", "3", "--steps", "200"], metrics))
    assert rc == 1 and "diverged" in err
    losses = _series(_records(metrics), "train_loss")
    last = losses[max(losses)]
    assert not math.isfinite(last)  # reported, so the runner marks the trial diverged
    assert max(losses) < 200  # and it stopped early instead of training on


# -- tiny transformer --------------------------------------------------------------


@needs_torch
def test_transformer_needs_warmup_at_high_learning_rate(tmp_path):
    """At lr 0.02 (post-LN, Adam): no warmup never learns; a 20-step warmup trains stably."""
    runs = {}
    for warmup in (0, 20):
        metrics = tmp_path / f"warmup{warmup}.jsonl"
        proc = _start(TRANSFORMER, ["--lr", "0.02", "--warmup-steps", str(warmup), "--steps", "200",
                                    "--eval-every", "50", "--seed", "0"], metrics)
        runs[warmup] = (proc, metrics)
    results = {}
    for warmup, (proc, metrics) in runs.items():
        rc, out, err = _finish(proc)
        assert rc == 0, err
        records = _records(metrics)
        losses = _series(records, "train_loss")
        assert sorted(losses) == list(range(1, 201))
        assert sorted(_series(records, "grad_norm")) == list(range(1, 201))
        results[warmup] = (records, [losses[s] for s in range(1, 201)])

    records, cold = results[0]
    assert all(math.isfinite(v) for v in cold)
    cold_final = _mean(cold[-20:])
    # Stuck near the unigram entropy: the first full-size steps broke the network.
    assert cold_final > UNIGRAM_ENTROPY - 0.6
    assert _series(records, "val_loss")[200] > UNIGRAM_ENTROPY - 0.6

    records, warm = results[20]
    assert all(math.isfinite(v) for v in warm)
    warm_final = _mean(warm[-20:])
    assert warm_final < 1.3  # learned the text's structure
    assert warm_final < _smoothed_min(warm) + 0.15  # still at its best at the end: stable
    assert cold_final > warm_final + 1.0
    assert _series(records, "val_loss")[200] < 1.3
    lrs = _series(records, "lr")
    assert lrs[1] == pytest.approx(0.001) and lrs[10] == pytest.approx(0.01)
    assert lrs[20] == pytest.approx(0.02) and lrs[200] == pytest.approx(0.02)


@needs_torch
def test_transformer_clips_but_logs_the_unclipped_norm(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    rc, out, err = _finish(_start(TRANSFORMER, ["--lr", "0.01", "--steps", "20", "--eval-every", "10",
                                                "--clip", "0.1"], metrics))
    assert rc == 0, err
    records = _records(metrics)
    assert max(_series(records, "grad_norm").values()) > 0.1
    assert sorted(_series(records, "val_loss")) == [10, 20]


# -- both --------------------------------------------------------------------------


@needs_torch
@pytest.mark.parametrize("folder", [DIGITS, TRANSFORMER], ids=lambda p: p.name)
def test_runs_alone_without_the_runner(folder):
    rc, out, err = _finish(_start(folder, ["--steps", "20", "--eval-every", "10"], metrics=None))
    assert rc == 0, err
    assert "step    20" in out


def _load_script(folder: Path, name: str, monkeypatch):
    monkeypatch.syspath_prepend(str(folder))  # for its data module, as when run from its folder
    spec = importlib.util.spec_from_file_location(name, folder / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing must not train
    return module


@needs_torch
def test_hand_written_optimizers_match_torch_optim(monkeypatch):
    """The scripts avoid torch.optim (its first use imports torch._dynamo, ~1.3 s); same updates."""
    import torch

    digits = _load_script(DIGITS, "digits_train", monkeypatch)
    transformer = _load_script(TRANSFORMER, "tiny_transformer_train", monkeypatch)
    cases = [
        (lambda ps: digits.NesterovSGD(ps, momentum=0.9, weight_decay=1e-3),
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
        (lambda ps: transformer.Adam(ps, beta2=0.98),
         lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.9, 0.98), eps=1e-8)),
    ]
    gen = torch.Generator().manual_seed(0)
    for make_ours, make_ref in cases:
        ours = [torch.nn.Parameter(torch.randn(4, 3, generator=gen)), torch.nn.Parameter(torch.randn(5, generator=gen))]
        ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
        opt_ours, opt_ref = make_ours(ours), make_ref(ref)
        for _ in range(10):
            for a, b in zip(ours, ref, strict=True):
                a.grad = torch.randn(a.shape, generator=gen)
                b.grad = a.grad.clone()
            opt_ours.step(0.05)
            opt_ref.step()
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-5, atol=1e-6)
