"""How many requests an agent may make in any hour, across every gateway instance."""

from __future__ import annotations

from cerberus.guardrails.rate_limit import SlidingWindowLimit


class RateLimitPerHour(SlidingWindowLimit):
    type = "rate_limit_per_hour"
    description = "An exact sliding window of requests per agent per hour (optionally per tool)."
    window_seconds = 3600.0
    window_name = "hour"
