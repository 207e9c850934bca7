"""Compiled pipelines per (workspace, agent), cached in process and in the shared cache.

The effective policy rows of an agent are stored as JSON in the shared cache, so a new
instance builds its pipeline without a database query once any instance has warmed the
key. Every instance subscribes to `cerberus:invalidate`: a change to a policy, agent,
workspace or organisation drops the affected in-process pipelines and moves the shared
cache to a new generation (old entries are never read again and expire by TTL).

Agents whose effective policies are the same rows (all those of an organisation or a
workspace with no policy of their own) share one compiled pipeline: ~18 KiB of guardrails
and steps each otherwise, kept for every agent a process had ever served. An agent's entry
is dropped once expired, when the dict has doubled (cerberus/sweeping.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import or_, select

from cerberus.cache import Cache
from cerberus.guardrails import Guardrail
from cerberus.invalidation import CHANNEL, Invalidation
from cerberus.policies.effective import effective_policies
from cerberus.policies.models import Policy
from cerberus.policies.pins import PinStore, SessionSource
from cerberus.policies.pipelines import (
    CompiledPipeline,
    PipelineBuildError,
    PolicyRow,
    UnavailablePipeline,
    compile_guardrail,
)
from cerberus.proxy.pipeline import Pipeline
from cerberus.single_flight import run_once
from cerberus.sweeping import Sweeper

logger = logging.getLogger("cerberus.policies")

GLOBAL_GENERATION_KEY = "cerberus:policies:gen"
# A build that could not load what it needs is retried after this long (a database outage must
# not be hammered per message). One that loaded an invalid policy keeps its entry for the TTL:
# trying again cannot fix the row, and a change to it drops the entry at once.
FAILED_BUILD_RETRY_SECONDS = 1.0


@dataclass(eq=False)
class _Compiled:
    """The guardrails of one list of policy rows and the pipelines built on them, per fail
    mode; shared by the entries of every agent whose effective policies are those rows
    (an entry that failed to build holds one of its own: what it could build, or none)."""

    guardrails: tuple[Guardrail, ...] = ()
    pipelines: dict[str, Pipeline] = field(default_factory=dict)


@dataclass
class _Entry:
    organisation_id: str
    workspace_id: str
    agent_id: str
    expires_at: float
    compiled: _Compiled = field(default_factory=_Compiled)
    error: str | None = None


class PipelineCache:
    """`await for_agent(...)` returns the compiled pipeline; warm lookups touch only memory."""

    def __init__(
        self,
        sessions: SessionSource,
        cache: Cache,
        *,
        ttl_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._cache = cache
        self._ttl = ttl_seconds
        self.pins = PinStore(sessions, cache, ttl_seconds=ttl_seconds)
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._sweeper = Sweeper()
        # Policy rows (as JSON) -> what was compiled from them, while an entry holds it.
        self._compiled: weakref.WeakValueDictionary[bytes, _Compiled] = (
            weakref.WeakValueDictionary()
        )
        self._building: dict[tuple[str, str], asyncio.Future[_Entry]] = {}
        # Bumped by every invalidation; a build that saw it move is not cached (it may be stale).
        self._epoch = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self) -> None:
        await self.pins.start()
        if not await self._try_subscribe():
            self._spawn(self._subscribe_later())

    async def _try_subscribe(self) -> bool:
        try:
            await self._cache.subscribe(CHANNEL, self._on_invalidation)
            return True
        except Exception as exc:
            logger.warning("cannot subscribe to invalidations yet", extra={"error": repr(exc)})
            return False

    async def _subscribe_later(self) -> None:
        # The gateway starts even when the cache is down; it subscribes once it can.
        while True:
            await asyncio.sleep(1.0)
            if await self._try_subscribe():
                return

    async def close(self) -> None:
        # An invalidation delivered after this must not start work on a disposed engine.
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pins.close()

    async def for_agent(
        self, organisation_id: str, workspace_id: str, agent_id: str, fail_mode: str = "closed"
    ) -> Pipeline:
        key = (workspace_id, agent_id)
        entry = self._entries.get(key)
        if entry is None or entry.expires_at <= time.monotonic():
            # Concurrent cold misses for one key share a single build.
            entry = await run_once(self._building, key, lambda: self._build(key, organisation_id))
        return self._pipeline(entry, fail_mode)

    def _pipeline(self, entry: _Entry, fail_mode: str) -> Pipeline:
        mode = "open" if fail_mode == "open" else "closed"
        built = entry.compiled.pipelines
        pipeline = built.get(mode)
        if pipeline is not None:
            return pipeline
        if entry.error is not None and mode == "closed":
            pipeline = UnavailablePipeline(entry.error)
        else:
            # fail_mode open: run what could be built (nothing, if loading failed).
            pipeline = CompiledPipeline(
                entry.compiled.guardrails, fail_mode=mode, pins=self.pins, cache=self._cache
            )
        built[mode] = pipeline
        return pipeline

    async def _build(self, key: tuple[str, str], organisation_id: str) -> _Entry:
        workspace_id, agent_id = key
        epoch = self._epoch
        now = time.monotonic()
        entry = _Entry(organisation_id, workspace_id, agent_id, now + self._ttl)
        try:
            rows = await self._rows(organisation_id, workspace_id, agent_id, epoch)
        except Exception as exc:
            logger.error(
                "could not load policies; pipeline unavailable",
                extra={"workspace_id": workspace_id, "agent_id": agent_id, "error": repr(exc)},
            )
            entry.error = "policies could not be loaded"
            entry.expires_at = now + FAILED_BUILD_RETRY_SECONDS
            return entry
        entry.compiled = self._compile(rows, entry)
        if any(g.type == "tool_pinning" for g in entry.compiled.guardrails):
            try:
                await self.pins.ensure_loaded(workspace_id)
            except Exception as exc:
                logger.error(
                    "could not load tool pins; pipeline unavailable",
                    extra={"workspace_id": workspace_id, "error": repr(exc)},
                )
                entry.error = "tool pins could not be loaded"
                entry.expires_at = now + FAILED_BUILD_RETRY_SECONDS
                # Unavailable for this workspace only: not in the pipelines of the others.
                entry.compiled = _Compiled(entry.compiled.guardrails)
        if self._epoch == epoch:
            self._sweeper.before_insert(self._entries, lambda old: old.expires_at <= now)
            self._entries[key] = entry
        return entry

    def _compile(self, rows: list[PolicyRow], entry: _Entry) -> _Compiled:
        """The guardrails of these rows: those another entry holds for the same rows, or
        compiled now (then shared, unless a row failed: the entry keeps its own)."""
        try:
            key = orjson.dumps([row.as_dict() for row in rows])
        except TypeError:  # orjson.JSONEncodeError: config from a driver that is not JSON
            key = None
        shared = self._compiled.get(key) if key is not None else None
        if shared is not None:
            return shared
        guardrails: list[Guardrail] = []
        for row in rows:
            try:
                guardrails.append(compile_guardrail(row))
            except PipelineBuildError as exc:
                logger.error(
                    "invalid stored policy; pipeline unavailable",
                    extra={
                        "workspace_id": entry.workspace_id,
                        "agent_id": entry.agent_id,
                        "error": str(exc),
                    },
                )
                entry.error = str(exc)
        compiled = _Compiled(tuple(guardrails))
        if key is not None and entry.error is None:
            self._compiled[key] = compiled
        return compiled

    async def _rows(
        self, organisation_id: str, workspace_id: str, agent_id: str, epoch: int
    ) -> list[PolicyRow]:
        try:
            shared_key = await self._shared_key(organisation_id, workspace_id, agent_id)
            raw = await self._cache.get(shared_key)
        except Exception as exc:
            # The database still answers for the shared cache, only slower.
            logger.warning("shared cache unavailable for policies", extra={"error": repr(exc)})
            return await self._load_rows(organisation_id, workspace_id, agent_id)
        if raw is not None:
            return [PolicyRow(**item) for item in orjson.loads(raw)]
        rows = await self._load_rows(organisation_id, workspace_id, agent_id)
        if self._epoch == epoch:
            try:
                payload = orjson.dumps([row.as_dict() for row in rows])
            except TypeError:  # orjson.JSONEncodeError: compile_guardrail says which row, and why
                return rows
            with contextlib.suppress(Exception):
                await self._cache.set(shared_key, payload, ttl_seconds=self._ttl)
        return rows

    async def _shared_key(self, organisation_id: str, workspace_id: str, agent_id: str) -> str:
        everything = await self._cache.get(GLOBAL_GENERATION_KEY) or b"0"
        organisation = await self._cache.get(_organisation_generation_key(organisation_id)) or b"0"
        return (
            f"cerberus:policies:{everything.decode()}:{organisation.decode()}:"
            f"{organisation_id}:{workspace_id}:{agent_id}"
        )

    async def _load_rows(
        self, organisation_id: str, workspace_id: str, agent_id: str
    ) -> list[PolicyRow]:
        query = select(Policy).where(
            Policy.organisation_id == organisation_id,
            Policy.enabled.is_(True),
            Policy.deleted_at.is_(None),
            or_(Policy.workspace_id.is_(None), Policy.workspace_id == workspace_id),
            or_(Policy.agent_id.is_(None), Policy.agent_id == agent_id),
        )
        async with self._sessions()() as session:
            policies = (await session.scalars(query)).all()
        chosen = effective_policies(policies, workspace_id, agent_id)
        return [
            PolicyRow(p.id, p.name, p.guardrail_type, p.action, dict(p.config or {}))
            for p in chosen.values()
        ]

    def _on_invalidation(self, raw: bytes) -> None:
        if self._closed:
            return
        try:
            event = Invalidation.decode(raw)
        except Exception:
            logger.warning("ignored a malformed invalidation message")
            return
        if event.kind == "tool_pin":
            self.pins.invalidate(event.workspace_id)
            return
        self._epoch += 1
        organisation_id = event.organisation_id or self._organisation_of(event)
        for key, entry in list(self._entries.items()):
            if _affects(event, entry):
                del self._entries[key]
        self._spawn(self._bump_generation(organisation_id))

    def _organisation_of(self, event: Invalidation) -> str | None:
        if event.kind == "organisation":
            return event.id
        return None

    async def _bump_generation(self, organisation_id: str | None) -> None:
        key = (
            _organisation_generation_key(organisation_id)
            if organisation_id is not None
            else GLOBAL_GENERATION_KEY
        )
        try:
            await self._cache.set(key, uuid.uuid4().hex.encode())
        except Exception:
            logger.exception("could not move the shared policy cache to a new generation")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _organisation_generation_key(organisation_id: str) -> str:
    return f"cerberus:policies:gen:{organisation_id}"


def _affects(event: Invalidation, entry: _Entry) -> bool:
    if event.kind == "organisation":
        return entry.organisation_id == event.id
    if event.kind == "workspace":
        return entry.workspace_id == event.id
    if event.kind == "agent":
        return entry.agent_id == event.id
    # A policy: narrowed to its workspace or organisation when the event says which.
    if event.workspace_id is not None:
        return entry.workspace_id == event.workspace_id
    if event.organisation_id is not None:
        return entry.organisation_id == event.organisation_id
    return True
