"""The selections file on disk: its form, legacy entries, unknown fields, modes, symlinks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from modelboard.core import open_store
from modelboard.core.errors import ReadOnlyError
from modelboard.core.fileformat import parse_document, render_document


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_file_is_written_sorted_with_two_space_indent_and_final_newline(data_file: Path) -> None:
    store = open_store(data_file, actor="alice")
    store.set_model_selection("openai", "gpt-4o")
    store.set_model_selection("anthropic", "claude-sonnet-4-5")
    text = data_file.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert list(data) == ["anthropic", "openai"]
    assert data["openai"] == {
        "editable": True,
        "last_updated": data["openai"]["last_updated"],
        "model_name": "gpt-4o",
        "updated_by": "alice",
    }
    assert text.startswith('{\n  "anthropic": {\n    "editable": true,')


def test_legacy_file_is_read_and_rewritten_in_the_current_form(data_file: Path) -> None:
    write_json(data_file, {"openai": "gpt-4", "anthropic": "claude-3-sonnet"})
    store = open_store(data_file)
    assert store.get_model_selection("openai").model_name == "gpt-4"
    assert store.get_model_selection("openai").editable is True
    assert store.get_model_selection("anthropic").last_updated is None
    assert store.load_error is None

    store.set_model_selection("openai", "gpt-4o")
    data = json.loads(data_file.read_text())
    # Both entries are in the current form now, the untouched one included.
    assert data["anthropic"] == {"editable": True, "last_updated": None,
                                 "model_name": "claude-3-sonnet"}
    assert data["openai"]["model_name"] == "gpt-4o"
    assert data["openai"]["editable"] is True


def test_mixed_legacy_and_current_entries_are_read_entry_by_entry(data_file: Path) -> None:
    write_json(data_file, {
        "openai": "gpt-4",
        "anthropic": {"model_name": "claude-3-opus", "editable": False,
                      "last_updated": "2024-01-01T00:00:00", "updated_by": "bob"},
    })
    store = open_store(data_file)
    anthropic = store.get_model_selection("anthropic")
    assert (anthropic.model_name, anthropic.editable, anthropic.updated_by) == (
        "claude-3-opus", False, "bob")
    assert anthropic.last_updated is not None and anthropic.last_updated.year == 2024
    assert store.get_model_selection("openai").model_name == "gpt-4"

    store.set_model_selection("mistral", "mistral-large-latest")
    data = json.loads(data_file.read_text())
    assert data["openai"] == {"editable": True, "last_updated": None, "model_name": "gpt-4"}
    assert data["anthropic"]["last_updated"] == "2024-01-01T00:00:00"
    assert data["anthropic"]["editable"] is False


def test_unknown_fields_are_kept_on_rewrite(data_file: Path) -> None:
    write_json(data_file, {
        "openai": {"model_name": "gpt-4", "editable": True, "last_updated": None,
                   "temperature": 0.2, "routing": {"weights": [1, 2], "region": "eu"}},
        "anthropic": {"model_name": "claude-3-opus", "owner_team": "search"},
    })
    store = open_store(data_file)
    assert dict(store.get_model_selection("openai").extra) == {
        "temperature": 0.2, "routing": {"weights": [1, 2], "region": "eu"}}

    store.set_model_selection("openai", "gpt-4o")   # rewrites the entry that has them
    store.lock("anthropic", reason="audit")          # and one changed only in its lock
    data = json.loads(data_file.read_text())
    assert data["openai"]["temperature"] == 0.2
    assert data["openai"]["routing"] == {"weights": [1, 2], "region": "eu"}
    assert data["openai"]["model_name"] == "gpt-4o"
    assert data["anthropic"]["owner_team"] == "search"
    assert data["anthropic"]["editable"] is False


def test_new_file_is_created_private(data_file: Path) -> None:
    open_store(data_file).set_model_selection("openai", "gpt-4o")
    assert stat.S_IMODE(data_file.stat().st_mode) == 0o600


def test_existing_mode_is_kept(data_file: Path) -> None:
    write_json(data_file, {"openai": "gpt-4"})
    data_file.chmod(0o640)
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    store.set_model_selection("openai", "gpt-4.1")
    assert stat.S_IMODE(data_file.stat().st_mode) == 0o640


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away")
def test_existing_owner_is_kept_when_root_writes(data_file: Path) -> None:
    write_json(data_file, {"openai": "gpt-4"})
    os.chown(data_file, 65534, 65534)
    open_store(data_file).set_model_selection("openai", "gpt-4o")
    assert (data_file.stat().st_uid, data_file.stat().st_gid) == (65534, 65534)


def test_symlinked_file_is_written_through_to_its_target(tmp_path: Path) -> None:
    real = tmp_path / "deploy" / "selections.json"
    write_json(real, {"openai": "gpt-4"})
    link = tmp_path / "model_selections.json"
    link.symlink_to(real)

    store = open_store(link)
    store.set_model_selection("openai", "gpt-4o")

    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads(real.read_text())["openai"]["model_name"] == "gpt-4o"
    # Files beside the data file live beside the target, where the data is.
    assert (real.parent / "selections.json.bak").exists()
    assert (real.parent / "selections.history.jsonl").exists()
    assert not (tmp_path / "model_selections.json.bak").exists()


def test_selections_persist_across_a_new_process(data_file: Path) -> None:
    store = open_store(data_file, actor="alice")
    store.set_model_selection("openai", "gpt-4o")
    store.lock("openai", reason="incident 42")
    store.set_model_selection("vllm", "my-finetune")

    code = (
        "import sys\n"
        "from modelboard.core import open_store\n"
        "s = open_store(sys.argv[1])\n"
        "o = s.get_model_selection('openai')\n"
        "print(o.model_name, o.editable, o.updated_by, o.lock_reason, "
        "s.get_model_selection('vllm').model_name, sep='|')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(data_file)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "gpt-4o|False|alice|incident 42|my-finetune"


def test_files_beside_the_data_file(data_file: Path) -> None:
    store = open_store(data_file)
    store.set_model_selection("openai", "gpt-4o")
    names = sorted(p.name for p in data_file.parent.iterdir())
    assert names == [".model_selections.json.lock", "model_selections.history.jsonl",
                     "model_selections.json", "model_selections.json.bak",
                     "model_selections.json.lock"]
    assert data_file.with_name("model_selections.json.bak").read_bytes() == data_file.read_bytes()


def test_read_only_store_writes_nothing_not_even_a_lock_file(data_file: Path) -> None:
    write_json(data_file, {"openai": "gpt-4"})
    before = sorted(p.name for p in data_file.parent.iterdir())
    store = open_store(data_file, read_only=True)
    assert store.get_model_selection("openai").model_name == "gpt-4"
    for attempt in (lambda: store.set_model_selection("openai", "gpt-4o"),
                    lambda: store.lock("openai"),
                    lambda: store.remove_model_selection("openai")):
        try:
            attempt()
        except ReadOnlyError as error:
            assert str(data_file) in str(error) and "read-only" in str(error)
        else:
            raise AssertionError("a read-only store accepted a write")
    assert sorted(p.name for p in data_file.parent.iterdir()) == before


def test_render_matches_json_dumps_for_a_realistic_document() -> None:
    text = (b'{"z": {"model_name": "m\\u00e9", "editable": false, "n": [1, {"b": null, "a": 1.5}],'
            b' "last_updated": "2024-05-01T10:00:00+00:00", "lock_reason": "\\u2603"},'
            b' "a": "legacy"}')
    selections = parse_document(text, path="x")
    expected = {p: s.to_json() for p, s in selections.items()}
    assert render_document(selections).decode() == json.dumps(
        expected, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_sweeping_temp_files_spares_other_files_whose_names_match_as_a_pattern(
        tmp_path: Path) -> None:
    # "[1]" in a name is a glob character class: ".sel[1].json.*.tmp" would match the
    # temp file another writer of sel1.json, holding its own lock, is writing right now.
    others_write = tmp_path / ".sel1.json.tmp-0123456789abcdef"
    others_write.write_text("{}\n")
    # sel[1].json.staging's temp file starts like sel[1].json's: matched exactly, it is spared.
    staging_write = tmp_path / ".sel[1].json.staging.tmp-0123456789abcdef"
    staging_write.write_text("{}\n")
    killed_writer = tmp_path / ".sel[1].json.tmp-fedcba9876543210"
    killed_writer.write_text("{")

    open_store(tmp_path / "sel[1].json").set_model_selection("openai", "gpt-4o")

    assert others_write.exists() and staging_write.exists()
    assert not killed_writer.exists()
