"""Several processes sharing one store through a real Redis server."""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import threading

import pytest

from modelboard.core import open_store

LINE_TIMEOUT_S = 30

SUBSCRIBER = textwrap.dedent("""
    import queue, sys
    from modelboard.core import open_store
    store = open_store(sys.argv[1], read_only=True)
    events = queue.Queue()
    store.subscribe(events.put)
    store.start_watching()
    print("ready", flush=True)
    while True:
        event = events.get(timeout=30)
        for change in event.changes:
            print(change.provider, change.new.model_name, change.new.updated_by, flush=True)
            if change.new.model_name == "gpt-5":
                sys.exit(0)
""")

INCREMENTER = textwrap.dedent("""
    import sys
    from modelboard.core import ConflictError, open_store
    url, name, own_provider, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = open_store(url, actor=name)
    print("ready", flush=True)
    sys.stdin.readline()  # all start together, so that their writes really interleave
    done = conflicts = 0
    while done < rounds:
        count = int(store.get_model_selection("vllm").model_name.removeprefix("count-"))
        try:
            store.set_model_selection("vllm", f"count-{count + 1}", expect=f"count-{count}")
        except ConflictError:
            conflicts += 1
            store.reload()
            continue
        done += 1
        store.set_model_selection(own_provider, f"{name}-{done}")
    print(done, conflicts, flush=True)
""")


class Child:
    """A Python child process whose output lines are read without blocking the test."""

    def __init__(self, code: str, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", code, *args],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self) -> str:
        line = self.lines.get(timeout=LINE_TIMEOUT_S)
        if line is None:
            assert self.process.stderr is not None
            pytest.fail(f"child exited early: {self.process.stderr.read()[-2000:]}")
        return line

    def finish(self) -> int:
        return self.process.wait(timeout=LINE_TIMEOUT_S)


def test_a_change_reaches_the_subscriber_of_another_process(redis_url: str) -> None:
    subscriber = Child(SUBSCRIBER, redis_url)
    try:
        assert subscriber.next_line() == "ready"
        writer = open_store(redis_url, actor="alice@ops")
        writer.set_model_selection("openai", "gpt-4o")
        assert subscriber.next_line() == "openai gpt-4o alice@ops"
        writer.set_model_selection("openai", "gpt-5")
        assert subscriber.next_line() == "openai gpt-5 alice@ops"
        assert subscriber.finish() == 0
    finally:
        subscriber.process.kill()


@pytest.mark.slow
def test_concurrent_writers_in_processes_lose_nothing(redis_url: str) -> None:
    rounds = 20
    open_store(redis_url).set_model_selection("vllm", "count-0")
    own_providers = ("ollama", "lmstudio", "openrouter")
    children = [Child(INCREMENTER, redis_url, f"w{number}", provider, str(rounds))
                for number, provider in enumerate(own_providers)]
    try:
        assert [child.next_line() for child in children] == ["ready"] * len(children)
        for child in children:
            assert child.process.stdin is not None
            child.process.stdin.write("go\n")
            child.process.stdin.flush()
        reports = [child.next_line().split() for child in children]
        assert all(child.finish() == 0 for child in children)
    finally:
        for child in children:
            child.process.kill()
    assert [int(done) for done, _ in reports] == [rounds] * len(children)
    store = open_store(redis_url)
    total = rounds * len(children)
    # Every increment that was acknowledged is there: no update overwrote another.
    assert store.get_model_selection("vllm").model_name == f"count-{total}"
    chain = [(entry.old, entry.new) for entry in reversed(store.history("vllm"))]
    assert chain == [(None, "count-0")] + [(f"count-{n}", f"count-{n + 1}")
                                           for n in range(total)]
    for number, provider in enumerate(own_providers):
        assert store.get_model_selection(provider).model_name == f"w{number}-{rounds}"
        assert len(store.history(provider)) == rounds
