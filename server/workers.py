"""The bounded inference pool: a fixed number of threads and a bounded queue in front of them.

Inference is CPU-bound and long next to an HTTP request's bookkeeping, so it never runs on the event
loop. Capacity is explicit: when every worker is busy and the queue is full, `submit` refuses at once
(the route answers 503 with Retry-After) instead of letting latency grow without bound. Each job has a
deadline: the caller stops waiting then (a job still queued is cancelled: 503; a job already running
gets 504: a clip finishes and is stored, an evaluation is told to stop, an analysis's result is discarded). `close` stops taking work and
finishes what was accepted: graceful shutdown.

Order: the queue serves the job that would finish first had it started when it was submitted
(submission time + its expected duration), not strictly the oldest. A 60 s analysis (about 0.3 s of
work) thus goes ahead of a 10 s clip (about 0.6 s) queued a moment before it, instead of waiting out
the clip, and no job starves: one submitted earlier by more than the difference of the two expected
durations still goes first. Expected durations are learnt per kind of job and per unit of its size
(seconds of audio asked for, megabytes uploaded) from the last jobs of that kind.

Fairness: each client (API key, or address when no keys are configured) may have at most `per_client`
jobs accepted and unfinished; past it, 429 with Retry-After. A job that outlived its 504 still counts
until its worker lets it go, so a client cannot pile up abandoned work.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import math
import queue
import threading
import time
from typing import Any, Callable


class PoolError(Exception):
    """Base of the pool's refusals; `retry_after` is seconds the client should wait, when retrying can help."""

    status_code = 503

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(PoolError):
    """Every worker is busy and the queue is full, or a job waited in the queue past its deadline (503)."""


class ShuttingDown(PoolError):
    """The pool was closed and takes no new work (503)."""


class DeadlineExceeded(PoolError):
    """A job started but did not finish within its deadline (504); the message says what became of its work."""

    status_code = 504


class TooManyJobs(PoolError):
    """One client (an API key, or an address without keys) already has its share of the pool's jobs."""

    status_code = 429


class WorkerPool:
    """A fixed number of worker threads with a bounded queue in front of them: `submit` a job, or await `run`
    it with a deadline; `close` finishes the accepted jobs and stops. See the module docstring.

    >>> import threading
    >>> pool = WorkerPool(workers=1, queue_size=4, per_client=2)
    >>> pool.submit(lambda: 6 * 7).result(timeout=10)
    42
    >>> hold = threading.Event()                                   # keeps the client's jobs unfinished
    >>> first, second = pool.submit(hold.wait, client="alice"), pool.submit(hold.wait, client="alice")
    >>> pool.jobs_of("alice")
    2
    >>> pool.submit(hold.wait, client="alice")
    Traceback (most recent call last):
    moodmusic.server.workers.TooManyJobs: this client already has 2 jobs queued or running ...
    >>> hold.set()
    >>> first.result(timeout=10), second.result(timeout=10)
    (True, True)
    >>> pool.close(timeout=10)
    >>> pool.accepting
    False
    """

    def __init__(self, workers: int, queue_size: int, name: str = "inference", per_client: int | None = None):
        self.workers = int(workers)
        self.queue_size = int(queue_size)
        # At most this many accepted, unfinished jobs (queued or running, a job past its 504 included) per client,
        # so one client cannot fill the queue for everyone; None: no per-client limit.
        self.per_client = per_client
        self._by_client: collections.Counter[str] = collections.Counter()
        # The bound is `_pending` (checked in submit), not the queue's maxsize: a put must never block the event loop.
        # Items: (expected finish, sequence, fn, future, kind, units); the sequence breaks ties in submission order.
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._sequence = itertools.count()
        self._seconds_per_unit: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()  # the recent durations; separate, as submit() reads them holding _lock
        self._pending = 0  # accepted and not finished: queued + running
        self._running = 0
        self._durations: collections.deque[float] = collections.deque(maxlen=50)
        self._open = True
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(self.workers)]
        for thread in self._threads:
            thread.start()

    # --- state, for /metrics and Retry-After ------------------------------------------------------
    @property
    def running(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return max(0, self._pending - self._running)

    @property
    def accepting(self) -> bool:
        return self._open

    def retry_after(self) -> int:
        """Seconds until a slot likely frees: the mean recent job time times the jobs ahead per worker."""
        with self._stats_lock:  # a worker may be appending: iterating a deque while it changes raises
            mean = sum(self._durations) / len(self._durations) if self._durations else 1.0
        return int(min(60, max(1, math.ceil(mean * (self.queued + 1) / self.workers))))

    def expected_seconds(self, kind: str, units: float) -> float:
        """How long a job of this kind and size is likely to take (recent mean of its kind; else of all jobs)."""
        with self._stats_lock:
            history = self._seconds_per_unit.get(kind)
            if history:
                return sum(history) / len(history) * units
            return sum(self._durations) / len(self._durations) if self._durations else 0.0

    # --- work -----------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            _, _, fn, future, kind, units = self._queue.get()
            if fn is None:  # the shutdown sentinel, ordered after every accepted job
                return
            if future.set_running_or_notify_cancel():
                with self._lock:
                    self._running += 1
                started = time.perf_counter()
                try:
                    future.set_result(fn())
                except BaseException as error:  # handed to the awaiting request, which maps it to a status
                    future.set_exception(error)
                finally:
                    took = time.perf_counter() - started
                    with self._stats_lock:
                        self._durations.append(took)
                        self._seconds_per_unit.setdefault(kind, collections.deque(maxlen=20)).append(took / max(units, 1e-6))
                    with self._lock:
                        self._running -= 1
            with self._lock:
                self._pending -= 1

    def jobs_of(self, client: str) -> int:
        """Accepted, unfinished jobs of this client."""
        return self._by_client.get(client, 0)

    def submit(self, fn: Callable[[], Any], kind: str = "job", units: float = 1.0, client: str | None = None) -> concurrent.futures.Future:
        with self._lock:
            if not self._open:
                raise ShuttingDown("the server is shutting down; retry on another instance", retry_after=5)
            if client is not None and self.per_client is not None and self._by_client[client] >= self.per_client:
                raise TooManyJobs(
                    f"this client already has {self.per_client} jobs queued or running (the limit per API key or address); "
                    "wait for one to finish",
                    retry_after=self.retry_after(),
                )
            if self._pending >= self.workers + self.queue_size:
                raise Overloaded(
                    f"the server is at capacity ({self.workers} running, {self.queue_size} queued); retry later",
                    retry_after=self.retry_after(),
                )
            self._pending += 1
            if client is not None:
                self._by_client[client] += 1
        future: concurrent.futures.Future = concurrent.futures.Future()
        if client is not None:
            future.add_done_callback(lambda _: self._release(client))  # finished, failed, or cancelled while queued
        finish = time.monotonic() + self.expected_seconds(kind, units)
        self._queue.put((finish, next(self._sequence), fn, future, kind, units))
        return future

    def _release(self, client: str) -> None:
        with self._lock:
            self._by_client[client] -= 1
            if self._by_client[client] <= 0:
                del self._by_client[client]

    async def run(self, fn: Callable[[], Any], deadline_s: float, kind: str = "job", units: float = 1.0, stored: bool = False, stop=None,
                  client: str | None = None) -> Any:  # fmt: skip
        """Run `fn` on a worker and await its result for at most `deadline_s` seconds (`kind`, `units`: see the module doc;
        `client`: whose job it is, for the per-client limit).

        Past the deadline the caller gets 504, and the 504 tells the truth about the work: a job whose result is
        `stored` keeps running (an identical request is then answered from the store); a job given a `stop`
        event (threading.Event) is told to stop; any other finishes and its result is discarded."""
        submitted = time.monotonic()
        future = self.submit(fn, kind, units, client)
        try:
            wrapped = asyncio.wrap_future(future)
            return await asyncio.wait_for(asyncio.shield(wrapped), timeout=deadline_s)
        except asyncio.TimeoutError:
            wrapped.add_done_callback(lambda done: done.cancelled() or done.exception())  # nobody awaits it now: no "never retrieved" log
            if future.cancel():  # still queued: it never started, so nothing is wasted; the server was too busy
                raise Overloaded(
                    f"the request waited {time.monotonic() - submitted:.0f} s in the queue, past its deadline of {deadline_s:g} s; retry later",
                    retry_after=self.retry_after(),
                ) from None
            if stored:
                what = "it keeps running, and an identical request later is answered from the store"
            elif stop is not None:
                stop.set()
                what = "its work was stopped; ask for less (a smaller grid, fewer seeds, shorter clips)"
            else:
                what = "its result is discarded; retry when the server is less busy"
            raise DeadlineExceeded(f"the request did not finish within its deadline of {deadline_s:g} s; {what}") from None

    def close(self, timeout: float | None = None) -> None:
        """Refuse new work, let the workers finish every accepted job, then stop them."""
        with self._lock:
            if not self._open:
                return
            self._open = False
        for _ in self._threads:
            self._queue.put((math.inf, next(self._sequence), None, None, "", 0.0))
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
