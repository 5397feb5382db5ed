"""Redis for a proxy: starting during an outage from the local copy, keys of the wrong type,
and hand edits with a plain SET reaching watchers within a second."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis_server import RedisServer

from modelboard.core import open_store
from modelboard.core.errors import BackendUnavailableError, ConfigurationError
from modelboard.core.fileformat import render_document
from modelboard.core.models import Selection
from modelboard.core.redisbackend import RedisBackend, default_local_copy

HAND_EDIT_S = 1.0
RECOVERY_TIMEOUT_S = 15.0  # the watcher's reconnection backoff tops out at 2 s


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition()`` held; AssertionError after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - start


def store_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the store logged about its state (the fleet heartbeat logs its own line)."""
    return [r for r in caplog.records
            if r.levelno == logging.WARNING and r.name == "modelboard.core.store"]


@pytest.fixture(autouse=True)
def _copies_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "copies"
    monkeypatch.setenv("MODELBOARD_LOCAL_COPY_DIR", str(folder))
    return folder


# -- start-up during an outage -------------------------------------------------------------
@pytest.mark.slow
def test_a_proxy_starts_during_an_outage_from_the_local_copy_and_recovers(
        own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modelboard")
    server = own_redis_server.start()
    url = server.url("fleet")
    open_store(url, actor="ops").set_model_selection("openai", "gpt-4o")
    proxy = open_store(url, watch=True)
    copy = proxy.backend.local_copy  # type: ignore[attr-defined]
    wait_for(lambda: copy.is_file(), 5)
    assert copy == default_local_copy(f"{url.partition('?')[0]}#fleet")
    assert copy.stat().st_mode & 0o777 == 0o600
    proxy.close()

    server.kill()
    caplog.clear()
    restarted = open_store(url, watch=True)      # during the outage: no exception
    try:
        assert restarted.model_for("openai", "gpt-4o-mini") == "gpt-4o"
        assert isinstance(restarted.load_error, BackendUnavailableError)
        assert "cannot reach Redis" in restarted.status()["load_error"]
        warnings = store_warnings(caplog)
        assert len(warnings) == 1 and str(copy) in warnings[0].getMessage()

        server.start()
        wait_for(lambda: restarted.load_error is None, RECOVERY_TIMEOUT_S)
        open_store(url, actor="ops").set_model_selection("openai", "gpt-4.1")
        wait_for(lambda: restarted.model_for("openai", "x") == "gpt-4.1", 5)
        assert len(store_warnings(caplog)) == 1     # the outage was logged once, not per retry
        assert len([r for r in caplog.records if "loaded again" in r.getMessage()]) == 1
        # The copy follows each change, written once the watcher is idle again.
        wait_for(lambda: b"gpt-4.1" in copy.read_bytes(), 5)
    finally:
        restarted.close()


def test_without_a_local_copy_an_outage_at_start_up_still_raises(
        own_redis_server: RedisServer) -> None:
    url = own_redis_server.url("fleet")            # never started
    with pytest.raises(BackendUnavailableError, match="cannot reach Redis"):
        open_store(url, watch=True)


def test_the_local_copy_location_can_be_chosen_or_turned_off(
        redis_server: RedisServer, redis_key: str, tmp_path: Path) -> None:
    chosen = tmp_path / "proxy" / "last-known.json"
    url = redis_server.url(redis_key) + f"&local_copy={chosen}"
    open_store(url).set_model_selection("openai", "gpt-4o")
    with open_store(url, watch=True):
        wait_for(chosen.is_file, 5)
    off = open_store(redis_server.url(redis_key) + "&local_copy=off", watch=True)
    assert off.backend.local_copy is None  # type: ignore[attr-defined]
    off.close()


# -- wrong-type keys -----------------------------------------------------------------------
@pytest.mark.parametrize(("suffix", "plant"), [
    ("counter", lambda client, key: client.set(key, "x")),
    ("counter", lambda client, key: client.hset(key, "a", "b")),
    ("history", lambda client, key: client.set(key, "not a stream")),
    ("backup", lambda client, key: client.rpush(key, "a")),
    ("document", lambda client, key: client.sadd(key, "a")),
])
def test_a_key_of_the_wrong_type_gives_one_clear_error_and_writes_nothing(
        redis_server: RedisServer, redis_url: str, redis_key: str, suffix: str,
        plant: Callable[..., object]) -> None:
    store = open_store(redis_url, actor="ops")
    store.set_model_selection("openai", "gpt-4o")
    client = redis_server.client()
    key = f"{redis_key}:{suffix}"
    client.delete(key)
    plant(client, key)
    before = {name: client.dump(name) for name in client.keys(f"{redis_key}:*")}
    with pytest.raises(ConfigurationError) as caught:
        fresh = open_store(redis_url, actor="ops")
        fresh.set_model_selection("openai", "gpt-4.1")
    message = str(caught.value)
    assert key in message and "\n" not in message and "Traceback" not in message
    assert not isinstance(caught.value, BackendUnavailableError)
    assert {name: client.dump(name) for name in client.keys(f"{redis_key}:*")} == before


@pytest.mark.parametrize(("suffix", "plant", "what"), [
    ("counter", lambda client, key: client.set(key, "x"), "holds 'x', not a whole number"),
    ("history", lambda client, key: client.set(key, "x"), "holds a string, not a stream"),
    ("selections", lambda client, key: client.set(key, "x"), "holds a string, not a hash"),
])
def test_a_key_made_the_wrong_type_under_an_open_store_refuses_its_write_saying_so(
        redis_server: RedisServer, redis_url: str, redis_key: str, suffix: str,
        plant: Callable[..., object], what: str) -> None:
    store = open_store(redis_url, actor="ops")
    store.set_model_selection("openai", "gpt-4o")
    client = redis_server.client()
    key = f"{redis_key}:{suffix}"
    client.delete(key)
    plant(client, key)                      # after the store was opened: the write refuses
    before = {name: client.dump(name) for name in client.keys(f"{redis_key}:*")}
    with pytest.raises(ConfigurationError) as caught:
        store.set_model_selection("openai", "gpt-4.1")
    assert str(caught.value) == (f"{store.location}: {key} {what}; nothing was written; "
                                 "delete or fix that key (modelboard recreates it)")
    assert not isinstance(caught.value, BackendUnavailableError)
    assert {name: client.dump(name) for name in client.keys(f"{redis_key}:*")} == before


# -- hand edits ----------------------------------------------------------------------------
def hand_set(redis_server: RedisServer, key: str, document: bytes) -> None:
    """What the README used to ask: a plain SET of the document, no INCR."""
    redis_server.client().set(f"{key}:document", document)


@pytest.mark.parametrize("notifications", ["", "K$"])
def test_a_plain_set_by_hand_reaches_a_watcher_within_a_second(
        redis_server: RedisServer, redis_url: str, redis_key: str, notifications: str) -> None:
    client = redis_server.client()
    client.config_set("notify-keyspace-events", notifications)
    try:
        writer = open_store(redis_url, actor="ops")
        writer.set_model_selection("openai", "gpt-4o")
        with open_store(redis_url) as watcher:
            hand_set(redis_server, redis_key, render_document({"openai": Selection("gpt-4.1")}))
            wait_for(lambda: watcher.model_for("openai", "x") == "gpt-4.1", HAND_EDIT_S)

            hand_set(redis_server, redis_key, b'{"openai": {"model_name": ')   # a bad edit
            wait_for(lambda: watcher.load_error is not None, HAND_EDIT_S)
            assert watcher.model_for("openai", "x") == "gpt-4.1"

            fixed = render_document({"openai": Selection("o3")})                # a hand fix
            hand_set(redis_server, redis_key, fixed)
            wait_for(lambda: watcher.model_for("openai", "x") == "o3", HAND_EDIT_S)
            assert watcher.load_error is None

            hand_set(redis_server, redis_key, render_document({"openai": Selection("gpt-4oo")}))
            wait_for(lambda: watcher.problems() != (), HAND_EDIT_S)
            assert watcher.model_for("openai", "x") == "o3"                     # typo not served
    finally:
        client.config_set("notify-keyspace-events", "")


def test_the_backend_reports_how_it_notices_hand_edits(redis_url: str) -> None:
    backend = RedisBackend(redis_url)
    assert backend._keyspace_channel() is None   # the test server's default: off
    backend.close()
