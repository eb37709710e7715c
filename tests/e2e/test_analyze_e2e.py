"""`playbook-runner analyze` on a real (smaller) run of the digits sample study.

The study file is a shrunk copy of sample_studies/digits/study.toml (fewer trials and
steps, so the run takes ~10 s of CPU); its workdir points at the real sample folder,
so the trials run the real train.py and report through the real runner and store.
"""

from __future__ import annotations

import json
import math

from runner.cli import main as cli
from runner.playbook.checklist import CHECK_KEYS
from tests.sample_copies import small_digits


def numbers_in(value) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in numbers_in(v)]
    if isinstance(value, list):
        return [x for v in value for x in numbers_in(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def test_analyze_a_real_digits_run(tmp_path, capsys):
    study_file = small_digits(tmp_path / "study.toml", name="digits-small", max_train_steps=120, trials=3,
                              extra_args="--train-size 2000 --val-size 500",
                              goal="Does hidden width (32 vs 128) lower validation error once lr and "
                                   "weight decay are tuned?")
    db = str(tmp_path / "pb" / "playbook.db")
    assert cli(["--db", db, "run", str(study_file), "--cpu-slots", "2"]) == 0
    assert "6/6 finished" in capsys.readouterr().out

    assert cli(["--db", db, "analyze", "digits-small", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    checks = {c["key"]: c for c in report["checks"]}
    assert list(checks) == list(CHECK_KEYS)
    for key, check in checks.items():
        assert check["verdict"] in ("ok", "warning", "problem", "n/a"), key
        assert check["summary"] and check["evidence"], key
    # The checks that need curves found them: real numbers, not n/a.
    for key in ("search_space_boundary", "sampling_density", "infeasible_trials", "training_curves",
                "training_length", "gradient_norm", "isolation", "compute"):
        assert checks[key]["verdict"] != "n/a", (key, checks[key]["summary"])
        assert numbers_in(checks[key]["evidence"]), key
    grads = checks["gradient_norm"]["evidence"]
    assert grads["recommended_threshold"] > 0 and all(r["p50"] <= r["p90"] <= r["p99"] for r in grads["trials"])
    assert checks["compute"]["evidence"]["axis"] == "seconds"  # examples_per_s x batch_size
    assert len(checks["isolation"]["evidence"]["isolation"]["width"]) == 2
    assert all(math.isfinite(x) for x in numbers_in(report))

    assert cli(["--db", db, "analyze", "digits-small"]) == 0
    text = capsys.readouterr().out
    for check in report["checks"]:
        assert check["title"].split(" (")[0][:30] in text.replace("\n", " ")
    assert "[ok]" in text or "[warning]" in text

    assert cli(["--db", db, "analyze", "no-such-study"]) == 2
    assert "no study named 'no-such-study'" in capsys.readouterr().err
