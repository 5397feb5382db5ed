"""``modelboard completion bash|zsh|fish``: a completion script, generated from the parser.

The scripts are static: completing never runs modelboard, and modelboard's start-up
does not change (shtab is imported by this command only). bash and zsh come from
shtab; fish, which shtab does not write, from the few lines below.
"""

from __future__ import annotations

import argparse
import shlex

from .parser import build_parser
from .session import EXIT_OK, Session

__all__ = ["SHELLS", "cmd_completion", "completion_script"]

SHELLS = ("bash", "zsh", "fish")
#: Options whose value is a path: the shells complete file names for them.
_PATH_OPTIONS = ("--file", "--catalog", "--stdin-name")
_SHTAB_FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}


def cmd_completion(session: Session) -> int:
    session.terminal.out.write(completion_script(session.args.shell))
    return EXIT_OK


def completion_script(shell: str) -> str:
    """The completion script of ``modelboard`` for ``shell``."""
    parser = build_parser()
    if shell == "fish":
        return _fish(parser)
    import shtab

    for action in _all_actions(parser):
        if set(action.option_strings) & set(_PATH_OPTIONS) or action.metavar == "FILE":
            action.complete = _SHTAB_FILE  # type: ignore[attr-defined]
    return str(shtab.complete(parser, shell=shell))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public way to walk subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    actions = list(parser._actions)
    for sub in _subcommands(parser).values():
        actions += sub._actions
    return actions


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: choice.help or "" for choice in action._choices_actions}
    return {}


def _fish(parser: argparse.ArgumentParser) -> str:
    lines = ["# fish completion for modelboard: modelboard completion fish | source",
             "complete -c modelboard -f"]
    commands = _subcommands(parser)
    for name, summary in _summaries(parser).items():
        lines.append(f"complete -c modelboard -n __fish_use_subcommand -a {name} "
                     f"-d {shlex.quote(summary)}")
    lines += _fish_options(parser, "__fish_use_subcommand")
    for name, sub in commands.items():
        lines += _fish_options(sub, f"'__fish_seen_subcommand_from {name}'")
        for action in sub._actions:
            if not action.option_strings and action.choices:
                choices = " ".join(str(choice) for choice in action.choices)
                lines.append(f"complete -c modelboard -n '__fish_seen_subcommand_from {name}' "
                             f"-a {shlex.quote(choices)}")
            elif not action.option_strings and action.metavar == "FILE":
                lines.append(f"complete -c modelboard -n '__fish_seen_subcommand_from {name}' "
                             "-F")
    return "\n".join(lines) + "\n"


def _fish_options(parser: argparse.ArgumentParser, condition: str) -> list[str]:
    lines = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        flags = []
        for option in action.option_strings:
            if option.startswith("--"):
                flags.append(f"-l {option[2:]}")
            else:
                flags.append(f"-s {option[1:]}")
        takes_value = action.nargs != 0
        if takes_value:
            flags.append("-r -F" if set(action.option_strings) & set(_PATH_OPTIONS) else "-r")
        description = (action.help or "").replace("%(default)s", str(action.default))
        lines.append(f"complete -c modelboard -n {condition} {' '.join(flags)} "
                     f"-d {shlex.quote(description)}")
    return lines
