"""Audit events and key usage counters, queued by the proxy and written in batches.

The proxy only appends to memory; one background task writes a batch when AUDIT_BATCH_SIZE
events are waiting or AUDIT_FLUSH_INTERVAL_SECONDS have passed. Shutdown drains the queue,
so every call that completed is recorded; what an unreachable database does not take by then
(or beyond MAX_QUEUED during an outage) goes to the log whole, for `audit/restore.py`.

Both sides run for every proxied message, so both are kept to the bare minimum: `record`
appends one tuple (no id, no datetime), and a batch goes to the driver as rows already in
the form the database takes (text ids, JSON text from orjson, a timestamp SQLite or asyncpg
accepts as is), with no per-row work in SQLAlchemy: on PostgreSQL by asyncpg's COPY on the
session's connection, on an SQLite file by the stdlib driver, bypassing SQLAlchemy and
aiosqlite altogether (audit/sqlite_sink.py says why). Readers still see the same values
through the `AuditEvent` model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cerberus.agents.models import Agent
from cerberus.audit import chunks
from cerberus.audit.models import AuditEvent
from cerberus.ids import uuid7_many

if TYPE_CHECKING:
    # Imported when an SQLite file is written to: sqlite3 costs ~0.9 MiB of a process that
    # writes to PostgreSQL.
    from cerberus.audit.sqlite_sink import SqliteSink

# Read at use: tests swap app.state.sessionmaker for one bound to a rolled-back connection.
SessionmakerSource = Callable[[], async_sessionmaker[AsyncSession]]

logger = logging.getLogger("cerberus.audit")

RETRY_SECONDS = 1.0
# Flushes tried at shutdown before the queue goes to the log (an orchestrator kills a process
# that takes too long to stop, and a database that refused a connection twice a second apart
# is not coming back before that).
SHUTDOWN_ATTEMPTS = 2
# A flush that has not finished by then has failed (a table locked, a database that accepts
# connections and never answers): its rows stay queued, the queue's excess goes to the log,
# and the next flush tries again. Unbounded, one stalled statement held the queue, which
# grew unseen.
FLUSH_TIMEOUT_SECONDS = 15.0
# All of shutdown's flushes together: then the queue goes to the log. Orchestrators kill a
# process that takes longer (Docker after 10 s): killed, it lost the queue without a line.
STOP_TIMEOUT_SECONDS = 8.0
# Events kept while the database cannot be reached (~620 bytes each: ~30 MiB). Beyond, the
# oldest go to the log whole, as at shutdown: a queue that grew until the process was killed
# for its memory would lose them all.
MAX_QUEUED = 50_000
# The message of a log line that holds an event the database did not take.
UNWRITTEN = "audit event not written"
# Rows per executemany through SQLAlchemy's driver (an in-memory SQLite database).
DRIVER_CHUNK_ROWS = 50
# Rows per COPY to PostgreSQL: encoded on the loop's thread, so a request that arrives
# meanwhile waits behind one chunk (~4 us a row), not behind the whole batch. Each COPY
# costs ~0.25 ms of CPU besides its rows, so chunks are bigger when many events wait.
COPY_CHUNK_ROWS = 50
BUSY_COPY_CHUNK_ROWS = 200
BUSY_EVENTS = 500

# A queued event is a tuple of these columns in this order, then its time (epoch seconds).
COLUMNS = (
    "request_id",
    "decision_id",
    "organisation_id",
    "workspace_id",
    "agent_id",
    "direction",
    "method",
    "tool_name",
    "action",
    "guardrails_triggered",
    "processing_ms",
    "upstream_status",
    "upstream_latency_ms",
)
# The table's columns in the order a written row holds them.
_NAMES = ("id", *COLUMNS, "created_at")
_EMPTY = "[]"


@dataclass
class _Usage:
    count: int
    last_used_at: float


class AuditWriter:
    def __init__(
        self,
        sessionmaker: SessionmakerSource,
        *,
        batch_size: int,
        flush_interval: float,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._batch_size = batch_size
        self._interval = flush_interval
        self._events: list[tuple[Any, ...]] = []
        self._usage: dict[str, _Usage] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._lock = asyncio.Lock()
        # SQLite's timestamp text up to the second, for the last second seen.
        self._second = -1
        self._second_text = ""
        self._sink: SqliteSink | None = None

    def record(
        self,
        *,
        request_id: str,
        decision_id: str,
        organisation_id: str,
        workspace_id: str,
        agent_id: str,
        direction: str,
        action: str,
        method: str | None = None,
        tool_name: str | None = None,
        guardrails_triggered: Sequence[dict[str, Any]] = (),
        processing_ms: float = 0.0,
        upstream_status: int | None = None,
        upstream_latency_ms: float | None = None,
    ) -> None:
        """Queue one audit event (AuditEvent's columns); never blocks, never raises."""
        try:
            # As JSON text now: a queued event then holds one string, not the findings' dicts
            # and lists (1,296 -> 619 bytes), and the queue's peak sets memory after load.
            triggered = _json(guardrails_triggered)
        except Exception:
            logger.exception(
                "audit event could not be serialised; dropped", extra={"decision_id": decision_id}
            )
            return
        self._events.append(
            (
                request_id,
                decision_id,
                organisation_id,
                workspace_id,
                agent_id,
                direction,
                _storable(method),
                _storable(tool_name),
                action,
                triggered,
                processing_ms,
                upstream_status,
                upstream_latency_ms,
                time.time(),
            )
        )
        if len(self._events) >= self._batch_size:
            self._wake.set()

    def used(self, agent_id: str) -> None:
        """Count one authenticated proxy request for the agent's usage counters."""
        usage = self._usage.get(agent_id)
        if usage is None:
            self._usage[agent_id] = _Usage(1, time.time())
        else:
            usage.count += 1
            usage.last_used_at = time.time()

    @property
    def pending(self) -> int:
        return len(self._events)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Write everything still queued, then stop (the lifespan calls this on shutdown).

        A database still unreachable after SHUTDOWN_ATTEMPTS leaves the queue in the log
        instead: one `audit event not written` line per event, holding the whole row, which
        `cerberus audit restore` writes back later. Before, the process exited with the
        events in memory and they were lost."""
        self._stopping = True
        self._wake.set()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                if await self._drain():
                    return
        except TimeoutError:
            logger.error(
                "audit flush did not finish at shutdown",
                extra={"seconds": STOP_TIMEOUT_SECONDS, "pending": len(self._events)},
            )
        finally:
            await self._cancel_run()
        try:
            # A batch whose write was cut short is logged too; if it was stored after all,
            # restoring it writes nothing (its decision ids are there).
            self._log_unwritten()
        finally:
            self._close_sink()

    async def _drain(self) -> bool:
        """Shutdown's flushes; whether they wrote everything (the sink closed if so)."""
        if self._task is not None:
            await self._task
            self._task = None
        for attempt in range(1, SHUTDOWN_ATTEMPTS + 1):
            try:
                while self._events or self._usage:
                    await self.flush()
                self._close_sink()
                return True
            except Exception:
                logger.exception(
                    "audit flush failed at shutdown",
                    extra={"attempt": attempt, "pending": len(self._events)},
                )
                if attempt < SHUTDOWN_ATTEMPTS:
                    await asyncio.sleep(RETRY_SECONDS)
        return False

    async def _cancel_run(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    def _spill_excess(self) -> None:
        """The oldest events beyond MAX_QUEUED into the log, whole, and off the queue."""
        excess = len(self._events) - MAX_QUEUED
        if excess > 0:
            _log_events(self._events[:excess])
            del self._events[:excess]

    def _log_unwritten(self) -> None:
        """Every queued event and usage count into the log, whole, and off the queue."""
        _log_events(self._events)
        for agent_id, counted in self._usage.items():
            logger.error(
                "agent usage not written",
                extra={
                    "agent_id": agent_id,
                    "usage_count": counted.count,
                    "last_used_at": datetime.fromtimestamp(counted.last_used_at, UTC).isoformat(),
                },
            )
        self._events.clear()
        self._usage.clear()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                async with asyncio.timeout(FLUSH_TIMEOUT_SECONDS):
                    await self.flush()
            except Exception:
                # The rows stay queued and are tried again; the database may come back.
                logger.exception("audit flush failed; retrying")
                async with self._lock:
                    self._spill_excess()
                await asyncio.sleep(RETRY_SECONDS)

    async def flush(self) -> None:
        # One writer at a time: two would take the same rows off the queue.
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        """Write what was queued when the flush began. What requests queue meanwhile waits
        for the next flush: looping until the queue was empty kept a busy gateway writing
        one tiny transaction after another (two or three events and a usage update each),
        which cost more CPU than the requests (docs/benchmarks.md)."""
        remaining = len(self._events)
        usage_due = bool(self._usage)
        while remaining > 0 or usage_due:
            batch = self._events[: min(remaining, self._batch_size)]
            usage = self._usage
            self._usage = {}
            usage_due = False
            try:
                await self._write(batch, usage)
            except BaseException as exc:
                refused = self._refused(exc)
                if batch or not refused:
                    for agent_id, counted in usage.items():
                        self._merge_usage(agent_id, counted)
                else:
                    # Nothing else was written: the counters themselves were refused.
                    logger.error("usage counters refused by the database; dropped")
                if not refused:
                    raise
                # One bad row must not hold the queue forever: write the rest one by one.
                await self._insert_one_by_one(batch)
            del self._events[: len(batch)]
            remaining -= len(batch)

    async def _insert_one_by_one(self, batch: list[tuple[Any, ...]]) -> None:
        done = 0
        try:
            for event in batch:
                try:
                    await self._write([event], {})
                except Exception as exc:
                    if not self._refused(exc):
                        raise
                    if _already_stored(exc):
                        # A flush whose commit went through but whose answer was lost (cut
                        # off, timed out): the retry finds the row there.
                        logger.info("audit event already stored", extra={"decision_id": event[1]})
                    else:
                        # Whole, as at shutdown: what the row held is not lost with it.
                        logger.error(
                            "audit event refused by the database; dropped",
                            extra={"decision_id": event[1], "audit_event": _logged_event(event)},
                        )
                done += 1
        finally:
            # Rows written (or dropped) here must not be written again by the retry.
            if done < len(batch):
                del self._events[:done]

    async def _write(self, batch: list[tuple[Any, ...]], usage: dict[str, _Usage]) -> None:
        """One transaction: the batch's rows and the usage counts, or nothing."""
        sink = self._sqlite_sink()
        if sink is not None:
            rows, usage_rows = self._rows(batch, sqlite=True), self._usage_rows(usage, sqlite=True)
            await sink.write(rows, usage_rows, backlog=len(self._events))
            return
        async with self._sessionmaker()() as session:
            connection = await session.connection()
            dialect = connection.dialect
            if dialect.name == "postgresql":
                raw = await connection.get_raw_connection()
                try:
                    await _copy_to_postgres(
                        raw.driver_connection,
                        self._rows(batch, sqlite=False),
                        self._usage_rows(usage, sqlite=False),
                        _copy_chunk_rows(len(self._events)),
                    )
                except BaseException as exc:
                    # Cancelled too (a flush past FLUSH_TIMEOUT_SECONDS): a COPY cut off
                    # leaves the connection in no state to reuse.
                    if not _database_refused(exc):
                        # The COPY goes around SQLAlchemy, which so never sees the error
                        # that would make it drop a connection whose backend died (killed,
                        # failed over): back in the pool, it could still look as if in a
                        # transaction, and the next checkout's ping failed on it (the next
                        # flush, or a proxied call's key lookup). It is never reused.
                        await connection.invalidate(exc)
                    raise
                await session.commit()
                return
            rows = self._rows(batch, sqlite=dialect.name == "sqlite")
            insert = _INSERT_SQL[dialect.paramstyle]
            # In chunks: the driver encodes a whole executemany on the loop's thread, and a
            # request that arrives meanwhile waits behind it (audit/sqlite_sink.py, CHUNK_ROWS).
            for chunk in chunks(rows, DRIVER_CHUNK_ROWS):
                await connection.exec_driver_sql(insert, chunk)
            if usage:
                usage_rows = self._usage_rows(usage, sqlite=dialect.name == "sqlite")
                await connection.exec_driver_sql(_USAGE_SQL[dialect.paramstyle], usage_rows)
            await session.commit()

    def _sqlite_sink(self) -> SqliteSink | None:
        """The stdlib-driver writer when the sessions go to an SQLite file through an engine
        (read at each flush: tests bind the sessions to one rolled-back connection)."""
        bind = self._sessionmaker().kw.get("bind")
        path = bind.url.database if isinstance(bind, AsyncEngine) else None
        if not path or path == ":memory:" or bind is None or bind.dialect.name != "sqlite":
            return None
        if self._sink is None or self._sink.path != path:
            from cerberus.audit.sqlite_sink import SqliteSink

            self._close_sink()
            self._sink = SqliteSink(path, _INSERT_SQL["qmark"], _USAGE_SQL["qmark"])
        return self._sink

    def _refused(self, exc: BaseException) -> bool:
        return _database_refused(exc) or (self._sink is not None and self._sink.refused(exc))

    def _close_sink(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _rows(self, batch: list[tuple[Any, ...]], *, sqlite: bool) -> Iterator[tuple[Any, ...]]:
        """The batch as rows the driver takes as is: an id first, the time in its form last.

        Made as the chunks are written (`chunks`): built all at once, a batch's rows held
        the event loop for ~0.5 ms at every flush, longer than a chunk."""
        # Time-ordered: a batch lands on the last page of the primary key (cerberus/ids.py).
        ids = uuid7_many(len(batch))
        for index, event in enumerate(batch):
            at = event[13]
            created_at = self._sqlite_time(at) if sqlite else datetime.fromtimestamp(at, UTC)
            yield (ids[index], *event[:13], created_at)

    def _usage_rows(self, usage: dict[str, _Usage], *, sqlite: bool) -> list[tuple[Any, ...]]:
        """(count to add, last use in the driver's form, agent id) per agent."""
        return [
            (
                counted.count,
                self._sqlite_time(counted.last_used_at)
                if sqlite
                else datetime.fromtimestamp(counted.last_used_at, UTC),
                agent_id,
            )
            for agent_id, counted in usage.items()
        ]

    def _sqlite_time(self, at: float) -> str:
        """SQLAlchemy's SQLite DATETIME text (UTC): what the model writes and queries compare."""
        second = int(at)
        if second != self._second:
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S")
            self._second = second
        return f"{self._second_text}.{int((at - second) * 1_000_000):06d}"

    def _merge_usage(self, agent_id: str, counted: _Usage) -> None:
        current = self._usage.get(agent_id)
        if current is None:
            self._usage[agent_id] = counted
        else:
            current.count += counted.count
            current.last_used_at = max(current.last_used_at, counted.last_used_at)


def _copy_chunk_rows(waiting: int) -> int:
    """Rows per COPY when `waiting` events are queued in all."""
    return BUSY_COPY_CHUNK_ROWS if waiting > BUSY_EVENTS else COPY_CHUNK_ROWS


async def _copy_to_postgres(
    driver: Any,
    rows: Iterable[tuple[Any, ...]],
    usage_rows: list[tuple[Any, ...]],
    chunk_rows: int,
) -> None:
    """Rows by COPY and the usage counts, in one transaction on asyncpg's connection (or a
    savepoint in one SQLAlchemy already began). COPY's binary rows cost the gateway about
    half the CPU of an executemany of INSERTs, and the server less (docs/benchmarks.md)."""
    async with driver.transaction():
        for chunk in chunks(rows, chunk_rows):
            await driver.copy_records_to_table(
                AuditEvent.__tablename__, records=chunk, columns=_NAMES
            )
        if usage_rows:
            await driver.executemany(_USAGE_SQL["numeric_dollar"], usage_rows)


def _insert_sql(placeholder: Callable[[int], str]) -> str:
    values = ", ".join(placeholder(number) for number in range(1, len(_NAMES) + 1))
    return f"INSERT INTO {AuditEvent.__tablename__} ({', '.join(_NAMES)}) VALUES ({values})"


def _usage_sql(later: str, first: str, second: str, third: str) -> str:
    # last_used_at only moves forward: instances flush their counts in any order (a retry
    # after a database blip lands late), and an older use must not move it back. NULL (never
    # used) yields to the new time: SQLite's two-argument MAX() of a NULL is NULL.
    return (
        f"UPDATE {Agent.__tablename__} SET usage_count = usage_count + {first},"
        f" last_used_at = {later}(COALESCE(last_used_at, {second}), {second})"
        f" WHERE id = {third}"
    )


# SQLite's ?NNN names a parameter by its position, so the time is passed once either way; its
# DATETIME text (_sqlite_time) sorts as the times do.
_USAGE_SQL = {
    "qmark": _usage_sql("MAX", "?1", "?2", "?3"),
    "numeric_dollar": _usage_sql("GREATEST", "$1", "$2", "$3"),
}

# The two drivers Settings accepts: aiosqlite (qmark) and asyncpg (numeric_dollar).
_INSERT_SQL = {
    "qmark": _insert_sql(lambda _: "?"),
    "numeric_dollar": _insert_sql(lambda number: f"${number}"),
}


def _log_events(events: list[tuple[Any, ...]]) -> None:
    for event in events:
        logger.error(UNWRITTEN, extra={"audit_event": _logged_event(event)})


def _logged_event(event: tuple[Any, ...]) -> dict[str, Any]:
    """A queued event as a log line holds it: its columns by name (the findings as the JSON
    text the row would hold), the time in ISO 8601 (UTC), so that `audit/restore.py` can
    write the row it would have been."""
    logged = dict(zip(COLUMNS, event, strict=False))
    logged["created_at"] = datetime.fromtimestamp(event[len(COLUMNS)], UTC).isoformat()
    return logged


def _json(value: Any) -> str:
    if not value:
        return _EMPTY
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        # What orjson will not take (a huge int, a non-str key) the stdlib still writes.
        return json.dumps(value, default=str)


def _database_refused(exc: BaseException) -> bool:
    """The database refused the values (a row to drop), as opposed to not being reachable."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    # asyncpg's data and constraint errors: as asyncpg raised them from a COPY, or wrapped
    # in a plain DBAPIError by SQLAlchemy.
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in ("22", "23")


def _already_stored(exc: BaseException) -> bool:
    """The row's decision id is in the table already: PostgreSQL's unique violation (23505)
    of the index on it, or SQLite's. Read from the driver's own error, not SQLAlchemy's
    message, which quotes the statement (and so the column's name) whatever failed."""
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate == "23505" and "decision_id" in str(error)
    return "UNIQUE constraint failed: audit_events.decision_id" in str(error)


def _storable(text: str | None) -> str | None:
    """A client-chosen name as a database stores it: PostgreSQL's text refuses U+0000, which
    refused the whole row (the event was lost); both backends keep U+FFFD in its place."""
    if text is not None and "\x00" in text:
        return text.replace("\x00", "\ufffd")
    return text
