"""The server's configuration: one typed dataclass, read from MOODMUSIC_* variables, then overridden by flags.

    MOODMUSIC_HOST, MOODMUSIC_PORT              where to listen (default 127.0.0.1:8000)
    MOODMUSIC_CHECKPOINTS                        the checkpoints folder (default: the shipped one)
    MOODMUSIC_VOCODER                            'griffinlim', 'griffinlim-sparse' or a HiFi-GAN folder instead of the checkpoints' vocoder
    MOODMUSIC_CANDIDATES                         the generator's critic-guided sampling: candidates per chunk (1: plain,
                                                 cheaper under load; default: the generator's guidance.json)
    MOODMUSIC_NARRATOR                           template | openai | llama-cpp (read by narrator/, see docs/narrator.md)
    MOODMUSIC_WORKERS, MOODMUSIC_QUEUE           inference threads, and requests that may wait for one
    MOODMUSIC_JOBS_PER_CLIENT                    jobs one key (or address) may have queued or running (default 8)
    MOODMUSIC_DEADLINE                           seconds a request may take, queue included (default 60)
    MOODMUSIC_UPLOAD_LIMIT_MB                    largest upload to /v1/analyze (default 50)
    MOODMUSIC_ANALYZE_MAX_SECONDS                only the start of longer uploads is analysed (default 300)
    MOODMUSIC_STORE, MOODMUSIC_STORE_CAP_MB      the clip store: a folder (default data/store) or a postgresql:// URL shared by
                                                 replicas (docs/server.md); its size cap (default 1024 MB)
    MOODMUSIC_API_KEYS                           comma-separated bearer tokens; empty: no authentication
    MOODMUSIC_CORS_ORIGINS                       comma-separated origins allowed by CORS; empty: CORS closed
    MOODMUSIC_RATE_LIMIT, MOODMUSIC_RATE_BURST   requests per minute per key (or client address); 0: no limit;
                                                 a failed authentication counts against its client address
    MOODMUSIC_MAX_STREAMS                        WebSocket streams at once (default 4)
    MOODMUSIC_STREAM_PAUSE_TIMEOUT               seconds a stream may stay paused before it is closed (default 300)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

MB = 1024 * 1024


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """The server's configuration: defaults, then the MOODMUSIC_* variables (`from_env`), then the flags (`with_args`).
    Every value is checked when it is made.

    >>> Settings.from_env({"MOODMUSIC_WORKERS": "3"}).workers
    3
    >>> Settings.from_env({"MOODMUSIC_WORKERS": "0"})
    Traceback (most recent call last):
    moodmusic.server.settings.SettingsError: invalid setting(s): workers=0
    """

    host: str = "127.0.0.1"
    port: int = 8000
    checkpoints: str | None = None  # None: the shipped folder (or MOODMUSIC_CHECKPOINTS, read by checkpoints.py)
    vocoder: str | None = None
    candidates: int | None = None  # None: the generator folder's guidance.json
    narrator: str | None = None  # None: whatever narrator/ reads from the environment
    workers: int = 2
    torch_threads: int = 0  # per process; 0: the cores divided among the workers (two workers on two cores: one each)
    queue_size: int = 16
    jobs_per_client: int = 8  # accepted, unfinished jobs per API key (or address): one client cannot fill the queue
    deadline_s: float = 60.0
    upload_limit_bytes: int = 50 * MB
    json_limit_bytes: int = 1 * MB  # every other request body: a clip request is a few hundred bytes
    # An analysis costs what its seconds cost (about 1.5 s and 185 MB for 300 s on one core; 600 s: 2.9 s, 216 MB):
    # the default keeps the worst upload within 2 s of a worker. Raise it to analyse longer pieces whole.
    analyze_max_seconds: float = 300.0
    store_dir: str = field(default="data/store", repr=False)  # may be a database URL with a password in it
    store_cap_bytes: int = 1024 * MB
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    cors_origins: tuple[str, ...] = ()
    rate_limit_per_minute: float = 0.0
    rate_burst: int = 10
    max_streams: int = 4  # WebSocket streams at once (/v1/stream); each keeps a share of the CPU busy
    stream_pause_timeout_s: float = 300.0  # a stream paused longer is closed, so it gives its slot back
    warmup: bool = True  # one short clip at startup, so the first request does not pay for lazy initialisation

    def __post_init__(self) -> None:
        checks = {
            "port": 0 <= self.port <= 65535,
            "workers": self.workers >= 1,
            "candidates": self.candidates is None or self.candidates >= 1,
            "torch_threads": self.torch_threads >= 0,
            "queue_size": self.queue_size >= 0,
            "jobs_per_client": self.jobs_per_client >= 1,
            "deadline_s": self.deadline_s > 0,
            "upload_limit_bytes": self.upload_limit_bytes > 0,
            "json_limit_bytes": self.json_limit_bytes > 0,
            "analyze_max_seconds": self.analyze_max_seconds > 0,
            "store_cap_bytes": self.store_cap_bytes > 0,
            "rate_limit_per_minute": self.rate_limit_per_minute >= 0,
            "rate_burst": self.rate_burst >= 1,
            "max_streams": self.max_streams >= 1,
            "stream_pause_timeout_s": self.stream_pause_timeout_s > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise SettingsError(f"invalid setting(s): {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(f"MOODMUSIC_{name}", "").strip()
            return value or None

        def number(name: str, cast: type = float) -> Any:
            raw = get(name)
            if raw is None:
                return None
            try:
                return cast(raw)
            except ValueError:
                raise SettingsError(f"MOODMUSIC_{name} must be a number, got {raw!r}") from None

        def listing(name: str) -> tuple[str, ...] | None:
            raw = get(name)
            return None if raw is None else tuple(x.strip() for x in raw.split(",") if x.strip())

        def megabytes(name: str) -> int | None:
            value = number(name)
            return None if value is None else int(value * MB)

        values = {
            "host": get("HOST"), "port": number("PORT", int), "checkpoints": get("CHECKPOINTS"),
            "vocoder": get("VOCODER"), "candidates": number("CANDIDATES", int), "narrator": get("NARRATOR"), "workers": number("WORKERS", int),
            "torch_threads": number("TORCH_THREADS", int),
            "queue_size": number("QUEUE", int), "jobs_per_client": number("JOBS_PER_CLIENT", int), "deadline_s": number("DEADLINE"),
            "upload_limit_bytes": megabytes("UPLOAD_LIMIT_MB"), "analyze_max_seconds": number("ANALYZE_MAX_SECONDS"),
            "store_dir": get("STORE"), "store_cap_bytes": megabytes("STORE_CAP_MB"), "api_keys": listing("API_KEYS"),
            "cors_origins": listing("CORS_ORIGINS"), "rate_limit_per_minute": number("RATE_LIMIT"),
            "rate_burst": number("RATE_BURST", int), "max_streams": number("MAX_STREAMS", int), "stream_pause_timeout_s": number("STREAM_PAUSE_TIMEOUT"),
        }  # fmt: skip
        return cls(**{k: v for k, v in values.items() if v is not None})

    def with_args(self, args: argparse.Namespace) -> Settings:
        """Flags win over the environment; a flag left unset keeps the environment's (or default) value."""
        changes = {
            "host": args.host, "port": args.port, "checkpoints": args.checkpoints, "vocoder": args.vocoder, "candidates": args.candidates,
            "narrator": args.narrator, "workers": args.workers, "torch_threads": args.torch_threads,
            "queue_size": args.queue, "jobs_per_client": args.jobs_per_client, "deadline_s": args.deadline,
            "upload_limit_bytes": None if args.upload_limit_mb is None else int(args.upload_limit_mb * MB),
            "analyze_max_seconds": args.analyze_max_seconds,
            "store_dir": args.store, "store_cap_bytes": None if args.store_cap_mb is None else int(args.store_cap_mb * MB),
            "api_keys": tuple(args.api_key) if args.api_key else None,
            "cors_origins": tuple(args.cors_origin) if args.cors_origin else None,
            "rate_limit_per_minute": args.rate_limit, "rate_burst": args.rate_burst, "max_streams": args.max_streams, "stream_pause_timeout_s": args.stream_pause_timeout,
            "warmup": False if args.no_warmup else None,
        }  # fmt: skip
        return self.replace(**{k: v for k, v in changes.items() if v is not None})
