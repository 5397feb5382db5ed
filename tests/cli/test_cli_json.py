"""Every command's ``--json``, through the real command line, checked against the schema the
package ships (``modelboard/core/cli/schema.json``), on a file store and on a real Redis.

The scenario runs each command that takes ``--json``, its refusals and a usage error
included; a command the parser has and the scenario (or the schema) does not is a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cli_support import CLI
from fleet_readers import TEST_HEARTBEAT_S, reader_processes, wait_until

from modelboard.core.cli import build_parser
from modelboard.core.cli.parser import NO_JSON

# The Redis tests' own server (a real redis-server on a free loopback port), shared here.
sys.path.insert(0, str(Path(__file__).parent.parent / "redis"))
from redis_server import RedisServer, redis_server_binary

WAIT_S = 20
ACTOR = "tester-json@ci"
#: The names of the vocabulary the commands used before they shared one.
OLD_NAMES = {"updated_by", "last_updated", "actor", "time", "segment", "segments", "path",
             "reason_text"}


def _schema() -> dict[str, Any]:
    text = resources.files("modelboard.core.cli").joinpath("schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


SCHEMA = _schema()


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = (action for action in parser._actions
                   if isinstance(action, argparse._SubParsersAction))
    return dict(commands.choices)


JSON_COMMANDS = {name for name in _subcommands() if name not in NO_JSON}


def check(command: str, document: Any) -> None:
    """``document`` is what ``$defs["command.<command>"]`` allows, in the one vocabulary."""
    assert f"command.{command}" in SCHEMA["$defs"], f"no schema for {command}"
    validator = jsonschema.Draft202012Validator(
        {**SCHEMA, "$ref": f"#/$defs/command.{command}"},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:  # the deepest reason, not "is not valid under any of the schemas"
        while error.context:
            error = jsonschema.exceptions.best_match(error.context)
        raise AssertionError(f"{command}: at {list(error.absolute_path)}: {error.message}")
    for key, value in _walk(document):
        assert key not in OLD_NAMES, f"{command} prints the old name {key!r}"
        if key.endswith("_at") or key == "behind_since":
            assert value is None or datetime.fromisoformat(value).tzinfo is not None, (key, value)


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


class Run:
    """``modelboard --file LOCATION ARGS --json`` as processes; every output is checked."""

    def __init__(self, location: str, folder: Path) -> None:
        self.location = location
        self.folder = folder
        self.seen: dict[str, int] = {}
        self.env = {**os.environ, "MODELBOARD_HEARTBEAT_S": str(TEST_HEARTBEAT_S)}

    def __call__(self, *args: str, code: int | None = 0, stdin: str | None = None) -> Any:
        command = args[0]
        done = subprocess.run([*CLI, "--file", self.location, "--actor", ACTOR, *args, "--json"],
                              input=stdin,
                              capture_output=True, text=True, timeout=60, env=self.env,
                              cwd=self.folder, check=False)
        assert "Traceback" not in done.stderr, done.stderr
        document = json.loads(done.stdout)  # one document, whatever the exit code
        assert done.stdout == json.dumps(document, indent=2, sort_keys=True,
                                         ensure_ascii=False) + "\n"
        check(command, document)
        if isinstance(document, dict) and "error" in document:
            assert done.returncode == document["error"]["exit_code"], (args, done)
        if code is not None:
            assert done.returncode == code, (args, done.returncode, document, done.stderr)
        self.seen[command] = self.seen.get(command, 0) + 1
        return document


class JsonWatcher:
    """``modelboard watch --json`` in the background, its lines read as they come."""

    def __init__(self, run: Run) -> None:
        self.process = subprocess.Popen([*CLI, "--file", run.location, "watch", "--json"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, cwd=run.folder)
        run.seen["watch"] = run.seen.get("watch", 0) + 1
        self.lines: queue.Queue[str] = queue.Queue()
        self.notes: queue.Queue[str] = queue.Queue()
        for stream, into in ((self.process.stdout, self.lines), (self.process.stderr,
                                                                 self.notes)):
            assert stream is not None
            threading.Thread(target=lambda s=stream, q=into: [q.put(x) for x in s],
                             daemon=True).start()
        assert "watching" in self.notes.get(timeout=WAIT_S)

    def next(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(self.lines.get(timeout=WAIT_S))
        check("watch", record)
        return record

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=WAIT_S)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT_S)


def run_every_command(run: Run, *, on_file: bool) -> None:
    """Each command with ``--json``: what succeeds, what is refused, a usage error."""
    folder = run.folder
    file_only = 0 if on_file else 1  # init, restore: a selections file's commands

    created = run("init", code=file_only)
    assert ("error" in created) is not on_file
    if on_file:
        assert run("init", code=1)["error"]["kind"] == "exists"
    assert run("set", "openai", "gpt-4o", "--reason", "launch")["changes"][0]["kind"] == "added"
    run("set", "anthropic", "claude-3-opus")
    run("set", "mistral", "mistral-large-latest")
    assert run("set", "openai", "gpt-4.1", "--expect", "gpt-4", code=1)["error"]["kind"] == \
        "conflict"
    locked = run("lock", "anthropic", "--reason", "eval")
    assert locked["selection"]["locked"] and locked["changes"][0]["kind"] == "lock"
    assert run("lock", "anthropic")["changes"] == []
    assert run("set", "anthropic", "claude-3-haiku", code=1)["error"]["kind"] == "locked"
    assert run("unlock", "anthropic")["selection"]["locked"] is False
    run("lock", "anthropic", "--reason", "eval")
    assert run("remove", "mistral")["selection"] is None
    assert run("remove", "mistral", code=1)["error"]["kind"] == "not_found"
    assert run("get", "openai")["changed_by"] == ACTOR
    assert run("get", "nobody", code=1)["error"]["kind"] == "not_found"
    listed = run("list")
    assert [row["provider"] for row in listed] == ["anthropic", "openai"]

    good = folder / "good.json"
    good.write_text('{"openai": "gpt-4.1", "xai": "grok-4"}')
    bad = folder / "bad.json"
    bad.write_text('{\n  "anthropic": "claude-3-haiku",\n  "mistral": "mistral-huge"\n}\n')
    planned = run("apply", str(good), "--dry-run")
    assert not planned["written"] and len(planned["changes"]) == 2
    applied = run("apply", str(good), "--reason", "pinned")
    assert applied["written"] and applied["problems"] == []
    refused = run("apply", str(bad), code=1)
    assert [(p["line"], p["column"]) for p in refused["problems"]] == [(2, 3), (3, 3)]

    assert run("validate")["ok"]
    checked = run("validate", str(bad), str(good), code=1)
    assert [f["ok"] for f in checked["files"]] == [False, True]
    # apply and validate report a problem alike: the same object, the same message.
    assert checked["files"][0]["problems"][0]["message"].startswith("mistral: ")
    assert refused["problems"][1] == checked["files"][0]["problems"][0]
    assert run("validate", "-", "-", code=2, stdin="{}")["error"]["kind"] == "usage"
    assert run("validate", "-", stdin='{"openai": 3}', code=1)["files"][0]["problems"]

    history = run("history")
    assert history[0]["changed_by"] == ACTOR and history[0]["rev"]
    assert len(run("log", "--limit", "3")) == 3
    revisions = run("log")
    assert revisions[0]["entries"] and revisions[0]["reason"] == "pinned"
    first = revisions[-1]["rev"]  # openai alone, before anthropic was set and locked
    assert run("show", str(first))["rev"] == first
    assert run("show", "999", code=1)["error"]["kind"] == "configuration"
    assert run("diff", str(first))
    assert run("diff", str(first), str(first)) == []
    rolled = run("rollback", str(first), "--reason", "back")
    assert rolled["rolled_back_to"] == first and "anthropic" in rolled["kept_locked"]
    audited = run("audit", "verify")  # the file's chain, or the Redis stream's
    assert audited["ok"] is True and audited["problems"] == [] and audited["revisions"] > 5

    hooks = folder / "notify.toml"
    hooks.write_text('[[hook]]\nname = "purge"\ncommand = "true"\n')
    report = run("notify", "--config", str(hooks), "--status")
    assert report["deliverer"] is None and report["newest_rev"] == revisions[0]["rev"] + 1
    assert report["targets"][0]["cursor"] is None  # no notifier has run on this store
    assert run("notify", "--config", str(hooks), "--enable", "purge")["was_disabled"] is False
    assert run("notify", "--config", str(hooks), "--enable", "nope", code=1)["error"]
    assert run("notify", "--config", str(hooks), code=2)["error"]["kind"] == "usage"
    (folder / "bad-notify.toml").write_text("[[hook]]\nname = 3\n")
    assert run("notify", "--config", str(folder / "bad-notify.toml"), "--status",
               code=1)["error"]["kind"] == "configuration"

    catalog = run("catalog")
    assert {entry["provider"] for entry in catalog} >= {"openai", "ollama"}
    assert run("catalog", "ollama")["any_model"] is True
    assert run("catalog", "nope", code=1)["error"]["kind"] == "invalid"

    copy = folder / "copy.json"
    copied = run("migrate", "--from", run.location, "--to", str(copy))
    assert copied["selections"] == len(run("list")) and copied["entries"] > 0
    assert run("migrate", "--from", run.location, "--to", str(copy), code=1)["error"]

    with reader_processes(run.location, ["proxy-json-1"]):
        fleet = wait_until(lambda: run("fleet", code=None),
                           lambda data: [r["status"] for r in data["readers"]] == ["current"])
        assert fleet["all_current"] and fleet["readers"][0]["report"]["name"] == "proxy-json-1"
        waited = run("set", "openai", "gpt-4o-mini", "--wait", "15")
        assert waited["wait"]["reached"] and waited["wait"]["total"] == 1

    watcher = JsonWatcher(run)
    try:
        run("set", "openai", "gpt-4o")
        change = watcher.next()
        assert (change["event"], change["provider"], change["new"]["model_name"]) == (
            "change", "openai", "gpt-4o")
        if on_file:
            location = Path(run.location)
            location.write_text('{\n  "openai": oops\n}\n')
            broken = watcher.next()
            assert broken["event"] == "error" and broken["problem"]["line"] == 2
            run("restore")  # from the backup of the last good write
            assert watcher.next()["event"] == "recovered"
        assert watcher.stop() == 0
    finally:
        watcher.kill()
    if on_file:
        Path(run.location).unlink()
        restored = run("restore")
        assert restored["selections"] == 2 and restored["entries"]
    else:
        assert run("restore", code=1)["error"]["kind"] == "configuration"

    # A usage error is JSON too when the command line asks for it (exit 2).
    assert run("set", "openai", code=2)["error"]["kind"] == "usage"
    assert run("history", "--limit", "zero", code=2)["error"]["exit_code"] == 2

    missing = JSON_COMMANDS - set(run.seen)
    assert not missing, f"the scenario does not run {sorted(missing)} with --json"


def test_the_schema_is_a_valid_json_schema_and_covers_every_command() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    commands = {name.removeprefix("command.") for name in SCHEMA["$defs"]
                if name.startswith("command.")}
    assert commands == JSON_COMMANDS, "every command with --json has a schema, and only those"
    for name in ("selection", "change", "history_entry", "revision", "problem", "reader"):
        assert name in SCHEMA["$defs"]
    for key, _ in _walk(SCHEMA["$defs"]):
        assert key not in OLD_NAMES, key


def test_every_command_but_three_takes_json_and_says_so() -> None:
    for name, sub in _subcommands().items():
        has_json = "--json" in sub._option_string_actions
        assert has_json == (name not in NO_JSON), name
    assert set(NO_JSON) == {"tui", "serve", "completion"}
    assert "tui, serve and completion" in build_parser().epilog  # type: ignore[operator]


def test_every_command_json_on_a_file_store(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    run_every_command(Run(str(folder / "config" / "model_selections.json"), folder),
                      on_file=True)


def test_every_command_json_on_redis(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    server = RedisServer(redis_server_binary(pytestconfig), tmp_path / "redis").start()
    try:
        folder = tmp_path / "work"
        folder.mkdir()
        run_every_command(Run(server.url("json-test"), folder), on_file=False)
    finally:
        server.stop()

