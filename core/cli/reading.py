"""Commands that only read: ``list``, ``get``, ``history`` and ``catalog``."""

from __future__ import annotations

from typing import Any

from ..catalog import Catalog
from ..models import Selection
from ..store import SelectionStore
from ..text import escape, fit
from .output import LINE_WIDTH, table, time_text
from .session import EXIT_OK, Session
from .shapes import catalog_entry_json, history_entry_json, selection_json

__all__ = ["cmd_catalog", "cmd_get", "cmd_history", "cmd_list"]


def _warn_unknown(session: Session, store: SelectionStore, only: str | None = None) -> None:
    """One line per stored entry the catalog rejects, saying what a proxy does with it."""
    for problem in store.problems():
        if only is not None and problem.provider != only:
            continue
        effect = ("still served (catalog drift: modelboard wrote it)" if problem.kind == "drift"
                  else "not served: a proxy keeps its last valid value, else its default")
        session.terminal.note(f"{store.location}: warning: {problem.reason}; {effect}")


def _marked(store: SelectionStore) -> dict[str, str]:
    """provider -> the mark ``list`` puts after a model the catalog rejects."""
    return {problem.provider: "(drift)" if problem.kind == "drift" else "(invalid, not served)"
            for problem in store.problems()}


def cmd_list(session: Session) -> int:
    store = session.open_for_reading()
    snapshot = store.stored_snapshot
    terminal = session.terminal
    providers = sorted(snapshot)
    marks = _marked(store)
    if session.as_json:
        problems = {problem.provider: problem for problem in store.problems()}
        session.print_json([selection_json(p, snapshot[p], problems.get(p))
                            for p in providers])
    elif providers:
        rows = [(provider, f"{selection.model_name} {marks[provider]}" if provider in marks
                 else selection.model_name, _lock_text(selection),
                 time_text(selection.last_updated), selection.updated_by or "")
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
    selection = store.stored_snapshot.get(provider)  # what is stored; a warning says the rest
    _warn_unknown(session, store, only=provider)
    if selection is None:
        hint = ""
        if provider not in session.catalog:
            close = session.catalog.close_providers(provider)
            hint = f"; unknown provider, did you mean {close[0]!r}?" if close else \
                "; the catalog does not know it either"
        return session.refuse(f"{store.location}: {provider}: no model selected{hint}",
                              kind="not_found")
    if session.as_json:
        problem = next((p for p in store.problems() if p.provider == provider), None)
        session.print_json(selection_json(provider, selection, problem))
    else:
        session.terminal.line(escape(selection.model_name))
    return EXIT_OK


def cmd_history(session: Session) -> int:
    store = session.open_for_reading()
    entries = store.history(session.args.provider, limit=session.args.limit)
    terminal = session.terminal
    if session.as_json:
        session.print_json([history_entry_json(entry) for entry in entries])
        return EXIT_OK
    if not entries:
        terminal.note(f"{store.location}: no history"
                      + (f" for {session.args.provider}" if session.args.provider else ""))
        return EXIT_OK
    rows = [(time_text(entry.time), entry.actor, entry.provider, entry.action,
             entry.describe()) for entry in entries]
    headers = ("TIME (UTC)", "BY", "PROVIDER", "ACTION", "CHANGE")
    for line in table(terminal, headers, rows, shrink=((4, 28), (1, 10), (4, 16), (2, 8))):
        terminal.line(line)
    return EXIT_OK


def cmd_catalog(session: Session) -> int:
    import textwrap  # this command only

    catalog = session.catalog
    terminal = session.terminal
    provider = session.args.provider
    if provider is not None:
        catalog.validate(provider)
        spec = catalog[provider]
        if session.as_json:
            session.print_json(_spec_json(provider, catalog))
        elif spec.any_model:
            terminal.line("(any model name)")
        else:
            for model in spec.models:
                terminal.line(escape(model))
        return EXIT_OK
    providers = sorted(catalog)
    if session.as_json:
        session.print_json([_spec_json(name, catalog) for name in providers])
        return EXIT_OK
    name_width = min(max(map(len, providers), default=0), 20)
    for name in providers:
        spec = catalog[name]
        models = "(any model name)" if spec.any_model else ", ".join(
            fit(escape(model), 40) for model in spec.models)
        wrapped = textwrap.wrap(models, LINE_WIDTH - name_width - 2, break_on_hyphens=False)
        label = terminal.style(fit(escape(name), name_width).ljust(name_width), "bold")
        terminal.line(f"{label}  {wrapped[0] if wrapped else ''}".rstrip())
        for rest in wrapped[1:]:
            terminal.line(" " * (name_width + 2) + rest)
    return EXIT_OK


def _spec_json(provider: str, catalog: Catalog) -> dict[str, Any]:
    spec = catalog[provider]
    return catalog_entry_json(provider, spec.models, spec.any_model)
