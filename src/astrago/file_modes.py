"""The server's files are its own: data dir 0700; database, logs, records 0600, whatever the umask.

The server runs with umask 077, so everything it creates is private from the start (SQLite's database,
its -wal and -shm files, the logs, the run records); what an earlier version left more open is tightened
at start. Workloads get the customary umask 022 back (see runner.py): their files are theirs to share."""

from __future__ import annotations

import contextlib
import os

from astrago.config import Settings

SERVER_UMASK = 0o077
WORKLOAD_UMASK = 0o022
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_files_private(settings: Settings) -> None:
    """Set the umask and create (or tighten) the data dir and the SQLite files."""
    os.umask(SERVER_UMASK)
    settings.data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    settings.data_dir.chmod(PRIVATE_DIR)
    database = settings.sqlite_path
    if database is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                database.with_name(database.name + suffix).chmod(PRIVATE_FILE)
