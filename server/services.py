"""What the routes share for the life of the server: settings, the pipeline, the pool, the store, metrics.

Built once at startup (`start`) and handed to routes by dependency injection (`get_services`), so a
test can build an app around any pipeline, and a later WebSocket route (/v1/stream) gets the same
pipeline and pool without globals.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

import torch
from starlette.requests import HTTPConnection

from moodmusic.pipeline import Pipeline, load_pipeline
from moodmusic.server.metrics import Metrics
from moodmusic.server.security import RateLimiter, StreamLimiter
from moodmusic.server.settings import Settings
from moodmusic.server.store import ClipStorage
from moodmusic.server.stores import open_store
from moodmusic.server.workers import WorkerPool

log = logging.getLogger("moodmusic.server")


@dataclass
class Services:
    """Everything the routes share for the life of the server, built by `start` and closed at shutdown."""

    settings: Settings
    pipeline: Pipeline
    pool: WorkerPool
    store: ClipStorage
    metrics: Metrics
    limiter: RateLimiter
    streams: StreamLimiter

    def close(self) -> None:
        """Graceful: the pool finishes every accepted job (their results are stored) before the store closes."""
        self.pool.close(timeout=self.settings.deadline_s)
        self.store.close()


def configured_narrator(settings: Settings):
    """The narrator the settings name, or None to let the pipeline read the environment (narrator/)."""
    if settings.narrator is None:
        return None
    from moodmusic import narrator
    return narrator.from_config(dataclasses.replace(narrator.config_from_env(), kind=settings.narrator))


def start(settings: Settings, metrics: Metrics, pipeline: Pipeline | None = None) -> Services:
    """Load the models (unless given), warm them up, open the store and start the pool. Blocking."""
    # Each worker runs torch ops with its own intra-op threads; more threads than cores in all makes
    # every request slower (they spin against each other), so the cores are divided among the workers.
    threads = settings.torch_threads or max(1, (os.cpu_count() or 1) // settings.workers)
    torch.set_num_threads(threads)
    log.info("%d workers x %d torch threads", settings.workers, threads)
    if pipeline is None:
        log.info("loading models from %s", settings.checkpoints or "the shipped checkpoints")
        pipeline = load_pipeline(settings.checkpoints, vocoder=settings.vocoder, narrator=configured_narrator(settings), candidates=settings.candidates)
    if settings.warmup:
        # The first call through torch and the classifier's feature code is several times slower than
        # the next; pay it here, not in the first user's request.
        pipeline.compose("calm", 1.0, seed=0, verify=True, narrate=True)
    store = open_store(settings.store_dir, settings.store_cap_bytes)  # a folder, or a PostgreSQL URL (server/stores.py)
    pool = WorkerPool(settings.workers, settings.queue_size, per_client=settings.jobs_per_client)
    metrics.gauge("moodmusic_pool_queued", "inference jobs waiting for a worker", lambda: pool.queued)
    metrics.gauge("moodmusic_pool_running", "inference jobs running", lambda: pool.running)
    metrics.gauge("moodmusic_pool_workers", "inference worker threads", lambda: pool.workers)
    metrics.gauge("moodmusic_store_clips", "clips in the store", lambda: store.stats()[0])
    metrics.gauge("moodmusic_store_bytes", "bytes the store's clips take", lambda: store.stats()[1])
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_burst)
    log.info("ready: %s", pipeline.versions)
    streams = StreamLimiter(settings.max_streams)
    metrics.gauge("moodmusic_streams_active", "WebSocket streams running", lambda: streams.active)
    return Services(settings, pipeline, pool, store, metrics, limiter, streams)


def get_services(connection: HTTPConnection) -> Services:
    """The dependency for routes: HTTPConnection, so HTTP and WebSocket routes (/v1/stream) both use it."""
    return connection.app.state.services
