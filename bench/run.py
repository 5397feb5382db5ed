"""Run every benchmark and print one table: ``python -m bench.run [--quick] [--only NAME]``.

Every module of ``bench/`` with a ``run(quick)`` function is a benchmark. The table
(figure, ours, baseline, ratio, target, result) is printed with the machine it ran on
and written as JSON to ``bench/results/latest.json`` (or ``--json PATH``). The exit
status is 1 when a target was missed or a benchmark failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench
from bench.common import Figure

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
#: Benchmarks in figure order; a missing one is reported in the table, not skipped silently.
EXPECTED = ("hot_path", "writes", "propagation", "reload", "tui_paint", "cli_start", "memory",
            "writers", "redis", "fleet", "serving")
_NOT_BENCHMARKS = {"run", "common"}


def discover() -> list[str]:
    """Expected benchmarks first (present or not), then any other module of ``bench/``."""
    present = sorted(info.name for info in pkgutil.iter_modules(bench.__path__)
                     if info.name not in _NOT_BENCHMARKS and not info.name.startswith("_"))
    return [*EXPECTED, *(name for name in present if name not in EXPECTED)]


def _exists(name: str) -> bool:
    return (Path(bench.__path__[0]) / f"{name}.py").exists()


def machine() -> dict[str, Any]:
    """What the numbers depend on: CPU, cores, Python, and the disk the temp files use."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        "temp_filesystem": _filesystem_of(tempfile.gettempdir()),
    }


def _filesystem_of(folder: str) -> str:
    """The type of the filesystem holding ``folder`` (fsync costs depend on it)."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 2 and folder.startswith(fields[1]) and len(fields[1]) > len(best):
                    best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind


def _row(figure: Figure, module: str) -> dict[str, Any]:
    result = {True: "pass", False: "FAIL", None: "-"}[figure.passed]
    return {**figure.as_dict(), "module": module, "result": result}


def _status_row(module: str, result: str, note: str) -> dict[str, Any]:
    return {"name": f"{module} (bench/{module}.py)", "ours": None, "baseline": None,
            "unit": "", "target": "", "passed": False if result == "ERROR" else None,
            "note": note, "ratio": None, "module": module, "result": result}


def run_module(name: str, quick: bool) -> list[dict[str, Any]]:
    """Run one benchmark; a missing module or one that raises becomes a row that says so."""
    if not _exists(name):
        return [_status_row(name, "missing", "not written yet; nothing measured")]
    try:
        module = importlib.import_module(f"bench.{name}")
        runner: Callable[[bool], list[Figure]] | None = getattr(module, "run", None)
        if runner is None:
            return [_status_row(name, "missing", "has no run(quick) function")]
        return [_row(figure, name) for figure in runner(quick)]
    except Exception as exc:  # one broken benchmark must not hide the others
        traceback.print_exc(file=sys.stderr)
        line = str(exc).splitlines()[0] if str(exc) else ""
        return [_status_row(name, "ERROR", f"{type(exc).__name__}: {line}")]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.2f}"
    return f"{value:.2g}"


def format_table(rows: list[dict[str, Any]], about: dict[str, Any]) -> str:
    header = ("figure", "ours", "baseline", "ratio", "target", "result")
    lines = [(row["name"], f"{_number(row['ours'])} {row['unit']}".strip(),
              _number(row["baseline"]), _number(row["ratio"]), row["target"] or "-",
              row["result"]) for row in rows]
    widths = [max(len(str(cells[i])) for cells in [header, *lines]) for i in range(len(header))]

    def render(cells: tuple[str, ...]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True))

    out = [f"machine: {about['cpu']}, {about['cores']} cores, {about['implementation']} "
           f"{about['python']}, {about['system']}, temp files on {about['temp_filesystem']}",
           "", render(header), render(tuple("-" * width for width in widths))]
    for cells, row in zip(lines, rows, strict=True):
        out.append(render(cells).rstrip())
        if row["note"]:
            out.append(f"    {row['note']}")
    return "\n".join(out)


def format_markdown(rows: list[dict[str, Any]], about: dict[str, Any]) -> str:
    """The same table in Markdown, for the README."""
    lines = [f"{about['cpu']}, {about['cores']} cores, {about['implementation']} "
             f"{about['python']}, {about['system']}, temp files on {about['temp_filesystem']}",
             "",
             "| figure | ours | baseline | ratio | target | result |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['name']} | {_number(row['ours'])} {row['unit']} | "
                     f"{_number(row['baseline'])} | {_number(row['ratio'])} | "
                     f"{row['target'] or '-'} | {row['result']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions: well under a minute, noisier figures")
    parser.add_argument("--json", type=Path, default=RESULTS, metavar="PATH",
                        help=f"where to write the table as JSON (default: {RESULTS})")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this benchmark (module name, e.g. writes); repeatable")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table in Markdown (as in the README)")
    options = parser.parse_args(argv)
    names = discover()
    selected = [part for item in options.only for part in item.split(",") if part]
    unknown = [name for name in selected if name not in names]
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}; known: {', '.join(names)}")
    if selected:
        names = [name for name in names if name in selected]

    about = machine()
    started = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for name in names:
        if _exists(name):
            print(f"running {name} ...", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        rows.extend(run_module(name, options.quick))
        if _exists(name):
            print(f"  {name}: {time.perf_counter() - begun:.1f} s", file=sys.stderr, flush=True)

    print(format_markdown(rows, about) if options.markdown else format_table(rows, about))
    report = {"started": started.isoformat(timespec="seconds"), "quick": options.quick,
              "machine": about, "figures": rows}
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {options.json}")
    return 1 if any(row["passed"] is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
