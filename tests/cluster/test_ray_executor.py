"""The Ray executor on a real two-node cluster on this machine, run with the real CLI.

The cluster and the runners live in a network and PID namespace of their own (unshare): Ray
binds only loopback there, and everything it started dies with the namespace. One cluster
serves the seven scenarios (tests/cluster/ray_driver.py), about a minute and a half in all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("ray_driver.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("ray")
    done = subprocess.run(
        ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child",
         sys.executable, str(DRIVER), "all", str(work)],
        capture_output=True, text=True, timeout=280, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the driver printed no result:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    results = json.loads(lines[-1][len("RESULT "):])
    assert "error" not in results, results["error"]
    return results


def scenario(results: dict, name: str) -> dict:
    found = results[name]
    assert "error" not in found, found["error"]
    return found


def test_a_node_that_joins_mid_study_takes_trials_and_each_trial_gets_its_cpus(cluster_run):
    run = scenario(cluster_run, "grow")
    assert run["code"] == 0, run["log"]
    rows = run["trials"]
    assert [r["state"] for r in rows] == ["completed"] * 4, rows
    # At first the head's 2 CPUs were one slot for trials of cpus_per_trial = 2; node b's came later.
    assert "ray cluster: 0 GPU slot(s), 2 CPU slot(s)" in run["log"], run["log"]
    assert "ray capacity now 4 CPU slot(s), 0 GPU slot(s) (was 2, 0)" in run["log"], run["log"]
    before, _, after = run["log"].partition("ray capacity now")
    assert "1 running, 3 queued" in before and "2 running" not in before, run["log"]  # one at a time...
    assert "2 running" in after, run["log"]  # ...then one on each node
    on = [r["placement"]["scratch"].split("/scratch-")[1][0] for r in rows]
    assert on[0] == "a" and "b" in on, on  # the node that joined was used
    assert run["points"] == {str(n): list(range(10)) for n in (1, 2, 3, 4)}


def test_a_trial_no_node_can_hold_says_why_it_waits_and_stop_ends_it_at_once(cluster_run):
    run = scenario(cluster_run, "unplaceable")
    waiting = run["waiting"]["detail"]
    assert waiting.startswith("waiting for a node: it asks for 3 CPUs, no Ray node has that much "
                              "(the largest has 2 CPUs)"), waiting
    assert waiting in run["status"] and "(1 starting trial(s))" in run["status"], run["status"]
    assert run["code"] == 0, run["log"]  # the stop reached it: the study ended
    (row,) = run["trials"]
    assert row["state"] == "stopped" and row["exit"]["never_placed"], row
    assert row["exit"]["returncode"] == -15


def test_trials_spread_over_both_nodes_and_ship_their_files_back(cluster_run):
    run = scenario(cluster_run, "spread")
    assert run["code"] == 0, run["log"]
    rows = run["trials"]
    assert [r["state"] for r in rows] == ["completed"] * 4
    nodes = {r["placement"]["node_id"] for r in rows}
    assert len(nodes) == 2, rows  # SPREAD: two trials on each node
    # Each ran in its node's own scratch folder, not in the runner's trial folder...
    assert {r["placement"]["scratch"].split("/scratch-")[1][0] for r in rows} == {"a", "b"}
    # ...and its files came back to the runner's trial folder: every point stored, its output, its end.
    assert run["points"] == {str(n): list(range(10)) for n in (1, 2, 3, 4)}
    assert all(r["metric_lines"] == 10 and r["stdout_last"] == "step 9" for r in rows)
    assert all(r["exit"]["returncode"] == 0 and r["attempt"] == 1 for r in rows)
    assert run["scratch_left"] == []  # the nodes' scratch folders are removed once shipped


def test_each_gpu_trial_gets_its_own_card_from_ray(cluster_run):
    run = scenario(cluster_run, "gpus")
    assert run["code"] == 0, run["log"]
    rows = run["trials"]
    assert [r["state"] for r in rows] == ["completed", "completed"]
    cards = [r["placement"]["gpus"] for r in rows]
    assert sorted(cards) == [["0"], ["1"]]  # one card each, not the same one
    # What the trial saw is what Ray gave it, and what placement.json says.
    assert [r["stdout_first"] for r in rows] == [f"CUDA_VISIBLE_DEVICES={c[0]}" for c in cards]


def test_a_runner_killed_mid_trial_is_replaced_and_nothing_is_lost_or_run_twice(cluster_run):
    run = scenario(cluster_run, "restart")
    assert run["code"] == 0, run["log"]
    assert run["log"].count("adopted running trial") == 2, run["log"]
    rows = run["trials"]
    assert [r["state"] for r in rows] == ["completed", "completed"]
    assert all(r["attempt"] == 1 and r["earlier"] == [] for r in rows)  # never launched again
    # Every point reported, before, during and after the runner's death, is stored exactly once.
    assert run["points"] == {"1": list(range(30)), "2": list(range(30))}
    assert all(r["metric_lines"] == 30 for r in rows)


def test_stop_with_no_runner_reaches_the_trials_through_ray_sigterm_then_sigkill(cluster_run):
    run = scenario(cluster_run, "stop")
    assert run["code"] == 0, run["log"]
    rows = {r["number"]: r for r in run["trials"]}
    assert [rows[n]["state"] for n in (1, 2)] == ["stopped", "stopped"], run["log"]
    assert rows[1]["exit"]["returncode"] == -15  # ended on SIGTERM
    assert rows[2]["exit"]["returncode"] == -9  # ignored it: SIGKILL after the 1 s grace
    assert run["scratch_left"] == []


def test_a_trial_on_a_node_that_dies_is_lost_and_requeued_onto_a_live_node(cluster_run):
    run = scenario(cluster_run, "node_death")
    assert run["killed"] > 0 and run["node_b_left"] == 0
    assert run["code"] == 0, run["log"]
    assert "re-queued lost trial death/" in run["log"]
    rows = run["trials"]
    assert [r["state"] for r in rows] == ["completed", "completed"]
    rerun = [r for r in rows if r["attempt"] == 2]
    assert len(rerun) == 1, rows
    (rerun,) = rerun
    assert rerun["earlier"] == ["attempt-1"]  # the lost attempt's files, kept aside
    assert "scratch-b" in rerun["earlier_placements"][0]["scratch"]
    assert "scratch-a" in rerun["placement"]["scratch"]  # the only node left
    # The stored curve is the re-run's alone: one point per step, no mix of the two attempts.
    assert run["points"] == {"1": list(range(30)), "2": list(range(30))}
