"""The ``modelboard`` command: every operation on the selections, scriptable.

Headless commands import the core only (never textual or rich), so that a deploy
pipeline or a monitoring agent starts as fast as ``import modelboard.core``; the
editor (``modelboard`` alone, or ``modelboard tui``) is imported only when asked for.

Exit codes: 0 success, 1 refused (invalid, locked, conflict, not found, bad file),
2 usage error. Every error is one line on stderr; text output fits 80 columns and
is coloured only on a terminal without ``NO_COLOR``; ``--json`` output has sorted
keys and the shapes documented in the README.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import textwrap
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TextIO

from . import __version__
from .catalog import Catalog
from .errors import (
    ConfigurationError,
    ConflictError,
    LockedError,
    ModelboardError,
    NotFoundError,
    ValidationError,
)
from .fileformat import parse_document
from .models import ChangeEvent, HistoryEntry, ProviderChange, Selection, utc_now
from .opening import open_store, resolve_catalog, resolve_location
from .service import selection_to_dict
from .store import UNSET, SelectionStore

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
#: What a shell reports for a process stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130
LINE_WIDTH = 80
TUI_HINT = "pip install 'modelboard[tui]'"
_REMOTE_SCHEMES = ("redis://", "rediss://", "unix://")
_NOTHING = "(none)"

log = logging.getLogger("modelboard")


# -- text that is safe to print ------------------------------------------------------------
def clean(text: str) -> str:
    """``text`` with control and format characters shown as escapes, never interpreted.

    Free-text fields (who changed something, a lock reason) come from a file anyone
    may have edited; an escape sequence in them must not reach the terminal.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _cell_width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, ending in an ellipsis when it was cut."""
    if _cell_width(text) <= width:
        return text
    kept: list[str] = []
    used = 0
    for char in text:
        size = _cell_width(char)
        if used + size > width - 1:
            break
        kept.append(char)
        used += size
    return "".join(kept) + "…"


def to_json(value: Any, *, lines: bool = False) -> str:
    """Stable JSON: sorted keys; indented, or one compact line with ``lines``.

    Unprintable characters are written as ``\\uXXXX`` escapes (json leaves C1 controls
    and bidi overrides raw), so ``cat``-ing the output is as safe as the text form.
    """
    if lines:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2)
    if text.isprintable():
        return text
    # Only string contents can hold such characters: the structure is printable ASCII
    # plus the newlines of the indent, which json never leaves raw inside a string.
    return "".join(ch if ch.isprintable() or ch == "\n" else _json_escape(ch) for ch in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


class Terminal:
    """Where the command writes, and whether it may colour what it writes."""

    _STYLES = {"bold": "1", "red": "31"}

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self.colour = _wants_colour(out)
        self.error_colour = _wants_colour(err)

    def style(self, text: str, style: str, *, stream: TextIO | None = None) -> str:
        enabled = self.error_colour if stream is self.err else self.colour
        if not enabled or not text:
            return text
        return f"\x1b[{self._STYLES[style]}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def flush(self) -> None:
        self.out.flush()

    def error(self, message: str) -> None:
        self.err.write(f"modelboard: {self.style(clean(message), 'red', stream=self.err)}\n")

    def note(self, message: str) -> None:
        self.err.write(f"modelboard: {clean(message)}\n")


def _wants_colour(stream: TextIO) -> bool:
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def table(terminal: Terminal, headers: Sequence[str], rows: Iterable[Sequence[str]],
          *, shrink: Sequence[tuple[int, int]]) -> list[str]:
    """Rows aligned in columns that fit 80.

    When a line would be wider, the columns in ``shrink`` (index, narrowest width) give
    way in that order, their cells cut with an ellipsis: the least useful ones first.
    """
    body = [[clean(cell) for cell in row] for row in rows]
    widths = [max([len(header), *(_cell_width(row[i]) for row in body)])
              for i, header in enumerate(headers)]
    gap = 2
    excess = sum(widths) + gap * (len(widths) - 1) - LINE_WIDTH
    for index, narrowest in shrink:
        if excess <= 0:
            break
        given = min(excess, max(0, widths[index] - narrowest))
        widths[index] -= given
        excess -= given

    def render(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            cell = fit(cell, widths[i])
            last = i == len(cells) - 1
            parts.append(cell if last else cell + " " * (widths[i] - _cell_width(cell)))
        return (" " * gap).join(parts).rstrip()

    lines = [terminal.style(render(headers), "bold")]
    lines.extend(render(row) for row in body)
    return lines


def _shown(location: str) -> str:
    """``location`` fit to print: the password of a Redis URL masked."""
    if not location.startswith(_REMOTE_SCHEMES):
        return location
    # Only reached once a store on that URL was opened, so redis-py is installed.
    from .redisbackend import mask_password  # type: ignore[import-not-found,unused-ignore]

    return str(mask_password(location))


def _time(moment: datetime | None, *, seconds: bool = False) -> str:
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


# -- argument parsing ------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


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
    group.add_argument("--version", action="version", version=f"modelboard {__version__}")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


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

exit codes: 0 success, 1 refused (invalid, locked, conflict, not found, bad file),
2 usage error (130 when watch is stopped by Ctrl-C)."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``modelboard`` and all its subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="modelboard", description=_DESCRIPTION, epilog=_EPILOG,
                     formatter_class=formatter)
    _add_global_options(parser, in_subcommand=False)
    common = _Parser(add_help=False)
    _add_global_options(common, in_subcommand=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands",
                                     parser_class=_Parser)

    def command(name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
        description = summary + ("\n\n" + textwrap.dedent(details).strip() if details else "")
        return commands.add_parser(name, parents=[common], help=summary,
                                   description=description, formatter_class=formatter)

    sub = command("list", "every provider with its model, lock, last change and author")
    sub.add_argument("--json", action="store_true", help="a JSON array of selections")

    sub = command("get", "the model selected for one provider (exit 1 if none)",
                  "Prints the model name alone, for $(modelboard get openai).")
    sub.add_argument("provider")
    sub.add_argument("--json", action="store_true", help="the whole selection as JSON")

    sub = command("set", "select a model for a provider (validated against the catalog)")
    sub.add_argument("provider")
    sub.add_argument("model")
    sub.add_argument("--expect", metavar="CURRENT",
                     help="refuse (exit 1) unless the current model is CURRENT "
                          "('' means: no model selected yet)")

    sub = command("lock", "lock a provider's selection so nobody changes it")
    sub.add_argument("provider")
    sub.add_argument("--reason", metavar="TEXT", help="why it is locked, shown to others")

    sub = command("unlock", "unlock a provider's selection")
    sub.add_argument("provider")

    sub = command("remove", "remove a provider's selection")
    sub.add_argument("provider")

    sub = command("apply", "set several providers at once, all or nothing",
                  """\
                  FILE holds {"provider": "model", ...} or the full file form; '-' reads
                  stdin. Only models are applied: locks stay as they are, providers not
                  in FILE are untouched.""")
    sub.add_argument("source", metavar="FILE")
    sub.add_argument("--dry-run", action="store_true",
                     help="show what would change and check it, write nothing")

    sub = command("validate", "check selections files, strict about the catalog",
                  "Prints FILE:LINE:COL: reason per problem and exits 1 if there is any.")
    sub.add_argument("files", metavar="FILE", nargs="*",
                     help="files to check (default: the selections file)")

    sub = command("history", "who changed what and when, newest first")
    sub.add_argument("provider", nargs="?")
    sub.add_argument("--limit", metavar="N", type=_positive, help="show the N newest only")
    sub.add_argument("--json", action="store_true", help="a JSON array of entries")

    sub = command("watch", "print one line per change until interrupted",
                  """\
                  Keeps running through a bad file, printing its error. Ctrl-C (SIGINT)
                  exits 130; SIGTERM exits 0.""")
    sub.add_argument("--json", action="store_true", help="one JSON object per line")

    sub = command("catalog", "providers and the models each serves")
    sub.add_argument("provider", nargs="?")
    sub.add_argument("--json", action="store_true", help="JSON instead of text")

    sub = command("migrate", "copy every selection from one store to another")
    sub.add_argument("--from", dest="source", metavar="SRC", required=True,
                     help="a file path or redis:// URL")
    sub.add_argument("--to", dest="destination", metavar="DST", required=True,
                     help="a file path or redis:// URL")

    command("tui", "open the editor (the default without a command)")
    return parser


# -- opening --------------------------------------------------------------------------------
class Session:
    """The parsed options, and the store and catalog they point at, opened on demand."""

    def __init__(self, args: argparse.Namespace, terminal: Terminal) -> None:
        self.args = args
        self.terminal = terminal
        self.location = resolve_location(args.file)
        self._catalog: Catalog | None = None

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = resolve_catalog(self.args.catalog)
        return self._catalog

    def open(self, *, read_only: bool, location: str | None = None) -> SelectionStore:
        """The store at ``location`` (default: the chosen one), load errors left to the caller."""
        # The store logs a bad file as it opens; the command reports it itself, once.
        level = log.level
        log.setLevel(logging.CRITICAL)
        try:
            return open_store(location or self.location, catalog=self.catalog,
                              actor=self.args.actor, read_only=read_only)
        finally:
            log.setLevel(level)

    def open_for_reading(self) -> SelectionStore:
        """A read-only store (no lock file, nothing written); a bad file is refused."""
        store = self.open(read_only=True)
        if store.load_error is not None:
            raise store.load_error
        return store

    def open_for_writing(self) -> SelectionStore:
        """A writable store; a file that does not parse is refused, never overwritten."""
        if not self.args.read_only:
            # Checked read-only first: a writable store would copy a corrupt file aside
            # and start from the backup, which is right for a proxy, not for a refusal.
            self.open_for_reading().close()
        store = self.open(read_only=self.args.read_only)
        if store.load_error is not None:
            raise store.load_error
        return store


Handler = Callable[[Session], int]


# -- reading commands ----------------------------------------------------------------------
def _warn_unknown(session: Session, store: SelectionStore) -> None:
    for problem in store.warnings():
        session.terminal.note(f"{store.location}: warning: {problem}")


def cmd_list(session: Session) -> int:
    store = session.open_for_reading()
    snapshot = store.snapshot
    terminal = session.terminal
    providers = sorted(snapshot)
    if session.args.json:
        terminal.line(to_json([selection_to_dict(p, snapshot[p]) for p in providers]))
    elif providers:
        rows = [(provider, selection.model_name, _lock_text(selection),
                 _time(selection.last_updated), selection.updated_by or "")
                for provider in providers for selection in (snapshot[provider],)]
        headers = ("PROVIDER", "MODEL", "LOCK", "UPDATED (UTC)", "BY")
        for line in table(terminal, headers, rows, shrink=((4, 10), (1, 16), (0, 8))):
            terminal.line(line)
    if not store.exists:
        terminal.note(f"{store.location} does not exist yet; nothing is selected")
    _warn_unknown(session, store)
    return EXIT_OK


def _lock_text(selection: Selection) -> str:
    # The reason is in ``get --json`` and the history; here it would crowd out the model.
    return "" if selection.editable else "locked"


def cmd_get(session: Session) -> int:
    provider = session.args.provider
    store = session.open_for_reading()
    selection = store.get_model_selection(provider)
    if selection is None:
        hint = ""
        if provider not in session.catalog:
            close = session.catalog.close_providers(provider)
            hint = f"; unknown provider, did you mean {close[0]!r}?" if close else \
                "; the catalog does not know it either"
        session.terminal.error(f"{store.location}: {provider}: no model selected{hint}")
        return EXIT_REFUSED
    if session.args.json:
        session.terminal.line(to_json(selection_to_dict(provider, selection)))
    else:
        session.terminal.line(clean(selection.model_name))
    return EXIT_OK


def cmd_history(session: Session) -> int:
    store = session.open_for_reading()
    entries = store.history(session.args.provider, limit=session.args.limit)
    terminal = session.terminal
    if session.args.json:
        terminal.line(to_json([entry.to_json() for entry in entries]))
        return EXIT_OK
    if not entries:
        terminal.note(f"{store.location}: no history"
                      + (f" for {session.args.provider}" if session.args.provider else ""))
        return EXIT_OK
    rows = [(_time(entry.time), entry.actor, entry.provider, entry.action, _history_change(entry))
            for entry in entries]
    headers = ("TIME (UTC)", "BY", "PROVIDER", "ACTION", "CHANGE")
    for line in table(terminal, headers, rows, shrink=((4, 28), (1, 10), (4, 16), (2, 8))):
        terminal.line(line)
    return EXIT_OK


def _history_change(entry: HistoryEntry) -> str:
    if entry.action in ("lock", "unlock"):
        reason = f" ({entry.reason})" if entry.reason else ""
        return f"{entry.new or entry.old or ''}{reason}"
    return f"{entry.old or _NOTHING} -> {entry.new or _NOTHING}"


def cmd_catalog(session: Session) -> int:
    catalog = session.catalog
    terminal = session.terminal
    provider = session.args.provider
    if provider is not None:
        catalog.validate(provider)
        spec = catalog[provider]
        if session.args.json:
            terminal.line(to_json(_spec_json(provider, catalog)))
        elif spec.any_model:
            terminal.line("(any model name)")
        else:
            for model in spec.models:
                terminal.line(clean(model))
        return EXIT_OK
    providers = sorted(catalog)
    if session.args.json:
        terminal.line(to_json([_spec_json(name, catalog) for name in providers]))
        return EXIT_OK
    name_width = min(max(map(len, providers), default=0), 20)
    for name in providers:
        spec = catalog[name]
        models = "(any model name)" if spec.any_model else ", ".join(
            fit(clean(model), 40) for model in spec.models)
        wrapped = textwrap.wrap(models, LINE_WIDTH - name_width - 2, break_on_hyphens=False)
        label = terminal.style(fit(clean(name), name_width).ljust(name_width), "bold")
        terminal.line(f"{label}  {wrapped[0] if wrapped else ''}".rstrip())
        for rest in wrapped[1:]:
            terminal.line(" " * (name_width + 2) + rest)
    return EXIT_OK


def _spec_json(provider: str, catalog: Catalog) -> dict[str, Any]:
    spec = catalog[provider]
    return {"provider": provider, "models": list(spec.models), "any_model": spec.any_model}


# -- validating -----------------------------------------------------------------------------
def cmd_validate(session: Session) -> int:
    targets = session.args.files or [session.location]
    failed = 0
    for target in targets:
        problems, count = _problems_in(target, session)
        for problem in problems:
            session.terminal.line(clean(problem))
        if problems:
            failed += 1
        else:
            session.terminal.line(f"{clean(_shown(target))}: valid, {count} "
                                  f"selection{'s' if count != 1 else ''}")
    if failed:
        session.terminal.flush()
        session.terminal.error(f"{failed} of {len(targets)} file{'s' if len(targets) > 1 else ''}"
                               f" {'is' if failed == 1 else 'are'} not valid")
        return EXIT_REFUSED
    return EXIT_OK


def _problems_in(target: str, session: Session) -> tuple[list[str], int]:
    """Every problem in ``target`` as ``FILE:LINE:COL: reason``, and how many selections."""
    if target.startswith(_REMOTE_SCHEMES):
        store = session.open(read_only=True, location=target)
        try:
            return [str(problem) for problem in store.validate()], len(store.snapshot)
        finally:
            store.close()
    try:
        data = Path(target).read_bytes()
    except FileNotFoundError:
        return [f"{target}: no such file"], 0
    except IsADirectoryError:
        return [f"{target}: is a folder, not a file"], 0
    except OSError as exc:
        return [f"{target}: cannot read: {exc.strerror}"], 0
    errors: list[ConfigurationError] = []
    positions: dict[str, tuple[int, int]] = {}
    try:
        selections = parse_document(data, path=target, problems=errors, positions=positions)
    except ConfigurationError as error:
        return [str(error)], 0
    for provider, selection in selections.items():
        try:
            session.catalog.validate(provider, selection.model_name)
        except ValidationError as exc:
            line, column = positions[provider]
            errors.append(ConfigurationError(str(exc), path=target, line=line, column=column))
    errors.sort(key=lambda error: (error.line or 0, error.column or 0))
    return [str(error) for error in errors], len(selections)


# -- writing commands -----------------------------------------------------------------------
def _change_line(provider: str, old: str | None, new: str | None, note: str = "") -> str:
    line = (f"{fit(clean(provider), 18)}: {fit(clean(old or _NOTHING), 27)} -> "
            f"{fit(clean(new or _NOTHING), 27)}")
    return line + note


def cmd_set(session: Session) -> int:
    args = session.args
    store = session.open_for_writing()
    before = store.get_model_selection(args.provider)
    expect = UNSET if args.expect is None else (args.expect or None)
    try:
        after = store.set_model_selection(args.provider, args.model, expect=expect)
    except ConflictError as conflict:
        if expect is UNSET:
            raise
        by = f" (set by {conflict.theirs_by})" if conflict.theirs_by else ""
        current = repr(conflict.theirs) if conflict.theirs is not None else "not selected"
        wanted = repr(expect) if expect is not None else "not selected"
        session.terminal.error(
            f"{store.location}: {args.provider}: conflict: it is {current}{by}, "
            f"expected {wanted}; {args.model!r} was not applied")
        return EXIT_REFUSED
    if before is not None and before.model_name == after.model_name:
        session.terminal.line(f"{clean(args.provider)}: already {clean(after.model_name)}")
    else:
        session.terminal.line(_change_line(args.provider, before.model_name if before else None,
                                           after.model_name))
    return EXIT_OK


def cmd_lock(session: Session) -> int:
    args = session.args
    store = session.open_for_writing()
    before = store.get_model_selection(args.provider)
    after = store.lock(args.provider, reason=args.reason)
    reason = f" ({after.lock_reason})" if after.lock_reason else ""
    state = "already locked" if before == after else "locked"
    session.terminal.line(clean(f"{args.provider}: {after.model_name} {state}{reason}"))
    return EXIT_OK


def cmd_unlock(session: Session) -> int:
    args = session.args
    store = session.open_for_writing()
    before = store.get_model_selection(args.provider)
    after = store.unlock(args.provider)
    state = "already unlocked" if before == after else "unlocked"
    session.terminal.line(clean(f"{args.provider}: {after.model_name} {state}"))
    return EXIT_OK


def cmd_remove(session: Session) -> int:
    args = session.args
    store = session.open_for_writing()
    removed = store.remove_model_selection(args.provider)
    if removed is None:
        raise NotFoundError(args.provider)
    session.terminal.line(clean(f"{args.provider}: {removed.model_name} removed"))
    return EXIT_OK


def _read_source(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise ConfigurationError("no such file", path=source) from None
    except IsADirectoryError:
        raise ConfigurationError("is a folder, not a file", path=source) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read: {exc.strerror}", path=source) from None


def cmd_apply(session: Session) -> int:
    args = session.args
    terminal = session.terminal
    label = "<stdin>" if args.source == "-" else args.source
    data = _read_source(args.source)
    store = session.open_for_reading() if args.dry_run else session.open_for_writing()

    # Every problem is found and reported before anything is written, so one run
    # shows them all; the transaction below checks them again under the lock.
    errors: list[ConfigurationError] = []
    positions: dict[str, tuple[int, int]] = {}
    wanted = parse_document(data, path=label, problems=errors, positions=positions)
    current = store.snapshot
    changes: list[tuple[str, str | None, str]] = []
    for provider in sorted(wanted):
        model = wanted[provider].model_name
        existing = current.get(provider)
        line, column = positions[provider]
        try:
            store.catalog.validate(provider, model)
            if existing is not None and existing.model_name == model:
                continue
            if existing is not None and not existing.editable:
                raise LockedError(provider, locked_by=existing.updated_by,
                                  reason=existing.lock_reason)
        except (ValidationError, LockedError) as exc:
            errors.append(ConfigurationError(str(exc), path=label, line=line, column=column))
            continue
        changes.append((provider, existing.model_name if existing else None, model))
    if errors:
        errors.sort(key=lambda error: (error.line or 0, error.column or 0))
        for error in errors:
            terminal.error(str(error))
        terminal.error(f"{label}: {len(errors)} problem{'s' if len(errors) > 1 else ''}; "
                       f"nothing was written to {store.location}")
        return EXIT_REFUSED

    for provider, old, new in changes:
        terminal.line(_change_line(provider, old, new))
    unchanged = len(wanted) - len(changes)
    tail = f" ({unchanged} already as wanted)" if unchanged else ""
    count = f"{len(changes)} change{'s' if len(changes) != 1 else ''}"
    if args.dry_run:
        terminal.line(f"dry run: {count} would be applied{tail}; nothing was written")
        return EXIT_OK
    if changes:
        with store.transaction() as tx:
            for provider, _old, new in changes:
                tx.set_model_selection(provider, new)
    terminal.line(f"applied {count} to {clean(store.location)}{tail}")
    return EXIT_OK


# -- watching -------------------------------------------------------------------------------
class ChangePrinter:
    """A store subscriber printing one line per provider change (or per error)."""

    def __init__(self, terminal: Terminal, location: str, *, as_json: bool,
                 on_closed_output: Callable[[], None]) -> None:
        self.terminal = terminal
        self.location = location
        self.as_json = as_json
        self.on_closed_output = on_closed_output
        self._broken = False  # the last event was a load error

    def __call__(self, event: ChangeEvent) -> None:
        try:
            if event.error is not None:
                self.error(event.error)
                return
            if self._broken or not event.changes:
                self._broken = False
                self._emit({"event": "recovered", "revision": event.new.revision},
                           f"{self.location}: readable again")
            for change in event.changes:
                self._emit(self._change_json(change, event), self._change_text(change))
            self.terminal.flush()
        except BrokenPipeError:  # the reader went away (| head)
            self.on_closed_output()

    def error(self, error: Exception) -> None:
        record: dict[str, Any] = {"event": "error", "error": str(error)}
        if isinstance(error, ConfigurationError):
            record.update(path=error.path, line=error.line, column=error.column,
                          reason=error.reason)
        self._broken = True
        self._emit(record, f"error: {error}; keeping the last good state")
        self.terminal.flush()

    def _emit(self, record: dict[str, Any], text: str) -> None:
        now = utc_now()
        if self.as_json:
            self.terminal.line(to_json({"time": now.isoformat(), **record}, lines=True))
        else:
            self.terminal.line(f"{_time(now, seconds=True)}  {clean(text)}")

    @staticmethod
    def _change_json(change: ProviderChange, event: ChangeEvent) -> dict[str, Any]:
        def view(selection: Selection | None) -> dict[str, Any] | None:
            return None if selection is None else selection_to_dict(change.provider, selection)

        return {"event": "change", "provider": change.provider, "kind": change.kind,
                "old": view(change.old), "new": view(change.new),
                "revision": event.new.revision, "source": event.source}

    @staticmethod
    def _change_text(change: ProviderChange) -> str:
        provider = fit(change.provider, 20)
        by = f" by {fit(change.actor, 20)}" if change.actor else ""
        old = fit(change.old.model_name, 24) if change.old else _NOTHING
        new = fit(change.new.model_name, 24) if change.new else _NOTHING
        if change.kind == "added":
            return f"{provider}: set to {new}{by}"
        if change.kind == "removed":
            return f"{provider}: {old} removed"
        same_model = change.old is not None and change.new is not None and \
            change.old.model_name == change.new.model_name
        if (change.kind == "lock" or same_model) and change.new is not None:
            if change.new.editable:
                if change.kind != "lock":  # only the time, author or extra fields moved
                    return f"{provider}: {new} updated{by}"
                return f"{provider}: {new} unlocked{by}"
            reason = f" ({fit(change.new.lock_reason, 20)})" if change.new.lock_reason else ""
            return f"{provider}: {new} locked{by}{reason}"
        return f"{provider}: {old} -> {new}{by}"


def cmd_watch(session: Session) -> int:
    stopped = threading.Event()
    exit_code = [EXIT_OK]

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        exit_code[0] = EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_OK
        stopped.set()

    def on_closed_output() -> None:
        # Nobody reads any more: stop, and keep the exit-time flush from complaining.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    store = session.open(read_only=True)
    printer = ChangePrinter(session.terminal, store.location, as_json=session.args.json,
                            on_closed_output=on_closed_output)
    if store.load_error is not None:
        printer.error(store.load_error)
    # The printer reports bad files itself; the log would say it a second time.
    log.setLevel(logging.ERROR)
    unsubscribe = store.subscribe(printer)
    store.start_watching()
    session.terminal.note(f"watching {store.location} (revision {store.snapshot.revision}); "
                          "Ctrl-C to stop")
    session.terminal.err.flush()
    try:
        while not stopped.wait(timeout=3600):
            pass
    finally:
        unsubscribe()
        store.close()
    return exit_code[0]


# -- elsewhere ------------------------------------------------------------------------------
def cmd_migrate(session: Session) -> int:
    try:
        module = importlib.import_module("modelboard.core.migrate")
    except ModuleNotFoundError as exc:
        if exc.name == "modelboard.core.migrate":
            session.terminal.error("migrate is not available in this version of modelboard")
            return EXIT_REFUSED
        if exc.name and exc.name.split(".")[0] == "redis":
            session.terminal.error("migrate needs redis-py: pip install 'modelboard[redis]'")
            return EXIT_REFUSED
        raise
    summary = module.migrate(session.args.source, session.args.destination)
    session.terminal.line(clean(str(summary)))
    return EXIT_OK


def cmd_tui(session: Session) -> int:
    try:
        # Textual first: the editor package imports it only when it runs, and a missing
        # extra is a usage problem (exit 2) with the command that fixes it.
        importlib.import_module("textual")
        editor = importlib.import_module("modelboard.tui")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("textual", "rich"):
            session.terminal.error(f"the editor needs Textual: {TUI_HINT}")
            return EXIT_USAGE
        if exc.name == "modelboard.tui":
            session.terminal.error(f"the editor is not installed: {TUI_HINT}")
            return EXIT_USAGE
        raise
    run_editor = getattr(editor, "run_editor", None)
    if run_editor is None:
        session.terminal.error(f"the editor is not installed: {TUI_HINT}")
        return EXIT_USAGE
    code = run_editor(session.location, catalog=session.args.catalog,
                      read_only=session.args.read_only)
    return int(code or 0)


COMMANDS: dict[str | None, Handler] = {
    None: cmd_tui,
    "tui": cmd_tui,
    "list": cmd_list,
    "get": cmd_get,
    "set": cmd_set,
    "lock": cmd_lock,
    "unlock": cmd_unlock,
    "remove": cmd_remove,
    "apply": cmd_apply,
    "validate": cmd_validate,
    "history": cmd_history,
    "watch": cmd_watch,
    "catalog": cmd_catalog,
    "migrate": cmd_migrate,
}


# -- entry point ----------------------------------------------------------------------------
class _CleanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return clean(super().format(record))


def _configure_logging() -> None:
    """The core's warnings (a history line that could not be written) as one-liners."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_CleanFormatter("modelboard: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False


def _error_text(error: ModelboardError, session: Session) -> str:
    if isinstance(error, LockedError | ConflictError | NotFoundError):
        return f"{_shown(session.location)}: {error}"  # say which store refused
    return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``modelboard`` with ``argv`` (default: the command line); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.actor is not None and (not args.actor.strip() or not args.actor.isprintable()):
        parser.error("--actor must be a non-empty name without control characters")
    terminal = Terminal(sys.stdout, sys.stderr)
    session = Session(args, terminal)
    _configure_logging()
    try:
        return COMMANDS[args.command](session)
    except ModelboardError as error:
        terminal.error(_error_text(error, session))
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
