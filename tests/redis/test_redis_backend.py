"""The Redis backend in one process: same format, same guarantees as the file backend."""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from redis_server import RedisServer, free_port, self_signed_certificate, stored_document

from modelboard.core import (
    ChangeEvent,
    ConfigurationError,
    ConflictError,
    LockedError,
    ReadOnlyError,
    open_store,
)
from modelboard.core.errors import BackendUnavailableError
from modelboard.core.fileformat import render_document
from modelboard.core.redisbackend import RedisBackend, entry_value, mask_password, revision_of

EVENT_TIMEOUT_S = 10


def keys_of(server: RedisServer, prefix: str) -> dict[bytes, bytes]:
    """Every key under the prefix with its serialized value."""
    client = server.client()
    found = {key: client.dump(key) for key in client.scan_iter(match=f"{prefix}:*")}
    client.close()
    return found


def next_event(events: queue.Queue[ChangeEvent], condition) -> ChangeEvent:  # type: ignore[no-untyped-def]
    """The first event satisfying ``condition``, waiting at most EVENT_TIMEOUT_S."""
    while True:
        event = events.get(timeout=EVENT_TIMEOUT_S)
        if condition(event):
            return event


def test_one_field_per_provider_together_byte_for_byte_the_file_format(
        redis_server: RedisServer, redis_url: str, redis_key: str, data_file: Path) -> None:
    store = open_store(redis_url)
    store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"})
    store.lock("anthropic", reason="pinned for the launch")
    client = redis_server.client()
    fields = client.hgetall(f"{redis_key}:selections")
    assert sorted(fields) == [b"anthropic", b"openai"]
    assert fields[b"anthropic"] == entry_value(store.snapshot["anthropic"])
    assert json.loads(fields[b"anthropic"])["lock_reason"] == "pinned for the launch"
    document = stored_document(client, redis_key)
    assert document == render_document(store.snapshot)
    assert store.snapshot.revision == revision_of(store.snapshot)
    assert not client.exists(f"{redis_key}:document")
    # The file backend, given the same document, holds the same selections.
    data_file.parent.mkdir(parents=True)
    data_file.write_bytes(document)
    from_file = open_store(data_file)
    assert dict(from_file.snapshot) == dict(store.snapshot)


def test_counter_grows_by_one_per_write_and_not_on_a_no_op(redis_server: RedisServer,
                                                           redis_url: str,
                                                           redis_key: str) -> None:
    store = open_store(redis_url)
    client = redis_server.client()
    store.set_model_selection("openai", "gpt-4o")
    assert client.get(f"{redis_key}:counter") == b"1"
    store.set_model_selection("openai", "gpt-4o")  # already so: nothing written
    assert client.get(f"{redis_key}:counter") == b"1"
    store.set_model_selection("openai", "gpt-5")
    store.bulk_set_model_selections({"openai": "o3", "mistral": "codestral-latest"})
    assert client.get(f"{redis_key}:counter") == b"3"
    assert store.backend.token()[0] == 3  # type: ignore[index]  # (counter, content hash)


def test_history_has_the_file_history_shape(redis_server: RedisServer, redis_url: str,
                                            redis_key: str) -> None:
    store = open_store(redis_url, actor="alice@ops")
    store.set_model_selection("openai", "gpt-4o")
    store.set_model_selection("openai", "gpt-5")
    store.lock("openai", reason="cost review")
    store.set_model_selection("mistral", "codestral-latest")
    entries = store.history()
    assert [(e.provider, e.action, e.old, e.new) for e in entries] == [
        ("mistral", "set", None, "codestral-latest"),
        ("openai", "lock", "gpt-5", "gpt-5"),
        ("openai", "set", "gpt-4o", "gpt-5"),
        ("openai", "set", None, "gpt-4o"),
    ]
    assert entries[0].revision == store.snapshot.revision
    assert entries[1].reason == "cost review" and entries[1].actor == "alice@ops"
    assert [e.new for e in store.history("openai", limit=2)] == ["gpt-5", "gpt-5"]
    assert len(store.history(limit=3)) == 3
    # Each stream entry holds exactly what a line of the file history holds: its record,
    # then the hash chain (each entry's prev is the hash of the one before).
    raw = redis_server.client().xrange(f"{redis_key}:history")
    records = [json.loads(fields[b"entry"]) for _, fields in raw]
    assert [{k: v for k, v in r.items() if k not in ("prev", "hash")} for r in records] == \
        [e.to_json() for e in reversed(entries)]
    assert records[0]["prev"].startswith("genesis:")
    assert [r["prev"] for r in records[1:]] == [r["hash"] for r in records[:-1]]


def test_history_filter_pages_through_a_long_stream(redis_url: str) -> None:
    store = open_store(redis_url)
    with store.transaction() as tx:  # one write, 700 history entries: over a page of 500
        for number in range(700):
            tx.set_model_selection("vllm", f"model-{number}")
    store.set_model_selection("openai", "gpt-4o")
    assert [e.new for e in store.history("vllm", limit=2)] == ["model-699", "model-698"]
    assert len(store.history("vllm")) == 700
    assert store.history("openai")[0].new == "gpt-4o"


def test_stale_writer_on_the_same_provider_gets_a_conflict(redis_url: str) -> None:
    alice = open_store(redis_url, actor="alice")
    alice.set_model_selection("vllm", "qwen3")
    bob = open_store(redis_url, actor="bob")  # loaded before alice's next change
    alice.set_model_selection("openai", "gpt-4o")
    with pytest.raises(ConflictError) as caught:
        bob.set_model_selection("openai", "gpt-5")
    assert caught.value.theirs == "gpt-4o" and caught.value.theirs_by == "alice"
    # Another provider: bob's change lands on top of alice's, nothing lost.
    bob.set_model_selection("mistral", "codestral-latest")
    assert open_store(redis_url).snapshot.models() == {"openai": "gpt-4o", "vllm": "qwen3",
                                                       "mistral": "codestral-latest"}


def test_a_lock_set_on_one_store_stops_another(redis_url: str) -> None:
    alice = open_store(redis_url)
    alice.set_model_selection("openai", "gpt-4o")
    bob = open_store(redis_url)
    alice.lock("openai", reason="incident 42")
    bob.reload()
    with pytest.raises(LockedError, match="incident 42"):
        bob.set_model_selection("openai", "gpt-5")
    assert open_store(redis_url).get_model_selection("openai").model_name == "gpt-4o"


def test_watching_store_sees_writes_of_another(redis_url: str) -> None:
    writer = open_store(redis_url)
    reader = open_store(redis_url, read_only=True)
    events: queue.Queue[ChangeEvent] = queue.Queue()
    reader.subscribe(events.put)
    with reader:
        writer.set_model_selection("openai", "gpt-4o")
        event = next_event(events, lambda e: e.changes)
    assert [(c.provider, c.kind, c.new.model_name) for c in event.changes] == \
        [("openai", "added", "gpt-4o")]
    assert event.source == "external"
    assert reader.get_model_selection("openai").model_name == "gpt-4o"
    reader.close()


def test_read_only_store_writes_nothing(redis_server: RedisServer, redis_url: str,
                                        redis_key: str) -> None:
    open_store(redis_url).set_model_selection("openai", "gpt-4o")
    before = keys_of(redis_server, redis_key)
    reader = open_store(redis_url, read_only=True)
    with pytest.raises(ReadOnlyError, match="read-only"):
        reader.set_model_selection("openai", "gpt-5")
    assert keys_of(redis_server, redis_key) == before


def test_corrupt_document_is_copied_aside_and_the_backup_is_used(
        redis_server: RedisServer, redis_url: str, redis_key: str) -> None:
    open_store(redis_url).bulk_set_model_selections({"openai": "gpt-4o", "mistral":
                                                     "codestral-latest"})
    client = redis_server.client()
    client.set(f"{redis_key}:document", b'{"openai": {"model_name": ')
    client.incr(f"{redis_key}:counter")
    store = open_store(redis_url)
    assert store.load_error is not None
    assert f"{redis_key}:document" in str(store.load_error)
    assert "\n" not in str(store.load_error)
    corrupt = [k for k in client.keys(f"{redis_key}:corrupt:*")]
    assert len(corrupt) == 1
    assert client.get(corrupt[0]) == b'{"openai": {"model_name": '
    assert corrupt[0].decode() in store.recovery_notice
    assert store.snapshot.models() == {"openai": "gpt-4o", "mistral": "codestral-latest"}
    # The next write builds on the last good state: mistral is not lost.
    store.set_model_selection("openai", "gpt-5")
    assert open_store(redis_url).snapshot.models() == {"openai": "gpt-5",
                                                       "mistral": "codestral-latest"}


def test_corrupt_document_while_watching_keeps_the_last_good_state(
        redis_server: RedisServer, redis_url: str, redis_key: str) -> None:
    writer = open_store(redis_url)
    writer.set_model_selection("openai", "gpt-4o")
    reader = open_store(redis_url, read_only=True)
    events: queue.Queue[ChangeEvent] = queue.Queue()
    reader.subscribe(events.put)
    client = redis_server.client()
    with reader:
        with client.pipeline() as pipe:  # a bad hand edit, announced like a write
            pipe.set(f"{redis_key}:document", b"[1, 2")
            pipe.incr(f"{redis_key}:counter")
            pipe.publish(f"{redis_key}:changes", b"2 hand-edit")
            pipe.execute()
        error_event = next_event(events, lambda e: e.error is not None)
        assert isinstance(error_event.error, ConfigurationError)
        assert reader.get_model_selection("openai").model_name == "gpt-4o"
        assert reader.load_error is not None
        # A writer refuses to build on what it cannot read, and writes nothing.
        with pytest.raises(ConfigurationError):
            writer.set_model_selection("openai", "gpt-5")
        assert client.get(f"{redis_key}:document") == b"[1, 2"
        with client.pipeline() as pipe:  # the operator fixes it
            pipe.set(f"{redis_key}:document", render_document(writer.snapshot))
            pipe.incr(f"{redis_key}:counter")
            pipe.publish(f"{redis_key}:changes", b"3 fixed")
            pipe.execute()
        next_event(events, lambda e: e.error is None)
        assert reader.load_error is None
    reader.close()


def test_location_masks_the_password() -> None:
    assert mask_password("redis://alice:s3cret@127.0.0.1:1/0?key=fleet") == \
        "redis://alice:***@127.0.0.1:1/0?key=fleet"
    assert mask_password("redis://:pw@host:6379/2") == "redis://:***@host:6379/2"
    assert mask_password("unix:///run/redis.sock?db=1&password=pw") == \
        "unix:///run/redis.sock?db=1&password=***"
    assert mask_password("rediss://host:6380/0") == "rediss://host:6380/0"


def test_key_prefix_is_taken_from_the_url(redis_server: RedisServer) -> None:
    base = redis_server.url()
    assert RedisBackend(f"{base}?key=fleet-a", read_only=True).keys.document == "fleet-a:document"
    assert RedisBackend(base, read_only=True).keys.prefix == "modelboard"
    with pytest.raises(ConfigurationError, match="key prefix"):
        RedisBackend(f"{base}?key=", read_only=True)
    with pytest.raises(ConfigurationError, match="not a usable Redis URL"):
        RedisBackend(f"{base}?socket_timeout=soon", read_only=True)


def test_opening_with_no_server_fails_in_one_clear_line(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nobody listens there: no server the tests did not start is touched
    with pytest.raises(BackendUnavailableError) as caught:
        open_store(f"redis://:hunter2@127.0.0.1:{port}/0?key=mb")
    message = str(caught.value)
    assert message.startswith(f"redis://:***@127.0.0.1:{port}/0?key=mb: cannot reach Redis")
    assert "\n" not in message and "hunter2" not in message
    assert "hunter2" not in caplog.text


def test_password_protected_server(own_redis_server: RedisServer,
                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    own_redis_server.password = "correct-horse"
    own_redis_server.start()
    store = open_store(own_redis_server.url("mb"))
    store.set_model_selection("openai", "gpt-4o")
    assert stored_document(own_redis_server.client(), "mb") == render_document(store.snapshot)
    assert store.location == f"redis://:***@127.0.0.1:{own_redis_server.port}/0?key=mb"
    assert "correct-horse" not in repr(store) and "correct-horse" not in repr(store.backend)
    with pytest.raises(BackendUnavailableError) as wrong:
        open_store(own_redis_server.url("mb", password="wrong-horse"))
    with pytest.raises(BackendUnavailableError) as missing:
        open_store(f"redis://127.0.0.1:{own_redis_server.port}/0?key=mb")
    for caught in (wrong, missing):
        assert "Redis refused the credentials" in str(caught.value)
        assert "\n" not in str(caught.value)
    assert "wrong-horse" not in str(wrong.value)
    assert "horse" not in caplog.text
    own_redis_server.password = None
    with pytest.raises(redis.AuthenticationError):  # the server really demands it
        own_redis_server.client().ping()


def test_command_line_errors_never_show_the_password(own_redis_server: RedisServer) -> None:
    own_redis_server.password = "correct-horse"
    own_redis_server.start()
    url = own_redis_server.url("mb")
    open_store(url).set_model_selection("openai", "gpt-4o")
    masked = f"redis://:***@127.0.0.1:{own_redis_server.port}/0?key=mb"
    for args in (["remove", "mistral"], ["set", "openai", "gpt-5", "--expect", "gpt-4.1"],
                 ["validate"]):
        done = subprocess.run([sys.executable, "-m", "modelboard.core.cli", "--file", url, *args],
                              capture_output=True, text=True, timeout=60, check=False)
        assert "correct-horse" not in done.stdout + done.stderr, (args, done)
        assert masked in done.stdout + done.stderr, (args, done)


def test_importing_the_core_does_not_import_redis() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, modelboard.core; print('redis' in sys.modules)"],
        capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_a_stale_lock_is_judged_on_the_latest_state_as_with_files(
        backend: str, redis_url: str, data_file: Path) -> None:
    location = redis_url if backend == "redis" else str(data_file)
    alice = open_store(location)
    alice.set_model_selection("openai", "gpt-4o")
    alice.lock("openai")
    bob = open_store(location)  # believes openai locked
    alice.unlock("openai")
    with pytest.raises(ConflictError):  # not LockedError: bob's view was stale
        bob.set_model_selection("openai", "gpt-5")
    bob.reload()
    bob.set_model_selection("openai", "gpt-5")
    assert open_store(location).get_model_selection("openai").model_name == "gpt-5"


def test_tls_server_with_a_rediss_url(redis_binary: str, tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path)
    server = RedisServer(redis_binary, tmp_path / "redis", password="tls-secret",
                         tls_certificate=certificate).start()
    try:
        url = server.url("mb")
        assert url.startswith("rediss://:tls-secret@")
        store = open_store(url)
        store.set_model_selection("openai", "gpt-4o")
        assert store.location.startswith("rediss://:***@")
        assert open_store(url, read_only=True).get_model_selection("openai").model_name == \
            "gpt-4o"
        assert stored_document(server.client(), "mb") == render_document(store.snapshot)
        # The same server in plain text is refused: the URL's scheme really decides.
        with pytest.raises(BackendUnavailableError, match="cannot reach Redis"):
            open_store(url.replace("rediss://", "redis://").split("&")[0])
    finally:
        server.stop()


def test_unix_socket_url(redis_server: RedisServer, redis_key: str) -> None:
    url = f"unix://{redis_server.socket_path}?db=0&key={redis_key}"
    store = open_store(url)
    store.set_model_selection("openai", "gpt-4o")
    assert store.location == url
    assert stored_document(redis_server.client(), redis_key) == \
        render_document(store.snapshot)
