"""Figure 6: how fast the command line and the core start, in fresh processes.

``modelboard get openai`` (the installed console script, reading a real file) is set
against ``python -c pass``, the interpreter's own start: the honest floor, since the
core imports none of its dependencies (watchfiles, filelock, pydantic) on the way to
answering a read. ``import modelboard.core`` is shown against the same floor, and so is
importing, alone, every standard-library module that answering the ``get`` imported
(found by running it): the part of the start no change short of another design of the
command line can remove. Every
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


#: Prints the standard-library modules that answering ``modelboard get openai`` imports
#: beyond what the interpreter's own start has, one per line.
_STDLIB_OF_GET = """
import contextlib, io, sys, sysconfig
before = set(sys.modules)
from modelboard.core.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["get", "openai"])
paths = sysconfig.get_paths()
stdlib, site = paths["stdlib"], paths["purelib"]
for name, module in sorted(sys.modules.items()):
    where = getattr(module, "__file__", None) or ""
    if name in before or name.startswith("_") or "._" in name:
        continue
    if name in sys.builtin_module_names or (where.startswith(stdlib)
                                            and not where.startswith(site)):
        print(name)
"""


def _stdlib_of_get(env: dict[str, str]) -> list[str]:
    """The standard-library modules a ``get`` imports (not modelboard's, not the
    dependencies'), found by running it in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", _STDLIB_OF_GET], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.split()


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
        stdlib = _stdlib_of_get(env)
        commands = {
            "cli": ([*_command_line(), "get", "openai"], "gpt-4o"),
            "core": ([sys.executable, "-c", "import modelboard.core"], ""),
            "stdlib": ([sys.executable, "-c", f"import {', '.join(stdlib)}"], ""),
            "bare": ([sys.executable, "-c", "pass"], ""),
        }
        for argv, expect in commands.values():  # warm the page cache and .pyc files
            _seconds(argv, env, expect)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, (argv, expect) in commands.items():
                times[name].append(_seconds(argv, env, expect))
    cli, core, floor, bare = (median(times[name]) * 1000
                              for name in ("cli", "core", "stdlib", "bare"))
    how = f"median of {rounds} fresh processes each, interleaved; {os.cpu_count()} cores"
    return [
        Figure(name="6 start: modelboard get openai vs python -c pass",
               ours=cli, baseline=bare, unit="ms", target=f"ratio <= {CLI_TARGET:g}",
               passed=cli <= CLI_TARGET * bare, note=how),
        Figure(name="6 start: the standard library a get imports, alone, vs python -c pass",
               ours=floor, baseline=bare, unit="ms",
               note=f"{len(stdlib)} modules (dataclasses, argparse, typing, pathlib, json, "
                    "...), imported in one fresh process: what this design of the command "
                    "line cannot start without"),
        Figure(name="6 start: import modelboard.core vs python -c pass",
               ours=core, baseline=bare, unit="ms",
               note="no dependency is imported until used: watchfiles when a store "
                    "watches, filelock only where flock is missing, pydantic for a "
                    "catalog file"),
    ]
