"""`playbook-runner compare` through the real CLI, on two versions of a tiny study that really ran."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.tui.tui_helpers import STUDY_TOML, TRAIN_PY

# val_loss = (1 - lr) ** 5 / width: the first version's lr 0.1, the second's 0.3 (better at every width).
FIRST = ((0.1, 4), (0.1, 8))
SECOND = ((0.3, 4), (0.3, 8), (0.02, 4))


def study_file(folder: Path, manual: tuple[tuple[float, int], ...], name: str = "tiny") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(TRAIN_PY)
    path = folder / "study.toml"
    path.write_text(STUDY_TOML.format(name=name).replace("trials = 1", "trials = 0")
                    + "".join(f"\n[[trial]]\nlr = {lr}\nwidth = {width}\n" for lr, width in manual))
    return path


def cli(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "--db", str(db), *args],
                          capture_output=True, text=True, timeout=240)


def two_versions(tmp_path: Path, db: Path) -> None:
    """tiny@1 (lr 0.1 at widths 4 and 8), then the changed file as tiny v2 (lr 0.3 and 0.02), both run."""
    path = study_file(tmp_path / "study", FIRST)
    first = cli(db, "run", str(path), "--cpu-slots", "2")
    assert "[tiny] 2/2 finished: 2 completed" in first.stdout, first.stdout + first.stderr
    study_file(tmp_path / "study", SECOND)
    second = cli(db, "run", str(path), "--cpu-slots", "2")
    assert "[tiny v2] 3/3 finished: 3 completed" in second.stdout, second.stdout + second.stderr


def test_compare_two_versions_best_per_scientific_value_side_by_side(tmp_path, db_path):
    two_versions(tmp_path, db_path)

    shown = cli(db_path, "compare", "tiny@1", "tiny")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == ("compare tiny v1 (2 trials) with tiny v2 (3 trials): best val_loss (min) per "
                        "scientific value")
    assert lines[1].split() == ["value", "tiny", "v1", "tiny", "v2", "better"]
    assert lines[2].split() == ["width=4", "0.1476", "(#1)", "0.04202", "(#1)", "tiny", "v2"]
    assert lines[3].split() == ["width=8", "0.07381", "(#2)", "0.02101", "(#2)", "tiny", "v2"]

    record = json.loads(cli(db_path, "compare", "tiny@1", "tiny@2", "--json").stdout)
    assert (record["a"]["address"], record["b"]["address"], record["same_objective"]) == ("tiny@1", "tiny@2", True)
    assert [(r["value"], r["a"]["trial"], r["b"]["trial"], r["better"]) for r in record["rows"]] == \
        [("4", 1, 1, "b"), ("8", 2, 2, "b")]


def test_compare_says_clearly_what_it_cannot_compare(tmp_path, db_path):
    path = study_file(tmp_path / "study", FIRST)
    assert cli(db_path, "run", str(path)).returncode == 0
    same = cli(db_path, "compare", "tiny", "tiny@1")
    assert same.returncode == 2
    assert "error: compare: tiny and tiny@1 are the same study (tiny@1); name two studies" in same.stderr
    missing = cli(db_path, "compare", "tiny", "tiny@4")
    assert missing.returncode == 2 and "study 'tiny' has no version '4'" in missing.stderr
