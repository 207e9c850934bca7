"""Agent key -> agent, workspace and upstream, answered from memory on the proxy's hot path.

Entries live in a per-process dict backed by the shared cache; the database is read only on
a miss. Every instance subscribes to the invalidation channel and drops what a control-plane
change made stale (a revoked key stops working everywhere within a second); a short TTL is
the safety net for a lost message. Expiry, revocation and the rotation grace period are
checked on every request, so time alone also ends a key.

An entry's `cached_at` is taken before its row is read: a change committed while the read
was in flight makes it stale. An instance writes an entry it loaded to the shared cache only
if it heard no invalidation meanwhile, and every instance that hears one leaves a "changed
at" marker there: an entry older than the marker is read from the database again, even by an
instance that did not hear the change (it started later, or lost the message). The markers
are read only on a miss in memory, never on the hot path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cerberus.agents.keys import hash_key
from cerberus.agents.models import Agent
from cerberus.cache import Cache
from cerberus.invalidation import CHANNEL, Invalidation
from cerberus.single_flight import run_once
from cerberus.sweeping import Sweeper
from cerberus.tenancy.models import Organisation, Workspace

# Read at use: tests swap app.state.sessionmaker for one bound to a rolled-back connection.
SessionmakerSource = Callable[[], async_sessionmaker[AsyncSession]]

logger = logging.getLogger("cerberus.agents.lookup")

ENTRY_TTL_SECONDS = 30.0
UNKNOWN_TTL_SECONDS = 2.0
HASH_INDEX_TTL_SECONDS = 24 * 3600.0
UNSUBSCRIBED_TTL_SECONDS = 1.0
# A change's marker outlives every shared entry read before the change: those are written at
# most a load's time after it, and live ENTRY_TTL_SECONDS at most.
CHANGED_TTL_SECONDS = 2 * ENTRY_TTL_SECONDS


@dataclass(frozen=True)
class AgentEntry:
    """What the proxy needs to know about one agent; timestamps are epoch seconds."""

    agent_id: str
    organisation_id: str
    workspace_id: str
    upstream_url: str
    fail_mode: str
    key_hash: str
    previous_key_hash: str | None
    previous_key_expires_at: float | None
    expires_at: float | None
    revoked_at: float | None
    active: bool
    # When the entry's row began to be read from the database (epoch seconds, the reading
    # instance's clock): a change committed after this may be missing from it.
    cached_at: float = 0.0

    def refusal(self, presented_hash: str, now: float) -> str | None:
        """Why this key may not be used right now, or None when it may."""
        if not self.active:
            return "agent's workspace or organisation is inactive"
        if self.revoked_at is not None and self.revoked_at <= now:
            return "key revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "key expired"
        if presented_hash == self.key_hash:
            return None
        if presented_hash == self.previous_key_hash:
            if self.previous_key_expires_at is not None and self.previous_key_expires_at > now:
                return None
            return "key rotated"
        return "unknown key"


class AgentLookup:
    def __init__(self, sessionmaker: SessionmakerSource, cache: Cache, *, ttl: float) -> None:
        self._sessionmaker = sessionmaker
        self._cache = cache
        self._ttl = min(ttl, ENTRY_TTL_SECONDS)
        self._by_hash: dict[str, tuple[AgentEntry | None, float]] = {}
        # Unknown keys above all (anyone can send one) are dropped once expired.
        self._sweeper = Sweeper()
        self._loading: dict[str, asyncio.Future[AgentEntry | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Bumped by every invalidation: a load that raced one is used once, never cached.
        self._generation = 0
        # When this instance last heard each object changed: a shared entry read from the
        # database before that is stale, even if no instance has deleted it yet.
        self._changed_at: dict[str, float] = {}
        self._subscribed = False

    async def start(self) -> None:
        if not await self._try_subscribe():
            self._spawn(self._subscribe_later())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _try_subscribe(self) -> bool:
        try:
            await self._cache.subscribe(CHANNEL, self._on_invalidation)
        except Exception as exc:
            logger.warning("cannot subscribe to invalidations yet", extra={"error": repr(exc)})
            return False
        self._subscribed = True
        return True

    async def _subscribe_later(self) -> None:
        # The gateway starts while the cache is down; until it hears invalidations, entries
        # live for one second only (see resolve).
        while True:
            await asyncio.sleep(1.0)
            if await self._try_subscribe():
                return

    async def resolve(self, key: str) -> tuple[AgentEntry | None, str]:
        """The agent for a presented key and "" , or None and the reason it is refused."""
        presented = hash_key(key)
        now = time.time()
        cached = self._by_hash.get(presented)
        if cached is not None and cached[1] > time.monotonic():
            entry = cached[0]
        else:
            # When an entry expires under load every request in flight for that agent misses
            # at once: they share one load.
            entry = await run_once(self._loading, presented, lambda: self._load_and_keep(presented))
        if entry is None:
            return None, "unknown key"
        reason = entry.refusal(presented, now)
        return (None, reason) if reason else (entry, "")

    async def _load_and_keep(self, presented: str) -> AgentEntry | None:
        generation = self._generation
        entry = await self._load(presented, generation)
        if generation == self._generation:
            ttl = self._ttl if entry is not None else UNKNOWN_TTL_SECONDS
            if not self._subscribed:
                ttl = min(ttl, UNSUBSCRIBED_TTL_SECONDS)
            self._keep(presented, entry, ttl)
        return entry

    def _keep(self, presented: str, entry: AgentEntry | None, ttl: float) -> None:
        now = time.monotonic()
        self._sweeper.before_insert(self._by_hash, lambda kept: kept[1] <= now)
        self._by_hash[presented] = (entry, now + ttl)

    async def _load(self, presented: str, generation: int) -> AgentEntry | None:
        try:
            shared = await self._shared(presented)
        except Exception as exc:
            # The shared cache is a shortcut, not the source: go to the database.
            logger.warning("shared cache unavailable for key lookup", extra={"error": repr(exc)})
            return await self._query(presented)
        if shared is not None:
            return shared
        entry = await self._query(presented)
        if entry is not None:
            try:
                await self._cache.set(
                    f"cerberus:agent-key:{presented}",
                    entry.agent_id.encode(),
                    HASH_INDEX_TTL_SECONDS,
                )
                # An invalidation heard during the load: the row may predate the change, and
                # the instances that heard it have deleted the shared entry already. Writing
                # it back would hand them the old row (this request alone uses it).
                if generation == self._generation:
                    await self._cache.set(
                        f"cerberus:agent:{entry.agent_id}", orjson.dumps(asdict(entry)), self._ttl
                    )
            except Exception as exc:
                logger.warning(
                    "shared cache unavailable for key lookup", extra={"error": repr(exc)}
                )
        return entry

    async def _shared(self, presented: str) -> AgentEntry | None:
        """The shared cache's entry for the key, unless a change since it was read is known."""
        agent_id = await self._cache.get(f"cerberus:agent-key:{presented}")
        if agent_id is None:
            return None
        raw = await self._cache.get(f"cerberus:agent:{agent_id.decode()}")
        if raw is None:
            return None
        entry = AgentEntry(**orjson.loads(raw))
        if self._stale(entry):
            return None
        # What this instance did not hear (it started after the change, or lost the message)
        # the markers the instances that heard it left say: one round trip for the three.
        markers = await asyncio.gather(
            *(self._cache.get(_changed_key(kind, object_id)) for kind, object_id in _owners(entry))
        )
        if any(marker is not None and entry.cached_at <= float(marker) for marker in markers):
            return None
        return entry

    async def _query(self, presented: str) -> AgentEntry | None:
        # Before the row is read: a change committed while the query and the session's close
        # are in flight is later than the entry, so whoever hears of it knows the entry is
        # stale (stamped after them, the old row looked newer than the change).
        cached_at = time.time()
        statement = (
            select(Agent, Workspace, Organisation)
            .join(Workspace, Workspace.id == Agent.workspace_id)
            .join(Organisation, Organisation.id == Agent.organisation_id)
            .where(or_(Agent.key_hash == presented, Agent.previous_key_hash == presented))
        )
        async with self._sessionmaker()() as session:
            row = (await session.execute(statement)).first()
        if row is None:
            return None
        agent, workspace, organisation = row
        settings: dict[str, Any] = workspace.settings or {}
        return AgentEntry(
            agent_id=agent.id,
            organisation_id=agent.organisation_id,
            workspace_id=agent.workspace_id,
            upstream_url=workspace.mcp_server_url,
            fail_mode="open" if settings.get("fail_mode") == "open" else "closed",
            key_hash=agent.key_hash,
            previous_key_hash=agent.previous_key_hash,
            previous_key_expires_at=_epoch(agent.previous_key_expires_at),
            expires_at=_epoch(agent.expires_at),
            revoked_at=_epoch(agent.revoked_at),
            active=bool(
                workspace.is_active
                and workspace.deleted_at is None
                and organisation.is_active
                and organisation.deleted_at is None
            ),
            cached_at=cached_at,
        )

    def _stale(self, entry: AgentEntry) -> bool:
        changed = max(
            self._changed_at.get(f"agent:{entry.agent_id}", 0.0),
            self._changed_at.get(f"workspace:{entry.workspace_id}", 0.0),
            self._changed_at.get(f"organisation:{entry.organisation_id}", 0.0),
        )
        return entry.cached_at <= changed

    def _on_invalidation(self, raw: bytes) -> None:
        try:
            event = Invalidation.decode(raw)
        except Exception:
            # An unreadable message may have been about anything: start again from the source.
            logger.warning("unreadable invalidation; dropping every cached agent")
            self._generation += 1
            self._by_hash.clear()
            return
        if event.kind not in ("agent", "workspace", "organisation"):
            return
        self._generation += 1
        now = time.time()
        if len(self._changed_at) > 10_000:
            # Older than any shared entry's TTL: those entries have expired anyway.
            self._changed_at = {
                key: at for key, at in self._changed_at.items() if at > now - self._ttl
            }
        self._changed_at[f"{event.kind}:{event.id}"] = now
        stale = {
            entry.agent_id
            for entry, _ in self._by_hash.values()
            if entry is not None and _affected(entry, event)
        }
        if event.kind == "agent":
            stale.add(event.id)
        self._by_hash = {
            h: (entry, expiry)
            for h, (entry, expiry) in self._by_hash.items()
            if entry is not None and entry.agent_id not in stale
        }
        self._spawn(self._forget_shared(event, now, stale))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forget_shared(self, event: Invalidation, at: float, agent_ids: set[str]) -> None:
        try:
            await self._cache.set(
                _changed_key(event.kind, event.id), repr(at).encode(), CHANGED_TTL_SECONDS
            )
        except Exception:
            logger.exception("could not mark a change in the shared cache")
        for agent_id in agent_ids:
            try:
                await self._cache.delete(f"cerberus:agent:{agent_id}")
            except Exception:
                logger.exception("could not drop a shared agent entry")


def _owners(entry: AgentEntry) -> tuple[tuple[str, str], ...]:
    """The objects whose change makes the entry stale, as (kind, id)."""
    return (
        ("agent", entry.agent_id),
        ("workspace", entry.workspace_id),
        ("organisation", entry.organisation_id),
    )


def _changed_key(kind: str, object_id: str) -> str:
    return f"cerberus:agent-changed:{kind}:{object_id}"


def _affected(entry: AgentEntry, event: Invalidation) -> bool:
    if event.kind == "agent":
        return entry.agent_id == event.id
    if event.kind == "workspace":
        return entry.workspace_id == event.id
    return entry.organisation_id == event.id


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
