"""Run an ASGI app on a loopback port in a background thread (sandbox, receiver, tests, demo)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

__all__ = ["BackgroundServer", "free_port", "is_loopback", "serve_forever"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) reaches this machine only.

    A name counts as loopback only when every address it resolves to is; one that does not
    resolve does not (binding to it would fail anyway).
    """
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    if host.lower() == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (the server binds its own socket, so races are harmless)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class BackgroundServer:
    """An uvicorn server bound to ``host:port`` (port 0 picks a free one), run in a thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str = "server"):
        self.app = app
        self.host = host
        self.name = name
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"{name}-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(app: Any, *, host: str, port: int) -> None:
    """Run ``app`` in the foreground until Ctrl-C (the ``runbook sandbox``/``receiver`` commands)."""
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


@contextlib.contextmanager
def running(app: Any, **kwargs: Any) -> Iterator[BackgroundServer]:
    """``with running(app) as server: ...`` — a started :class:`BackgroundServer`."""
    server = BackgroundServer(app, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
