"""Cut-down copies of the sample studies for tests: the real train.py, fewer trials and steps."""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w

DIGITS = Path(__file__).resolve().parents[1] / "sample_studies" / "digits"


def small_digits(path: Path, *, name: str, max_train_steps: int, trials: int, widths=(32, 128),
                 eval_every: int = 20, extra_args: str = "", manual: tuple[dict, ...] = (),
                 **study: object) -> Path:
    """The digits sample study, shrunk, written to `path`; its workdir is the real sample folder."""
    data = tomllib.loads((DIGITS / "study.toml").read_text())
    data["study"].update(name=name, workdir=str(DIGITS), max_train_steps=max_train_steps, trials=trials,
                         **study)
    if extra_args:
        data["study"]["command"] += f" {extra_args}"
    data["params"]["width"]["values"] = list(widths)
    data["params"]["eval_every"]["value"] = eval_every
    if manual:
        data["trial"] = [dict(t) for t in manual]
    path.write_text(tomli_w.dumps(data))
    return path
