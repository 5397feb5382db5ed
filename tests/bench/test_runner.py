"""The benchmark runner's behaviour (never its timings): table, JSON, missing and bad names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def run_bench(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *arguments], cwd=REPOSITORY, capture_output=True,
                          text=True, timeout=120, check=False)


def test_one_figure_is_printed_and_written_as_json(tmp_path: Path) -> None:
    report = tmp_path / "results.json"
    done = run_bench("-m", "bench.run", "--quick", "--only", "hot_path", "--json", str(report))
    assert done.returncode in (0, 1), done.stderr  # 1 only if the target was missed
    assert done.stdout.startswith("machine: ")
    assert "1 hot path" in done.stdout
    written = json.loads(report.read_text())
    assert set(written["machine"]) >= {"cpu", "cores", "python", "temp_filesystem"}
    assert written["quick"] is True
    (row,) = written["figures"]
    assert row["module"] == "hot_path"
    assert row["ours"] > 0 and row["baseline"] > 0
    assert row["ratio"] == row["ours"] / row["baseline"]
    assert row["result"] == ("pass" if row["passed"] else "FAIL")
    assert done.returncode == (0 if row["passed"] else 1)


def test_an_unknown_benchmark_name_is_one_line_and_runs_nothing(tmp_path: Path) -> None:
    report = tmp_path / "results.json"
    done = run_bench("-m", "bench.run", "--only", "no_such_thing", "--json", str(report))
    assert done.returncode == 2
    assert "no benchmark named no_such_thing" in done.stderr
    assert not report.exists()


def test_a_missing_module_becomes_a_row_not_a_crash() -> None:
    code = ("import json; from bench.run import run_module; "
            "print(json.dumps(run_module('no_such_module', True)))")
    done = run_bench("-c", code)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["result"] == "missing" and row["passed"] is None
