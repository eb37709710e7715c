"""`playbook-runner refine STUDY -o NEW.toml`: from a finished exploration to a Bayesian-optimization study.

Reads the study's checklist first. A boundary finding (the best trials crowd an edge, or no
feasible trial to tell) refuses: narrowing around an edge would cut off where the optimum may
be; widen and explore more instead (--force writes the file anyway). A sampling-density finding
only warns. Then the nuisance ranges are narrowed to where the good trials lie
(runner.playbook.refine) and the new study file is written with search = "bayes" and
refines = "STUDY", its workdir pointing at the old study's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from sqlite_utils import Database

from runner.judging import study_outcomes
from runner.playbook.boundary import search_space_boundary
from runner.playbook.refine import RangeProposal, good_trials, propose_space
from runner.playbook.sampling import sampling_density
from runner.study_data import load_study_data
from runner.text import printable
from store import connect, studies
from store.studies import Study

EXIT_REFUSED = 2


def add_parser(sub) -> None:
    refine = sub.add_parser("refine", help="propose a Bayesian-optimization study over the space where the "
                                           "good trials of an exploration lie")
    refine.add_argument("study", help="the finished exploration study")
    refine.add_argument("-o", "--output", required=True, help="the new study file to write")
    refine.add_argument("--name", help="the new study's name (default: STUDY-refined)")
    refine.add_argument("--trials", type=int, help="its budget per scientific value (default: the old study's)")
    refine.add_argument("--force", action="store_true", help="write the file despite boundary findings")
    refine.set_defaults(func=cmd_refine)


@dataclass(frozen=True)
class Refined:
    """What refining a study found and did: the checks' lines, a refusal or the file written."""

    study: Study
    name: str  # the new study's
    output: Path
    findings: tuple[str, ...]  # the boundary and sampling checks, one line each
    refused: str | None = None  # why no file was written
    warnings: tuple[str, ...] = ()
    proposals: tuple[RangeProposal, ...] = ()
    good: int = 0  # the good trials the ranges were narrowed to
    candidates: int = 0  # out of these

    def ranges(self) -> list[str]:
        return [f"{p.param}: {_span(p.old)} -> {_span(p.new)}" for p in self.proposals]


def refine(db: Database, study: Study, output: Path, *, name: str | None = None, trials: int | None = None,
           force: bool = False) -> Refined:
    """Check the study, then (unless a boundary finding refuses and not `force`) write the refined file.

    Its `refines` names the study as a command addresses it: NAME for the latest version, NAME@N
    for an earlier one.
    """
    study_outcomes(db, study)  # judged and stored first, as analyze does: the same good trials
    data = load_study_data(db, study)
    boundary, sampling = search_space_boundary(data), sampling_density(data)
    findings = tuple(f"{check.title}: {check.verdict}: {check.summary}" for check in (boundary, sampling))
    name = name or f"{study.name}-refined"
    if boundary.verdict != "ok" and not force:
        return Refined(study, name, output, findings, refused=(
            f"refine {study.label}: the boundary check says {boundary.summary!r}; "
            f"{boundary.advice or 'run the exploration until it has feasible trials'} "
            "(--force writes the refined study anyway)"))
    warnings = ()
    if sampling.verdict == "warning":
        warnings = (f"the sampling check says {sampling.summary!r}: the good region may be poorly located",)
    latest = studies.by_name(db, study.name)
    old = study.name if latest is None or latest.id == study.id else study.address
    proposals = propose_space(data)
    output.write_text(refined_config(study.config_text, study.config_path, output, name, old, proposals,
                                     trials))
    return Refined(study, name, output, findings, warnings=warnings, proposals=tuple(proposals),
                   good=len(good_trials(data)), candidates=len(data.best_candidates()))


def cmd_refine(args: argparse.Namespace, db_path: Path) -> int:
    db = connect(db_path)
    try:
        study = studies.require(db, args.study)
    except studies.UnknownStudy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    output = Path(args.output)
    done = refine(db, study, output, name=args.name, trials=args.trials, force=args.force)
    for line in done.findings:
        print(printable(line))
    if done.refused:
        print(printable(f"error: {done.refused}"), file=sys.stderr)
        return EXIT_REFUSED
    for warning in done.warnings:
        print(printable(f"warning: {warning}"), file=sys.stderr)
    print(printable(f"from the best {done.good} of {done.candidates} trials:"))
    for line in done.ranges():
        print(printable(f"  {line}"))
    refines = tomllib.loads(output.read_text())["study"]["refines"]
    print(printable(f"wrote {output} (study {done.name}, search = \"bayes\", refines = \"{refines}\"); "
                    f"run it with: playbook-runner run {output}"))
    return 0


def refined_config(config_text: str, config_path: str, output: Path, name: str, old_name: str,
                   proposals: list[RangeProposal], trials: int | None) -> str:
    """The old study file with the proposed ranges, a new name, search = "bayes" and the link back.

    The old file's manual [[trial]]s are left out (they ran in the exploration) and its workdir is
    rewritten relative to the new file, so the command runs in the same folder.
    """
    data = tomllib.loads(config_text)
    body = data["study"]
    old_dir = Path(config_path).resolve().parent
    workdir = (old_dir / body.get("workdir", ".")).resolve()
    body.update(name=name, refines=old_name, search="bayes",
                workdir=os.path.relpath(workdir, output.resolve().parent))
    if trials is not None:
        body["trials"] = trials
    for p in proposals:
        data["params"][p.param].update(p.new)
    data.pop("trial", None)
    header = f"# Written by `playbook-runner refine {old_name}`: its good trials' region, searched by BO.\n"
    return header + tomli_w.dumps(data)


def _span(bounds: dict) -> str:
    if "values" in bounds:
        return str(bounds["values"])
    return f"{bounds['low']:g}..{bounds['high']:g}"
