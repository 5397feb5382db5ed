"""``modelboard serve`` in a real headless Chromium: the page shows the table, a key
pressed in the page reaches the editor, and the change it makes lands in the file.

Chromium is driven through its DevTools protocol (aiohttp, which textual-serve brings,
is the WebSocket client). What the page receives from the editor is read from the
protocol's WebSocket frame events: the terminal itself is drawn on a canvas.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

aiohttp = pytest.importorskip("aiohttp")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--remote-debugging-port=0", "about:blank"]
DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def chromium(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    """A headless Chromium with a fresh profile; yields its DevTools port."""
    if CHROMIUM is None:
        shared = request.config.pluginmanager.get_plugin(str(Path(__file__).parents[1]
                                                             / "conftest.py"))
        if shared.running_in_ci():
            pytest.fail("chromium is missing (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    profile = tmp_path / "chromium-profile"
    browser = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        active = profile / "DevToolsActivePort"
        wait_for(lambda: active.exists() and active.read_text().count("\n") >= 1,
                 "chromium's DevTools port")
        yield int(active.read_text().split("\n")[0])
    finally:
        stop(browser)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """``modelboard serve`` on a free loopback port, over a file with openai on gpt-4o."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('mode = "replace"\n[providers]\nopenai = ["gpt-4o", "gpt-4o-mini"]\n')
    data = tmp_path / "models.json"
    data.write_text(json.dumps({"openai": {"model_name": "gpt-4o", "editable": True,
                                           "last_updated": "2026-01-01T00:00:00Z"}}))
    port = free_port()
    env = {**os.environ, "TEXTUAL_ANIMATIONS": "none"}
    env.pop("NO_COLOR", None)
    server = subprocess.Popen([sys.executable, "-m", "modelboard", "serve", "--port", str(port),
                               "--file", str(data), "--catalog", str(catalog)],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for(lambda: accepts(port) or server.poll() is not None, "the server")
        assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
        yield port, data
    finally:
        stop(server)


class DevTools:
    """One page target, spoken to over the DevTools protocol."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.received = bytearray()  # everything the page's WebSockets received
        self.replies: dict[int, asyncio.Future[Any]] = {}
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            event = json.loads(message.data)
            if "id" in event and event["id"] in self.replies:
                self.replies.pop(event["id"]).set_result(event)
            elif event.get("method") == "Network.webSocketFrameReceived":
                response = event["params"]["response"]
                payload = response["payloadData"]
                if response.get("opcode") == 2:
                    self.received += base64.b64decode(payload)
                else:
                    self.received += payload.encode()

    async def call(self, method: str, **params: Any) -> Any:
        number = next(self.ids)
        self.replies[number] = asyncio.get_running_loop().create_future()
        await self.socket.send_json({"id": number, "method": method, "params": params})
        reply = await asyncio.wait_for(self.replies[number], DEADLINE)
        assert "error" not in reply, reply
        return reply.get("result")

    async def wait_for_text(self, text: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while text.encode() not in self.received:
            assert time.monotonic() < deadline, f"the page never showed {text!r}"
            await asyncio.sleep(0.05)

    async def press(self, key: str, code: str, key_code: int, text: str) -> None:
        await self.call("Input.dispatchKeyEvent", type="keyDown", key=key, code=code,
                        windowsVirtualKeyCode=key_code, text=text)
        await self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code,
                        windowsVirtualKeyCode=key_code)


async def lock_from_the_page(devtools_port: int, page_url: str) -> bytes:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{devtools_port}/json/list") as listing:
            targets = await listing.json()
        page = next(target for target in targets if target["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            tools = DevTools(socket)
            await tools.call("Network.enable")
            await tools.call("Page.enable")
            await tools.call("Page.navigate", url=page_url)
            await tools.wait_for_text("gpt-4o")       # the table, drawn by the editor
            await tools.wait_for_text("openai")
            await tools.call("Runtime.evaluate", expression=(
                "document.querySelector('.xterm-helper-textarea').focus()"))
            await tools.press("l", "KeyL", 76, "l")
            await tools.wait_for_text("enter lock")   # the lock dialog's hint
            await tools.press("Enter", "Enter", 13, "\r")
            tools.reader.cancel()
            return bytes(tools.received)


@pytest.mark.slow
def test_a_key_pressed_in_the_browser_changes_the_file(chromium: int,
                                                       served: tuple[int, Path]) -> None:
    port, data = served

    asyncio.run(lock_from_the_page(chromium, f"http://127.0.0.1:{port}/"))

    stored = wait_for(lambda: json.loads(data.read_text())["openai"].get("editable") is False
                      and json.loads(data.read_text()), "the lock to reach the file")
    assert stored["openai"]["model_name"] == "gpt-4o"
    assert stored["openai"]["updated_by"].startswith("tester@")  # the serving user


@pytest.mark.slow
def test_another_site_cannot_open_the_editor_socket(served: tuple[int, Path]) -> None:
    """A page from elsewhere in the operator's browser (its Origin) is refused."""
    port, _data = served

    async def attempt(origin: str) -> int:
        async with aiohttp.ClientSession() as http:
            try:
                async with http.ws_connect(f"http://127.0.0.1:{port}/ws",
                                           headers={"Origin": origin}) as socket:
                    await socket.close()
                    return 101
            except aiohttp.WSServerHandshakeError as refused:
                return refused.status

    assert asyncio.run(attempt("https://evil.example")) == 403
    assert asyncio.run(attempt(f"http://127.0.0.1:{port}")) == 101


def test_a_non_loopback_host_is_refused_without_allow_remote(tmp_path: Path) -> None:
    refused = subprocess.run([sys.executable, "-m", "modelboard", "serve", "--host", "0.0.0.0",
                              "--file", str(tmp_path / "m.json")],
                             capture_output=True, text=True, timeout=60, check=False)

    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "0.0.0.0 is not a loopback address" in refused.stderr
    assert "--allow-remote" in refused.stderr and "SSH" in refused.stderr
    assert not (tmp_path / "m.json").exists()


def test_serve_help_says_there_is_no_authentication() -> None:
    shown = subprocess.run([sys.executable, "-m", "modelboard", "serve", "--help"],
                           capture_output=True, text=True, timeout=60, check=False)

    assert shown.returncode == 0
    assert "no authentication" in shown.stdout
    assert "ssh -N -L 8000:127.0.0.1:8000" in shown.stdout
