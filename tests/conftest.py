"""Shared fixtures: real database files and real study folders in tmp_path."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

import store

TRAINER = Path(__file__).parent / "scripts" / "trainer.py"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "pb" / "playbook.db"


@pytest.fixture
def db(db_path: Path):
    database = store.connect(db_path)
    yield database
    database.conn.close()


def write_study(folder: Path, body: str, name: str = "study.toml") -> Path:
    """A study folder with the test trainer beside its study file."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(TRAINER, folder / "trainer.py")
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture
def make_study(tmp_path: Path):
    def make(body: str, name: str = "study.toml") -> Path:
        return write_study(tmp_path / "study", body, name)

    return make
