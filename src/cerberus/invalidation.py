"""Telling every instance that a control-plane object changed, once the change is committed.

Services call `invalidate_after_commit(session, ...)`; the request's session dependency
publishes the queued events on the shared cache after its commit succeeds, so no instance
can reload the old row in between. Subscribers (key lookup, compiled pipelines) drop what
they cached; a TTL on every cached entry is the safety net if a message is lost.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Literal

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.cache import Cache

CHANNEL = "cerberus:invalidate"
_PENDING = "cerberus.pending_invalidations"

logger = logging.getLogger("cerberus.invalidation")

ObjectKind = Literal["organisation", "workspace", "agent", "policy", "tool_pin"]


@dataclass(frozen=True)
class Invalidation:
    kind: ObjectKind
    id: str
    organisation_id: str | None = None
    workspace_id: str | None = None

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: bytes) -> Invalidation:
        data = orjson.loads(raw)
        return cls(
            kind=data["kind"],
            id=data["id"],
            organisation_id=data.get("organisation_id"),
            workspace_id=data.get("workspace_id"),
        )


def invalidate_after_commit(session: AsyncSession, event: Invalidation) -> None:
    pending: list[Invalidation] = session.info.setdefault(_PENDING, [])
    if event not in pending:
        pending.append(event)


async def publish_pending(session: AsyncSession, cache: Cache) -> None:
    """Called after a successful commit; a failed publish is logged, the TTL still applies."""
    pending: list[Invalidation] = session.info.pop(_PENDING, [])
    for event in pending:
        try:
            await cache.publish(CHANNEL, event.encode())
        except Exception:
            logger.exception("could not publish invalidation", extra={"kind": event.kind})
