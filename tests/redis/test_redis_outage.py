"""Redis going away: readers keep the last good state, writers get a clear error, and
everything recovers by itself, with no acknowledged write lost."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import pytest
from redis_server import RedisServer

from modelboard.core import ChangeEvent, Selection, open_store, redisbackend
from modelboard.core.errors import BackendUnavailableError
from modelboard.core.fileformat import render_document
from modelboard.core.redisbackend import RedisBackend

EVENT_TIMEOUT_S = 15  # the watcher's reconnection backoff tops out at 2 s


def next_event(events: queue.Queue[ChangeEvent],
               condition: Callable[[ChangeEvent], bool]) -> ChangeEvent:
    while True:
        event = events.get(timeout=EVENT_TIMEOUT_S)
        if condition(event):
            return event


def sets(model: str) -> Callable[[ChangeEvent], bool]:
    return lambda event: any(c.new is not None and c.new.model_name == model
                             for c in event.changes)


@pytest.mark.slow
def test_server_crash_and_restart(own_redis_server: RedisServer) -> None:
    server = own_redis_server.start()
    url = server.url("fleet")
    writer = open_store(url, actor="alice")
    reader = open_store(url, read_only=True)
    events: queue.Queue[ChangeEvent] = queue.Queue()
    reader.subscribe(events.put)
    reader.start_watching()
    try:
        writer.set_model_selection("openai", "gpt-4o")
        writer.set_model_selection("mistral", "codestral-latest")  # acknowledged: must survive
        next_event(events, sets("codestral-latest"))
        acknowledged = writer.snapshot.models()

        server.kill()
        down = next_event(events, lambda event: event.error is not None)
        assert isinstance(down.error, BackendUnavailableError)
        assert "cannot reach Redis" in str(down.error)
        assert reader.snapshot.models() == acknowledged  # readers keep serving
        assert reader.get_model_selection("openai").model_name == "gpt-4o"
        with pytest.raises(BackendUnavailableError) as caught:
            writer.set_model_selection("openai", "gpt-5")
        message = str(caught.value)
        assert message.startswith(f"{writer.location}: cannot reach Redis")
        assert message.endswith("nothing was written") and "\n" not in message
        assert writer.snapshot.models() == acknowledged

        server.start()  # same port, same append-only file
        next_event(events, lambda event: event.error is None)
        assert reader.load_error is None
        assert reader.snapshot.models() == acknowledged
        assert open_store(url).snapshot.models() == acknowledged

        writer.set_model_selection("openai", "gpt-5")  # the writer reconnects by itself
        next_event(events, sets("gpt-5"))
        assert [entry.new for entry in writer.history()] == \
            ["gpt-5", "codestral-latest", "gpt-4o"]
    finally:
        reader.close()


def test_a_notification_lost_while_disconnected_is_caught_up(
        own_redis_server: RedisServer) -> None:
    server = own_redis_server.start()
    url = server.url("fleet")
    writer = open_store(url)
    reader = open_store(url, read_only=True)
    events: queue.Queue[ChangeEvent] = queue.Queue()
    reader.subscribe(events.put)
    reader.start_watching()
    try:
        admin = server.client()
        assert admin.client_kill_filter(_type="pubsub") == 1  # the reader's subscription
        writer.set_model_selection("openai", "gpt-4o")  # published to nobody
        next_event(events, sets("gpt-4o"))
        assert reader.get_model_selection("openai").model_name == "gpt-4o"
    finally:
        reader.close()


def test_follow_resyncs_after_a_reconnection(own_redis_server: RedisServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Driven step by step, so the notification is lost for certain."""
    monkeypatch.setattr(redisbackend, "RESYNC_INTERVAL_S", 3600)  # no periodic rescue
    server = own_redis_server.start()
    backend = RedisBackend(server.url("fleet"), read_only=True)
    stop, armed = threading.Event(), threading.Event()
    steps = backend.follow(stop, armed)

    def step() -> None:
        """Resume the watcher until its next yield; fail if it does not come."""
        runner = threading.Thread(target=next, args=(steps,))
        runner.start()
        runner.join(EVENT_TIMEOUT_S)
        if runner.is_alive():
            stop.set()
            runner.join(EVENT_TIMEOUT_S)
            pytest.fail("the watcher did not yield")

    try:
        step()  # subscribed: the first resync
        assert armed.is_set()
        admin = server.client()
        assert admin.client_kill_filter(_type="pubsub") == 1
        admin.incr("fleet:counter")
        assert admin.publish("fleet:changes", b"1 lost") == 0  # nobody hears it
        step()  # the broken subscription is noticed: the store compares counters
        assert backend.token() == (1, "")  # (counter, document SHA-1): no document here
        step()  # subscribed again: another resync, for what changed meanwhile
        assert admin.pubsub_numsub("fleet:changes") == [(b"fleet:changes", 1)]
    finally:
        stop.set()
        steps.close()
        backend.close()


def test_a_write_never_announced_is_picked_up_by_the_periodic_resync(
        redis_server: RedisServer, redis_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redisbackend, "RESYNC_INTERVAL_S", 0.2)
    url = redis_server.url(redis_key)
    open_store(url).set_model_selection("openai", "gpt-4o")
    reader = open_store(url, read_only=True)
    events: queue.Queue[ChangeEvent] = queue.Queue()
    reader.subscribe(events.put)
    reader.start_watching()
    try:
        admin = redis_server.client()
        with admin.pipeline() as pipe:  # stored without PUBLISH: like a dropped message
            pipe.set(f"{redis_key}:document",
                     render_document({"openai": Selection(model_name="gpt-5")}))
            pipe.incr(f"{redis_key}:counter")
            pipe.execute()
        next_event(events, sets("gpt-5"))
    finally:
        reader.close()
