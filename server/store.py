"""The clip store: each clip's audio (in the format asked for), its mel and its metadata, found again by id or by
request key. The routes see only the interface, `ClipStorage`; `open_store` (server/stores.py) picks a backend from the `--store` value:

- a folder (the default, `data/store`; `file://` in front is allowed): `LocalClipStore`, files in the folder indexed
  in SQLite, for one server process;
- a `postgresql://` (or `postgres://`) URL: `PostgresClipStore` (server/pgstore.py), one table that several server
  processes (replicas, on one machine or several) share.

What every backend keeps:

- A request key (a hash of the model versions, the mood or trajectory, the duration, the seed, loop and format)
  finds a clip made before, so an identical request is answered from the store, also after a restart.
- Two identical requests that race store one clip: the first stored wins and both callers get its id, unless the
  writer asks to `replace` it (the stored one lacks something asked for); a replacement keeps the id it is given,
  so the URLs handed out before stay valid.
- Total size (audio, mel, and the mel image once drawn) is capped; the least recently used clips are evicted
  first, never the clip just written.
- Clip ids are made here (random hex) and every id from outside must match `CLIP_ID` (else `InvalidClipId`), so no
  id can name anything outside the store.

The local store's own rules:

- Files are written atomically (a temporary file, then a rename) before their index row is committed,
  and a row is deleted before its files: a crash leaves at worst an orphan file, which opening removes.
- The store owns only the folder it made (marked by `.moodmusic-store`): it refuses a non-empty folder
  without that mark, and in its `clips/` removes only files named as it names them.
"""

from __future__ import annotations

import abc
import hashlib
import io
import json
import os
import re
import secrets
import sqlite3
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CLIP_ID = re.compile(r"^[0-9a-f]{32}$")
INDEX_FILE = "index.sqlite"
MARKER_FILE = ".moodmusic-store"  # written into a folder the store creates (or finds empty): the store owns that folder
STORE_FILE = re.compile(r"^[0-9a-f]{32}\.(audio|mel\.npy|mel\.png)(\.tmp)?$")  # the only files the store writes in clips/
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreFolderError(ValueError):
    """The store folder holds files the store did not write: it refuses to use (and clean) it."""


class InvalidClipId(ValueError):
    """An id that is not one this store could have made."""


class StoreUnavailable(RuntimeError):
    """A store on another machine (a database) cannot be reached; the server answers 503 meanwhile."""


# --- shared by every backend ----------------------------------------------------------------------
def request_key(**parts: Any) -> str:
    """A stable hash of what determines a clip (JSON with sorted keys, so dict order does not matter)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_id(clip_id: str) -> str:
    if not isinstance(clip_id, str) or not CLIP_ID.fullmatch(clip_id):
        raise InvalidClipId(f"invalid clip id {clip_id!r}: a clip id is 32 lowercase hex characters")
    return clip_id


def mel_bytes(mel: np.ndarray) -> bytes:
    """A mel as the store keeps it: `np.save` of half precision floats (the image needs no more)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(mel, dtype=np.float16))
    return buffer.getvalue()


def mel_from_bytes(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data))


def meta_text(meta: dict[str, Any]) -> str:
    """Metadata as the stores keep it: JSON text (both backends store the same text, so both read back the same)."""
    return json.dumps(meta)


def meta_from_text(text: str) -> dict[str, Any]:
    return json.loads(text)


@dataclass
class StoredClip:
    """One clip in a store: its id and its metadata (the response body the routes made for it)."""

    id: str
    meta: dict[str, Any]


class ClipStorage(abc.ABC):
    """What the routes need from a clip store; every backend keeps the rules in the module docstring.

    Every method is safe to call from several threads at once. Reads of a clip that is not (or no longer)
    stored: `get` and `find` answer None, `png` None, `audio` and `mel` raise KeyError (a clip may be evicted
    between `get` and the read). Every method taking an id raises `InvalidClipId` for a malformed one.
    """

    cap_bytes: int  # the total size the store evicts down to

    @staticmethod
    def new_id() -> str:
        """A fresh clip id (32 random hex characters)."""
        return secrets.token_hex(16)

    @abc.abstractmethod
    def get(self, clip_id: str) -> StoredClip | None:
        """The clip with this id (its last access refreshed, for LRU eviction), or None."""

    @abc.abstractmethod
    def find(self, key: str) -> StoredClip | None:
        """The clip stored under this request key (its last access refreshed), or None."""

    @abc.abstractmethod
    def put(self, clip_id: str, key: str, audio: bytes, mel: np.ndarray, meta: dict[str, Any], replace: bool = False) -> StoredClip:
        """Store a clip under `key` and evict down to the cap (never this clip); returns what the store now holds
        for `key`: this clip, or, when another is already stored under `key` and not `replace`, that one."""

    @abc.abstractmethod
    def read_part(self, clip_id: str, part: str) -> bytes | None:
        """One stored part of the clip ("audio", "mel" or "png") as bytes; None for a png not drawn yet (or KeyError).
        KeyError when the clip is not stored."""

    def audio(self, clip_id: str) -> bytes:
        """The clip's audio file, as it was stored. KeyError when the clip is not stored."""
        return self.read_part(clip_id, "audio")

    def mel(self, clip_id: str) -> np.ndarray:
        """The clip's log-mel (float16). KeyError when the clip is not stored."""
        return mel_from_bytes(self.read_part(clip_id, "mel"))

    def png(self, clip_id: str) -> bytes | None:
        """The clip's mel image, once `add_png` has stored one; else None."""
        try:
            return self.read_part(clip_id, "png")
        except KeyError:
            return None

    @abc.abstractmethod
    def add_png(self, clip_id: str, png: bytes) -> None:
        """Keep a rendered mel image with the clip (it counts towards the cap). KeyError when the clip is not stored."""

    @abc.abstractmethod
    def stats(self) -> tuple[int, int]:
        """(number of clips, bytes they take)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's files or connection; the object is not used after."""


# --- choosing a backend ------------------------------------------------------------------------------
def is_postgres_url(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def local_folder(location: str) -> Path | None:
    """The folder a `--store` value names (a path, or `file://` and a path), or None for a database URL."""
    if is_postgres_url(location):
        return None
    if location.startswith("file://"):
        location = urllib.parse.unquote(location.removeprefix("file://"))
    return Path(location)


# --- the local backend: files and a SQLite index ---------------------------------------------------
SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    id TEXT PRIMARY KEY,
    key TEXT UNIQUE NOT NULL,
    created REAL NOT NULL,
    last_access REAL NOT NULL,
    size INTEGER NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS clips_lru ON clips (last_access);
"""


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class LocalClipStore(ClipStorage):
    """The embedded store for one server process: files under `root/clips/`, indexed in `root/index.sqlite`.

    Thread-safe: one SQLite connection behind a lock (each operation is short; files are written before it is taken).
    """

    def __init__(self, root: str | os.PathLike, cap_bytes: int):
        self.root = Path(root)
        self.claim(self.root)
        self.clips_dir = self.root / "clips"
        self.clips_dir.mkdir(parents=True, exist_ok=True)
        self.cap_bytes = int(cap_bytes)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.root / INDEX_FILE, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._reconcile()

    @staticmethod
    def claim(root: Path) -> None:
        """Use `root` only if the store made it: it is new or empty, or holds the store's marker (or the index
        of a store made before the marker existed). Any other folder is refused, never cleaned."""
        if root.exists() and not root.is_dir():
            raise StoreFolderError(f"the clip store {root} is a file; point --store (MOODMUSIC_STORE) at a folder")
        if (root / MARKER_FILE).exists():
            return
        if root.exists() and any(root.iterdir()) and not (root / INDEX_FILE).exists():
            raise StoreFolderError(
                f"{root} is not empty and is not a moodmusic clip store (no {MARKER_FILE} in it); the store deletes files it does "
                "not know there, so it will not use this folder: point --store (MOODMUSIC_STORE) at a new or empty folder"
            )
        root.mkdir(parents=True, exist_ok=True)
        (root / MARKER_FILE).write_text("a moodmusic clip store: the server owns the files in clips/ and the index\n")

    def __repr__(self) -> str:
        return f"LocalClipStore({str(self.root)!r}, cap_bytes={self.cap_bytes})"

    # --- paths ----------------------------------------------------------------------------------
    def _files(self, clip_id: str) -> dict[str, Path]:
        check_id(clip_id)
        base = self.clips_dir / clip_id
        return {"audio": base.with_suffix(".audio"), "mel": base.with_suffix(".mel.npy"), "png": base.with_suffix(".mel.png")}

    def _reconcile(self) -> None:
        """After a crash: drop rows whose audio is gone, and files (or temporaries) no row names."""
        with self._lock:
            ids = {row[0] for row in self._db.execute("SELECT id FROM clips")}
            for clip_id in list(ids):
                files = self._files(clip_id)
                if not (files["audio"].exists() and files["mel"].exists()):
                    self._db.execute("DELETE FROM clips WHERE id = ?", (clip_id,))
                    ids.discard(clip_id)
            for path in self.clips_dir.iterdir():
                if not (path.is_file() and STORE_FILE.match(path.name)):
                    continue  # not a file the store writes: left alone
                if path.name.split(".")[0] not in ids or path.name.endswith(".tmp"):
                    path.unlink(missing_ok=True)

    # --- reads ----------------------------------------------------------------------------------
    def get(self, clip_id: str) -> StoredClip | None:
        check_id(clip_id)
        with self._lock:
            row = self._db.execute("SELECT meta FROM clips WHERE id = ?", (clip_id,)).fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE clips SET last_access = ? WHERE id = ?", (time.time(), clip_id))
        return StoredClip(clip_id, meta_from_text(row[0]))

    def find(self, key: str) -> StoredClip | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM clips WHERE key = ?", (key,)).fetchone()
        return self.get(row[0]) if row else None

    def read_part(self, clip_id: str, part: str) -> bytes:
        try:
            return self._files(clip_id)[part].read_bytes()  # files are replaced whole (a rename), never seen half written
        except FileNotFoundError:
            raise KeyError(clip_id) from None

    def stats(self) -> tuple[int, int]:
        with self._lock:
            count, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM clips").fetchone()
        return int(count), int(size)

    # --- writes ---------------------------------------------------------------------------------
    def put(self, clip_id: str, key: str, audio: bytes, mel: np.ndarray, meta: dict[str, Any], replace: bool = False) -> StoredClip:
        files = self._files(clip_id)
        mel_data = mel_bytes(mel)
        _atomic_write(files["audio"], audio)
        _atomic_write(files["mel"], mel_data)
        size = len(audio) + len(mel_data)
        now = time.time()
        with self._lock:
            old = self._db.execute("SELECT id, meta FROM clips WHERE key = ?", (key,)).fetchone()
            if old and not replace:
                if old[0] != clip_id:
                    self._unlink(clip_id)
                self._db.execute("UPDATE clips SET last_access = ? WHERE id = ?", (now, old[0]))
                return StoredClip(old[0], meta_from_text(old[1]))
            self._db.execute("BEGIN")
            if old:
                self._db.execute("DELETE FROM clips WHERE id = ?", (old[0],))
            self._db.execute(
                "INSERT INTO clips (id, key, created, last_access, size, meta) VALUES (?, ?, ?, ?, ?, ?)",
                (clip_id, key, now, now, size, meta_text(meta)),
            )
            self._db.execute("COMMIT")
            if old and old[0] != clip_id:
                self._unlink(old[0])
            elif old:
                files["png"].unlink(missing_ok=True)  # drawn from the replaced mel, and no longer counted
            self._evict(keep=clip_id)
        return StoredClip(clip_id, meta)

    def add_png(self, clip_id: str, png: bytes) -> None:
        path = self._files(clip_id)["png"]
        with self._lock:
            if self._db.execute("SELECT 1 FROM clips WHERE id = ?", (clip_id,)).fetchone() is None:
                raise KeyError(clip_id)
            replaced = path.stat().st_size if path.exists() else 0  # two requests may both have drawn it
            _atomic_write(path, png)
            self._db.execute("UPDATE clips SET size = size + ? WHERE id = ?", (len(png) - replaced, clip_id))
            self._evict(keep=clip_id)

    def _unlink(self, clip_id: str) -> None:
        for path in self._files(clip_id).values():
            path.unlink(missing_ok=True)

    def _evict(self, keep: str) -> None:
        """Delete least recently used clips until the total fits the cap (never `keep`, the one just written)."""
        (total,) = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM clips").fetchone()
        while total > self.cap_bytes:
            row = self._db.execute(
                "SELECT id, size FROM clips WHERE id != ? ORDER BY last_access ASC LIMIT 1", (keep,)
            ).fetchone()
            if row is None:
                return
            self._db.execute("DELETE FROM clips WHERE id = ?", (row[0],))
            self._unlink(row[0])
            total -= row[1]

    def close(self) -> None:
        with self._lock:
            self._db.close()
