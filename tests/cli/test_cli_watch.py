"""watch: one line per change from a real watcher process, through bad files, until a signal."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

from cli_support import CLI, Modelboard, selection

from modelboard.core import open_store

WAIT_S = 15


class Watcher:
    """``modelboard watch`` in the background; its output read line by line as it comes."""

    def __init__(self, modelboard: Modelboard, *args: str, read_output: bool = True) -> None:
        environment = {**os.environ, "MODELBOARD_FILE": str(modelboard.file)}
        self.process = subprocess.Popen([*CLI, "watch", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=environment)
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None and self.process.stderr is not None
        if read_output:
            self._follow(self.process.stdout, self.out)
        self._follow(self.process.stderr, self.err)

    @staticmethod
    def _follow(stream: IO[str], into: queue.Queue[str]) -> None:
        def pump() -> None:
            for line in stream:
                into.put(line.rstrip("\n"))

        threading.Thread(target=pump, daemon=True).start()

    def wait_until_watching(self) -> str:
        note = self.err.get(timeout=WAIT_S)
        assert "watching" in note, note
        return note

    def next_line(self) -> str:
        return self.out.get(timeout=WAIT_S)

    def next_json(self) -> dict[str, Any]:
        line = self.next_line()
        record: dict[str, Any] = json.loads(line)
        assert line == json.dumps(record, sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False)
        return record

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=WAIT_S)

    def remaining_errors(self) -> list[str]:
        lines = []
        while not self.err.empty():
            lines.append(self.err.get())
        return lines

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT_S)


def replace_file(path: Path, content: str) -> None:
    """Swap the file in one step, as an editor or a deploy does."""
    temporary = path.with_name(".incoming.tmp")
    temporary.write_text(content)
    os.replace(temporary, path)


def test_watch_prints_each_change_and_keeps_going_through_a_bad_file(
        modelboard: Modelboard) -> None:
    modelboard.write({"openai": selection("gpt-4o")})
    watcher = Watcher(modelboard)
    try:
        watcher.wait_until_watching()
        store = open_store(modelboard.file, actor="alice@ops")

        store.set_model_selection("openai", "gpt-4.1")
        assert watcher.next_line().endswith("  openai: gpt-4o -> gpt-4.1 by alice@ops")

        replace_file(modelboard.file, '{"openai": ')
        assert watcher.next_line().endswith(
            f"  error: {modelboard.file}:1:12: Expecting value; keeping the last good state")

        replace_file(modelboard.file, json.dumps({"openai": selection("gpt-4.1"),
                                                  "xai": selection("grok-4", by="bob@ops")}))
        assert watcher.next_line().endswith(f"  {modelboard.file}: readable again")
        changed = sorted(watcher.next_line().split("  ", 1)[1] for _ in range(2))
        assert changed == ["openai: gpt-4.1 updated by alice@ops",  # only its time moved
                           "xai: set to grok-4 by bob@ops"]

        store.reload()
        store.lock("xai", reason="launch")
        assert watcher.next_line().endswith("  xai: grok-4 locked by alice@ops: launch")
        store.close()

        assert watcher.stop(signal.SIGINT) == 130
        assert watcher.remaining_errors() == []  # the bad file was reported once, on stdout
    finally:
        watcher.kill()


def test_watch_json_lines_from_a_bad_start_and_sigterm_exits_0(modelboard: Modelboard) -> None:
    modelboard.write('{\n  "openai": "gpt-4o",\n  oops\n}\n')
    watcher = Watcher(modelboard, "--json")
    try:
        first = watcher.next_json()
        watcher.wait_until_watching()
        assert first["event"] == "error"
        problem = first["problem"]
        assert (problem["file"], problem["line"], problem["column"]) == (
            str(modelboard.file), 3, 3)
        assert problem["message"] and not problem["message"].startswith(str(modelboard.file))

        replace_file(modelboard.file, json.dumps({"openai": selection("gpt-4o")}))
        recovered, added = watcher.next_json(), watcher.next_json()
        assert recovered["event"] == "recovered" and recovered["revision"]
        assert {key: added[key] for key in ("event", "provider", "kind", "old", "source")} == {
            "event": "change", "provider": "openai", "kind": "added", "old": None,
            "source": "external"}
        assert added["new"] == {"provider": "openai", "model_name": "gpt-4o", "editable": True,
                                "locked": False, "changed_at": "2026-01-02T03:04:05+00:00",
                                "changed_by": "alice@ops", "lock_reason": None}

        assert watcher.stop(signal.SIGTERM) == 0
    finally:
        watcher.kill()


def test_watch_ends_quietly_when_its_reader_goes_away(modelboard: Modelboard) -> None:
    modelboard.write({"openai": selection("gpt-4o")})
    watcher = Watcher(modelboard, read_output=False)
    try:
        watcher.wait_until_watching()
        assert watcher.process.stdout is not None
        watcher.process.stdout.close()  # as `modelboard watch | head -1` does once satisfied

        open_store(modelboard.file).set_model_selection("openai", "gpt-4.1")

        assert watcher.process.wait(timeout=WAIT_S) == 0
        assert not [line for line in watcher.remaining_errors() if "Traceback" in line]
    finally:
        watcher.kill()
