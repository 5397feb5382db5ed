"""``modelboard serve``: the same editor in a web browser, through textual-serve.

Each browser tab gets its own editor process (``python -m modelboard tui …`` on the
same file), so it behaves exactly as in a terminal: live changes, conflicts, locks.

There is no authentication: whoever reaches the port can change every provider's
model. The server therefore binds to loopback unless told otherwise, and accepts a
browser's WebSocket only from a page it served itself (same ``Origin`` as ``Host``),
and, on loopback, only under a loopback host name, so that neither another web site
open in the operator's browser nor a DNS-rebinding trick can drive the editor.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from typing import Any
from urllib.parse import urlsplit

__all__ = ["build_command", "host_problem", "is_loopback", "run", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) only ever means this machine."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_command(location: str, *, catalog: str | None, read_only: bool,
                  actor: str | None) -> str:
    """The shell command textual-serve runs for each browser tab."""
    argv = [sys.executable, "-m", "modelboard", "tui", "--file", location]
    if catalog is not None:
        argv += ["--catalog", catalog]
    if actor is not None:
        argv += ["--actor", actor]
    if read_only:
        argv.append("--read-only")
    return shlex.join(argv)


def serve(command: str, *, host: str, port: int, public_url: str | None,
          title: str) -> None:
    """Serve ``command`` on ``host:port`` until SIGINT or SIGTERM."""
    from aiohttp import web
    from textual_serve.server import Server

    class GuardedServer(Server):
        """textual-serve, with page URLs that follow the address the browser used
        (an SSH tunnel's local port) and a WebSocket that checks where it comes from."""

        async def handle_index(self, request: web.Request) -> Any:
            if public_url is None:
                # The page embeds absolute URLs; build them from the Host the browser
                # asked for, so ``ssh -L 9000:127.0.0.1:8000`` works at localhost:9000.
                self.public_url = f"http://{request.host}"
            return await super().handle_index(request)

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            refusal = _refusal(request.headers.get("Origin"), request.host,
                               loopback_only=is_loopback(host), public_url=public_url)
            if refusal is not None:
                raise web.HTTPForbidden(text=refusal)
            return await super().handle_websocket(request)

    GuardedServer(command, host=host, port=port, title=title,
                  public_url=public_url).serve()


def _refusal(origin: str | None, host_header: str, *, loopback_only: bool,
             public_url: str | None) -> str | None:
    """Why a WebSocket upgrade is refused, or None to accept it."""
    if public_url is not None:
        expected = urlsplit(public_url)
        if origin is None or urlsplit(origin).netloc != expected.netloc:
            return "this editor only accepts its own page"
        return None
    if origin is None or urlsplit(origin).netloc != host_header:
        return "this editor only accepts its own page"
    if loopback_only and not is_loopback(urlsplit(f"//{host_header}").hostname or ""):
        return "this editor only answers to a loopback address"
    return None


def host_problem(host: str, *, allow_remote: bool) -> str | None:
    """Why serving on ``host`` is refused, or None."""
    if allow_remote or is_loopback(host):
        return None
    return (f"--host {host} is not a loopback address, and the editor in the browser has "
            "no authentication: reach it through SSH port forwarding, or add "
            "--allow-remote behind an authenticating reverse proxy")


def run(location: str, *, host: str, port: int, public_url: str | None,
        catalog: str | None, read_only: bool, actor: str | None) -> int:
    """Serve the editor on ``location`` until stopped; returns the exit code."""
    command = build_command(location, catalog=catalog, read_only=read_only, actor=actor)
    shown = public_url or f"http://{f'[{host}]' if ':' in host else host}:{port}"
    print(f"modelboard: serving the editor of {location} at {shown} "
          "(no authentication; Ctrl-C stops)", file=sys.stderr, flush=True)
    serve(command, host=host, port=port, public_url=public_url, title="modelboard")
    return 0
