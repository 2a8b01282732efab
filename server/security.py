"""Who may call /v1, and how often: optional bearer API keys and a per-key token bucket.

Without configured keys the API is open and the rate limit (when set) applies per client address.
"""

from __future__ import annotations

import collections
import hmac
import logging
import math
import re
import threading
import time

from fastapi import HTTPException


class TokenBucket:
    """`rate` tokens per second up to `burst`; each request takes one."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """A token bucket per API key (or client address): `check` raises 429 with Retry-After when one has no token left.

    >>> limiter = RateLimiter(per_minute=2, burst=2)
    >>> limiter.check("key-a"), limiter.check("key-a")      # the burst: two at once
    (None, None)
    >>> try:
    ...     limiter.check("key-a")
    ... except HTTPException as refused:
    ...     print(refused.status_code, refused.detail)
    429 rate limit of 2 requests per minute exceeded; retry in ... s
    >>> limiter.check("key-b")                              # another key has its own bucket
    """

    MAX_CLIENTS = 10_000  # buckets kept; the least recently seen client is forgotten first (it had a full bucket soon anyway)

    def __init__(self, per_minute: float, burst: int):
        self.rate = per_minute / 60.0
        self.burst = burst
        self._buckets: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def check(self, identity: str) -> None:
        """Raise 429 with Retry-After when `identity` has no token left."""
        if not self.enabled:
            return
        with self._lock:
            bucket = self._buckets.pop(identity, None) or TokenBucket(self.rate, self.burst)
            self._buckets[identity] = bucket
            while len(self._buckets) > self.MAX_CLIENTS:
                self._buckets.popitem(last=False)
            wait = bucket.take()
        if wait > 0:
            raise HTTPException(
                status_code=429,
                detail=f"rate limit of {self.rate * 60:g} requests per minute exceeded; retry in {math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait))},
            )


class StreamLimiter:
    """How many streams may run at once (each costs a share of the CPU for as long as it lasts)."""

    def __init__(self, max_streams: int):
        self.max_streams, self.active = max_streams, 0

    def try_acquire(self) -> bool:
        if self.active >= self.max_streams:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1


def check_access(authorization: str | None, api_keys: tuple[str, ...], limiter: RateLimiter, address: str) -> str | None:
    """Authenticate, then take a token from the key's bucket (or the address's, with no keys configured). A
    failed authentication takes one from the address's bucket first, so guessing keys meets the rate limit
    (429) like any other request."""
    try:
        key = authenticate(authorization, api_keys)
    except HTTPException:
        limiter.check(address)
        raise
    limiter.check(key or address)
    return key


SECRET_QUERY = re.compile(r"((?:^|[?&;])(?:token|api_key|key)=)[^&;\s\"']*", re.IGNORECASE)


class RedactSecrets(logging.Filter):
    """Hides the value of a ?token= (the WebSocket's key, which browsers can only send in the URL) in log
    records, uvicorn's access and connection lines among them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(SECRET_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = SECRET_QUERY.sub(r"\1[redacted]", record.msg)
        return True


def install_log_redaction(names: tuple[str, ...] = ("uvicorn.access", "uvicorn.error", "uvicorn")) -> None:
    """Add `RedactSecrets` to these loggers and their handlers, once."""
    for name in names:
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, RedactSecrets) for f in target.filters):
                target.addFilter(RedactSecrets())


def authenticate(authorization: str | None, api_keys: tuple[str, ...]) -> str | None:
    """The key a request presents, checked against the configured ones (None when no keys are configured)."""
    if not api_keys:
        return None
    scheme, _, token = (authorization or "").partition(" ")
    # compare_digest against every key: the time taken does not tell which prefix matched
    if scheme.lower() == "bearer" and token and any(hmac.compare_digest(token.encode(), key.encode()) for key in api_keys):
        return token
    raise HTTPException(
        status_code=401,
        detail="missing or invalid API key: send the header 'Authorization: Bearer <key>'",
        headers={"WWW-Authenticate": "Bearer"},
    )
