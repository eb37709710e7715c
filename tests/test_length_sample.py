"""The length_demo sample's schedules are what the training-length wizard assumes, and it really fits.

The wizard stretches `linear` by lengthening the phase at the peak lr (decay_steps kept) and
`cosine` by stretching its period (decay_steps = max_train_steps); the script must read the
two parameters that way, and a good constant lr must fit its training set (loss near 0).
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

SAMPLE = Path(__file__).resolve().parents[1] / "sample_studies" / "length_demo"


def _train_module():
    spec = importlib.util.spec_from_file_location("length_demo_train", SAMPLE / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_linear_holds_the_peak_until_the_decay_and_reaches_zero_at_the_end():
    lr_at = _train_module().lr_at
    assert [lr_at(s, 1.0, "linear", 400, 100) for s in (1, 300)] == [1.0, 1.0]
    assert lr_at(350, 1.0, "linear", 400, 100) == pytest.approx(0.5)
    assert lr_at(400, 1.0, "linear", 400, 100) == 0.0
    assert lr_at(123, 0.3, "constant", 400, 100) == 0.3


def test_cosine_falls_from_the_peak_to_zero_over_decay_steps():
    lr_at = _train_module().lr_at
    assert lr_at(0, 1.0, "cosine", 400, 400) == pytest.approx(1.0)
    assert lr_at(200, 1.0, "cosine", 400, 400) == pytest.approx(0.5)
    assert lr_at(400, 1.0, "cosine", 400, 400) == pytest.approx(0.0, abs=1e-12)


def test_a_good_constant_lr_fits_the_training_set(tmp_path):
    metrics = tmp_path / "m.jsonl"
    subprocess.run([sys.executable, "train.py", "--lr", "0.1", "--steps", "150"], cwd=SAMPLE, check=True,
                   capture_output=True, timeout=120, env={**os.environ, "PLAYBOOK_METRICS_FILE": str(metrics)})
    points = [json.loads(line)["m"] for line in metrics.read_text().splitlines()]
    losses = [p["train_loss"] for p in points if "train_loss" in p]
    assert len(losses) == 150 and math.isclose(losses[0], math.log(4), rel_tol=0.2)
    assert max(losses[-5:]) < 0.01 * losses[0]  # fitted: under the wizard's proposed target
