"""``modelboard notify`` run as root beside files and folders other local users may write.

Real users (see hostile_support), real ``flock``, FIFOs and notifier processes. The
notifier's configuration holds commands it runs as root; the files it keeps beside the
data file (lock, cursors, delivery log) can be planted by whoever may create names in
that folder.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

from hostile_support import CLI, Users, one_line

NAME = "models.json"


def modelboard(*args: str, file: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--file", str(file), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def wait_for(condition, timeout: float = 20.0, what: str = ""):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def hook_config(path: Path, proof: Path, extra: str = "") -> Path:
    path.write_text(f"start = \"oldest\"\nelection_interval = 0.1\nbackoff_initial = 0.05\n"
                    f"backoff_max = 0.2\n{extra}\n[[hook]]\nname = \"proof\"\n"
                    f"command = \"cat >> {proof}\"\n")
    path.chmod(0o600)
    return path


def sticky_store(shared: Path) -> tuple[Path, Path]:
    """A data file of root's in a folder like /tmp (anyone may create names there)."""
    folder = shared / "tmp"
    folder.mkdir()
    folder.chmod(0o1777)
    data = folder / NAME
    assert modelboard("set", "openai", "gpt-4o", file=data).returncode == 0
    return folder, data


class Notifier:
    def __init__(self, data: Path, config: Path, log: Path) -> None:
        self.log = log
        self.out = log.open("wb")
        self.process = subprocess.Popen([*CLI, "--file", str(data), "notify", "--config",
                                         str(config)], stdout=self.out, stderr=self.out,
                                        stdin=subprocess.DEVNULL,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.out.close()


# -- the configuration ---------------------------------------------------------------------

def test_a_configuration_another_user_can_change_is_refused(users: Users, shared: Path) -> None:
    folder, data = sticky_store(shared)
    proof = shared / "ran-as-root"
    private = shared / "root-only"
    private.mkdir(mode=0o755)
    config = hook_config(private / "notify.toml", proof)

    # World-writable: anyone could add a [[hook]] that root then runs.
    config.chmod(0o666)
    done = modelboard("notify", "--config", str(config), "--status", file=data)
    assert done.returncode != 0
    line = one_line(done.stderr)
    assert str(config) in line and "writable by every user" in line

    # Writable by a group.
    config.chmod(0o664)
    done = modelboard("notify", "--config", str(config), "--status", file=data)
    assert done.returncode != 0 and "writable by the group" in one_line(done.stderr)

    # Owned by another user (mb-other wrote it, mode 0644).
    config.chmod(0o644)
    os.chown(config, users.other.uid, users.other.gid)
    done = modelboard("notify", "--config", str(config), "--status", file=data)
    assert done.returncode != 0 and "owned by mb-other" in one_line(done.stderr)
    os.chown(config, 0, 0)

    # Root's own 0600 file in a folder the ops group may write: a member could replace it.
    ops = shared / "ops"
    ops.mkdir()
    os.chown(ops, users.owner.uid, users.group)
    ops.chmod(0o2770)
    planted = hook_config(ops / "notify.toml", proof)
    done = modelboard("notify", "--config", str(planted), "--status", file=data)
    assert done.returncode != 0
    line = one_line(done.stderr)
    assert str(ops) in line and "mb-owner" in line

    # A symlink of mb-other's leading to root's good file: it could be pointed elsewhere.
    link = folder / "notify.toml"
    made = users.other.run(["ln", "-s", str(config), str(link)])
    assert made.returncode == 0, made.stderr
    done = modelboard("notify", "--config", str(link), "--status", file=data)
    assert done.returncode != 0 and "symlink owned by mb-other" in one_line(done.stderr)

    # Root's own 0600 file in a folder only root writes: taken.
    config.chmod(0o600)
    done = modelboard("notify", "--config", str(config), "--status", file=data)
    assert done.returncode == 0, done.stderr
    assert not proof.exists()


def test_a_fifo_or_huge_configuration_is_one_line_and_no_hang(tmp_path: Path) -> None:
    data = tmp_path / NAME
    assert modelboard("set", "openai", "gpt-4o", file=data).returncode == 0
    fifo = tmp_path / "notify.toml"
    os.mkfifo(fifo, 0o600)
    done = modelboard("notify", "--config", str(fifo), "--status", file=data, timeout=20)
    assert done.returncode != 0 and "FIFO" in one_line(done.stderr)
    huge = tmp_path / "huge.toml"
    huge.write_text("# " + "x" * (8 * 1024 * 1024) + "\n")
    done = modelboard("notify", "--config", str(huge), "--status", file=data, timeout=20)
    assert done.returncode != 0 and "refusing to read it" in one_line(done.stderr)


# -- files planted beside the data file ----------------------------------------------------

def test_a_planted_lock_is_refused_not_taken_for_a_deliverer(
        users: Users, shared: Path, tmp_path: Path) -> None:
    folder, data = sticky_store(shared)
    lock = folder / "models.notify.lock"
    planted = users.other.run(["sh", "-c", f"umask 0; echo 'proxy-1 pid 1 since now' > {lock}"])
    assert planted.returncode == 0, planted.stderr
    holder = subprocess.Popen(
        ["setpriv", f"--reuid={users.other.uid}", f"--regid={users.other.gid}",
         "--init-groups", "--", "flock", str(lock), "sleep", "60"])
    notifier = Notifier(data, hook_config(tmp_path / "notify.toml", tmp_path / "proof"),
                        tmp_path / "notifier.log")
    try:
        said = wait_for(lambda: "refusing to use it as the notifier's lock"
                        in notifier.output(), what="the refusal")
        assert said
        text = notifier.output()
        assert "mb-other" in text and str(lock) in text
        assert "standing by" not in text          # mb-other's record is not believed
        assert os.stat(lock).st_uid == users.other.uid   # root did not take the file over
        config = tmp_path / "notify.toml"
        shown = modelboard("notify", "--config", str(config), "--status", "--json", file=data)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["deliverer"] is None   # not mb-other's forged line
    finally:
        notifier.stop()
        holder.kill()
        holder.wait()


def test_a_planted_cursor_cannot_silence_a_target(users: Users, shared: Path) -> None:
    folder, data = sticky_store(shared)
    record = folder / "models.notify.proof.json"
    body = json.dumps({"cursor": 10 ** 9, "last_attempt": None,
                       "disabled": {"disabled_at": "x", "message": "\x1b[2Jgone"}})
    planted = users.other.run(["sh", "-c", f"umask 0; printf '%s' '{body}' > {record}"])
    assert planted.returncode == 0, planted.stderr
    config = hook_config(shared / "notify.toml", shared / "proof")
    done = modelboard("notify", "--config", str(config), "--status", file=data)
    assert done.returncode != 0
    line = one_line(done.stderr)
    assert str(record) in line and "mb-other" in line and "\x1b" not in line


def test_a_planted_delivery_log_gets_nothing(users: Users, shared: Path, tmp_path: Path) -> None:
    folder, data = sticky_store(shared)
    log = folder / "models.notify.log.jsonl"
    planted = users.other.run(["sh", "-c", f"umask 0; : > {log}"])
    assert planted.returncode == 0, planted.stderr
    proof = tmp_path / "proof"
    notifier = Notifier(data, hook_config(tmp_path / "notify.toml", proof),
                        tmp_path / "notifier.log")
    try:
        wait_for(lambda: proof.exists() and b'"rev":1' in proof.read_bytes(),
                 what="the delivery of revision 1")
        wait_for(lambda: "refusing to use it as the delivery log" in notifier.output(),
                 what="the refusal of the log")
        assert log.read_bytes() == b""
        assert os.stat(log).st_uid == users.other.uid
    finally:
        notifier.stop()


def test_a_state_dir_others_can_change_is_refused(users: Users, shared: Path) -> None:
    tmp, data = sticky_store(shared)
    state = shared / "notify-state"
    state.mkdir()
    os.chown(state, users.owner.uid, users.group)   # mb-owner's: it may delete root's cursors
    state.chmod(0o2770)
    config = hook_config(shared / "notify.toml", shared / "proof",
                         extra=f'state_dir = "{state}"')
    done = modelboard("notify", "--config", str(config), "--status", file=data)
    assert done.returncode != 0
    line = one_line(done.stderr)
    assert str(state) in line and "owned by mb-owner" in line and "state_dir" in line
    os.chown(state, 0, users.group)                  # root's, but the group may write it
    done = modelboard("notify", "--config", str(config), "--status", file=data)
    assert done.returncode != 0 and "writable by the group mb-ops" in one_line(done.stderr)
    state.chmod(0o750)                               # root's, the group may only read
    done = modelboard("notify", "--config", str(config), "--status", file=data)
    assert done.returncode == 0, done.stderr

    # mb-other's symlink in /tmp to a folder of root's (think /etc): not followed there.
    link = tmp / "notify-state"
    made = users.other.run(["ln", "-s", str(state), str(link)])
    assert made.returncode == 0, made.stderr
    config = hook_config(shared / "notify.toml", shared / "proof",
                         extra=f'state_dir = "{link}"')
    done = modelboard("notify", "--config", str(config), "--status", file=data)
    assert done.returncode != 0 and "symlink owned by mb-other" in one_line(done.stderr)


def test_a_world_readable_store_keeps_its_delivery_answers_from_others(
        users: Users, shared: Path, tmp_path: Path) -> None:
    folder = shared / "etc-llm"
    folder.mkdir(mode=0o755)
    data = folder / NAME
    assert modelboard("set", "openai", "gpt-4o", file=data).returncode == 0
    data.chmod(0o644)                      # everyone may read the selections
    config = tmp_path / "notify.toml"
    config.write_text('start = "oldest"\nbackoff_initial = 0.05\nbackoff_max = 0.2\n'
                      '[[hook]]\nname = "slack"\ncommand = "echo curl: '
                      'https://hooks.example/T0/B0/TOKEN123 failed >&2; exit 1"\n')
    config.chmod(0o600)
    notifier = Notifier(data, config, tmp_path / "notifier.log")
    log = folder / "models.notify.log.jsonl"
    record = folder / "models.notify.slack.json"
    try:
        wait_for(lambda: log.exists() and b"TOKEN123" in log.read_bytes(), what="an attempt")
    finally:
        notifier.stop()
    for path in (log, record):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
        peek = users.other.run(["cat", str(path)])
        assert peek.returncode != 0 and "TOKEN123" not in peek.stdout
