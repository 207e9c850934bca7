"""How many requests an agent may make in any sixty seconds, across every gateway instance."""

from __future__ import annotations

from cerberus.guardrails.rate_limit import SlidingWindowLimit


class RateLimitPerMinute(SlidingWindowLimit):
    type = "rate_limit_per_minute"
    description = "An exact sliding window of requests per agent per minute (optionally per tool)."
    window_seconds = 60.0
    window_name = "minute"
