"""One place knows every wizard's options: the CLI's subcommands and the TUI's dialog parse the same."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from runner import wizard_cli
from runner.wizards import options
from runner.wizards.substudy import WizardError

DRIVING = {"yes", "json", "cpu_slots", "grace", "func", "command_name", "wizard"}
ARGS = {"probe-batch": ["digits"], "warmup": ["digits"], "decide": ["a/1", "a/2"], "length": ["digits"]}


def _cli_args(kind: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    wizard_cli.add_parsers(parser.add_subparsers(dest="wizard"))
    return parser.parse_args([kind, *argv])


@pytest.mark.parametrize("kind", options.KINDS)
def test_the_cli_and_the_dialog_read_the_same_options_with_the_same_defaults(kind):
    cli = {k: v for k, v in vars(_cli_args(kind, ARGS[kind])).items() if k not in DRIVING}
    dialog = {k: v for k, v in vars(options.parse(kind, ARGS[kind])).items() if k not in DRIVING}
    assert cli == dialog
    assert options.parse(kind, ARGS[kind]).command_name == kind
    assert kind in options.USAGE and kind in options.HELP


def test_a_bad_option_is_a_wizard_error_naming_it():
    with pytest.raises(WizardError, match="--points: invalid int value: 'many'"):
        options.parse("length", ["digits", "--points", "many"])
    with pytest.raises(WizardError, match="unrecognized arguments: --yes"):
        options.parse("length", ["digits", "--yes"])  # driving a wizard is the CLI's, not the dialog's
    with pytest.raises(WizardError, match="unknown wizard 'lenght'"):
        options.parse("lenght", ["digits"])


def test_the_length_flags_choose_its_optional_stages_headless():
    assert options.optional_answers(options.parse("length", ["s"])) == {
        "sweep": "run", "round-1": "skip", "round-2": "skip"}
    assert options.optional_answers(options.parse("length", ["s", "--rounds", "--skip-sweep"])) == {
        "sweep": "skip", "round-1": "run", "round-2": "run"}


def test_starting_a_wizard_from_the_tui_does_not_load_the_cli(tmp_path):
    # issue #15: the start dialog parsed its line with the CLI's argparse (runner.wizard_cli, which
    # imports the runner service); a study that does not exist gets as far as the store.
    code = ("import sys, tui.screens.wizards\n"
            "from tui.data.wizard_data import WizardReader\n"
            f"reader = WizardReader({str(tmp_path / 'p.db')!r})\n"
            "try:\n    reader.start('length', ['nosuch', '--points', '4'])\n"
            "except Exception as exc:\n    assert 'nosuch' in str(exc), exc\n"
            "print('runner.wizard_cli' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
