"""The control plane's database session per request, as a FastAPI dependency.

Apart from `db.py` so that the proxy, which imports the database module, does not import
FastAPI (the control plane is loaded on its first request, `control_plane.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cerberus.invalidation import publish_pending


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; it commits once, before the response is sent."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session
        await session.commit()
        await publish_pending(session, request.app.state.cache)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
