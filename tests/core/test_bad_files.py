"""A corpus of bad selections files: each gives one clear line naming the spot, and
nothing on disk changes; a corrupt file at start-up is copied aside and the store
starts from the last good backup."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelboard.core import open_store
from modelboard.core.errors import ConfigurationError

GOOD = {"openai": {"model_name": "gpt-4o", "editable": True, "last_updated": None}}


@dataclass(frozen=True)
class BadFile:
    name: str
    content: bytes
    reason: str                       # a fragment the message must contain
    where: tuple[int, int] | None     # line, column; None when no spot applies


CORPUS = [
    BadFile("empty", b"", "file is empty", (1, 1)),
    BadFile("only-whitespace", b"\n\n  \n", "file is empty", (1, 1)),
    BadFile("not-json", b"openai = gpt-4\n", "Expecting value", (1, 1)),
    BadFile("yaml", b"openai:\n  model_name: gpt-4\n", "Expecting value", (1, 1)),
    BadFile("truncated", b'{\n  "openai": {\n    "model_name": "gpt-4"',
            "Expecting ',' delimiter", (3, 26)),
    BadFile("truncated-after-comma", b'{\n  "openai": "gpt-4",\n', "expecting a provider name",
            (3, 1)),
    BadFile("trailing-garbage", b'{"openai": "gpt-4"}\n}\n', "unexpected text", (2, 1)),
    BadFile("top-level-array", b'[{"openai": "gpt-4"}]', "not an array", (1, 1)),
    BadFile("top-level-null", b"null", "not null", (1, 1)),
    BadFile("model-is-number", b'{\n  "openai": {"model_name": 42}\n}',
            "model name must be a string", (2, 3)),
    BadFile("entry-is-null", b'{"openai": null}', "not null", (1, 2)),
    BadFile("entry-is-list", b'{\n"a": "gpt-4",\n"openai": ["gpt-4"]}', "not an array", (3, 1)),
    BadFile("missing-model", b'{"openai": {"editable": true}}', "missing model_name", (1, 2)),
    BadFile("editable-string", b'{"openai": {"model_name": "gpt-4", "editable": "yes"}}',
            "editable must be true or false", (1, 2)),
    BadFile("bad-timestamp", b'{"openai": {"model_name": "gpt-4", "last_updated": "yesterday"}}',
            "not an ISO 8601 time", (1, 2)),
    BadFile("updated-by-number", b'{"openai": {"model_name": "gpt-4", "updated_by": 7}}',
            "updated_by must be a string", (1, 2)),
    BadFile("bom", b'\xef\xbb\xbf{"openai": "gpt-4"}', "byte order mark", (1, 1)),
    BadFile("not-utf8", b'{\n  "openai": "gpt-\xff4"\n}', "not valid UTF-8", (2, 18)),
    BadFile("nan", b'{\n  "openai": {"model_name": "gpt-4", "t": NaN}\n}',
            "NaN is not valid JSON", (2, 42)),
    BadFile("infinity", b'{"openai": {"model_name": "gpt-4", "t": -Infinity}}',
            "-Infinity is not valid JSON", (1, 41)),
    BadFile("overflowing-number", b'{"openai": {"model_name": "gpt-4", "t": 1e400}}',
            "out of range", (1, 41)),
    BadFile("duplicate-provider", b'{\n  "openai": "gpt-4",\n  "openai": "gpt-4o"\n}',
            "duplicate provider 'openai'", (3, 3)),
    BadFile("duplicate-field", b'{"openai": {"model_name": "gpt-4", "model_name": "gpt-4o"}}',
            "duplicate key 'model_name'", (1, 12)),
    BadFile("deep-nesting", b'{"openai": {"model_name": "gpt-4", "x": ' + b"[" * 100_000
            + b"]" * 100_000 + b"}}", "nesting deeper than", (1, 12)),
    BadFile("moderate-nesting", b'{"openai": {"model_name": "gpt-4", "x": ' + b"[" * 200
            + b"]" * 200 + b"}}", "nesting deeper than", (1, 12)),
    BadFile("escape-in-provider", b'{"\\u001b[31mopenai": "gpt-4"}', "control character U+001B",
            (1, 2)),
    BadFile("bell-in-model", b'{\n  "openai": "gpt\\u0007-4"\n}', "control character U+0007",
            (2, 3)),
    BadFile("bidi-override-in-model", b'{"openai": "gpt-4\\u202e"}', "control character U+202E",
            (1, 2)),
    BadFile("raw-newline-in-string", b'{"openai": "gpt\n-4"}', "Invalid control character",
            (1, 16)),
    BadFile("empty-provider", b'{"": "gpt-4"}', "provider name is empty", (1, 2)),
    BadFile("padded-model", b'{"openai": " gpt-4"}', "leading or trailing spaces", (1, 2)),
    BadFile("lone-surrogate", b'{"openai": {"model_name": "gpt-4", "note": "\\ud800"}}',
            "lone surrogate", (1, 2)),
    BadFile("huge", b'{"openai": {"model_name": "gpt-4", "pad": "' + b"x" * (33 * 1024 * 1024)
            + b'"}}', "is over 32 MiB", None),
]


def only_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message and "\r" not in message, message
    assert message.isprintable(), f"terminal-unsafe message: {message!r}"
    return message


def check_error(error: BaseException | None, data_file: Path, bad: BadFile) -> None:
    assert isinstance(error, ConfigurationError), error
    message = only_line(error)
    assert bad.reason in message
    assert error.path is not None and error.path.endswith("model_selections.json")
    if bad.where is None:
        assert message.startswith(f"{data_file}: ")
    else:
        assert (error.line, error.column) == bad.where, message
        assert message.startswith(f"{data_file}:{bad.where[0]}:{bad.where[1]}: ")


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file's bytes; a lock file's only as "there" (it says who held it last)."""
    return {p.name: b"(lock)" if p.name.endswith(".lock") else p.read_bytes()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("bad", CORPUS, ids=[b.name for b in CORPUS])
def test_bad_file_seen_on_reload_raises_one_line_and_changes_nothing(
        data_file: Path, bad: BadFile) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    good_revision = store.snapshot.revision
    data_file.write_bytes(bad.content)
    before = files_in(data_file.parent)

    with pytest.raises(ConfigurationError) as raised:
        store.reload()
    check_error(raised.value, data_file, bad)
    assert store.load_error is raised.value
    assert store.snapshot.revision == good_revision
    assert store.get_model_selection("openai").model_name == "gpt-4o"

    # A write now must not overwrite what someone is in the middle of editing.
    with pytest.raises(ConfigurationError) as refused:
        store.set_model_selection("anthropic", "claude-3-opus")
    check_error(refused.value, data_file, bad)
    assert files_in(data_file.parent) == before


@pytest.mark.parametrize("bad", CORPUS, ids=[b.name for b in CORPUS])
def test_bad_file_at_start_up_is_copied_aside_and_left_untouched(
        data_file: Path, bad: BadFile) -> None:
    data_file.parent.mkdir(parents=True)
    data_file.write_bytes(bad.content)

    store = open_store(data_file)

    check_error(store.load_error, data_file, bad)
    assert len(store.snapshot) == 0
    assert store.recovery_notice is not None
    only_line(store.recovery_notice)
    assert "started from an empty state" in store.recovery_notice
    assert data_file.read_bytes() == bad.content
    copies = list(data_file.parent.glob("model_selections.json.corrupt-*"))
    assert len(copies) == 1 and copies[0].read_bytes() == bad.content
    assert re.fullmatch(r"model_selections\.json\.corrupt-\d{8}T\d{12}Z", copies[0].name)
    assert str(copies[0]) in store.recovery_notice


def test_folder_where_the_file_should_be(data_file: Path) -> None:
    data_file.mkdir(parents=True)
    (data_file / "keep.txt").write_text("mine")

    store = open_store(data_file)
    assert isinstance(store.load_error, ConfigurationError)
    assert only_line(store.load_error) == f"{data_file}: is a folder, not a file"
    with pytest.raises(ConfigurationError, match="is a folder, not a file"):
        store.reload()
    with pytest.raises(ConfigurationError, match="is a folder, not a file"):
        store.set_model_selection("openai", "gpt-4o")
    assert data_file.is_dir() and (data_file / "keep.txt").read_text() == "mine"
    # Only the writers' lock file (and its twin) appeared; no data file, backup or history.
    assert sorted(p.name for p in data_file.parent.iterdir()) == [
        ".model_selections.json.lock", "model_selections.json", "model_selections.json.lock"]


def test_corrupt_file_at_start_up_recovers_from_the_last_good_backup(data_file: Path) -> None:
    first = open_store(data_file, actor="alice")
    first.set_model_selection("openai", "gpt-4o")
    first.set_model_selection("anthropic", "claude-3-opus")
    good_bytes = data_file.read_bytes()
    corrupt = good_bytes[: len(good_bytes) // 2]   # a deploy cut short
    data_file.write_bytes(corrupt)

    store = open_store(data_file, actor="bob")

    assert isinstance(store.load_error, ConfigurationError)
    assert store.recovery_notice is not None
    assert "started from the last good backup" in store.recovery_notice
    assert store.get_model_selection("openai").model_name == "gpt-4o"
    assert store.get_model_selection("anthropic").model_name == "claude-3-opus"
    (copy,) = data_file.parent.glob("model_selections.json.corrupt-*")
    assert copy.read_bytes() == corrupt
    assert data_file.read_bytes() == corrupt  # nothing writes until someone changes something

    store.set_model_selection("mistral", "mistral-large-latest")
    stored = json.loads(data_file.read_text())
    assert {p: e["model_name"] for p, e in stored.items()} == {
        "openai": "gpt-4o", "anthropic": "claude-3-opus", "mistral": "mistral-large-latest"}
    assert copy.read_bytes() == corrupt  # the copy aside survives the repair


def test_corrupt_file_and_corrupt_backup_start_empty(data_file: Path) -> None:
    open_store(data_file).set_model_selection("openai", "gpt-4o")
    data_file.write_bytes(b"{")
    data_file.with_name("model_selections.json.bak").write_bytes(b"[")
    store = open_store(data_file)
    assert len(store.snapshot) == 0
    assert "started from an empty state" in (store.recovery_notice or "")


def test_read_only_store_on_a_corrupt_file_copies_nothing(data_file: Path) -> None:
    data_file.parent.mkdir(parents=True)
    data_file.write_bytes(b'{"openai": ')
    store = open_store(data_file, read_only=True)
    assert isinstance(store.load_error, ConfigurationError)
    assert [p.name for p in data_file.parent.iterdir()] == ["model_selections.json"]


def test_a_good_file_after_a_bad_one_clears_the_error(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    data_file.write_text('{"openai": ')
    with pytest.raises(ConfigurationError):
        store.reload()
    data_file.write_text(json.dumps({"openai": "gpt-4.1"}))
    store.reload()
    assert store.load_error is None
    assert store.get_model_selection("openai").model_name == "gpt-4.1"
