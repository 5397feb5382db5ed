"""The store's operations on a real file: set, lock, remove, transactions, bulk, history,
conflicts between two stores, the actor, revisions and the lock-free read path."""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import filelock
import pytest

from modelboard.core import Catalog, SelectionStore, open_store
from modelboard.core.actor import default_actor
from modelboard.core.backend import StoredState
from modelboard.core.errors import (
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    LockedError,
    ModelboardError,
    NotFoundError,
    ValidationError,
)
from modelboard.core.filebackend import FileBackend


def file_models(path: Path) -> dict[str, str]:
    return {p: e["model_name"] for p, e in json.loads(path.read_text()).items()}


# -- set / lock / unlock / remove ---------------------------------------------------------
def test_set_returns_the_stored_selection(data_file: Path) -> None:
    store = open_store(data_file, actor="alice")
    before = datetime.now(UTC) - timedelta(seconds=1)
    selection = store.set_model_selection("openai", "gpt-4o")
    assert selection.model_name == "gpt-4o"
    assert selection.editable is True
    assert selection.updated_by == "alice"
    assert selection.last_updated is not None and selection.last_updated >= before
    assert store.get_model_selection("openai") == selection
    assert file_models(data_file) == {"openai": "gpt-4o"}


def test_set_validates_against_the_catalog_and_writes_nothing_when_invalid(
        data_file: Path) -> None:
    store = open_store(data_file)
    with pytest.raises(ValidationError, match="gpt-4o"):
        store.set_model_selection("openai", "gpt-4oo")
    with pytest.raises(ValidationError, match="unknown provider 'opena1'"):
        store.set_model_selection("opena1", "gpt-4o")
    assert not data_file.exists()


def test_lock_refuses_changes_naming_who_and_why(data_file: Path) -> None:
    store = open_store(data_file, actor="alice")
    store.set_model_selection("openai", "gpt-4o")
    locked = store.lock("openai", reason="incident 42")
    assert (locked.editable, locked.locked, locked.lock_reason) == (False, True, "incident 42")
    before = data_file.read_bytes()

    other = open_store(data_file, actor="bob")
    with pytest.raises(LockedError) as raised:
        other.set_model_selection("openai", "gpt-4.1")
    error = raised.value
    assert (error.provider, error.locked_by, error.reason) == ("openai", "alice", "incident 42")
    assert str(error) == "openai: selection is locked by alice: incident 42; unlock it first"
    with pytest.raises(LockedError):
        other.remove_model_selection("openai")
    assert data_file.read_bytes() == before

    unlocked = other.unlock("openai")
    assert unlocked.editable is True and unlocked.lock_reason is None
    assert other.set_model_selection("openai", "gpt-4.1").model_name == "gpt-4.1"
    stored = json.loads(data_file.read_text())["openai"]
    assert stored["editable"] is True and "lock_reason" not in stored


def test_lock_and_unlock_of_a_missing_provider_raise_not_found(data_file: Path) -> None:
    store = open_store(data_file)
    for attempt in (store.lock, store.unlock):
        with pytest.raises(NotFoundError) as raised:
            attempt("mistral")
        assert str(raised.value) == "mistral: no model selected"
        assert isinstance(raised.value, KeyError)
    assert not data_file.exists()


def test_removing_a_provider_with_no_selection_is_a_no_op(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    before = data_file.read_bytes()
    assert store.remove_model_selection("mistral") is None
    assert data_file.read_bytes() == before
    assert [entry.action for entry in store.history()] == ["set"]


def test_remove_deletes_the_entry_and_returns_what_it_was(data_file: Path) -> None:
    store = open_store(data_file)
    store.bulk_set_model_selections({"openai": "gpt-4o", "mistral": "mistral-large-latest"})
    removed = store.remove_model_selection("mistral")
    assert removed.model_name == "mistral-large-latest"
    assert store.get_model_selection("mistral") is None
    assert file_models(data_file) == {"openai": "gpt-4o"}


def test_lock_reason_and_actor_are_made_terminal_safe(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o", actor="eve\x1b[2J\nroot")
    assert json.loads(data_file.read_text())["openai"]["updated_by"] == "eve [2J root"
    assert open_store(data_file, actor="\x07bob").actor == "bob"
    store.lock("openai", reason="a\x1b[31m\nb")
    stored = json.loads(data_file.read_text())["openai"]
    assert stored["lock_reason"] == "a [31m b"
    with pytest.raises(LockedError) as raised:
        store.set_model_selection("openai", "gpt-4.1")
    assert str(raised.value).isprintable()


def test_error_messages_from_a_hand_edited_file_stay_on_one_safe_line(data_file: Path) -> None:
    data_file.parent.mkdir(parents=True)
    data_file.write_text(json.dumps({"openai": {
        "model_name": "gpt-4o", "editable": False,
        "updated_by": "mallory\x1b]0;owned\x07", "lock_reason": "line one\nline two"}}))
    store = open_store(data_file)
    with pytest.raises(LockedError) as locked:
        store.set_model_selection("openai", "gpt-4.1")
    assert str(locked.value).isprintable()
    assert "line one" in str(locked.value) and "line two" in str(locked.value)


# -- transactions and bulk ----------------------------------------------------------------
def test_transaction_writes_all_changes_at_once(data_file: Path) -> None:
    store = open_store(data_file)
    store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-3-opus"})
    writes_before = len(store.history())
    with store.transaction() as tx:
        tx.set_model_selection("openai", "gpt-4o-mini")
        tx.lock("anthropic")
        # Nothing is visible until the block ends.
        assert store.get_model_selection("openai").model_name == "gpt-4o"
        assert file_models(data_file)["openai"] == "gpt-4o"
    assert store.get_model_selection("openai").model_name == "gpt-4o-mini"
    assert store.get_model_selection("anthropic").editable is False
    revisions = {entry.revision for entry in store.history()[: len(store.history()) - writes_before]}
    assert revisions == {store.snapshot.revision}  # one write carried both changes


def test_exception_inside_a_transaction_writes_nothing(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    before = data_file.read_bytes()
    with pytest.raises(RuntimeError, match="changed my mind"), store.transaction() as tx:
        tx.set_model_selection("openai", "gpt-4.1")
        tx.set_model_selection("anthropic", "claude-3-opus")
        raise RuntimeError("changed my mind")
    assert data_file.read_bytes() == before
    assert store.get_model_selection("anthropic") is None
    assert len(store.history()) == 1


def test_failing_validation_inside_a_transaction_writes_nothing(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    before = data_file.read_bytes()
    with pytest.raises(ValidationError), store.transaction() as tx:
        tx.set_model_selection("anthropic", "claude-3-opus")
        tx.set_model_selection("mistral", "mistral-huge")
    assert data_file.read_bytes() == before


def test_failure_found_at_commit_writes_nothing(data_file: Path) -> None:
    store = open_store(data_file)
    store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-3-opus"})
    store.lock("anthropic")
    before = data_file.read_bytes()
    with pytest.raises(LockedError), store.transaction() as tx:
        tx.set_model_selection("openai", "gpt-4.1")       # fine on its own
        tx.set_model_selection("anthropic", "claude-3-haiku")  # locked
    with pytest.raises(NotFoundError), store.transaction() as tx:
        tx.set_model_selection("openai", "gpt-4.1")
        tx.unlock("cohere")
    assert data_file.read_bytes() == before
    assert store.get_model_selection("openai").model_name == "gpt-4o"


def test_bulk_set_is_all_or_nothing(data_file: Path) -> None:
    store = open_store(data_file)
    result = store.bulk_set_model_selections({"openai": "gpt-4", "anthropic": "claude-3-sonnet"})
    assert {p: s.model_name for p, s in result.items()} == {
        "openai": "gpt-4", "anthropic": "claude-3-sonnet"}
    before = data_file.read_bytes()
    with pytest.raises(ValidationError, match="nonexistent"):
        store.bulk_set_model_selections({"openai": "gpt-4o", "nonexistent": "x"})
    store.lock("anthropic")
    locked_before = data_file.read_bytes()
    with pytest.raises(LockedError):
        store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-3-opus"})
    assert data_file.read_bytes() == locked_before != before
    assert store.get_model_selection("openai").model_name == "gpt-4"


def test_service_bulk_reports_failure_and_writes_nothing(data_file: Path) -> None:
    from modelboard.core import ModelConfigService
    service = ModelConfigService(open_store(data_file))
    result = service.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-9"})
    assert result["success"] is False and result["results"] == {}
    assert "claude-9" in result["error"]
    assert not data_file.exists()
    ok = service.set_model_selection("openai", "gpt-4o")
    assert ok["success"] is True and ok["model_name"] == "gpt-4o"


# -- history ------------------------------------------------------------------------------
def test_history_is_newest_first_with_time_actor_old_and_new(data_file: Path) -> None:
    store = open_store(data_file, actor="alice")
    start = datetime.now(UTC) - timedelta(seconds=1)
    store.set_model_selection("openai", "gpt-4")
    store.set_model_selection("openai", "gpt-4o", actor="bob")
    store.lock("openai", reason="freeze", actor="carol")
    store.set_model_selection("anthropic", "claude-3-opus")
    store.remove_model_selection("anthropic")

    history = store.history()
    assert [(h.provider, h.action, h.actor, h.old, h.new) for h in history] == [
        ("anthropic", "remove", "alice", "claude-3-opus", None),
        ("anthropic", "set", "alice", None, "claude-3-opus"),
        ("openai", "lock", "carol", "gpt-4o", "gpt-4o"),
        ("openai", "set", "bob", "gpt-4", "gpt-4o"),
        ("openai", "set", "alice", None, "gpt-4"),
    ]
    assert all(h.time >= start for h in history)
    assert [h.time for h in history] == sorted((h.time for h in history), reverse=True)
    assert history[2].reason == "freeze"
    assert [h.new for h in store.history("openai", limit=2)] == ["gpt-4o", "gpt-4o"]
    # One JSON line per change, append-only, beside the data file.
    lines = data_file.with_name("model_selections.history.jsonl").read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["new"] == "gpt-4"


def test_history_survives_a_damaged_line(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4")
    with data_file.with_name("model_selections.history.jsonl").open("a") as history:
        history.write('{"time": "not a ti\n')
    store.set_model_selection("openai", "gpt-4o")
    assert [h.new for h in store.history()] == ["gpt-4o", "gpt-4"]


def test_actor_defaults_to_the_sudo_user_at_this_host(monkeypatch: pytest.MonkeyPatch,
                                                     data_file: Path) -> None:
    host = socket.gethostname().split(".")[0]
    assert default_actor() == f"tester@{host}"
    monkeypatch.setenv("SUDO_USER", "alice")
    assert default_actor() == f"alice@{host}"
    store = open_store(data_file)
    assert store.set_model_selection("openai", "gpt-4o").updated_by == f"alice@{host}"
    assert store.history()[0].actor == f"alice@{host}"
    monkeypatch.delenv("SUDO_USER")
    monkeypatch.delenv("LOGNAME")
    monkeypatch.setenv("USER", "bob")
    assert default_actor() == f"bob@{host}"


# -- conflicts between stores (threads of one process; processes are in test_concurrency) --
def test_stale_writer_to_another_provider_is_reapplied_on_top(data_file: Path) -> None:
    alice = open_store(data_file, actor="alice")
    bob = open_store(data_file, actor="bob")
    alice.set_model_selection("openai", "gpt-4o")
    bob.set_model_selection("anthropic", "claude-3-opus")   # bob never saw alice's write
    assert file_models(data_file) == {"openai": "gpt-4o", "anthropic": "claude-3-opus"}
    assert bob.get_model_selection("openai").model_name == "gpt-4o"


def test_stale_writer_to_the_same_provider_gets_a_conflict_naming_both(data_file: Path) -> None:
    alice = open_store(data_file, actor="alice")
    alice.set_model_selection("openai", "gpt-4")
    bob = open_store(data_file, actor="bob")
    alice.set_model_selection("openai", "gpt-4o")
    before = data_file.read_bytes()
    with pytest.raises(ConflictError) as raised:
        bob.set_model_selection("openai", "gpt-4.1")
    error = raised.value
    assert (error.provider, error.theirs, error.mine, error.theirs_by) == (
        "openai", "gpt-4o", "gpt-4.1", "alice")
    assert str(error) == ("openai: changed by alice to 'gpt-4o' since you read it; "
                          "your change to 'gpt-4.1' was not applied")
    assert data_file.read_bytes() == before
    # The conflict showed bob the latest state, so a deliberate retry goes through.
    assert bob.get_model_selection("openai").model_name == "gpt-4o"
    assert bob.set_model_selection("openai", "gpt-4.1").model_name == "gpt-4.1"


def test_expect_refuses_when_the_stored_value_differs(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    with pytest.raises(ConflictError) as raised:
        store.set_model_selection("openai", "gpt-4.1", expect="gpt-4")
    assert (raised.value.theirs, raised.value.mine) == ("gpt-4o", "gpt-4.1")
    with pytest.raises(ConflictError):
        store.set_model_selection("openai", "gpt-4.1", expect=None)  # "expect nothing set"
    assert store.set_model_selection("openai", "gpt-4.1", expect="gpt-4o").model_name == "gpt-4.1"
    assert store.set_model_selection("anthropic", "claude-3-opus",
                                     expect=None).model_name == "claude-3-opus"
    with pytest.raises(ConflictError):
        store.remove_model_selection("openai", expect="gpt-4o")
    assert file_models(data_file) == {"openai": "gpt-4.1", "anthropic": "claude-3-opus"}


def test_threads_writing_through_two_stores_lose_nothing(data_file: Path) -> None:
    stores = [open_store(data_file, actor=f"w{i}") for i in range(2)]
    providers = ["vllm", "ollama", "lmstudio", "openrouter"]
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        store = stores[index % 2]
        try:
            for n in range(40):
                store.set_model_selection(providers[index], f"m{index}-{n}")
        except BaseException as exc:  # surfaced by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert file_models(data_file) == {p: f"m{i}-39" for i, p in enumerate(providers)}
    assert len(stores[0].history()) == 160


# -- revisions and the read path ----------------------------------------------------------
def test_revision_changes_exactly_when_content_changes(data_file: Path) -> None:
    store = open_store(data_file)
    empty = store.snapshot.revision
    store.set_model_selection("openai", "gpt-4o")
    first = store.snapshot.revision
    first_content = store.snapshot.as_dict()
    assert first != empty
    store.set_model_selection("openai", "gpt-4o")  # same value: no write, same revision
    assert store.snapshot.revision == first
    assert len(store.history()) == 1
    store.unlock("openai")                          # already unlocked: nothing changes
    assert store.snapshot.revision == first

    # Reformatting the file by hand does not change the content, nor the revision.
    data = json.loads(data_file.read_text())
    data_file.write_text(json.dumps(data, indent=8))
    assert store.reload().revision == first
    assert open_store(data_file).snapshot.revision == first

    store.lock("openai", actor="bob")
    assert store.snapshot.revision not in (first, empty)
    store.unlock("openai", actor="bob")
    # Unlocked gpt-4o again, but updated by bob now: new content, new revision.
    assert store.snapshot.as_dict() != first_content
    assert store.snapshot.revision != first
    # And a revision is a function of content alone, however it was reached.
    assert store.snapshot.revision == open_store(data_file).snapshot.revision


def test_snapshot_held_by_a_reader_never_changes(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    held = store.snapshot
    store.set_model_selection("openai", "gpt-4.1")
    store.set_model_selection("anthropic", "claude-3-opus")
    assert dict(held.models()) == {"openai": "gpt-4o"}
    with pytest.raises(TypeError):
        held["openai"] = held["openai"]  # type: ignore[index]


def test_get_model_selection_takes_no_lock_and_does_no_io(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    backend = store.backend
    hold_file_lock = filelock.FileLock(backend.lock_path)  # type: ignore[attr-defined]
    release = threading.Event()
    holding = threading.Event()

    def hold_everything() -> None:
        with hold_file_lock, store._state_lock:
            holding.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold_everything)
    holder.start()
    try:
        assert holding.wait(timeout=10)
        data_file.unlink()
        os.rename(data_file.parent, data_file.parent.with_name("gone"))
        answers: list[str] = []
        reader = threading.Thread(target=lambda: answers.extend(
            store.get_model_selection("openai").model_name for _ in range(10_000)))
        reader.start()
        reader.join(timeout=10)
        assert answers == ["gpt-4o"] * 10_000
        assert store.get_model_selection("anthropic") is None
        assert store.get_all_selections()["openai"].model_name == "gpt-4o"
    finally:
        release.set()
        holder.join(timeout=10)


# -- catalog leniency at load, strictness at write and in validate -----------------------
def test_unknown_entries_load_with_warnings_writes_validate_what_they_change(
        data_file: Path) -> None:
    data_file.parent.mkdir(parents=True)
    data_file.write_text(json.dumps({"openai": "gpt-9000", "acme": "rocket-1",
                                     "anthropic": "claude-3-opus"}))
    store = open_store(data_file)
    assert store.load_error is None
    assert store.stored_snapshot["openai"].model_name == "gpt-9000"   # stored as it is,
    assert store.get_model_selection("openai") is None                # but never served
    warnings = store.warnings()
    assert len(warnings) == 2
    assert any("gpt-9000" in w for w in warnings) and any("acme" in w for w in warnings)

    store.set_model_selection("anthropic", "claude-3-haiku")   # untouched entries stay
    assert file_models(data_file) == {"openai": "gpt-9000", "acme": "rocket-1",
                                      "anthropic": "claude-3-haiku"}
    with pytest.raises(ValidationError):
        store.set_model_selection("openai", "gpt-9001")
    problems = store.validate()
    assert len(problems) == 2 and all(isinstance(p, ModelboardError) for p in problems)
    assert all(str(data_file) in str(p) for p in problems)

    strict = Catalog.from_mapping({"openai": ["gpt-9000"], "acme": ["rocket-1"],
                                   "anthropic": ["claude-3-haiku"]})
    assert open_store(data_file, catalog=strict).validate() == []


def test_a_later_expect_in_a_transaction_is_checked_against_the_earlier_operations(
        data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    before = data_file.read_bytes()
    with pytest.raises(ConflictError) as raised, store.transaction() as tx:
        tx.set_model_selection("openai", "gpt-4.1")
        tx.set_model_selection("openai", "o3", expect="gpt-4o")  # it is gpt-4.1 by then
    assert raised.value.theirs == "gpt-4.1" and raised.value.mine == "o3"
    assert data_file.read_bytes() == before
    with store.transaction() as tx:
        tx.set_model_selection("openai", "gpt-4.1")
        tx.set_model_selection("openai", "o3", expect="gpt-4.1")
    assert file_models(data_file) == {"openai": "o3"}


class _UnreachableOnce(FileBackend):
    """A backend whose first read fails as an unreachable server's would."""

    def load(self) -> StoredState:
        raise BackendUnavailableError_(str(self.location))


class BackendUnavailableError_(BackendUnavailableError, ConfigurationError):
    pass


def test_an_unreachable_backend_at_start_is_raised_not_treated_as_corrupt(
        data_file: Path) -> None:
    open_store(data_file).set_model_selection("openai", "gpt-4o")
    before = sorted(p.name for p in data_file.parent.iterdir())
    with pytest.raises(BackendUnavailableError):
        SelectionStore(_UnreachableOnce(data_file))
    assert sorted(p.name for p in data_file.parent.iterdir()) == before  # nothing copied aside
