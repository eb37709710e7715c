"""The wizards as the TUI shows them: read (and advanced) in a worker thread, handed over as plain data.

`WizardReader` owns its own connection, like the app's poller. Reading a wizard
also advances it (runner.wizards.engine: register a confirmed stage, conclude a
finished one), and starts a detached runner when its trials wait for one, so a
wizard moves on while its screen is open, exactly as the headless command would.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from runner.owner import live_owner, start_detached
from runner.wizards import view as text_view
from runner.wizards.engine import Question, Status
from runner.wizards.start import open_wizard
from runner.wizards.substudy import series
from store import connect, studies, trials
from store import wizards as wizard_store
from tui.data.plotspec import COLORS, LINE, POINTS, PlotSpec, Series

RUNNER_RETRY_S = 15.0  # a detached runner takes a moment to hold the lease: do not start two
MAX_CURVES = len(COLORS)


@dataclass(frozen=True)
class WizardRow:
    id: int
    name: str
    kind: str
    base_study: str
    stage: str
    verdict: str | None


@dataclass(frozen=True)
class StageLine:
    name: str
    title: str
    mark: str  # "done" | "current" | "later" | "skipped"
    summary: str


@dataclass(frozen=True)
class TrialLine:
    study: str
    number: int
    label: str  # the varied parameter's value
    state: str
    detail: str
    steps: str
    best: float | None


@dataclass(frozen=True)
class WizardView:
    wizard: WizardRow
    stages: tuple[StageLine, ...]
    plan: tuple[str, ...]
    question: Question | None
    running: tuple[str, ...]
    study_ids: tuple[int, ...]  # the current stage's sub-studies (o opens the first)
    trials: tuple[TrialLine, ...]
    plot: PlotSpec
    report: tuple[str, ...]
    error: str | None = None


def _row(w) -> WizardRow:
    return WizardRow(w.id, w.name, w.kind, w.base_study, w.stage, w.verdict)


class WizardReader:
    """Reads wizards for the TUI; every method is for a worker thread."""

    def __init__(self, db_path: Path):
        self.db_path = Path(db_path)
        self.db = connect(self.db_path)
        self._runner_started = 0.0

    def close(self) -> None:
        self.db.conn.close()

    def rows(self) -> tuple[WizardRow, ...]:
        return tuple(_row(w) for w in wizard_store.list_all(self.db))

    def start(self, kind_name: str, argv: list[str]) -> int:
        """Create (or resume) a wizard from command-line style options; returns its id."""
        from runner.wizards import options

        return options.start(self.db, self.db_path, options.parse(kind_name, argv)).wizard.id

    def answer(self, wizard_id: int, key: str, value: str) -> None:
        kind = open_wizard(self.db, self.db_path, wizard_store.get(self.db, wizard_id))
        kind.answer(key, value)

    def read(self, wizard_id: int) -> WizardView:
        kind = open_wizard(self.db, self.db_path, wizard_store.get(self.db, wizard_id))
        status = kind.advance()
        if status.running:
            self._ensure_runner()
        stage_studies = self._stage_studies(kind, status)
        lines = tuple(t for s in stage_studies for t in self._trial_lines(kind, s))
        return WizardView(
            wizard=_row(status.wizard), stages=self._stages(kind, status), plan=status.plan_lines,
            question=status.question, running=status.running,
            study_ids=tuple(s.id for s in stage_studies), trials=lines,
            plot=self._plot(kind, status, stage_studies),
            report=tuple(text_view.render(status.wizard, status.stage_results)[1:]) if status.stage_results else (),
        )

    def _ensure_runner(self) -> None:
        now = time.monotonic()
        if live_owner(self.db) is None and now - self._runner_started > RUNNER_RETRY_S:
            self._runner_started = now
            start_detached(self.db_path)

    def _stage_studies(self, kind, status: Status):
        """The sub-studies of the current stage, or of the last stage that ran."""
        order = [s for s in kind.stages if s in status.stage_results or s == status.stage]
        for stage in reversed(order):
            found = [studies.by_name(self.db, f"{kind.wizard.name}.{suffix}") for suffix in _suffixes(kind, stage)]
            found = [s for s in found if s is not None]
            if found:
                return found
        return []

    def _stages(self, kind, status: Status) -> tuple[StageLine, ...]:
        skipped = set(status.wizard.state.get("skipped", []))

        def mark(stage: str) -> str:
            if stage in status.stage_results:
                return "done"
            if stage == status.stage:
                return "current"
            # Not run: skipped by the user, moot after an earlier result, or simply still ahead.
            return "skipped" if stage in skipped or status.done or _before(kind, stage, status.stage) else "later"

        return tuple(StageLine(stage, kind.titles.get(stage, stage), mark(stage),
                               _stage_summary(status.stage_results.get(stage))) for stage in kind.stages)

    def _trial_lines(self, kind, study) -> list[TrialLine]:
        out = []
        for t in trials.list_for_study(self.db, study.id):
            varied = _varied_label(t.params, kind)
            steps = f"{t.last_step if t.last_step is not None else '—'}/{study.max_train_steps}"
            detail = t.reason or (t.detail or "")
            out.append(TrialLine(study.name, t.number, varied, t.state.value, detail, steps, t.best_value))
        return out

    def _plot(self, kind, status: Status, stage_studies) -> PlotSpec:
        if kind.kind == "probe-batch":
            return self._probe_plot(kind, stage_studies)
        if kind.kind == "decide":
            return self._seed_plot(kind, stage_studies)
        if kind.kind == "length":
            return self._length_plot(kind, status, stage_studies)
        return self._loss_plot(kind, stage_studies)

    def _probe_plot(self, kind, stage_studies) -> PlotSpec:
        skip = kind.options["skip"]
        xs, ys = [], []
        for s in stage_studies:
            for t in trials.list_for_study(self.db, s.id):
                _, values = series(self.db, t, "examples_per_s")
                measured = [v for v in values[skip:] if v is not None]
                if measured:
                    xs.append(float(t.params[kind.options["batch_param"]]))
                    ys.append(statistics.median(measured))
        pts = sorted(zip(xs, ys, strict=True))
        return PlotSpec("examples/s vs batch size (median per size)",
                        (Series("examples/s", tuple(p[0] for p in pts), tuple(p[1] for p in pts), "primary", LINE),),
                        xlog=True, empty="no throughput reported yet")

    def _loss_plot(self, kind, stage_studies) -> PlotSpec:
        metric = kind.options["loss_metric"]
        out = []
        for s in stage_studies:
            for i, t in enumerate(trials.list_for_study(self.db, s.id)[:MAX_CURVES]):
                steps, values = series(self.db, t, metric, max_points=400)
                out.append(Series(_varied_label(t.params, kind), tuple(float(x) for x in steps),
                                  tuple(float("nan") if v is None else float(v) for v in values),
                                  COLORS[i % len(COLORS)], LINE))
        return PlotSpec(f"{metric} vs step", tuple(out), empty="no loss reported yet")

    def _length_plot(self, kind, status: Status, stage_studies) -> PlotSpec:
        """The sweep's loss curves with the target and each run's steps to it; once round 2 has
        finished, round 1's objective against round 2's, one point per configuration."""
        r2 = status.stage_results.get("round-2")
        if r2 is not None:
            return length_rank_plot(r2)
        plot = self._loss_plot(kind, stage_studies)
        sweep = status.stage_results.get("sweep")
        if sweep is None or sweep.get("target") is None or not stage_studies \
                or not stage_studies[0].name.endswith(".sweep"):
            return plot
        return with_target(plot, sweep)

    def _seed_plot(self, kind, stage_studies) -> PlotSpec:
        out = []
        for i, s in enumerate(stage_studies):
            done = [t for t in trials.list_for_study(self.db, s.id) if t.best_value is not None]
            out.append(Series(s.name.rsplit(".", 1)[1], tuple(float(t.number) for t in done),
                              tuple(float(t.best_value) for t in done), COLORS[i], POINTS, "dot"))
        return PlotSpec("best objective per seed", tuple(out), empty="no seed has finished yet")


def with_target(plot: PlotSpec, sweep: dict) -> PlotSpec:
    """The sweep's curves plus the target as a line and an x where each run first reached it."""
    xs = [x for s in plot.series for x in s.xs]
    if not xs:
        return plot
    target = float(sweep["target"])
    reached = [r for r in sweep["rows"] if r.get("steps_to_target") is not None]
    line = Series(f"target {text_view.fmt(target)}", (min(xs), max(xs)), (target, target), "error", LINE)
    marks = Series("steps to target", tuple(float(r["steps_to_target"]) for r in reached),
                   tuple(target for _ in reached), "foreground", POINTS, "x")
    vlines = ((float(sweep["max_train_steps"]), f"max_train_steps {sweep['max_train_steps']}", "success"),) \
        if sweep.get("max_train_steps") else ()
    return PlotSpec(f"{plot.title}: steps to the training-loss target", (*plot.series, line, marks),
                    vlines=vlines, empty=plot.empty)


def length_rank_plot(r2: dict) -> PlotSpec:
    """Round 1's objective (x) against round 2's (y) per configuration: the transfer at a glance."""
    short = r2["round1_objective"]
    pts = [(short.get(r["config"]), r["objective"]) for r in r2["rows"]]
    pts = sorted((float(a), float(b)) for a, b in pts if a is not None and b is not None)
    t = r2["transfer"]
    return PlotSpec(f"round 2 vs round 1 objective per configuration · {t['verdict']}, Spearman rho "
                    f"{text_view.fmt(t['spearman'])}",
                    (Series("configuration", tuple(p[0] for p in pts), tuple(p[1] for p in pts), "primary",
                            POINTS, "dot"),), empty="no configuration finished both rounds")


def _before(kind, stage: str, current: str) -> bool:
    return current in kind.stages and kind.stages.index(stage) < kind.stages.index(current)


def _suffixes(kind, stage: str) -> list[str]:
    return ["baseline", "candidate"] if kind.kind == "decide" else [stage]


def _varied_label(params: dict, kind) -> str:
    """The value a stage varies, as 'name=value' (the lr sweep's rate, a warmup length, a size, a seed)."""
    o = kind.options
    if kind.kind == "probe-batch":
        name = o["batch_param"]
    elif kind.kind == "decide":
        name = "seed"
    elif kind.kind == "length":
        varied = {k: params.get(k) for k in (o["lr_param"], *o.get("vary", {}))}
        return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in varied.items())
    else:
        name = o["warmup_param"] if params.get(o["warmup_param"]) else o["lr_param"]
    value = params.get(name)
    return f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"


def _stage_summary(result: dict | None) -> str:
    if not result:
        return ""
    if "recommended" in result and "rows" in result and "base_learning_rate" not in result:
        return f"recommended batch size {result['recommended']}"
    if "target_why" in result:
        return result["summary"]
    if "transfer" in result:
        return result["transfer"]["summary"]
    if "chosen" in result:
        return f"best {len(result['chosen'])} go to round 2"
    if "lr_star" in result:
        return (f"lr* {text_view.fmt(result['lr_star'])}, smallest unstable "
                f"{text_view.fmt(result.get('unstable_lr'))}")
    if "base_learning_rate" in result:
        return f"shortest stable warmup {result.get('recommended') or 'none'}"
    if "stability" in result and result["stability"]:
        return f"{result['stability']['verdict']}: {result['stability']['reason']}"
    return str(result.get("verdict", ""))
