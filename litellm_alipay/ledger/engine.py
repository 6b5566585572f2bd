"""Two database engines behind one small interface: SQLite (one host, a file) and PostgreSQL (shared).

Why DB-API and not an ORM: the ledger is a handful of short statements whose atomicity is the whole
point, so each is written once in the SQL both engines speak (``ON CONFLICT``, ``RETURNING``) and run
inside an explicit transaction: SQLite's ``BEGIN IMMEDIATE`` (one writer at a time, across processes)
or a PostgreSQL transaction whose conditional ``UPDATE``s take row locks (two instances can never both
pass a cap). The drivers are the maintained ones: the standard library's ``sqlite3`` and ``psycopg`` 3.

Calls are blocking; the ledger runs them on worker threads (``asyncio.to_thread``) over one connection
per engine, one transaction at a time (money calls are few; SQLite has one writer anyway), re-opened
once after the server dropped it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from ..errors import ConfigurationError


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Sequence[Any] | None: ...

    def fetchall(self) -> list[Sequence[Any]]: ...


class Tx(Protocol):
    def run(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...


class Engine:
    """One database: ``transaction()`` yields a ``Tx`` whose ``run(sql, params)`` uses ``?`` placeholders."""

    name = "engine"
    #: errors meaning "the database cannot be reached or used now" (the caller fails closed)
    unavailable: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._conn: Any = None
        self.lock = threading.RLock()  # one transaction at a time on the one connection

    def connect(self) -> Any:  # pragma: no cover - per engine
        raise NotImplementedError

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:  # pragma: no cover - per engine
        raise NotImplementedError
        yield

    def close(self) -> None:
        """Close the connection (the next transaction opens a new one)."""
        with self.lock:
            self._drop_connection()


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def run(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._conn.execute(sql, tuple(params))


class SqliteEngine(Engine):
    """A SQLite file in WAL mode with full fsync: every worker process of one host shares it."""

    name = "sqlite"
    unavailable = (sqlite3.OperationalError,)  # locked, unreadable, gone; a constraint bug is not an outage

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError("ALIPAY_LEDGER_URL", f"cannot create the ledger's folder {folder!r} "
                                     f"({exc.strerror}); set ALIPAY_LEDGER_URL to a writable "
                                     "sqlite:///path or a postgresql:// URL") from None

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a committed claim survives a power cut
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")  # the write lock now: no upgrade deadlock between two writers
            try:
                yield _SqliteTx(conn)
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


class _PgTx:
    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def run(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self._cur.execute(sql.replace("?", "%s"), tuple(params))  # our SQL holds no literal '?' or '%'
        return self._cur


class PostgresEngine(Engine):
    """PostgreSQL through ``psycopg`` 3: the engine for several proxy instances."""

    name = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError:
            raise ConfigurationError("ALIPAY_LEDGER_URL", "a postgresql:// ledger needs the psycopg driver: "
                                     "pip install 'litellm-alipay[postgres]' (psycopg[binary])") from None
        self._psycopg = psycopg
        self.url = url
        self.unavailable = (psycopg.OperationalError, psycopg.InterfaceError)

    def connect(self) -> Any:
        return self._psycopg.connect(self.url, autocommit=False, connect_timeout=10)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.lock:
            conn = self._connection()
            if conn.closed or conn.broken:
                self._drop_connection()
                conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield _PgTx(cur)
            except self.unavailable:
                self._drop_connection()  # the next call reconnects
                raise


def engine_for(url: str) -> Engine:
    """The engine a ledger URL names: ``sqlite:///abs/path`` or ``postgresql://…``."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc:
            raise ConfigurationError("ALIPAY_LEDGER_URL", "write a SQLite ledger as sqlite:///absolute/path.db "
                                     "(three slashes), not with a host")
        if not path or path.startswith("/:memory:"):
            raise ConfigurationError("ALIPAY_LEDGER_URL", "a sqlite:// ledger needs a file every worker shares: "
                                     "sqlite:///path/ledger.db")
        return SqliteEngine(path)
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return PostgresEngine(url.replace("postgresql+psycopg://", "postgresql://", 1))
    raise ConfigurationError("ALIPAY_LEDGER_URL", f"unsupported ledger URL scheme {parts.scheme!r}: use "
                             "sqlite:///path/ledger.db (one host) or postgresql://user@host/db (several instances)")
