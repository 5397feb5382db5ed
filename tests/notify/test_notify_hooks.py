"""``[[hook]] command = "…"``: the revision's JSON on stdin, with the cursor and retry rules of
an endpoint; a failing exit is retried, a hook past its timeout is killed."""

from __future__ import annotations

import json
import os
import time

from notify_support import FAST, target_status, wait_for


def _hook(name: str, command: str, extra: str = "") -> str:
    return f'\n[[hook]]\nname = "{name}"\ncommand = {json.dumps(command)}\n{extra}'


def test_a_hook_gets_each_revision_on_stdin_in_order(tmp_path, data_file, writer, notifiers):
    out = tmp_path / "got"
    out.mkdir()
    # What a Slack script would do with it: read stdin, use the id to drop duplicates.
    command = f'cat > "{out}/$MODELBOARD_REV-$MODELBOARD_WEBHOOK_ID.json"'
    config = tmp_path / "notify.toml"
    config.write_text('start = "oldest"\n' + FAST + _hook("files", command))
    revs = [writer.revision(reason=f"change {n}") for n in range(3)]
    notifiers(config)
    # The cursor moves once a run has exited 0: by then its file is whole.
    wait_for(lambda: target_status(data_file, config, "files")["cursor"] == revs[-1],
             what="the cursor moved")
    assert len(list(out.iterdir())) == 3
    bodies = sorted((json.loads(p.read_text()) for p in out.iterdir()), key=lambda b: b["rev"])
    assert [b["rev"] for b in bodies] == revs
    assert [b["reason"] for b in bodies] == ["change 0", "change 1", "change 2"]
    assert [b["previous_rev"] for b in bodies] == [None, revs[0], revs[1]]
    assert all(p.name.split("-", 1)[1].startswith("msg_") for p in out.iterdir())


def test_a_failing_hook_is_retried_and_one_past_its_timeout_is_killed(
        tmp_path, data_file, writer, notifiers):
    tries = tmp_path / "tries"
    pids = tmp_path / "pids"
    done = tmp_path / "done"
    # 1st run: exits 3 saying why; 2nd: hangs (its child too) until killed; 3rd: takes it.
    command = (f'echo x >> "{tries}"; n=$(wc -l < "{tries}"); '
               f'if [ "$n" -eq 1 ]; then echo "no route to slack" >&2; exit 3; fi; '
               f'if [ "$n" -eq 2 ]; then sleep 60 & echo $! >> "{pids}"; echo $$ >> "{pids}"; '
               f'wait; fi; cat > "{done}"')
    config = tmp_path / "notify.toml"
    config.write_text('start = "oldest"\n' + FAST + _hook("flaky", command))
    rev = writer.revision()
    began = time.monotonic()
    notifiers(config)
    wait_for(done.exists, what="the third run taking it")
    assert json.loads(wait_for(lambda: done.read_text()))["rev"] == rev
    assert time.monotonic() - began < 10
    for pid in map(int, pids.read_text().split()):  # the shell and its sleep: both killed
        wait_for(lambda pid=pid: not _alive(pid), timeout=5, what=f"process {pid} gone")
    log_file = data_file.with_name("model_selections.notify.log.jsonl")
    lines = wait_for(lambda: len(text := log_file.read_text().splitlines()) == 3 and text,
                     what="three attempts logged")
    log = [json.loads(line) for line in lines]
    assert [r["answer"] for r in log] == ["exit 3: no route to slack",
                                          "timed out after 0.5 s; killed", "exit 0"]
    assert len({r["id"] for r in log}) == 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its parent (here: init or the notifier).
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
