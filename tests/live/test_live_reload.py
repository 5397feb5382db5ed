"""A watching store follows the file as other programs change it: atomic replaces, in-place
writes, deletions, bursts; subscribers hear of each change, in order, with what changed."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

import pytest
from live_support import (
    PROVIDERS,
    TIMEOUT_S,
    Recorder,
    generation_document,
    generation_of,
    replace_atomically,
    revision_for,
    split_in,
    write_in_place,
)

from modelboard.core import (
    ChangeEvent,
    ConfigurationError,
    SelectionStore,
    open_store,
    resolve_catalog,
)
from modelboard.core.filebackend import FileBackend

Watched = tuple[SelectionStore, Recorder]


def test_an_atomic_replace_reaches_subscribers_with_what_changed(
        watched: Watched, selections_file: Path) -> None:
    store, recorder = watched
    writer = open_store(selections_file, actor="alice@ops")
    before = store.snapshot

    writer.set_model_selection("openai", "gpt-4o")
    changed = recorder.wait_for(lambda e: "openai" in e.new and
                                e.new["openai"].model_name == "gpt-4o")
    assert changed.old is before and changed.new is store.snapshot
    assert changed.source == "external" and changed.error is None
    [change] = changed.changes
    assert (change.provider, change.kind, change.actor) == ("openai", "model", "alice@ops")
    assert change.old is not None and change.old.model_name == "model-0"

    writer.lock("openai", reason="evaluation")
    locked = recorder.wait_for(lambda e: "openai" in e.new and e.new["openai"].locked)
    assert [(c.provider, c.kind, c.actor) for c in locked.changes] == [
        ("openai", "lock", "alice@ops")]
    assert locked.old is changed.new

    writer.set_model_selection("groq", "llama-3.3-70b-versatile")
    added = recorder.wait_for(lambda e: "groq" in e.new)
    assert [(c.provider, c.kind, c.actor) for c in added.changes] == [
        ("groq", "added", "alice@ops")]

    writer.remove_model_selection("google")
    removed = recorder.wait_for(lambda e: "google" not in e.new)
    assert [(c.provider, c.kind) for c in removed.changes] == [("google", "removed")]
    assert removed.changes[0].old is not None

    # In order, and each event starts where the previous one ended.
    assert [e.new for e in recorder.events] == [changed.new, locked.new, added.new, removed.new]
    assert all(later.old is earlier.new
               for earlier, later in zip(recorder.events, recorder.events[1:], strict=False))
    assert store.get_model_selection("openai").model_name == "gpt-4o"  # type: ignore[union-attr]
    assert store.get_model_selection("google") is None


def test_a_replace_by_another_tool_is_loaded(watched: Watched, selections_file: Path) -> None:
    store, recorder = watched
    replace_atomically(selections_file, generation_document(1))
    recorder.wait_for_revision(revision_for(generation_document(1)))
    assert generation_of(store.snapshot) == {1}
    assert {c.kind for c in recorder.events[0].changes} == {"model"}
    assert [c.provider for c in recorder.events[0].changes] == sorted(PROVIDERS)


class CountingBackend(FileBackend):
    """A file backend that counts how often the whole file is loaded."""

    loads = 0

    def load(self):  # type: ignore[no-untyped-def]
        self.loads += 1
        return super().load()


def test_a_change_written_by_this_store_is_heard_once_and_not_reloaded(
        selections_file: Path) -> None:
    backend = CountingBackend(selections_file)
    # The live tests' catalog: the generation models are valid, so that telling drift
    # from a typo (which reads the history) does not come into it.
    store = SelectionStore(backend, catalog=resolve_catalog(), actor="proxy@here")
    recorder = Recorder()
    store.subscribe(recorder)
    with store:
        loads_before = backend.loads
        store.set_model_selection("openai", "gpt-4o")
        # Another writer's change afterwards: once it is heard, the watcher has handled
        # the events of our own write too (they came first).
        replace_atomically(selections_file, generation_document(7))
        recorder.wait_for_revision(revision_for(generation_document(7)))
    store.close()
    assert [e.source for e in recorder.events] == ["local", "external"]
    assert recorder.events[0].changes[0].provider == "openai"
    assert backend.loads == loads_before + 1  # the other writer's state, never our own


def test_an_invalid_file_keeps_the_last_good_state_until_a_good_write(
        watched: Watched, selections_file: Path) -> None:
    store, recorder = watched
    good = store.snapshot
    replace_atomically(selections_file, b'{\n  "openai": {"model_name": "gpt-4o",}\n}\n')
    failed = recorder.wait_for_error()
    error = store.load_error
    assert isinstance(error, ConfigurationError) and failed.error is error
    assert (error.path, error.line, error.column) == (str(selections_file), 2, 37)
    assert "property name" in error.reason
    assert str(error).startswith(f"{selections_file}:2:37: ")
    assert failed.old is good and failed.new is good and failed.changes == ()
    assert store.snapshot is good and generation_of(store.snapshot) == {0}

    replace_atomically(selections_file, generation_document(2))
    recorder.wait_for_revision(revision_for(generation_document(2)), after=1)
    assert store.load_error is None and generation_of(store.snapshot) == {2}


def test_restoring_the_previous_good_file_clears_the_error(
        watched: Watched, selections_file: Path) -> None:
    store, recorder = watched
    good_bytes = selections_file.read_bytes()
    replace_atomically(selections_file, b"[]\n")
    recorder.wait_for_error("not an array")
    replace_atomically(selections_file, good_bytes)  # an editor's undo
    recovered = recorder.wait_for(lambda e: e.error is None)
    assert store.load_error is None and recovered.changes == ()


def test_a_deleted_file_is_reported_missing_and_a_recreated_one_loaded(
        watched: Watched, selections_file: Path) -> None:
    store, recorder = watched
    selections_file.unlink()
    missing = recorder.wait_for_error("missing")
    assert store.load_error is missing.error
    assert store.load_error is not None and store.load_error.path == str(selections_file)
    assert generation_of(store.snapshot) == {0}  # the last good state is still served

    selections_file.write_bytes(generation_document(3))
    recorder.wait_for_revision(revision_for(generation_document(3)))
    assert store.load_error is None and generation_of(store.snapshot) == {3}


@pytest.mark.parametrize("pieces", [2, 5])
def test_in_place_writes_never_leave_the_store_on_a_truncated_file(
        watched: Watched, selections_file: Path, pieces: int) -> None:
    store, recorder = watched
    final = generation_document(4, tuple(f"provider-{i:03d}" for i in range(60)))

    def wait_until_seen_incomplete(index: int) -> None:
        # The store has read the file while it was incomplete, and refused it.
        recorder.wait_for(lambda e: e.error is not None, after=len(recorder.events))

    write_in_place(selections_file, split_in(final, pieces), between=wait_until_seen_incomplete)
    recorder.wait_for_revision(revision_for(final))
    assert store.load_error is None and generation_of(store.snapshot) == {4}
    installed = [e.new.revision for e in recorder.events if e.error is None]
    assert installed == [revision_for(final)]  # nothing else was ever installed


def test_echo_into_the_file_is_refused_and_the_next_write_wins(
        watched: Watched, selections_file: Path) -> None:
    store, recorder = watched
    write_in_place(selections_file, [b"\n"])
    recorder.wait_for_error("file is empty")
    assert generation_of(store.snapshot) == {0}
    write_in_place(selections_file, [generation_document(5)])
    recorder.wait_for_revision(revision_for(generation_document(5)))


@pytest.mark.parametrize("style", ["atomic", "in place"])
def test_a_burst_of_100_writes_ends_on_the_last(
        watched: Watched, selections_file: Path, style: str) -> None:
    store, recorder = watched
    write = replace_atomically if style == "atomic" else (
        lambda path, data: write_in_place(path, split_in(data, 2)))
    for generation in range(1, 101):
        write(selections_file, generation_document(generation))
    recorder.wait_for_revision(revision_for(generation_document(100)))
    assert generation_of(store.snapshot) == {100} and store.load_error is None
    seen = [generation_of(e) for e in recorder.events if e.error is None]
    assert all(len(g) == 1 for g in seen)  # every installed state was a whole one
    order = [g.pop() for g in seen]
    assert order == sorted(set(order)) and order[-1] == 100  # never back to an older one


def test_a_subscriber_that_raises_is_logged_and_the_others_still_run(
        watched: Watched, selections_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, _ = watched
    calls: list[int] = []

    def broken(event: ChangeEvent) -> None:
        calls.append(1)
        raise RuntimeError("subscriber bug")

    store.subscribe(broken)
    after_broken = Recorder()
    store.subscribe(after_broken)
    with caplog.at_level(logging.ERROR, logger="modelboard"):
        for generation in (1, 2):
            replace_atomically(selections_file, generation_document(generation))
            after_broken.wait_for_revision(revision_for(generation_document(generation)))
    assert len(calls) == 2
    logged = [r for r in caplog.records if "subscriber raised" in r.getMessage()]
    assert len(logged) == 2 and all(str(r.exc_info[1]) == "subscriber bug"  # type: ignore[index]
                                    for r in logged)
    assert generation_of(store.snapshot) == {2}


def test_unsubscribed_callbacks_hear_nothing_more(
        watched: Watched, selections_file: Path) -> None:
    store, recorder = watched
    leaving = Recorder()
    unsubscribe = store.subscribe(leaving)
    replace_atomically(selections_file, generation_document(1))
    leaving.wait_for_revision(revision_for(generation_document(1)))
    unsubscribe()
    replace_atomically(selections_file, generation_document(2))
    recorder.wait_for_revision(revision_for(generation_document(2)))
    assert [generation_of(e) for e in leaving.events] == [{1}]


def test_a_folder_that_does_not_exist_yet_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "model_selections.json"
    store = open_store(path)
    recorder = Recorder()
    store.subscribe(recorder)
    with store:
        assert store.watching and len(store.snapshot) == 0
        path.parent.mkdir(parents=True)  # both folders at once, like mkdir -p
        replace_atomically(path, generation_document(1))
        recorder.wait_for_revision(revision_for(generation_document(1)))
        # The store now watches the new folder itself: later writes arrive too.
        replace_atomically(path, generation_document(2))
        recorder.wait_for_revision(revision_for(generation_document(2)))
    store.close()


def remove_tree_like_rm_rf(folder: Path) -> None:
    """Remove ``folder`` even while the store's reader heartbeat renames files inside it.

    ``shutil.rmtree`` gives up when a file it listed is renamed away before it unlinks
    it; an operator's ``rm -rf`` would just go on, so this does too, until it is gone.
    """
    deadline = time.monotonic() + TIMEOUT_S
    while folder.exists():
        assert time.monotonic() < deadline, f"{folder} could not be removed"
        shutil.rmtree(folder, ignore_errors=True)


def test_the_folder_removed_and_recreated_is_followed(
        watched: Watched, selections_file: Path) -> None:
    store, recorder = watched
    folder = selections_file.parent
    remove_tree_like_rm_rf(folder)  # with the readers' reports in it
    recorder.wait_for_error("missing")
    folder.mkdir()
    replace_atomically(selections_file, generation_document(6))
    recorder.wait_for_revision(revision_for(generation_document(6)))
    assert store.load_error is None


def test_a_symlinked_file_is_followed_through_its_target(tmp_path: Path) -> None:
    (tmp_path / "releases").mkdir()
    (tmp_path / "live").mkdir()
    first = tmp_path / "releases" / "one.json"
    second = tmp_path / "releases" / "two.json"
    first.write_bytes(generation_document(1))
    link = tmp_path / "live" / "model_selections.json"
    link.symlink_to(first)
    store = open_store(link)
    recorder = Recorder()
    store.subscribe(recorder)
    with store:
        assert generation_of(store.snapshot) == {1}
        replace_atomically(first, generation_document(2))  # the target changes
        recorder.wait_for_revision(revision_for(generation_document(2)))

        second.write_bytes(generation_document(3))  # the link moves to another file
        temp_link = tmp_path / "live" / "next-link"
        temp_link.symlink_to(second)
        temp_link.replace(link)
        recorder.wait_for_revision(revision_for(generation_document(3)))

        replace_atomically(second, generation_document(4))  # and follows the new target
        recorder.wait_for_revision(revision_for(generation_document(4)))
        replace_atomically(first, generation_document(99))  # the old one no longer matters
        replace_atomically(second, generation_document(5))
        recorder.wait_for_revision(revision_for(generation_document(5)))
        assert all(99 not in generation_of(e) for e in recorder.events)

        writer = open_store(link, actor="alice@ops")  # a write goes through the link
        writer.set_model_selection("openai", "gpt-4o")
        recorder.wait_for(lambda e: e.new.get("openai") is not None and
                          e.new["openai"].model_name == "gpt-4o")
    store.close()
    assert link.is_symlink() and link.resolve() == second


def test_a_watcher_that_cannot_get_file_events_polls(
        selections_file: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # The file backend imports RustNotify when it arms a watch: replace it at the source.
    import watchfiles._rust_notify as rust_notify

    real = rust_notify.RustNotify

    def no_inotify_left(paths: list[str], debug: bool, force_polling: bool, *rest: object):  # type: ignore[no-untyped-def]
        if not force_polling:
            raise OSError(24, "Too many open files")
        return real(paths, debug, force_polling, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(rust_notify, "RustNotify", no_inotify_left)
    store = open_store(selections_file)
    recorder = Recorder()
    store.subscribe(recorder)
    with caplog.at_level(logging.WARNING, logger="modelboard"), store:
        replace_atomically(selections_file, generation_document(8))
        recorder.wait_for_revision(revision_for(generation_document(8)))
    store.close()
    assert "polling every" in caplog.text


def test_a_change_made_before_watching_started_is_caught_up(selections_file: Path) -> None:
    store = open_store(selections_file)
    replace_atomically(selections_file, generation_document(9))
    with store:  # returns once armed and caught up
        assert generation_of(store.snapshot) == {9}
    store.close()


def test_watching_nests_and_stops_with_the_last_stop(selections_file: Path) -> None:
    store = open_store(selections_file)
    recorder = Recorder()
    store.subscribe(recorder)
    with store:
        store.start_watching()
        store.stop_watching()
        assert store.watching  # one start is still in effect
        replace_atomically(selections_file, generation_document(1))
        recorder.wait_for_revision(revision_for(generation_document(1)))
    assert not store.watching
    assert not [t for t in threading.enumerate() if t.name == "modelboard-watch"]
    store.stop_watching()  # one too many: harmless
    store.close()



class FlakyWatchBackend(FileBackend):
    """A file backend whose first two watches break (as a watcher may, on a busy host)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.broken_watches = 2

    def follow(self, stop, armed):  # type: ignore[no-untyped-def]
        if self.broken_watches:
            self.broken_watches -= 1
            raise OSError(28, "inotify watch limit reached")
        yield from super().follow(stop, armed)


def test_a_failing_watcher_is_logged_once_and_retried(
        selections_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = FlakyWatchBackend(selections_file)
    store = SelectionStore(backend)
    recorder = Recorder()
    store.subscribe(recorder)
    with caplog.at_level(logging.DEBUG, logger="modelboard"), store:
        replace_atomically(selections_file, generation_document(1))
        recorder.wait_for_revision(revision_for(generation_document(1)))
    store.close()
    assert backend.broken_watches == 0
    failures = [r for r in caplog.records if "watcher failed" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.ERROR, logging.DEBUG]
