"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand: a few counters,
one latency histogram, and gauges read at scrape time. No client library needed.

Routes are labelled by their template (`/v1/clips/{clip_id}`), never the raw path, so clip ids and
probing clients cannot blow up the number of series.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(str(v))}"' for k, v in labels.items()) + "}"


class Metrics:
    """The server's counters, latency histogram and gauges, safe to update from any thread; `render()` is the
    text that GET /metrics returns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: collections.Counter[tuple[str, str, int]] = collections.Counter()
        self.latency_buckets: dict[tuple[str, str], list[int]] = {}
        self.latency_sum: collections.Counter[tuple[str, str]] = collections.Counter()
        self.latency_count: collections.Counter[tuple[str, str]] = collections.Counter()
        self.store: collections.Counter[str] = collections.Counter()  # hit / miss
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}  # name -> (help, read at scrape time)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            key = (method, route)
            buckets = self.latency_buckets.setdefault(key, [0] * len(LATENCY_BUCKETS))
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            self.latency_sum[key] += seconds
            self.latency_count[key] += 1

    def store_lookup(self, hit: bool) -> None:
        with self._lock:
            self.store["hit" if hit else "miss"] += 1

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges[name] = (help_text, read)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            lines += ["# HELP moodmusic_http_requests_total HTTP requests by route and status.", "# TYPE moodmusic_http_requests_total counter"]
            for (method, route, status), count in sorted(self.requests.items()):
                lines.append(f"moodmusic_http_requests_total{_labels(method=method, route=route, status=str(status))} {count}")
            lines += ["# HELP moodmusic_http_request_seconds HTTP request latency.", "# TYPE moodmusic_http_request_seconds histogram"]
            for (method, route), buckets in sorted(self.latency_buckets.items()):
                for bound, count in zip(LATENCY_BUCKETS, buckets):
                    lines.append(f"moodmusic_http_request_seconds_bucket{_labels(method=method, route=route, le=f'{bound:g}')} {count}")
                total = self.latency_count[(method, route)]
                lines.append(f"moodmusic_http_request_seconds_bucket{_labels(method=method, route=route, le='+Inf')} {total}")
                lines.append(f"moodmusic_http_request_seconds_sum{_labels(method=method, route=route)} {self.latency_sum[(method, route)]:.6f}")
                lines.append(f"moodmusic_http_request_seconds_count{_labels(method=method, route=route)} {total}")
            lines += ["# HELP moodmusic_store_lookups_total Clip store lookups by result.", "# TYPE moodmusic_store_lookups_total counter"]
            for result in ("hit", "miss"):
                lines.append(f"moodmusic_store_lookups_total{_labels(result=result)} {self.store[result]}")
        for name, (help_text, read) in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {float(read()):g}"]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): times every HTTP request and records its status by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before answering, the server answers 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.observe(scope["method"], route_label(scope), status, time.perf_counter() - started)


def route_label(scope: Scope) -> str:
    """The matched route's template; for a request refused before routing (413), its path if a route has
    exactly that path; anything else is "unmatched"."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", "unmatched")
    app = scope.get("app")
    fixed = {getattr(r, "path", "") for r in getattr(app, "routes", ()) if "{" not in getattr(r, "path", "{")}
    return scope["path"] if scope["path"] in fixed else "unmatched"
