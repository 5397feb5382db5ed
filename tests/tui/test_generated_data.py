"""Whatever the core loads, the editor shows without an exception, and its table is the file.

Hypothesis generates selection documents and history files the core accepts (extreme and
naive dates, time zones, missing and unknown fields, odd types in history lines, long and
wide names), and Pilot drives the editor over them: sort, filter, history, edit, and a
live reload to a second document.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tui_helpers import fixed_clock, wait_for

from modelboard.core import Catalog, ModelboardError, SelectionStore, open_store
from modelboard.tui import ModelboardApp
from modelboard.tui.dialogs import HistoryScreen, ModelPicker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CATALOG = Catalog.default()
LISTED = sorted(p for p in CATALOG if not CATALOG[p].any_model)
OPEN = sorted(p for p in CATALOG if CATALOG[p].any_model)

_ZONES = [None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)),
          timezone(timedelta(hours=5, minutes=45))]
_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                 max_size=40)
_wide = st.sampled_from(["模型" * 30, "x" * 190, "\uff47\uff50\uff54\uff0d\uff14\uff4f", "[red]m[/red]", "a\u202eb"])


@st.composite
def stamps(draw: st.DrawFn) -> Any:
    """What a hand-edited last_updated may hold: dates at both ends, any zone, no zone,
    a date alone, or nothing."""
    moment = draw(st.one_of(
        st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59),
                         datetime(1970, 1, 1), datetime(2025, 1, 15, 11, 59)]),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))))
    zone = draw(st.sampled_from(_ZONES))
    if zone is not None:
        moment = moment.replace(tzinfo=zone)
    shape = draw(st.sampled_from(["iso", "date", "missing", "null"]))
    if shape == "date":
        return moment.date().isoformat()
    if shape == "missing":
        return ...
    if shape == "null":
        return None
    return moment.isoformat()


@st.composite
def entries(draw: st.DrawFn, provider: str) -> dict[str, Any]:
    spec = CATALOG.get(provider)
    if spec is not None and not spec.any_model and draw(st.booleans()):
        model = draw(st.sampled_from(spec.models))
    else:
        model = draw(st.one_of(_names, _wide))
    entry: dict[str, Any] = {"model_name": model}
    if draw(st.booleans()):
        entry["editable"] = draw(st.booleans())
    stamp = draw(stamps())
    if stamp is not ...:
        entry["last_updated"] = stamp
    if draw(st.booleans()):
        entry["updated_by"] = draw(st.one_of(_names, _wide))
    if draw(st.booleans()):
        entry["lock_reason"] = draw(st.one_of(_names, _wide))
    if draw(st.booleans()):
        entry["from_a_newer_version"] = draw(st.sampled_from([1, [1, 2], {"a": None}, "x"]))
    return entry


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.one_of(st.sampled_from(LISTED + OPEN), _names, _wide),
                           max_size=8, unique=True))
    return {provider: draw(entries(provider)) for provider in chosen}


_odd = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.booleans(),
                 st.lists(st.integers(), max_size=2), st.dictionaries(_names, st.integers(),
                                                                      max_size=2), _names)


@st.composite
def history_lines(draw: st.DrawFn, providers: list[str]) -> list[dict[str, Any]]:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        stamp = draw(stamps())
        line: dict[str, Any] = {
            "time": stamp if isinstance(stamp, str) else "2025-01-15T11:00:00+00:00",
            "provider": draw(st.sampled_from(providers)) if providers else "openai",
            "action": draw(st.sampled_from(["set", "lock", "unlock", "remove", "weird"])),
            "actor": draw(st.one_of(_names, _odd)),
            "old": draw(_odd), "new": draw(_odd), "revision": draw(st.one_of(_names, _odd))}
        if draw(st.booleans()):
            line["reason"] = draw(_odd)
        lines.append(line)
    return lines


def write_document(path: Path, document: dict[str, Any]) -> None:
    """Replace the file at once, as a deploy script or an editor with backups does."""
    temp = path.with_name(".incoming.json")
    temp.write_text(json.dumps(document, ensure_ascii=False, indent=2))
    os.replace(temp, path)


def loads_cleanly(path: Path) -> SelectionStore | None:
    try:
        store = open_store(path, actor="tester@host")
    except ModelboardError:
        return None
    if store.load_error is not None:
        store.close()
        return None
    return store


def table_is_the_store(app: ModelboardApp) -> bool:
    table = app.main.table
    snapshot = app.store.stored_snapshot  # the table shows what is stored
    return all(table.selection_of(p) == snapshot.get(p) for p in {*snapshot, *table.providers()})


async def drive(app: ModelboardApp, second: Path, second_document: dict[str, Any]) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.main.table
        for provider in table.providers():
            table.row_text(provider)  # every row draws
        for _ in range(3):
            await pilot.press("s")
        await pilot.press("slash", *"a1", "escape")
        for row in range(min(table.row_count, 3)):
            table.move_cursor(row=row)
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
            status = app.screen.query_one("#history-status")
            await wait_for(pilot, lambda status=status: "loading" not in str(status.render()),
                           what="the history read")
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.main, what="the table")
            if app.main.check_action("edit", ()) is True:
                await pilot.press("e")
                await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker), what="picker")
                await pilot.press(*"g4", "escape")
                await wait_for(pilot, lambda: app.screen is app.main, what="the table")
        # live: the file changes under the editor, sorted by whatever order it is in now
        await pilot.press("s")
        expected = loads_cleanly(second)
        assert expected is not None
        write_document(app.store.backend.path, second_document)  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: app.store.snapshot.revision == expected.snapshot.revision,
                       timeout=10, what="the reload")
        expected.close()
        await wait_for(pilot, lambda: table_is_the_store(app), what="the table to follow")
        for provider in table.providers():
            table.row_text(provider)
        assert not app.main.query_one("#fault").display, "a worker failed"


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.filter_too_much])
@given(first=documents(), second=documents(), data=st.data())
def test_the_editor_shows_whatever_the_core_loads(first: dict[str, Any],
                                                  second: dict[str, Any],
                                                  data: st.DataObject) -> None:
    import asyncio

    from hypothesis import assume

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model_selections.json"
        later = Path(folder) / "second" / "model_selections.json"
        later.parent.mkdir()
        write_document(path, first)
        write_document(later, second)
        history = data.draw(history_lines(list(first)))
        path.with_name("model_selections.history.jsonl").write_text(
            "".join(json.dumps(line) + "\n" for line in history))
        store = loads_cleanly(path)
        assume(store is not None)
        check = loads_cleanly(later)
        assume(check is not None)
        assert store is not None and check is not None
        check.close()
        try:
            app = ModelboardApp(store, clock=fixed_clock, watch=True, cursor_blink=False)
            asyncio.run(drive(app, later, second))
        finally:
            store.close()
