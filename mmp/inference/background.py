"""Start slow, independent work (importing MLflow, opening its store) on a thread while the main
work goes on; join it where its result is needed."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any, Callable


def in_background(function: Callable[..., Any], *args: Any) -> Future:
    """`function(*args)` on a daemon thread; the future holds its result or its exception. A daemon,
    so a command that fails meanwhile exits without waiting for it."""
    future: Future = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # handed to whoever calls result()
            future.set_exception(exc)

    threading.Thread(target=run, name="mmp-background", daemon=True).start()
    return future
