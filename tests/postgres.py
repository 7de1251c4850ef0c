"""A real PostgreSQL for the tests, found or started, never mocked and never silently skipped.

The server: the one PARLEY_TEST_POSTGRES names (a URL to an administrative database, e.g.
postgresql://postgres@127.0.0.1:5432/postgres), else one listening on 127.0.0.1:5432, else one started from
an installed PostgreSQL (initdb and pg_ctl on PATH or under /usr/lib/postgresql/*/bin) in a temporary
directory on a free port. If none of these works the tests that need it fail with the reasons.

Each test session gets a database of its own (a unique name, dropped at the end); each test a schema of its
own inside it (selected by the URL's search_path), so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from storage.postgres import create_schema

ENV = "PARLEY_TEST_POSTGRES"
DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end on a loop of its own (callable from inside a running event loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def with_database(url: str, database: str, **query: str) -> str:
    parts = urlsplit(url)
    extra = "&".join(f"{key}={value}" for key, value in query.items())
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, extra, ""))


async def _reachable(url: str) -> str | None:
    """None when a connection succeeds, else why not."""
    try:
        connection = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


def _binaries() -> tuple[str, str] | None:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{folder}/initdb", os.X_OK) and os.access(f"{folder}/pg_ctl", os.X_OK):
            return f"{folder}/initdb", f"{folder}/pg_ctl"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _started_server() -> Iterator[str]:
    """initdb + pg_ctl start in a temporary directory; stopped and removed afterwards. PostgreSQL refuses to
    run as root, so as root it runs as the system's `postgres` user."""
    binaries = _binaries()
    if binaries is None:
        raise RuntimeError("no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin")
    initdb, pg_ctl = binaries
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="parley-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            raise RuntimeError("running as root, and no runuser to start PostgreSQL as another user")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    port = _free_port()
    data = folder / "data"
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [
                *as_user,
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(folder / "log"),
                "-w",
                "-t",
                "60",
                "start",
                "-o",
                f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off",
            ],
            check=True,
            capture_output=True,
            timeout=90,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        raise RuntimeError(
            f"could not start PostgreSQL from {initdb}: {exc} {detail.decode(errors='replace')}"
        ) from exc
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def server() -> Iterator[str]:
    """The administrative URL of a reachable PostgreSQL server (see the module's docstring)."""
    named = os.environ.get(ENV, "").strip()
    tried: list[str] = []
    for url in [named] if named else [DEFAULT]:
        problem = run(_reachable(url))
        if problem is None:
            yield url
            return
        tried.append(f"{url}: {problem}")
    if named:  # a server the tester named and cannot be reached is an error, not a cue to start another
        raise RuntimeError(f"{ENV} names a PostgreSQL that cannot be reached ({tried[0]})")
    try:
        with _started_server() as url:
            yield url
    except RuntimeError as exc:
        tried.append(str(exc))
        raise RuntimeError(
            "the storage tests need a PostgreSQL and found none. Tried:\n  "
            + "\n  ".join(tried)
            + f"\nSet {ENV} to a server's URL, or install PostgreSQL (initdb, pg_ctl)."
        ) from exc


@contextlib.contextmanager
def session_database(admin_url: str) -> Iterator[str]:
    """A database of the test session's own, dropped afterwards; yields its URL."""
    name = f"parley_test_{os.getpid()}_{secrets.token_hex(4)}"

    async def create() -> None:
        connection = await asyncpg.connect(admin_url)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    async def drop() -> None:
        connection = await asyncpg.connect(admin_url)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    run(create())
    try:
        yield with_database(admin_url, name)
    finally:
        run(drop())


async def fresh_schema(database_url: str) -> str:
    """A new, empty schema in the session's database; returns a URL whose connections use it."""
    _, url = await create_schema(database_url, "t")
    return url
