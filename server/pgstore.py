"""The clip store in PostgreSQL: one table that several server processes share (replicas on one machine or several),
so a clip one replica made is found, served and evicted by every other. `open_store` (server/stores.py) opens it for
a `postgresql://` or `postgres://` URL:

    moodmusic serve --store postgresql://postgres@127.0.0.1:54329/moodmusic

It keeps the rules every store keeps (server/store.py, `ClipStorage`); with several writers at once, this is how:

- One clip is one row of `moodmusic_clips`: its metadata (the same JSON text the local index keeps), its audio, its
  mel (np.save bytes of float16, as the local store writes them) and, once drawn, its mel image.
- Every write (`put`, `add_png`) is one transaction that first takes one advisory lock, `pg_advisory_xact_lock`,
  shared by every replica: writes and the evictions they cause run one at a time, so two replicas never evict
  past each other (and never deadlock on each other's rows).
- The request key is UNIQUE and a clip goes in with one `INSERT ... ON CONFLICT (key)`: when two identical
  requests race, the first row stored stays and both callers get its id; with `replace` the row takes the new
  clip under the id the writer gives.
- `size` is a generated column (audio + mel + image bytes), so the image counts towards the cap without bookkeeping.
- `last_access` is the database's clock, so the order of eviction does not depend on the replicas' clocks.

Within one process: one connection behind a lock (as the local store's SQLite index), opened again once when it
was lost. The URL's password never goes into a message or a repr; better still, keep it out of the URL: libpq
reads PGPASSWORD and ~/.pgpass.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from typing import Any, Callable, TypeVar

import numpy as np
import psycopg

from moodmusic.server.store import (ClipStorage, StoredClip, StoreUnavailable, check_id, mel_bytes, mel_from_bytes, meta_from_text,
                                    meta_text)  # fmt: skip

log = logging.getLogger("moodmusic.server")
T = TypeVar("T")

TABLE = "moodmusic_clips"
PARTS = {"audio": "audio", "mel": "mel", "png": "png"}  # a clip's parts and their columns (no other name reaches the SQL)
CONNECT_TIMEOUT_S = 10  # unless the URL sets connect_timeout: an unreachable database fails within it, it does not hang
WRITE_LOCK = 0x6D6F6F64636C6970  # "moodclip" in ASCII: the advisory lock every replica's writes take
SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        id text PRIMARY KEY,
        key text UNIQUE NOT NULL,
        created timestamptz NOT NULL,
        last_access timestamptz NOT NULL,
        meta text NOT NULL,
        audio bytea NOT NULL,
        mel bytea NOT NULL,
        png bytea,
        size bigint GENERATED ALWAYS AS (octet_length(audio) + octet_length(mel) + coalesce(octet_length(png), 0)) STORED
    )""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_lru ON {TABLE} (last_access)",
]
# One statement stores a clip or, when its key is taken, settles the race: the stored row is only touched and
# returned (the first one wins), or, to replace it, it takes the new clip.
INSERT = f"""
    INSERT INTO {TABLE} (id, key, created, last_access, meta, audio, mel)
    VALUES (%(id)s, %(key)s, clock_timestamp(), clock_timestamp(), %(meta)s, %(audio)s, %(mel)s)
    ON CONFLICT (key) DO UPDATE SET {{on_conflict}}
    RETURNING id, meta
"""
KEEP_FIRST = INSERT.format(on_conflict="last_access = excluded.last_access")
REPLACE = INSERT.format(on_conflict="id = excluded.id, created = excluded.created, last_access = excluded.last_access, "
                        "meta = excluded.meta, audio = excluded.audio, mel = excluded.mel, png = NULL")  # fmt: skip


def redact_url(url: str) -> str:
    """The URL with its password (in the user part, or a `password=` parameter) replaced by ***."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hosts = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hosts}"
    query = [(name, "***" if name == "password" else value) for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=urllib.parse.urlencode(query, safe="*")))


def url_secrets(url: str) -> list[str]:
    """The password as the URL spells it and as it decodes, to scrub from any message that might repeat it."""
    parts = urllib.parse.urlsplit(url)
    found = [parts.password or ""] + [value for name, value in urllib.parse.parse_qsl(parts.query) if name == "password"]
    return [secret for password in found if password for secret in {password, urllib.parse.unquote(password)}]


class PostgresClipStore(ClipStorage):
    """The clip store in one PostgreSQL table, shared by every server process given the same URL (module docstring)."""

    def __init__(self, url: str, cap_bytes: int):
        self._url = url  # holds the password, if any: never shown
        self.location = redact_url(url)
        self.cap_bytes = int(cap_bytes)
        self._lock = threading.Lock()
        self._connection: psycopg.Connection | None = None
        self._run(self._create_table)

    def __repr__(self) -> str:
        return f"PostgresClipStore({self.location!r}, cap_bytes={self.cap_bytes})"

    # --- the connection -------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for secret in url_secrets(self._url):
            text = text.replace(secret, "***")
        return text

    def _connect(self) -> psycopg.Connection:
        timeout = {} if "connect_timeout=" in self._url else {"connect_timeout": CONNECT_TIMEOUT_S}  # the URL's own wins
        try:
            return psycopg.connect(self._url, autocommit=True, **timeout)
        except psycopg.Error as error:
            raise StoreUnavailable(f"cannot connect to the clip store at {self.location}: {self._scrub(str(error))}") from None

    def _run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """`work(connection)` under the lock; when the connection turns out to be lost, once more on a new one."""
        with self._lock:
            for attempt in (1, 2):
                if self._connection is None or self._connection.closed:
                    self._connection = self._connect()
                try:
                    return work(self._connection)
                except psycopg.OperationalError as error:
                    if not self._connection.broken:
                        raise  # the database refused this statement; the connection is fine
                    message = self._scrub(str(error).strip())
                    if attempt == 2:
                        raise StoreUnavailable(f"lost the connection to the clip store at {self.location} twice: {message}") from None
                    log.warning("clip store: lost the connection to %s (%s); connecting again", self.location, message)
        raise AssertionError("unreachable")

    @staticmethod
    def _create_table(connection: psycopg.Connection) -> None:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))  # replicas starting at once
            for statement in SCHEMA:
                connection.execute(statement)

    # --- reads ----------------------------------------------------------------------------------
    def get(self, clip_id: str) -> StoredClip | None:
        check_id(clip_id)
        row = self._run(lambda c: c.execute(f"UPDATE {TABLE} SET last_access = clock_timestamp() WHERE id = %s RETURNING id, meta",
                                            (clip_id,)).fetchone())  # fmt: skip
        return StoredClip(row[0], meta_from_text(row[1])) if row else None

    def find(self, key: str) -> StoredClip | None:
        row = self._run(lambda c: c.execute(f"UPDATE {TABLE} SET last_access = clock_timestamp() WHERE key = %s RETURNING id, meta",
                                            (key,)).fetchone())  # fmt: skip
        return StoredClip(row[0], meta_from_text(row[1])) if row else None

    def read_part(self, clip_id: str, part: str) -> bytes | None:
        """One of the clip's byte columns (audio, mel, png: None until drawn); KeyError when the clip is not stored."""
        check_id(clip_id)
        row = self._run(lambda c: c.execute(f"SELECT {PARTS[part]} FROM {TABLE} WHERE id = %s", (clip_id,), binary=True).fetchone())
        if row is None:
            raise KeyError(clip_id)
        return row[0]

    def stats(self) -> tuple[int, int]:
        count, size = self._run(lambda c: c.execute(f"SELECT count(*), coalesce(sum(size), 0) FROM {TABLE}").fetchone())
        return int(count), int(size)

    # --- writes ---------------------------------------------------------------------------------
    def put(self, clip_id: str, key: str, audio: bytes, mel: np.ndarray, meta: dict[str, Any], replace: bool = False) -> StoredClip:
        check_id(clip_id)
        values = {"id": clip_id, "key": key, "meta": meta_text(meta), "audio": audio, "mel": mel_bytes(mel)}

        def write(connection: psycopg.Connection) -> tuple[str, str]:
            with connection.transaction():
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                kept = connection.execute(REPLACE if replace else KEEP_FIRST, values).fetchone()
                self._evict(connection, keep=kept[0])
            return kept

        kept_id, kept_meta = self._run(write)
        return StoredClip(kept_id, meta_from_text(kept_meta))

    def add_png(self, clip_id: str, png: bytes) -> None:
        check_id(clip_id)

        def write(connection: psycopg.Connection) -> None:
            with connection.transaction():
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                if connection.execute(f"UPDATE {TABLE} SET png = %s WHERE id = %s RETURNING id", (png, clip_id)).fetchone() is None:
                    raise KeyError(clip_id)  # evicted meanwhile (the transaction is rolled back, nothing was written)
                self._evict(connection, keep=clip_id)

        self._run(write)

    def _evict(self, connection: psycopg.Connection, keep: str) -> None:
        """Delete least recently used clips until the total fits the cap (never `keep`, the one just written).
        Runs inside a write transaction, under the advisory lock."""
        (total,) = connection.execute(f"SELECT coalesce(sum(size), 0) FROM {TABLE}").fetchone()
        while total > self.cap_bytes:
            row = connection.execute(f"DELETE FROM {TABLE} WHERE id = (SELECT id FROM {TABLE} WHERE id != %s ORDER BY last_access, id LIMIT 1) "
                                     "RETURNING size", (keep,)).fetchone()  # fmt: skip
            if row is None:
                return
            total -= row[0]

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
