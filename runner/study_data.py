"""Loading a study from the store as the analyses' plain data (runner.playbook.data)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from sqlite_utils import Database

from runner.playbook.data import ParamInfo, StudyData, TrialResult
from runner.spec import ParamSpec, SpecError, parse
from store import trials
from store.studies import Study


def _param_info(p: ParamSpec) -> ParamInfo:
    return ParamInfo(p.name, p.role, p.kind, p.is_log, p.low, p.high, tuple(p.values))


def param_infos(study: Study) -> tuple[ParamInfo, ...]:
    """The search space from the config stored with the study (not the file, which may have moved)."""
    try:
        spec = parse(tomllib.loads(study.config_text), path=Path(study.config_path), text=study.config_text)
    except (SpecError, tomllib.TOMLDecodeError):
        return ()
    return tuple(_param_info(p) for p in spec.params)


def load_study_data(db: Database, study: Study) -> StudyData:
    results = tuple(
        TrialResult(
            number=t.number, state=t.state.value, params=t.params, reason=t.reason,
            feasible=None if t.feasible is None else bool(t.feasible),
            best_value=t.best_value, best_step=t.best_step, last_step=t.last_step,
        )
        for t in trials.list_for_study(db, study.id)
    )
    return StudyData(study.name, study.objective_metric, study.objective_mode, study.max_train_steps,
                     param_infos(study), results)
