"""A real uvicorn server in a background thread on loopback: for the tests, the web-page check and the
load script, which must talk HTTP to the same server `moodmusic serve` runs.

    with BackgroundServer(create_app(settings, pipeline)) as server:
        httpx.get(server.url + "/healthz")
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


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
