"""CPU per call of the rate-limit script on Redis, in process: what PostgreSQL + Redis adds.

Every proxied call under rate limits runs one script over all its windows
(`RedisCache.hit_sliding_windows`). Both benchmark limits (per minute and per hour, far from
full) on Redis DB 8 of 127.0.0.1:6379, through the gateway's own client (cache/resp.py); the
process's CPU over 2,000 calls, best of 5.

    .venv/bin/python -m bench.rate_limit_cost
"""

from __future__ import annotations

import resource

import orjson
import uvloop

from bench.gateway import REDIS_URL
from cerberus.cache import Window
from cerberus.cache.redis import RedisCache

CALLS = 2000
ROUNDS = 5


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure() -> dict[str, object]:
    cache = RedisCache(REDIS_URL, pool_size=10)
    windows = [
        Window("bench:rate:minute", 10_000_000, 60.0),
        Window("bench:rate:hour", 100_000_000, 3600.0),
    ]
    try:
        for _ in range(300):
            await cache.hit_sliding_windows(windows)
        best = float("inf")
        for _ in range(ROUNDS):
            started = _cpu()
            for _ in range(CALLS):
                await cache.hit_sliding_windows(windows)
            best = min(best, (_cpu() - started) * 1e6 / CALLS)
        await cache.delete("bench:rate:minute")
        await cache.delete("bench:rate:hour")
    finally:
        await cache.close()
    return {"cpu_us_per_call": round(best, 1)}


def main() -> None:
    print(orjson.dumps(uvloop.run(measure()), option=orjson.OPT_INDENT_2).decode())  # noqa: T201


if __name__ == "__main__":
    main()
