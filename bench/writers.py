"""Figure 8: eight writer processes on one 1,000-provider file, and not one write lost.

Each writer owns a few providers and changes them in a loop; every fourth write it
also competes for one shared provider with ``expect=`` (a conflict is refused, not
acknowledged, and the writer reloads). Each records every write that returned. At
the end, every acknowledged write must be in the history file, and each provider's
final model must be its last acknowledged one: anything else is a lost write.

The baseline is eight processes doing the raw locked atomic write of a file of the
same size for the same time: the disk's and the lock's own ceiling.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    REPOSITORY,
    Figure,
    sample_document,
    subprocess_env,
    writable_providers,
)

PROVIDERS = 1_000
WRITERS = 8
OWNED_EACH = 20


def _shared_provider() -> str:
    return writable_providers(PROVIDERS)[-1]


def _owned(writer: int) -> list[str]:
    writable = writable_providers(PROVIDERS)
    return writable[writer * OWNED_EACH:(writer + 1) * OWNED_EACH]


def _write_loop(path: str, writer: int, seconds: float) -> None:
    """One writer process: wait for "go" on stdin, write for ``seconds``, report as JSON."""
    from bench.common import any_model_catalog
    from modelboard.core import ConflictError, open_store

    store = open_store(path, catalog=any_model_catalog(PROVIDERS), actor=f"writer-{writer}")
    owned, shared = _owned(writer), _shared_provider()
    print("ready", flush=True)
    sys.stdin.readline()
    acknowledged: list[tuple[str, str]] = []
    conflicts = 0
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        count += 1
        model = f"w{writer}-{count}"
        if count % 4 == 0:
            seen = store.get_model_selection(shared)
            try:
                store.set_model_selection(shared, model,
                                          expect=seen.model_name if seen else None)
            except ConflictError:
                conflicts += 1
                store.reload()
                continue
            acknowledged.append((shared, model))
        else:
            provider = owned[count % len(owned)]
            store.set_model_selection(provider, model)
            acknowledged.append((provider, model))
    elapsed = time.perf_counter() - start
    print(json.dumps({"acknowledged": acknowledged, "conflicts": conflicts,
                      "elapsed": elapsed}), flush=True)


def _raw_loop(path: str, seconds: float) -> None:
    """One baseline process: raw locked atomic writes of the same size for ``seconds``."""
    from bench.common import raw_atomic_write

    data = Path(path).read_bytes()
    print("ready", flush=True)
    sys.stdin.readline()
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        raw_atomic_write(path, data)
        count += 1
    print(json.dumps({"writes": count, "elapsed": time.perf_counter() - start}), flush=True)


def _run_processes(arguments: list[list[str]]) -> list[dict[str, object]]:
    """Start every process, release them together once all are ready, collect reports."""
    processes = [subprocess.Popen([sys.executable, "-m", "bench.writers", *args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=subprocess_env(), cwd=REPOSITORY)
                 for args in arguments]
    try:
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("a writer process failed to start")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        reports = []
        for process in processes:
            output, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise RuntimeError(f"a writer process exited with {process.returncode}")
            reports.append(json.loads(output.strip().splitlines()[-1]))
        return reports
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _lost_writes(path: Path, reports: list[dict[str, object]]) -> tuple[int, int]:
    """(acknowledged writes, lost ones) judged from the final file and the history."""
    final = json.loads(path.read_bytes())
    history_path = path.with_name(f"{path.stem}.history.jsonl")
    in_history = set()
    last_in_history: dict[str, str] = {}
    for line in history_path.read_text().splitlines():
        entry = json.loads(line)
        in_history.add((entry["provider"], entry["new"]))
        last_in_history[entry["provider"]] = entry["new"]
    total = lost = 0
    last_acknowledged: dict[str, str] = {}
    acknowledged_shared: set[str] = set()
    for report in reports:
        for provider, model in report["acknowledged"]:  # type: ignore[attr-defined]
            total += 1
            lost += (provider, model) not in in_history
            if provider == _shared_provider():
                acknowledged_shared.add(model)
            else:
                last_acknowledged[provider] = model
    for provider, model in last_acknowledged.items():
        lost += final[provider]["model_name"] != model
    shared_final = final[_shared_provider()]["model_name"]
    if acknowledged_shared and (shared_final not in acknowledged_shared
                                or last_in_history.get(_shared_provider()) != shared_final):
        lost += 1
    return total, lost


def run(quick: bool) -> list[Figure]:
    seconds = 1.5 if quick else 4.0
    with tempfile.TemporaryDirectory(prefix="modelboard-bench-") as folder:
        path = Path(folder) / "model_selections.json"
        document = sample_document(PROVIDERS)
        path.write_bytes(document)
        reports = _run_processes([["write", str(path), str(writer), str(seconds)]
                                  for writer in range(WRITERS)])
        raw_path = Path(folder) / "raw.json"
        raw_path.write_bytes(document)
        raw_reports = _run_processes([["raw", str(raw_path), str(seconds)]
                                      for _ in range(WRITERS)])
        total, lost = _lost_writes(path, reports)
    conflicts = sum(int(report["conflicts"]) for report in reports)  # type: ignore[call-overload]
    elapsed = max(float(report["elapsed"]) for report in reports)  # type: ignore[arg-type]
    raw_writes = sum(int(report["writes"]) for report in raw_reports)  # type: ignore[call-overload]
    raw_elapsed = max(float(report["elapsed"]) for report in raw_reports)  # type: ignore[arg-type]
    rate, raw_rate = total / elapsed, raw_writes / raw_elapsed
    return [
        Figure(name="8 eight writer processes: sustained writes, 1,000 providers",
               ours=rate, baseline=raw_rate, unit="writes/s", target="ratio >= 0.7",
               passed=rate >= 0.7 * raw_rate,
               note=f"{total} acknowledged in {elapsed:.1f} s, {conflicts} refused as conflicts "
                    "on the shared provider; baseline: 8 processes of raw atomic writes under "
                    "flock, each with its history line fsynced"),
        Figure(name="8 eight writer processes: lost writes",
               ours=lost, baseline=None, unit="writes", target="== 0", passed=lost == 0,
               note=f"of {total} acknowledged: each in the history, each provider ending on "
                    "its last acknowledged model"),
    ]


if __name__ == "__main__":
    if sys.argv[1] == "write":
        _write_loop(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1] == "raw":
        _raw_loop(sys.argv[2], float(sys.argv[3]))
    else:
        raise SystemExit(f"usage: python -m bench.writers write|raw ...; got {sys.argv[1:]}")
