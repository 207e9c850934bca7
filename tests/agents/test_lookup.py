"""The proxy's key lookup: what it keeps in memory, and for how long."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from cerberus.agents import lookup
from cerberus.app import CerberusApp


async def test_unknown_keys_are_not_kept_after_they_expire(
    app: CerberusApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every unknown key (anyone can send one) was kept for the life of the process: memory
    # grew with each distinct key presented. Expired entries are now swept as the dict grows.
    agents: lookup.AgentLookup = app.state.agents
    # The lookup's own clock, stopped: the loops take longer than an unknown key's TTL.
    start = time.monotonic()
    clock = SimpleNamespace(monotonic=lambda: start, time=time.time)
    monkeypatch.setattr(lookup, "time", clock)
    for number in range(1500):
        assert await agents.resolve(f"sk-cerb-unknown-{number}") == (None, "unknown key")
    assert len(agents._by_hash) == 1500
    later = start + lookup.UNKNOWN_TTL_SECONDS + 1
    clock.monotonic = lambda: later
    for number in range(1500, 3000):
        await agents.resolve(f"sk-cerb-unknown-{number}")
    # The first 1,500 expired and went at the sweep (at 2,048 entries); the new ones stay.
    assert len(agents._by_hash) == 1500
    assert all(until > later for _, until in agents._by_hash.values())
