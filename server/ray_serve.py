"""`moodmusic serve --ray`: the same FastAPI app and API on Ray Serve, the stages as deployments that scale on their own.

    moodmusic serve --ray --composers 2 --store postgresql://127.0.0.1:54329/moodmusic
    serve run moodmusic.server.ray_serve:app_builder composers=2 store=postgresql://...   # Ray's own CLI, same app

Three deployments (docs/scaling.md):

- ``Composer`` (the whole chain; its cost is the generator and vocoder). ``composers`` replicas, one CPU and one
  request each; with ``max_composers`` Ray Serve autoscales between the two on the requests waiting per replica. A
  clip is verified and narrated where it was made: its audio is there, and a hop to another replica for 40 ms of
  classifier bought nothing when measured (docs/notes/2026-12-07-ray-overhead.md).
- ``Listener`` (classifier + narrator: cheap, no CPU reserved). Analyses uploads (``POST /v1/analyze``); analyses
  arriving within 10 ms of each other are taken as one batch (``@serve.batch``).
- ``Ingress`` (the FastAPI app of `moodmusic.server.app`, unchanged: validation, API keys, rate and job limits, the
  worker pool's 503/429/504, the store, /metrics). Its pipeline is a `RemotePipeline`, which sends each stage's work to
  the deployments above; everything else is the single-process server's code. Live streams (WS /v1/stream) and
  /v1/evaluate run in the ingress replica that took them, on stages it loads the first time one asks (a stream's
  generator state lives beside its socket).

Replicas share nothing but the clip store: give them a PostgreSQL URL as ``--store`` (server/pgstore.py), so a clip made
through one replica is served by every other. A Composer replica that dies mid-request is retried on another: the clip
is a function of its request (mood, seconds, seed), so the retry makes the same clip and nothing accepted is lost.

The single-machine `moodmusic serve` never imports this module, nor Ray.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray import serve

from moodmusic.cluster import LocalStages
from moodmusic.mel import SAMPLE_RATE
from moodmusic.pipeline import Clip, Pipeline, load_pipeline
from moodmusic.server.settings import Settings

log = logging.getLogger("moodmusic.server.ray")
APP_NAME = "moodmusic"
RETRIES = 3  # a call whose replica died is sent again, to another replica, this many times in all


def _one_thread() -> None:
    """A replica computes on one core: Ray gives it one CPU, and torch's own thread pool would spin against the others."""
    import torch

    torch.set_num_threads(1)


QUIET = {"enable_access_log": False}  # a log line per call in every replica costs CPU the clips need (docs/notes/2026-12-07-ray-overhead.md)


@serve.deployment(ray_actor_options={"num_cpus": 1}, max_ongoing_requests=1, health_check_period_s=2, health_check_timeout_s=10,
                  logging_config=QUIET)  # fmt: skip
class Composer:
    """The whole chain in one replica: `compose` and `stinger` make, verify and narrate a clip. One request at a time:
    a clip keeps one core busy."""

    def __init__(self, settings: Settings):
        _one_thread()
        self.pipeline = load_pipeline(settings.checkpoints, vocoder=settings.vocoder, candidates=settings.candidates)
        if settings.warmup:  # pay the first call's lazy initialisation here, not in a user's request
            self.pipeline.compose("calm", 1.0, seed=0, verify=False, narrate=False)

    def versions(self) -> dict[str, str]:
        return self.pipeline.versions

    def compose(self, mood, seconds: float, seed: int, options: dict[str, Any]) -> Clip:
        return self.pipeline.compose(mood, seconds, seed, **options)

    def stinger(self, event: str, mood, seconds: float, seed: int, options: dict[str, Any]) -> Clip:
        return self.pipeline.stinger(event, mood, seconds, seed, **options)


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=16, logging_config=QUIET)  # cheap: the CPUs are the Composers'
class Listener:
    """The classifier and the narrator: `analyze` hears a user's audio, analyses that arrive within 10 ms of each other
    taken as one batch."""

    def __init__(self, settings: Settings):
        from moodmusic import classifier
        from moodmusic.server.services import configured_narrator

        _one_thread()
        root = Path(settings.checkpoints) if settings.checkpoints else None
        narrator = configured_narrator(settings)
        if narrator is None:
            from moodmusic.narrator import default_narrator

            narrator = default_narrator()
        # A chain without generator and vocoder: only `analyze` is asked of it.
        self.pipeline = Pipeline(None, None, classifier.load(root / "classifier" if root else None), narrator)
        if settings.warmup:
            self.pipeline.analyze(np.zeros(SAMPLE_RATE, dtype=np.float32), narrate=True)

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    async def analyze(self, requests: list[tuple[Any, int, bool]]) -> list[tuple]:
        # One thread call for the batch: the event loop stays free to take the next requests meanwhile.
        return await asyncio.to_thread(lambda: [self.pipeline.analyze(audio, seed=seed, narrate=narrate) for audio, seed, narrate in requests])


class RemotePipeline(LocalStages):
    """What the server's routes ask of a `moodmusic.pipeline.Pipeline`, done by the deployments: `compose` and
    `stinger` on a Composer replica, `analyze` on the Listener. Blocking calls (the
    server's worker pool runs them in its threads). Streams and evaluations need the stages in this process
    (`generator`, `vocoder`, `classifier`, `narrator`): loaded the first time one is asked for."""

    def __init__(self, composer, listener, settings: Settings):
        self.composer, self.listener, self.settings = composer, listener, settings
        self._versions: dict[str, str] | None = None

    @property
    def versions(self) -> dict[str, str]:
        if self._versions is None:
            self._versions = self._call(self.composer.versions)
        return self._versions

    @staticmethod
    def _call(method, *args, **kwargs):
        """The method's result; when the replica that took the call died, the call again (another replica takes it)."""
        for attempt in range(1, RETRIES + 1):
            try:
                return method.remote(*args, **kwargs).result()
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as error:
                if attempt == RETRIES:
                    raise
                log.warning("a replica died during %s (%s); sending it again", getattr(method, "_method_name", "a call"), type(error).__name__)
                time.sleep(0.5 * attempt)

    def compose(self, mood, seconds: float, seed: int = 0, **options) -> Clip:
        return self._call(self.composer.compose, mood, seconds, seed, options)

    def stinger(self, event: str, mood, seconds: float = 2.0, seed: int = 0, **options) -> Clip:
        return self._call(self.composer.stinger, event, mood, seconds, seed, options)

    def analyze(self, audio, seed: int = 0, narrate: bool = True):
        return self._call(self.listener.analyze, (audio, seed, narrate))

    def load_local(self) -> Pipeline:
        from moodmusic.server.services import configured_narrator

        settings = self.settings
        return load_pipeline(settings.checkpoints, vocoder=settings.vocoder, narrator=configured_narrator(settings), candidates=settings.candidates)

    def map(self, fn, items):
        """A long job's work (POST /v1/evaluate), in this replica: the route bounds it to what fits its deadline."""
        return self.local().map(fn, items)


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256, logging_config=QUIET)
@serve.ingress()
class Ingress:
    """The FastAPI app of `moodmusic.server.app` with a `RemotePipeline`; every response says which replica
    answered it (header X-Moodmusic-Replica)."""

    def __init__(self, settings: Settings, composer, listener):
        self.settings = settings
        self.pipeline = RemotePipeline(composer, listener, settings)
        self.replica = serve.get_replica_context().replica_id.unique_id

    def __serve_build_asgi_app__(self):
        from moodmusic.server.app import create_app

        app = create_app(self.settings, pipeline=self.pipeline)

        @app.middleware("http")
        async def which_replica(request, call_next):
            response = await call_next(request)
            response.headers["X-Moodmusic-Replica"] = self.replica
            return response

        return app


def build(settings: Settings, composers: int = 2, max_composers: int | None = None, ingress_replicas: int = 1):
    """The application: `serve.run(build(settings))`. With `max_composers`, Composer replicas autoscale from
    `composers` to it, on one request running (and none waiting) per replica."""
    composer_options: dict[str, Any] = {"num_replicas": composers}
    if max_composers is not None and max_composers > composers:
        composer_options = {"autoscaling_config": {"min_replicas": composers, "max_replicas": max_composers,
                                                   "target_ongoing_requests": 1, "upscale_delay_s": 5, "downscale_delay_s": 60}}  # fmt: skip
    # The ingress's own pool runs one blocking remote call per worker thread: as many as there are Composers to
    # keep busy (at the most), so its queue, not Ray's, is where requests wait and where overload answers 503.
    ingress = settings.replace(workers=max(max_composers or composers, settings.workers), warmup=False)  # the replicas warm up
    return Ingress.options(num_replicas=ingress_replicas).bind(
        ingress, Composer.options(**composer_options).bind(settings), Listener.bind(settings)
    )


def app_builder(args: dict[str, str]):
    """For Ray's own CLI: `serve run moodmusic.server.ray_serve:app_builder composers=2 store=postgresql://...`;
    every other setting from the MOODMUSIC_* variables."""
    settings = Settings.from_env()
    if "store" in args:
        settings = settings.replace(store_dir=args["store"])
    return build(settings, int(args.get("composers", 2)), int(args["max_composers"]) if "max_composers" in args else None,
                 int(args.get("ingress_replicas", 1)))  # fmt: skip


def start(settings: Settings, composers: int = 2, max_composers: int | None = None, ingress_replicas: int = 1,
          address: str | None = None, cpus: int | None = None) -> None:  # fmt: skip
    """Join the Ray cluster at `address` (default: start one on this machine with `cpus` CPUs), then deploy the app
    on settings.host:settings.port and wait until every replica is up."""
    if not ray.is_initialized():
        # Secrets stay out of Ray's job config: the settings travel to the replicas as deployment arguments.
        # The replicas' logs stay in Ray's session folder (/tmp/ray/session_latest/logs), not streamed to this process.
        ray.init(address=address, num_cpus=None if address else cpus, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})  # fmt: skip
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(build(settings, composers, max_composers, ingress_replicas), name=APP_NAME, route_prefix="/")


def stop() -> None:
    serve.delete(APP_NAME)
    serve.shutdown()
    ray.shutdown()


def serve_forever(settings: Settings, composers: int, max_composers: int | None, ingress_replicas: int, address: str | None) -> int:
    """`moodmusic serve --ray`: deploy, then hold until SIGTERM or Ctrl-C, then stop the replicas (each finishes the
    requests it has) and the local cluster."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    start(settings, composers, max_composers, ingress_replicas, address, cpus=os.cpu_count())
    log.info("moodmusic on Ray Serve at http://%s:%d (%d composer replicas)", settings.host, settings.port, composers)
    print(f"moodmusic on Ray Serve: http://{settings.host}:{settings.port}", flush=True)
    done.wait()
    stop()
    return 0
