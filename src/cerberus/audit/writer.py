"""Audit events and key usage counters, queued by the proxy and written in batches.

The proxy only appends to memory; one background task writes a batch when AUDIT_BATCH_SIZE
events are waiting or AUDIT_FLUSH_INTERVAL_SECONDS have passed. Shutdown drains the queue,
so every call that completed is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cerberus.agents.models import Agent
from cerberus.audit.models import AuditEvent
from cerberus.db import new_id, utcnow

# Read at use: tests swap app.state.sessionmaker for one bound to a rolled-back connection.
SessionmakerSource = Callable[[], async_sessionmaker[AsyncSession]]

logger = logging.getLogger("cerberus.audit")

RETRY_SECONDS = 1.0


@dataclass
class _Usage:
    count: int
    last_used_at: datetime


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
        self._events: list[dict[str, Any]] = []
        self._usage: dict[str, _Usage] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._lock = asyncio.Lock()

    def record(self, **fields: Any) -> None:
        """Queue one audit event (AuditEvent's columns); never blocks, never raises."""
        fields.setdefault("id", new_id())
        fields.setdefault("created_at", utcnow())
        self._events.append(fields)
        if len(self._events) >= self._batch_size:
            self._wake.set()

    def used(self, agent_id: str) -> None:
        """Count one authenticated proxy request for the agent's usage counters."""
        now = utcnow()
        usage = self._usage.get(agent_id)
        if usage is None:
            self._usage[agent_id] = _Usage(1, now)
        else:
            usage.count += 1
            usage.last_used_at = now

    @property
    def pending(self) -> int:
        return len(self._events)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Write everything still queued, then stop (the lifespan calls this on shutdown)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                # The rows stay queued and are tried again; the database may come back.
                logger.exception("audit flush failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)

    async def flush(self) -> None:
        # One writer at a time: two would take the same rows off the queue.
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        while self._events or self._usage:
            batch = self._events[: self._batch_size]
            usage = self._usage
            self._usage = {}
            try:
                async with self._sessionmaker()() as session:
                    if batch:
                        await session.execute(insert(AuditEvent), batch)
                    for agent_id, counted in usage.items():
                        await session.execute(
                            update(Agent)
                            .where(Agent.id == agent_id)
                            .values(
                                usage_count=Agent.usage_count + counted.count,
                                last_used_at=counted.last_used_at,
                            )
                            .execution_options(synchronize_session=False)
                        )
                    await session.commit()
            except (IntegrityError, DataError):
                # One bad row must not hold the queue forever: write the rest one by one.
                for agent_id, counted in usage.items():
                    self._merge_usage(agent_id, counted)
                await self._insert_one_by_one(batch)
            except BaseException:
                for agent_id, counted in usage.items():
                    self._merge_usage(agent_id, counted)
                raise
            del self._events[: len(batch)]

    async def _insert_one_by_one(self, batch: list[dict[str, Any]]) -> None:
        for row in batch:
            try:
                async with self._sessionmaker()() as session:
                    await session.execute(insert(AuditEvent), [row])
                    await session.commit()
            except (IntegrityError, DataError):
                logger.error(
                    "audit event refused by the database; dropped",
                    extra={"decision_id": row.get("decision_id")},
                )

    def _merge_usage(self, agent_id: str, counted: _Usage) -> None:
        current = self._usage.get(agent_id)
        if current is None:
            self._usage[agent_id] = counted
        else:
            current.count += counted.count
            current.last_used_at = max(current.last_used_at, counted.last_used_at)
