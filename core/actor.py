"""Who is making a change: the person behind sudo or SSH, at this host."""

from __future__ import annotations

import os

__all__ = ["default_actor", "host_name"]


def host_name() -> str:
    """This machine's name, as ``socket.gethostname()`` gives it on POSIX (uname's
    nodename), without importing socket: a command that only reads starts faster."""
    try:
        return os.uname().nodename or "localhost"
    except AttributeError:  # no uname (Windows): the portable way
        import socket

        return socket.gethostname() or "localhost"


def default_actor() -> str:
    """``user@host``, preferring the user who ran sudo over root.

    Over SSH the login name is already the remote user; under ``sudo`` the
    interesting person is ``SUDO_USER``, not root.
    """
    user = os.environ.get("SUDO_USER") or os.environ.get("LOGNAME") or os.environ.get("USER")
    if not user:
        import getpass  # rarely needed: it imports termios

        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = f"uid{os.getuid()}"
    host = host_name().split(".")[0] or "localhost"
    return "".join(ch for ch in f"{user}@{host}" if ch.isprintable())
