"""Audit batches into the embedded SQLite file with the stdlib driver, on the event loop's thread.

Through SQLAlchemy and aiosqlite, a batch took about ten thread round trips, and its rows were
bound in aiosqlite's thread while the event loop served requests: the threads passed the GIL
back and forth (sqlite3 releases it around each step), which cost the loop far more CPU than
the rows themselves. Measured side by side (docs/benchmarks.md), full policy set, gateway CPU
per call at concurrency 32: 0.70-0.71 ms through aiosqlite, 0.58-0.60 with only COMMIT sent to
a worker thread, 0.51-0.56 with everything on the loop's thread, which also had the lowest p99
at concurrency 1 (1.5-1.6 ms against 1.9-2.4 and 2.0).

So rows are inserted on the loop's thread, in chunks with a chance for requests in between,
and committed there (an fsync: about half a millisecond here). A chunk is what a request may
wait behind: 25 rows (about 0.3 ms at 13 us a row) rather than 100 (1.3 ms) took the p99
at concurrency 1 from 3.2-3.9 ms to 2.3-2.7 ms against the stub upstream, same CPU, and 8
rows while few events wait took it down by another 0.5-1.0 ms (docs/benchmarks.md). Only a
BEGIN that finds the write lock held by another connection (the control plane, a migration)
waits for it in a worker thread, so the loop never stalls on a lock.

PostgreSQL (COPY on the session's connection) and sessions bound to one connection (the
tests' rolled-back transaction) are written by writer.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from cerberus.audit import chunks

# Rows inserted between two chances for the event loop to serve requests (see above), while
# few events wait (a flush of what a second or so of steady traffic queues).
CHUNK_ROWS = 8
# Above this many waiting events the traffic is heavy: a flush in 8-row chunks took so many
# turns of the loop that the queue grew meanwhile (about a MiB more memory at c=32).
BUSY_ROWS = 500
BUSY_CHUNK_ROWS = 25
# When more events wait than this, the writer is falling behind: it writes bigger chunks
# (the requests it delays are queued behind many others anyway) so that it catches up.
BACKLOG_ROWS = 2_000
BACKLOG_CHUNK_ROWS = 100
# How long BEGIN may wait for the write lock on the loop's thread before moving to a thread.
LOOP_BUSY_TIMEOUT_SECONDS = 0.005
# How long a flush waits for the write lock in all (then the rows stay queued and are retried).
LOCK_WAIT_SECONDS = 30.0


def chunk_rows(backlog: int) -> int:
    """Rows per chunk when `backlog` events wait to be written in all."""
    if backlog > BACKLOG_ROWS:
        return BACKLOG_CHUNK_ROWS
    return BUSY_CHUNK_ROWS if backlog > BUSY_ROWS else CHUNK_ROWS


class SqliteSink:
    def __init__(self, path: str, insert_sql: str, usage_sql: str) -> None:
        self.path = path
        self._insert_sql = insert_sql
        self._usage_sql = usage_sql
        self._db: sqlite3.Connection | None = None
        # A BEGIN still running in a worker thread after its flush was cancelled.
        self._waiting: asyncio.Future[None] | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            # Used by one flush at a time (the writer's lock); a worker thread only runs a
            # BEGIN while the loop awaits it, so two threads never use it at once.
            db = sqlite3.connect(
                self.path,
                timeout=LOOP_BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
            db.execute("PRAGMA journal_mode=WAL")
            self._db = db
        return self._db

    async def write(
        self, rows: Iterable[tuple[Any, ...]], usage: Sequence[tuple[Any, ...]], backlog: int = 0
    ) -> None:
        """Insert the rows and add the usage counts in one transaction; nothing on failure.

        `rows` may be made as they are read (each chunk is, between two chances for the
        loop to serve requests); `backlog`: how many events wait to be written in all
        (sets the chunk size)."""
        size = chunk_rows(backlog)
        db = await self._begin()
        try:
            for index, chunk in enumerate(chunks(rows, size)):
                if index:
                    await asyncio.sleep(0)
                db.executemany(self._insert_sql, chunk)
            if usage:
                db.executemany(self._usage_sql, usage)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    async def _begin(self) -> sqlite3.Connection:
        if self._waiting is not None:
            await asyncio.wait([self._waiting])
            self._waiting = None
        db = self._connection()
        if db.in_transaction:
            db.execute("ROLLBACK")  # left by a cancelled flush: it wrote nothing
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise
            waiting = asyncio.get_running_loop().run_in_executor(None, _begin_waiting, db)
            self._waiting = waiting
            # Shielded: cancelling this flush must not mark the BEGIN done while it still runs.
            await asyncio.shield(waiting)
            self._waiting = None
        return db

    @staticmethod
    def refused(exc: BaseException) -> bool:
        """sqlite3 refused the values (a row to drop), as opposed to the file failing."""
        return isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError)

    def close(self) -> None:
        if self._db is not None and self._waiting is None:
            self._db.close()
            self._db = None


def _begin_waiting(db: sqlite3.Connection) -> None:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _locked(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _locked(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
