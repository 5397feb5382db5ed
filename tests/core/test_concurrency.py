"""Many writer processes at once: nothing acknowledged is lost, conflicts are raised
exactly when a writer's view was stale, and no change silently overwrites another."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

WORKERS = 8
WRITES = 200

# One writer process. It opens the store, says "ready", waits for "go" on stdin so that
# all writers really overlap, then makes WRITES writes and prints one JSON line each.
# Even writes go to the worker's own provider; odd ones to a provider all workers share,
# alternately with expect= (what this worker last saw) and without (its snapshot decides).
WRITER = textwrap.dedent("""
    import json, sys
    from modelboard.core import Catalog, ProviderSpec, open_store
    from modelboard.core.errors import ConflictError

    path, worker, writes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    names = [f"own-{i}" for i in range(8)] + ["shared-expect", "shared-blind"]
    catalog = Catalog([ProviderSpec(name, any_model=True) for name in names])
    store = open_store(path, catalog=catalog, actor=f"w{worker}")
    print("ready", flush=True)
    sys.stdin.readline()
    results = []
    for n in range(writes):
        model = f"w{worker}-{n}"
        if n % 2 == 0:
            provider, kwargs = f"own-{worker}", {}
        else:
            provider = "shared-expect" if n % 4 == 1 else "shared-blind"
            kwargs = {}
        seen = store.get_model_selection(provider)
        base = seen.model_name if seen is not None else None
        if provider == "shared-expect":
            kwargs = {"expect": base}
        record = {"provider": provider, "model": model, "base": base}
        try:
            store.set_model_selection(provider, model, **kwargs)
            record["outcome"] = "ok"
        except ConflictError as error:
            record["outcome"] = "conflict"
            record["theirs"] = error.theirs
        results.append(record)
    print(json.dumps(results), flush=True)
""")


@pytest.mark.slow
def test_eight_processes_writing_lose_nothing_and_conflict_only_when_stale(
        data_file: Path) -> None:
    data_file.parent.mkdir(parents=True)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(data_file), str(i),
                                 str(WRITES)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(WORKERS)]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        records = []
        for writer in writers:
            out, err = writer.communicate(timeout=120)
            assert writer.returncode == 0, err
            records.extend(json.loads(out.strip().splitlines()[-1]))
    finally:
        for writer in writers:
            writer.kill()

    acked = [r for r in records if r["outcome"] == "ok"]
    conflicts = [r for r in records if r["outcome"] == "conflict"]
    assert len(records) == WORKERS * WRITES

    stored = json.loads(data_file.read_text())
    history = [json.loads(line) for line in
               data_file.with_name("model_selections.history.jsonl").read_text().splitlines()]

    # Each worker's own provider: never contended, never a conflict, last write stands.
    for worker in range(WORKERS):
        provider = f"own-{worker}"
        assert not [r for r in conflicts if r["provider"] == provider]
        assert stored[provider]["model_name"] == f"w{worker}-{WRITES - 2}"

    # Every acknowledged write is in the history exactly once, and it replaced exactly
    # the value its writer saw: nobody's change was overwritten unseen.
    by_new = {entry["new"]: entry for entry in history}
    assert len(by_new) == len(history) == len(acked)
    for record in acked:
        entry = by_new[record["model"]]
        assert (entry["provider"], entry["old"]) == (record["provider"], record["base"])

    # The shared providers' histories are unbroken chains ending in the file's value.
    for provider in ("shared-expect", "shared-blind"):
        chain = [entry for entry in history if entry["provider"] == provider]
        assert chain[0]["old"] is None
        for before, after in itertools.pairwise(chain):
            assert after["old"] == before["new"]
        assert stored[provider]["model_name"] == chain[-1]["new"]

    # Each conflict was real: the stored value was not what the writer had seen, and it
    # was a value some acknowledged write had put there.
    acked_models = {r["model"] for r in acked}
    for record in conflicts:
        assert record["theirs"] != record["base"]
        assert record["theirs"] in acked_models
    counts = Counter(r["provider"] for r in conflicts)
    assert counts["shared-expect"] > 0 and counts["shared-blind"] > 0, counts
    print(f"{len(acked)} acknowledged, conflicts: {dict(counts)}")
