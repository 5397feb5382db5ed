"""The rules of a change as one pure function, and the store over the in-memory backend.

No file is touched here: the rules take plain values, and the store runs on
MemoryBackend, which follows the same Backend contract as the file and Redis backends.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from modelboard.core import Catalog, Selection, SelectionStore
from modelboard.core.errors import (
    ConfigurationError,
    ConflictError,
    LockedError,
    NotFoundError,
    ValidationError,
)
from modelboard.core.memorybackend import MemoryBackend
from modelboard.core.rules import UNSET, Operation, apply

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CATALOG = Catalog.from_mapping({"openai": ["gpt-4o", "gpt-4.1"],
                                "anthropic": ["claude-3-opus", "claude-3-haiku"],
                                "ollama": None})
OPEN = Selection("gpt-4o", last_updated=NOW, updated_by="alice")
LOCKED = Selection("claude-3-opus", editable=False, last_updated=NOW, updated_by="bob",
                   lock_reason="launch")


def run(operations: list[Operation], current: dict[str, Selection],
        before: dict[str, Selection] | None = None) -> object:
    return apply(operations, current if before is None else before, current, CATALOG,
                 "carol", NOW)


# -- the pure function ----------------------------------------------------------------------
def test_a_set_returns_the_new_state_and_its_history_line() -> None:
    current = {"openai": OPEN}
    outcome = apply([Operation("set", "openai", "gpt-4.1")], current, current, CATALOG,
                    "carol", NOW)

    assert outcome.ok and outcome.changed
    assert outcome.selections == {"openai": Selection("gpt-4.1", last_updated=NOW,
                                                      updated_by="carol")}
    (entry,) = outcome.history
    assert (entry.actor, entry.provider, entry.action, entry.old, entry.new, entry.time) == (
        "carol", "openai", "set", "gpt-4o", "gpt-4.1", NOW)
    assert current == {"openai": OPEN}  # the inputs are not changed


def test_every_refusal_is_reported_not_just_the_first() -> None:
    current = {"openai": OPEN, "anthropic": LOCKED}
    operations = [Operation("set", "anthropic", "claude-3-haiku"),   # locked
                  Operation("set", "openai", "gpt-5"),               # not in the catalog
                  Operation("lock", "mistral"),                      # nothing to lock
                  Operation("set", "ollama", "llama3:8b"),           # fine
                  Operation("remove", "anthropic")]                  # locked

    outcome = apply(operations, current, current, CATALOG, "carol", NOW)

    assert not outcome.ok and not outcome.changed
    assert [(r.index, type(r.error)) for r in outcome.refusals] == [
        (0, LockedError), (1, ValidationError), (2, NotFoundError), (4, LockedError)]
    assert str(outcome.refusals[0].error) == (
        "anthropic: selection is locked by bob: launch; unlock it first")
    assert outcome.selections is current  # nothing applied


def test_stale_providers_are_refused_first_and_judged_no_further() -> None:
    before = {"openai": OPEN, "anthropic": LOCKED}
    current = {"openai": Selection("gpt-4.1", updated_by="dave"), "anthropic": LOCKED}
    operations = [Operation("set", "anthropic", "claude-3-haiku"),
                  Operation("set", "openai", "gpt-5")]  # stale, and not in the catalog

    outcome = apply(operations, before, current, CATALOG, "carol", NOW)

    assert [(r.index, type(r.error)) for r in outcome.refusals] == [
        (1, ConflictError), (0, LockedError)]
    conflict = outcome.refusals[0].error
    assert isinstance(conflict, ConflictError)
    assert (conflict.theirs, conflict.mine, conflict.theirs_by) == ("gpt-4.1", "gpt-5", "dave")


def test_metadata_moving_underneath_is_not_stale() -> None:
    before = {"openai": OPEN}
    current = {"openai": Selection("gpt-4o", last_updated=NOW, updated_by="someone-else")}
    assert apply([Operation("set", "openai", "gpt-4.1")], before, current, CATALOG,
                 "carol", NOW).ok


def test_expect_is_checked_against_the_stored_model_then_against_earlier_operations() -> None:
    current = {"openai": OPEN}
    assert apply([Operation("set", "openai", "gpt-4.1", expect="gpt-4o")], {}, current,
                 CATALOG, "carol", NOW).ok  # an explicit expect replaces what was read
    wrong = apply([Operation("set", "openai", "gpt-4.1", expect=None)], current, current,
                  CATALOG, "carol", NOW)
    assert [type(r.error) for r in wrong.refusals] == [ConflictError]

    chained = apply([Operation("set", "openai", "gpt-4.1", expect="gpt-4o"),
                     Operation("set", "openai", "gpt-4o", expect="gpt-4.1")],
                    current, current, CATALOG, "carol", NOW)
    assert chained.ok and [e.new for e in chained.history] == ["gpt-4.1", "gpt-4o"]
    broken = apply([Operation("set", "openai", "gpt-4.1", expect="gpt-4o"),
                    Operation("remove", "openai", expect="gpt-4o")],
                   current, current, CATALOG, "carol", NOW)
    assert [(r.index, type(r.error)) for r in broken.refusals] == [(1, ConflictError)]


def test_what_is_already_as_asked_changes_nothing() -> None:
    current = {"openai": OPEN, "anthropic": LOCKED}
    operations = [Operation("set", "openai", "gpt-4o"),
                  Operation("set", "anthropic", "claude-3-opus"),  # locked, but no change
                  Operation("remove", "mistral"),
                  Operation("unlock", "openai"),
                  Operation("lock", "anthropic", reason="launch")]

    outcome = apply(operations, current, current, CATALOG, "carol", NOW)

    assert outcome.ok and not outcome.changed and outcome.selections is current


def test_lock_and_unlock_keep_the_model_and_record_the_reason() -> None:
    current = {"openai": OPEN, "anthropic": LOCKED}
    outcome = apply([Operation("lock", "openai", reason="pinned"),
                     Operation("unlock", "anthropic")], current, current, CATALOG, "carol", NOW)

    assert outcome.selections["openai"] == Selection("gpt-4o", editable=False,
                                                     last_updated=NOW, updated_by="carol",
                                                     lock_reason="pinned")
    assert outcome.selections["anthropic"].editable
    assert outcome.selections["anthropic"].lock_reason is None
    assert [(e.action, e.old, e.new, e.reason) for e in outcome.history] == [
        ("lock", "gpt-4o", "gpt-4o", "pinned"), ("unlock", "claude-3-opus", "claude-3-opus", None)]


def test_a_set_keeps_the_fields_a_newer_version_wrote() -> None:
    current = {"openai": Selection("gpt-4o", extra={"tier": "gold"})}
    outcome = apply([Operation("set", "openai", "gpt-4.1")], current, current, CATALOG,
                    "carol", NOW)
    assert outcome.selections["openai"].extra == {"tier": "gold"}


def test_unset_is_one_sentinel() -> None:
    assert repr(UNSET) == "UNSET" and Operation("set", "openai", "gpt-4o").expect is UNSET


# -- the store on the in-memory backend -----------------------------------------------------
def test_check_is_a_dry_run_with_every_refusal() -> None:
    backend = MemoryBackend({"openai": OPEN, "anthropic": LOCKED})
    store = SelectionStore(backend, catalog=CATALOG, actor="carol")

    outcome = store.check([Operation("set", "anthropic", "claude-3-haiku"),
                           Operation("set", "openai", "nope")])

    assert [type(r.error) for r in outcome.refusals] == [LockedError, ValidationError]
    assert backend.load().selections == {"openai": OPEN, "anthropic": LOCKED}
    assert backend.read_history() == []


def test_writes_raise_the_first_refusal_and_store_nothing() -> None:
    backend = MemoryBackend({"anthropic": LOCKED})
    store = SelectionStore(backend, catalog=CATALOG, actor="carol")
    with pytest.raises(LockedError), store.transaction() as tx:
        tx.set_model_selection("openai", "gpt-4o")
        tx.set_model_selection("anthropic", "claude-3-haiku")
    assert set(backend.load().selections) == {"anthropic"}


def test_two_stores_on_one_backend_conflict_and_record_history() -> None:
    backend = MemoryBackend()
    alice = SelectionStore(backend, catalog=CATALOG, actor="alice")
    bob = SelectionStore(backend, catalog=CATALOG, actor="bob")
    alice.set_model_selection("openai", "gpt-4o")
    bob.reload()
    bob.set_model_selection("openai", "gpt-4.1")

    with pytest.raises(ConflictError) as raised:
        alice.set_model_selection("openai", "gpt-4o")  # alice still believes gpt-4o

    assert raised.value.theirs == "gpt-4.1" and raised.value.theirs_by == "bob"
    assert alice.get_model_selection("openai").model_name == "gpt-4.1"  # shown the latest
    history = alice.history("openai")
    assert [(e.actor, e.new) for e in history] == [("bob", "gpt-4.1"), ("alice", "gpt-4o")]
    assert history[0].revision == backend.load().revision


def test_a_watching_store_sees_another_stores_change_and_a_broken_state() -> None:
    backend = MemoryBackend({"openai": OPEN})
    reader = SelectionStore(backend, catalog=CATALOG)
    writer = SelectionStore(backend, catalog=CATALOG, actor="dave")
    events = []
    seen = threading.Event()

    def on_change(event: object) -> None:
        events.append(event)
        seen.set()

    reader.subscribe(on_change)
    with reader:
        writer.set_model_selection("openai", "gpt-4.1")
        assert seen.wait(5)
        assert reader.get_model_selection("openai").model_name == "gpt-4.1"
        seen.clear()
        backend.corrupt()
        assert seen.wait(5)
    reader.close()
    assert isinstance(events[-1].error, ConfigurationError)
    assert reader.get_model_selection("openai").model_name == "gpt-4.1"  # last good kept
