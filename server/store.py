"""The clip store: each clip's audio (in the format asked for), its mel and its metadata on disk, indexed in SQLite.

A request key (a hash of the model versions, the mood or trajectory, the duration, the seed, loop and
format) finds a clip made before, so an identical request is answered from disk, also after a restart.

- Files are written atomically (a temporary file, then a rename) before their index row is committed,
  and a row is deleted before its files: a crash leaves at worst an orphan file, which `open` removes.
- Total size is capped; the least recently used clips are evicted first.
- The store owns only the folder it made (marked by `.moodmusic-store`): it refuses a non-empty folder
  without that mark, and in its `clips/` removes only files named as it names them.
- Clip ids are made here (random hex) and every id from outside must match `CLIP_ID`, so no id can
  name a path outside the store.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CLIP_ID = re.compile(r"^[0-9a-f]{32}$")
INDEX_FILE = "index.sqlite"
MARKER_FILE = ".moodmusic-store"  # written into a folder the store creates (or finds empty): the store owns that folder
STORE_FILE = re.compile(r"^[0-9a-f]{32}\.(audio|mel\.npy|mel\.png)(\.tmp)?$")  # the only files the store writes in clips/


class StoreFolderError(ValueError):
    """The store folder holds files the store did not write: it refuses to use (and clean) it."""
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


class InvalidClipId(ValueError):
    """An id that is not one this store could have made."""


def request_key(**parts: Any) -> str:
    """A stable hash of what determines a clip (JSON with sorted keys, so dict order does not matter)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_id(clip_id: str) -> str:
    if not isinstance(clip_id, str) or not CLIP_ID.fullmatch(clip_id):
        raise InvalidClipId(f"invalid clip id {clip_id!r}: a clip id is 32 lowercase hex characters")
    return clip_id


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass
class StoredClip:
    """One clip in the store, as `ClipStore` returns it: its id, its metadata, and the paths of its audio and mel."""

    id: str
    meta: dict[str, Any]
    audio_path: Path
    mel_path: Path


class ClipStore:
    """Thread-safe: one SQLite connection behind a lock (each operation is short)."""

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
    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(16)

    def get(self, clip_id: str) -> StoredClip | None:
        """The clip with this id (its last access refreshed), or None. Raises InvalidClipId for a malformed id."""
        files = self._files(clip_id)
        with self._lock:
            row = self._db.execute("SELECT meta FROM clips WHERE id = ?", (clip_id,)).fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE clips SET last_access = ? WHERE id = ?", (time.time(), clip_id))
        return StoredClip(clip_id, json.loads(row[0]), files["audio"], files["mel"])

    def find(self, key: str) -> StoredClip | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM clips WHERE key = ?", (key,)).fetchone()
        return self.get(row[0]) if row else None

    def stats(self) -> tuple[int, int]:
        """(number of clips, bytes on disk)."""
        with self._lock:
            count, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM clips").fetchone()
        return int(count), int(size)

    # --- writes ---------------------------------------------------------------------------------
    def put(self, clip_id: str, key: str, audio: bytes, mel: np.ndarray, meta: dict[str, Any], replace: bool = False) -> StoredClip:
        """Store a clip and evict down to the cap; returns what the store now holds for `key`.

        When a clip is already stored under `key` (two identical requests raced), that one is kept and
        returned, so both callers share one id, unless `replace` (the stored one lacks something asked
        for); a replacement may reuse the old id, so the URLs handed out before stay valid.
        """
        files = self._files(clip_id)
        mel_buffer = io.BytesIO()
        np.save(mel_buffer, np.asarray(mel, dtype=np.float16))  # half precision: the image needs no more
        _atomic_write(files["audio"], audio)
        _atomic_write(files["mel"], mel_buffer.getvalue())
        size = len(audio) + mel_buffer.getbuffer().nbytes
        now = time.time()
        with self._lock:
            old = self._db.execute("SELECT id, meta FROM clips WHERE key = ?", (key,)).fetchone()
            if old and not replace:
                self._unlink(clip_id)
                self._db.execute("UPDATE clips SET last_access = ? WHERE id = ?", (now, old[0]))
                kept = self._files(old[0])
                return StoredClip(old[0], json.loads(old[1]), kept["audio"], kept["mel"])
            self._db.execute("BEGIN")
            if old:
                self._db.execute("DELETE FROM clips WHERE id = ?", (old[0],))
            self._db.execute(
                "INSERT INTO clips (id, key, created, last_access, size, meta) VALUES (?, ?, ?, ?, ?, ?)",
                (clip_id, key, now, now, size, json.dumps(meta)),
            )
            self._db.execute("COMMIT")
            if old and old[0] != clip_id:
                self._unlink(old[0])
            elif old:
                files["png"].unlink(missing_ok=True)  # drawn from the replaced mel, and no longer counted
            self._evict(keep=clip_id)
        return StoredClip(clip_id, meta, files["audio"], files["mel"])

    def add_png(self, clip_id: str, png: bytes) -> Path:
        """Keep a rendered mel image beside the clip (it counts towards the cap)."""
        path = self._files(clip_id)["png"]
        with self._lock:
            if self._db.execute("SELECT 1 FROM clips WHERE id = ?", (clip_id,)).fetchone() is None:
                raise KeyError(clip_id)
            _atomic_write(path, png)
            self._db.execute("UPDATE clips SET size = size + ? WHERE id = ?", (len(png), clip_id))
            self._evict(keep=clip_id)
        return path

    def png_path(self, clip_id: str) -> Path:
        return self._files(clip_id)["png"]

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
