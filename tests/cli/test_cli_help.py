"""Every command's --help: examples of itself, and a word on each positional argument."""

from __future__ import annotations

import argparse
import subprocess
import sys

from modelboard.core.cli import build_parser


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_command_shows_examples_of_itself() -> None:
    for name in subcommands():
        shown = subprocess.run([sys.executable, "-m", "modelboard", name, "--help"],
                               capture_output=True, text=True, timeout=60, check=False)
        assert shown.returncode == 0, (name, shown.stderr)
        examples = shown.stdout.partition("\nexamples:\n")[2]
        assert examples, f"modelboard {name} --help has no examples"
        assert f"modelboard {name}" in examples, (name, examples)


def test_every_positional_argument_says_what_it_is() -> None:
    for name, parser in subcommands().items():
        for action in parser._actions:
            if not action.option_strings:
                assert action.help, f"modelboard {name}: {action.dest} has no help text"
