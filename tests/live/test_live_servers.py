"""The README's proxies under real servers: uvicorn --workers and gunicorn --preload.

Each README app and command runs exactly as written (only the port is changed), four
workers answer requests without a pause from several client threads, and ``modelboard
set`` changes the model while they do, with a hand typo in between. Every worker must
move to each new model in order, never serve the typo or a model nobody set, and no
request may fail.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
MODELBOARD = str(Path(sys.executable).parent / "modelboard")
WORKERS = 4
START_TIMEOUT_S = 90.0
CHANGE_TIMEOUT_S = 30.0
MODELS = ("gpt-4o", "gpt-4.1", "o3", "gpt-4-turbo", "gpt-5-mini")
TYPO = "gpt-4oo"

pytestmark = pytest.mark.slow


def readme_blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```\n", text, re.M | re.S)


def python_file(name: str) -> str:
    (body,) = [b for b in readme_blocks("python") if b.startswith(f"# {name}\n")]
    return body


def command(starting: str, containing: str = "") -> list[str]:
    """The README's shell command line that starts with ``starting`` (and has ``containing``)."""
    lines = [line for block in readme_blocks("sh") for line in block.splitlines()
             if line.startswith(starting + " ") and containing in line]
    assert len(lines) >= 1, f"no README command {starting!r} with {containing!r}"
    return lines[0].split()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def on_port(argv: list[str], port: int) -> list[str]:
    """The README command on ``port`` instead of 8000, and with the port added if absent."""
    replaced = [arg.replace("8000", str(port)) for arg in argv]
    if replaced[0] == "uvicorn" and "--port" not in replaced:
        replaced += ["--host", "127.0.0.1", "--port", str(port)]
    if replaced[0] == "gunicorn" and "-b" not in replaced:
        replaced[1:1] = ["-b", f"127.0.0.1:{port}"]
    executable = Path(sys.executable).parent / replaced[0]
    return [str(executable), *replaced[1:]]


def http_request(port: int, method: str, path: str) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}) \
            if method == "POST" else None
        connection.request(method, path, body=body, headers={
            "Content-Type": "application/json", "Connection": "close"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@dataclass
class Traffic:
    """Client threads posting requests without a pause; every answer is kept, in order."""

    port: int
    #: (pid, model, sent, answered): monotonic times around each request.
    answers: list[tuple[int, str, float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                status, answer = http_request(self.port, "POST", "/v1/chat/completions")
            except OSError as exc:
                with self.lock:
                    self.errors.append(repr(exc))
                continue
            with self.lock:
                if status != 200:
                    self.errors.append(f"HTTP {status}: {answer}")
                else:
                    self.answers.append((int(answer["pid"]), str(answer["model"]),  # type: ignore[call-overload]
                                         sent, time.monotonic()))

    def mark(self) -> int:
        with self.lock:
            return len(self.answers)

    def pids_serving(self, model: str, since: int) -> set[int]:
        with self.lock:
            return {pid for pid, served, _s, _a in self.answers[since:] if served == model}


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MODELBOARD_CATALOG")   # the bundled catalog, as a proxy has it
    for name in ("proxy.py", "preloaded.py"):
        (tmp_path / name).write_text(python_file(name))
    (logging_json,) = readme_blocks("json")
    (tmp_path / "logging.json").write_text(logging_json)
    return tmp_path


def modelboard(folder: Path, *args: str) -> None:
    env = {**os.environ, "MODELBOARD_FILE": str(folder / "model_selections.json")}
    done = subprocess.run([MODELBOARD, *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def server(folder: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    argv: list[str] = request.param
    modelboard(folder, "set", "openai", "gpt-4o-mini")
    port = free_port()
    log_path = folder / "server.log"
    env = {**os.environ, "MODELBOARD_FILE": str(folder / "model_selections.json")}
    with log_path.open("w") as log:
        process = subprocess.Popen(on_port(argv, port), cwd=folder, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
    served = Server(process, port, log_path)
    try:
        def up() -> bool:
            assert process.poll() is None, served.log()
            try:
                return http_request(port, "GET", "/health")[0] == 200
            except OSError:
                return False
        wait_for(up, START_TIMEOUT_S, "the server to answer")
        yield served
    finally:
        with contextlib.suppress(ProcessLookupError):   # it may have failed to start
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def hand_edit(path: Path, model: str) -> None:
    """An operator's editor saving a typo (written aside and renamed, as vim does)."""
    document = json.loads(path.read_text())
    document["openai"]["model_name"] = model
    aside = path.with_name(".edit.tmp")
    aside.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(aside, path)


def assert_never_back(pid: int, answers: list[tuple[int, str, float, float]],
                      order: list[str]) -> None:
    """A request sent after another was answered never gets an older model from ``pid``.

    Requests that overlapped may be answered in either order, so only those that did not
    are compared: the newest model answered before each request was sent is its floor.
    """
    by_answer = sorted(answers, key=lambda a: a[3])
    floor, done = -1, 0
    for _pid, model, sent, _answered in sorted(answers, key=lambda a: a[2]):
        while done < len(by_answer) and by_answer[done][3] < sent:
            floor = max(floor, order.index(by_answer[done][1]))
            done += 1
        assert order.index(model) >= floor, f"worker {pid} went back to {model}"


SERVERS = {
    "uvicorn --workers": command("uvicorn", "--workers 4 --host"),
    "gunicorn --preload": command("gunicorn", "-b 127.0.0.1:8000"),
    "uvicorn, logging.json": command("uvicorn", "--log-config"),
    "gunicorn --preload, logging.json": command("gunicorn", "--log-config-json"),
}


@pytest.mark.parametrize("server", list(SERVERS.values()), ids=list(SERVERS), indirect=True)
def test_every_worker_moves_to_each_new_model_in_order(folder: Path, server: Server) -> None:
    traffic = Traffic(server.port)
    clients = [threading.Thread(target=traffic.run, daemon=True) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        wait_for(lambda: len(traffic.pids_serving("gpt-4o-mini", 0)) == WORKERS,
                 START_TIMEOUT_S, "every worker to answer")
        workers = traffic.pids_serving("gpt-4o-mini", 0)
        expected = ["gpt-4o-mini"]
        for number, model in enumerate(MODELS):
            if number == 2:  # a hand typo: never served, visible on every worker's /health
                hand_edit(folder / "model_selections.json", TYPO)
                reporting: set[int] = set()

                def all_report_it(reporting: set[int] = reporting) -> bool:
                    status, health = http_request(server.port, "GET", "/health")
                    stored = [p["stored"] for p in health["problems"]]  # type: ignore[union-attr]
                    if status == 200 and stored == [TYPO]:
                        reporting.add(int(health["pid"]))  # type: ignore[call-overload]
                    return reporting >= workers
                wait_for(all_report_it, CHANGE_TIMEOUT_S, "every worker to report the typo")
            since = traffic.mark()
            modelboard(folder, "set", "openai", model)
            expected.append(model)
            wait_for(lambda m=model, s=since: traffic.pids_serving(m, s) >= workers,
                     CHANGE_TIMEOUT_S, f"every worker to serve {model}")
    finally:
        traffic.stop.set()
        for client in clients:
            client.join(timeout=30)
    assert traffic.errors == []
    assert {model for _pid, model, _s, _a in traffic.answers} == set(expected)  # no typo
    assert {pid for pid, _model, _s, _a in traffic.answers} == workers   # the same four
    for pid in workers:
        assert_never_back(pid, [a for a in traffic.answers if a[0] == pid], expected)
    if "logging.json" in " ".join(server.process.args):  # type: ignore[arg-type]
        log = server.log()
        typo_lines = [line for line in log.splitlines() if TYPO in line]
        pids = [int(line.split()[2]) for line in typo_lines]
        assert set(pids) >= workers and len(pids) == len(set(pids)), log  # once per process
        assert all(" WARNING modelboard.core.store: " in line for line in typo_lines), log
