"""Opening the clip store a `--store` value names: a folder (the local store, server/store.py) or a PostgreSQL URL
(server/pgstore.py, its driver imported only then).

    from moodmusic.server.stores import open_store
    store = open_store("data/store", cap_bytes=1024 * 1024 * 1024)                  # LocalClipStore
    store = open_store("postgresql://postgres@127.0.0.1:54329/moodmusic", 10**9)     # PostgresClipStore, shared by replicas
"""

from __future__ import annotations

from moodmusic.server.store import ClipStorage, LocalClipStore, local_folder


def open_store(location: str, cap_bytes: int) -> ClipStorage:
    """The store a `--store` value names: a PostgreSQL URL opens `PostgresClipStore` (psycopg is imported only
    then), anything else is a folder (or `file://` and a folder) for `LocalClipStore`."""
    folder = local_folder(location)
    if folder is None:
        from moodmusic.server.pgstore import PostgresClipStore

        return PostgresClipStore(location, cap_bytes)
    return LocalClipStore(folder, cap_bytes)
