"""Starting and stopping the watch: threads, ``with store:``, ``async for`` with
cancellation, and no thread or file handle left behind after many rounds."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from live_support import (
    TIMEOUT_S,
    Recorder,
    fd_count,
    generation_document,
    generation_of,
    os_thread_count,
    replace_atomically,
    revision_for,
)

from modelboard.core import ChangeEvent, SelectionStore, open_store


def eventually(condition: Callable[[], bool], timeout: float = TIMEOUT_S) -> bool:
    """Wait for ``condition`` (checked every 10 ms) until ``timeout``; say if it came true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def no_watch_thread() -> bool:
    return not any(t.name == "modelboard-watch" for t in threading.enumerate())


def test_start_and_stop_many_times_leaks_no_thread_and_no_file(selections_file: Path) -> None:
    store = open_store(selections_file)
    recorder = Recorder()
    store.subscribe(recorder)  # the dispatcher thread lives as long as the store
    with store:
        pass  # first round outside the count: imports and the dispatcher
    threads, os_threads, fds = threading.active_count(), os_thread_count(), fd_count()

    for round_number in range(1, 41):
        if round_number % 2:
            store.start_watching()
            store.stop_watching()
        else:
            with store:
                pass
        if round_number % 10 == 0:  # and every few rounds, prove the watch really worked
            with store:
                replace_atomically(selections_file, generation_document(round_number))
                recorder.wait_for_revision(revision_for(generation_document(round_number)))

    assert threading.active_count() == threads
    # The event thread of the file watch is Rust's: it ends just after its watch closes.
    assert eventually(lambda: os_thread_count() <= os_threads), (os_thread_count(), os_threads)
    assert eventually(lambda: fd_count() <= fds), (fd_count(), fds)
    store.close()


def test_start_and_stop_from_different_threads(selections_file: Path) -> None:
    store = open_store(selections_file)
    recorder = Recorder()
    store.subscribe(recorder)
    started = threading.Thread(target=store.start_watching)
    started.start()
    started.join(timeout=TIMEOUT_S)
    assert store.watching
    replace_atomically(selections_file, generation_document(1))
    recorder.wait_for_revision(revision_for(generation_document(1)))
    stopper = threading.Thread(target=store.stop_watching)
    stopper.start()
    stopper.join(timeout=TIMEOUT_S)
    assert not store.watching and no_watch_thread()
    store.close()


def test_a_subscriber_may_stop_the_watch_from_inside(selections_file: Path) -> None:
    store = open_store(selections_file)
    heard = threading.Event()

    def stop_on_first(_event: ChangeEvent) -> None:
        store.stop_watching()
        heard.set()

    store.subscribe(stop_on_first)
    store.start_watching()
    replace_atomically(selections_file, generation_document(1))
    assert heard.wait(TIMEOUT_S)
    assert eventually(no_watch_thread)
    store.close()


def test_a_subscriber_may_close_the_store_from_inside(selections_file: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    store = open_store(selections_file)
    closed = threading.Event()

    def close_on_first(_event: ChangeEvent) -> None:
        store.close()
        closed.set()

    store.subscribe(close_on_first)
    store.start_watching()
    replace_atomically(selections_file, generation_document(1))
    assert closed.wait(TIMEOUT_S)
    assert eventually(no_watch_thread)
    assert eventually(lambda: not any(t.name == "modelboard-dispatch"
                                      for t in threading.enumerate()))
    assert "raised" not in caplog.text


def test_close_stops_everything(selections_file: Path) -> None:
    store = open_store(selections_file)
    store.subscribe(Recorder())
    store.start_watching()
    store.start_watching()  # nested: close ends them all
    store.close()
    assert not store.watching and no_watch_thread()
    assert not any(t.name == "modelboard-dispatch" for t in threading.enumerate())
    assert store.get_model_selection("openai") is not None  # reads still answer


async def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_async_for_hears_changes_and_stops_when_its_task_is_cancelled(
        selections_file: Path) -> None:
    store = open_store(selections_file)

    async def main() -> list[ChangeEvent]:
        events: list[ChangeEvent] = []
        second = asyncio.Event()

        async def follow() -> None:
            async for event in store.changes():
                events.append(event)
                if len(events) == 2:
                    second.set()

        task = asyncio.create_task(follow(), name="follow-selections")
        await _wait_until(lambda: store.watching)
        replace_atomically(selections_file, generation_document(1))
        await _wait_until(lambda: len(events) == 1)
        store.set_model_selection("openai", "gpt-4o")  # this store's own write: heard once
        await asyncio.wait_for(second.wait(), TIMEOUT_S)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not store.watching and no_watch_thread()  # stopped when the task ended
        return events

    events = asyncio.run(main())
    assert [e.source for e in events] == ["external", "local"]
    assert generation_of(events[0]) == {1}
    assert [(c.provider, c.kind) for c in events[1].changes] == [("openai", "model")]
    store.close()


def test_async_for_stops_when_the_loop_is_left(selections_file: Path) -> None:
    store = open_store(selections_file)

    async def main() -> int:
        async with contextlib.aclosing(store.changes()) as changes:
            replace_atomically(selections_file, generation_document(1))
            async for event in changes:  # armed before the write? caught up at arming
                return min(generation_of(event))
        raise AssertionError("the iteration ended without an event")

    assert asyncio.run(main()) == 1
    assert not store.watching and no_watch_thread()
    store.close()


def test_async_rounds_leak_no_thread_and_no_file(selections_file: Path) -> None:
    store = open_store(selections_file)

    async def one_round(generation: int) -> None:
        async def follow() -> None:
            async for event in store.changes():
                if generation in generation_of(event):
                    return

        task = asyncio.create_task(follow())
        await _wait_until(lambda: store.watching)
        replace_atomically(selections_file, generation_document(generation))
        await asyncio.wait_for(task, TIMEOUT_S)

    asyncio.run(one_round(1))
    threads, os_threads, fds = threading.active_count(), os_thread_count(), fd_count()
    for generation in range(2, 12):
        asyncio.run(one_round(generation))
    assert eventually(lambda: threading.active_count() <= threads)
    assert eventually(lambda: os_thread_count() <= os_threads)
    assert eventually(lambda: fd_count() <= fds)
    assert no_watch_thread()
    store.close()


def test_a_threaded_proxy_with_the_context_manager(selections_file: Path) -> None:
    """The README's shape: worker threads read on every request while ``with store:``."""
    store: SelectionStore = open_store(selections_file)
    recorder = Recorder()
    store.subscribe(recorder)
    seen_by_worker: list[list[str]] = [[] for _ in range(3)]
    stop = threading.Event()

    def handle_requests(seen: list[str]) -> None:
        while not stop.is_set():
            selection = store.get_model_selection("openai")  # what each request does
            assert selection is not None
            if not seen or seen[-1] != selection.model_name:
                seen.append(selection.model_name)

    with store:
        workers = [threading.Thread(target=handle_requests, args=(seen,))
                   for seen in seen_by_worker]
        for worker in workers:
            worker.start()
        for generation in (1, 2):
            replace_atomically(selections_file, generation_document(generation))
            recorder.wait_for_revision(revision_for(generation_document(generation)))
        assert eventually(lambda: all(seen[-1:] == ["model-2"] for seen in seen_by_worker))
        stop.set()
        for worker in workers:
            worker.join(timeout=TIMEOUT_S)
    assert not store.watching
    for seen in seen_by_worker:  # each worker moved forward only, and switched without restart
        assert seen == sorted(seen) and seen[-1] == "model-2"
    store.close()
