"""Live reload across real processes: a store in another interpreter hears every change
this one writes, in order; a proxy-like reader never sees a state that was not whole."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_support import (
    TIMEOUT_S,
    Recorder,
    generation_document,
    generation_of,
    replace_atomically,
    revision_for,
    split_in,
    write_in_place,
)

from modelboard.core import SelectionStore, open_store, resolve_catalog
from modelboard.core.filebackend import FileBackend

# The other process: watches the file and prints one JSON line per event.
WATCHER = textwrap.dedent("""
    import json, logging, sys
    from modelboard.core import open_store

    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # as a proxy would
    store = open_store(sys.argv[1])

    def report(event):
        print(json.dumps({
            "error": str(event.error) if event.error else None,
            "source": event.source,
            "old": event.old.revision,
            "new": event.new.revision,
            "models": event.new.models(),
            "changes": [[c.provider, c.kind, c.actor] for c in event.changes],
        }), flush=True)

    store.subscribe(report)
    with store:
        print(json.dumps({"ready": store.snapshot.revision}), flush=True)
        sys.stdin.readline()  # until the test closes our stdin
    store.close()
""")


class OtherProcess:
    """The watcher process, with its reports read on a thread so waits can time out."""

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WATCHER, str(path)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reports: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.reports.put(json.loads(line))

    def next_report(self) -> dict[str, Any]:
        try:
            return self.reports.get(timeout=TIMEOUT_S)
        except queue.Empty:
            raise AssertionError("the other process reported nothing in time; stderr: "
                                 + self.stop()) from None

    def stop(self) -> str:
        """Close its stdin (it then stops watching and exits); return its stderr."""
        assert self.process.stdin is not None and self.process.stderr is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        self.process.wait(timeout=TIMEOUT_S)
        return self.process.stderr.read()


@pytest.fixture
def other_process(selections_file: Path) -> Iterator[OtherProcess]:
    other = OtherProcess(selections_file)
    try:
        yield other
    finally:
        if other.process.poll() is None:
            other.stop()


def test_another_process_hears_each_change_in_order(
        selections_file: Path, other_process: OtherProcess) -> None:
    writer = open_store(selections_file, actor="alice@ops")
    assert other_process.next_report() == {"ready": writer.snapshot.revision}

    steps = [
        (lambda: writer.set_model_selection("openai", "gpt-4o"), [["openai", "model", "alice@ops"]]),
        (lambda: writer.lock("openai", reason="evaluation"), [["openai", "lock", "alice@ops"]]),
        (lambda: writer.set_model_selection("groq", "llama-3.3-70b-versatile"),
         [["groq", "added", "alice@ops"]]),
        (lambda: writer.unlock("openai"), [["openai", "lock", "alice@ops"]]),
        (lambda: writer.remove_model_selection("google"), [["google", "removed", None]]),
        (lambda: writer.bulk_set_model_selections({"anthropic": "claude-sonnet-4-5",
                                                    "mistral": "mistral-large-latest"}),
         [["anthropic", "model", "alice@ops"], ["mistral", "model", "alice@ops"]]),
    ]
    previous = writer.snapshot.revision
    for change, expected in steps:
        change()
        report = other_process.next_report()
        assert report["changes"] == expected
        assert report["old"] == previous and report["new"] == writer.snapshot.revision
        assert report["source"] == "external" and report["error"] is None
        previous = report["new"]
    assert report["models"] == writer.snapshot.models()

    # A bad file, then a good one: reported, then recovered, in that order.
    replace_atomically(selections_file, b'{"openai": {"model_name": 42}}')
    failed = other_process.next_report()
    assert failed["error"].startswith(f"{selections_file}:1:2: ")
    assert failed["new"] == previous  # the last good state is kept
    replace_atomically(selections_file, generation_document(1))
    assert other_process.next_report()["new"] == revision_for(generation_document(1))

    # It exits cleanly; the bad file was logged, in one line saying what and where, by
    # the module that noticed it (the recovery is logged at INFO, below this level).
    assert other_process.stop().splitlines() == [
        f"WARNING modelboard.core.store: {failed['error']}"]


def test_another_process_ends_a_burst_on_the_last_write(
        selections_file: Path, other_process: OtherProcess) -> None:
    other_process.next_report()  # ready
    last = revision_for(generation_document(100))
    for generation in range(1, 101):
        replace_atomically(selections_file, generation_document(generation))
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["new"] != last:
        seen.append(other_process.next_report())
    order = [int(next(iter(set(r["models"].values()))).split("-")[1]) for r in seen]
    assert all(len(set(r["models"].values())) == 1 for r in seen)  # whole states only
    assert order == sorted(set(order)) and order[-1] == 100
    assert other_process.stop() == ""


def test_a_reader_during_reloads_only_ever_sees_whole_states(selections_file: Path) -> None:
    """A proxy thread reads while another program rewrites the file, atomically and in
    place; every state it sees was written whole, and it never goes back in time."""
    providers = tuple(f"provider-{index:03d}" for index in range(40))
    replace_atomically(selections_file, generation_document(0, providers))
    store = open_store(selections_file)
    recorder = Recorder()
    store.subscribe(recorder)
    stop_reading = threading.Event()
    problems: list[str] = []
    reads = 0

    def proxy() -> None:
        nonlocal reads
        newest = 0
        while not stop_reading.is_set():
            snapshot = store.snapshot  # one consistent view for this "request"
            generations = generation_of(snapshot)
            one = store.get_model_selection("provider-017")  # a single lookup, lock-free
            assert one is not None
            single = int(one.model_name.rsplit("-", 1)[1])
            if len(generations) != 1:
                problems.append(f"mixed state {sorted(generations)}")
            elif single < newest or min(generations) < newest:
                problems.append(f"went back from {newest} to {single}")
            newest = max(newest, single)
            reads += 1

    reader = threading.Thread(target=proxy)
    with store:
        reader.start()
        for generation in range(1, 151):
            document = generation_document(generation, providers)
            if generation % 2:
                replace_atomically(selections_file, document)
            else:
                write_in_place(selections_file, split_in(document, 3))
        recorder.wait_for_revision(revision_for(generation_document(150, providers)))
        stop_reading.set()
        reader.join(timeout=TIMEOUT_S)
    store.close()
    assert problems == []
    assert reads > 100


def test_the_watch_thread_does_not_keep_a_program_alive(selections_file: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys; from modelboard.core import open_store\n"
         "store = open_store(sys.argv[1]).start_watching()\n"
         "print(store.watching)\n", str(selections_file)],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "True", "")


class GatedBackend(FileBackend):
    """A file backend whose reload can be held in the middle, as a slow one would be."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.hold = False
        self.inside = threading.Event()
        self.release = threading.Event()

    def load(self):  # type: ignore[no-untyped-def]
        if self.hold:
            self.inside.set()
            self.release.wait(TIMEOUT_S)
        return super().load()


def test_reads_never_wait_on_a_reload_in_progress(selections_file: Path) -> None:
    backend = GatedBackend(selections_file)
    store = SelectionStore(backend, catalog=resolve_catalog())
    recorder = Recorder()
    store.subscribe(recorder)
    with store:
        backend.hold = True
        replace_atomically(selections_file, generation_document(1))
        assert backend.inside.wait(TIMEOUT_S)  # the watch thread is stuck inside a reload
        answered = threading.Event()
        answers: list[str] = []

        def proxy() -> None:
            for _ in range(1000):
                selection = store.get_model_selection("openai")
                assert selection is not None
                answers.append(selection.model_name)
            answered.set()

        threading.Thread(target=proxy).start()
        assert answered.wait(TIMEOUT_S)  # served while the reload is still held
        assert set(answers) == {"model-0"}
        backend.release.set()
        recorder.wait_for_revision(revision_for(generation_document(1)))
    store.close()
    assert store.get_model_selection("openai").model_name == "model-1"  # type: ignore[union-attr]
