"""A throwaway PostgreSQL cluster in a folder: for the tests, and to try the shared clip store (server/pgstore.py)
on one machine.

    python -m moodmusic.server.local_postgres start data/postgres --port 54329   # prints the URL for --store
    moodmusic serve --store postgresql://postgres@127.0.0.1:54329/moodmusic --port 8000
    moodmusic serve --store postgresql://postgres@127.0.0.1:54329/moodmusic --port 8001   # a second replica
    python -m moodmusic.server.local_postgres stop data/postgres

From Python (the tests do this), the cluster lives as long as the `with` block:

    with LocalPostgres("/tmp/moodmusic-pg") as postgres:
        store = open_store(postgres.url, cap_bytes=10**9)

The first start makes the cluster (initdb) and a database `moodmusic`; later starts reuse both, on the port the
cluster was made with unless another is given. It listens only on 127.0.0.1, keeps its socket in the folder, and
trusts every local connection (no password): a cluster for one machine, not for production. It uses the machine's
PostgreSQL server binaries (Debian's `postgresql` package, which scripts/setup.sh installs): `pg_config --bindir`,
else the newest /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as root; as root, the folder is handed to
the `postgres` user and initdb and pg_ctl run as that user (runuser), so that user must be able to reach the folder
(a folder under /tmp or data/ is fine; pytest's own temporary folders are not).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from moodmusic.server.background import free_port

DATABASE = "moodmusic"
SUPERUSER = "postgres"  # the cluster's superuser, also the OS user PostgreSQL runs as when we are root
LOG_FILE = "postgres.log"


class LocalPostgresError(RuntimeError):
    """The cluster could not be made, started or stopped; the message says why (and ends with the server's log)."""


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL's server is not installed."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))

    def version(folder: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in folder.parent.name.split(".") if part.isdigit())

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    return next((folder for folder in candidates if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file()), None)


class LocalPostgres:
    """A PostgreSQL cluster in `folder`, listening on 127.0.0.1:`port` (None: the port it was made with, or a free one
    for a new cluster). `start()` makes it if needed and starts it; `url` is then the database `moodmusic`.
    As a context manager it is started on entry and stopped on exit (the folder stays)."""

    def __init__(self, folder: str | os.PathLike, port: int | None = None):
        self.folder = Path(folder).absolute()
        self.port = port
        binaries = server_binaries()
        if binaries is None:
            raise LocalPostgresError("PostgreSQL's server (initdb, pg_ctl) is not installed: install Debian's postgresql package "
                                     "(scripts/setup.sh does)")  # fmt: skip
        self.binaries = binaries
        self.as_postgres_user = os.geteuid() == 0  # PostgreSQL refuses to run as root

    @property
    def url(self) -> str:
        return self.url_for(DATABASE)

    def url_for(self, database: str) -> str:
        if self.port is None:
            raise LocalPostgresError("the cluster is not started: call start() first")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # --- running the binaries --------------------------------------------------------------------
    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.binaries / program), *args]
        return ["runuser", "-u", SUPERUSER, "--", *command] if self.as_postgres_user else command

    def _run(self, program: str, *args: str) -> str:
        done = subprocess.run(self._command(program, *args), capture_output=True, text=True, cwd=self.folder)  # cwd: one that user can enter
        if done.returncode != 0:
            raise LocalPostgresError(f"{program} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}{self._log_tail()}")
        return done.stdout

    def _log_tail(self, lines: int = 15) -> str:
        log = self.folder / LOG_FILE
        if not log.exists():
            return ""
        return f"\n--- the end of {log} ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    # --- the cluster ------------------------------------------------------------------------------
    def is_made(self) -> bool:
        return (self.folder / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not (self.folder / "postmaster.pid").exists():
            return False
        status = subprocess.run(self._command("pg_ctl", "status", "-D", str(self.folder)), capture_output=True, cwd=self.folder)
        return status.returncode == 0  # 3: not running (a pid file a crash left)

    def _make(self) -> None:
        """initdb into the folder (new or empty), then the settings: 127.0.0.1 only, the port, the socket in the folder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if any(self.folder.iterdir()):
            raise LocalPostgresError(f"{self.folder} is neither empty nor a PostgreSQL cluster: give a new or empty folder")
        if self.as_postgres_user:
            shutil.chown(self.folder, SUPERUSER, SUPERUSER)
            reachable = subprocess.run(["runuser", "-u", SUPERUSER, "--", "test", "-w", str(self.folder)]).returncode == 0
            if not reachable:
                raise LocalPostgresError(f"the {SUPERUSER} user cannot reach {self.folder} (a folder above it is closed to other users); "
                                         "PostgreSQL does not run as root, so give a folder every user can reach, e.g. under /tmp")  # fmt: skip
        self._run("initdb", "-D", str(self.folder), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8")
        settings = {"listen_addresses": "127.0.0.1", "port": self.port or free_port(), "unix_socket_directories": str(self.folder)}
        with open(self.folder / "postgresql.conf", "a") as conf:  # later lines win over initdb's defaults above
            conf.write("\n# moodmusic.server.local_postgres\n" + "".join(f"{name} = '{value}'\n" for name, value in settings.items()))

    def _running_port(self) -> int:
        return int((self.folder / "postmaster.pid").read_text().splitlines()[3])  # the file's fourth line is the port

    def start(self) -> LocalPostgres:
        """Make the cluster if the folder has none, start it unless it runs, and make the database `moodmusic`."""
        if not self.is_made():
            self._make()
        if self.is_running():
            if self.port is not None and self.port != self._running_port():
                raise LocalPostgresError(f"the cluster in {self.folder} already runs, on port {self._running_port()}")
        else:
            port = ["-o", f"-p {self.port}"] if self.port is not None else []  # else the port in postgresql.conf
            self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.folder), "-l", str(self.folder / LOG_FILE), *port)
        self.port = self._running_port()
        self.create_database(DATABASE)
        return self

    def stop(self) -> None:
        """Stop the cluster (fast: open connections are closed), if it runs; the folder stays."""
        if self.is_running():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.folder))

    def create_database(self, name: str) -> str:
        """Make database `name` unless it exists; returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url_for("postgres"), autocommit=True) as connection:
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m moodmusic.server.local_postgres",
                                     description="a local PostgreSQL for the shared clip store (moodmusic serve --store URL)")  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="make (first time) and start the cluster in FOLDER; prints the URL for --store")
    start.add_argument("folder")
    start.add_argument("--port", type=int, help="port on 127.0.0.1 (default: the cluster's own; a free one for a new cluster)")
    stop = commands.add_parser("stop", help="stop the cluster in FOLDER")
    stop.add_argument("folder")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            print(LocalPostgres(args.folder, args.port).start().url)
        else:
            LocalPostgres(args.folder).stop()
    except LocalPostgresError as error:
        raise SystemExit(f"local_postgres: {error}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
