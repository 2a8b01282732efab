"""`moodmusic serve`: the HTTP service on uvicorn.

    moodmusic serve                                   # 127.0.0.1:8000, shipped checkpoints, template narrator
    moodmusic serve --host 0.0.0.0 --port 8080 --workers 2 --queue 16 --api-key "$KEY" --rate-limit 60
    MOODMUSIC_API_KEYS=k1,k2 MOODMUSIC_CORS_ORIGINS=https://game.example moodmusic serve

Every flag has a MOODMUSIC_* variable (see server/settings.py); a flag wins over its variable.
SIGTERM or Ctrl-C stops taking connections, finishes the requests in flight, then exits.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from moodmusic.commandline import candidates_argument

    # Defaults are None: an unset flag leaves the environment's (or the built-in) value.
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; MOODMUSIC_HOST)")
    parser.add_argument("--port", type=int, help="port (default 8000; MOODMUSIC_PORT)")
    parser.add_argument("--checkpoints", help="checkpoints folder (default: the shipped one; MOODMUSIC_CHECKPOINTS)")
    parser.add_argument("--vocoder", help="'griffinlim', 'griffinlim-sparse' or a HiFi-GAN folder instead of the checkpoints' vocoder")
    parser.add_argument("--candidates", type=candidates_argument, help="the generator's critic-guided sampling: candidates per chunk (1: plain sampling, cheaper under load)")
    parser.add_argument("--narrator", help="template | openai | llama-cpp (default template; MOODMUSIC_NARRATOR, MOODMUSIC_LLM_*)")
    parser.add_argument("--workers", type=int, help="inference threads (default 2; MOODMUSIC_WORKERS)")
    parser.add_argument("--torch-threads", type=int, help="torch threads; 0: cores / workers, so workers do not "
                        "oversubscribe the cores (default 0; MOODMUSIC_TORCH_THREADS)")
    parser.add_argument("--queue", type=int, help="requests that may wait for a worker before 503 (default 16; MOODMUSIC_QUEUE)")
    parser.add_argument("--jobs-per-client", type=int, help="jobs one API key (or address) may have queued or running, over it 429 "
                        "(default 8; MOODMUSIC_JOBS_PER_CLIENT)")
    parser.add_argument("--deadline", type=float, help="seconds a request may take, waiting included (default 60; MOODMUSIC_DEADLINE)")
    parser.add_argument("--upload-limit-mb", type=float, help="largest upload to /v1/analyze (default 50; MOODMUSIC_UPLOAD_LIMIT_MB)")
    parser.add_argument("--analyze-max-seconds", type=float, help="only the start of longer uploads is analysed (default 300; MOODMUSIC_ANALYZE_MAX_SECONDS)")
    parser.add_argument("--store", help="clip store: a folder (default data/store) or a postgresql:// URL that several servers share; "
                        "keep its password in PGPASSWORD or ~/.pgpass (MOODMUSIC_STORE)")
    parser.add_argument("--store-cap-mb", type=float, help="clip store size cap, LRU eviction (default 1024; MOODMUSIC_STORE_CAP_MB)")
    parser.add_argument("--api-key", action="append", help="accept this bearer token (repeat for more; MOODMUSIC_API_KEYS=a,b)")
    parser.add_argument("--cors-origin", action="append", help="allow this browser origin (repeat; MOODMUSIC_CORS_ORIGINS)")
    parser.add_argument("--rate-limit", type=float, help="requests per minute per key or address, 0 = none (MOODMUSIC_RATE_LIMIT)")
    parser.add_argument("--rate-burst", type=int, help="requests allowed at once before the rate applies (default 10)")
    parser.add_argument("--max-streams", type=int, help="WebSocket streams at once, over it 1013 (default 4; MOODMUSIC_MAX_STREAMS)")
    parser.add_argument("--stream-pause-timeout", type=float, help="seconds a stream may stay paused before it is closed (default 300; MOODMUSIC_STREAM_PAUSE_TIMEOUT)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the short warm-up clip at startup")
    scale = parser.add_argument_group("scale-out on Ray Serve (docs/scaling.md; needs the 'scale' extra: pip install moodmusic[scale])")
    scale.add_argument("--ray", action="store_true", help="serve on Ray Serve: the stages as deployments, replicas sharing --store")
    scale.add_argument("--ray-address", help="join this Ray cluster (default: start one on this machine)")
    scale.add_argument("--composers", type=int, default=2, help="Composer replicas (generator + vocoder; default 2)")
    scale.add_argument("--max-composers", type=int, help="autoscale Composer replicas up to this many, on requests waiting")
    scale.add_argument("--ingress-replicas", type=int, default=1, help="replicas of the HTTP app (default 1)")


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from moodmusic.server.app import create_app
    from moodmusic.server.settings import Settings, SettingsError

    from moodmusic.server.store import LocalClipStore, StoreFolderError, local_folder

    try:
        settings = Settings.from_env().with_args(args)
        folder = local_folder(settings.store_dir)  # None for a database URL
        if folder is not None:
            LocalClipStore.claim(folder)  # before the models load: a folder the store may not own is refused at once
        if args.ray and (args.composers < 1 or args.ingress_replicas < 1 or (args.max_composers or args.composers) < args.composers):
            raise SettingsError("--composers and --ingress-replicas must be at least 1, and --max-composers at least --composers")
    except (SettingsError, StoreFolderError) as error:
        raise SystemExit(f"moodmusic serve: {error}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.ray:
        from moodmusic.server import ray_serve  # Ray is imported only here: the single-machine server needs none

        return ray_serve.serve_forever(settings, args.composers, args.max_composers, args.ingress_replicas, args.ray_address)
    # One process: the pool is the unit of parallelism (uvicorn workers would each load the models).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                timeout_graceful_shutdown=settings.deadline_s + 5)  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m moodmusic.server.cli ...`: the same as `moodmusic serve ...` (scripts start the server this way)."""
    parser = argparse.ArgumentParser(prog="python -m moodmusic.server.cli", description="the moodmusic HTTP service")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    import sys

    sys.exit(main())
