"""Plain-text views of wizards for the CLI: progress lines, verdict tables, a plotext chart."""

from __future__ import annotations

import math
import re
from typing import Any

from runner.playbook.check import fmt
from store import studies
from store.studies import Study
from store.wizards import Wizard

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def progress_line(db, study: Study | None) -> str:
    if study is None:
        return ""
    c = studies.summarize(db, study).counts
    done = sum(c.get(k, 0) for k in ("completed", "failed", "stopped", "lost"))
    total = done + sum(c.get(k, 0) for k in ("queued", "starting", "running"))
    return (f"[{study.name}] {done}/{total} finished ({c.get('completed', 0)} completed, "
            f"{c.get('failed', 0)} failed), {c.get('running', 0) + c.get('starting', 0)} running")


def render(w: Wizard, results: dict[str, Any]) -> list[str]:
    lines = [f"wizard {w.name} ({w.kind}, from study {w.base_study}): {w.stage}"]
    body = {"probe-batch": _probe, "warmup": _warmup, "decide": _decide, "length": _length}[w.kind](results)
    lines += body
    if w.verdict:
        lines += ["", f"verdict: {w.verdict}"]
    return lines


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [header] + [[_cell(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = ["  ".join(c.rjust(wd) for c, wd in zip(r, widths, strict=True)) for r in cells]
    return [out[0], "  ".join("-" * wd for wd in widths), *out[1:]]


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return fmt(v)
    return "-" if v is None else str(v)


def chart(x: list[float], y: list[float], *, title: str, xlabel: str, log_x: bool = False,
          width: int = 72, height: int = 14) -> list[str]:
    """A plotext line chart as plain text lines (no colors: it may go to a log or a pipe)."""
    pts = [(a, b) for a, b in zip(x, y, strict=True)
           if b is not None and math.isfinite(b) and (a > 0 or not log_x)]
    if len(pts) < 2:
        return []
    import plotext

    term = type(plotext.terminal)()  # a private figure: plotext's global one is shared state
    term.limit(False, False)
    fig = term._master
    fig.theme("clear")
    fig.plot_size(width, height)
    xs, ys = (list(v) for v in zip(*pts, strict=True))
    curve = fig.signal(xs, ys, marker=plotext.marker("dot"))
    curve.lines()
    fig.draw(curve)
    if log_x:
        fig.ruler("x").scale("log")
    text = _ANSI.sub("", fig.build().string()).rstrip("\n")
    return ["", f"{title} ({xlabel})", *text.splitlines()]


def _probe(results: dict) -> list[str]:
    r = results.get("probe")
    if not r:
        return ["(no result yet)"]
    rows = [[row["batch_size"], row["outcome"], row["examples_per_s"], row["spread"],
             None if row["time_per_step_s"] is None else row["time_per_step_s"] * 1000,
             row["peak_memory_mb"], row["scaling_efficiency"]] for row in r["rows"]]
    rows += [[n["batch_size"], "not run", None, None, None, None, None] for n in r.get("not_run", [])]
    out = table(["batch", "outcome", "examples/s", "spread", "ms/step", "peak MB", "scaling"], rows)
    ok = [row for row in r["rows"] if row["examples_per_s"] is not None]
    out += chart([row["batch_size"] for row in ok], [row["examples_per_s"] for row in ok],
                 title="throughput vs batch size", xlabel="batch size (log)", log_x=True)
    out += ["", r["summary"]]
    if r.get("training_time"):
        t = r["training_time"]
        startup = f", {_hours(t['startup_s'])} of it start-up" if t.get("startup_s") else ""
        out.append(f"at batch {r['recommended']}: {t['steps']} steps take about "
                   f"{_hours(t['seconds'])}{startup}")
    elif r.get("recommended"):
        out.append("training time: pass --train-steps N to estimate it at this batch size")
    out += [f"- {a}" for a in r.get("advice", [])]
    return out


def _hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def _warmup(results: dict) -> list[str]:
    out: list[str] = []
    sweep = results.get("lr-sweep")
    if sweep:
        out += ["", "stage 1: learning-rate sweep (warmup 0)"]
        out += table(["lr", "final loss", "stability", "why"],
                     [[row["learning_rate"], row["final_loss"], row["stability"]["verdict"],
                       row["stability"]["reason"]] for row in sweep["rows"]])
        out += chart([row["learning_rate"] for row in sweep["rows"]],
                     [row["final_loss"] for row in sweep["rows"]],
                     title="final training loss vs learning rate", xlabel="learning rate (log)", log_x=True)
        out += [sweep["summary"]]
    early = results.get("early-check")
    if early and early.get("stability"):
        out += ["", f"early-instability check at lr {fmt(early['learning_rate'])}: "
                    f"{early['stability']['verdict']} ({early['stability']['reason']})"]
    for stage in ("warmup-10x", "warmup-100x"):
        r = results.get(stage)
        if not r:
            continue
        out += ["", f"{stage}: warmup sweep at base lr {fmt(r['base_learning_rate'])}"]
        out += table(["warmup_steps", "stability", "why"],
                     [[row["warmup_steps"], row["stability"]["verdict"], row["stability"]["reason"]]
                      for row in r["rows"]])
        out += [r["summary"], *[f"- {a}" for a in r.get("advice", [])]]
        if r.get("clipping"):
            out.append(f"clipping: {r['clipping']['summary']}")
    return out


def _decide(results: dict) -> list[str]:
    r = results.get("seeds")
    if not r:
        return ["(no result yet)"]
    if "baseline" not in r:
        return [r.get("reasoning", "")]
    rows = [[side, r[side]["n"], r[side]["mean"], r[side]["std"], ", ".join(fmt(v) for v in r[side]["values"])]
            for side in ("baseline", "candidate")]
    out = table(["side", "seeds", "mean", "std", "values"], rows)
    out += [f"improvement {fmt(r['improvement'])} ({int(r['confidence'] * 100)}% bootstrap CI "
            f"{fmt(r['ci_low'])} .. {fmt(r['ci_high'])}), Welch p = {fmt(r['welch_p'])}, "
            f"{fmt(r['effect_sd'])} seed-sd (complexity {r['complexity']} asks for {fmt(r['required_effect_sd'])})"]
    if r.get("seeds_needed"):
        out.append(f"seeds per side to resolve this difference: {r['seeds_needed']}")
    out += [f"- {n}" for n in r.get("failed_seeds", [])]
    out += ["", r["reasoning"]]
    if r.get("adopted"):
        out.append(f"recorded as the new baseline of {r['adopted']['scope']}")
    return out


def _length(results: dict) -> list[str]:
    out: list[str] = []
    sweep = results.get("sweep")
    if sweep:
        out += ["", f"constant-lr sweep ({sweep['horizon']} steps): training-loss target {fmt(sweep['target'])}"
                    f"{' (proposed: ' + sweep['target_why'] + ')' if sweep.get('target_proposed') else ''}"]
        out += table(["lr", "final loss", "steps to target"],
                     [[row["learning_rate"], row["final_loss"], row["steps_to_target"]
                       if row["steps_to_target"] is not None else
                       (f"left it after {row['left_target_after']}" if row.get("left_target_after") else "never")]
                      for row in sweep["rows"]])
        out += [sweep["summary"], *[f"- {a}" for a in sweep.get("advice", [])]]
    r1, r2 = results.get("round-1"), results.get("round-2")
    if r1:
        out += ["", f"round 1: {len(r1['rows'])} configurations of {r1['steps']} steps, {r1['schedule']} schedule "
                    f"(decay_steps {r1['decay_steps']}); the best {len(r1['chosen'])} go on"]
        out += table(["configuration", "objective", "outcome"],
                     [[row["config"], row["objective"], row["outcome"]] for row in r1["rows"]])
    if r2:
        short = r2["round1_objective"]
        out += ["", f"round 2: {r2['steps']} steps; {r2['stretch']['why']}"]
        out += table(["configuration", "round 1", "round 2"],
                     [[row["config"], short.get(row["config"]), row["objective"]] for row in r2["rows"]])
        t = r2["transfer"]
        out += ["", f"what transferred from short to long runs: {t['summary']}"]
        out += [f"- {p['summary']}" for p in r2.get("params", [])]
        out += ["the playbook's order, most likely to transfer first: " + "; ".join(t["transfer_order"])]
    return out
