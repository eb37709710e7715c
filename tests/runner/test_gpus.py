"""Which GPUs a runner uses and how a trial is given one.

This machine has no GPU, so NVML is the one thing faked here: `FakeNvml` stands in for the
pynvml module (the same functions, over a table of cards) and is passed to the code that reads
NVML. Everything else is real: the parsing and choice are plain functions, and the runner tests
start real trials through the real shim and check the environment each one saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import store
from runner import gpus
from runner.gpus import Gpu, GpuChoiceError, busy_reason, choose, parse_list
from runner.scheduler import Slot
from runner.service import Runner
from store import studies, trials

H200_A = "GPU-11111111-aaaa-bbbb-cccc-000000000000"
H200_B = "GPU-22222222-aaaa-bbbb-cccc-000000000000"
A100 = "GPU-33333333-aaaa-bbbb-cccc-000000000000"


@dataclass
class Card:
    uuid: str
    name: str
    used_mib: int = 300
    total_mib: int = 81920
    processes: int = 0
    name_as_bytes: bool = False


class FakeNvml:
    """The slice of the pynvml module runner.gpus calls, over a list of cards in NVML (PCI) order."""

    class NVMLError(Exception):
        pass

    def __init__(self, cards: list[Card]) -> None:
        self.cards = cards
        self.inits = 0

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
        return Memory(card.used_mib * 2**20, card.total_mib * 2**20)

    def nvmlDeviceGetComputeRunningProcesses(self, card: Card) -> list[object]:
        return [object()] * card.processes


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


def run_study(make_study, db_path: Path, nvml: FakeNvml, **runner_args) -> tuple[list, list[str]]:
    from runner import launch
    from runner.spec import load

    db = store.connect(db_path)
    study, _ = launch.register(db, db_path, load(make_study(STUDY)))
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
