"""`playbook-runner analyze STUDY`: the playbook's checklist as a report (rich) or JSON, one record for both."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text
from sqlite_utils import Database

from runner.judging import StudyOutcomes, study_outcomes
from runner.playbook.check import jsonable
from runner.playbook.checklist import NO_OBJECTIVE, overall, run_checklist
from runner.playbook.outcome import counts_line, infeasible_causes
from runner.printed import capture_record
from runner.study_data import load_checklist_inputs
from runner.text import out_of_order_note, printable
from store import capture, trials
from store.studies import Study

VERDICT_STYLE = {"ok": "bold green", "warning": "bold yellow", "problem": "bold red", "n/a": "dim"}


def analyze_report(db: Database, study: Study) -> dict:
    """The checklist of one study as a JSON-able record: every check with every number."""
    outcomes = study_outcomes(db, study)  # judged (and stored) first: the same verdicts every view shows
    data, curves = load_checklist_inputs(db, study)
    checks = run_checklist(data, curves)
    counts = {v: sum(1 for c in checks if c.verdict == v) for v in ("ok", "warning", "problem", "n/a")}
    return jsonable({
        "study": study.label,  # 'tiny v2' from a study's version 2 on
        "version": study.version,
        "goal": study.goal,
        "objective": {"metric": study.objective_metric, "mode": study.objective_mode},
        "max_train_steps": study.max_train_steps,
        "n_trials": len(data.trials),
        "outcomes": _outcomes_record(outcomes),
        "overall": overall(checks),
        "verdicts": counts,
        "checks": [c.to_dict() for c in checks],
        "capture": capture_findings(db, study),
    })


def capture_findings(db: Database, study: Study) -> dict:
    """What kept metrics from arriving: trials that ended without the objective (and the names
    they did report), and per finished trial what its printed-line capture repeated, dropped
    or never matched, each with a sample line."""
    saved = capture.for_study(db, study.id)
    no_objective, notes, repeated = [], [], []
    for t in trials.list_for_study(db, study.id):
        if t.reason == NO_OBJECTIVE:
            no_objective.append({"trial": t.number, "detail": t.detail})
        record = capture_record(saved.get(t.id), finished=t.state.is_finished())
        if record and record["notes"]:
            notes.append({"trial": t.number, **record})
        if t.out_of_order:  # metrics.jsonl points merged at a step their series already had
            repeated.append({"trial": t.number, "out_of_order": t.out_of_order, "sample": t.out_of_order_sample,
                             "note": out_of_order_note(t.out_of_order, t.out_of_order_sample)})
    return {"no_objective": no_objective, "trials": notes, "reported_out_of_order": repeated}


def _outcomes_record(s: StudyOutcomes) -> dict:
    """How every trial ended (runner.playbook.outcome): the counts status and the TUI show, and each trial."""
    return {
        "counts": s.counts,
        "infeasible_by": infeasible_causes(s.outcomes.values()),
        "best_trial": s.best_trial,
        "trials": [{"trial": n, "outcome": o.label, "feasible": o.feasible, "partial": o.partial,
                    "why": o.why}
                   for n, o in s.outcomes.items()],
    }


def _t(value, style: str = "") -> Text:
    """Study- and trial-supplied strings become literal Text: no markup, no escapes reach the terminal."""
    return Text(printable("" if value is None else str(value)), style=style)


def render_analyze(report: dict, console: Console | None = None) -> None:
    """The report for a reader: one block per question, verdict first."""
    console = console or Console()
    header = Text()
    header.append(printable(report["study"]), style="bold")
    header.append(f"  {printable(report['objective']['metric'])} ({report['objective']['mode']}), "
                  f"{report['n_trials']} trials, max_train_steps {report['max_train_steps']}  |  ")
    header.append(", ".join(f"{n} {v}" for v, n in report["verdicts"].items() if n))
    console.print(header)
    if report["goal"]:
        console.print(_t("goal: " + report["goal"]))
    outcomes = report["outcomes"]
    console.print(_t("trials: " + counts_line(outcomes["counts"], outcomes["infeasible_by"])))
    _render_capture(report["capture"], report["objective"]["metric"], console)
    for check in report["checks"]:
        console.print()
        line = Text()
        line.append(f"[{check['verdict']}]".ljust(10), style=VERDICT_STYLE.get(check["verdict"], ""))
        line.append(printable(check["title"]), style="bold")
        console.print(line)
        console.print(_t("  " + check["summary"]))
        for detail in check["details"]:
            console.print(_t("    " + detail, "dim"))
        if check["advice"]:
            console.print(_t("  -> " + check["advice"], "italic"))
    console.print()
    console.print(Text("every number behind these verdicts: playbook-runner analyze STUDY --json", style="dim"))


def _render_capture(found: dict, objective: str, console: Console) -> None:
    """Before the checks: why metrics are missing, when they are (the checks' verdicts rest on them)."""
    if found["no_objective"]:
        console.print()
        line = Text()
        line.append("[problem] ".ljust(10), style=VERDICT_STYLE["problem"])
        line.append(f"{len(found['no_objective'])} trial(s) exited 0 without reporting {printable(objective)} "
                    f"(reason {NO_OBJECTIVE}): they are not results", style="bold")
        console.print(line)
        for t in found["no_objective"][:5]:
            console.print(_t(f"    trial {t['trial']}: {t['detail']}", "dim"))
    for t in found["trials"][:10]:
        console.print(_t(f"[capture] trial {t['trial']}:", "bold yellow"))
        for note in t["notes"]:
            console.print(_t("    " + note, "dim"))
    for t in found["reported_out_of_order"][:10]:
        console.print(_t(f"[metrics] trial {t['trial']}:", "bold yellow"))
        console.print(_t("    " + t["note"], "dim"))
