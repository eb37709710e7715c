"""The GPU panel: per GPU utilization, memory, temperature, and the trials on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from runner.text import printable

NO_GPU = "no GPU found, running on CPU slots"
BAR_CELLS = 8


def gpu_indices(slot: str) -> tuple[int, ...]:
    """'gpu:0,1' -> (0, 1); a MIG instance's GPU: 'gpu:1:2' -> (1,); 'cpu' -> ()."""
    if not slot.startswith("gpu:"):
        return ()
    gpus = (g.split(":")[0].strip() for g in slot[4:].split(","))
    return tuple(int(g) for g in gpus if g.isdigit())


def _trials_on(slots: Sequence[Any], gpu: int | None) -> str:
    """'digits #3, #4' for the trials holding that GPU (None: the CPU slots)."""
    by_study: dict[str, list[str]] = {}
    for use in slots:
        held = gpu_indices(use.slot)
        if (gpu is None and not held) or gpu in held:
            by_study.setdefault(use.study, []).append(f"#{use.number}")
    return "; ".join(f"{study} {', '.join(nums)}" for study, nums in by_study.items())


def _bar(pct: int | None) -> str:
    if pct is None:
        return "?" * BAR_CELLS
    full = round(max(0, min(pct, 100)) / 100 * BAR_CELLS)
    return "█" * full + "░" * (BAR_CELLS - full)


def gpu_line(reading: Any, slots: Sequence[Any], warn: Style) -> Text:
    """One GPU (runner.gpus.GpuReading) on one line."""
    name = printable(reading.name.removeprefix("NVIDIA "))
    util = "  ?%" if reading.utilization_pct is None else f"{reading.utilization_pct:3d}%"
    mem = f"{reading.memory_used_mib / 1024:.1f}/{reading.memory_total_mib / 1024:.0f} GiB"
    text = Text(f"GPU{reading.index} ", style="bold", no_wrap=True, overflow="ellipsis")
    text.append(f"{_bar(reading.utilization_pct)} {util}  mem {mem}  ")
    temp = reading.temperature_c
    text.append("?°C" if temp is None else f"{temp}°C", style=warn if temp is not None and temp >= 85 else "")
    text.append(f"  {printable(_trials_on(slots, reading.index)) or 'idle'}  ")
    text.append(name, style="dim")
    return text


def panel_text(readings: Sequence[Any] | None, slots: Sequence[Any], warn: Style) -> Text:
    if readings is None:
        return Text("reading GPUs…", style="dim")
    if not readings:
        cpu = _trials_on(slots, None)
        return Text(NO_GPU + (f": {printable(cpu)}" if cpu else ""), no_wrap=True, overflow="ellipsis")
    return Text("\n").join(gpu_line(r, slots, warn) for r in readings)


class GpuPanel(Static):
    """Shows what it is given: NVML readings (None: not read yet) and the slots in use."""

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.readings: Sequence[Any] | None = None
        self.slots: Sequence[Any] = ()
        self._shown: Text | None = None  # the text on screen

    def show_error(self, message: str) -> None:
        self._shown = Text(f"cannot read the GPUs: {printable(message)}", style="bold")
        self.update(self._shown)

    def show(self, readings: Sequence[Any] | None = None, slots: Sequence[Any] | None = None) -> None:
        if readings is not None:
            self.readings = readings
        if slots is not None:
            self.slots = slots
        warn = Style(color=self.app.theme_variables.get("error") or None, bold=True)
        text = panel_text(self.readings, self.slots, warn)
        if text != self._shown:  # an update relayouts the screen: not on every poll for nothing
            self._shown = text
            self.update(text)
