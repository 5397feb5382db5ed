"""Regenerate the SVG pictures in ``screenshots/``: ``python -m modelboard.tui.screenshots``.

Each picture is the editor on a demo file, headless, at 100x28, with a fixed clock, so
the pictures only change when the editor's look does. The revisions picture has a demo of
its own: real writes through the store, each made at a fixed demo time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from textual.widgets import DataTable

from modelboard.core import SelectionStore, open_store
from modelboard.core.fleetreports import FileReportSink, ReaderReport

from .app import ModelboardApp
from .dialogs import BulkReview, ConflictScreen, HistoryScreen, ModelPicker
from .fleet import FleetScreen
from .revisions import RevisionsScreen, RollbackConfirm

__all__ = ["main", "render_all", "write_demo_fleet", "write_demo_revisions"]

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
SIZE = (100, 28)
DEMO: dict[str, dict[str, Any]] = {
    "anthropic": {"model_name": "claude-sonnet-4-5", "editable": False,
                  "last_updated": "2025-01-14T09:00:00+00:00", "updated_by": "bob@ops2",
                  "lock_reason": "pinned for the eval run"},
    "google": {"model_name": "gemini-2.5-pro", "editable": True,
               "last_updated": "2025-01-15T09:30:00+00:00", "updated_by": "carol@ops1"},
    "mistral": {"model_name": "mistral-large-latest", "editable": True,
                "last_updated": "2025-01-09T14:00:00+00:00", "updated_by": "deploy@ci"},
    "openai": {"model_name": "gpt-4o", "editable": True,
               "last_updated": "2025-01-15T11:57:00+00:00", "updated_by": "alice@ops1"},
    "vllm": {"model_name": "meta-llama/Llama-3.1-70B-Instruct", "editable": True,
             "last_updated": "2025-01-15T11:59:30+00:00", "updated_by": "alice@ops1"},
}
HISTORY = [
    ("2025-01-10T08:00:00+00:00", "alice@ops1", None, "gpt-4"),
    ("2025-01-13T10:00:00+00:00", "carol@ops1", "gpt-4", "gpt-4.1"),
    ("2025-01-15T11:57:00+00:00", "alice@ops1", "gpt-4.1", "gpt-4o"),
]

Scene = Callable[[Any], Awaitable[None]]


def _launch(store: SelectionStore, reason: str) -> None:
    store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5",
                                     "google": "gemini-2.5-pro",
                                     "mistral": "mistral-large-latest"}, reason=reason)


#: The revisions demo: (time, actor, reason, the write), oldest first.
REVISIONS: list[tuple[str, str, str | None, Callable[[SelectionStore, str | None], object]]] = [
    ("2025-01-10T08:00:00+00:00", "alice@ops1", "launch defaults",
     lambda store, reason: _launch(store, reason or "")),
    ("2025-01-13T10:00:00+00:00", "carol@ops1", "try 4.1 for latency",
     lambda store, reason: store.set_model_selection("openai", "gpt-4.1", reason=reason)),
    ("2025-01-14T09:00:00+00:00", "bob@ops2", None,
     lambda store, reason: store.lock("anthropic", reason="pinned for the eval run")),
    ("2025-01-15T09:30:00+00:00", "carol@ops1", "cost",
     lambda store, reason: store.set_model_selection("google", "gemini-2.5-flash",
                                                     reason=reason)),
    ("2025-01-15T11:57:00+00:00", "alice@ops1", "4.1 regressed",
     lambda store, reason: store.rollback(1, reason=reason)),
    ("2025-01-15T11:59:30+00:00", "deploy@ci", "new GPU node",
     lambda store, reason: store.set_model_selection(
         "vllm", "meta-llama/Llama-3.1-70B-Instruct", reason=reason)),
]


def write_demo_revisions(data_file: Path) -> None:
    """The revisions demo into ``data_file``: real writes through the store (numbered,
    hash-chained history lines), each made while the store's clock says its demo time."""
    data_file.parent.mkdir(parents=True, exist_ok=True)
    for when, actor, reason, write in REVISIONS:
        moment = datetime.fromisoformat(when)
        # The store stamps a write with modelboard.core.store.utc_now(); fixed here, and
        # only here, so that the picture does not change from one run to the next.
        store = open_store(data_file, actor=actor, report=False)
        try:
            with mock.patch("modelboard.core.store.utc_now", return_value=moment):
                write(store, reason)
        finally:
            store.close()


async def _until(pilot: Any, condition: Callable[[], object]) -> None:
    for _ in range(250):
        if condition():
            return
        await pilot.pause(0.02)
    raise RuntimeError("the editor did not reach the scene")


async def _cursor_on(pilot: Any, provider: str) -> None:
    app = pilot.app
    await _until(pilot, lambda: app.main.is_mounted and app.main.table.row_count)
    app.main.table.move_cursor(row=app.main.table.get_row_index(provider))
    await pilot.pause()


async def _main(pilot: Any) -> None:
    await _cursor_on(pilot, "openai")


async def _edit(pilot: Any) -> None:
    await _cursor_on(pilot, "openai")
    await pilot.press("e")
    await _until(pilot, lambda: isinstance(pilot.app.screen, ModelPicker))
    await pilot.press(*"gpt-4")


async def _bulk(pilot: Any) -> None:
    for provider in ("ollama", "vllm"):
        await _cursor_on(pilot, provider)
        await pilot.press("space")
    await pilot.press("b")
    await _until(pilot, lambda: isinstance(pilot.app.screen, ModelPicker))
    await pilot.press(*"llama3.3:70b", "enter")
    await _until(pilot, lambda: isinstance(pilot.app.screen, BulkReview))


async def _conflict(pilot: Any) -> None:
    await _cursor_on(pilot, "openai")
    pilot.app.push_screen(ConflictScreen(provider="openai", theirs="gpt-5",
                                         theirs_by="mallory@ops3", mine="gpt-4.1"))
    await _until(pilot, lambda: isinstance(pilot.app.screen, ConflictScreen))


async def _history(pilot: Any) -> None:
    await _cursor_on(pilot, "openai")
    await pilot.press("h")
    await _until(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen)
                 and pilot.app.screen.query_one("#history-table", DataTable).row_count)


async def _revisions(pilot: Any) -> None:
    await _until(pilot, lambda: pilot.app.main.is_mounted and pilot.app.main.table.row_count)
    await pilot.press("v")
    await _until(pilot, lambda: isinstance(pilot.app.screen, RevisionsScreen)
                 and pilot.app.screen.table.row_count)
    screen = pilot.app.screen
    screen.table.move_cursor(row=screen.table.get_row_index("2"))
    await pilot.pause()


async def _rollback(pilot: Any) -> None:
    await _revisions(pilot)
    await pilot.press("r")
    await _until(pilot, lambda: isinstance(pilot.app.screen, RollbackConfirm))


async def _fleet(pilot: Any) -> None:
    await _until(pilot, lambda: pilot.app.main.table.row_count)
    await pilot.press("f")
    await _until(pilot, lambda: isinstance(pilot.app.screen, FleetScreen)
                 and pilot.app.screen.query_one("#fleet-table", DataTable).row_count)


SCENES: dict[str, tuple[Scene, bool]] = {
    "main": (_main, False),
    "edit": (_edit, False),
    "bulk-review": (_bulk, False),
    "conflict": (_conflict, False),
    "history": (_history, False),
    "read-only": (_main, True),
    "fleet": (_fleet, False),
    "revisions": (_revisions, False),
    "rollback": (_rollback, False),
}
#: Scenes shown on the revisions demo rather than the main one.
ON_REVISIONS_DEMO = frozenset({"revisions", "rollback"})

#: The demo fleet: (name, host, pid, minutes since it loaded, what it serves, load error).
DEMO_FLEET = [
    ("proxy-eu-1", "eu-1", 4121, 3, "current", None),
    ("proxy-eu-2", "eu-2", 4187, 3, "current", None),
    ("proxy-eu-3", "eu-3", 77, 2900, "r2", None),
    ("proxy-us-1", "us-1", 9310, 3, "current", None),
    ("proxy-us-2", "us-2", 9377, 41, "current", "config/model_selections.json:4:18: "
                                                "Expecting ',' delimiter"),
    ("proxy-us-3", "us-3", 9402, 3, "current", None),
    ("batch-worker", "batch-1", 23011, 3, "current", None),
    ("proxy-ap-1", "ap-1", 5120, 120, "current", None),
]


def write_demo_fleet(data_file: Path, revision: str, now: datetime) -> None:
    """Reports of eight demo readers beside ``data_file``: one behind, one in error, one
    stale (its report last written half an hour ago), the others current."""
    sink = FileReportSink(data_file.resolve())
    for index, (name, host, pid, minutes, serves, error) in enumerate(DEMO_FLEET):
        loaded = now - timedelta(minutes=minutes)
        report = ReaderReport(
            id=f"{host}-{pid}-demo{index:02d}", host=host, pid=pid, name=name,
            store=sink.store_id, revision=revision if serves == "current" else serves,
            loaded_at=loaded, load_error=error, warnings=(), watching=True, version="0.1.0",
            started_at=loaded, sequence=1, interval_s=60.0, uid=os.geteuid(), written_at=now)
        sink.write(report)
        if name == "proxy-ap-1":  # silent for half an hour: stale
            path = sink.folder / f"{report.id}.json"
            then = path.stat().st_mtime - 1800
            os.utime(path, (then, then))



def _write_demo(folder: Path) -> Path:
    data_file = folder / "config" / "model_selections.json"
    data_file.parent.mkdir(parents=True)
    data_file.write_text(json.dumps(DEMO, indent=2, sort_keys=True) + "\n")
    lines = [json.dumps({"time": time, "actor": actor, "provider": "openai", "action": "set",
                         "old": old, "new": new, "revision": f"r{number}"})
             for number, (time, actor, old, new) in enumerate(HISTORY, start=1)]
    data_file.with_name("model_selections.history.jsonl").write_text("\n".join(lines) + "\n")
    return data_file


async def _render(name: str, scene: Scene, read_only: bool) -> str:
    store = open_store("config/model_selections.json", read_only=read_only,
                       actor="you@ops1")
    reason = "opened with --read-only" if read_only else None
    app = ModelboardApp(store, read_only_reason=reason, clock=lambda: NOW, watch=False,
                        cursor_blink=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await scene(pilot)
            await pilot.wait_for_scheduled_animations()
            await pilot.pause()
            return app.export_screenshot(title=f"modelboard — {name}")
    finally:
        store.close()


def render_all(out: Path) -> list[Path]:
    """Write one SVG per scene into ``out``; returns the files written."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    previous = Path.cwd()
    with tempfile.TemporaryDirectory() as folder, \
            tempfile.TemporaryDirectory() as revisions_folder:
        data_file = _write_demo(Path(folder))
        write_demo_fleet(data_file, open_store(data_file).snapshot.revision, NOW)
        write_demo_revisions(Path(revisions_folder) / "config" / "model_selections.json")
        try:
            for name, (scene, read_only) in SCENES.items():
                # The header shows the short, relative path an operator types.
                os.chdir(revisions_folder if name in ON_REVISIONS_DEMO else folder)
                path = out / f"{name}.svg"
                path.write_text(asyncio.run(_render(name, scene, read_only)))
                written.append(path)
        finally:
            os.chdir(previous)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelboard.tui.screenshots",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="screenshots", help="folder for the SVG files")
    args = parser.parse_args(argv)
    for path in render_all(Path(args.out)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
