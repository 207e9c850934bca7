"""Pinned tool definitions per workspace, kept in memory for the hot path.

The `tool_pinning` guardrail compares each tool in a `tools/list` answer with the hash pinned
for its workspace. Reading pins must not touch the database, so the pipeline cache loads them
when it builds a pipeline that pins (shared cache first, database on a cold miss), and new pins
and pending changes are written by a background task. After a write, and after an admin's
approval or unpinning, a `tool_pin` invalidation makes every instance reload that workspace's
pins if it has them, and drop the workspace's shared entry otherwise.

A lost invalidation (a subscription down, no instance holding the workspace) must not keep an
approved tool blocked: pins are kept for the TTL from when they were read from the database
(a shared entry carries that time), then read again in the background. The hot path never
waits for that; it reads whatever is in memory. Beside the pins, each store keeps its
instance's `ToolCatalogue` (policies/tool_catalogue.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cerberus.cache import Cache
from cerberus.invalidation import CHANNEL, Invalidation
from cerberus.policies.models import ToolPin
from cerberus.policies.tool_catalogue import ToolCatalogue

logger = logging.getLogger("cerberus.pins")

# The key under which CompiledPipeline hands this store to guardrails in CheckContext.extras.
PIN_STORE_EXTRA = "cerberus.tool_pins"
# The parts of a tool that change what the model is told or what the tool accepts and returns.
HASHED_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
WRITE_ATTEMPTS = 5
# How often expired pins are looked for (at most; a shorter TTL looks four times per TTL), and
# when a refresh that failed (database and shared cache down) is tried again. Until then the
# pins in memory stay in use: a database outage must not unpin or block every tool.
REFRESH_CHECK_SECONDS = 1.0
REFRESH_RETRY_SECONDS = 1.0

# Asked on each use, so tests that swap app.state.sessionmaker for a rolled-back one are seen.
SessionSource = Callable[[], async_sessionmaker[AsyncSession]]


def definition_of(tool: Mapping[str, Any]) -> dict[str, Any]:
    return {name: tool[name] for name in HASHED_FIELDS if name in tool}


def definition_hash(tool: Mapping[str, Any]) -> str:
    canonical = orjson.dumps(definition_of(tool), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


@dataclass
class PinState:
    hash: str
    pending_hash: str | None = None


@dataclass
class Observation:
    """What one tools/list answer showed against the pins: indexes into result.tools."""

    new: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Write:
    workspace_id: str
    tool_name: str
    hash: str
    definition: dict[str, Any]
    # True: a changed definition to record as pending; False: a first pin.
    pending: bool


class PinStore:
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
        self._pins: dict[str, dict[str, PinState]] = {}
        # When each workspace's pins are to be read again (time.monotonic()).
        self._expires_at: dict[str, float] = {}
        # When a pipeline of each workspace was last built (time.monotonic()): one in use is
        # rebuilt at least once a TTL, and only those are refreshed.
        self._built_at: dict[str, float] = {}
        # When this instance heard each workspace's pins changed (time.time()): a shared entry
        # read from the database before that is stale, even if no instance deleted it yet.
        self._changed_at: dict[str, float] = {}
        self._everything_changed_at = 0.0
        self._loading: dict[str, asyncio.Lock] = {}
        self._writes: asyncio.Queue[_Write] = asyncio.Queue()
        # Pins observed here but not yet in the database: a reload must not forget them.
        self._unwritten: dict[tuple[str, str], PinState] = {}
        self._queued: Counter[tuple[str, str]] = Counter()
        # Bumped after each commit of ours and each change heard of, so a reload that
        # overlapped one reads again.
        self._generation = 0
        self._writer: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.catalogue = ToolCatalogue(cache, self._spawn)

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever())
        self._refresher = asyncio.create_task(self._refresh_forever())

    async def close(self) -> None:
        await self.flush()
        self._closed = True
        tasks = [*self._tasks, *(task for task in (self._writer, self._refresher) if task)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def flush(self) -> None:
        """Wait until every queued write is in the database (tests, shutdown)."""
        if self._writer is not None and not self._writer.done():
            await self._writes.join()

    # Pins: loading (cold path) ---------------------------------------------------------

    def loaded(self, workspace_id: str) -> bool:
        return workspace_id in self._pins

    def _fresh(self, workspace_id: str) -> bool:
        return (
            workspace_id in self._pins
            and self._expires_at.get(workspace_id, 0.0) > time.monotonic()
        )

    async def ensure_loaded(self, workspace_id: str) -> None:
        """Load the workspace's pins if they are not in memory (a pipeline build asks). Pins
        that expired are read again by the refresher, off the request path: a read here
        failing (the database down) would make the build fail and block the workspace."""
        self._built_at[workspace_id] = time.monotonic()
        if workspace_id not in self._pins:
            await self.reload(workspace_id, from_database=False)

    async def reload(self, workspace_id: str, *, from_database: bool = True) -> None:
        """Read the pins again: from the database, or (not from_database, when those in memory
        are missing or expired) from the shared cache if its entry is recent enough."""
        lock = self._loading.setdefault(workspace_id, asyncio.Lock())
        async with lock:
            if not from_database and self._fresh(workspace_id):
                return
            key = _pins_key(workspace_id)
            shared = None
            if not from_database:
                with contextlib.suppress(Exception):
                    shared = self._usable(workspace_id, await self._cache.get(key))
            if shared is not None:
                read_at, pins = shared
            else:
                while True:
                    generation = self._generation
                    # Taken before the query: the rows are at least this recent.
                    read_at = time.time()
                    pins = await self._load(workspace_id)
                    if generation == self._generation:
                        break
                payload = [read_at, {name: state.__dict__ for name, state in pins.items()}]
                with contextlib.suppress(Exception):
                    await self._cache.set(key, orjson.dumps(payload), ttl_seconds=self._ttl)
            for (workspace, name), state in self._unwritten.items():
                if workspace == workspace_id:
                    pins[name] = state
            self._pins[workspace_id] = pins
            age = min(max(time.time() - read_at, 0.0), self._ttl)
            self._expires_at[workspace_id] = time.monotonic() + self._ttl - age

    def _usable(
        self, workspace_id: str, raw: bytes | None
    ) -> tuple[float, dict[str, PinState]] | None:
        """A shared entry's pins and when they were read from the database, unless it is as
        old as the TTL or older than a change this instance heard of."""
        if raw is None:
            return None
        read_at, stored = orjson.loads(raw)
        changed = max(self._changed_at.get(workspace_id, 0.0), self._everything_changed_at)
        if read_at <= changed or time.time() - read_at >= self._ttl:
            return None
        return read_at, {name: PinState(**state) for name, state in stored.items()}

    async def _load(self, workspace_id: str) -> dict[str, PinState]:
        async with self._sessions()() as session:
            rows = (
                await session.scalars(select(ToolPin).where(ToolPin.workspace_id == workspace_id))
            ).all()
        return {row.tool_name: PinState(row.definition_hash, row.pending_hash) for row in rows}

    def invalidate(self, workspace_id: str | None) -> None:
        """A pin changed (an approval, an unpin, a pin written by any instance): reload the
        workspace (every loaded one, if not said), or drop its shared entry if not loaded, so
        no instance loads it as it was before the change."""
        self._generation += 1
        now = time.time()
        if workspace_id is None:
            self._everything_changed_at = now
            targets = list(self._pins)
        else:
            if len(self._changed_at) > 10_000:
                # Older than any shared entry that is still used.
                self._changed_at = {
                    ws: at for ws, at in self._changed_at.items() if at > now - self._ttl
                }
            self._changed_at[workspace_id] = now
            targets = [workspace_id]
        for target in targets:
            if target in self._pins:
                # Reading the database also replaces the shared entry.
                self._spawn(self._reload_logged(target))
            else:
                self._spawn(self._forget_shared(target))

    async def _reload_logged(self, workspace_id: str) -> None:
        try:
            await self.reload(workspace_id)
        except Exception:
            logger.exception("could not reload tool pins", extra={"workspace_id": workspace_id})
            # Those in memory are known to be stale: the refresher tries again soon.
            if workspace_id in self._expires_at:
                self._expires_at[workspace_id] = time.monotonic() + REFRESH_RETRY_SECONDS

    async def _forget_shared(self, workspace_id: str) -> None:
        try:
            await self._cache.delete(_pins_key(workspace_id))
        except Exception:
            logger.warning("could not drop shared tool pins", extra={"workspace_id": workspace_id})

    async def _refresh_forever(self) -> None:
        """Read expired pins again, off the request path: the safety net for a lost event."""
        every = max(min(REFRESH_CHECK_SECONDS, self._ttl / 4), 0.05)
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            in_use = now - 2 * self._ttl
            expired = [
                ws
                for ws, at in self._expires_at.items()
                if at <= now and self._built_at.get(ws, now) >= in_use
            ]
            for workspace_id in expired:
                try:
                    await self.reload(workspace_id, from_database=False)
                except Exception as exc:
                    logger.warning(
                        "could not refresh tool pins; keeping those in memory",
                        extra={"workspace_id": workspace_id, "error": repr(exc)},
                    )
                    self._expires_at[workspace_id] = time.monotonic() + REFRESH_RETRY_SECONDS

    # Pins: the hot path (memory only) ---------------------------------------------------

    def observe(self, workspace_id: str, tools: list[Any]) -> Observation:
        """Compare a tools/list answer with the pins; queue first pins and pending changes."""
        pins = self._pins.get(workspace_id)
        if pins is None:
            raise RuntimeError(f"tool pins for workspace {workspace_id} are not loaded")
        observation = Observation()
        for index, tool in enumerate(tools):
            if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
                continue
            name = tool["name"]
            digest = definition_hash(tool)
            state = pins.get(name)
            if state is None:
                observation.new.append(index)
                pins[name] = state = PinState(digest)
                self._queue(state, _Write(workspace_id, name, digest, definition_of(tool), False))
            elif digest != state.hash:
                observation.changed.append(index)
                if state.pending_hash != digest:
                    state.pending_hash = digest
                    self._queue(
                        state, _Write(workspace_id, name, digest, definition_of(tool), True)
                    )
            elif state.pending_hash is not None:
                # The server went back to the approved definition: nothing awaits approval.
                state.pending_hash = None
                self._queue(state, _Write(workspace_id, name, digest, definition_of(tool), True))
        return observation

    def awaiting_approval(self, workspace_id: str, tool_name: str) -> bool:
        pins = self._pins.get(workspace_id)
        if pins is None:
            raise RuntimeError(f"tool pins for workspace {workspace_id} are not loaded")
        state = pins.get(tool_name)
        return state is not None and state.pending_hash is not None

    def _queue(self, state: PinState, write: _Write) -> None:
        key = (write.workspace_id, write.tool_name)
        self._unwritten[key] = state
        self._queued[key] += 1
        self._writes.put_nowait(write)

    def _written(self, write: _Write) -> None:
        key = (write.workspace_id, write.tool_name)
        self._queued[key] -= 1
        if self._queued[key] <= 0:
            del self._queued[key]
            self._unwritten.pop(key, None)

    # Pins: the writer (off the request path) --------------------------------------------

    async def _write_forever(self) -> None:
        while True:
            write = await self._writes.get()
            try:
                await self._write_with_retries(write)
                self._generation += 1
            except Exception:
                # Forgotten locally too: the next tools/list finds the tool again and re-queues.
                logger.exception(
                    "could not store a tool pin", extra={"workspace_id": write.workspace_id}
                )
            else:
                await self._announce(write.workspace_id, write.tool_name)
            finally:
                self._written(write)
                self._writes.task_done()

    async def _announce(self, workspace_id: str, tool_name: str) -> None:
        """Every instance (this one too) reloads the workspace's pins from the database."""
        try:
            await self._cache.delete(_pins_key(workspace_id))
            event = Invalidation("tool_pin", tool_name, workspace_id=workspace_id)
            await self._cache.publish(CHANNEL, event.encode())
        except Exception:
            logger.warning(
                "could not announce a tool pin change", extra={"workspace_id": workspace_id}
            )

    async def _write_with_retries(self, write: _Write) -> None:
        # A concurrent writer can make SQLite refuse a transaction at once ("database is
        # locked" on a stale snapshot); a short wait and a fresh transaction succeed.
        for attempt in range(WRITE_ATTEMPTS):
            try:
                await self._write(write)
                return
            except OperationalError:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)

    async def _write(self, write: _Write) -> None:
        async with self._sessions()() as session:
            pin = await session.scalar(
                select(ToolPin).where(
                    ToolPin.workspace_id == write.workspace_id,
                    ToolPin.tool_name == write.tool_name,
                )
            )
            if pin is None:
                if write.pending:
                    return
                session.add(
                    ToolPin(
                        workspace_id=write.workspace_id,
                        tool_name=write.tool_name,
                        definition_hash=write.hash,
                        definition=write.definition,
                    )
                )
            elif write.pending and write.hash == pin.definition_hash:
                pin.pending_hash = None
                pin.pending_definition = None
            elif write.pending:
                pin.pending_hash = write.hash
                pin.pending_definition = write.definition
            else:
                return  # pinned already (by another instance): the first pin stands
            with contextlib.suppress(IntegrityError):
                await session.commit()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            coroutine.close()
            return
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _pins_key(workspace_id: str) -> str:
    # [read from the database at (epoch seconds), {tool name: pin}]. Not the name of the
    # earlier format ({tool name: pin}), which instances of an older release still read.
    return f"cerberus:tool-pins:{workspace_id}"
