"""``modelboard notify``: deliver every revision to webhooks and hooks, or say how it goes."""

from __future__ import annotations

import signal
import textwrap
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..extras import install_hint
from ..opening import open_store, resolve_location
from ..store import SelectionStore
from ..text import escape, fit
from .session import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Session, quiet_log

if TYPE_CHECKING:
    from ..notifyconfig import NotifyConfig
    from ..notifystate import Elector, NotifyState

__all__ = ["cmd_notify"]


def _open(session: Session, config: NotifyConfig) -> tuple[SelectionStore, NotifyState,
                                                           Elector]:
    location = resolve_location(config.store) if config.store else session.location
    import logging

    with quiet_log(logging.CRITICAL):  # a bad file is said once, below
        store = open_store(location, catalog=session.catalog, actor=session.args.actor,
                           read_only=True, report=False)
    from ..notifystate import state_for

    state, elector = state_for(store.backend, state_dir=config.state_dir,
                               log_lines=config.log_lines, lease_ms=config.lease_ms)
    return store, state, elector


def cmd_notify(session: Session) -> int:
    # The notifier (httpx, signing, email.utils for Retry-After dates) is imported only
    # by this command: imported with the CLI, it was a sixth of `modelboard get`'s start.
    from ..notify import enable, status
    from ..notifyconfig import load_notify_config

    args = session.args
    config = load_notify_config(Path(args.config))
    if any(t.kind == "endpoint" for t in config.targets):
        try:
            import httpx  # noqa: F401 (only whether it is there)
        except ImportError:
            raise ConfigurationError(f"webhook endpoints need httpx: "
                                     f"{install_hint('notify')}", path=str(config.path)) from None
    store, state, elector = _open(session, config)
    try:
        if args.enable:
            done = enable(state, config, args.enable)
            if session.as_json:
                session.print_json({"target": args.enable, "enabled": True,
                                    "was_disabled": done})
                return EXIT_OK
            session.terminal.line(f"{escape(args.enable)}: " + (
                "enabled again; the running notifier sends to it within a few seconds"
                if done else "was not disabled"))
            return EXIT_OK
        if args.status:
            return _print_status(session, status(store, config, state, elector))
        if session.as_json:
            return session.refuse("--json goes with --status or --enable: a running notifier "
                                  "says what it does on stderr, and its delivery log is JSON "
                                  "lines", kind="usage", code=EXIT_USAGE)
        return _run(session, store, config, state, elector)
    finally:
        store.close()


def _run(session: Session, store: SelectionStore, config: NotifyConfig, state: NotifyState,
         elector: Elector) -> int:
    stopped = threading.Event()
    exit_code = [EXIT_OK]

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        exit_code[0] = EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_OK
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    terminal = session.terminal

    def say(text: str) -> None:
        terminal.note(escape(text))
        terminal.err.flush()

    if store.load_error is not None:
        say(f"{store.load_error}; delivering from the history meanwhile")
    from ..notify import Notifier

    Notifier(store, config, state, elector, say=say).run(stopped)
    return exit_code[0]


def _print_status(session: Session, report: dict[str, Any]) -> int:
    terminal = session.terminal
    if session.as_json:
        session.print_json(report)
        return EXIT_OK
    newest = report["newest_rev"] if report["newest_rev"] is not None else "none yet"
    terminal.line(f"store: {escape(report['store'])} (newest revision {newest})")
    terminal.line(f"delivering: {escape(report['deliverer'] or 'no notifier is running')}")
    for target in report["targets"]:
        cursor = target["cursor"] if target["cursor"] is not None else "not started"
        backlog = target["backlog"] if target["backlog"] is not None else "-"
        disabled = target["disabled"]
        state = (f"DISABLED since {_time(disabled.get('disabled_at'))} "
                 f"({disabled.get('message')})"
                 if disabled else "enabled")
        terminal.line(fit(escape(f"{target['kind']} {target['name']}: cursor {cursor}, "
                                 f"backlog {backlog}, {state}"), 80))
        last = target["last_attempt"]
        if last:
            text = (f"last attempt {_time(last.get('attempted_at'))}, rev {last.get('rev')} "
                    f"(attempt {last.get('attempt', 1)}): {last.get('answer')}")
            for line in textwrap.wrap(escape(text), 76):
                terminal.line("    " + line)
    return EXIT_OK


def _time(value: object) -> str:
    """An ISO time from the state as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return str(value)[:19].replace("T", " ") + " UTC" if value else "-"
