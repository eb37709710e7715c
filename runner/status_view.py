"""`playbook-runner status` as tables (rich), from the same record as `--json`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from runner.ingest import out_of_order_note
from runner.playbook.outcome import FAILED_TO_TRAIN, PARTIAL_MARK, counts_line
from runner.text import baseline_line, printable_line


def _t(value, style: str = "") -> Text:
    """Trial-supplied strings become literal Text: no markup, no escapes reach the terminal."""
    return Text(printable_line("" if value is None else str(value)), style=style)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


STATE_STYLE = {"completed": "green", "failed": "red", "running": "cyan", "starting": "cyan",
               "queued": "dim", "stopped": "yellow", "lost": "magenta"}


def render_status(report: dict, console: Console | None = None) -> None:
    console = console or Console()
    runner = report["runner"]
    console.print(Text(f"runner: pid {runner['pid']} on {runner['host']}" if runner
                       else "runner: none alive for this database"))
    if not report["studies"]:
        console.print("no studies yet: playbook-runner run sample_studies/digits/study.toml")
    for study in report["studies"]:
        console.print()
        _render_study(console, study)


def _render_study(console: Console, study: dict) -> None:
    c = study["counts"]
    objective = study["objective"]
    best = (f"best {objective['metric']} = {_fmt(study['best_value'])} (trial {study['best_trial']})"
            if study["best_value"] is not None else "no objective reported yet")
    header = Text()
    header.append(printable_line(study.get("label") or study["name"]), style="bold")
    if study.get("previous"):
        header.append(printable_line(f" (after {study['previous']})"), style="dim")
    if study.get("refines"):
        header.append(printable_line(f" (refines {study['refines']})"), style="dim")
    header.append(f"  [{'active' if study['active'] else 'idle'}]  ")
    header.append(counts_line(c, study.get("infeasible_by") or {}) + f"  |  {printable_line(best)}")
    console.print(header)
    if study["goal"]:
        console.print(_t("goal: " + study["goal"]))
    console.print(_t(f"config: {study['config_path']}   reproduce: {study['reproduce_command']}"))
    if study.get("baseline"):
        b = study["baseline"]
        console.print(_t(baseline_line(b["params"], b["source"], b["adopted_at"], b["objective_mean"]), "green"))
    trials = study["trials"]
    param_names = sorted({k for t in trials for k in t["params"]})
    varied = [n for n in param_names
              if len({repr(t["params"].get(n)) for t in trials}) > 1]
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("state")
    for name in varied:
        role = next((t["roles"].get(name) for t in trials if name in t["roles"]), "")
        table.add_column(_t(("*" if role == "scientific" else "") + name), justify="right")
    table.add_column(_t(f"best {objective['metric']}"), justify="right")
    table.add_column("@step", justify="right")
    table.add_column("progress", justify="right")
    for t in trials:
        state = t.get("outcome") or t["state"] + (f" ({t['reason']})" if t["reason"] else "")
        progress = (f"{t['last_step'] if t['last_step'] is not None else '-'}/"
                    f"{t.get('progress_total') or t['max_train_steps']}")
        table.add_row(
            str(t["number"]), _t(state, _state_style(t)),
            *[_t(_fmt(t["params"].get(n, "-"))) for n in varied],
            _t(_fmt(t["best_value"]) if t["best_value"] is not None else "-"),
            _t(t["best_step"] if t["best_step"] is not None else "-"), progress,
        )
    console.print(table)
    console.print(Text(f"* scientific parameter   {PARTIAL_MARK} partial: ended before max_train_steps "
                       "(never the best)", style="dim"))
    for t in trials:
        if t.get("outcome") == FAILED_TO_TRAIN:
            console.print(_t(f"trial {t['number']} {FAILED_TO_TRAIN} ({t['outcome_why']})", "red"))
        if t.get("bad_lines"):
            console.print(_t(f"trial {t['number']}: {t['bad_lines']} metric line(s) dropped; "
                             f"the first: {t.get('bad_line_sample') or '?'}", "yellow"))
        if t.get("out_of_order"):
            console.print(_t(f"trial {t['number']}: "
                             f"{out_of_order_note(t['out_of_order'], t.get('out_of_order_sample'))}", "yellow"))
        for note in (t.get("capture") or {}).get("notes", []):
            console.print(_t(f"trial {t['number']}: {note}", "yellow"))


def _state_style(t: dict) -> str:
    if t.get("feasible") is False:
        return STATE_STYLE["failed"]
    if t.get("partial"):
        return STATE_STYLE["stopped"]
    return STATE_STYLE.get(t["state"], "")
