"""`playbook-runner compare A B [--json]`: two studies (or two versions of one) side by side.

For each scientific value, each study's best trial over its nuisance parameters (the playbook's
isolation plot as a table), and which study reached the better objective there. The same
record feeds the TUI's compare screen (tui.screens.compare).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from runner.judging import study_outcomes
from runner.text import printable_line
from store import connect, studies
from store.studies import Study

EXIT_USAGE = 2
ALL_TRIALS = "all trials"  # the one row of a study without a scientific parameter


def add_parser(sub) -> None:
    compare = sub.add_parser("compare", help="two studies or versions side by side: the best trial per "
                                             "scientific value of each (NAME@N names a version)")
    compare.add_argument("first", metavar="A", help="a study: NAME (its latest version) or NAME@N")
    compare.add_argument("second", metavar="B", help="the other study, or another version of the same one")
    compare.add_argument("--json", action="store_true", help="the comparison as one JSON record")
    compare.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace, db_path: Path) -> int:
    db = connect(db_path)
    try:
        pair = [studies.require(db, text) for text in (args.first, args.second)]
    except studies.UnknownStudy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if pair[0].id == pair[1].id:
        print(f"error: compare: {args.first} and {args.second} are the same study ({pair[0].address}); "
              "name two studies, or two versions as NAME@N", file=sys.stderr)
        return EXIT_USAGE
    report = compare_report(db, *pair)
    if args.json:
        json.dump(report, sys.stdout, indent=2, allow_nan=False)
        print()
    else:
        print("\n".join(render_compare(report)))
    return 0


def compare_report(db: Database, a: Study, b: Study, *, with_plots: bool = False) -> dict[str, Any]:
    """Both studies' best trial per scientific value, row by row (values in either study), and
    which is better where both have one. `with_plots` adds each study's isolation and axis-plot
    data (runner.playbook.isolation objects, for the TUI's plots; not JSON)."""
    sides = [_side(db, s, with_plots) for s in (a, b)]
    same_objective = all(s["objective"] == sides[0]["objective"] for s in sides)
    params = list(dict.fromkeys(p for s in sides for p in s["best"]))
    rows = []
    for param in params:
        labels = list(dict.fromkeys(label for s in sides for label in s["best"].get(param, {})))
        for label in labels:
            best = [s["best"].get(param, {}).get(label) for s in sides]
            rows.append({"param": param, "value": label, "a": best[0], "b": best[1],
                         "better": _better(best, sides[0]["objective"]["mode"]) if same_objective else None})
    report = {
        "a": {k: v for k, v in sides[0].items() if k not in ("best", "plots")},
        "b": {k: v for k, v in sides[1].items() if k not in ("best", "plots")},
        "same_objective": same_objective,
        "rows": rows,
    }
    if with_plots:
        report["plots"] = (sides[0]["plots"], sides[1]["plots"])
    return report


def _side(db: Database, study: Study, with_plots: bool) -> dict[str, Any]:
    # Imported here: the analyses' modules are not loaded by every command's parser.
    from runner.playbook.isolation import axis_plot_data, isolation_data
    from runner.study_data import load_study_data

    outcomes = study_outcomes(db, study)  # judged first: the good trials every view shows
    data = load_study_data(db, study)
    scientific = [p.name for p in data.by_role("scientific")]
    tables = {name: isolation_data(data, name) for name in scientific}
    best: dict[str, dict[str, dict | None]] = {
        name: {row.label: ({"best_value": row.best_value, "trial": row.best_trial}
                           if row.best_trial is not None else None) for row in rows}
        for name, rows in tables.items()}
    if not scientific:
        best = {ALL_TRIALS: {ALL_TRIALS: {"best_value": outcomes.best_value, "trial": outcomes.best_trial}
                             if outcomes.best_trial is not None else None}}
    side = {"study": study.name, "version": study.version, "label": studies.distinct_label(db, study),
            "address": study.address, "objective": {"metric": study.objective_metric, "mode": study.objective_mode},
            "trials": len(data.trials), "best": best}
    if with_plots:
        side["plots"] = {"isolation": tables, "axes": {a.param: a for a in axis_plot_data(data)}}
    return side


def _better(best: list[dict | None], mode: str) -> str | None:
    """'a', 'b' or 'same' where both have a best; None where one has none (nothing to compare)."""
    if best[0] is None or best[1] is None:
        return None
    x, y = best[0]["best_value"], best[1]["best_value"]
    if x == y:
        return "same"
    return "a" if (x < y) == (mode == "min") else "b"


def cell_text(best: dict | None) -> str:
    """'0.1234 (#7)', or '—' where the study has no feasible trial of that value."""
    return "—" if best is None else f"{best['best_value']:.4g} (#{best['trial']})"


def better_text(report: dict, row: dict) -> str:
    better = row["better"]
    if better in ("a", "b"):
        return report[better]["label"]
    return {"same": "same", None: ""}[better]


def render_compare(report: dict) -> list[str]:
    """The comparison as aligned text lines (names and values made printable)."""
    a, b = report["a"], report["b"]
    lines = [printable_line(f"compare {a['label']} ({a['trials']} trials) with {b['label']} ({b['trials']} trials): "
                            f"best {a['objective']['metric']} ({a['objective']['mode']}) per scientific value")]
    if not report["same_objective"]:
        lines.append(printable_line(f"objectives differ ({a['objective']['metric']} {a['objective']['mode']} vs "
                                    f"{b['objective']['metric']} {b['objective']['mode']}): shown side by side, "
                                    "not ranked"))
    table = [("value", a["label"], b["label"], "better")]
    table += [(f"{r['param']}={r['value']}" if r["param"] != ALL_TRIALS else ALL_TRIALS,
               cell_text(r["a"]), cell_text(r["b"]), better_text(report, r)) for r in report["rows"]]
    widths = [max(len(printable_line(row[i])) for row in table) for i in range(4)]
    lines += ["  ".join(printable_line(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in table]
    return lines
