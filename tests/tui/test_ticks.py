"""Readable axis ticks: round positions of the axis' kind and short labels, as the plots draw them."""

from __future__ import annotations

from textual.app import App, ComposeResult

from runner.playbook.isolation import AxisData, AxisPoint, IsolationRow
from tests.tui.tui_helpers import run, wait_for
from tui.data.plots import axis_spec, curves_spec, isolation_spec
from tui.data.snapshot import TrialCurves
from tui.data.ticks import nice_ticks, short, value_kind
from tui.data.trial_data import Points
from tui.widgets.plot import PlotWidget, build_plot


def test_linear_ticks_step_by_one_two_or_five():
    assert nice_ticks(0, 10_000) == ((0, 2000, 4000, 6000, 8000, 10000), ("0", "2k", "4k", "6k", "8k", "10k"))
    assert nice_ticks(0.0912, 0.1345)[1] == ("0.1", "0.11", "0.12", "0.13")
    assert nice_ticks(0, 1)[1] == ("0", "0.2", "0.4", "0.6", "0.8", "1")
    # Close values far from zero get the digits that tell them apart, no more.
    assert nice_ticks(1.0005, 1.0012)[1] == ("1.0006", "1.0008", "1.001", "1.0012")


def test_integer_axes_never_get_a_fractional_tick():
    assert nice_ticks(1, 3, kind="int") == ((1, 2, 3), ("1", "2", "3"))  # seeds: not 1.00 1.33 1.67
    assert nice_ticks(0, 20, kind="int")[1] == ("0", "5", "10", "15", "20")  # steps: not 9.2 17.3
    assert nice_ticks(0, 7, kind="int")[1] == ("0", "2", "4", "6")
    assert nice_ticks(3, 3, kind="int") == ((3,), ("3",))
    assert nice_ticks(0, 10_000, kind="int")[1] == ("0", "2k", "4k", "6k", "8k", "10k")


def test_log_ticks_are_decades_with_one_two_five_between_on_short_ranges():
    assert nice_ticks(1e-4, 1e-2, kind="log")[1] == ("1e-4", "1e-3", "0.01")
    assert nice_ticks(3e-4, 0.1, kind="log")[1] == ("1e-3", "0.01", "0.1")
    assert nice_ticks(1e-3, 3e-3, kind="log")[1] == ("1e-3", "2e-3")  # under a decade: 1-2-5
    assert nice_ticks(0.05, 0.8, kind="log")[1] == ("0.05", "0.1", "0.2", "0.5")
    assert nice_ticks(1e-8, 100, kind="log")[1] == ("1e-8", "1e-6", "1e-4", "0.01", "1", "100")  # every other
    assert nice_ticks(0, 5, kind="log")[1][0] == "0"  # a zero makes it linear, not an error


def test_batch_sizes_are_ticked_at_powers_of_two():
    assert nice_ticks(32, 1024, kind="pow2")[1] == ("32", "64", "128", "256", "512", "1024")
    assert nice_ticks(40, 1000, kind="pow2")[1] == ("64", "128", "256", "512")  # not 40.3 101.6 645.1
    assert nice_ticks(8, 65536, kind="pow2")[1] == ("8", "32", "128", "512", "2048", "8192", "32768")


def test_kind_follows_the_values():
    assert value_kind([32, 128, 512], log=True) == "pow2"
    assert value_kind([1, 2, 3]) == "int" and value_kind([0, 1024]) == "int"  # 0 is not a power of two
    assert value_kind([48, 640], log=True) == "log"
    assert value_kind([1e-4, 1e-2], log=True) == "log" and value_kind([0.1, 0.5]) == "linear"


def test_labels_are_short():
    assert [short(x) for x in (1500, 1000, 2_000_000, 0.25, 2.5e-4, -0.003, 1024)] == \
        ["1.5k", "1k", "2M", "0.25", "2.5e-4", "-3e-3", "1024"]


def _axis(param: str, xs, log: bool = False) -> AxisData:
    points = tuple(AxisPoint(trial=i + 1, x=x, y=0.1 + 0.01 * i, feasible=True, reason=None)
                   for i, x in enumerate(xs))
    return AxisData(param, "nuisance", log, False, points)


def _x_labels(spec, width: int = 70, height: int = 12) -> list[str]:
    """The words of the plot's last line: its x tick labels."""
    return build_plot(spec, width, height, {}).plain.splitlines()[-1].split()


def test_axis_plots_label_batch_sizes_seeds_and_rates_roundly():
    assert _x_labels(axis_spec(_axis("batch_size", [64, 128, 256, 512], log=True), "loss", "min")) == \
        ["64", "128", "256", "512"]
    assert _x_labels(axis_spec(_axis("width", [48, 64, 128, 256, 640], log=True), "loss", "min")) == \
        ["50", "100", "200", "500"]
    assert _x_labels(axis_spec(_axis("seed", [1, 2, 3]), "loss", "min")) == ["1", "2", "3"]
    assert _x_labels(axis_spec(_axis("lr", [1e-4, 3e-3, 0.02], log=True), "loss", "min")) == \
        ["1e-4", "1e-3", "0.01"]


def test_curves_are_ticked_at_whole_steps():
    values = tuple(1 / (s + 1) for s in range(11))
    points = Points("val_loss", tuple(range(11)), values, values, values, 11)
    assert _x_labels(curves_spec([TrialCurves(1, 1, (points,))], "val_loss")) == ["0", "2", "4", "6", "8", "10"]


def test_isolation_labels_numbers_shortly():
    rows = [IsolationRow(v, str(v), 1, 0.5, 1, 1) for v in (0.00025, 0.001)]
    rows.append(IsolationRow((1000.0, 2500.0), "1e+03..2.5e+03", 2, 0.4, 1, 1))
    assert isolation_spec("lr", rows, "loss").xticks[1] == ("2.5e-4", "1e-3", "1k..2.5k")


class _PlotApp(App):
    def __init__(self, spec):
        super().__init__()
        self.spec = spec

    def compose(self) -> ComposeResult:
        yield PlotWidget(self.spec)


def test_the_plot_widget_shows_the_round_ticks():
    spec = axis_spec(_axis("batch_size", [32, 64, 128, 256, 512, 1024], log=True), "val_loss", "min")

    async def scenario():
        app = _PlotApp(spec)
        async with app.run_test(size=(80, 16)) as pilot:
            plot = app.query_one(PlotWidget)
            await wait_for(pilot, lambda: plot.drawn)
            lines = plot.render().plain.splitlines()
            assert lines[-1].split() == ["32", "64", "128", "256", "512", "1024"], lines
            assert "•" in "\n".join(lines[1:-1])  # the points are drawn, on the log axis
            y_labels = [line.split("┤")[0].strip() for line in lines if "┤" in line]
            assert y_labels and all(len(label) <= 4 for label in y_labels), y_labels  # 0.12, not 0.1125

    run(scenario())
