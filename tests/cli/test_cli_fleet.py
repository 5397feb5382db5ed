"""``modelboard fleet`` and ``--wait`` as a real process (the ten-reader scenarios are in
tests/core/test_fleet_processes.py and tests/redis/test_redis_fleet.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Modelboard
from fleet_readers import wait_until

from modelboard.core import SelectionStore, open_store


@pytest.fixture
def proxy(data_file: Path, modelboard: Modelboard) -> Iterator[SelectionStore]:
    """One watching store in this process, reporting as ``proxy-eu-1``."""
    assert modelboard("set", "openai", "gpt-4o").code == 0
    store = open_store(data_file, read_only=True, watch=True, reader_name="proxy-eu-1")
    wait_until(store.readers, lambda readers: len(readers) == 1)
    yield store
    store.close()


def test_no_readers_is_said_and_is_no_failure(modelboard: Modelboard) -> None:
    assert modelboard("set", "openai", "gpt-4o").code == 0
    done = modelboard("fleet")
    assert (done.code, done.out, done.err) == (0, "0 readers: none reporting\n", "")
    done = modelboard("set", "openai", "gpt-4.1", "--wait")
    assert done.code == 0
    assert re.fullmatch(r"openai: gpt-4o +-> gpt-4\.1\nreached 0 of 0 readers in \d+ ms\n",
                        done.out), done.out


def test_fleet_lists_a_reader_and_its_json(modelboard: Modelboard,
                                           proxy: SelectionStore) -> None:
    done = modelboard("fleet")
    assert done.code == 0, done.err
    header, row, total = done.out.splitlines()
    assert header.split() == ["NAME", "HOST", "PID", "REVISION", "SINCE", "STATUS"]
    assert row.split()[0] == "proxy-eu-1" and row.endswith("current")
    assert row.split()[3] == proxy.snapshot.revision[:6] + "…"
    assert total == "1 reader: 1 current"
    data = modelboard("fleet", "--json").json()
    assert data["all_current"] is True and data["summary"] == "1 reader: 1 current"
    assert data["revision"] == proxy.snapshot.revision
    (reader,) = data["readers"]
    assert reader["status"] == "current" and reader["report"]["name"] == "proxy-eu-1"
    assert reader["report"]["watching"] is True
    assert json.dumps(data)  # plain JSON all through


def test_fleet_lists_readers_while_the_file_does_not_load(modelboard: Modelboard,
                                                          proxy: SelectionStore,
                                                          data_file: Path) -> None:
    data_file.write_text('{"openai": ')  # a bad deploy: every reader keeps its last good
    wait_until(lambda: proxy.load_error, lambda error: error is not None, what="the reload")
    done = wait_until(lambda: modelboard("fleet"), lambda run: "error" in run.out)
    assert done.code == 1
    _header, row, total = done.out.splitlines()
    assert row.split()[0] == "proxy-eu-1" and "error" in row
    assert total == "1 reader: 1 error"
    assert done.err.startswith(f"modelboard: {data_file}:1:") and "\n" not in done.err.strip()
    data = modelboard("fleet", "--json").json()
    assert data["all_current"] is False
    assert data["readers"][0]["status"] == "error"


def test_wait_on_every_write_command(modelboard: Modelboard, proxy: SelectionStore,
                                     tmp_path: Path, data_file: Path) -> None:
    pinned = tmp_path / "pinned.json"
    pinned.write_text('{"openai": "gpt-4.1"}')
    for command in (["set", "openai", "gpt-4o-mini", "--wait=5"], ["lock", "openai", "--wait"],
                    ["unlock", "openai", "--wait"], ["apply", str(pinned), "--wait"],
                    ["remove", "openai", "--wait", "5"], ["rollback", "1", "--wait"],
                    ["restore", "--wait"]):
        if command[0] == "restore":  # the file deleted (a bad deploy): its backup brought back
            data_file.unlink()
        done = modelboard(*command)
        assert done.code == 0, (command, done.err)
        assert re.search(r"^reached 1 of 1 reader in \d+ ms$", done.out, re.M), done.out
    assert proxy.get_model_selection("openai").model_name == "gpt-4o"  # revision 1, restored


def test_wait_names_a_reader_that_stopped_following(modelboard: Modelboard,
                                                    proxy: SelectionStore) -> None:
    proxy.stop_watching()
    done = modelboard("set", "openai", "gpt-4.1", "--wait=0.5")
    assert done.code == 1
    assert re.fullmatch(r"modelboard: 0 of 1 after 0\.5 s; proxy-eu-1 \(\S+, pid \d+\) still "
                        r"on [0-9a-f]{6}…\n", done.err), done.err
    assert modelboard("fleet").code == 1


def test_wait_takes_seconds_only(modelboard: Modelboard) -> None:
    done = modelboard("set", "openai", "gpt-4o", "--wait=soon")
    assert done.code == 2
    assert "'soon' is not a number of seconds" in done.err
