"""Which queued trials start now, on which slot (pure: free slots and queue in, launches out).

One slot per GPU (a trial that asks for k GPUs takes k of them) and a number of
CPU slots for trials that ask for none. A trial asking for more GPUs than the
machine has (any, where it has none) can never run here: it is not quietly
moved to a CPU slot, where a GPU study would crawl or fail far from the cause.

A GPU slot is named by nvidia-smi's index (an int), or "<gpu>:<mig>" for a MIG instance
(see runner.gpus). A process can use one MIG instance only, so a trial asking for more
than one GPU is given whole GPUs.

Every queued trial that does not start is told why (`Plan.waiting`): the runner stores
that on the trial, for `status` and the TUI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runner.gpus import GpuKey, key_order, parse_key


@dataclass(frozen=True)
class Slot:
    """Where a trial runs: `gpus` empty means a CPU slot.

    `gpus` are nvidia-smi's numbers (stored in the label, shown in the TUI); `uuids` the same
    GPUs by UUID where NVML gave them, which is what the trial's CUDA_VISIBLE_DEVICES names
    (see runner.gpus for why).
    """

    gpus: tuple[GpuKey, ...] = ()
    uuids: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_label(cls, label: str | None) -> Slot:
        """The inverse of `label` ("gpu:0,1", "gpu:0:2" or "cpu"), as stored on the trial."""
        if label and label.startswith("gpu:"):
            return cls(tuple(parse_key(g) for g in label[4:].split(",")))
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
    cpus: float = 1  # CPU slots it takes when it asks for no GPU (the study's cpus_per_trial)


@dataclass(frozen=True)
class Launch:
    trial_id: int
    slot: Slot


@dataclass(frozen=True)
class Plan:
    launches: list[Launch]
    impossible: list[tuple[int, str]]  # (trial id, why it can never run here)
    waiting: dict[int, str]  # trial id -> why it does not start now ("waiting: ...")


def plan_launches(
    queue: list[Waiting],
    *,
    all_gpus: list[GpuKey],
    busy_gpus: set[GpuKey],
    cpu_slots: int,
    busy_cpu: int,
    running_per_study: dict[int, int],
) -> tuple[list[Launch], list[tuple[int, str]]]:
    """plan() without the waiting reasons: (launches, impossible)."""
    p = plan(queue, all_gpus=all_gpus, busy_gpus=busy_gpus, cpu_slots=cpu_slots, busy_cpu=busy_cpu,
             running_per_study=running_per_study)
    return p.launches, p.impossible


def plan(
    queue: list[Waiting],
    *,
    all_gpus: list[GpuKey],
    busy_gpus: set[GpuKey],
    cpu_slots: int,
    busy_cpu: int,
    running_per_study: dict[int, int],
    others: dict[GpuKey, str] | None = None,
    can_grow: bool = False,
) -> Plan:
    """Fill free slots from the queue in order, within each study's concurrency.

    busy_gpus: GPU slots not free (held by our trials, or by another process).
    others: of those, the ones another process is using, with a short why (gpus.busy_note), for
    the waiting trials' reasons.
    `impossible` lists (trial_id, why) for trials that can never run here (more GPUs asked than
    the machine has, any at all where it has none, several where it has MIG instances only).
    can_grow: the slots are a cluster's, which nodes may join: a trial asking for more than it
    has now waits (with why) instead of being impossible.
    """
    others = others or {}
    free_gpus = [g for g in all_gpus if g not in busy_gpus]
    free_cpu = cpu_slots - busy_cpu
    whole = [g for g in all_gpus if isinstance(g, int)]
    running = dict(running_per_study)
    launches: list[Launch] = []
    impossible: list[tuple[int, str]] = []
    waiting: dict[int, str] = {}
    for w in queue:
        if running.get(w.study_id, 0) >= w.concurrency:
            waiting[w.trial_id] = f"waiting: the study's concurrency ({w.concurrency}) is reached"
            continue
        want = w.gpus_per_trial
        usable = all_gpus if want <= 1 else whole
        if want > len(usable):
            if can_grow:
                waiting[w.trial_id] = f"waiting for a node with GPUs: {_too_many_gpus(want, all_gpus, 'the cluster')}"
            else:
                impossible.append((w.trial_id, _too_many_gpus(want, all_gpus)))
            continue
        if want:
            fits = [g for g in free_gpus if want == 1 or isinstance(g, int)]
            if len(fits) < want:
                waiting[w.trial_id] = _no_free_gpu(want, usable, fits, others)
                continue
            taken = fits[:want]
            slot = Slot(tuple(taken))
            free_gpus = [g for g in free_gpus if g not in taken]
        else:
            if w.cpus > cpu_slots and not can_grow:
                impossible.append((w.trial_id, f"asks for {w.cpus:g} CPU slots (cpus_per_trial); "
                                               f"this machine has {cpu_slots}"))
                continue
            if free_cpu < w.cpus:
                waiting[w.trial_id] = _no_free_cpu(w.cpus, cpu_slots, free_cpu)
                continue
            free_cpu -= w.cpus
            slot = Slot()
        running[w.study_id] = running.get(w.study_id, 0) + 1
        launches.append(Launch(w.trial_id, slot))
    return Plan(launches, impossible, waiting)


def _no_free_gpu(want: int, usable: list[GpuKey], fits: list[GpuKey], others: dict[GpuKey, str]) -> str:
    """Why a GPU trial waits: the slots another process holds, and how many of ours are taken."""
    theirs = [g for g in sorted(others, key=key_order) if g in usable]
    ours = len(usable) - len(fits) - len(theirs)  # held by trials (ours, or earlier in this plan)
    parts = [others[g] for g in theirs]
    if want > 1:
        parts.append(f"needs {want} whole GPUs free, {len(fits)} of {len(usable)} are")
    elif ours:
        parts.append(f"{'all ' if not theirs else 'the other '}{_count(ours, 'GPU slot')} in use")
    return "waiting: " + "; ".join(parts)


def _no_free_cpu(want: float, cpu_slots: int, free: float) -> str:
    if want > cpu_slots:
        return f"waiting for a node: asks for {want:g} CPUs (cpus_per_trial); the cluster has {cpu_slots}"
    if want <= 1 or free <= 0:
        return f"waiting: all {_count(cpu_slots, 'CPU slot')} in use"
    return f"waiting: needs {want:g} CPU slots free, {free:g} of {cpu_slots} are"


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


def _too_many_gpus(want: int, gpus: list[GpuKey], where: str = "this machine") -> str:
    whole = sum(isinstance(g, int) for g in gpus)
    if want > 1 and whole < want <= len(gpus):
        return (f"asks for {want} GPUs; {where} has {whole} whole GPU(s) and {len(gpus) - whole} "
                "MIG instance(s), and a process can use one MIG instance only")
    why = f"asks for {want} GPUs; {where} has {len(gpus)}"
    return why + ("; set gpus_per_trial = 0 to run on CPU slots" if not gpus else "")
