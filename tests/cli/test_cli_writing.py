"""set, lock, unlock and remove: the file on disk after each success, untouched after each refusal."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from cli_support import Modelboard, assert_one_line_error, selection

NOBODY = 65534


def test_set_writes_the_file_and_says_old_to_new(modelboard: Modelboard) -> None:
    first = modelboard("set", "openai", "gpt-4o", "--actor", "deploy@ci")
    second = modelboard("set", "openai", "gpt-4.1")
    again = modelboard("set", "openai", "gpt-4.1")

    assert (first.code, first.out, first.err) == (0, "openai: (none) -> gpt-4o\n", "")
    assert (second.code, second.out) == (0, "openai: gpt-4o -> gpt-4.1\n")
    assert (again.code, again.out) == (0, "openai: already gpt-4.1\n")
    stored = modelboard.stored()["openai"]
    assert stored["model_name"] == "gpt-4.1" and stored["editable"] is True
    assert stored["updated_by"].startswith("tester@")
    history = modelboard.file.with_name("model_selections.history.jsonl").read_text()
    actors = [json.loads(line)["actor"] for line in history.splitlines()]
    assert actors[0] == "deploy@ci" and len(actors) == 2


def test_set_refuses_a_model_the_provider_does_not_serve(modelboard: Modelboard) -> None:
    before = modelboard.write({"openai": selection("gpt-4o")})

    outcome = modelboard("set", "openai", "gpt-9o")
    unknown = modelboard("set", "acme", "rocket-1")
    control = modelboard("set", "openai", "gpt-4o\x1b[2J")

    assert_one_line_error(outcome, "openai: model 'gpt-9o' is not served by openai",
                          "did you mean")
    assert_one_line_error(unknown, "unknown provider 'acme'")
    assert_one_line_error(control, "control character U+001B")
    assert "\x1b" not in control.err
    assert modelboard.file.read_bytes() == before


def test_set_with_expect_applies_only_over_the_expected_model(modelboard: Modelboard) -> None:
    modelboard.write({"openai": selection("gpt-4o", by="bob@ops")})

    stale = modelboard("set", "openai", "gpt-4.1", "--expect", "gpt-4")
    not_new = modelboard("set", "openai", "gpt-4.1", "--expect", "")
    before = modelboard.file.read_bytes()
    current = modelboard("set", "openai", "gpt-4.1", "--expect", "gpt-4o")
    new = modelboard("set", "anthropic", "claude-3-opus", "--expect", "")

    assert_one_line_error(stale, str(modelboard.file), "openai: conflict", "'gpt-4o'",
                          "set by bob@ops", "expected 'gpt-4'", "'gpt-4.1' was not applied")
    assert_one_line_error(not_new, "openai: conflict", "expected not selected")
    assert before == json.dumps({"openai": selection("gpt-4o", by="bob@ops")}, indent=2).encode()
    assert current.code == 0 and current.out == "openai: gpt-4o -> gpt-4.1\n"
    assert new.code == 0, new.err
    assert {p: e["model_name"] for p, e in modelboard.stored().items()} == {
        "openai": "gpt-4.1", "anthropic": "claude-3-opus"}


def test_lock_unlock_and_remove_and_what_a_lock_refuses(modelboard: Modelboard) -> None:
    modelboard.write({"openai": selection("gpt-4o"), "anthropic": selection("claude-3-opus")})

    locked = modelboard("lock", "openai", "--reason", "launch\tweek")
    assert (locked.code, locked.out) == (0, "openai: gpt-4o locked (launch week)\n")
    assert modelboard.stored()["openai"]["editable"] is False
    assert modelboard.stored()["openai"]["lock_reason"] == "launch week"
    while_locked = modelboard.file.read_bytes()

    set_refused = modelboard("set", "openai", "gpt-4.1")
    remove_refused = modelboard("remove", "openai")
    assert_one_line_error(set_refused, str(modelboard.file), "openai: selection is locked",
                          "launch week", "unlock it first")
    assert_one_line_error(remove_refused, "openai: selection is locked")
    assert modelboard.file.read_bytes() == while_locked

    unlocked = modelboard("unlock", "openai")
    removed = modelboard("remove", "anthropic")
    assert (unlocked.code, unlocked.out) == (0, "openai: gpt-4o unlocked\n")
    assert (removed.code, removed.out) == (0, "anthropic: claude-3-opus removed\n")
    assert set(modelboard.stored()) == {"openai"}
    assert modelboard.stored()["openai"]["editable"] is True


def test_lock_unlock_and_remove_need_a_selection(modelboard: Modelboard) -> None:
    before = modelboard.write({"openai": selection("gpt-4o")})

    for command in ("lock", "unlock", "remove"):
        outcome = modelboard(command, "anthropic")
        assert_one_line_error(outcome, str(modelboard.file), "anthropic: no model selected")
    assert modelboard.file.read_bytes() == before


def test_writes_refuse_a_corrupt_file_and_leave_it_alone(modelboard: Modelboard) -> None:
    modelboard.write('{\n  "openai": {"model_name": "gpt-4o",}\n}\n')
    before = modelboard.folder_state()

    for command in (["set", "openai", "gpt-4.1"], ["lock", "openai"], ["remove", "openai"]):
        outcome = modelboard(*command)
        assert_one_line_error(outcome, f"{modelboard.file}:2:")
    assert modelboard.folder_state() == before  # not overwritten, not even copied aside


def test_read_only_refuses_every_write_and_creates_nothing(modelboard: Modelboard) -> None:
    outcome = modelboard("--read-only", "set", "openai", "gpt-4o")

    assert_one_line_error(outcome, "opened read-only; nothing was written")
    assert not modelboard.file.parent.exists()


def test_a_folder_that_cannot_be_created_is_one_line(modelboard: Modelboard) -> None:
    outcome = modelboard("set", "openai", "gpt-4o", "--file", "/proc/modelboard/x.json")

    assert_one_line_error(outcome, "/proc/modelboard: cannot create folder")


# Drops to an unprivileged user after the imports (Python itself lives under /root).
# The interpreter may live where nobody cannot read (a pyenv under /root): what the
# command imports lazily (argparse's gettext and locale) is imported before the drop.
AS_NOBODY = textwrap.dedent(f"""
    import gettext, locale, os, sys
    import shutil  # argparse imports it lazily too
    from modelboard.core.cli import main
    os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_a_read_only_folder_is_one_line_and_the_file_stays() -> None:
    shared = Path(tempfile.mkdtemp(prefix="modelboard-cli-test-"))  # tmp_path is root's only
    try:
        shared.chmod(0o755)
        modelboard = Modelboard(shared / "config" / "model_selections.json")
        modelboard.write({"openai": selection("gpt-4o")})
        modelboard.file.parent.chmod(0o755)  # root's folder: nobody may create files in it
        modelboard.file.chmod(0o644)
        before = modelboard.folder_state()

        outcome = modelboard("set", "openai", "gpt-4.1",
                             prefix=[sys.executable, "-c", AS_NOBODY])

        assert_one_line_error(outcome, "model_selections.json.lock: cannot take the lock",
                              "Permission denied")
        assert modelboard.folder_state() == before
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _limit_file_size() -> None:
    import resource
    import signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_a_full_disk_is_one_line_and_the_file_stays(modelboard: Modelboard) -> None:
    # A field from a newer version is kept on rewrite, so the new file passes the limit.
    modelboard.write({"openai": {**selection("gpt-4o"), "notes": "x" * 6000}})
    lock = modelboard.file.with_name("model_selections.json.lock")
    lock.touch()  # as an earlier write left it, with its twin
    os.link(lock, modelboard.file.with_name(".model_selections.json.lock"))
    before = modelboard.folder_state()

    outcome = modelboard("set", "openai", "gpt-4.1", preexec_fn=_limit_file_size)

    assert_one_line_error(outcome, "disk full", "the previous file is intact")
    assert modelboard.folder_state() == before


def test_global_options_go_before_or_after_the_command(modelboard: Modelboard,
                                                       tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"

    before = modelboard("--file", str(elsewhere), "--actor", "ci@runner", "set", "openai",
                        "gpt-4o")
    after = modelboard("get", "openai", "--file", str(elsewhere))
    from_environment = modelboard("get", "openai")  # MODELBOARD_FILE, which is still empty

    assert before.code == 0, before.err
    assert (after.code, after.out) == (0, "gpt-4o\n")
    assert json.loads(elsewhere.read_text())["openai"]["updated_by"] == "ci@runner"
    assert_one_line_error(from_environment, str(modelboard.file), "no model selected")


def test_an_actor_with_control_characters_is_a_usage_error(modelboard: Modelboard) -> None:
    outcome = modelboard("set", "openai", "gpt-4o", "--actor", "eve\x1b[31m")

    assert_one_line_error(outcome, "--actor", code=2)
    assert not modelboard.file.parent.exists()
