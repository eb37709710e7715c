"""The TUI's pure parts: log tailing, plot building, plot specs, checkpoints, GPU slots."""

from __future__ import annotations

import os

from rich.style import Style

from tui.data.logtail import LogTail
from tui.data.plotspec import POINTS, PlotSpec, Series
from tui.data.ticks import nice_ticks, short
from tui.data.trial_data import Checkpoint, best_checkpoint
from tui.widgets.gpu import gpu_indices
from tui.widgets.plot import build_plot

COLORS = {"primary": "#0178d4", "error": "#ba3c5b"}


def test_log_tail_reads_the_end_then_new_complete_lines(tmp_path):
    path = tmp_path / "stdout.log"
    tail = LogTail(path, first_bytes=20, max_bytes=60)
    assert tail.read() == []  # not there yet
    path.write_text("".join(f"line {i}\n" for i in range(10)))
    assert tail.read() == ["── 50 bytes earlier not shown ──", "line 8", "line 9"]
    with open(path, "a") as f:
        f.write("half")
    assert tail.read() == []  # an unfinished line waits for its newline
    with open(path, "a") as f:
        f.write(" done\rredrawn\n\x1b[31mred\x1b[0m [b]\n")
    assert tail.read() == ["redrawn", "\\x1b[31mred\\x1b[0m [b]"]  # as a terminal shows \r; escapes visible
    with open(path, "a") as f:
        f.write("x" * 100 + "\nlast\n")
    assert tail.read() == ["── 86 bytes skipped (written faster than shown) ──", "last"]


def test_log_tail_starts_over_when_the_file_is_replaced(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("old 1\nold 2\n")
    tail = LogTail(path)
    assert tail.read() == ["old 1", "old 2"]
    os.replace(path, tmp_path / "archived.log")  # what a requeue does to the earlier attempt
    path.write_text("new 1\n")
    assert tail.read() == ["── the file was replaced; reading it from the start ──", "new 1"]


def test_log_tail_decodes_utf8_split_across_reads(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_bytes(b"")
    tail = LogTail(path)
    assert tail.read() == []
    data = "héllo ✓\n".encode()
    with open(path, "ab") as f:
        f.write(data[:2])
    assert tail.read() == []
    with open(path, "ab") as f:
        f.write(data[2:])
    assert tail.read() == ["héllo ✓"]


def test_build_plot_fills_the_size_exactly_in_theme_colors():
    spec = PlotSpec("loss", (Series("train", (0, 1, 2, 3), (1.0, 0.5, 0.25, 0.125)),
                             Series("bad", (1.5,), (0.9,), "error", POINTS, "x")))
    text = build_plot(spec, 60, 12, COLORS)
    lines = text.plain.split("\n")
    assert len(lines) == 12 and all(len(line) == 60 for line in lines[1:])
    assert lines[0].startswith("loss  ━ train  x bad")
    colors = {str(span.style.color.name) for span in text.spans if isinstance(span.style, Style) and span.style.color}
    assert {"#0178d4", "#ba3c5b"} <= colors  # plotext's ANSI codes mapped back to the theme


def test_build_plot_cuts_a_long_legend_to_one_line():
    series = tuple(Series(f"#{i} width={2 ** i}", (0, 1), (1.0, 0.5)) for i in range(8))
    lines = build_plot(PlotSpec("val_loss vs seconds (s)", series), 40, 10, COLORS).plain.split("\n")
    assert len(lines) == 10 and len(lines[0]) == 40 and lines[0].endswith("…")


def test_build_plot_without_data_or_room_says_so():
    assert "no points yet" in build_plot(PlotSpec("loss"), 60, 12, COLORS).plain
    tiny = build_plot(PlotSpec("loss", (Series("a", (0, 1), (0, 1)),)), 10, 3, COLORS)
    assert "too small" in tiny.plain


def test_build_plot_drops_non_finite_points_and_thins_long_curves():
    xs = tuple(range(5000))
    ys = tuple(float("nan") if x % 7 == 0 else x * 0.001 for x in xs)
    text = build_plot(PlotSpec("big", (Series("y", xs, ys),)), 80, 10, COLORS)
    assert len(text.plain.split("\n")) == 10


def test_nice_ticks_are_round_and_short():
    assert nice_ticks(0, 10_000) == ((0, 2000, 4000, 6000, 8000, 10000), ("0", "2k", "4k", "6k", "8k", "10k"))
    assert nice_ticks(3, 3) == ((3,), ("3",))
    assert short(2_000_000) == "2M" and short(0.25) == "0.25"


def test_best_checkpoint_is_the_best_objective_earliest_on_ties():
    cps = (Checkpoint(1, "a", 0.5), Checkpoint(2, "b", 0.3), Checkpoint(3, "c", 0.3), Checkpoint(4, "d", None))
    assert best_checkpoint(cps, "min") == 2
    assert best_checkpoint(cps, "max") == 1
    assert best_checkpoint((Checkpoint(1, "a", float("nan")),), "min") is None


def test_gpu_indices_of_a_slot():
    assert gpu_indices("gpu:0,1") == (0, 1)
    assert gpu_indices("gpu:1:2") == (1,)  # a MIG instance is shown on its GPU's line
    assert gpu_indices("cpu") == ()


def test_gpu_panel_repaints_only_on_change_and_a_reading_replaces_an_error():
    import asyncio

    from textual.app import App

    from tui.data.snapshot import SlotUse
    from tui.widgets.gpu import NO_GPU, GpuPanel

    class One(App):
        def compose(self):
            yield GpuPanel(id="gpus")

    async def scenario():
        async with One().run_test() as pilot:
            panel = pilot.app.query_one(GpuPanel)
            updates = []
            real_update = panel.update
            panel.update = lambda text: (updates.append(text.plain), real_update(text))
            slots = [SlotUse("cpu", "digits", 3)]
            panel.show(readings=[], slots=slots)
            panel.show(readings=[], slots=slots)  # the same poll again: nothing to repaint
            panel.show_error("NVMLError: GPU is lost")
            panel.show(readings=[], slots=slots)  # the next good reading clears the error
            await pilot.pause()
            return updates

    updates = asyncio.run(scenario())
    assert updates == [f"{NO_GPU}: digits #3", "cannot read the GPUs: NVMLError: GPU is lost",
                       f"{NO_GPU}: digits #3"]


def test_category_labels_on_an_axis_plot_are_shown_not_interpreted():
    from runner.playbook.isolation import AxisData, AxisPoint
    from tui.data.plots import axis_spec

    evil = "adam\x1b[31m"
    axis = AxisData("optimizer", "scientific", False, True,
                    (AxisPoint(1, evil, 0.5, True, None), AxisPoint(2, "sgd", 0.7, True, None)))
    labels = axis_spec(axis, "val_loss", "min").xticks[1]
    assert "adam\\x1b[31m" in labels and all("\x1b" not in label for label in labels)
