"""Real parts for the notifier tests: an HTTP receiver on loopback that checks every delivery
with the Standard Webhooks reference library, and ``modelboard notify`` as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import standardwebhooks

from modelboard.core import open_store

CLI = [sys.executable, "-m", "modelboard.core.cli"]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_dGhlIG9sZCBzZWNyZXQsIHN0aWxsIGluIHVzZQ=="
#: Short waits for the tests: a second of backoff would make the suite slow.
FAST = """\
timeout = 0.5
backoff_initial = 0.05
backoff_max = 0.2
election_interval = 0.1
lease_ms = 1000
"""


def check_notification(body: Any) -> None:
    """``body`` is what the shipped schema's ``notification`` allows."""
    from importlib import resources

    text = resources.files("modelboard.core.cli").joinpath("schema.json").read_text("utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator(
        {**schema, "$ref": "#/$defs/notification"},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(body)


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll ``condition`` until it is truthy (returned); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.02)


@dataclass
class Delivery:
    """One request the receiver got, with what the reference library made of it."""

    at: float
    headers: dict[str, str]
    body: bytes
    status: int
    payload: Any = None
    #: Per secret given to the receiver: did the reference library accept the delivery?
    verified: dict[str, bool] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def rev(self) -> int:
        return int(json.loads(self.body)["rev"])


#: What the receiver answers: (status, extra headers, seconds to hang before answering).
Answer = tuple[int, dict[str, str], float]


class Receiver:
    """A real HTTP server on 127.0.0.1 in a thread; ``answer(delivery_number, body)`` decides.

    Every request is verified with ``standardwebhooks.Webhook`` for each secret in
    ``secrets``; ``deliveries`` keeps them all, in arrival order.
    """

    def __init__(self, secrets: tuple[str, ...] = (SECRET,),
                 answer: Callable[[int, dict[str, Any]], Answer] | None = None) -> None:
        self.secrets = secrets
        self.answer = answer or (lambda _n, _body: (200, {}, 0.0))
        self.deliveries: list[Delivery] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends a hang early
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    number = len(receiver.deliveries) + 1
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = {}
                status, extra, hang = receiver.answer(number, parsed)
                delivery = Delivery(time.monotonic(), headers, body, status)
                for secret in receiver.secrets:
                    try:
                        delivery.payload = standardwebhooks.Webhook(secret).verify(body, headers)
                        delivery.verified[secret] = True
                    except standardwebhooks.webhooks.WebhookVerificationError:
                        delivery.verified[secret] = False
                with receiver.lock:
                    receiver.deliveries.append(delivery)
                if hang:
                    receiver.release.wait(hang)
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the notifier gave up on us (timed out, or was killed)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def taken(self) -> list[Delivery]:
        """The deliveries answered with a 2xx."""
        with self.lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def all(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def taken_revs(self) -> list[int]:
        return [d.rev for d in self.taken()]


def endpoint(name: str, url: str, *secrets: str) -> str:
    listed = ", ".join(f'"{s}"' for s in (secrets or (SECRET,)))
    return f'\n[[endpoint]]\nname = "{name}"\nurl = "{url}"\nsecrets = [{listed}]\n'


class NotifierProcess:
    """``modelboard notify --config CONFIG`` on ``store`` as a real process."""

    def __init__(self, store: Path | str, config: Path, log: Path) -> None:
        self.log = log
        self.err = log.open("wb")
        self.process = subprocess.Popen(
            [*CLI, "--file", str(store), "notify", "--config", str(config)],
            stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def says(self, text: str) -> bool:
        return text in self.output()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.err.close()
        return self.process.returncode


def run_cli(store: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    """``modelboard --file STORE ARGS`` as a process."""
    return subprocess.run([*CLI, "--file", str(store), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def status(store: Path | str, config: Path) -> dict[str, Any]:
    done = run_cli(store, "notify", "--config", str(config), "--status", "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def target_status(store: Path, config: Path, name: str) -> dict[str, Any]:
    return next(t for t in status(store, config)["targets"] if t["name"] == name)


class Writer:
    """Revisions made through the core, as a proxy host's operator would."""

    def __init__(self, location: Path | str) -> None:
        if isinstance(location, Path):
            location.parent.mkdir(parents=True, exist_ok=True)
        self.store = open_store(location, actor="alice@ops", report=False)
        self.count = 0

    def revision(self, reason: str | None = None) -> int:
        """One write (ollama's model changes); returns its revision number."""
        self.count += 1
        self.store.set_model_selection("ollama", f"llama-{self.count}", reason=reason)
        return self.store.revisions(limit=1)[0].number  # type: ignore[return-value]
