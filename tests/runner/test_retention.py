"""Which checkpoint files keep_checkpoints deletes (runner.retention), on real files."""

from __future__ import annotations

import pytest

from runner.retention import Checkpoint, deletable, to_delete


def ckpts(*objectives):
    return [Checkpoint(step, f"c{step}.pt", obj) for step, obj in enumerate(objectives)]


def test_keeps_the_n_best_for_the_objective_mode():
    stored = ckpts(0.9, 0.2, 0.5, 0.1, 0.7)
    assert sorted(to_delete(stored, 2, "min")) == ["c0.pt", "c2.pt", "c4.pt"]
    assert sorted(to_delete(stored, 2, "max")) == ["c1.pt", "c2.pt", "c3.pt"]


def test_never_deletes_the_best_a_shared_path_or_an_unranked_checkpoint():
    stored = [Checkpoint(1, "best.pt", 0.1), Checkpoint(2, "best.pt", 0.9), Checkpoint(3, "last.pt", None),
              Checkpoint(4, "c4.pt", 0.8)]
    assert to_delete(stored, 1, "min") == ["c4.pt"]


def test_a_tie_keeps_the_later_step():
    assert to_delete(ckpts(0.5, 0.5), 1, "min") == ["c0.pt"]


def test_fewer_checkpoints_than_n_deletes_nothing():
    assert to_delete(ckpts(0.3, 0.2), 5, "min") == []


@pytest.mark.parametrize("path, inside", [
    ("trial-0001/ckpt.pt", True),
    ("trial-0001/hf/checkpoint-500", True),
    ("trial-0001", False),  # the trial folder itself
    ("trial-0001/../trial-0002/ckpt.pt", False),  # another trial's file
    ("shared.pt", False),  # outside every trial folder
])
def test_only_paths_inside_the_trial_folder_are_deletable(tmp_path, path, inside):
    trial_dir = tmp_path / "trial-0001"
    trial_dir.mkdir()
    assert (deletable(path, tmp_path, trial_dir) is not None) == inside
    assert (deletable(str(tmp_path / path), tmp_path / "elsewhere", trial_dir) is not None) == inside


@pytest.mark.parametrize("value, message", [
    ("0", "study.keep_checkpoints: expected an integer >= 1, got 0"),
    ('"all"', "study.keep_checkpoints: expected an integer, got 'all'"),
])
def test_a_bad_keep_checkpoints_is_named(tmp_path, value, message):
    from runner.spec import SpecError, load

    (tmp_path / "s.toml").write_text(
        '[study]\nname = "s"\ncommand = "python t.py"\nmax_train_steps = 5\n'
        f'objective = {{ metric = "loss" }}\nkeep_checkpoints = {value}\n')
    with pytest.raises(SpecError) as info:
        load(tmp_path / "s.toml")
    assert message in info.value.problems
