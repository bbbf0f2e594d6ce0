"""The report's kernel: in a private folder of its own, stopped promptly when the run is stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["PrivateKernels", "stop_promptly"]


class PrivateKernels:
    """Where this run's kernel talks: a private folder of its own, never the working folder.

    jupyter_client puts IPC sockets next to a relative ``kernel-ipc`` name, i.e. in the current
    folder, picking the first free ``kernel-ipc-N``: runs started at the same moment from one
    folder pick the same sockets and talk to each other's kernels. Here the connection file and
    every socket live in a fresh ``mkdtemp`` folder (mode 0700), removed when the run ends, also
    when it is interrupted (SIGINT, or SIGTERM turned into an exit that unwinds); after a SIGKILL
    the kernel exits with its parent and nothing was ever created in the working folder.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="runbook-kernel-"))
        self.managers: list[Any] = []

    def manager_class(self) -> type:
        """A kernel manager on IPC sockets (local-only, no plaintext-TCP warning) in the folder."""
        from jupyter_client.manager import AsyncKernelManager
        from traitlets import CaselessStrEnum, Unicode

        managers, private_file = self.managers, str(self.folder / "kernel.json")

        class IpcKernelManager(AsyncKernelManager):
            transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc")
            # the IPC socket paths derive from it: <folder>/kernel-ipc-<N>
            connection_file = Unicode(private_file)

            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                managers.append(self)

        return IpcKernelManager

    def close(self) -> None:
        """Stop a kernel an interruption left running, then remove the folder."""
        for manager in self.managers:
            process = getattr(getattr(manager, "provisioner", None), "process", None)
            if process is not None and process.poll() is None:
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    process.kill()
                    process.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_promptly(kernels: PrivateKernels) -> Iterator[None]:
    """SIGTERM or SIGINT while a report runs: stop its kernel and remove its files at once.

    The main thread spends a run blocked in zmq waits that a signal delivered to another thread
    does not interrupt, so Python's handler alone could wait for the current cell to finish. A
    relay thread woken by ``signal.set_wakeup_fd`` stops the kernel and removes the private
    folder straight away, then interrupts the main thread, which unwinds through its ``finally``
    blocks: SIGTERM exits 143, SIGINT is the usual ``KeyboardInterrupt``, and a handler the caller
    had installed (a scheduler's) is called instead. A signal the caller ignores (SIG_IGN, e.g.
    SIGINT in a background job) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; an embedding caller keeps its own
        return
    caught = [s for s in _STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
    stopping, raised = threading.Event(), threading.Event()
    main_thread = threading.main_thread().ident or 0

    def handler(signum: int, frame: Any) -> None:
        if raised.is_set():
            return  # one unwinding is enough; the relay's nudge must not interrupt it
        raised.set()
        prior = previous.get(signum)
        if callable(prior) and prior is not signal.default_int_handler:
            prior(signum, frame)  # an embedding scheduler's own handler decides how to stop
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def relay() -> None:
        while (data := os.read(read_fd, 64)) and 0 not in data:  # b"\0": the run is over
            signum = next((b for b in data if b in caught), None)
            if signum is None or stopping.is_set():
                continue
            stopping.set()
            kernels.close()
            signal.pthread_kill(main_thread, signum)

    previous: dict[int, Any] = {}
    previous.update({s: signal.signal(s, handler) for s in caught})
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=relay, name="report-signal-relay", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        os.write(write_fd, b"\0")
        watcher.join(5)
        for s, h in previous.items():
            signal.signal(s, h)
        os.close(read_fd)
        os.close(write_fd)
