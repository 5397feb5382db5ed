"""The write and reload shortcuts change nothing a user can observe.

DocumentCodec must give exactly what parse_document and render_document give (bytes,
selections, order, errors); the backup rewritten in place must never write through a
link; a file edited behind a writer's back must never be mistaken for its own write; the
writers' lock (flock, without filelock's bookkeeping) still excludes filelock users.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import filelock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelboard.core import Catalog, ConfigurationError, Selection, open_store
from modelboard.core.fileformat import (
    DocumentCodec,
    parse_document,
    parse_rendered,
    render_document,
    revision_of,
)

PROVIDERS = ["openai", "anthropic", "a\"quoted", "back\\slash", "ünïcode", "p1", "p2", "p3"]

selections_strategy = st.dictionaries(
    st.sampled_from(PROVIDERS),
    st.builds(Selection, model_name=st.sampled_from(["gpt-4o", "m\"x", "é-model", "o3"]),
              editable=st.booleans(), updated_by=st.sampled_from([None, "ops", "ünï"]),
              lock_reason=st.sampled_from([None, "pinned"])),
    max_size=len(PROVIDERS))


def outcome(parse: object, data: bytes) -> tuple[str, object]:
    try:
        result = parse(data, path="f.json")  # type: ignore[operator]
    except ConfigurationError as exc:
        return "error", str(exc)
    return "ok", list(result.items())


@settings(max_examples=150, deadline=None)
@given(st.lists(selections_strategy, min_size=1, max_size=6), st.data())
def test_codec_renders_and_parses_exactly_like_the_plain_functions(
        states: list[dict[str, Selection]], data: st.DataObject) -> None:
    codec = DocumentCodec()
    previous: dict[str, Selection] = {}
    for state in states:
        # Keep some selection objects from the previous state, as a write does.
        state = {p: previous.get(p, s) if data.draw(st.booleans()) else s
                 for p, s in state.items()}
        document = render_document(state)
        assert codec.render(state) == document
        assert outcome(codec.parse, document) == outcome(parse_document, document)
        # A hand edit: one byte changed, inserted or removed anywhere.
        position = data.draw(st.integers(0, len(document)))
        edit = data.draw(st.sampled_from([b"", b"x", b"\n", b",", b"}", b'"', b"\\"]))
        cut = data.draw(st.integers(0, 2))
        edited = document[:position] + edit + document[position + cut:]
        assert outcome(codec.parse, edited) == outcome(parse_document, edited)
        previous = state


def located(data: bytes, *, path: str) -> dict[str, Selection]:
    """parse_document the long way: asking for positions skips the one-pass fast path."""
    return parse_document(data, path=path, positions={})


EXTRA_FIELD_EDITS = [b"", b"x", b"\n", b",", b"}", b'"', b"\\", b"NaN", b"1e999",
                     b'"model_name": "dup", ', b'"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]'
                     b']]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], ', b'"\\ud800"', b"[", b"{"]


@settings(max_examples=300, deadline=None)
@given(selections_strategy, st.data())
def test_the_fast_parse_gives_exactly_what_the_located_parse_gives(
        state: dict[str, Selection], data: st.DataObject) -> None:
    document = render_document(state)
    for _edit in range(3):  # good documents, and documents broken in every way we know
        position = data.draw(st.integers(0, len(document)))
        edit = data.draw(st.sampled_from(EXTRA_FIELD_EDITS))
        cut = data.draw(st.integers(0, 2))
        edited = document[:position] + edit + document[position + cut:]
        assert outcome(parse_document, edited) == outcome(located, edited)
    assert outcome(parse_document, document) == outcome(located, document)


#: Values an entry's field may hold in a file edited by hand: right and wrong types, names
#: check_name refuses (empty, spaces around, control characters, too long), and times.
FIELD_VALUES = (st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-1, 1)
                | st.text(max_size=8) | st.lists(st.integers(), max_size=2)
                | st.sampled_from(["", " gpt-4o", "gpt-4o ", "o\x00", "o\u202e", "x" * 200,
                                   "x" * 201, "2026-01-02T03:04:05+00:00", "2026-01-02",
                                   "2026-13-01T00:00:00", "yesterday"]))
FIELDS = ["model_name", "editable", "last_updated", "updated_by", "lock_reason", "newer_field"]
GOOD_ENTRIES = st.fixed_dictionaries(
    {"model_name": st.sampled_from(["gpt-4o", "m\"x", "é-model"])},
    optional={"editable": st.booleans(),
              "last_updated": st.sampled_from([None, "", "2026-01-02T03:04:05+00:00"]),
              "updated_by": st.sampled_from([None, "ops"]),
              "lock_reason": st.sampled_from([None, "pinned"])})
NAMES = st.text(max_size=6) | st.sampled_from(
    ["", " p", "p ", "p\t", "p\x1b[31m", "p\u202e", "p\u2028", "q" * 200, "q" * 201, "a b"])


@st.composite
def hand_edited_documents(draw: st.DrawFn) -> dict[str, object]:
    """Good entries as modelboard writes them, at most one of them changed by hand: a
    field set to any value, the entry replaced by one, a provider or model name of any kind."""
    document: dict[str, object] = draw(st.dictionaries(
        st.sampled_from(["openai", "p1", "p2", "ünï"]), GOOD_ENTRIES, min_size=1, max_size=4))
    provider = draw(st.sampled_from(sorted(document)))
    how = draw(st.sampled_from(["none", "field", "entry", "name", "model"]))
    if how == "field":
        entry = dict(document[provider])  # type: ignore[call-overload]
        entry[draw(st.sampled_from(FIELDS))] = draw(FIELD_VALUES)
        document[provider] = entry
    elif how == "entry":
        document[provider] = draw(FIELD_VALUES)
    elif how == "name":
        document[draw(NAMES)] = document.pop(provider)
    elif how == "model":
        document[provider] = {**document[provider], "model_name": draw(NAMES)}  # type: ignore[dict-item]
    return document


@settings(max_examples=500, deadline=None)
@given(hand_edited_documents())
def test_every_entry_is_judged_by_the_fast_parse_as_by_the_located_parse(
        document: dict[str, object]) -> None:
    # The fast parse takes the usual entries in one tight loop and the names all at
    # once; whatever it builds or refuses, the entry-by-entry parse must too.
    data = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
    expected = outcome(located, data)
    assert outcome(parse_document, data) == expected
    rendered = parse_rendered(data)  # the way for a file as modelboard wrote it
    assert (rendered is None if expected[0] == "error" else list(rendered.items())
            == expected[1])


@settings(max_examples=150, deadline=None)
@given(selections_strategy.filter(bool), st.lists(selections_strategy, max_size=4))
def test_a_codec_that_adopted_a_rendering_goes_on_exactly_like_the_plain_functions(
        first: dict[str, Selection], later: list[dict[str, Selection]]) -> None:
    codec = DocumentCodec()
    document = render_document(first)
    adopted = parse_rendered(document)
    assert adopted is not None and codec.adopt(document, adopted)
    assert adopted == parse_document(document, path="f.json")
    for state in later:
        state = {p: adopted.get(p, s) for p, s in state.items()}  # some objects kept
        assert codec.render(state) == render_document(state)
        assert outcome(codec.parse, render_document(state)) == \
            outcome(parse_document, render_document(state))


def test_a_rendering_with_a_duplicate_provider_is_not_adopted() -> None:
    document = render_document({"a": Selection("x"), "b": Selection("y")})
    duplicated = document.replace(b'"b"', b'"a"')
    adopted = parse_rendered(duplicated)  # the plain parse keeps the last "a"
    assert adopted is not None and not DocumentCodec().adopt(duplicated, adopted)


def test_a_file_as_modelboard_wrote_it_loads_without_rendering(
        data_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = open_writer(data_file)
    writer.set_model_selection("openai", "gpt-4o")
    writer.set_model_selection("anthropic", "claude-3-opus")
    from modelboard.core import fileformat

    rendered: list[int] = []
    real_render = fileformat.DocumentCodec.render

    def counting(self: DocumentCodec, selections: object, **hints: object) -> bytes:
        rendered.append(1)
        return real_render(self, selections, **hints)  # type: ignore[arg-type]

    monkeypatch.setattr(fileformat.DocumentCodec, "render", counting)
    reader = open_writer(data_file)
    assert rendered == []  # its hash is the revision the history recorded
    assert reader.snapshot.revision == writer.snapshot.revision
    assert dict(reader.snapshot.items()) == dict(writer.snapshot.items())
    reader.set_model_selection("openai", "o3")  # and writes on from what it adopted
    assert data_file.read_bytes() == render_document(reader.snapshot)


def test_a_file_edited_after_the_last_write_is_parsed_the_strict_way(
        data_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    writer = open_writer(data_file)
    writer.set_model_selection("openai", "gpt-4o")
    writer.set_model_selection("anthropic", "claude-3-opus")
    # A duplicate provider: the plain parse would keep the last one; the strict one refuses.
    data_file.write_bytes(data_file.read_bytes().replace(b'"openai"', b'"anthropic"'))
    reader = open_writer(data_file)
    assert "duplicate provider 'anthropic'" in caplog.text
    assert list(data_file.parent.glob("*.corrupt-*"))  # copied aside, as any bad file
    assert reader.snapshot.revision == writer.snapshot.revision  # from the backup


def test_codec_parses_a_file_written_by_hand_in_another_layout() -> None:
    codec = DocumentCodec()
    codec.render({"openai": Selection("gpt-4o")})
    by_hand = b'{"openai": {"model_name": "o3"}, "anthropic": "claude-3-opus"}'
    assert codec.parse(by_hand, path="f.json") == parse_document(by_hand, path="f.json")


def test_a_duplicate_provider_is_reported_as_by_the_full_parse() -> None:
    codec = DocumentCodec()
    document = render_document({"a": Selection("x"), "b": Selection("y")})
    codec.parse(document, path="f.json")
    duplicated = document.replace(b'"b"', b'"a"')
    with pytest.raises(ConfigurationError) as error:
        codec.parse(duplicated, path="f.json")
    assert "duplicate" in str(error.value)
    assert str(error.value) == outcome(parse_document, duplicated)[1]


def open_writer(data_file: Path):  # type: ignore[no-untyped-def]
    catalog = Catalog.from_mapping({"openai": None, "anthropic": None})
    return open_store(data_file, catalog=catalog, actor="tester")


def test_the_backup_follows_each_write(data_file: Path) -> None:
    store = open_writer(data_file)
    store.set_model_selection("openai", "a-much-longer-model-name-than-the-next")
    store.set_model_selection("openai", "short")  # the backup shrinks too
    backup = data_file.with_name(data_file.name + ".bak")
    assert backup.read_bytes() == data_file.read_bytes()
    assert oct(backup.stat().st_mode & 0o777) == oct(0o600)


def test_a_symlinked_backup_is_replaced_not_written_through(data_file: Path,
                                                            tmp_path: Path) -> None:
    store = open_writer(data_file)
    store.set_model_selection("openai", "first")
    elsewhere = tmp_path / "precious.txt"
    elsewhere.write_text("do not touch\n")
    backup = data_file.with_name(data_file.name + ".bak")
    backup.unlink()
    backup.symlink_to(elsewhere)
    store.set_model_selection("openai", "second")
    assert elsewhere.read_text() == "do not touch\n"
    assert not backup.is_symlink()
    assert backup.read_bytes() == data_file.read_bytes()


def test_a_hard_linked_backup_is_replaced_not_written_through(data_file: Path,
                                                              tmp_path: Path) -> None:
    store = open_writer(data_file)
    store.set_model_selection("openai", "first")
    backup = data_file.with_name(data_file.name + ".bak")
    other_name = tmp_path / "other-link.json"
    os.link(backup, other_name)
    kept = other_name.read_bytes()
    store.set_model_selection("openai", "second")
    assert other_name.read_bytes() == kept
    assert backup.read_bytes() == data_file.read_bytes()


def test_an_edit_in_place_after_our_write_is_kept_by_the_next_write(data_file: Path) -> None:
    store = open_writer(data_file)
    store.set_model_selection("openai", "aaaa")
    store.set_model_selection("anthropic", "bbbb")
    # Same length, same inode: only the bytes tell this file from the one we wrote.
    edited = data_file.read_bytes().replace(b'"bbbb"', b'"cccc"')
    with open(data_file, "r+b") as file:
        file.write(edited)
    store.set_model_selection("openai", "dddd")
    assert open_writer(data_file).get_model_selection("anthropic").model_name == "cccc"
    assert store.get_model_selection("anthropic").model_name == "cccc"


def test_reload_sees_an_edit_in_place_of_our_own_write(data_file: Path) -> None:
    store = open_writer(data_file)
    store.set_model_selection("openai", "aaaa")
    with open(data_file, "r+b") as file:
        file.write(data_file.read_bytes().replace(b'"aaaa"', b'"zzzz"'))
    assert store.reload().get("openai").model_name == "zzzz"


def test_the_writers_lock_excludes_and_waits_for_filelock(data_file: Path) -> None:
    store = open_writer(data_file)
    store.set_model_selection("openai", "first")
    lock_path = data_file.with_name(data_file.name + ".lock")
    # While our writer holds its lock, filelock on the same file cannot have it ...
    inside, leave = threading.Event(), threading.Event()

    def slow_change(current: object) -> None:
        inside.set()
        leave.wait(timeout=30)

    holder = threading.Thread(target=store.backend.commit, args=(slow_change,),
                              kwargs={"base": store._state})
    holder.start()
    try:
        assert inside.wait(timeout=10)
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(lock_path).acquire(timeout=0)
    finally:
        leave.set()
        holder.join(timeout=10)
    # ... and while filelock holds it, our writer waits, then writes.
    other = filelock.FileLock(lock_path)
    other.acquire()
    written = threading.Event()
    writer = threading.Thread(target=lambda: (store.set_model_selection("openai", "second"),
                                              written.set()))
    writer.start()
    try:
        assert not written.wait(timeout=0.3)
        assert store.get_model_selection("openai").model_name == "first"
    finally:
        other.release()
    assert written.wait(timeout=10)
    writer.join(timeout=10)
    assert open_writer(data_file).get_model_selection("openai").model_name == "second"


def test_a_lock_held_too_long_is_one_line_and_writes_nothing(
        data_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("modelboard.core.filebackend.LOCK_TIMEOUT_S", 0.2)
    store = open_writer(data_file)
    store.set_model_selection("openai", "first")
    before = data_file.read_bytes()
    lock_path = data_file.with_name(data_file.name + ".lock")
    writer = open_writer(data_file)
    with filelock.FileLock(lock_path), pytest.raises(ConfigurationError) as error:
        writer.set_model_selection("openai", "second")
    assert "another writer has held the lock" in str(error.value)
    assert str(lock_path) in str(error.value)
    assert "\n" not in str(error.value)
    assert data_file.read_bytes() == before


def test_the_revision_is_the_content_hash_however_the_file_was_loaded(data_file: Path) -> None:
    selections = {"openai": Selection("gpt-4o"), "anthropic": Selection("claude-3-opus")}
    data_file.parent.mkdir(parents=True)
    data_file.write_bytes(render_document(selections))  # as modelboard writes it
    as_written = open_writer(data_file).snapshot.revision
    data_file.write_text('{"openai": "gpt-4o", "anthropic": {"model_name": "claude-3-opus"}}')
    by_hand = open_writer(data_file)
    assert as_written == by_hand.snapshot.revision == revision_of(selections)
    by_hand.set_model_selection("openai", "o3")
    assert by_hand.reload().revision == revision_of(by_hand.snapshot)


def test_opening_a_file_written_by_hand_hashes_it_once(data_file: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from modelboard.core import filebackend

    data_file.parent.mkdir(parents=True)
    data_file.write_text('{"openai": "gpt-4o", "anthropic": "claude-3-haiku"}')
    hashed: list[int] = []
    digest = filebackend._digest

    def counting(data: bytes) -> bytes:
        hashed.append(len(data))
        return digest(data)

    monkeypatch.setattr(filebackend, "_digest", counting)
    store = open_store(data_file)
    assert store.get_model_selection("openai").model_name == "gpt-4o"
    assert hashed == [data_file.stat().st_size]


def test_a_history_deleted_between_writes_gets_the_next_line(data_file: Path) -> None:
    # The writer keeps the history open between writes: a new file at the name (here,
    # none then a new one) must get the next line, not the deleted file it still holds.
    store = open_writer(data_file)
    store.set_model_selection("openai", "first")
    history = store.backend.history_path
    history.unlink()
    store.set_model_selection("openai", "second")
    lines = history.read_text().splitlines()
    assert len(lines) == 1 and '"new": "second"' in lines[0]
    history.rename(history.with_name("elsewhere.jsonl"))
    history.write_text("")
    store.set_model_selection("openai", "third")
    assert '"new": "third"' in history.read_text()


def test_writers_taking_turns_keep_one_unbroken_history(data_file: Path) -> None:
    # Each keeps its own view of the history's end between writes; the other's lines in
    # between must be seen, so that the chain and the revision numbers stay whole.
    first, second = open_writer(data_file), open_writer(data_file)
    for round_number in range(5):
        first.set_model_selection("openai", f"first-{round_number}")
        second.set_model_selection("anthropic", f"second-{round_number}")
    verification = first.verify_history()
    assert verification is not None and verification.problem is None
    numbers = [entry.number for entry in reversed(first.history())]
    assert numbers == list(range(1, 11))
    assert open_writer(data_file).get_model_selection("openai").model_name == "first-4"


def test_a_writer_that_gave_up_waiting_leaves_the_lock_free(
        data_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A writer that timed out must hold nothing afterwards, or every later writer would
    # wait for it.
    store = open_writer(data_file)
    store.set_model_selection("openai", "first")
    lock_path = data_file.with_name(data_file.name + ".lock")
    monkeypatch.setattr("modelboard.core.filebackend.LOCK_TIMEOUT_S", 0.2)
    holder = filelock.FileLock(lock_path)
    holder.acquire()
    try:
        with pytest.raises(ConfigurationError, match="another writer has held the lock"):
            store.set_model_selection("openai", "refused")
    finally:
        holder.release()
    monkeypatch.setattr("modelboard.core.filebackend.LOCK_TIMEOUT_S", 10.0)
    store.set_model_selection("openai", "second")
    assert open_writer(data_file).get_model_selection("openai").model_name == "second"
    with filelock.FileLock(lock_path).acquire(timeout=10):
        pass  # nobody kept it


change_strategy = st.tuples(st.sampled_from(PROVIDERS), st.sampled_from(["set", "remove"]),
                            st.sampled_from(["gpt-4o", "m\"x", "o3"]))


@settings(max_examples=200, deadline=None)
@given(selections_strategy, st.lists(st.lists(change_strategy, min_size=1, max_size=3),
                                     min_size=1, max_size=8))
def test_rendering_only_what_a_write_changed_gives_the_whole_rendering(
        start: dict[str, Selection], writes: list[list[tuple[str, str, str]]]) -> None:
    # A write renders only the providers it names when its state was built from the
    # dict the codec rendered last; adds, removals and a stale base take the long way.
    codec = DocumentCodec()
    state = dict(start)
    codec.render(state)
    for changes in writes:
        changed = dict(state)
        for provider, action, model in changes:
            if action == "set":
                changed[provider] = Selection(model)
            else:
                changed.pop(provider, None)
        named = {provider for provider, _action, _model in changes}
        assert codec.render(changed, built_from=state, rewritten=named) == \
            render_document(changed)
        state = changed
    # Named as built from a dict it did not render last: never trusted.
    other = {**state, "p1": Selection("elsewhere")}
    assert codec.render(other, built_from=dict(state), rewritten=set()) == \
        render_document(other)


def test_descriptors_closed_behind_its_back_are_not_closed_again(data_file: Path) -> None:
    # A writer keeps its last file and the history open between writes. A library that
    # daemonises closes every descriptor; the numbers then go to other files, which the
    # next write must leave open.
    data_file.parent.mkdir(parents=True)
    script = f"""
import os, sys
from modelboard.core import Catalog, open_store
store = open_store({str(data_file)!r}, catalog=Catalog.from_mapping({{"openai": None}}),
                   actor="tester")
store.set_model_selection("openai", "first")
os.closerange(3, 256)
others = [os.open(os.devnull, os.O_RDONLY) for _ in range(8)]
store.set_model_selection("openai", "second")
store.set_model_selection("openai", "third")
for fd in others:
    os.fstat(fd)  # raises if a write closed it
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
    assert '"model_name": "third"' in data_file.read_text()


def _catalog_of_600() -> Catalog:
    return Catalog.from_mapping(dict.fromkeys(f"p-{index:04d}" for index in range(600)))


def _write_in_child(path: str, model: str) -> None:
    store = open_store(path, catalog=_catalog_of_600(), actor="child")
    store.set_model_selection("p-0001", model)
    store.close()


def test_a_large_store_forked_mid_work_writes_on_in_parent_and_child(data_file: Path) -> None:
    # From 64 kB on, a write hands its hash and the closing of the replaced copy to a
    # helper thread: a fork must not leave the child waiting on a thread it lacks.
    import multiprocessing

    selections = {f"p-{index:04d}": Selection(f"model-{index}", updated_by="ops")
                  for index in range(600)}
    data_file.parent.mkdir(parents=True)
    data_file.write_bytes(render_document(selections))
    assert data_file.stat().st_size > 64 * 1024
    store = open_store(data_file, catalog=_catalog_of_600(), actor="parent")
    store.set_model_selection("p-0000", "before-the-fork")
    store.set_model_selection("p-0002", "replaced-copy-pending")
    child = multiprocessing.get_context("fork").Process(
        target=_write_in_child, args=(str(data_file), "from-the-child"))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    store.set_model_selection("p-0003", "after-the-fork")
    final = open_store(data_file, catalog=_catalog_of_600(), read_only=True)
    assert [final.get_model_selection(p).model_name for p in ("p-0000", "p-0001", "p-0003")] \
        == ["before-the-fork", "from-the-child", "after-the-fork"]
    verification = final.verify_history()
    assert verification is not None and verification.problem is None


def test_an_edit_in_place_while_a_write_finishes_is_kept_by_the_next_write(
        data_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An ordinary script rewriting the file in place just after our rename (here: while
    # the folder is synced) must not be mistaken for our own write.
    from modelboard.core import filebackend

    store = open_writer(data_file)
    store.set_model_selection("openai", "first")
    real_fsync_folder = filebackend._fsync_folder
    edited: list[bool] = []

    def sync_then_someone_edits(folder: object) -> None:
        real_fsync_folder(folder)  # type: ignore[arg-type]
        if not edited:
            edited.append(True)
            document = data_file.read_bytes().replace(b"\n}\n", b',\n  "anthropic": '
                                                      b'"claude-by-hand"\n}\n')
            with open(data_file, "r+b") as file:
                file.write(document)

    monkeypatch.setattr(filebackend, "_fsync_folder", sync_then_someone_edits)
    store.set_model_selection("openai", "second")
    assert edited
    store.set_model_selection("openai", "third")
    reread = open_writer(data_file)
    assert reread.get_model_selection("anthropic").model_name == "claude-by-hand"
    assert reread.get_model_selection("openai").model_name == "third"


def test_stores_dropped_without_close_leave_no_descriptor_open(data_file: Path) -> None:
    import gc

    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    open_writer(data_file).set_model_selection("openai", "first")
    gc.collect()
    before = open_descriptors()
    for index in range(20):
        open_writer(data_file).set_model_selection("openai", f"model-{index}")
    gc.collect()
    assert open_descriptors() <= before


def test_the_descriptor_kept_of_the_data_file_cannot_write_it(data_file: Path) -> None:
    store = open_writer(data_file)
    store.set_model_selection("openai", "first")
    store.set_model_selection("openai", "second")
    real = os.path.realpath(data_file)
    kept = [fd for fd in os.listdir("/proc/self/fd")
            if os.path.realpath(f"/proc/self/fd/{fd}") == real]
    assert kept  # the last write is held open ...
    for fd in kept:  # ... read-only: a process that drops privileges keeps no write handle
        info = Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines()
        flags = int(next(line.split()[1] for line in info if line.startswith("flags:")), 8)
        assert flags & (os.O_WRONLY | os.O_RDWR) == 0
    store.close()


many_providers_writes = st.lists(
    st.tuples(st.lists(st.integers(0, 699), min_size=1, max_size=80),
              st.sampled_from(["named", "unnamed", "parsed"]),
              st.sampled_from(["m", "a-longer-model-name", "é"])),
    min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 700), many_providers_writes)
def test_a_document_spliced_around_changed_entries_is_the_whole_rendering(
        count: int, writes: list[tuple[list[int], str, str]]) -> None:
    # Hundreds of providers, so that changes fall in several blocks of the codec's
    # offsets and change the length of their entries; past 64 changes it joins afresh.
    # "parsed": another writer's file is read back first, and the next write builds on it.
    codec = DocumentCodec()
    state = {f"provider-{i:03}": Selection(f"model-{i}") for i in range(count)}
    codec.render(state)
    providers = list(state)
    for turn, (indices, how, model) in enumerate(writes):
        changed = dict(state)
        named = {providers[index % count] for index in indices}
        for provider in named:
            changed[provider] = Selection(f"{model}-{turn}")
        expected = render_document(changed)
        if how == "parsed":
            assert codec.parse(expected, path="f.json") == changed
            # Then one more write on what was read, as a writer does after others wrote.
            changed = {**changed, providers[0]: Selection(f"after-{turn}")}
            expected = render_document(changed)
            assert codec.render(changed) == expected
        elif how == "named":
            assert codec.render(changed, built_from=state, rewritten=named) == expected
        else:
            assert codec.render(changed) == expected
        state = changed


def test_two_hand_edited_entries_that_only_fit_together_are_read_as_the_whole_file() -> None:
    # One entry opens a brace that another closes: parsed apart from the entry between
    # them they make a valid document in which "mid" survives, but in the file "mid"
    # is a field inside "a". The codec must read what the plain parse reads.
    state = {name: Selection(f"model-{name}") for name in ("a", "mid", "z")}
    codec = DocumentCodec()
    document = codec.render(state)
    entries = document[1:-len(b"\n  }\n}\n")].split(b"\n  },")
    entries[0] = b'\n  "a": {\n    "model_name": "m",\n    "n": {'
    entries[2] = b'\n    "x": 1},\n  "z": {\n    "model_name": "zz"'
    edited = b"{" + b"\n  },".join(entries) + b"\n  }\n}\n"
    assert outcome(codec.parse, edited) == outcome(parse_document, edited)
    assert list(parse_document(edited, path="f.json")) == ["a", "z"]


def test_equal_selections_that_render_differently_are_rendered_again() -> None:
    # Equal by value, not by text: 1 and 1.0 in a field of a newer version, one instant
    # in two time zones. Past 16 providers the codec looks for changed selections in
    # bulk; it must compare them by identity, never skip one for being equal.
    from datetime import UTC, datetime, timedelta, timezone
    from types import MappingProxyType

    in_utc = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    in_paris = datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    pairs = [(Selection("m", extra=MappingProxyType({"x": 1})),
              Selection("m", extra=MappingProxyType({"x": 1.0}))),
             (Selection("m", last_updated=in_utc), Selection("m", last_updated=in_paris))]
    for before, after in pairs:
        assert before == after
        state = {f"provider-{i:02}": Selection("m") for i in range(40)}
        state["provider-10"] = before
        codec = DocumentCodec()
        codec.render(state)
        changed = {**state, "provider-10": after}
        assert codec.render(changed) == render_document(changed)


@pytest.mark.parametrize("providers", [1, 2_000], ids=["small", "hashed-elsewhere"])
def test_a_write_when_no_thread_can_be_started_is_stored_and_keeps_one_descriptor(
        data_file: Path, monkeypatch: pytest.MonkeyPatch, providers: int) -> None:
    # Closing the replaced copy (and, past 64 kB, hashing the document) goes to a helper
    # thread; where none can be started (a process limit, an interpreter shutting down)
    # it is done here, and the write that reached the file is reported as done.
    from modelboard.core import filebackend

    def descriptors() -> set[str]:
        found = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # closed meanwhile
                found.add(os.readlink(f"/proc/self/fd/{fd}"))
        return found

    data_file.parent.mkdir(parents=True, exist_ok=True)
    data_file.write_text(json.dumps({f"provider-{i:04}": "m" for i in range(providers - 1)}))
    store = open_store(data_file, catalog=Catalog.from_mapping(
        {"openai": None, **{f"provider-{i:04}": None for i in range(providers - 1)}}))
    store.set_model_selection("openai", "first")
    monkeypatch.setattr(filebackend, "_helper", filebackend._Helper())

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    store.set_model_selection("openai", "second")
    monkeypatch.undo()
    assert store.get_model_selection("openai").model_name == "second"
    assert open_writer(data_file).get_model_selection("openai").model_name == "second"
    assert not [path for path in descriptors()
                if path.startswith(str(data_file.parent)) and path.endswith(" (deleted)")]
    store.close()
