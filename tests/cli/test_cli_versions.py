"""``log``, ``show``, ``diff``, ``rollback`` and ``audit verify`` as real processes."""

from __future__ import annotations

import json

from cli_support import Modelboard, assert_one_line_error

from modelboard.core import Catalog, ProviderSpec
from modelboard.core.filebackend import FileBackend
from modelboard.core.store import SelectionStore


def three_revisions(modelboard: Modelboard) -> None:
    for args in (("set", "openai", "gpt-4o", "--reason", "launch default"),
                 ("set", "anthropic", "claude-3-opus"),
                 ("set", "openai", "gpt-4.1", "--reason", "try 4.1")):
        assert modelboard(*args, "--actor", "alice@ops").code == 0


def test_log_lists_revisions_newest_first_with_their_reasons(modelboard: Modelboard) -> None:
    three_revisions(modelboard)
    assert modelboard("lock", "anthropic", "--reason", "contract", "--actor", "bob@ops").code == 0

    table = modelboard("log")
    limited = modelboard("log", "--limit", "2", "--json")
    touching = modelboard("log", "--provider", "openai", "--json")

    assert table.code == 0, table.err
    rows = table.out.splitlines()
    assert rows[0].split() == ["REV", "TIME", "(UTC)", "BY", "CHANGE", "(REASON)"]
    assert rows[1].split()[0] == "4" and rows[1].endswith("anthropic: locked (contract)")
    assert rows[2].endswith("openai: gpt-4o -> gpt-4.1 (try 4.1)")
    assert rows[4].endswith("openai: set to gpt-4o (launch default)")
    assert [(r["rev"], r["changed_by"]) for r in limited.json()] == [(4, "bob@ops"), (3, "alice@ops")]
    assert [r["rev"] for r in touching.json()] == [3, 1]
    assert touching.json()[0]["entries"][0]["old"] == "gpt-4o"


def test_show_prints_the_document_as_the_file_held_it(modelboard: Modelboard) -> None:
    three_revisions(modelboard)
    shown = modelboard("show", "2")
    assert shown.code == 0, shown.err
    document = json.loads(shown.out)
    assert {p: e["model_name"] for p, e in document.items()} == {
        "openai": "gpt-4o", "anthropic": "claude-3-opus"}
    assert modelboard("show", "3").out == modelboard.file.read_text()
    assert_one_line_error(modelboard("show", "9"), "there is no revision 9 (the newest is 3)")


def test_diff_compares_two_revisions_or_one_with_now(modelboard: Modelboard) -> None:
    three_revisions(modelboard)
    assert modelboard("diff", "1").out.splitlines() == [
        "anthropic: (none) -> claude-3-opus", "openai: gpt-4o -> gpt-4.1"]
    assert modelboard("diff", "2", "3", "--json").json()[0]["new"]["model_name"] == "gpt-4.1"
    assert modelboard("diff", "3").out == "revision 3 and now are the same\n"


def test_rollback_writes_one_revision_and_keeps_locked_providers(
        modelboard: Modelboard) -> None:
    three_revisions(modelboard)
    assert modelboard("set", "anthropic", "claude-3-5-sonnet").code == 0
    assert modelboard("lock", "anthropic").code == 0

    done = modelboard("rollback", "1", "--reason", "4.1 regressed", "--actor", "bob@ops")

    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        "rolled back to revision 1 as revision 6:",
        "openai: gpt-4.1 -> gpt-4o",
        "kept as they are (locked): anthropic; unlock them first, or pass --include-locked"]
    assert {p: e["model_name"] for p, e in modelboard.stored().items()} == {
        "openai": "gpt-4o", "anthropic": "claude-3-5-sonnet"}
    newest = modelboard("log", "--limit", "1", "--json").json()[0]
    assert (newest["rev"], newest["changed_by"], newest["reason"]) == (
        6, "bob@ops", "rollback to 1: 4.1 regressed")

    everything = modelboard("rollback", "1", "--include-locked", "--json")
    assert everything.json()["kept_locked"] == [] and everything.json()["rev"] == 7
    assert set(modelboard.stored()) == {"openai"}
    again = modelboard("rollback", "1")
    assert again.out == "nothing to change: already as revision 1\n"
    assert modelboard("audit", "verify").out.startswith("7 revisions verified")


def test_audit_verify_names_the_first_broken_link(modelboard: Modelboard) -> None:
    three_revisions(modelboard)
    whole = modelboard("audit", "verify")
    assert (whole.code, whole.out) == (
        0, "3 revisions verified (3 lines in 1 file): the chain is whole\n")

    history = modelboard.file.with_name("model_selections.history.jsonl")
    lines = history.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("claude-3-opus", "claude-3-haiku")
    history.write_text("".join(lines))

    broken = modelboard("audit", "verify")
    assert_one_line_error(broken, "history broken at model_selections.history.jsonl line 2",
                          "does not match its hash")
    as_json = modelboard("audit", "verify", "--json")
    assert as_json.code == 1
    [problem] = as_json.json()["problems"]
    assert (problem["file"], problem["line"]) == ("model_selections.history.jsonl", 2)


def test_show_and_diff_read_through_rotated_history(modelboard: Modelboard) -> None:
    catalog = Catalog([ProviderSpec("openai", any_model=True)])
    store = SelectionStore(FileBackend(modelboard.file, history_rotate_bytes=2000),
                           catalog=catalog)
    for n in range(1, 21):
        store.set_model_selection("openai", f"model-{n}")
    folder = sorted(p.name for p in modelboard.file.parent.iterdir())
    assert "model_selections.history.000001.jsonl.gz" in folder

    assert json.loads(modelboard("show", "2").out)["openai"]["model_name"] == "model-2"
    assert modelboard("diff", "2", "19").out == "openai: model-2 -> model-19\n"
    assert modelboard("log", "--limit", "1", "--json").json()[0]["rev"] == 20
    assert modelboard("audit", "verify").out.startswith("20 revisions verified")
