"""One hash field per provider: a write stores and announces only what it changed, watchers
apply deltas and read everything again on any gap; hand edits of a field; the old single
document moved into the hash by the next write."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import queue
import time
from collections.abc import Callable

import pytest
import redis
from redis_server import RedisServer, stored_document

from modelboard.core import (
    Catalog,
    ChangeEvent,
    ConflictError,
    SelectionStore,
    open_store,
    redisbackend,
)
from modelboard.core.fileformat import render_document
from modelboard.core.models import HistoryEntry, Selection, utc_now
from modelboard.core.redisbackend import entry_value, revision_of

EVENT_TIMEOUT_S = 10
HAND_EDIT_S = 1.0


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.005)


def next_event(events: queue.Queue[ChangeEvent],
               condition: Callable[[ChangeEvent], bool]) -> ChangeEvent:
    while True:
        event = events.get(timeout=EVENT_TIMEOUT_S)
        if condition(event):
            return event


def serving(model: str) -> Callable[[ChangeEvent], bool]:
    return lambda event: event.new.get("openai") is not None and \
        event.new["openai"].model_name == model


def next_message(pubsub: redis.client.PubSub) -> bytes:
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None and message["type"] == "message":
            return bytes(message["data"])
    raise AssertionError("no change message")


def test_a_write_stores_and_announces_only_the_provider_it_changes(
        redis_server: RedisServer, redis_url: str, redis_key: str) -> None:
    names = [f"p{n:03d}" for n in range(200)]
    store = open_store(redis_url, catalog=Catalog.from_mapping(dict.fromkeys(names)))
    store.bulk_set_model_selections(dict.fromkeys(names, "m"))
    client = redis_server.client()
    before = client.hgetall(f"{redis_key}:selections")
    pubsub = client.pubsub()
    pubsub.subscribe(f"{redis_key}:changes")
    store.set_model_selection("p007", "gpt-4o")
    message = json.loads(next_message(pubsub))
    assert message["rev"] == 2 and message["revision"] == store.snapshot.revision
    assert message["changes"] == {"p007": entry_value(store.snapshot["p007"]).decode()}
    after = client.hgetall(f"{redis_key}:selections")
    assert {name for name in after if after[name] != before[name]} == {b"p007"}
    assert client.hget(f"{redis_key}:backup", "p007") == after[b"p007"]
    assert client.get(f"{redis_key}:counter") == b"2"
    # The chain head the message names is the hash of the entry just appended.
    ((_id, fields),) = client.xrevrange(f"{redis_key}:history", count=1)
    assert json.loads(fields[b"entry"])["hash"] == message["head"]
    store.remove_model_selection("p007")
    assert json.loads(next_message(pubsub))["changes"] == {"p007": None}
    assert not client.hexists(f"{redis_key}:selections", "p007")
    pubsub.close()


def test_a_watcher_applies_the_delta_it_hears_then_reads_again_when_the_check_differs(
        redis_server: RedisServer, redis_url: str, redis_key: str) -> None:
    """A delta published by hand, never stored: the watcher serves it at once (it read
    nothing), and the periodic check, finding the stored content differs, reloads."""
    writer = open_store(redis_url)
    writer.bulk_set_model_selections({"openai": "gpt-4o", "mistral": "codestral-latest"})
    reader = open_store(redis_url, read_only=True)
    events: queue.Queue[ChangeEvent] = queue.Queue()
    reader.subscribe(events.put)
    announced = Selection("o3", last_updated=utc_now(), updated_by="nobody")
    claimed = {**writer.snapshot.as_dict(), "openai": announced}
    with reader:
        redis_server.client().publish(f"{redis_key}:changes", json.dumps({
            "rev": 2, "revision": revision_of(claimed), "head": "0" * 64,
            "changes": {"openai": entry_value(announced).decode()}}))
        delta = next_event(events, serving("o3"))
        assert [change.provider for change in delta.changes] == ["openai"]
        assert delta.new.revision == revision_of(claimed)
        restored = next_event(events, serving("gpt-4o"))
        assert restored.new.revision == writer.snapshot.revision
    reader.close()


@pytest.mark.parametrize("announcement", [
    pytest.param(lambda counter: json.dumps({"rev": counter + 2, "revision": "x",
                                             "changes": {}}), id="a-number-skipped"),
    pytest.param(lambda counter: "not json", id="unreadable"),
    pytest.param(lambda counter: json.dumps({"rev": counter + 1, "revision": "not this",
                                             "head": "", "changes": {}}),
                 id="another-content-hash"),
])
def test_any_gap_makes_the_watcher_read_everything(
        redis_server: RedisServer, redis_url: str, redis_key: str,
        monkeypatch: pytest.MonkeyPatch, announcement: Callable[[int], str]) -> None:
    monkeypatch.setattr(redisbackend, "HAND_EDIT_POLL_S", 3600)  # no periodic rescue
    monkeypatch.setattr(redisbackend, "RESYNC_INTERVAL_S", 3600)
    writer = open_store(redis_url)
    writer.set_model_selection("openai", "gpt-4o")
    reader = open_store(redis_url, read_only=True)
    events: queue.Queue[ChangeEvent] = queue.Queue()
    reader.subscribe(events.put)
    client = redis_server.client()
    with reader:
        edited = entry_value(Selection("gpt-4.1"))
        with client.pipeline() as pipe:  # changed by hand, then a message that does not fit
            pipe.hset(f"{redis_key}:selections", "openai", edited)
            pipe.incr(f"{redis_key}:counter")
            pipe.execute()
        client.publish(f"{redis_key}:changes", announcement(1))
        next_event(events, serving("gpt-4.1"))
    reader.close()


def test_a_field_set_by_hand_right_after_a_write_reaches_a_watcher_within_a_second(
        redis_server: RedisServer, redis_url: str, redis_key: str) -> None:
    """Without keyspace notifications: the watcher applied the write's delta (so it does
    not know the server's digest of the new content) and must still notice the edit."""
    client = redis_server.client()
    client.config_set("notify-keyspace-events", "")
    writer = open_store(redis_url, actor="ops")
    writer.bulk_set_model_selections({"openai": "gpt-4o", "mistral": "codestral-latest"})
    with open_store(redis_url) as watcher:
        wait_for(lambda: watcher.watching, HAND_EDIT_S)
        for model, by_hand in (("o3", "mistral-large-latest"),
                               ("o4-mini", "mistral-small-latest")):
            writer.set_model_selection("openai", model)
            wait_for(lambda m=model: watcher.model_for("openai", "x") == m, HAND_EDIT_S)
            client.hset(f"{redis_key}:selections", "mistral",
                        json.dumps({"model_name": by_hand, "editable": True}))
            wait_for(lambda m=by_hand: watcher.model_for("mistral", "x") == m, HAND_EDIT_S)


@pytest.mark.parametrize("notifications", ["", "Kh"])
def test_a_field_set_by_hand_reaches_a_watcher_within_a_second(
        redis_server: RedisServer, redis_url: str, redis_key: str, notifications: str) -> None:
    client = redis_server.client()
    client.config_set("notify-keyspace-events", notifications)
    try:
        writer = open_store(redis_url, actor="ops")
        writer.bulk_set_model_selections({"openai": "gpt-4o", "mistral": "codestral-latest"})
        with open_store(redis_url) as watcher:
            client.hset(f"{redis_key}:selections", "openai", '{"model_name": "gpt-4.1"}')
            wait_for(lambda: watcher.model_for("openai", "x") == "gpt-4.1", HAND_EDIT_S)

            client.hset(f"{redis_key}:selections", "openai", '{"model_name": ')  # a bad edit
            wait_for(lambda: watcher.load_error is not None, HAND_EDIT_S)
            assert "field 'openai'" in str(watcher.load_error)
            assert "\n" not in str(watcher.load_error)
            assert watcher.model_for("openai", "x") == "gpt-4.1"

            client.hset(f"{redis_key}:selections", "openai", '{"model_name": "o3"}')  # fixed
            wait_for(lambda: watcher.model_for("openai", "x") == "o3", HAND_EDIT_S)
            assert watcher.load_error is None
            assert watcher.model_for("mistral", "x") == "codestral-latest"
        # A write on top keeps the hand edit of the other provider, and records its own.
        writer.reload()
        writer.set_model_selection("mistral", "mistral-large-latest")
        assert open_store(redis_url).snapshot.models() == {
            "openai": "o3", "mistral": "mistral-large-latest"}
    finally:
        client.config_set("notify-keyspace-events", "")


def test_a_writer_never_overwrites_a_field_changed_by_hand_unseen(
        redis_server: RedisServer, redis_url: str, redis_key: str) -> None:
    store = open_store(redis_url)
    store.set_model_selection("openai", "gpt-4o")
    redis_server.client().hset(f"{redis_key}:selections", "openai",
                               entry_value(Selection("gpt-4.1", updated_by="hand")))
    with pytest.raises(ConflictError) as caught:
        store.set_model_selection("openai", "o3")  # judged on what is stored now
    assert caught.value.theirs == "gpt-4.1"
    assert open_store(redis_url).get_model_selection("openai").model_name == "gpt-4.1"


def old_layout(client: redis.Redis, key: str) -> dict[str, Selection]:
    """A store as versions before one field per provider kept it: one string document,
    a string backup, the counter and an unchained history."""
    selections = {"openai": Selection("gpt-4o", updated_by="alice"),
                  "anthropic": Selection("claude-sonnet-4-5", editable=False,
                                         updated_by="bob", lock_reason="launch")}
    document = render_document(selections)
    client.set(f"{key}:document", document)
    client.set(f"{key}:backup", document)
    client.set(f"{key}:counter", 2)
    for number, (provider, model) in enumerate([("openai", "gpt-4o"),
                                                 ("anthropic", "claude-sonnet-4-5")], 1):
        entry = HistoryEntry(utc_now(), "alice", provider, "set", None, model, "r",
                             number=number)
        client.xadd(f"{key}:history", {"entry": json.dumps(entry.to_json())})
    return selections


def test_the_old_single_document_is_read_and_moved_into_the_hash_by_the_next_write(
        redis_server: RedisServer, redis_url: str, redis_key: str) -> None:
    client = redis_server.client()
    selections = old_layout(client, redis_key)
    old_document = client.get(f"{redis_key}:document")
    watcher = open_store(redis_url, read_only=True)
    events: queue.Queue[ChangeEvent] = queue.Queue()
    watcher.subscribe(events.put)
    with watcher:
        store = open_store(redis_url, actor="carol")
        assert dict(store.snapshot) == selections
        assert [e.number for e in store.history()] == [2, 1]
        store.set_model_selection("openai", "gpt-4.1")
        next_event(events, serving("gpt-4.1"))
        assert watcher.get_model_selection("anthropic").lock_reason == "launch"
    watcher.close()
    assert not client.exists(f"{redis_key}:document")
    assert client.get(f"{redis_key}:migrated:document") == old_document
    assert client.get(f"{redis_key}:migrated:backup") == old_document
    assert client.type(f"{redis_key}:backup") == b"hash"
    assert stored_document(client, redis_key) == render_document(store.snapshot)
    assert client.get(f"{redis_key}:counter") == b"3"
    assert [e.number for e in store.history()] == [3, 2, 1]
    verified = store.backend.verify_history()  # type: ignore[attr-defined]
    assert verified.ok and verified.revisions == 3 and verified.lines == 3
    # From now on a write touches one field.
    store.set_model_selection("openai", "o3")
    assert open_store(redis_url).snapshot.models() == {"openai": "o3",
                                                       "anthropic": "claude-sonnet-4-5"}


def _follow_in_child(store: SelectionStore, conn: multiprocessing.connection.Connection) -> None:
    """A forked worker: report what its store serves once it serves what it is told."""
    wanted = conn.recv()
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while store.model_for("openai", "none") != wanted and time.monotonic() < deadline:
        time.sleep(0.002)
    conn.send(store.model_for("openai", "none"))


def test_a_watching_store_forked_keeps_applying_deltas_in_the_child(redis_url: str) -> None:
    writer = open_store(redis_url, actor="ops")
    writer.set_model_selection("openai", "gpt-4o")
    store = open_store(redis_url, watch=True)
    context = multiprocessing.get_context("fork")
    parent_end, child_end = context.Pipe()
    child = context.Process(target=_follow_in_child, args=(store, child_end))
    child.start()
    try:
        for model in ("gpt-4.1", "o3"):
            writer.set_model_selection("openai", model)
        parent_end.send("o3")
        assert parent_end.poll(EVENT_TIMEOUT_S + 5)
        assert parent_end.recv() == "o3"
        wait_for(lambda: store.model_for("openai", "none") == "o3", EVENT_TIMEOUT_S)
    finally:
        child.join(EVENT_TIMEOUT_S)
        store.close()
