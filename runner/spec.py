r"""Study files (TOML) -> a validated StudySpec, or every problem found, each with its field.

A study file looks like:

    [study]
    name = "digits-lr"
    goal = "Does width help, once the learning rate is tuned?"
    command = "python train.py --lr {learning_rate} --width {width} --steps {max_train_steps}"
    max_train_steps = 300
    objective = { metric = "val_error", mode = "min" }
    trials = 8            # quasi-random nuisance samples per scientific value
    seed = 0
    concurrency = 2
    gpus_per_trial = 0    # 0 = CPU slots
    timeout = 600         # seconds per trial

    [params.learning_rate]
    role = "nuisance"
    low = 1e-4
    high = 1e-1
    scale = "log"

    [params.width]
    role = "scientific"
    values = [32, 64]

    [[trial]]             # manual trials, run after the searched ones
    learning_rate = 0.01
    width = 64

Metrics a script only prints are captured by `metrics` in [study]: a regex string whose
`step` group is the step, or a table with a step rule (runner.printed has the rules):

    [[study.metrics]]     # | epoch   1 |    20/  167 batches | ... | loss  8.80 | ...
    pattern = '\| epoch +(?P<epoch>\d+) \| +(?P<batch>\d+)/ *(?P<batches>\d+) batches .*\| loss +(?P<train_loss>\S+)'
    step = "epoch_batch"  # (epoch - first_epoch) * batches + batch; also "group", "epoch", "count"
    first_epoch = 1       # optional: what the script prints for its first epoch
    batches = 167         # optional: the per-epoch total, when no `batches` group prints it
    counter = "NAME"      # step = "count" only: patterns naming one counter share it

`step_unit = "epoch"` in [study] says max_train_steps counts epochs while the rules count
batches: progress and the training-length check then use max_train_steps x the batches per
epoch each trial printed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
import string
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runner import limits

ROLES = ("scientific", "nuisance", "fixed")
BUILTINS = ("max_train_steps", "trial_dir", "trial_number", "study_name")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

STUDY_FIELDS = {
    "name", "goal", "notes", "command", "workdir", "max_train_steps", "objective", "trials",
    "seed", "concurrency", "gpus_per_trial", "timeout", "metrics", "requeue_lost",
    "stop_on_divergence", "halt_on_failure", "step_unit", "search", "keep_checkpoints", "refines",
    "keep_metrics_jsonl",
    "executor", "ray_address", "cpus_per_trial",
}
EXECUTORS = ("local", "ray")  # where trials run (runner.executors); `run --executor` overrides it
SEARCH_KINDS = ("quasi-random", "bayes")
BAYES_SAMPLERS = ("tpe", "gp")
SEARCH_FIELDS = {"kind", "sampler", "startup_trials"}
DEFAULT_STARTUP_TRIALS = 10
PARAM_FIELDS = {
    "role", "type", "low", "high", "scale", "values", "value", "points", "when", "in_command",
}


class SpecError(Exception):
    """A study file is invalid; `problems` lists each one as 'field: what was expected'."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: invalid study file ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    role: str
    kind: str  # "float" | "int" | "choice" | "fixed"
    low: float | None = None
    high: float | None = None
    scale: str = "linear"  # "linear" | "log"
    values: tuple = ()
    value: Any = None
    points: int | None = None  # grid size for a scientific range
    when: tuple[tuple[str, tuple], ...] = ()  # (parent, allowed values) pairs, all must hold
    in_command: bool = True

    @property
    def is_log(self) -> bool:
        return self.scale == "log"

    def applies(self, assigned: dict[str, Any]) -> bool:
        """Whether a conditional parameter exists given its parents' values."""
        return all(parent in assigned and assigned[parent] in allowed for parent, allowed in self.when)


STEP_RULES = ("group", "epoch_batch", "epoch", "count")
# Groups a step rule reads; every other named group is a metric.
_STEP_GROUPS = {"group": {"step"}, "epoch_batch": {"epoch", "batch", "batches"},
                "epoch": {"epoch", "batches"}, "count": set()}
METRIC_TABLE_FIELDS = {"pattern", "step", "counter", "first_epoch", "batches"}


@dataclass(frozen=True)
class MetricPattern:
    """A regex matched on stdout lines: one named group per metric, and a rule for the step.

    step_rule (see runner.printed): "group" (the `step` group), "epoch_batch" (groups epoch,
    batch and batches: a counter that restarts each epoch), "epoch" (an end-of-epoch line,
    at the step where that epoch ends) or "count" (the n-th match, shared by patterns that
    name the same `counter`).
    """

    regex: re.Pattern
    metrics: tuple[str, ...]
    step_rule: str = "group"
    written: str = ""  # the pattern as the study file wrote it
    counter: str | None = None
    first_epoch: int = 1  # what the script prints for its first epoch
    batches: int | None = None  # batches per epoch, when no group prints it
    epochs_in_batches: bool = True  # "epoch" rule: False when no rule of the study counts batches

    @property
    def source(self) -> str:
        return self.written or self.regex.pattern


@dataclass(frozen=True)
class SearchSpec:
    """How a study picks its nuisance values: quasi-random (exploration) or Bayesian optimization
    (exploitation, runner.bayes). startup_trials: the quasi-random points each scientific value
    runs before the model proposes the rest (0 for quasi-random)."""

    kind: str = "quasi-random"
    sampler: str = "tpe"  # "tpe" | "gp" (bayes only)
    startup_trials: int = 0

    @property
    def is_bayes(self) -> bool:
        return self.kind == "bayes"


@dataclass(frozen=True)
class StudySpec:
    path: Path
    name: str
    goal: str
    notes: str
    command: str
    argv_template: tuple[str, ...]
    workdir: Path
    max_train_steps: int
    objective_metric: str
    objective_mode: str
    trials: int
    seed: int
    concurrency: int
    gpus_per_trial: int
    timeout_s: float | None
    metric_patterns: tuple[MetricPattern, ...]
    params: tuple[ParamSpec, ...]
    manual: tuple[dict, ...]
    requeue_lost: bool
    stop_on_divergence: bool
    config_text: str
    config_hash: str = field(repr=False, default="")
    halt_on_failure: bool = False  # a failed trial stops the queued ones (a probe of growing sizes)
    step_unit: str = "step"  # what max_train_steps counts: "step" | "epoch" (see _step_unit)
    search: SearchSpec = SearchSpec()
    keep_checkpoints: int | None = None  # the N best checkpoint files kept per trial; None keeps all
    refines: str = ""  # the study this one refines (`playbook-runner refine` writes it)
    keep_metrics_jsonl: bool = True  # False: an ended trial's metrics.jsonl goes once its points are stored
    executor: str = "local"  # where `run` runs its trials: "local" | "ray" (runner.executors)
    ray_address: str = ""  # the Ray cluster for executor = "ray" ("": $RAY_ADDRESS, else auto)
    cpus_per_trial: float = 1  # CPU slots one CPU trial takes (on Ray: the actor's num_cpus)

    def param(self, name: str) -> ParamSpec:
        return next(p for p in self.params if p.name == name)

    def by_role(self, role: str) -> list[ParamSpec]:
        return [p for p in self.params if p.role == role]

    @property
    def roles(self) -> dict[str, str]:
        return {p.name: p.role for p in self.params}


def load(path: str | Path) -> StudySpec:
    """Read and validate a study file; raises SpecError naming the file and every bad field."""
    path = Path(path)
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(path, [f"not valid TOML: {exc}"]) from exc
    return parse(data, path=path, text=text)


def _read_text(path: Path) -> str:
    """The file as text, or SpecError: unreadable, too big for a study file, or not UTF-8."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limits.MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(path, [f"cannot read the file: {exc.strerror or exc}"]) from exc
    if len(raw) > limits.MAX_FILE_BYTES:
        raise SpecError(path, [f"larger than {limits.MAX_FILE_BYTES:,} bytes (MAX_FILE_BYTES); "
                               "expected a TOML study file"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(path, [f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                               "expected a TOML study file"]) from None


def parse(data: dict, *, path: Path, text: str = "") -> StudySpec:
    problems: list[str] = []
    for key in data:
        if key not in ("study", "params", "trial"):
            problems.append(f"[{key}]: unknown table; expected [study], [params.NAME] or [[trial]]")
    study = data.get("study")
    if not isinstance(study, dict):
        raise SpecError(path, [*problems, "[study]: missing; every study file needs a [study] table"])
    _unknown(study, STUDY_FIELDS, "study", problems)

    check = _Checker(study, "study", problems)
    name = check.string("name", required=True)
    if name and not _NAME_RE.match(name):
        problems.append(f"study.name: {name!r} must be letters, digits, '.', '_' or '-' "
                        "(it names a folder)")
    if name and (too_long := limits.name_problem(name)):
        problems.append(too_long)
    problems.extend(_oversized_values(data))
    command = check.string("command", required=True)
    max_steps = check.integer("max_train_steps", required=True, minimum=1)
    objective_metric, objective_mode = _objective(study.get("objective"), problems)
    params = _params(data.get("params", {}), problems)
    argv_template = _command(command, params, problems) if command else ()
    workdir = (path.parent / check.string("workdir", default=".")).resolve()
    if not workdir.is_dir():
        problems.append(f"study.workdir: {workdir} is not a directory")
    spec = StudySpec(
        path=path.resolve(),
        name=name or "",
        goal=check.string("goal", default=""),
        notes=check.string("notes", default=""),
        command=command or "",
        argv_template=argv_template,
        workdir=workdir,
        max_train_steps=max_steps or 0,
        objective_metric=objective_metric,
        objective_mode=objective_mode,
        trials=check.integer("trials", default=1, minimum=0, maximum=limits.MAX_TRIALS),
        seed=check.integer("seed", default=0, minimum=0),  # numpy's generators take no negative seed
        concurrency=check.integer("concurrency", default=1, minimum=1),
        gpus_per_trial=check.integer("gpus_per_trial", default=0, minimum=0),
        timeout_s=check.number("timeout", default=None, positive=True),
        metric_patterns=_metric_patterns(study.get("metrics", []), problems),
        params=tuple(params),
        manual=tuple(_manual(data.get("trial", []), params, problems)),
        requeue_lost=check.boolean("requeue_lost", default=False),
        stop_on_divergence=check.boolean("stop_on_divergence", default=True),
        halt_on_failure=check.boolean("halt_on_failure", default=False),
        step_unit=_step_unit(study.get("step_unit", "step"), problems),
        search=_search(study.get("search", "quasi-random"), study.get("trials", 1), problems),
        keep_checkpoints=check.integer("keep_checkpoints", default=None, minimum=1),
        refines=check.string("refines", default=""),
        keep_metrics_jsonl=check.boolean("keep_metrics_jsonl", default=True),
        executor=_executor(check, problems),
        ray_address=check.string("ray_address", default=""),
        cpus_per_trial=check.number("cpus_per_trial", default=1, positive=True),
        config_text=text,
        config_hash=hashlib.sha256(
            json.dumps(data, sort_keys=True, default=str).encode()
        ).hexdigest(),
    )
    _check_step_unit(spec, problems)
    if not problems:  # the bounds first: the check below formats every placeholder
        problems.extend(_plan_problems(spec))
    if problems:
        raise SpecError(path, problems)
    return spec


# -- bounds and a dry run: what planning would fail on, found before it runs ---------------


def _oversized_values(data: dict) -> list[str]:
    """Strings in parameters and manual trials longer than one argv element should be."""
    out: list[str] = []
    params, manual = data.get("params"), data.get("trial")
    if isinstance(params, dict):
        out += limits.oversized_texts(params, "params")
    if isinstance(manual, list):
        for i, entry in enumerate(manual):
            out += limits.oversized_texts(entry, f"trial[{i}]")
    return out


def _plan_problems(spec: StudySpec) -> list[str]:
    """The total number of trials against its bound, then each command token filled with
    stand-ins of every parameter's values, as planning will fill it."""
    params = list(spec.params)
    if too_many := limits.planned_problem(spec.trials, params, len(spec.manual)):
        return [too_many]
    samples = {p.name: limits.sample_values(p) for p in params}
    samples |= {"max_train_steps": [spec.max_train_steps], "trial_dir": [str(spec.workdir)],
                "trial_number": [1], "study_name": [spec.name]}
    for values in spec.manual:
        for name, value in values.items():
            samples[name].append(value)
    return [problem for token in spec.argv_template for problem in limits.fill_problems(token, samples)]


def _executor(check: _Checker, problems: list[str]) -> str:
    executor = check.string("executor", default="local")
    if executor not in EXECUTORS:
        problems.append(f"study.executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
        return "local"
    if "ray_address" in check.table and executor != "ray":
        problems.append('study.ray_address: only used with executor = "ray"; set executor = "ray" or remove it')
    return executor


def _unknown(table: dict, allowed: set[str], where: str, problems: list[str]) -> None:
    for key in table:
        if key not in allowed:
            problems.append(f"{where}.{key}: unknown field; expected one of {', '.join(sorted(allowed))}")


class _Checker:
    """Typed reads of a TOML table that record a problem instead of raising."""

    def __init__(self, table: dict, where: str, problems: list[str]):
        self.table, self.where, self.problems = table, where, problems

    def _get(self, key, required, default):
        if key not in self.table:
            if required:
                self.problems.append(f"{self.where}.{key}: missing; this field is required")
            return None, False
        return self.table[key], True

    def string(self, key, *, required=False, default=None):
        value, present = self._get(key, required, default)
        if not present:
            return default
        if not isinstance(value, str) or (required and not value.strip()):
            self.problems.append(f"{self.where}.{key}: expected a non-empty string, got {value!r}")
            return default
        return value

    def integer(self, key, *, required=False, default=None, minimum=None, maximum=limits.MAX_INTEGER):
        value, present = self._get(key, required, default)
        if not present:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            self.problems.append(f"{self.where}.{key}: expected an integer, got {value!r}")
            return default
        if minimum is not None and value < minimum:
            self.problems.append(f"{self.where}.{key}: expected an integer >= {minimum}, got {value}")
            return default
        if value > maximum:
            self.problems.append(f"{self.where}.{key}: {value:,} is too large; expected at most {maximum:,}")
            return default
        return value

    def number(self, key, *, required=False, default=None, positive=False):
        value, present = self._get(key, required, default)
        if not present:
            return default
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            self.problems.append(f"{self.where}.{key}: expected a number, got {value!r}")
            return default
        if positive and value <= 0:
            self.problems.append(f"{self.where}.{key}: expected a number > 0, got {value}")
            return default
        return value

    def boolean(self, key, *, default=False):
        value, present = self._get(key, False, default)
        if not present:
            return default
        if not isinstance(value, bool):
            self.problems.append(f"{self.where}.{key}: expected true or false, got {value!r}")
            return default
        return value


def _objective(obj, problems: list[str]) -> tuple[str, str]:
    if obj is None:
        problems.append('study.objective: missing; expected { metric = "NAME", mode = "min" | "max" }')
        return "", "min"
    if isinstance(obj, str):
        obj = {"metric": obj}
    if not isinstance(obj, dict):
        problems.append(f'study.objective: expected {{ metric = "NAME", mode = "min" | "max" }}, got {obj!r}')
        return "", "min"
    metric, mode = obj.get("metric"), obj.get("mode", "min")
    if not isinstance(metric, str) or not metric:
        problems.append(f"study.objective.metric: expected a metric name, got {metric!r}")
        metric = ""
    if mode not in ("min", "max"):
        problems.append(f"study.objective.mode: expected 'min' or 'max', got {mode!r}")
        mode = "min"
    for key in obj:
        if key not in ("metric", "mode"):
            problems.append(f"study.objective.{key}: unknown field; expected metric, mode")
    return metric, mode


def _params(table, problems: list[str]) -> list[ParamSpec]:
    if not isinstance(table, dict):
        problems.append("[params]: expected tables [params.NAME]")
        return []
    params = []
    for name, body in table.items():
        where = f"params.{name}"
        if not _PARAM_NAME_RE.match(name) or name in BUILTINS:
            problems.append(f"{where}: the name must be an identifier and not one of {', '.join(BUILTINS)}")
            continue
        if not isinstance(body, dict):
            problems.append(f"{where}: expected a table with role = ..., got {body!r}")
            continue
        param = _param(name, body, where, problems)
        if param:
            params.append(param)
    _check_conditions(params, problems)
    return params


def _param(name: str, body: dict, where: str, problems: list[str]) -> ParamSpec | None:
    _unknown(body, PARAM_FIELDS, where, problems)
    before = len(problems)
    role = body.get("role")
    if role not in ROLES:
        problems.append(f"{where}.role: expected one of {', '.join(ROLES)}, got {role!r}")
    check = _Checker(body, where, problems)
    in_command = check.boolean("in_command", default=True)
    when = _when(body.get("when"), where, problems)
    if role == "fixed" or "value" in body:
        if "value" not in body:
            problems.append(f"{where}.value: missing; a fixed parameter needs value = ...")
        elif role != "fixed":
            problems.append(f"{where}.value: only fixed parameters have a single value (role is {role!r})")
        for key in ("low", "high", "values", "scale", "points"):
            if key in body:
                problems.append(f"{where}.{key}: a fixed parameter takes only value = ...")
        return None if len(problems) > before else ParamSpec(
            name, "fixed", "fixed", value=body.get("value"), when=when, in_command=in_command)
    scale = body.get("scale", "linear")
    if scale not in ("linear", "log"):
        problems.append(f"{where}.scale: expected 'linear' or 'log', got {scale!r}")
    if "values" in body:
        values = body["values"]
        if not isinstance(values, list) or not values:
            problems.append(f"{where}.values: expected a non-empty list, got {values!r}")
        elif too_many := limits.too_many(f"{where}.values", len(values), limits.MAX_VALUES, "MAX_VALUES"):
            problems.append(too_many)
        elif len(set(map(repr, values))) != len(values):
            problems.append(f"{where}.values: contains duplicates: {values!r}")
        for key in ("low", "high", "points"):
            if key in body:
                problems.append(f"{where}.{key}: give either values = [...] or low/high, not both")
        return None if len(problems) > before else ParamSpec(
            name, role, "choice", values=tuple(values), scale=scale, when=when, in_command=in_command)
    kind = body.get("type", "float")
    if kind not in ("float", "int"):
        problems.append(f"{where}.type: expected 'float' or 'int' for a range, got {kind!r}")
    low, high = check.number("low", required=True), check.number("high", required=True)
    if low is not None and high is not None:
        if low > high:
            problems.append(f"{where}: low ({low}) > high ({high}); expected low <= high")
        if scale == "log" and low <= 0:
            problems.append(f"{where}.low: a log-scale range needs bounds > 0, got low = {low}")
        if kind == "int" and (int(low) != low or int(high) != high):
            problems.append(f"{where}: an int range needs integer bounds, got {low}..{high}")
    points = None
    if role == "scientific":
        points = check.integer("points", required=True, minimum=1, maximum=limits.MAX_POINTS)
    elif "points" in body:
        problems.append(f"{where}.points: only scientific ranges are gridded; "
                        "nuisance ranges are sampled quasi-randomly")
    if len(problems) > before:
        return None
    return ParamSpec(name, role, kind, low=low, high=high, scale=scale, points=points,
                     when=when, in_command=in_command)


def _when(when, where: str, problems: list[str]) -> tuple:
    if when is None:
        return ()
    if not isinstance(when, dict) or not when:
        problems.append(f'{where}.when: expected {{ parent = value }} or {{ parent = [values] }}, got {when!r}')
        return ()
    return tuple(
        (parent, tuple(v) if isinstance(v, list) else (v,)) for parent, v in when.items()
    )


def _check_conditions(params: list[ParamSpec], problems: list[str]) -> None:
    by_name = {p.name: p for p in params}
    for p in params:
        for parent, allowed in p.when:
            where = f"params.{p.name}.when.{parent}"
            parent_spec = by_name.get(parent)
            if parent_spec is None:
                problems.append(f"{where}: no parameter named {parent!r}")
            elif parent_spec.kind == "fixed":
                continue
            elif parent_spec.kind != "choice":
                problems.append(f"{where}: the parent must have values = [...] (a choice)")
            else:
                for v in allowed:
                    if v not in parent_spec.values:
                        problems.append(f"{where}: {v!r} is not one of the parent's values "
                                        f"{list(parent_spec.values)}")
    # A parent must come before its children so assignment can run in order.
    order = {p.name: i for i, p in enumerate(params)}
    for p in params:
        for parent, _ in p.when:
            if parent in order and order[parent] > order[p.name]:
                problems.append(f"params.{p.name}.when: define [params.{parent}] before "
                                f"[params.{p.name}], which depends on it")


def _command(command: str, params: list[ParamSpec], problems: list[str]) -> tuple[str, ...]:
    try:
        tokens = shlex.split(command)
    except ValueError as exc:
        problems.append(f"study.command: cannot split into arguments: {exc}")
        return ()
    if not tokens:
        problems.append("study.command: empty")
        return ()
    known = {p.name for p in params} | set(BUILTINS)
    used: set[str] = set()
    for token in tokens:
        try:
            fields_ = [f for _, f, _, _ in string.Formatter().parse(token) if f is not None]
        except ValueError as exc:
            problems.append(f"study.command: bad placeholder in {token!r}: {exc}")
            continue
        problems.extend(limits.format_spec_problems(token))
        for f in fields_:
            if f not in known:
                problems.append(f"study.command: placeholder {{{f}}} has no parameter; "
                                f"expected one of {', '.join(sorted(known))}")
            used.add(f)
    for p in params:
        if p.in_command and p.name not in used:
            problems.append(f"params.{p.name}: never used in study.command; add {{{p.name}}} to "
                            "the command, or set in_command = false if the script reads PLAYBOOK_PARAMS")
    # `python` means the interpreter the runner runs under (the project's venv).
    if tokens[0] in ("python", "python3"):
        tokens[0] = sys.executable
    return tuple(tokens)


def _metric_patterns(patterns, problems: list[str]) -> tuple[MetricPattern, ...]:
    """study.metrics: regex strings (the step is the `step` group), or tables with a step rule:
    { pattern = '...', step = "group" | "epoch_batch" | "epoch" | "count", counter = "NAME",
    first_epoch = 1, batches = N }."""
    if not isinstance(patterns, list):
        problems.append(f"study.metrics: expected a list of regexes or tables, got {patterns!r}")
        return ()
    out = []
    for i, entry in enumerate(patterns):
        where = f"study.metrics[{i}]"
        if isinstance(entry, dict):
            pattern = _metric_table(entry, where, problems)
        elif isinstance(entry, str):
            pattern = _metric_regex(entry, "group", where, problems)
        else:
            problems.append(f"{where}: expected a regex string or a table {{ pattern = '...', step = ... }}, "
                            f"got {entry!r}")
            continue
        if pattern is not None:
            out.append(pattern)
    counts_batches = any(p.step_rule == "epoch_batch" or p.batches is not None for p in out)
    return tuple(p if p.step_rule != "epoch" or counts_batches or "batches" in p.regex.groupindex
                 else replace(p, epochs_in_batches=False) for p in out)


def _metric_table(entry: dict, where: str, problems: list[str]) -> MetricPattern | None:
    _unknown(entry, METRIC_TABLE_FIELDS, where, problems)
    before = len(problems)
    check = _Checker(entry, where, problems)
    text = check.string("pattern", required=True)
    rule = entry.get("step", "group")
    if rule not in STEP_RULES:
        problems.append(f"{where}.step: expected one of {', '.join(STEP_RULES)}, got {rule!r}")
    counter = check.string("counter")
    if counter is not None and rule != "count":
        problems.append(f"{where}.counter: only step = \"count\" patterns share a counter")
    first_epoch = check.integer("first_epoch", default=1, minimum=0)
    batches = check.integer("batches", minimum=1)
    if rule not in ("epoch_batch", "epoch"):
        for key in ("first_epoch", "batches"):
            if key in entry:
                problems.append(f"{where}.{key}: only step = \"epoch_batch\" or \"epoch\" patterns use it")
    if text is None or len(problems) > before:
        return None
    pattern = _metric_regex(text, rule, where, problems, batches_fixed=batches is not None)
    if pattern is None:
        return None
    return replace(pattern, counter=counter, first_epoch=first_epoch, batches=batches)


def _metric_regex(text: str, rule: str, where: str, problems: list[str], *,
                  batches_fixed: bool = False) -> MetricPattern | None:
    """One pattern compiled and checked for the groups its step rule needs."""
    try:
        regex = re.compile(text)
    except re.error as exc:
        # As written in the file (a repr would double every backslash).
        problems.append(f"{where}: bad regex '{text}': {exc}")
        return None
    groups = set(regex.groupindex)
    needed = {"group": {"step"}, "epoch_batch": {"epoch", "batch"}, "epoch": {"epoch"}, "count": set()}[rule]
    if rule == "epoch_batch" and not batches_fixed:
        needed = needed | {"batches"}
    missing = sorted(needed - groups)
    if missing:
        named = " and ".join(f"(?P<{g}>...)" for g in missing)
        hint = " for the step" if rule == "group" else f" for step = \"{rule}\""
        if "batches" in missing:
            hint += " (or give batches = N, the batches per epoch)"
        problems.append(f"{where}: the regex needs a named group {named}{hint}")
    names = tuple(sorted(groups - _STEP_GROUPS[rule]))
    if not names:
        problems.append(f"{where}: the regex needs a named group per metric, e.g. (?P<loss>\\S+)")
    if missing or not names:
        return None
    return MetricPattern(regex, names, step_rule=rule, written=text)


def _search(value, trials, problems: list[str]) -> SearchSpec:
    """study.search: "quasi-random" (the default), "bayes", or a table
    { kind = "bayes", sampler = "tpe" | "gp", startup_trials = N }."""
    table = value if isinstance(value, dict) else {"kind": value}
    _unknown(table, SEARCH_FIELDS, "study.search", problems)
    kind = table.get("kind", "quasi-random")
    if kind not in SEARCH_KINDS:
        problems.append(f"study.search: expected one of {', '.join(repr(k) for k in SEARCH_KINDS)} "
                        f"or a table {{ kind = \"bayes\", sampler = \"tpe\" | \"gp\", startup_trials = N }}, "
                        f"got {kind!r}")
        return SearchSpec()
    if kind != "bayes":
        for key in ("sampler", "startup_trials"):
            if key in table:
                problems.append(f"study.search.{key}: only kind = \"bayes\" uses it")
        return SearchSpec()
    sampler = table.get("sampler", "tpe")
    if sampler not in BAYES_SAMPLERS:
        problems.append(f"study.search.sampler: expected 'tpe' or 'gp', got {sampler!r}")
        sampler = "tpe"
    budget = trials if isinstance(trials, int) and not isinstance(trials, bool) and trials > 0 else 1
    check = _Checker(table, "study.search", problems)
    # Default: half the budget, at most 10 (Optuna's TPE default), so a small budget still leaves the
    # model trials to propose.
    startup = check.integer("startup_trials", default=min(DEFAULT_STARTUP_TRIALS, max(1, budget // 2)), minimum=1)
    if startup > budget:
        problems.append(f"study.search.startup_trials: {startup} is more than study.trials ({budget}); "
                        "expected at most the trials each scientific value runs")
    if not _optuna_installed():
        problems.append("study.search: \"bayes\" needs optuna; install it with pip install 'playbook-tui[bayes]'")
    return SearchSpec("bayes", sampler, min(startup, budget))


def _optuna_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("optuna") is not None


def _step_unit(unit, problems: list[str]) -> str:
    """What max_train_steps counts. "epoch": the script is given epochs (--epochs {max_train_steps})
    while the step rules count batches, so a trial's progress is out of max_train_steps times
    the batches per epoch it prints (runner.printed.CaptureState.progress_total)."""
    if unit not in ("step", "epoch"):
        problems.append(f"study.step_unit: expected 'step' or 'epoch', got {unit!r}")
        return "step"
    return unit


def _check_step_unit(spec: StudySpec, problems: list[str]) -> None:
    """Epochs as the unit need steps that know the epochs: an "epoch_batch" or "epoch" rule."""
    if spec.step_unit == "epoch" and not any(p.step_rule in ("epoch_batch", "epoch") for p in spec.metric_patterns):
        problems.append('study.step_unit: "epoch" needs a study.metrics pattern with step = "epoch_batch" or '
                        '"epoch" (without one the steps do not count epochs; leave step_unit out)')


def epoch_steps(spec: StudySpec) -> int | None:
    """max_train_steps when it counts epochs (step_unit = "epoch"), for ingest to scale; else None."""
    return spec.max_train_steps if spec.step_unit == "epoch" else None


def capture_warnings(spec: StudySpec) -> list[str]:
    """What registration warns about (the study is valid, but its trials will lack something).

    Printed-line capture with no pattern for the objective: unless the script reports it
    through runner.report.Reporter, every trial ends failed with reason no_objective.
    """
    patterns = spec.metric_patterns
    if not patterns or any(spec.objective_metric in p.metrics for p in patterns):
        return []
    groups = sorted({m for p in patterns for m in p.metrics})
    return [f"{spec.path}: study.objective: no pattern in study.metrics has a group named "
            f"(?P<{spec.objective_metric}>...) (they capture {', '.join(groups)}); unless the script "
            f"reports {spec.objective_metric} through runner.report.Reporter, its trials will end "
            "failed (no_objective)"]


def _manual(entries, params: list[ParamSpec], problems: list[str]) -> list[dict]:
    if not isinstance(entries, list):
        problems.append("[[trial]]: expected an array of tables [[trial]]")
        return []
    by_name = {p.name: p for p in params}
    out = []
    for i, entry in enumerate(entries):
        where = f"trial[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a table [[trial]] of parameter values, got {entry!r}")
            continue
        for key in entry:
            if key not in by_name:
                problems.append(f"{where}.{key}: no parameter of that name")
            elif by_name[key].role == "fixed":
                problems.append(f"{where}.{key}: fixed parameters cannot be set per trial")
        assigned: dict[str, Any] = {}
        for p in params:
            if not p.applies(assigned) and p.when:
                continue
            if p.role == "fixed":
                assigned[p.name] = p.value
            elif p.name not in entry:
                problems.append(f"{where}.{p.name}: missing; a manual trial sets every "
                                "scientific and nuisance parameter that applies")
            else:
                value = entry[p.name]
                if p.kind == "choice" and value not in p.values:
                    problems.append(f"{where}.{p.name}: {value!r} is not one of {list(p.values)}")
                elif p.kind in ("float", "int") and (
                    not isinstance(value, (int, float)) or isinstance(value, bool)
                ):
                    problems.append(f"{where}.{p.name}: expected a number, got {value!r}")
                assigned[p.name] = value
        out.append(assigned)
    return out
