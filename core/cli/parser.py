"""The command line's grammar: ``modelboard [global options] COMMAND [arguments]``."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from .output import to_json
from .session import EXIT_USAGE
from .shapes import error_json

__all__ = ["NO_JSON", "build_parser"]

#: The commands without ``--json``, and why: what they print is not data.
NO_JSON = {
    "tui": "the editor is interactive",
    "serve": "a web server: it prints a log, not a result",
    "completion": "prints a shell script, to be sourced by the shell",
}


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (a JSON error when ``--json`` was given)."""

    def __init__(self, *args: Any, json_errors: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.json_errors = json_errors

    def error(self, message: str) -> NoReturn:
        text = f"{self.prog}: {message} (see '{self.prog} --help')"
        if self.json_errors:
            sys.stdout.write(to_json(error_json(text, kind="usage", exit_code=EXIT_USAGE))
                             + "\n")
            self.exit(EXIT_USAGE)
        self.exit(EXIT_USAGE, text + "\n")


def _add_global_options(parser: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    # In a subcommand the defaults are suppressed, so that an option given before the
    # subcommand is not overwritten by the subcommand's default.
    def default(value: object) -> object:
        return argparse.SUPPRESS if in_subcommand else value

    group = parser.add_argument_group("global options")
    group.add_argument("--file", metavar="PATH|URL", default=default(None),
                       help="the selections file or a redis:// URL "
                            "(default: $MODELBOARD_FILE, else config/model_selections.json)")
    group.add_argument("--catalog", metavar="FILE", default=default(None),
                       help="a catalog file (JSON or TOML) of providers and their models "
                            "(default: $MODELBOARD_CATALOG, else the bundled catalog)")
    group.add_argument("--actor", metavar="NAME", default=default(None),
                       help="who is recorded as making changes (default: user@host)")
    group.add_argument("--read-only", action="store_true", default=default(False),
                       help="open read-only; writes are refused")
    group.add_argument("-q", "--quiet", action="count", default=default(0),
                       help="no notes or warnings on stderr, errors only")
    group.add_argument("-v", "--verbose", action="count", default=default(0),
                       help="what the core does, on stderr (-vv: in detail)")
    group.add_argument("--version", action=_ShowVersion)


class _ShowVersion(argparse.Action):
    """``--version``, looking the version up only when asked (see ``core.__getattr__``)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from .. import __version__

        print(f"modelboard {__version__}")
        parser.exit()


#: How long ``--wait`` alone waits for every reader.
DEFAULT_WAIT_S = 10.0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 3600 seconds")
    return value


def _add_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", nargs="?", const=DEFAULT_WAIT_S, type=_seconds,
                        metavar="SECONDS",
                        help="after the write, wait until every live reader serves it "
                             f"(default {DEFAULT_WAIT_S:.0f} s; exit 1 naming those it "
                             "did not reach)")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (1-65535)")
    return value


def _add_reason(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", metavar="TEXT", help="why: recorded in the history")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


Arguments = Callable[[argparse.ArgumentParser], None]

if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[_Parser]
else:
    _SubParsers = argparse._SubParsersAction


class _Commands(_SubParsers):
    """argparse's subcommands, each command's parser built the first time it is needed.

    Building the parsers of all the commands was most of the cost of parsing ``modelboard
    get``. The names and summaries are there from the start, so ``--help`` and a mistyped
    command read exactly as with every parser built.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._later: dict[str, Callable[[], None]] = {}

    def add_later(self, name: str, summary: str, build: Callable[[], None]) -> None:
        """Declare ``name``; ``build`` makes its parser (with ``new_parser``) when needed."""
        self._later[name] = build
        self._name_parser_map[name] = None  # type: ignore[assignment]  # a name, built later
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), summary))

    def new_parser(self, name: str, **kwargs: Any) -> _Parser:
        parser = self._parser_class(prog=f"{self._prog_prefix} {name}", **kwargs)
        self._name_parser_map[name] = parser
        return parser

    def build(self, name: str) -> None:
        build = self._later.pop(name, None)
        if build is not None:
            build()

    def build_all(self) -> None:
        for name in list(self._later):
            self.build(name)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        self.build(values[0])  # values: the command's name, then its arguments
        super().__call__(parser, namespace, values, option_string)



_DESCRIPTION = """\
Which model each LLM provider uses. Without a command, opens the editor."""

_EPILOG = """\
examples:
  modelboard list
  modelboard set openai gpt-4.1 --expect gpt-4o
  modelboard lock openai --reason "pinned for the launch"
  modelboard apply pinned.json --dry-run
  modelboard validate config/model_selections.json
  modelboard watch --json
  modelboard set openai gpt-4.1 --wait && modelboard fleet

exit codes: 0 success, 1 refused (invalid, locked, conflict, not found, bad file),
2 usage error (130 when watch is stopped by Ctrl-C).

--json: every command but tui, serve and completion prints one JSON document on
stdout, a refusal included ({"error": {...}}), with the same exit codes."""


#: What each command's --help shows under "examples:" (every command has some).
EXAMPLES: dict[str, tuple[str, ...]] = {
    "list": ("modelboard list", "modelboard list --json | jq -r '.[].model_name'"),
    "get": ("modelboard get openai", 'model=$(modelboard get openai) || model=gpt-4o-mini'),
    "set": ("modelboard set openai gpt-4.1",
            "modelboard set openai gpt-4.1 --expect gpt-4o   # only if it is still gpt-4o",
            "modelboard set ollama llama3.3 --file /etc/llm/models.json",
            "modelboard set openai gpt-4.1 --wait 30   # until every proxy serves it",
            "modelboard set openai gpt-4.1 --json | jq -r '.selection.changed_at'"),
    "lock": ('modelboard lock openai --reason "pinned for the launch"',),
    "unlock": ("modelboard unlock openai",),
    "remove": ("modelboard remove mistral",),
    "apply": ("modelboard apply pinned.json --dry-run", "modelboard apply pinned.json",
              'echo \'{"openai": "gpt-4.1"}\' | modelboard apply -',
              "modelboard apply pinned.json --dry-run --json | jq '.changes | length'"),
    "validate": ("modelboard validate", "modelboard validate candidate.json --catalog ours.toml",
                 "git show :config/model_selections.json |\n"
                 "    modelboard validate --stdin-name config/model_selections.json -",
                 "modelboard validate a.json b.json --json | jq -r '.files[].problems[].message'"),
    "history": ("modelboard history", "modelboard history openai --limit 5",
                "modelboard history --json"),
    "log": ("modelboard log --limit 10", "modelboard log --provider openai --json"),
    "show": ("modelboard show 12", "modelboard show 12 > before-incident.json"),
    "diff": ("modelboard diff 12", "modelboard diff 10 12 --json"),
    "rollback": ('modelboard rollback 12 --reason "back to before the incident"',
                 "modelboard rollback 12 --include-locked"),
    "audit": ("modelboard audit verify", "modelboard audit verify --json"),
    "notify": ("modelboard notify --config /etc/modelboard/notify.toml",
               "modelboard notify --config notify.toml --status",
               "modelboard notify --config notify.toml --enable audit   # after a 410 Gone"),
    "watch": ("modelboard watch", "modelboard watch --json | jq -c 'select(.event == \"change\")'"),
    "catalog": ("modelboard catalog", "modelboard catalog openai",
                "modelboard catalog --catalog ours.toml --json"),
    "migrate": ("modelboard migrate --from config/model_selections.json "
                "--to redis://localhost:6379/0",),
    "fleet": ("modelboard fleet", "modelboard fleet --json | jq '.readers[] | .status'"),
    "restore": ("modelboard restore   # after the file was deleted or went corrupt",
                "modelboard restore --file /etc/llm/models.json"),
    "init": ("modelboard init   # an empty file, on purpose",
             "modelboard init --file /etc/llm/models.json && chgrp llmops /etc/llm/models.json"),
    "tui": ("modelboard tui", "modelboard tui --read-only --file /etc/llm/models.json"),
    "completion": ("modelboard completion bash > ~/.bash_completion.d/modelboard",
                   "modelboard completion fish > ~/.config/fish/completions/modelboard.fish"),
    "serve": ("modelboard serve", "modelboard serve --port 9000 --read-only",
              "ssh -N -L 8000:127.0.0.1:8000 proxy-host   # from your laptop"),
}
#: What each command's --json prints (the shapes are in schema.json and the README).
JSON_HELP: dict[str, str] = {
    "notify": "with --status or --enable: the outcome as JSON",
    "list": "a JSON array of selections",
    "get": "the whole selection as JSON",
    "set": "what changed, as JSON",
    "lock": "what changed, as JSON",
    "unlock": "what changed, as JSON",
    "remove": "what changed, as JSON",
    "apply": "the changes or the problems, as JSON",
    "validate": "each file's problems, as JSON",
    "history": "a JSON array of history entries",
    "log": "a JSON array of revisions",
    "show": "the selections as of REV, as JSON",
    "diff": "a JSON array of changes",
    "rollback": "what was done, as JSON",
    "audit": "the outcome as JSON",
    "watch": "one JSON object per line",
    "restore": "what was restored, as JSON",
    "init": "the outcome as JSON",
    "catalog": "JSON instead of text",
    "migrate": "what was copied, as JSON",
    "fleet": "JSON instead of text",
}
_PROVIDER = "a provider name, as in the catalog (openai, anthropic, ollama …)"


def build_parser(*, json_errors: bool = False, lazy: bool = False) -> argparse.ArgumentParser:
    """The parser of ``modelboard`` and all its subcommands (``json_errors``: usage errors
    are printed as JSON on stdout, for a command line holding ``--json``; ``lazy``: each
    command's own parser is built only when that command is parsed, see ``_Commands``)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="modelboard", description=_DESCRIPTION, epilog=_EPILOG,
                     formatter_class=formatter, json_errors=json_errors)
    _add_global_options(parser, in_subcommand=False)
    common = _Parser(add_help=False, formatter_class=formatter)
    _add_global_options(common, in_subcommand=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands",
                                     action=_Commands, parser_class=_Parser)
    assert isinstance(commands, _Commands)

    def command(name: str, summary: str, details: str = "") -> Callable[[Arguments], Arguments]:
        """Declare a command; the function it decorates adds the command's own arguments."""
        arguments: list[Arguments] = []

        def build() -> None:
            # cleandoc, not textwrap.dedent: textwrap compiles a dozen patterns as it loads
            description = summary + ("\n\n" + inspect.cleandoc(details) if details else "")
            examples = "\n".join(f"  {example}" for example in EXAMPLES.get(name, ()))
            sub = commands.new_parser(name, parents=[common], description=description,
                                      formatter_class=formatter,
                                      epilog=f"examples:\n{examples}" if examples else None,
                                      json_errors=json_errors)
            if name not in NO_JSON:
                sub.add_argument("--json", action="store_true",
                                 help=f"{JSON_HELP.get(name, 'the outcome as JSON')} "
                                      "(refusals too; see 'JSON output' in the README)")
            for add in arguments:
                add(sub)

        commands.add_later(name, summary, build)

        def with_arguments(add: Arguments) -> Arguments:
            arguments.append(add)
            return add

        return with_arguments

    command("list", "every provider with its model, lock, last change and author")

    @command("get", "the model selected for one provider (exit 1 if none)",
             "Prints the model name alone, for $(modelboard get openai).")
    def _get_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("provider", help=_PROVIDER)

    @command("set", "select a model for a provider (validated against the catalog)")
    def _set_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("provider", help=_PROVIDER)
        sub.add_argument("model", help="the model to select (one the catalog lists for it)")
        sub.add_argument("--expect", metavar="CURRENT",
                         help="refuse (exit 1) unless the current model is CURRENT "
                              "('' means: no model selected yet)")
        _add_reason(sub)
        _add_wait_option(sub)

    @command("lock", "lock a provider's selection so nobody changes it")
    def _lock_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("provider", help=_PROVIDER)
        sub.add_argument("--reason", metavar="TEXT",
                         help="why it is locked, shown to others and recorded in the history")
        _add_wait_option(sub)

    @command("unlock", "unlock a provider's selection")
    def _unlock_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("provider", help=_PROVIDER)
        _add_reason(sub)
        _add_wait_option(sub)

    @command("remove", "remove a provider's selection")
    def _remove_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("provider", help=_PROVIDER)
        _add_reason(sub)
        _add_wait_option(sub)

    @command("apply", "set several providers at once, all or nothing",
             """\
             FILE holds {"provider": "model", ...} or the full file form; '-' reads
             stdin. Only models are applied: locks stay as they are, providers not
             in FILE are untouched.""")
    def _apply_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("source", metavar="FILE",
                         help="{\"provider\": \"model\", ...} or the full file form; "
                              "'-' reads stdin")
        sub.add_argument("--dry-run", action="store_true",
                         help="show what would change and check it, write nothing")
        _add_wait_option(sub)
        _add_reason(sub)

    @command("validate", "check selections files, strict about the catalog",
             """\
             Prints FILE:LINE:COL: reason per problem and exits 1 if there is any.
             '-' reads stdin, reported as --stdin-name: in a git hook,
               git show :config/model_selections.json |
                 modelboard validate --stdin-name config/model_selections.json -""")
    def _validate_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("files", metavar="FILE", nargs="*",
                         help="files to check, '-' for stdin (default: the selections file)")
        sub.add_argument("--stdin-name", metavar="NAME",
                         help="the file name to report for '-' (default: <stdin>)")

    @command("history", "who changed what and when, newest first")
    def _history_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("provider", nargs="?", help="only this provider's changes")
        sub.add_argument("--limit", metavar="N", type=_positive, help="show the N newest only")

    @command("log", "revisions, newest first: number, time, who, what changed, why")
    def _log_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--limit", metavar="N", type=_positive, help="show the N newest only")
        sub.add_argument("--provider", metavar="P", help="only revisions that changed P")

    @command("show", "the whole document as of a revision (as the file held it)")
    def _show_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("rev", metavar="REV", type=_positive, help="a revision number (see log)")

    @command("diff", "what changed between two revisions, provider by provider",
             "Without REV2, from REV to the current document.")
    def _diff_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("rev", metavar="REV", type=_positive, help="the revision to start from")
        sub.add_argument("rev2", metavar="REV2", type=_positive, nargs="?",
                         help="the revision to end at (default: the current document)")

    @command("rollback", "make the document what it was at REV, in one recorded write",
             """\
             Recorded as a new revision "rollback to REV". Locked providers stay as
             they are and are named, unless --include-locked; a change made by
             someone else meanwhile is a conflict (exit 1), as for any write.""")
    def _rollback_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("rev", metavar="REV", type=_positive, help="the revision to go back to")
        _add_reason(sub)
        sub.add_argument("--include-locked", action="store_true",
                         help="roll locked providers back too (their locks included)")
        _add_wait_option(sub)

    @command("audit", "check the history's hash chain",
             """\
             'audit verify' exits 0 and says how many revisions it checked, or exits 1
             naming the first broken link: the file, the line, what is wrong.""")
    def _audit_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("action", choices=["verify"], help="verify: check every link")

    @command("notify", "deliver every revision to signed webhooks and command hooks",
             """\
             Runs until stopped (SIGTERM exits 0, Ctrl-C 130). Several notifiers on one
             store elect one deliverer through the store; the others stand by and
             take over when it stops. Each endpoint and hook gets every revision after
             its cursor, in order, at least once (see the README, Notifications).""")
    def _notify_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", metavar="FILE", required=True,
                         help="the endpoints and hooks (TOML; see the README)")
        sub.add_argument("--status", action="store_true",
                         help="per endpoint and hook: cursor, backlog, last attempt, answer")
        sub.add_argument("--enable", metavar="NAME",
                         help="send to NAME again after it was disabled (a 410 Gone)")

    command("watch", "print one line per change until interrupted",
                  """\
                  Keeps running through a bad file, printing its error. Ctrl-C (SIGINT)
                  exits 130; SIGTERM exits 0.""")

    @command("restore", "bring back the last good backup of the selections file",
             """
             For a file that was deleted or went corrupt: the backup kept at the last
             good write becomes the file again, with a history line for every
             provider it changes. Writes refuse a missing file while the backup or
             the history shows selections existed, and say to run this.""")
    def _restore_arguments(sub: argparse.ArgumentParser) -> None:
        _add_wait_option(sub)

    command("init", "create an empty selections file, on purpose",
                  """
                  Refused if the file exists. Use it to start again from nothing when a
                  deleted file's selections are not wanted back (see restore).""")

    @command("catalog", "providers and the models each serves")
    def _catalog_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("provider", nargs="?", help="only this provider's models, one per line")

    @command("migrate", "copy every selection from one store to another")
    def _migrate_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--from", dest="source", metavar="SRC", required=True,
                         help="a file path or redis:// URL")
        sub.add_argument("--to", dest="destination", metavar="DST", required=True,
                         help="a file path or redis:// URL")

    command("fleet", "every reader process of the store: which revision it serves",
                  """\
                  One line per reader (name, host, pid, revision, since when, status:
                  current, behind, stale, error or unreadable) and a summary. Exit 0
                  when every live (not stale) reader is current, else 1.""")

    command("tui", "open the editor (the default without a command)")

    @command("completion", "print a completion script for bash, zsh or fish",
             """\
             bash:  modelboard completion bash > ~/.bash_completion.d/modelboard
             zsh:   modelboard completion zsh > "${fpath[1]}/_modelboard"
             fish:  modelboard completion fish > ~/.config/fish/completions/modelboard.fish

             The script is static: completing never starts modelboard.""")
    def _completion_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell to complete in")

    @command("serve", "the editor in a web browser (no authentication: see below)",
             """\
             Serves the same editor through textual-serve: each browser tab runs its
             own editor on the selections file. It has no authentication: anyone who
             can reach the address can change every model, so it listens on loopback
             only. From your laptop, forward the port over SSH:

               ssh -N -L 8000:127.0.0.1:8000 proxy-host   # open http://localhost:8000

             --allow-remote serves on another address: only behind a reverse proxy
             that authenticates (give its address with --public-url).""")
    def _serve_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--host", default="127.0.0.1",
                         help="address to listen on (default: 127.0.0.1; others need "
                              "--allow-remote)")
        sub.add_argument("--port", type=_port, default=8000, help="TCP port (default: 8000)")
        sub.add_argument("--allow-remote", action="store_true",
                         help="allow a non-loopback --host (there is no authentication)")
        sub.add_argument("--public-url", metavar="URL",
                         help="the address browsers use, behind a reverse proxy "
                              "(https://models.example.com)")

    if not lazy:
        commands.build_all()
    return parser
