"""Figure 6: how fast the command line and the core start, in fresh processes.

``modelboard get openai`` (the installed console script, reading a real file) is set
against ``python -c pass``, the interpreter's own start: the honest floor, since the
core imports none of its dependencies (watchfiles, filelock, pydantic) on the way to
answering a read. ``import modelboard.core`` is shown against the same floor. Every
figure is the median wall time of fresh processes, the kinds interleaved so that a busy
moment hits them alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Figure, median, subprocess_env

CLI_TARGET = 3.0
_DOCUMENT = b'{\n  "anthropic": "claude-sonnet-4-5",\n  "openai": "gpt-4o"\n}\n'


def _command_line() -> list[str]:
    """The installed ``modelboard`` script beside this interpreter, else ``-m``."""
    script = Path(sys.executable).parent / "modelboard"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "modelboard.core.cli"]


def _seconds(argv: list[str], env: dict[str, str], expect: str = "") -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or expect not in done.stdout:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


def run(quick: bool) -> list[Figure]:
    rounds = 9 if quick else 25
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        path.write_bytes(_DOCUMENT)
        env = {**subprocess_env(), "MODELBOARD_FILE": str(path)}
        env.pop("PYTHONPROFILEIMPORTTIME", None)
        # An installed package has its bytecode compiled (pip does it); without this a
        # shell that sets PYTHONDONTWRITEBYTECODE would time the compiler, not the start.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        commands = {
            "cli": ([*_command_line(), "get", "openai"], "gpt-4o"),
            "core": ([sys.executable, "-c", "import modelboard.core"], ""),
            "bare": ([sys.executable, "-c", "pass"], ""),
        }
        for argv, expect in commands.values():  # warm the page cache and .pyc files
            _seconds(argv, env, expect)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, (argv, expect) in commands.items():
                times[name].append(_seconds(argv, env, expect))
    cli, core, bare = (median(times[name]) * 1000 for name in ("cli", "core", "bare"))
    how = f"median of {rounds} fresh processes each, interleaved; {os.cpu_count()} cores"
    return [
        Figure(name="6 start: modelboard get openai vs python -c pass",
               ours=cli, baseline=bare, unit="ms", target=f"ratio <= {CLI_TARGET:g}",
               passed=cli <= CLI_TARGET * bare, note=how),
        Figure(name="6 start: import modelboard.core vs python -c pass",
               ours=core, baseline=bare, unit="ms",
               note="no dependency is imported until used: watchfiles when a store "
                    "watches, filelock only where flock is missing, pydantic for a "
                    "catalog file"),
    ]
