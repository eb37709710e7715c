from runner.scheduler import Waiting, plan_launches


def q(n, study=1, gpus=1, conc=8):
    return [Waiting(i, study, gpus, conc) for i in range(1, n + 1)]


def test_one_trial_per_gpu_with_its_own_device():
    launches, _ = plan_launches(q(5), all_gpus=[0, 1, 2], busy_gpus={1}, cpu_slots=4, busy_cpu=0,
                                running_per_study={})
    assert [(x.trial_id, x.slot.cuda_visible_devices) for x in launches] == [(1, "0"), (2, "2")]


def test_multi_gpu_trials_and_impossible_requests():
    launches, impossible = plan_launches(q(2, gpus=2) + [Waiting(9, 1, 5, 8)], all_gpus=[0, 1, 2, 3],
                                         busy_gpus=set(), cpu_slots=1, busy_cpu=0, running_per_study={})
    assert [x.slot.gpus for x in launches] == [(0, 1), (2, 3)]
    assert impossible == [(9, "asks for 5 GPUs; this machine has 4")]


def test_no_gpu_means_cpu_slots_and_concurrency_limits_per_study():
    queue = q(4, study=1, gpus=0, conc=2) + [Waiting(10, 2, 0, 8), Waiting(11, 2, 0, 8)]
    launches, impossible = plan_launches(queue, all_gpus=[], busy_gpus=set(), cpu_slots=3, busy_cpu=0,
                                         running_per_study={1: 1})
    assert [x.trial_id for x in launches] == [1, 10, 11] and impossible == []
    assert all(x.slot.label == "cpu" for x in launches)


def test_gpu_trials_on_a_machine_without_gpus_are_impossible_not_moved_to_cpu():
    launches, impossible = plan_launches(q(2, gpus=999) + [Waiting(5, 2, 0, 8)], all_gpus=[],
                                         busy_gpus=set(), cpu_slots=4, busy_cpu=0, running_per_study={})
    assert [x.trial_id for x in launches] == [5]  # the CPU study still runs
    assert [t for t, _ in impossible] == [1, 2]
    assert impossible[0][1] == ("asks for 999 GPUs; this machine has 0; "
                                "set gpus_per_trial = 0 to run on CPU slots")


def test_slot_labels_round_trip():
    from runner.scheduler import Slot

    for slot in (Slot(), Slot((0,)), Slot((2, 3))):
        assert Slot.from_label(slot.label) == slot


# -- MIG instances ("<gpu>:<mig>") are slots too; a process uses one at most ------------------


def test_mig_instances_take_one_gpu_trials_and_multi_gpu_trials_take_whole_gpus():
    from runner.scheduler import Slot

    box = [0, "1:0", "1:2", 2]
    launches, _ = plan_launches(q(2, gpus=2) + [Waiting(7, 2, 1, 8), Waiting(8, 2, 1, 8)], all_gpus=box,
                                busy_gpus=set(), cpu_slots=1, busy_cpu=0, running_per_study={})
    assert [(x.trial_id, x.slot.gpus) for x in launches] == [(1, (0, 2)), (7, ("1:0",)), (8, ("1:2",))]
    assert launches[1].slot.label == "gpu:1:0" and Slot.from_label("gpu:1:0,1:2").gpus == ("1:0", "1:2")
    _, impossible = plan_launches(q(1, gpus=2), all_gpus=["0:0", "0:1", 1], busy_gpus=set(), cpu_slots=1,
                                  busy_cpu=0, running_per_study={})
    assert impossible == [(1, "asks for 2 GPUs; this machine has 1 whole GPU(s) and 2 MIG instance(s), "
                              "and a process can use one MIG instance only")]


# -- why a queued trial does not start ------------------------------------------------------


def test_every_trial_left_waiting_is_told_why():
    from runner.scheduler import plan

    def why(queue, **kw) -> dict[int, str]:
        args = {"all_gpus": [0, 1], "busy_gpus": set(), "cpu_slots": 2, "busy_cpu": 0, "running_per_study": {}}
        return plan(queue, **{**args, **kw}).waiting

    assert why(q(3, conc=1)) == {2: "waiting: the study's concurrency (1) is reached",
                                 3: "waiting: the study's concurrency (1) is reached"}
    assert why(q(3)) == {3: "waiting: all 2 GPU slots in use"}  # two launched in this plan, the third waits
    busy = "GPU 1 busy (another process uses 30 GiB)"
    assert why(q(1), busy_gpus={0, 1}, others={1: busy}) == {1: f"waiting: {busy}; the other 1 GPU slot in use"}
    assert why(q(1), busy_gpus={1}, others={1: busy}) == {}  # GPU 0 is free: it starts
    assert why(q(1, gpus=2), busy_gpus={1}) == {1: "waiting: needs 2 whole GPUs free, 1 of 2 are"}
    assert why(q(3, gpus=0), busy_cpu=1) == {2: "waiting: all 2 CPU slots in use",
                                             3: "waiting: all 2 CPU slots in use"}


# -- a freed slot is refilled when its trial exits, not at the next poll ----------------------

BACK_TO_BACK = """
[study]
name = "b2b"
command = "python trainer.py --lr {lr} --steps 3"
max_train_steps = 3
objective = { metric = "val_loss", mode = "min" }
trials = 3
concurrency = 1

[params.lr]
role = "nuisance"
low = 0.01
high = 0.5
scale = "log"
"""


def test_the_next_trial_starts_when_the_previous_one_exits_however_long_the_poll(make_study, db_path):
    """With a poll of 60 s, three trials on one slot would take minutes if the runner slept it out
    between them; it wakes when a trial's process ends (a pidfd), reaps it and starts the next."""
    import json
    from pathlib import Path

    import store
    from runner import launch
    from runner.service import Runner
    from runner.spec import load
    from store import studies, trials

    db = store.connect(db_path)
    study, _ = launch.register(db, db_path, load(make_study(BACK_TO_BACK)))
    studies.set_active(db, study.id, True)
    runner = Runner(db_path, cpu_slots=1, poll_s=60.0, log=lambda _: None)
    runner.start()
    try:
        runner.serve(until=runner.idle)
    finally:
        runner.close()
    rows = sorted(trials.list_for_study(db, study.id), key=lambda t: t.started_at)
    assert [t.state.value for t in rows] == ["completed"] * 3
    for before, after in zip(rows, rows[1:], strict=False):
        ended = json.loads((Path(before.trial_dir) / "exit.json").read_text())["ended_at"]
        assert after.started_at - ended < 30  # well inside one 60 s poll, however loaded the machine
