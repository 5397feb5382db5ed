"""list, get, history and catalog: what they print, in text and JSON, and what they refuse."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import unicodedata
from pathlib import Path

from cli_support import CLI, Modelboard, assert_one_line_error, selection

from modelboard.core import open_store


def columns(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in line)


def test_list_prints_a_table_that_fits_80_columns(modelboard: Modelboard) -> None:
    long_model = "m" * 150
    modelboard.write({
        "openai": selection("gpt-4o"),
        "anthropic": selection("claude-3-opus", editable=False, reason="pinned for the eval"),
        "ollama": selection(long_model, by="operator-with-a-very-long-name@bastion.example"),
        "vllm": selection("qwen-模型-千问-大型语言模型-指令版本-三十二"),
    })

    outcome = modelboard("list")

    assert outcome.code == 0, outcome.err
    lines = outcome.out.splitlines()
    assert lines[0].split() == ["PROVIDER", "MODEL", "LOCK", "UPDATED", "(UTC)", "BY"]
    assert [line.split()[0] for line in lines[1:]] == ["anthropic", "ollama", "openai", "vllm"]
    assert all(columns(line) <= 80 for line in lines), lines
    assert lines[1].split()[:3] == ["anthropic", "claude-3-opus", "locked"]
    assert "2026-01-02 03:04" in lines[3] and "alice@ops" in lines[3]
    assert "mmm…" in lines[2] and long_model not in outcome.out
    assert outcome.err == ""


def test_list_json_is_one_sorted_array_of_selections(modelboard: Modelboard) -> None:
    modelboard.write({"openai": selection("gpt-4o"),
                      "anthropic": selection("claude-3-opus", editable=False, reason="eval")})

    outcome = modelboard("list", "--json")

    assert outcome.code == 0, outcome.err
    assert outcome.json() == [
        {"provider": "anthropic", "model_name": "claude-3-opus", "editable": False,
         "locked": True, "changed_at": "2026-01-02T03:04:05+00:00",
         "changed_by": "alice@ops", "lock_reason": "eval"},
        {"provider": "openai", "model_name": "gpt-4o", "editable": True, "locked": False,
         "changed_at": "2026-01-02T03:04:05+00:00", "changed_by": "alice@ops",
         "lock_reason": None},
    ]
    assert outcome.out == json.dumps(outcome.json(), indent=2, sort_keys=True) + "\n"


def test_list_warns_about_selections_the_catalog_does_not_know(modelboard: Modelboard) -> None:
    modelboard.write({"openai": "gpt-4oo", "acme": "rocket-1", "anthropic": "claude-3-haiku"})

    outcome = modelboard("list")
    listed = modelboard("list", "--json")
    got = modelboard("get", "openai")

    assert outcome.code == 0
    rows = {line.split()[0]: line for line in outcome.out.splitlines()[1:]}
    assert "rocket-1 (invalid, not served)" in rows["acme"]
    assert "gpt-4oo (invalid, not served)" in rows["openai"]
    assert "(invalid" not in rows["anthropic"]
    assert "warning: unknown provider 'acme'" in outcome.err
    typo = [line for line in outcome.err.splitlines() if "'gpt-4oo'" in line]
    assert len(typo) == 1 and "not served: a proxy keeps its last valid value" in typo[0]
    problems = {row["provider"]: row.get("catalog_problem") for row in listed.json()}
    assert problems["openai"]["kind"] == "rejected" and problems["anthropic"] is None
    assert got.out == "gpt-4oo\n" and "not served" in got.err   # what is stored, marked


def test_reading_a_missing_file_shows_nothing_and_creates_nothing(modelboard: Modelboard) -> None:
    listed = modelboard("list")
    got = modelboard("get", "openai")

    assert listed.code == 0 and listed.out == ""
    assert "does not exist yet" in listed.err
    assert_one_line_error(got, str(modelboard.file), "openai: no model selected")
    assert not modelboard.file.parent.exists()


def test_reading_a_corrupt_file_is_refused_with_its_location(modelboard: Modelboard) -> None:
    modelboard.write('{\n  "openai": "gpt-4o",\n  "anthropic": \n')
    before = modelboard.folder_state()

    for command in (["list"], ["get", "openai"], ["history"]):
        outcome = modelboard(*command)
        assert_one_line_error(outcome, f"{modelboard.file}:4:1: Expecting value")
        assert outcome.out == ""
    as_json = modelboard("list", "--json")  # the refusal is JSON on stdout, stderr stays quiet
    assert as_json.code == 1 and as_json.err == ""
    assert as_json.json()["error"]["kind"] == "configuration"
    assert f"{modelboard.file}:4:1: Expecting value" in as_json.json()["error"]["message"]
    assert modelboard.folder_state() == before  # no copy aside, no lock file


def test_get_prints_the_model_alone_or_the_whole_selection(modelboard: Modelboard) -> None:
    modelboard.write({"openai": selection("gpt-4o", editable=False, reason="launch")})

    text = modelboard("get", "openai")
    as_json = modelboard("get", "openai", "--json")

    assert (text.code, text.out, text.err) == (0, "gpt-4o\n", "")
    assert as_json.code == 0
    assert as_json.json() == {"provider": "openai", "model_name": "gpt-4o", "editable": False,
                              "locked": True, "changed_at": "2026-01-02T03:04:05+00:00",
                              "changed_by": "alice@ops", "lock_reason": "launch"}


def test_get_without_a_selection_exits_1_and_suggests_a_provider(modelboard: Modelboard) -> None:
    modelboard.write({"openai": "gpt-4o"})

    missing = modelboard("get", "anthropic")
    typo = modelboard("get", "opnai")

    assert_one_line_error(missing, str(modelboard.file), "anthropic: no model selected")
    assert missing.out == ""
    assert_one_line_error(typo, "opnai: no model selected", "did you mean 'openai'?")


def test_untrusted_text_never_reaches_the_terminal_raw(modelboard: Modelboard) -> None:
    evil_actor = "mallory\x1b[2J\x1b]0;owned\x07"
    evil_reason = "freeze\u202eezeerf\x9b31m"
    modelboard.write({"openai": selection("gpt-4o", editable=False, by=evil_actor,
                                          reason=evil_reason)})

    listed = modelboard("list")
    as_json = modelboard("list", "--json")

    for output in (listed.out, as_json.out):
        assert not any(ch in output for ch in "\x1b\x07\u202e\x9b"), repr(output)
    assert "mallory\\x1b[2J" in listed.out
    stored = as_json.json()[0]
    assert (stored["changed_by"], stored["lock_reason"]) == (evil_actor, evil_reason)


def run_on_a_terminal(modelboard: Modelboard, *args: str, env: dict[str, str]) -> str:
    """Run with stdout on a pseudo-terminal; return what it printed there."""
    controller, terminal = pty.openpty()
    try:
        environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        environment.update(MODELBOARD_FILE=str(modelboard.file), TERM="xterm", **env)
        done = subprocess.run([*CLI, *args], stdout=terminal, stderr=subprocess.PIPE,
                              env=environment, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        os.close(terminal)
        terminal = -1
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)


def test_colour_only_on_a_terminal_and_never_with_no_color(modelboard: Modelboard) -> None:
    modelboard.write({"openai": selection("gpt-4o")})

    coloured = run_on_a_terminal(modelboard, "list", env={})
    plain = run_on_a_terminal(modelboard, "list", env={"NO_COLOR": "1"})
    piped = modelboard("list", env={"NO_COLOR": ""})

    assert "\x1b[1mPROVIDER" in coloured
    assert "PROVIDER" in plain and "\x1b" not in plain
    assert piped.code == 0 and "\x1b" not in piped.out


def test_no_color_needs_a_value_and_force_color_colours_a_pipe(modelboard: Modelboard) -> None:
    """no-color.org: only a non-empty NO_COLOR disables; force-color.org likewise enables."""
    modelboard.write({"openai": selection("gpt-4o")})

    empty_no_color = run_on_a_terminal(modelboard, "list", env={"NO_COLOR": ""})
    forced_pipe = modelboard("list", env={"NO_COLOR": "", "FORCE_COLOR": "1"})
    empty_force = modelboard("list", env={"NO_COLOR": "", "FORCE_COLOR": ""})
    both = modelboard("list", env={"NO_COLOR": "1", "FORCE_COLOR": "1"})
    forced_error = modelboard("get", "anthropic", env={"NO_COLOR": "", "FORCE_COLOR": "1"})

    assert "\x1b[1mPROVIDER" in empty_no_color
    assert forced_pipe.code == 0 and "\x1b[1mPROVIDER" in forced_pipe.out
    assert "\x1b" not in empty_force.out
    assert "\x1b" not in both.out
    assert "\x1b[31m" in forced_error.err


def test_history_newest_first_filtered_and_limited(modelboard: Modelboard) -> None:
    store = open_store(modelboard.file, actor="alice@ops")
    store.set_model_selection("openai", "gpt-4o")
    store.set_model_selection("anthropic", "claude-3-opus")
    store.set_model_selection("openai", "gpt-4.1")
    store.lock("openai", reason="launch")
    store.close()

    table = modelboard("history")
    everything = modelboard("history", "--json")
    openai_two = modelboard("history", "openai", "--limit", "2", "--json")

    assert table.code == 0, table.err
    rows = table.out.splitlines()
    assert rows[0].split()[:3] == ["TIME", "(UTC)", "BY"]
    assert "lock" in rows[1] and "gpt-4.1 (launch)" in rows[1]
    assert rows[2].endswith("gpt-4o -> gpt-4.1")
    assert rows[4].endswith("(none) -> gpt-4o")
    assert [e["action"] for e in everything.json()] == ["lock", "set", "set", "set"]
    assert set(everything.json()[0]) == {"changed_at", "changed_by", "provider", "action",
                                         "old", "new", "revision", "reason", "rev",
                                         "base_revision", "before", "after"}
    assert [e["rev"] for e in everything.json()] == [4, 3, 2, 1]
    assert [(e["provider"], e["old"], e["new"]) for e in openai_two.json()] == [
        ("openai", "gpt-4.1", "gpt-4.1"), ("openai", "gpt-4o", "gpt-4.1")]


def test_catalog_lists_providers_and_models(modelboard: Modelboard, tmp_path: Path) -> None:
    extra = tmp_path / "catalog.toml"
    extra.write_text('[providers]\nacme = ["rocket-1", "rocket-2"]\n')

    everything = modelboard("catalog")
    openai = modelboard("catalog", "openai")
    local = modelboard("catalog", "ollama", "--json")
    acme = modelboard("catalog", "--json", "--catalog", str(extra))
    unknown = modelboard("catalog", "opnai")

    assert everything.code == 0
    assert all(columns(line) <= 80 for line in everything.out.splitlines())
    assert any(line.startswith("ollama") and "(any model name)" in line
               for line in everything.out.splitlines())
    assert openai.out.splitlines()[:2] == ["gpt-5", "gpt-5-mini"]
    assert local.json() == {"provider": "ollama", "models": [], "any_model": True}
    assert {"provider": "acme", "models": ["rocket-1", "rocket-2"], "any_model": False} \
        in acme.json()
    assert_one_line_error(unknown, "unknown provider 'opnai'", "did you mean 'openai'")


def test_a_bad_catalog_file_is_refused_with_its_location(modelboard: Modelboard,
                                                         tmp_path: Path) -> None:
    broken = tmp_path / "catalog.json"
    broken.write_text('{"providers": {"acme": [1, }}')

    outcome = modelboard("list", "--catalog", str(broken))

    assert_one_line_error(outcome, f"{broken}:1:", "not a valid catalog")
