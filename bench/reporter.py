"""Cost of one Reporter.log() call in a training loop, against an empty loop measured alike.

Each iteration is timed on its own with time.perf_counter_ns; the distribution
includes the calls that trigger a flush (every 512 points by default: encoding
and appending the buffered lines to a real file in a temp dir). Also the no-op
Reporter (no PLAYBOOK_METRICS_FILE in the environment), and TensorBoard's
SummaryWriter.add_scalar in the same loop when it is installed (one call, and the
four calls that log the same step's four metrics).

    .venv/bin/python bench/reporter.py [--calls N]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import print_result, ratio  # noqa: E402

from runner.report import METRICS_FILE_ENV, Reporter  # noqa: E402

GOAL_MEDIAN_US = 5.0
TB_CALLS = 20_000  # add_scalar costs ~50 us: 20k calls (x5 for the step of four) give stable quantiles in seconds


def _loop_log(rep: Reporter, n: int, flushed: bytearray | None = None) -> array:
    """n timed log() calls with the four usual metrics; per-call ns.

    With `flushed`, marks the calls after which the buffer was empty (they ran flush()).
    """
    out = array("q", bytes(8 * n))
    pc = time.perf_counter_ns
    log = rep.log
    loss, norm, lr, eps = 2.5, 1.25, 3e-4, 12345.6
    if flushed is None:
        for i in range(n):
            loss *= 0.99999
            t0 = pc()
            log(i, train_loss=loss, grad_norm=norm, lr=lr, examples_per_s=eps)
            t1 = pc()
            out[i] = t1 - t0
    else:
        for i in range(n):
            loss *= 0.99999
            t0 = pc()
            log(i, train_loss=loss, grad_norm=norm, lr=lr, examples_per_s=eps)
            t1 = pc()
            out[i] = t1 - t0
            flushed[i] = not rep._buffer
    return out


def _loop_empty(n: int) -> array:
    """The same loop with nothing between the two clock reads."""
    out = array("q", bytes(8 * n))
    pc = time.perf_counter_ns
    loss = 2.5
    for i in range(n):
        loss *= 0.99999
        t0 = pc()
        t1 = pc()
        out[i] = t1 - t0
    return out


def _stats(samples: array) -> dict:
    s = sorted(samples)
    n = len(s)

    def q(p: float) -> float:
        return s[min(n - 1, int(p * n))] / 1e3

    return {"median_us": q(0.5), "p90_us": q(0.9), "p99_us": q(0.99), "p999_us": q(0.999),
            "max_us": s[-1] / 1e3, "mean_us": sum(s) / n / 1e3}


def _flush_calls(samples: array, flushed: bytearray) -> dict:
    """The calls that ran flush() (512 points buffered, or 1 s since the last flush)."""
    flushes = sorted(samples[i] for i, f in enumerate(flushed) if f)
    others = sorted(samples[i] for i, f in enumerate(flushed) if not f)
    if not flushes:
        return {"count": 0}
    return {"count": len(flushes), "median_us": flushes[len(flushes) // 2] / 1e3,
            "max_us": flushes[-1] / 1e3, "share_of_total_time": sum(flushes) / sum(samples),
            "non_flush_median_us": others[len(others) // 2] / 1e3,
            "non_flush_max_us": others[-1] / 1e3}


def run(calls: int = 200_000) -> dict:
    os.environ.pop(METRICS_FILE_ENV, None)
    gc_was = gc.isenabled()
    gc.disable()  # GC pauses would land on random calls of either loop; measured apart below
    try:
        _loop_empty(10_000)  # warm up
        empty = _loop_empty(calls)
        noop = Reporter()
        assert not noop.enabled
        _loop_log(noop, 10_000)
        noop_samples = _loop_log(noop, calls)
        with tempfile.TemporaryDirectory(prefix="bench-reporter-") as tmp:
            path = os.path.join(tmp, "metrics.jsonl")
            rep = Reporter(path)
            flushed = bytearray(calls)
            real = _loop_log(rep, calls, flushed)
            rep.close()
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                lines = sum(1 for _ in f)
        if lines != calls:
            raise SystemExit(f"reporter bench: {lines} lines in the file, expected {calls}")
    finally:
        if gc_was:
            gc.enable()
    # The same loop with the collector on, as a training script runs: mean cost only.
    with tempfile.TemporaryDirectory(prefix="bench-reporter-gc-") as tmp:
        rep = Reporter(os.path.join(tmp, "metrics.jsonl"))
        t0 = time.perf_counter()
        _loop_log(rep, calls)
        gc_mean_us = (time.perf_counter() - t0) / calls * 1e6
        rep.close()

    e, r, z = _stats(empty), _stats(real), _stats(noop_samples)
    tb = _tensorboard(min(calls, TB_CALLS))
    return {
        "name": "reporter",
        "params": {"calls": calls, "flush_every": 512, "file_bytes": size},
        "empty_loop": e,
        "log": r,
        "noop_log": z,
        "flush_calls": _flush_calls(real, flushed),
        "log_minus_empty_us": {k.replace("_us", ""): r[k] - e[k] for k in ("median_us", "p99_us", "mean_us")},
        "noop_minus_empty_us": {k.replace("_us", ""): z[k] - e[k] for k in ("median_us", "p99_us", "mean_us")},
        "ratio_median_vs_empty": r["median_us"] / e["median_us"],
        "ratio_p99_vs_empty": r["p99_us"] / e["p99_us"],
        "noop_ratio_median_vs_empty": z["median_us"] / e["median_us"],
        "mean_us_with_gc_enabled": gc_mean_us,
        "tensorboard": tb,
        "goal": f"median log() <= {GOAL_MEDIAN_US} us",
        "goal_met": r["median_us"] <= GOAL_MEDIAN_US,
    }


def _tensorboard(calls: int) -> dict:
    """TensorBoard's add_scalar in the same kind of loop (gc off): one call, and one step's four."""
    import peers

    if peers.missing("tensorboard"):
        return {"missing": peers.NOT_INSTALLED}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        peers.tensorboard_call_loop(1_000)  # warm up
        one, four = peers.tensorboard_call_loop(calls)
    finally:
        if gc_was:
            gc.enable()
    return {"calls": calls, "add_scalar": _stats(one), "step_of_four": _stats(four)}


def summary_rows(res: dict) -> list[tuple[str, ...]]:
    """(figure, ours, baseline, ratio, goal, met?) rows for run_all's table."""
    e, r, z, f = res["empty_loop"], res["log"], res["noop_log"], res["flush_calls"]
    goal = f"<= {GOAL_MEDIAN_US:g} us"
    rows = [
        ("Reporter.log median (4 metrics)",
         f"{r['median_us']:.2f} us (net {res['log_minus_empty_us']['median']:.2f})",
         f"empty loop {e['median_us']:.2f} us", f"{res['ratio_median_vs_empty']:.1f}x", goal,
         "yes" if res["goal_met"] else "NO"),
        ("Reporter.log p99", f"{r['p99_us']:.2f} us", f"empty loop {e['p99_us']:.2f} us",
         f"{res['ratio_p99_vs_empty']:.1f}x", "", ""),
    ]
    tb = res.get("tensorboard", {})
    if "missing" in tb:
        rows.append(("Reporter.log median", "", f"TB add_scalar {tb['missing']}", "", "", ""))
    elif tb:
        for label, key in (("median", "median_us"), ("p99", "p99_us")):
            four, one = tb["step_of_four"][key], tb["add_scalar"][key]
            rows.append((f"Reporter.log {label} vs TB", f"{r[key]:.2f} us",
                         f"TB 4x add_scalar {four:.1f} us (1 call {one:.1f})", ratio(r[key] / four), "", ""))
    rows += [
        ("Reporter.log mean (incl. flushes)", f"{r['mean_us']:.2f} us", f"empty loop {e['mean_us']:.2f} us",
         f"{r['mean_us'] / e['mean_us']:.1f}x", "", ""),
        ("Reporter.log flush call (1 in 512)", f"{f['median_us']:.0f} us median, {f['max_us']:.0f} max",
         "", "", "", ""),
        ("no-op Reporter.log median", f"{z['median_us']:.2f} us", f"empty loop {e['median_us']:.2f} us",
         f"{res['noop_ratio_median_vs_empty']:.1f}x", "", ""),
    ]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200_000)
    args = ap.parse_args()
    res = run(args.calls)
    print_result(res)
    for row in summary_rows(res):
        print(" | ".join(row))


if __name__ == "__main__":
    main()
