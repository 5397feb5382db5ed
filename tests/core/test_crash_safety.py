"""Writers killed with SIGKILL at random moments, hundreds of times: the file is always
whole and valid, every write acknowledged before the kill is on disk, and every write
that reached the file has exactly one history record (none for those that did not)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

KILLS = 300

# Runs in its own interpreter so that forking is safe (no test-runner threads). It imports
# the core once, then forks writer after writer and kills each at a random moment. A
# writer stores counter n in two providers in one transaction and reports n on a pipe once
# the write returned. After each kill the file is parsed strictly and compared, and the
# history is read as any reader reads it: the writes it holds must be c-0, c-1, … up to
# the one in the file, each exactly once.
HARNESS = textwrap.dedent("""
    import json, os, random, signal, sys, time
    from pathlib import Path
    from modelboard.core import Catalog, ProviderSpec, open_store
    from modelboard.core.fileformat import parse_document, revision_of
    from modelboard.core.history import HistoryFile, group_revisions

    path, kills, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    catalog = Catalog([ProviderSpec("left", any_model=True), ProviderSpec("right", any_model=True)])
    rng = random.Random(seed)

    def counter_on_disk():
        data = open(path, "rb").read()
        selections = parse_document(data, path=path)       # raises if torn or invalid
        left, right = selections["left"].model_name, selections["right"].model_name
        assert left == right, f"a transaction was half-written: {left} vs {right}"
        return int(left.split("-")[1])

    history = HistoryFile(Path(path).with_name("s.history.jsonl"))

    def history_problem(on_disk):
        current = revision_of(parse_document(open(path, "rb").read(), path=path))
        revisions = list(group_revisions(history.iter_entries(current_revision=current)))
        written = [sorted((e.provider, e.new) for e in r.entries) for r in reversed(revisions)]
        wanted = [[("left", f"c-{n}"), ("right", f"c-{n}")] for n in range(on_disk + 1)]
        if written != wanted:
            extra = [w for w in written if w not in wanted or written.count(w) > 1]
            missing = [w for w in wanted if w not in written]
            return f"history off at {on_disk}: missing {missing[:3]}, extra {extra[:3]}"
        if revisions[0].revision != current:
            return f"the newest history record is not the file's revision at {on_disk}"
        numbers = [r.number for r in reversed(revisions)]
        if numbers != sorted(set(numbers)):
            return f"revision numbers do not grow: {numbers[-5:]}"
        return None

    def lines_ahead_of_the_file():
        # The number of a write whose lines are there but not its document, or None.
        newest = next(history.records(), None)
        current = revision_of(parse_document(open(path, "rb").read(), path=path))
        if newest is not None and newest.get("action") != "not-applied" and \
                newest.get("revision") != current:
            return newest["rev"]
        return None

    def backup_problem(on_disk):
        # The backup is rewritten in place just after the rename (see FileBackend): a kill
        # in between leaves it behind (by one write per such kill in a row), or torn, which
        # any reader refuses; never ahead, never half of one write and half of another.
        try:
            data = open(path + ".bak", "rb").read()
        except FileNotFoundError:
            return "no backup beside a written file"
        try:
            selections = parse_document(data, path=path + ".bak")
        except Exception:
            return "torn"
        left, right = selections["left"].model_name, selections["right"].model_name
        if left != right:
            return f"the backup mixes two writes: {left} vs {right}"
        if int(left.split("-")[1]) > on_disk:
            return f"the backup holds {left}, ahead of the file's c-{on_disk}"
        return None

    def writer(ack):
        store = open_store(path, catalog=catalog, actor="writer")
        n = int(store.get_model_selection("left").model_name.split("-")[1])
        while True:
            n += 1
            with store.transaction() as tx:
                tx.set_model_selection("left", f"c-{n}")
                tx.set_model_selection("right", f"c-{n}")
            os.write(ack, b"%d\\n" % n)

    open_store(path, catalog=catalog).bulk_set_model_selections({"left": "c-0", "right": "c-0"})
    # The kills fall within about eight writes' time, however fast this disk syncs today.
    probe = open_store(path + ".probe", catalog=catalog)
    started = time.monotonic()
    for n in range(10):
        probe.set_model_selection("left", f"p-{n}")
    window = 8 * (time.monotonic() - started) / 10 + 0.02
    acknowledged = 0
    landed_unacknowledged = 0
    temp_files_left = 0    # kills after which a temp file lay beside the data file
    not_yet_applied = set()    # writes killed between the history append and the rename
    backups_torn = 0           # kills that left the in-place backup refused by readers
    problems = []
    for _ in range(kills):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                writer(write_end)
            finally:
                os._exit(1)
        os.close(write_end)
        time.sleep(rng.uniform(0, window))    # the random moment of the kill
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        folder = os.listdir(os.path.dirname(path))
        temp_files_left += any(".tmp-" in name for name in folder)
        acks = b""
        while chunk := os.read(read_end, 65536):
            acks += chunk
        os.close(read_end)
        if acks:
            acknowledged = int(acks.split()[-1])
        try:
            on_disk = counter_on_disk()
        except Exception as error:
            problems.append(f"after an ack of {acknowledged}: {error}")
            break
        if on_disk < acknowledged:
            problems.append(f"acknowledged {acknowledged} but the file has {on_disk}")
        elif on_disk > acknowledged + 1:
            problems.append(f"the file has {on_disk}, never written (last ack {acknowledged})")
        elif on_disk == acknowledged + 1:
            landed_unacknowledged += 1
        not_yet_applied.add(lines_ahead_of_the_file())
        problem = history_problem(on_disk)
        if problem:
            problems.append(problem)
            break
        problem = backup_problem(on_disk)
        if problem == "torn":
            backups_torn += 1
        elif problem:
            problems.append(problem)
            break
        acknowledged = on_disk   # the next writer builds on what is there
    backup = parse_document(open(path + ".bak", "rb").read(), path=path + ".bak")
    # One more clean write sweeps the temp files of writers killed mid-write.
    store = open_store(path, catalog=catalog)
    store.set_model_selection("left", "c-final")
    leftovers = sorted(n for n in os.listdir(os.path.dirname(path)) if ".tmp-" in n)
    marked = sum(r.get("action") == "not-applied" for r in history.records())
    verified = history.verify()
    print(json.dumps({"kills": kills, "last": acknowledged, "problems": problems,
                      "not_yet_applied": len(not_yet_applied - {None}),
                      "marked_not_applied": marked,
                      "chain": [verified.ok, verified.problem, verified.where],
                      "landed_unacknowledged": landed_unacknowledged,
                      "backups_torn": backups_torn,
                      "temp_files_left": temp_files_left,
                      "backup_whole": sorted(backup) == ["left", "right"],
                      "leftovers": leftovers}))
""")


@pytest.mark.slow
def test_writers_killed_at_random_moments_never_tear_or_lose_a_write(data_file: Path) -> None:
    data_file.parent.mkdir(parents=True)
    data_file = data_file.with_name("s.json")
    done = subprocess.run([sys.executable, "-c", HARNESS, str(data_file), str(KILLS), "20240"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["problems"] == []
    assert report["kills"] == KILLS
    assert report["last"] > KILLS       # writers got real work done between the kills
    assert report["backup_whole"] is True
    assert report["leftovers"] == []
    # The random moments did land inside writes: between the temp file and the rename,
    # and between the rename and the acknowledgement.
    assert report["temp_files_left"] > 0 and report["landed_unacknowledged"] > 0
    # ... and between the history append and the rename: each such write was marked not
    # applied by the next writer, once; the chain holds over all of it.
    assert report["not_yet_applied"] > 0
    assert report["marked_not_applied"] == report["not_yet_applied"]
    assert report["chain"] == [True, None, None]
    print(report)
