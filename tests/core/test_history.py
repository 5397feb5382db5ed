"""The history as an audit log: short writes, fragments, hand edits, writes that never
landed, rotation, reading from the end, and a hash chain that shows any tampering."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelboard.core import Catalog, ConfigurationError, ConflictError, ProviderSpec, open_store
from modelboard.core.filebackend import FileBackend
from modelboard.core.fileformat import revision_of
from modelboard.core.history import HistoryFile, seal, sealed_lines
from modelboard.core.models import HistoryEntry, utc_now
from modelboard.core.store import SelectionStore


def running_in_ci() -> bool:  # as tests/conftest.py says: CI fails where a laptop skips
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: Providers that take any model name, so that tests can write as many as they like.
ANY = Catalog([ProviderSpec(name, any_model=True)
               for name in ("openai", "anthropic", "mistral", "google")])


def history_of(data_file: Path) -> Path:
    return data_file.with_name("model_selections.history.jsonl")


def records(data_file: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in history_of(data_file).read_text().splitlines()]


def store_with(data_file: Path, **options: int) -> SelectionStore:
    return SelectionStore(FileBackend(data_file, **options),  # type: ignore[arg-type]
                          catalog=ANY)


# -- short and failed appends ----------------------------------------------------------------
# A writer under a real file-size limit (RLIMIT_FSIZE, what `ulimit -f` sets) that lets the
# data file's temp file through but not the whole history line: the append is short.
FSIZE_WRITER = textwrap.dedent("""
    import json, os, resource, sys
    from modelboard.core import ConfigurationError, open_store
    path = sys.argv[1]
    history = os.path.join(os.path.dirname(path), "model_selections.history.jsonl")
    store = open_store(path)
    limit = os.path.getsize(history) + 40     # part of a line fits, not all of it
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        store.set_model_selection("openai", "gpt-4.1", reason="under the limit")
        outcome = "written"
    except ConfigurationError as error:
        outcome = str(error)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    after = os.path.getsize(history)
    store.set_model_selection("openai", "gpt-4o-mini", reason="limit lifted")
    print(json.dumps({"outcome": outcome, "limit": limit, "after": after}))
""")


def test_a_short_append_under_a_file_size_limit_is_cut_back_and_refuses_the_write(
        data_file: Path) -> None:
    store = open_store(data_file, catalog=ANY)
    store.set_model_selection("openai", "gpt-4o")
    store.set_model_selection("anthropic", "claude-3-opus")
    data_before = data_file.read_bytes()
    history_before = history_of(data_file).read_bytes()

    done = subprocess.run([sys.executable, "-c", FSIZE_WRITER, str(data_file)],
                          capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "cannot append to the history: disk full or over the file-size limit; nothing " \
           "was changed" in report["outcome"]
    assert "\n" not in report["outcome"]
    assert report["after"] == len(history_before)  # no fragment was left behind
    lines = records(data_file)
    assert [line["new"] for line in lines] == ["gpt-4o", "claude-3-opus", "gpt-4o-mini"]
    assert [line["rev"] for line in lines] == [1, 2, 3]
    assert history_of(data_file).read_bytes().startswith(history_before)
    assert data_before != data_file.read_bytes()
    assert open_store(data_file, catalog=ANY).get_model_selection("openai").model_name == "gpt-4o-mini"
    assert store.backend.verify_history().ok


@pytest.mark.skipif(os.geteuid() != 0 and not running_in_ci(),
                    reason="mounting a small tmpfs needs root")
def test_a_full_disk_refuses_the_write_and_leaves_no_fragment(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        data_file = mount / "model_selections.json"
        store = open_store(data_file, catalog=ANY)
        store.set_model_selection("openai", "gpt-4o")
        # Fill the disk, then free two pages: the lock file takes one while it is held
        # (its holder's record), each write's temp file the other, giving the old file's
        # back at the rename; the history's appends fill its last page, until one needs
        # a page more: that append fails half-way.
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"x" * 4096)
        except OSError:
            os.ftruncate(fd, os.fstat(fd).st_size // 4096 * 4096 - 8192)
        finally:
            os.close(fd)
        refusal = None
        for attempt in range(100):
            history_before = history_of(data_file).read_bytes()
            data_before = data_file.read_bytes()
            try:
                store.set_model_selection("openai", f"gpt-4o-{attempt}")
            except ConfigurationError as error:
                refusal = str(error)
                break
        assert refusal is not None and "cannot append to the history: disk full" in refusal
        assert data_file.read_bytes() == data_before
        assert history_of(data_file).read_bytes() == history_before  # no fragment left
        assert store.backend.verify_history().ok
        assert open_store(data_file, catalog=ANY).history(limit=1)[0].new == \
            open_store(data_file, catalog=ANY).get_model_selection("openai").model_name
    finally:
        # Lazily: a store left open holds descriptors there, and a busy mount would stay.
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_readers_pick_up_at_the_line_glued_onto_a_fragment(data_file: Path) -> None:
    store = open_store(data_file, catalog=ANY)
    store.set_model_selection("openai", "gpt-4")
    store.set_model_selection("anthropic", "claude-3-opus")
    # What an older version left: half a line of a failed append, and the next change's
    # line (in the format of the time) glued onto it.
    lines = history_of(data_file).read_text().splitlines()
    record = json.loads(lines[-1])
    old_form = HistoryEntry(utc_now(), record["actor"], "anthropic", "set", None,
                            "claude-3-opus", record["revision"]).to_line()
    lines[-1] = '{"action": "set", "actor": "x", "new": "gp' + old_form
    history_of(data_file).write_text("\n".join(lines) + "\n")

    assert [(h.provider, h.new) for h in store.history()] == [
        ("anthropic", "claude-3-opus"), ("openai", "gpt-4")]
    store.set_model_selection("openai", "gpt-4o")
    assert [(h.provider, h.new) for h in store.history()] == [
        ("openai", "gpt-4o"), ("anthropic", "claude-3-opus"), ("openai", "gpt-4")]
    verified = store.backend.verify_history()
    assert not verified.ok and verified.where == (history_of(data_file).name, 2)


def test_a_writer_cuts_off_an_unfinished_last_line(data_file: Path) -> None:
    store = open_store(data_file, catalog=ANY)
    store.set_model_selection("openai", "gpt-4")
    whole = history_of(data_file).read_bytes()
    with history_of(data_file).open("ab") as history:
        history.write(b'{"action": "set", "actor": "killed mid-li')
    assert not store.backend.verify_history().ok
    store.set_model_selection("openai", "gpt-4o")
    data = history_of(data_file).read_bytes()
    assert data.startswith(whole) and data.count(b"\n") == 2
    assert store.backend.verify_history().ok
    assert [h.new for h in store.history()] == ["gpt-4o", "gpt-4"]


# -- writes that never landed, and hand edits --------------------------------------------------
def test_lines_of_a_write_that_never_reached_the_file_are_marked_not_applied(
        data_file: Path) -> None:
    store = open_store(data_file, catalog=ANY)
    store.set_model_selection("openai", "gpt-4")
    on_disk = store.snapshot
    # A writer that appended its line and was killed before the rename: the file is
    # still at that write's base revision.
    history = HistoryFile(history_of(data_file))
    tail = history.prepare(on_disk.revision, lambda _: None, None, "killed")
    ghost = HistoryEntry(utc_now(), "killed", "openai", "set", "gpt-4", "gpt-4o", "f" * 16,
                         number=2, base_revision=on_disk.revision)
    history.append([ghost], tail)
    assert [h.new for h in store.history()] == ["gpt-4"]  # a reader leaves it out already

    store.set_model_selection("anthropic", "claude-3-opus")

    lines = records(data_file)
    assert [(line["action"], line["rev"]) for line in lines] == [
        ("set", 1), ("set", 2), ("not-applied", 2), ("set", 3)]
    assert [h.new for h in store.history()] == ["claude-3-opus", "gpt-4"]
    assert [r.number for r in store.revisions()] == [3, 1]
    verified = store.backend.verify_history()
    assert verified.ok and verified.revisions == 2


def test_a_hand_edit_is_recorded_as_an_external_change_with_what_it_changed(
        data_file: Path) -> None:
    store = open_store(data_file, catalog=ANY, actor="alice@ops")
    store.bulk_set_model_selections({"openai": "gpt-4", "anthropic": "claude-3-opus"})
    document = json.loads(data_file.read_text())
    document["openai"]["model_name"] = "gpt-4o"  # vim, sed, a bad deploy …
    del document["anthropic"]
    data_file.write_text(json.dumps(document, indent=2) + "\n")

    writer = open_store(data_file, catalog=ANY, actor="bob@ops")
    writer.set_model_selection("mistral", "mistral-large-latest")

    lines = records(data_file)
    assert [(line["action"], line["provider"], line["rev"], line["actor"])
            for line in lines[2:]] == [
        ("external", "anthropic", 2, "outside modelboard"),
        ("external", "openai", 2, "outside modelboard"),
        ("set", "mistral", 3, "bob@ops")]
    assert (lines[2]["old"], lines[2]["new"]) == ("claude-3-opus", None)
    assert (lines[3]["old"], lines[3]["new"]) == ("gpt-4", "gpt-4o")
    # The history still explains the document: every revision rebuilds exactly.
    assert writer.document_at(1).keys() == {"openai", "anthropic"}
    assert writer.document_at(2)["openai"].model_name == "gpt-4o"
    assert writer.backend.verify_history().ok


# -- rotation and reading from the end -------------------------------------------------------
def test_history_rotates_into_compressed_segments_and_reads_across_them(
        data_file: Path) -> None:
    store = store_with(data_file, history_rotate_bytes=10_000, history_keep_segments=3)
    for n in range(80):
        store.set_model_selection("openai", f"gpt-{n}", reason=f"step {n}")

    folder = sorted(p.name for p in data_file.parent.iterdir())
    segments = [name for name in folder if name.startswith("model_selections.history.0")]
    assert segments and all(name.endswith(".jsonl.gz") for name in segments)
    assert len(segments) == 3  # the newest three kept; older ones dropped
    assert history_of(data_file).stat().st_size < 10_000 + 1000
    for name in segments:
        gzip.decompress((data_file.parent / name).read_bytes())  # whole gzip files

    newest = store.history(limit=30)
    assert [h.new for h in newest] == [f"gpt-{n}" for n in range(79, 49, -1)]
    assert [h.number for h in newest] == list(range(80, 50, -1))
    verified = store.backend.verify_history()
    assert verified.ok, verified
    assert verified.segments == 4 and "dropped by rotation" in verified.notes[0]
    # show/diff over rotated history: an old revision rebuilt through the segments.
    oldest_kept = store.revisions()[-1].number
    assert oldest_kept is not None and 1 < oldest_kept < 80 - 30
    assert store.document_at(oldest_kept)["openai"].model_name == f"gpt-{oldest_kept - 1}"
    with pytest.raises(ConfigurationError, match="no longer in the history"):
        store.document_at(1)


def test_a_rotation_stopped_half_way_is_finished_by_the_next_write(data_file: Path) -> None:
    store = store_with(data_file, history_rotate_bytes=10**9)
    for n in range(5):
        store.set_model_selection("openai", f"gpt-{n}")
    # Killed after renaming the full file aside, before compressing it.
    history_of(data_file).rename(data_file.with_name("model_selections.history.000001.jsonl"))
    store.set_model_selection("openai", "gpt-5")
    names = sorted(p.name for p in data_file.parent.iterdir() if "history" in p.name)
    assert names == ["model_selections.history.000001.jsonl.gz",
                     "model_selections.history.jsonl"]
    assert [h.number for h in store.history()] == [6, 5, 4, 3, 2, 1]
    assert store.backend.verify_history().ok


@pytest.mark.slow
def test_the_newest_lines_of_a_million_line_history_are_read_from_the_end(
        data_file: Path) -> None:
    # A million lines of the format before numbering (what a long-lived store holds),
    # then the chain starts on top of them (rotation is set out of the way here).
    data_file.parent.mkdir(parents=True)
    # (They end at the revision of the empty document, as the file has no selection.)
    legacy = HistoryEntry(utc_now(), "ops", "mistral", "set", "a", "b",
                          revision_of({})).to_line()
    block = ((legacy + "\n") * 10_000).encode()
    with history_of(data_file).open("wb") as history:
        for _ in range(100):
            history.write(block)
    # The file exists, empty (a history beside a missing file makes writes refuse).
    assert store_with(data_file).backend.create_empty()
    store = store_with(data_file, history_rotate_bytes=2**40)
    for n in range(5):
        store.set_model_selection("openai", f"gpt-4o-{n}", reason=f"n{n}")
    assert history_of(data_file).read_bytes().count(b"\n") == 1_000_005

    started = time.perf_counter()
    newest = store_with(data_file).history(limit=5)
    took = time.perf_counter() - started
    assert [(h.new, h.reason, h.number) for h in newest] == [
        (f"gpt-4o-{n}", f"n{n}", n + 1) for n in range(4, -1, -1)]
    assert [(h.provider, h.new) for h in store.history("mistral", limit=2)] == [
        ("mistral", "b"), ("mistral", "b")]
    print(f"history --limit 5 behind a million lines: {took * 1000:.1f} ms")


# -- the hash chain --------------------------------------------------------------------------
@pytest.fixture
def chained_history(data_file: Path) -> Path:
    """A copy of a real history: eight revisions, written by the store."""
    store = open_store(data_file, catalog=ANY)
    for n in range(4):
        store.set_model_selection("openai", f"gpt-{n}")
        store.set_model_selection("anthropic", f"claude-{n}")
    copy = data_file.parent / "copy" / "model_selections.history.jsonl"
    copy.parent.mkdir()
    shutil.copy(history_of(data_file), copy)
    return copy


def verify(history: Path) -> tuple[bool, str | None, tuple[str, int] | None, int]:
    verified = HistoryFile(history).verify()
    return verified.ok, verified.problem, verified.where, verified.revisions


def test_an_untouched_history_verifies(chained_history: Path) -> None:
    assert verify(chained_history) == (True, None, None, 8)


def test_an_edited_line_fails_verification_at_that_line(chained_history: Path) -> None:
    lines = chained_history.read_text().splitlines(keepends=True)
    lines[4] = lines[4].replace('"new": "gpt-2"', '"new": "gpt-9"')
    chained_history.write_text("".join(lines))
    ok, problem, where, _ = verify(chained_history)
    assert not ok and where == (chained_history.name, 5)
    assert "does not match its hash" in problem  # type: ignore[operator]


def test_a_deleted_line_fails_verification_at_the_line_after_it(
        chained_history: Path) -> None:
    lines = chained_history.read_text().splitlines(keepends=True)
    del lines[3]
    chained_history.write_text("".join(lines))
    ok, problem, where, _ = verify(chained_history)
    assert not ok and where == (chained_history.name, 4)
    assert "does not follow the line before it" in problem  # type: ignore[operator]


def test_an_inserted_line_fails_verification_at_that_line(chained_history: Path) -> None:
    lines = chained_history.read_text().splitlines(keepends=True)
    forged = json.loads(lines[2])
    forged.update(new="evil-model", actor="mallory")
    body = {k: v for k, v in forged.items() if k not in ("prev", "hash")}
    lines.insert(3, seal(body, forged["hash"]).decode() + "\n")  # even a well-sealed one
    chained_history.write_text("".join(lines))
    ok, problem, where, _ = verify(chained_history)
    # The forged line chains onto line 3; the line after it no longer follows.
    assert not ok and where == (chained_history.name, 5)
    assert "does not follow" in problem  # type: ignore[operator]


def test_swapped_lines_fail_verification_at_the_first_of_them(chained_history: Path) -> None:
    lines = chained_history.read_text().splitlines(keepends=True)
    lines[5], lines[6] = lines[6], lines[5]
    chained_history.write_text("".join(lines))
    ok, problem, where, _ = verify(chained_history)
    assert not ok and where == (chained_history.name, 6)
    assert "does not follow" in problem  # type: ignore[operator]


def test_a_line_appended_by_hand_fails_verification(chained_history: Path) -> None:
    with chained_history.open("a") as history:
        history.write(HistoryEntry(utc_now(), "x", "openai", "set", None, "m", "r").to_line()
                      + "\n")
    ok, problem, where, _ = verify(chained_history)
    assert not ok and where == (chained_history.name, 9) and "has no hash" in problem  # type: ignore[operator]


def test_older_unchained_lines_are_read_and_covered_by_the_genesis(data_file: Path) -> None:
    store = open_store(data_file, catalog=ANY)
    store.set_model_selection("openai", "gpt-4o")
    # The history as the version before numbering wrote it, ending at the file's revision.
    old = [HistoryEntry(utc_now(), "ops", "openai", "set", None, "gpt-4", "1" * 16),
           HistoryEntry(utc_now(), "ops", "openai", "set", "gpt-4", "gpt-4o",
                        store.snapshot.revision)]
    history_of(data_file).write_text("".join(e.to_line() + "\n" for e in old))
    store.set_model_selection("anthropic", "claude-3-opus")
    assert [(h.new, h.number) for h in store.history()] == [
        ("claude-3-opus", 1), ("gpt-4o", None), ("gpt-4", None)]
    assert records(data_file)[2]["prev"].startswith("genesis:")
    assert store.backend.verify_history().ok and store.backend.verify_history().revisions == 3
    # Editing an old line is caught too: the genesis no longer matches what precedes it.
    text = history_of(data_file).read_text().replace('"new": "gpt-4o"', '"new": "gpt-5"', 1)
    history_of(data_file).write_text(text)
    verified = store.backend.verify_history()
    assert not verified.ok and verified.where == (history_of(data_file).name, 3)
    assert "genesis does not match" in verified.problem  # type: ignore[operator]


def test_a_migrated_history_is_chained_from_a_new_genesis(tmp_path: Path) -> None:
    entries = [HistoryEntry(utc_now(), "ops", "openai", "set", None, "gpt-4", "1" * 16,
                            number=1)]
    history = tmp_path / "x.history.jsonl"
    history.write_bytes(sealed_lines(entries))
    assert HistoryFile(history).verify().ok


# -- revisions and rollback ------------------------------------------------------------------
def test_rollback_makes_the_document_what_it_was_in_one_recorded_write(
        data_file: Path) -> None:
    store = open_store(data_file, catalog=ANY, actor="alice@ops")
    store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-3-opus"},
                                    reason="launch")
    store.set_model_selection("openai", "gpt-4.1")
    store.remove_model_selection("anthropic")
    store.set_model_selection("mistral", "mistral-large-latest")

    done = store.rollback(1, reason="4.1 regressed")

    assert (done.target, done.number, done.kept_locked) == (1, 5, ())
    assert store.snapshot.models() == {"openai": "gpt-4o", "anthropic": "claude-3-opus"}
    assert open_store(data_file, catalog=ANY).snapshot.models() == store.snapshot.models()
    newest = store.revisions(limit=1)[0]
    assert (newest.number, newest.reason) == (5, "rollback to 1: 4.1 regressed")
    assert {e.provider for e in newest.entries} == {"openai", "anthropic", "mistral"}
    assert [r.number for r in store.revisions(provider="mistral")] == [5, 4]
    # Rolling back to the rollback's own starting point undoes it again.
    store.rollback(4)
    assert store.snapshot.models() == {"openai": "gpt-4.1",
                                       "mistral": "mistral-large-latest"}
    assert store.backend.verify_history().ok


def test_rollback_keeps_locked_providers_and_names_them(data_file: Path) -> None:
    store = open_store(data_file, catalog=ANY)
    store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-3-opus"})
    store.set_model_selection("openai", "gpt-4.1")
    store.set_model_selection("anthropic", "claude-3-5-sonnet-latest")
    store.lock("openai", reason="launch week")

    kept = store.rollback(1)
    assert kept.kept_locked == ("openai",)
    assert store.snapshot.models() == {"openai": "gpt-4.1", "anthropic": "claude-3-opus"}
    assert store.get_model_selection("openai").lock_reason == "launch week"

    everything = store.rollback(1, include_locked=True)
    assert everything.kept_locked == ()
    assert store.snapshot.models() == {"openai": "gpt-4o", "anthropic": "claude-3-opus"}
    assert store.get_model_selection("openai").editable


def test_rollback_restores_a_lock_the_revision_had(data_file: Path) -> None:
    store = open_store(data_file, catalog=ANY)
    store.set_model_selection("openai", "gpt-4o")
    store.lock("openai", reason="frozen")
    store.unlock("openai")
    store.set_model_selection("openai", "gpt-4.1")
    store.rollback(2)
    restored = store.get_model_selection("openai")
    assert (restored.model_name, restored.editable, restored.lock_reason) == (
        "gpt-4o", False, "frozen")


def test_a_conflict_during_rollback_writes_nothing(data_file: Path) -> None:
    store = open_store(data_file, catalog=ANY, actor="alice@ops")
    store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-3-opus"})
    store.set_model_selection("openai", "gpt-4.1")
    colleague = open_store(data_file, catalog=ANY, actor="bob@ops")
    colleague.set_model_selection("openai", "o3")  # after alice's store last loaded
    before = data_file.read_bytes()

    with pytest.raises(ConflictError) as caught:
        store.rollback(1)

    assert caught.value.provider == "openai"
    assert data_file.read_bytes() == before
    assert [r.number for r in store.revisions()] == [3, 2, 1]


def test_show_refuses_a_revision_it_does_not_have(data_file: Path) -> None:
    store = open_store(data_file, catalog=ANY)
    store.set_model_selection("openai", "gpt-4o")
    with pytest.raises(ConfigurationError, match="there is no revision 7"):
        store.document_at(7)
