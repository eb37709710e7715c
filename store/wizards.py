"""Wizards and adopted baselines: rows the guided procedures keep between sessions."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from typing import Any

from sqlite_utils import Database

from store.db import transaction

KINDS = ("probe-batch", "warmup", "decide", "length")  # checked here, not by the table (0011)


class WizardConflict(Exception):
    """A wizard of that name exists with other options."""


@dataclass(frozen=True)
class Wizard:
    """One row of `wizards` (a copy; change it through the functions here)."""

    id: int
    kind: str
    name: str
    base_study: str
    options_json: str
    stage: str
    state_json: str
    verdict: str | None
    result_json: str | None
    created_at: float
    updated_at: float

    @property
    def options(self) -> dict[str, Any]:
        return json.loads(self.options_json)

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.state_json)

    @property
    def result(self) -> dict[str, Any] | None:
        return json.loads(self.result_json) if self.result_json else None

    @classmethod
    def from_row(cls, row: dict) -> Wizard:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


def create_or_resume(db: Database, kind: str, name: str, base_study: str, options: dict,
                     first_stage: str) -> tuple[Wizard, bool]:
    """The stored wizard of that name (resumed) or a new one; (wizard, created).

    Raises WizardConflict when the name is taken by another kind or other options:
    resuming must never mix trials planned under different settings.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown wizard kind {kind!r}; expected one of {KINDS}")
    options_json = json.dumps(options, sort_keys=True)
    with transaction(db):
        rows = list(db["wizards"].rows_where("name = ?", [name]))
        if rows:
            stored = Wizard.from_row(rows[0])
            if stored.kind != kind or stored.options_json != options_json:
                raise WizardConflict(
                    f"a {stored.kind} wizard named {name!r} already exists with other options "
                    f"({stored.options_json}); pass --name to start another, its trials are kept")
            return stored, False
        now = time.time()
        db.execute(
            "INSERT INTO wizards (kind, name, base_study, options_json, stage, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [kind, name, base_study, options_json, first_stage, now, now])
    return get_by_name(db, name), True


def get_by_name(db: Database, name: str) -> Wizard | None:
    rows = list(db["wizards"].rows_where("name = ?", [name]))
    return Wizard.from_row(rows[0]) if rows else None


def get(db: Database, wizard_id: int) -> Wizard | None:
    rows = list(db["wizards"].rows_where("id = ?", [wizard_id]))
    return Wizard.from_row(rows[0]) if rows else None


def list_all(db: Database) -> list[Wizard]:
    return [Wizard.from_row(r) for r in db["wizards"].rows_where(order_by="id")]


def save(db: Database, wizard_id: int, *, stage: str, state: dict, verdict: str | None = None,
         result: dict | None = None) -> Wizard:
    """Record where the wizard is (and its verdict once it has one)."""
    with transaction(db):
        db.execute(
            "UPDATE wizards SET stage = ?, state_json = ?, verdict = ?, result_json = ?, updated_at = ? "
            "WHERE id = ?",
            [stage, json.dumps(state, sort_keys=True), verdict,
             json.dumps(result, allow_nan=False) if result is not None else None, time.time(), wizard_id])
    return get(db, wizard_id)


@dataclass(frozen=True)
class Baseline:
    id: int
    scope: str
    params_json: str
    source: str
    objective_mean: float | None
    wizard_id: int | None
    adopted_at: float

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.params_json)


def adopt_baseline(db: Database, scope: str, params: dict, source: str, objective_mean: float | None,
                   wizard_id: int | None) -> None:
    """Record `params` as the new baseline of `scope` (a study name); earlier ones stay as history."""
    with transaction(db):
        db.execute(
            "INSERT INTO baselines (scope, params_json, source, objective_mean, wizard_id, adopted_at) "
            "SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS "
            "(SELECT 1 FROM baselines WHERE wizard_id IS ? AND wizard_id IS NOT NULL)",
            [scope, json.dumps(params, sort_keys=True), source, objective_mean, wizard_id, time.time(),
             wizard_id])


def current_baseline(db: Database, scope: str) -> Baseline | None:
    rows = list(db["baselines"].rows_where("scope = ?", [scope], order_by="id DESC", limit=1))
    return Baseline(**rows[0]) if rows else None
