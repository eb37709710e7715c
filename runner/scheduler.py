"""Which queued trials start now, on which slot (pure: free slots and queue in, launches out).

One slot per GPU (a trial that asks for k GPUs takes k of them) and a number of
CPU slots for trials that ask for none. A trial asking for more GPUs than the
machine has (any, where it has none) can never run here: it is not quietly
moved to a CPU slot, where a GPU study would crawl or fail far from the cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Slot:
    """Where a trial runs: `gpus` empty means a CPU slot.

    `gpus` are nvidia-smi's numbers (stored in the label, shown in the TUI); `uuids` the same
    GPUs by UUID where NVML gave them, which is what the trial's CUDA_VISIBLE_DEVICES names
    (see runner.gpus for why).
    """

    gpus: tuple[int, ...] = ()
    uuids: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_label(cls, label: str | None) -> Slot:
        """The inverse of `label` ("gpu:0,1" or "cpu"), as stored on the trial."""
        if label and label.startswith("gpu:"):
            return cls(tuple(int(g) for g in label[4:].split(",")))
        return cls()

    @property
    def label(self) -> str:
        return "gpu:" + ",".join(map(str, self.gpus)) if self.gpus else "cpu"

    @property
    def cuda_visible_devices(self) -> str:
        return ",".join(self.uuids) if self.uuids else ",".join(map(str, self.gpus))

    def cuda_env(self) -> dict[str, str]:
        """The CUDA variables a trial on this slot gets (a CPU slot: no visible GPU)."""
        env = {"CUDA_VISIBLE_DEVICES": self.cuda_visible_devices}
        if self.uuids:
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # tools in the trial number GPUs as nvidia-smi does
        return env


@dataclass(frozen=True)
class Waiting:
    trial_id: int
    study_id: int
    gpus_per_trial: int
    concurrency: int  # the study's limit on trials running at once


@dataclass(frozen=True)
class Launch:
    trial_id: int
    slot: Slot


def plan_launches(
    queue: list[Waiting],
    *,
    all_gpus: list[int],
    busy_gpus: set[int],
    cpu_slots: int,
    busy_cpu: int,
    running_per_study: dict[int, int],
) -> tuple[list[Launch], list[tuple[int, str]]]:
    """Fill free slots from the queue in order, within each study's concurrency.

    Returns (launches, impossible): `impossible` lists (trial_id, why) for
    trials that can never run here (more GPUs asked than the machine has,
    any at all where it has none).
    """
    free_gpus = [g for g in all_gpus if g not in busy_gpus]
    free_cpu = cpu_slots - busy_cpu
    running = dict(running_per_study)
    launches: list[Launch] = []
    impossible: list[tuple[int, str]] = []
    for w in queue:
        if running.get(w.study_id, 0) >= w.concurrency:
            continue
        want = w.gpus_per_trial
        if want > len(all_gpus):
            impossible.append((w.trial_id, _too_many_gpus(want, len(all_gpus))))
            continue
        if want:
            if len(free_gpus) < want:
                continue
            slot = Slot(tuple(free_gpus[:want]))
            free_gpus = free_gpus[want:]
        else:
            if free_cpu <= 0:
                continue
            free_cpu -= 1
            slot = Slot()
        running[w.study_id] = running.get(w.study_id, 0) + 1
        launches.append(Launch(w.trial_id, slot))
    return launches, impossible


def _too_many_gpus(want: int, found: int) -> str:
    why = f"asks for {want} GPUs; this machine has {found}"
    return why + ("; set gpus_per_trial = 0 to run on CPU slots" if found == 0 else "")
