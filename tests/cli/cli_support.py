"""Helpers of the command-line tests: ``modelboard`` as a real process, and its file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "modelboard.core.cli"]


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    def json(self) -> Any:
        return json.loads(self.out)


class Modelboard:
    """``modelboard ARGS`` in a subprocess, with ``MODELBOARD_FILE`` set to ``file``."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def __call__(self, *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None,
                 prefix: list[str] | None = None, **popen: Any) -> Outcome:
        environment = {**os.environ, "MODELBOARD_FILE": str(self.file), **(env or {})}
        done = subprocess.run([*(prefix or CLI), *args], input=stdin, capture_output=True,
                              text=True, timeout=60, env=environment, check=False, **popen)
        return Outcome(done.returncode, done.stdout, done.stderr)

    # -- the file on disk --------------------------------------------------------------------
    def write(self, content: Mapping[str, Any] | str | bytes) -> bytes:
        """Put ``content`` (a mapping is written as JSON) in the file; return its bytes."""
        if isinstance(content, Mapping):
            content = json.dumps(content, indent=2)
        data = content.encode() if isinstance(content, str) else content
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_bytes(data)
        return data

    def stored(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.file.read_text())
        return result

    def folder_state(self) -> dict[str, bytes]:
        """Every file beside the selections file, with its bytes (to prove nothing moved)."""
        folder = self.file.parent
        if not folder.exists():
            return {}
        # A lock file counts only as there: its content says who held it last.
        return {path.name: b"(lock)" if path.name.endswith(".lock") else path.read_bytes()
                for path in sorted(folder.iterdir())}


def selection(model: str, *, editable: bool = True, by: str | None = "alice@ops",
              reason: str | None = None) -> dict[str, Any]:
    """An entry in the current file form."""
    entry: dict[str, Any] = {"model_name": model, "editable": editable,
                             "last_updated": "2026-01-02T03:04:05+00:00"}
    if by is not None:
        entry["updated_by"] = by
    if reason is not None:
        entry["lock_reason"] = reason
    return entry


def assert_one_line_error(outcome: Outcome, *fragments: str, code: int = 1) -> None:
    """Refused with ``code``: nothing on stdout, one line on stderr holding every fragment."""
    assert outcome.code == code, outcome
    assert "Traceback" not in outcome.err
    assert len(outcome.err_lines) == 1, outcome.err
    for fragment in fragments:
        assert fragment in outcome.err, (fragment, outcome.err)
