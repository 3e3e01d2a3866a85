"""Graceful shutdown of one worker: on SIGTERM, serve what clients already sent, refuse what comes
after, then let uvicorn finish the requests in flight within `--timeout-graceful-shutdown`
(serving.grace_period_s) and exit.

uvicorn alone drops two kinds of request on SIGTERM. A connection the kernel accepted that uvicorn
had not yet taken stays queued on the listening socket, which `bentoml serve`'s arbiter holds open
until it exits: the client waits, then is reset. And a request whose bytes arrived while the event
loop was busy (parsing another 10,000-row batch) is on a connection that looks idle, which uvicorn
closes unanswered. So before handing the signal to uvicorn this worker stops new handshakes, takes in
the queued connections, shuts the listening socket (later clients are refused at once and can retry
elsewhere) and gives the event loop a few turns to read what already arrived. Meanwhile /ready
answers 503 and every response says `Connection: close`, so no client sends another request on a
connection about to close.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import socket
import threading
from typing import Any, Callable

log = logging.getLogger("mmp.serve")

ACCEPT_WAIT_S = 1.0  # at most this long taking in queued connections (clients may keep connecting)
QUIET_TURNS = 3  # event loop turns with nothing queued before the server stops accepting
SETTLE_TURNS, SETTLE_S = 10, 0.02  # event loop turns (and seconds each) to read requests already sent


class Drain:
    """SIGTERM handling for one worker; `started` tells the routes and the middleware it has begun."""

    def __init__(self) -> None:
        self.started = False
        self.task: asyncio.Task | None = None  # a strong reference keeps the drain running

    def install(self) -> None:
        """Put the drain in front of the server's SIGTERM handler. Call on the worker's main thread
        once the server has set its handler (the service's __init__, at ASGI startup, is such a place)."""
        handler = signal.getsignal(signal.SIGTERM)
        if not callable(handler) or threading.current_thread() is not threading.main_thread():
            return  # no server handler to hand the signal on to: keep the server's own behaviour
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not inside a server (a script that builds the service): nothing to drain
            return

        def on_sigterm(signum: int, frame: Any) -> None:
            if self.started:  # a second SIGTERM (the process group and the arbiter both send one)
                return
            self.started = True
            loop.call_soon_threadsafe(self._start, loop, handler, signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

    def _start(self, loop: asyncio.AbstractEventLoop, handler: Callable, signum: int, frame: Any) -> None:
        self.task = loop.create_task(self._drain(handler, signum, frame))

    async def _drain(self, handler: Callable, signum: int, frame: Any) -> None:
        log.info("SIGTERM: taking in queued connections, refusing new ones, then finishing requests in flight")
        try:
            # uvicorn's handler is a method of its Server, whose asyncio servers accept on the sockets.
            servers = list(getattr(getattr(handler, "__self__", None), "servers", None) or [])
            listeners = [socket.socket(fileno=os.dup(s.fileno())) for server in servers for s in server.sockets]
            for listener in listeners:
                _stop_handshakes(listener)
            await _take_queued(listeners)
            for server in servers:
                server.close()  # stops accepting here first: a shut socket would wake the accept loop forever
            for listener in listeners:
                _refuse_new(listener)
            for _ in range(SETTLE_TURNS):
                await asyncio.sleep(SETTLE_S)
        except Exception:  # never keep the server from shutting down
            log.exception("draining before shutdown failed; shutting down anyway")
        finally:
            handler(signum, frame)


def _stop_handshakes(listener: socket.socket) -> None:
    # A backlog of 0 leaves the kernel room for about one more queued connection; further clients
    # wait for the shutdown below instead of landing in a queue no one takes from. listen() on a
    # socket another worker already shut would open it again, hence the check.
    if listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        listener.listen(0)


async def _take_queued(listeners: list[socket.socket]) -> None:
    """Let uvicorn, still serving, take every queued connection. Returns once none has been queued
    for a few event loop turns: an accepted connection needs two more turns to reach uvicorn, and
    closing the server before that drops it."""
    poller = select.poll()
    for listener in listeners:
        poller.register(listener, select.POLLIN)
    loop = asyncio.get_running_loop()
    deadline, quiet = loop.time() + ACCEPT_WAIT_S, 0
    while quiet < QUIET_TURNS and loop.time() < deadline:
        # POLLIN alone: a socket another worker shut already reports POLLHUP, and has no queue.
        queued = any(events & select.POLLIN and not events & select.POLLHUP for _, events in poller.poll(0))
        quiet = 0 if queued else quiet + 1
        await asyncio.sleep(0.005)


def _refuse_new(listener: socket.socket) -> None:
    # Shutting the socket (not just closing this process's descriptor) stops it listening in the
    # arbiter too, so a client connecting now is refused instead of queued and reset later.
    try:
        listener.shutdown(socket.SHUT_RD)
    except OSError:  # not every system shuts a listening socket; it then closes when the arbiter exits
        pass
    listener.close()
