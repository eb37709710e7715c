"""Which GPUs a runner uses and how a trial is given one.

This machine has no GPU, so NVML is the one thing faked here: `FakeNvml` stands in for the
pynvml module (the same functions, over a table of cards) and is passed to the code that reads
NVML. Everything else is real: the parsing and choice are plain functions, and the runner tests
start real trials through the real shim and check the environment each one saw.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import store
from runner import gpu_sampling, gpus
from runner.gpus import Gpu, GpuChoiceError, busy_reason, choose, parse_list
from runner.scheduler import Slot
from runner.service import Runner
from store import metrics, studies, trials

H200_A = "GPU-11111111-aaaa-bbbb-cccc-000000000000"
H200_B = "GPU-22222222-aaaa-bbbb-cccc-000000000000"
A100 = "GPU-33333333-aaaa-bbbb-cccc-000000000000"


@dataclass
class Card:
    """A GPU (or a MIG instance) as the fake NVML describes it.

    processes: how many compute processes of someone else run on it; pids: processes by pid with
    the MiB each uses (a trial's, say); util: the device's utilisation (None: NVML does not
    support it, as for a MIG instance); proc_util: (pid, smUtil) samples; migs: the MIG instances
    by MIG index (None for an empty index), where the GPU is in MIG mode; broken: every reading
    raises NVMLError (a driver hiccup).
    """

    uuid: str
    name: str
    used_mib: int = 300
    total_mib: int = 81920
    processes: int = 0
    name_as_bytes: bool = False
    pids: dict[int, int] = field(default_factory=dict)
    util: int | None = 0
    proc_util: list[tuple[int, int]] = field(default_factory=list)
    migs: list[Card | None] | None = None
    broken: bool = False


@dataclass
class Proc:
    pid: int
    usedGpuMemory: int | None  # noqa: N815  (NVML's field name)


@dataclass
class ProcUtil:
    pid: int
    timeStamp: int  # noqa: N815
    smUtil: int  # noqa: N815


class FakeNvml:
    """The slice of the pynvml module runner.gpus and runner.gpu_sampling call, over a list of
    cards in NVML (PCI) order."""

    NVML_DEVICE_MIG_ENABLE = 1

    class NVMLError(Exception):
        pass

    def __init__(self, cards: list[Card]) -> None:
        self.cards = cards
        self.inits = 0

    def _check(self, card: Card) -> Card:
        if card.broken:
            raise self.NVMLError("GPU is lost")
        return card

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return len(self.cards)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> Card:
        return self.cards[i]

    def nvmlDeviceGetUUID(self, card: Card) -> str:
        return card.uuid

    def nvmlDeviceGetName(self, card: Card) -> str | bytes:
        return card.name.encode() if card.name_as_bytes else card.name

    def nvmlDeviceGetMemoryInfo(self, card: Card):
        @dataclass
        class Memory:
            used: int
            total: int
        self._check(card)
        return Memory(card.used_mib * 2**20, card.total_mib * 2**20)

    def nvmlDeviceGetComputeRunningProcesses(self, card: Card) -> list[Proc]:
        self._check(card)
        return ([Proc(10**7 + i, None) for i in range(card.processes)]
                + [Proc(pid, mib * 2**20) for pid, mib in card.pids.items()])

    def nvmlDeviceGetUtilizationRates(self, card: Card):
        @dataclass
        class Utilization:
            gpu: int
            memory: int
        if self._check(card).util is None:
            raise self.NVMLError("Not Supported")
        return Utilization(card.util, 0)

    def nvmlDeviceGetProcessUtilization(self, card: Card, since: int) -> list[ProcUtil]:
        self._check(card)
        if not card.proc_util:
            raise self.NVMLError("Not Found")  # what NVML says when it has no sample
        return [ProcUtil(pid, since + i + 1, sm) for i, (pid, sm) in enumerate(card.proc_util)]

    def nvmlDeviceGetMigMode(self, card: Card) -> tuple[int, int]:
        if card.migs is None:
            raise self.NVMLError("Not Supported")
        return 1, 1

    def nvmlDeviceGetMaxMigDeviceCount(self, card: Card) -> int:
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, card: Card, i: int) -> Card:
        if card.migs is None or i >= len(card.migs) or card.migs[i] is None:
            raise self.NVMLError("Not Found")
        return card.migs[i]


def mixed_box(**busy_b) -> FakeNvml:
    """Two H200 and, between them in PCI order, nothing else; an A100 last (CUDA would put it elsewhere)."""
    return FakeNvml([Card(H200_A, "NVIDIA H200"), Card(H200_B, "NVIDIA H200", **busy_b),
                     Card(A100, "NVIDIA A100-SXM4-80GB")])


def table(nvml: FakeNvml) -> list[Gpu]:
    return gpus.inventory(nvml)


# -- reading NVML ---------------------------------------------------------------


def test_inventory_reads_uuid_name_memory_and_processes():
    nvml = FakeNvml([Card(H200_A, "NVIDIA H200", used_mib=2048, processes=2, name_as_bytes=True)])
    assert gpus.inventory(nvml) == [Gpu(0, H200_A, "NVIDIA H200", 2048, 81920, 2)]


def test_discover_without_nvml_is_no_gpu_unless_gpus_were_asked_for(monkeypatch):
    monkeypatch.setattr(gpus, "_nvml", lambda: None)  # as on this machine: no driver, no NVML
    assert gpus.discover(runner_visible="0,1") == []  # the no-GPU path is as before: CPU slots
    with pytest.raises(GpuChoiceError, match="--gpus 0: no GPU found here"):
        gpus.discover(requested="0")
    assert gpus.discover(requested="none") == []


# -- which GPUs the runner may use ------------------------------------------------


def test_all_gpus_when_nothing_narrows_them():
    assert [g.index for g in choose(table(mixed_box()), runner_visible=None, device_order=None,
                                    requested=None)] == [0, 1, 2]


def test_runner_visible_devices_by_uuid_and_prefix_bound_the_choice():
    t = table(mixed_box())
    assert [g.index for g in choose(t, runner_visible=f"{A100},{H200_A}", device_order=None,
                                    requested=None)] == [2, 0]
    assert [g.index for g in choose(t, runner_visible="GPU-3333", device_order=None, requested=None)] == [2]


def test_empty_or_minus_one_visible_devices_means_no_gpu_as_for_cuda():
    t = table(mixed_box())
    assert choose(t, runner_visible="", device_order=None, requested=None) == []
    assert [g.index for g in choose(t, runner_visible="1,-1,2", device_order="PCI_BUS_ID",
                                    requested=None)] == [1]
    assert parse_list(" 2, 3 ,") == ["2", "3"]


def test_visible_indices_are_refused_on_mixed_gpus_without_pci_bus_order():
    t = table(mixed_box())
    with pytest.raises(GpuChoiceError, match="CUDA_VISIBLE_DEVICES=1: indices are ambiguous.*PCI_BUS_ID"):
        choose(t, runner_visible="1", device_order=None, requested=None)
    assert [g.index for g in choose(t, runner_visible="1", device_order="PCI_BUS_ID", requested=None)] == [1]
    same = table(FakeNvml([Card(H200_A, "NVIDIA H200"), Card(H200_B, "NVIDIA H200")]))
    assert [g.index for g in choose(same, runner_visible="1", device_order=None, requested=None)] == [1]


def test_gpus_option_picks_within_what_the_runner_may_see():
    t = table(mixed_box())
    assert [g.index for g in choose(t, runner_visible=None, device_order=None, requested="2,0")] == [2, 0]
    assert [g.index for g in choose(t, runner_visible=f"{H200_A},{A100}", device_order=None,
                                    requested="2")] == [2]
    assert choose(t, runner_visible=None, device_order=None, requested="none") == []
    with pytest.raises(GpuChoiceError, match="--gpus 1: GPU 1 .* is not in this runner's CUDA_VISIBLE_DEVICES"):
        choose(t, runner_visible=f"{H200_A},{A100}", device_order=None, requested="1")
    with pytest.raises(GpuChoiceError, match="--gpus 7: '7' names no GPU .GPUs here: 0=GPU-1111"):
        choose(t, runner_visible=None, device_order=None, requested="7")
    with pytest.raises(GpuChoiceError, match="CUDA_VISIBLE_DEVICES=MIG-1234: 'MIG-1234' names no GPU"):
        choose(t, runner_visible="MIG-1234", device_order=None, requested=None)
    with pytest.raises(GpuChoiceError, match="'GPU-' matches several GPUs"):
        choose(t, runner_visible=None, device_order=None, requested="GPU-")


def test_busy_means_another_process_or_memory_above_the_threshold():
    idle = Gpu(0, H200_A, "NVIDIA H200", 300, 81920, 0)
    assert busy_reason(idle) is None
    assert busy_reason(Gpu(0, H200_A, "NVIDIA H200", 300, 81920, 1)) == \
        f"GPU 0 (NVIDIA H200, {H200_A}) is busy: 1 other process(es)"
    assert "40000 MiB of 81920 MiB in use" in busy_reason(Gpu(0, H200_A, "NVIDIA H200", 40000, 81920, 0))
    assert busy_reason(Gpu(0, H200_A, "NVIDIA H200", 2000, 81920, 0), memory_mib=4096) is None


def test_a_gpu_slot_names_its_cards_by_uuid_and_a_cpu_slot_hides_every_gpu():
    assert Slot((0, 2), uuids=(H200_A, A100)).cuda_env() == {
        "CUDA_VISIBLE_DEVICES": f"{H200_A},{A100}", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert Slot().cuda_env() == {"CUDA_VISIBLE_DEVICES": ""}
    assert Slot((1,)).cuda_env() == {"CUDA_VISIBLE_DEVICES": "1"}  # no NVML description: as before
    assert Slot((0, 2), uuids=(H200_A, A100)).label == "gpu:0,2" == Slot.from_label("gpu:0,2").label


# -- a runner on a box with GPUs (NVML faked, trials real) ---------------------------


STUDY = """
[study]
name = "g"
command = "python trainer.py --lr {lr} --steps {max_train_steps} --sleep 0.05"
max_train_steps = 6
objective = { metric = "val_loss", mode = "min" }
trials = 4
concurrency = 4
gpus_per_trial = 1

[params.lr]
role = "nuisance"
low = 0.01
high = 0.5
scale = "log"
"""


def run_study(make_study, db_path: Path, nvml: FakeNvml, study: str = STUDY,
              **runner_args) -> tuple[list, list[str]]:
    from runner import launch
    from runner.spec import load

    db = store.connect(db_path)
    study, _ = launch.register(db, db_path, load(make_study(study)))
    studies.set_active(db, study.id, True)
    said: list[str] = []
    runner = Runner(db_path, cpu_slots=2, log=said.append, nvml=nvml, **runner_args)
    runner.start()
    try:
        runner.serve(until=runner.idle)
    finally:
        runner.close()
    return trials.list_for_study(db, study.id), said


def seen(trial) -> tuple[dict, dict]:
    folder = Path(trial.trial_dir)
    return json.loads((folder / "env.json").read_text()), json.loads((folder / "placement.json").read_text())


def test_trials_get_their_gpu_by_uuid_and_a_busy_gpu_is_skipped(make_study, db_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    rows, said = run_study(make_study, db_path, mixed_box(used_mib=30000, processes=1))
    assert all(t.state.value == "completed" for t in rows)
    for t in rows:
        env, placed = seen(t)
        index = int(t.slot.removeprefix("gpu:"))
        assert index in (0, 2)  # GPU 1 is someone else's
        uuid = {0: H200_A, 2: A100}[index]
        assert env["CUDA_VISIBLE_DEVICES"] == uuid and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        assert placed["gpus"] == [{"index": index, "uuid": uuid, "name": mixed_box().cards[index].name}]
    assert any(f"GPU 1 (NVIDIA H200, {H200_B}) is busy: 1 other process(es), 30000 MiB" in m for m in said)


def test_use_busy_gpus_hands_out_the_busy_gpu_too(make_study, db_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    rows, said = run_study(make_study, db_path, mixed_box(used_mib=30000, processes=1), use_busy_gpus=True)
    assert {seen(t)[0]["CUDA_VISIBLE_DEVICES"] for t in rows} <= {H200_A, H200_B, A100}
    assert all(t.state.value == "completed" for t in rows)
    assert not any("is busy" in m for m in said)
    # four trials on three free slots at once: the busy card was one of them at some point
    assert len({t.slot for t in rows}) == 3


def test_the_runners_own_visible_devices_and_gpus_option_bound_the_trials(make_study, db_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{H200_B},{A100}")
    rows, _ = run_study(make_study, db_path, mixed_box(), gpu_choice="2")
    assert {t.slot for t in rows} == {"gpu:2"}
    assert {seen(t)[0]["CUDA_VISIBLE_DEVICES"] for t in rows} == {A100}


def test_a_gpus_option_outside_the_runners_visible_devices_is_refused(db_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", A100)
    with pytest.raises(GpuChoiceError, match="--gpus 0: GPU 0 .* not in this runner's CUDA_VISIBLE_DEVICES"):
        Runner(db_path, nvml=mixed_box(), gpu_choice="0")


def test_run_with_gpus_on_a_machine_without_nvml_exits_2_and_stores_nothing(make_study, db_path, capsys,
                                                                            monkeypatch):
    from runner.cli import main as cli

    monkeypatch.setattr(gpus, "_nvml", lambda: None)  # as on this machine: no driver, no NVML
    path = make_study(STUDY)
    assert cli(["--db", str(db_path), "run", str(path), "--gpus", "0"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == ["error: --gpus 0: no GPU found here (NVML cannot be read)"]
    assert not db_path.exists() or studies.list_all(store.connect(db_path)) == []


def test_ambiguous_visible_devices_stop_a_scheduling_runner_but_not_a_stopping_one(db_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    with pytest.raises(GpuChoiceError, match="indices are ambiguous"):
        Runner(db_path, nvml=mixed_box())
    stopper = Runner(db_path, nvml=mixed_box(), schedule=False)  # `stop` launches nothing: no GPU needed
    assert stopper.gpus == []
    stopper.close()


# -- MIG: each instance a slot of its own ---------------------------------------------

A100_MIG = "GPU-44444444-aaaa-bbbb-cccc-000000000000"
MIG_0 = "MIG-aaaaaaaa-1111-2222-3333-000000000000"
MIG_2 = "MIG-bbbbbbbb-1111-2222-3333-000000000000"
MIG_NAME = "NVIDIA A100-SXM4-80GB MIG 3g.40gb"


def mig_box(**busy_mig_0) -> FakeNvml:
    """GPU 0 a whole H200; GPU 1 an A100 in MIG mode, with instances at MIG indices 0 and 2 (1 empty)."""
    return FakeNvml([
        Card(H200_A, "NVIDIA H200"),
        Card(A100_MIG, "NVIDIA A100-SXM4-80GB", used_mib=0, migs=[
            Card(MIG_0, MIG_NAME, **{"used_mib": 10, "total_mib": 40192, "util": None, **busy_mig_0}),
            None,
            Card(MIG_2, MIG_NAME, used_mib=10, total_mib=40192, util=None)]),
    ])


def test_mig_instances_are_slots_and_their_gpu_is_not():
    found = gpus.inventory(mig_box())
    assert [(g.key, g.uuid) for g in found] == [(0, H200_A), ("1:0", MIG_0), ("1:2", MIG_2)]
    assert found[2].parent_uuid == A100_MIG and found[2].memory_total_mib == 40192
    assert found[2].described == f"GPU 1 MIG 2 ({MIG_NAME}, {MIG_2})"


def test_mig_instances_are_chosen_by_gpu_index_pair_or_uuid():
    t = table(mig_box())

    def keys(visible: str | None = None, requested: str | None = None) -> list:
        return [g.key for g in choose(t, runner_visible=visible, device_order="PCI_BUS_ID", requested=requested)]

    assert keys(requested="1") == ["1:0", "1:2"]  # a GPU in MIG mode: all of its instances
    assert keys(requested="1:2,0") == ["1:2", 0]
    assert keys(visible=MIG_2[:12]) == ["1:2"]  # a MIG UUID prefix, as CUDA takes it
    assert keys(visible=A100_MIG) == ["1:0", "1:2"]  # the MIG GPU's own UUID
    with pytest.raises(GpuChoiceError, match=f"--gpus 1:1: '1:1' names no GPU .GPUs here: 0={H200_A}, "
                                             f"1:0={MIG_0}, 1:2={MIG_2}"):
        keys(requested="1:1")
    with pytest.raises(GpuChoiceError, match="'MIG-' matches several GPUs"):
        keys(visible="MIG-")
    with pytest.raises(GpuChoiceError, match="--gpus 1:0: GPU 1 MIG 0 .* is not in this runner's"):
        keys(visible=MIG_2, requested="1:0")


def test_trials_run_on_mig_instances_by_their_uuid_and_a_busy_instance_is_skipped(make_study, db_path,
                                                                                  monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    rows, said = run_study(make_study, db_path, mig_box(used_mib=20000, processes=1), gpu_choice="1")
    assert all(t.state.value == "completed" for t in rows)
    assert {t.slot for t in rows} == {"gpu:1:2"}  # MIG 0 is someone else's; GPU 0 was not chosen
    for t in rows:
        env, placed = seen(t)
        assert env["CUDA_VISIBLE_DEVICES"] == MIG_2 and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        assert placed["gpus"] == [{"index": 1, "uuid": MIG_2, "name": MIG_NAME, "mig": 2,
                                   "parent_uuid": A100_MIG}]
    assert any(f"GPU 1 MIG 0 ({MIG_NAME}, {MIG_0}) is busy: 1 other process(es), 20000 MiB" in m for m in said)


# -- a waiting trial says why -----------------------------------------------------------


def test_waiting_trials_say_why_in_the_store_and_status_until_they_start(make_study, db_path, monkeypatch,
                                                                        capsys):
    from runner import launch
    from runner.cli import main as cli
    from runner.spec import load

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    db = store.connect(db_path)
    study, _ = launch.register(db, db_path, load(make_study(STUDY)))
    studies.set_active(db, study.id, True)
    box = FakeNvml([Card(H200_A, "NVIDIA H200"), Card(H200_B, "NVIDIA H200", used_mib=30000, processes=1)])
    runner = Runner(db_path, cpu_slots=2, log=lambda _: None, nvml=box)
    runner.start()
    try:
        runner.run_pass()  # trial 1 takes GPU 0; GPU 1 is someone else's
        why = "waiting: GPU 1 busy (another process uses 29 GiB); the other 1 GPU slot in use"
        rows = trials.list_for_study(db, study.id)
        assert [(t.state.value, t.detail) for t in rows] == [("running", None)] + [("queued", why)] * 3
        assert cli(["--db", str(db_path), "status", "g"]) == 0
        assert f"{why} (3 queued trial(s))" in capsys.readouterr().out
        assert cli(["--db", str(db_path), "status", "g", "--json"]) == 0
        record = json.loads(capsys.readouterr().out)
        assert [t["detail"] for t in record["studies"][0]["trials"]][1:] == [why] * 3
        from tui.data.trial_data import read_trial_detail
        from tui.screens.trial import overview_text

        shown = overview_text(read_trial_detail(db, rows[1].id, None, "val_loss", "min"), None).plain
        assert f"why it waits\n{why}" in shown  # the TUI's trial overview
        runner.stop_study(study.id)  # queued trials of a stopped study wait for a launch, not a GPU
        runner.serve(until=runner.idle)
        rows = trials.list_for_study(db, study.id)
        assert [(t.state.value, t.detail) for t in rows][1:] == [("queued", None)] * 3
        studies.set_active(db, study.id, True)
        runner.run_pass()  # launched again: trial 2 takes GPU 0, the others wait as before
        assert [t.detail for t in trials.list_for_study(db, study.id)][1:] == [None, why, why]
    finally:
        runner.close()
    # no runner: no reason to wait on (the next runner says its own)
    assert {t.detail for t in trials.list_for_study(db, study.id) if t.state.value == "queued"} == {None}


# -- each trial's GPU use, sampled as its metrics ------------------------------------------


def _own_group() -> subprocess.Popen:
    """A real process in a process group of its own, as a trial's shim is."""
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_sampler_reads_the_trials_own_processes_and_falls_back_to_the_whole_device():
    trial, unlisted, ended = _own_group(), _own_group(), subprocess.Popen(["true"], start_new_session=True)
    ended.wait()
    try:
        stranger = 4_000_000  # a pid of someone else's, on the same card
        card = Card(H200_A, "NVIDIA H200", used_mib=13000, util=95, pids={trial.pid: 3072, stranger: 9000},
                    proc_util=[(trial.pid, 40), (stranger, 90), (trial.pid, 60)])
        box = FakeNvml([card, *mig_box().cards[1:]])
        sampler = gpu_sampling.GpuSampler(box, every_s=5, log=pytest.fail)
        watched = [gpu_sampling.Watched(1, (0,), trial.pid, time.time() - 12.4),
                   gpu_sampling.Watched(2, ("1:2",), unlisted.pid, time.time() - 3),  # NVML lists none of its pids
                   gpu_sampling.Watched(3, (), 4_000_002, time.time()),  # a CPU trial: nothing to read
                   gpu_sampling.Watched(4, (0,), ended.pid, time.time())]  # ended: its card is not its any more
        first = sampler.sample(watched, now=100.0)
        assert [(s.trial_id, s.step, s.util_pct, s.mem_mib) for s in first] == [
            (1, 12, 50.0, 3072.0),  # its own memory and SM share, not the card's 13000 MiB and 95 %
            (2, 3, None, 10.0)]  # a MIG instance: its memory, and no utilisation to read
        assert sampler.sample(watched, now=102.0) == []  # not due yet: every 5 s
        again = sampler.sample(watched, now=105.0)
        assert [s.trial_id for s in again] == [1, 2] and again[0].step > first[0].step  # steps only go up
    finally:
        for p in (trial, unlisted):
            p.kill()
            p.wait()


def test_sampler_errors_skip_a_round_and_no_nvml_turns_it_off(monkeypatch):
    said: list[str] = []
    box = mixed_box()
    sampler = gpu_sampling.GpuSampler(box, every_s=1, log=said.append)
    watched = [gpu_sampling.Watched(1, (0,), None, time.time())]
    box.cards[0].broken = True
    assert sampler.sample(watched, now=10) == [] and sampler.sample(watched, now=20) == []
    assert said == ["GPU sampling skipped: NVMLError: GPU is lost; retrying every 1 s"]  # once per outage
    box.cards[0].broken = False
    assert [s.mem_mib for s in sampler.sample(watched, now=30)] == [300.0]

    monkeypatch.setattr(gpus, "_nvml", lambda: None)  # as on this machine
    off = gpu_sampling.GpuSampler(log=pytest.fail)
    assert off.sample(watched, now=10) == [] and not off.due(20)


def test_runner_stores_each_trials_gpu_use_as_metrics_the_trial_screen_plots(make_study, db_path, monkeypatch):
    from tui.data.trial_data import read_trial_detail
    from tui.screens.trial import metric_plot

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpu_sampling, "SAMPLE_EVERY_S", 0.05)
    box = FakeNvml([Card(H200_A, "NVIDIA H200", util=70), Card(H200_B, "NVIDIA H200", util=70)])
    rows, _ = run_study(make_study, db_path, box, study=STUDY.replace("--sleep 0.05", "--sleep 0.2"))
    db = store.connect(db_path)
    for t in rows:
        assert t.state.value == "completed" and t.reason is None
        util = metrics.points(db, t.id, gpu_sampling.GPU_UTIL)
        assert util and {p[3] for p in util} == {70.0}  # the device's: NVML lists no pid of the fake's
        assert {p[3] for p in metrics.points(db, t.id, gpu_sampling.GPU_MEM)} == {300.0}
        steps = [p[2] for p in util]
        assert steps == sorted(set(steps)) and t.out_of_order == 0  # seconds since start, never repeated
    detail = read_trial_detail(db, rows[0].id, gpu_sampling.GPU_UTIL, "val_loss", "min")
    assert {gpu_sampling.GPU_UTIL, gpu_sampling.GPU_MEM, "val_loss"} <= set(detail.metric_names)
    assert metric_plot(detail).title == f"{gpu_sampling.GPU_UTIL} vs seconds since start"


def test_a_gpu_lost_while_trials_run_never_stops_the_runner(make_study, db_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpu_sampling, "SAMPLE_EVERY_S", 0.05)
    box = mixed_box()

    def break_after_discovery(*args, **kwargs):
        box.cards[0].broken = box.cards[2].broken = True  # readable when the runner started, not after
        return original(*args, **kwargs)

    original = gpus.current
    monkeypatch.setattr(gpus, "current", break_after_discovery)
    rows, said = run_study(make_study, db_path, box, study=STUDY.replace("--sleep 0.05", "--sleep 0.2"))
    assert all(t.state.value == "completed" for t in rows)
    assert sum("GPU sampling skipped" in m for m in said) == 1
