"""A real uvicorn server in a background thread on loopback: for the tests, the web-page check and the
load script, which must talk HTTP to the same server `moodmusic serve` runs; and the wait for a server started
as a process (`moodmusic serve`, `moodmusic serve --ray`) to be ready.

    with BackgroundServer(create_app(settings, pipeline)) as server:
        httpx.get(server.url + "/healthz")
    wait_until_ready(subprocess.Popen([...]), "http://127.0.0.1:8000", log=Path("server.log"))
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerStartError(RuntimeError):
    """A server process exited during startup, or was not ready in time; the message ends with its log."""


def wait_until_ready(process: subprocess.Popen, url: str, log: Path | None = None, timeout_s: float = 300.0) -> None:
    """Poll a started server process's /readyz until it answers 200. ServerStartError (with the end of its `log`)
    when it exits first, or, after terminating it, when it takes longer than `timeout_s`."""
    import httpx

    def tail() -> str:
        return f":\n{log.read_text(errors='replace')[-3000:]}" if log is not None and log.exists() else ""

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"the server exited during startup{tail()}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise ServerStartError(f"the server did not become ready within {timeout_s:g} s{tail()}")


class BackgroundServer:
    """A uvicorn server for `app` on a free loopback port, run in a daemon thread; use as a context manager."""

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None, startup_timeout: float = 120.0, log_level: str = "warning"):
        self.host, self.port = host, port or free_port(host)
        self.startup_timeout = startup_timeout
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level=log_level, lifespan="on")
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # signals belong to the main thread (pytest, the script)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:  # set once lifespan startup (model loading) is done and the socket listens
            if not self.thread.is_alive():
                raise RuntimeError("the server stopped during startup (see its log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {self.startup_timeout:g} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """What SIGTERM does to `moodmusic serve`: stop listening, finish requests in flight, shut the app down."""
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
