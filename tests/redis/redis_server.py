"""A real redis-server started by the tests, on a free loopback port in a temp folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

START_TIMEOUT_S = 10.0


def redis_server_binary(config: pytest.Config) -> str:
    """The redis-server path; skips the test on a laptop without it, fails it in CI."""
    # tests/conftest.py is loaded as a plugin; "import conftest" would find ours instead.
    shared = config.pluginmanager.get_plugin(str(Path(__file__).parent.parent / "conftest.py"))
    path = shutil.which("redis-server")
    if path is None:
        if shared.running_in_ci():
            pytest.fail("redis-server is not installed; CI must install it (see .ci/run)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process; durable (append-only file, fsync on every write).

    ``kill`` is a crash (SIGKILL); ``start`` again brings it back on the same port
    with the same data.
    """

    def __init__(self, binary: str, folder: Path, *, password: str | None = None,
                 tls_certificate: tuple[Path, Path] | None = None) -> None:
        self.binary = binary
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.password = password
        #: (certificate, key): serve TLS only, with this self-signed certificate.
        self.tls_certificate = tls_certificate
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, key: str | None = None, *, password: str | None = None) -> str:
        secret = password if password is not None else self.password
        auth = f":{secret}@" if secret else ""
        options = [f"key={key}"] if key else []
        scheme = "redis"
        if self.tls_certificate is not None:
            scheme = "rediss"
            options.append(f"ssl_ca_certs={self.tls_certificate[0]}")
        query = "?" + "&".join(options) if options else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0{query}"

    @property
    def socket_path(self) -> Path:
        return self.folder / "redis.sock"

    def client(self) -> redis.Redis:
        tls: dict[str, object] = {}
        if self.tls_certificate is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(self.tls_certificate[0])}
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                           socket_timeout=5, retry=Retry(NoBackoff(), 0), **tls)

    def start(self) -> RedisServer:
        arguments = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--daemonize", "no", "--logfile", str(self.folder / "redis.log"),
            "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
        ]
        if self.password:
            arguments += ["--requirepass", self.password]
        if self.tls_certificate is not None:
            certificate, key = self.tls_certificate
            arguments[1:3] = ["--port", "0", "--tls-port", str(self.port),
                              "--tls-cert-file", str(certificate), "--tls-key-file", str(key),
                              "--tls-ca-cert-file", str(certificate),
                              "--tls-auth-clients", "no"]
        self.process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        probe = self.client()
        try:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    log = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited at start:\n{log}")
                try:
                    if probe.ping():
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not answer")
                time.sleep(0.02)  # polling a condition with a deadline, not hoping
        finally:
            probe.close()

    def kill(self) -> None:
        """Crash the server (SIGKILL): nothing is flushed beyond what was acknowledged."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("the openssl command is not installed; CI must have it")
        pytest.skip("the openssl command is not installed")
    certificate, key = folder / "server.crt", folder / "server.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(certificate), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return certificate, key


def stored_document(client: redis.Redis, prefix: str) -> bytes:
    """The selections under ``prefix`` (one hash field per provider) as the file format:
    ``json.dumps(..., indent=2, sort_keys=True, ensure_ascii=False)`` and a newline."""
    import json

    fields = client.hgetall(f"{prefix}:selections")
    entries = {name.decode(): json.loads(value) for name, value in fields.items()}
    return (json.dumps(entries, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
