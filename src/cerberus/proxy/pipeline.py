"""The decision pipeline: every message in either direction passes one Pipeline, which decides."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cerberus.guardrails import (
    CheckContext,
    Direction,
    Family,
    Finding,
    Guardrail,
    Outcome,
    Verdict,
)

logger = logging.getLogger("cerberus.pipeline")

# Product spec §4: request side RBAC, rate limit, content, PII, secrets, injection;
# response side secrets, PII, content, injection (tool pinning and RBAC list filtering too).
ORDER: dict[Direction, tuple[Family, ...]] = {
    Direction.REQUEST: (
        Family.RBAC,
        # A call to a tool whose changed definition awaits approval is refused before counting.
        Family.PINNING,
        Family.RATE_LIMIT,
        Family.CONTENT,
        Family.PII,
        Family.SECRETS,
        Family.INJECTION,
    ),
    Direction.RESPONSE: (
        Family.RBAC,
        Family.PINNING,
        Family.SECRETS,
        Family.PII,
        Family.CONTENT,
        Family.INJECTION,
    ),
}


@dataclass
class Decision:
    """What the pipeline decided for one message, with what the audit trail needs."""

    decision_id: str
    outcome: Outcome
    message: dict[str, Any]
    triggered: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    retry_after_seconds: float | None = None
    processing_ms: float = 0.0

    @property
    def blocked(self) -> bool:
        return self.outcome in (Outcome.BLOCK, Outcome.THROTTLE)

    @property
    def guardrails_triggered(self) -> list[str]:
        return [entry["guardrail"] for entry in self.triggered]


def new_decision_id() -> str:
    return uuid.uuid4().hex


class Pipeline:
    """The compiled guardrails for one (workspace, agent), in pipeline order per direction."""

    def __init__(self, guardrails: Sequence[Guardrail] = (), *, fail_mode: str = "closed") -> None:
        self.fail_mode = fail_mode
        self._by_direction = {direction: _ordered(guardrails, direction) for direction in Direction}

    def guardrails(self, direction: Direction) -> tuple[Guardrail, ...]:
        return self._by_direction[direction]

    async def decide(self, message: dict[str, Any], context: CheckContext) -> Decision:
        started = time.perf_counter()
        decision = Decision(new_decision_id(), Outcome.ALLOW, message)
        for guardrail in self._by_direction[context.direction]:
            try:
                verdict = await guardrail.check_async(decision.message, context)
            except Exception:
                logger.exception(
                    "guardrail failed",
                    extra={"guardrail": guardrail.type, "fail_mode": self.fail_mode},
                )
                if self.fail_mode == "open":
                    continue
                verdict = Verdict(
                    Outcome.BLOCK,
                    guardrail.type,
                    (Finding("evaluation_error", 1),),
                    "policy evaluation failed; blocked (fail_mode closed)",
                )
            _apply(decision, guardrail, verdict)
            if decision.blocked:
                break
        decision.processing_ms = (time.perf_counter() - started) * 1000
        return decision


def _ordered(guardrails: Sequence[Guardrail], direction: Direction) -> tuple[Guardrail, ...]:
    order = ORDER[direction]
    chosen = [g for g in guardrails if direction in g.directions and g.family in order]
    return tuple(sorted(chosen, key=lambda g: order.index(g.family)))


def _apply(decision: Decision, guardrail: Guardrail, verdict: Verdict) -> None:
    if verdict.outcome is Outcome.ALLOW:
        return
    decision.triggered.append(
        {
            "guardrail": verdict.guardrail or guardrail.type,
            "action": verdict.outcome.value,
            "findings": [finding.as_dict() for finding in verdict.findings],
        }
    )
    if verdict.outcome is Outcome.MODIFY and verdict.message is not None:
        decision.message = verdict.message
        if decision.outcome is Outcome.ALLOW or decision.outcome is Outcome.LOG_ONLY:
            decision.outcome = Outcome.MODIFY
    elif verdict.outcome is Outcome.LOG_ONLY:
        if decision.outcome is Outcome.ALLOW:
            decision.outcome = Outcome.LOG_ONLY
    elif verdict.outcome in (Outcome.BLOCK, Outcome.THROTTLE):
        decision.outcome = verdict.outcome
        decision.reason = verdict.reason
        decision.retry_after_seconds = verdict.retry_after_seconds
