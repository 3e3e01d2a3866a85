"""Which process owns a run or a temporary file, and whether that process is still alive.

A pid alone can be reused by a later process; with the pid's start time (from /proc, where there
is one) an owner is identified for the life of the machine.
"""

from __future__ import annotations

import os
import socket


def started(pid: int) -> str:
    """When process `pid` started (clock ticks after boot), or '' where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def this_process() -> tuple[str, int, str]:
    """(host, pid, start time) of the running process."""
    return socket.gethostname(), os.getpid(), started(os.getpid())


def alive(pid: int, start: str = "") -> bool:
    """Whether process `pid` on this host is running and is the one that started at `start`."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a live process of another user
        pass
    return not start or started(pid) in ("", start)
