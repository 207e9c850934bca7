"""The decision pipeline: every message in either direction passes one Pipeline, which decides."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from cerberus.guardrails import (
    CheckContext,
    Direction,
    Family,
    Finding,
    Guardrail,
    Outcome,
    Verdict,
)
from cerberus.guardrails.rate_limit import RATE_LIMITS
from cerberus.guardrails.text_checks import (
    OFFLOAD_BYTES,
    SETTLE_REFUSAL,
    SETTLE_ROUNDS,
    DetectorGuardrail,
    TextGuardrail,
    TextPass,
    merge_findings,
    run_sized,
)
from cerberus.ids import time_ordered_hex
from cerberus.scanning import Scanner, scanner

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
    # Time first, then 80 random bits: audit rows are indexed by decision id (cerberus/ids.py).
    return time_ordered_hex()


class Pipeline:
    """The compiled guardrails for one (workspace, agent), in pipeline order per direction.

    The text guardrails of a direction share one `TextPass` per message: one walk, one scan
    with the union of their detectors (compiled here, once), one copy for all redactions.
    """

    def __init__(self, guardrails: Sequence[Guardrail] = (), *, fail_mode: str = "closed") -> None:
        self.fail_mode = fail_mode
        self._by_direction = {direction: _ordered(guardrails, direction) for direction in Direction}
        self._steps = {
            direction: _steps(self._by_direction[direction], direction) for direction in Direction
        }
        # The detector groups each direction's text guardrails read, in the order they ask.
        self._asks = {direction: _asks(self._steps[direction]) for direction in Direction}
        self._settlers = {direction: _settlers(self._steps[direction]) for direction in Direction}
        self._scanners = {
            direction: _union_scanner(self._asks[direction]) for direction in Direction
        }
        # A message's rate limits are counted together, in one atomic cache call: the first
        # of them to run reads this tuple from the context (guardrails/rate_limit.py).
        self._rate_limits = {
            direction: tuple(
                g for g in self._by_direction[direction] if g.family is Family.RATE_LIMIT
            )
            for direction in Direction
        }

    def guardrails(self, direction: Direction) -> tuple[Guardrail, ...]:
        return self._by_direction[direction]

    async def decide(self, message: dict[str, Any], context: CheckContext) -> Decision:
        started = time.perf_counter()
        direction = context.direction
        rate_limits = self._rate_limits[direction]
        if len(rate_limits) > 1:
            context.extras[RATE_LIMITS] = rate_limits
        decision = Decision(new_decision_id(), Outcome.ALLOW, message)
        text: TextPass | None = None
        redactor: Guardrail | None = None  # the last guardrail that redacted through the pass
        for guardrail, reviewer, kinds, sync in self._steps[direction]:
            try:
                if reviewer is not None:
                    if text is None:
                        # A large message is walked off the loop too: a 4 MB structured
                        # result is ~80,000 texts, 0.1-0.3 s that held every request.
                        union, asks = self._scanners[direction], self._asks[direction]
                        if context.message_bytes > OFFLOAD_BYTES:
                            text = await anyio.to_thread.run_sync(
                                TextPass, decision.message, union, asks
                            )
                        else:  # not run_sized: no coroutine per message for a small one
                            text = TextPass(decision.message, union, asks)
                    elif kinds is not None and text.finds_none_of(kinds):
                        continue  # what its review would say: nothing found, allow
                    # Not run_sized: that would be one more coroutine per guardrail per message.
                    if text.size > OFFLOAD_BYTES:
                        verdict = await anyio.to_thread.run_sync(reviewer.review, text, context)
                    else:
                        verdict = reviewer.review(text, context)
                    if verdict.outcome is _MODIFY:
                        redactor = reviewer
                else:
                    if text is not None and text.changed:
                        decision.message = await run_sized(text.size, text.message)
                    if sync:
                        verdict = guardrail.check(decision.message, context)
                    else:
                        verdict = await guardrail.check_async(decision.message, context)
                    if verdict.outcome is _MODIFY and verdict.message is not None:
                        text = None  # a new message: the next text guardrail walks it
            except Exception:
                self._log_failure(guardrail)
                if self.fail_mode == "open":
                    continue
                verdict = _FAILED
            if verdict.outcome is not _ALLOW:
                _apply(decision, guardrail, verdict, reviewed=reviewer is not None)
                if decision.blocked:
                    break
        if text is not None and text.changed and redactor is not None:
            if not decision.blocked:
                redactor = await self._settle(text, decision, context) or redactor
            try:
                decision.message = await run_sized(text.size, text.message)
            except Exception:
                # Should not happen (each redaction was checked when it was made); fail as the
                # last guardrail that redacted would have, had it copied the message itself.
                self._log_failure(redactor)
                if self.fail_mode == "closed":
                    _apply(decision, redactor, _FAILED, reviewed=False)
        decision.processing_ms = (time.perf_counter() - started) * 1000
        return decision

    async def _settle(
        self, text: TextPass, decision: Decision, context: CheckContext
    ) -> Guardrail | None:
        """Read the redacted texts again with every guardrail that redacts or blocks, until
        none finds more: a redaction can free a value glued to the one it replaced (a card
        number after a phone number and a colon), which the guardrails that read the texts
        before would let through. Returns the last guardrail that redacted here, if any."""
        settlers, kinds, groups = self._settlers[context.direction]
        if not settlers:
            return None
        last: Guardrail | None = None
        for _ in range(SETTLE_ROUNDS):
            if text.finds_none_of(kinds):
                return last  # the common case: a guardrail read the texts after the last redaction
            redacted = False
            current: Guardrail = settlers[0][0]
            try:
                # One rescan of the redacted texts serves all of them.
                await run_sized(text.size, text.found, kinds, groups)
                for current, own in settlers:
                    if own is not None and text.finds_none_of(own):
                        continue
                    verdict = await run_sized(text.size, current.review, text, context)
                    if verdict.outcome is _ALLOW:
                        continue
                    _merge(decision, current, verdict)
                    if decision.blocked:
                        return last
                    if verdict.outcome is _MODIFY:
                        redacted, last = True, current
            except Exception:
                self._log_failure(current)
                if self.fail_mode == "closed":
                    _apply(decision, current, _FAILED, reviewed=True)
                return last
            if not redacted:
                return last
        guardrail = last or settlers[0][0]
        refusal = Verdict(Outcome.BLOCK, guardrail.type, (), f"{guardrail.type}: {SETTLE_REFUSAL}")
        _apply(decision, guardrail, refusal, reviewed=True)
        return last

    def _log_failure(self, guardrail: Guardrail) -> None:
        logger.exception(
            "guardrail failed", extra={"guardrail": guardrail.type, "fail_mode": self.fail_mode}
        )


_ALLOW, _MODIFY = Outcome.ALLOW, Outcome.MODIFY
_FAILED = Verdict(
    Outcome.BLOCK,
    "",
    (Finding("evaluation_error", 1),),
    "policy evaluation failed; blocked (fail_mode closed)",
)


def _ordered(guardrails: Sequence[Guardrail], direction: Direction) -> tuple[Guardrail, ...]:
    order = ORDER[direction]
    chosen = [g for g in guardrails if direction in g.directions and g.family in order]
    return tuple(sorted(chosen, key=lambda g: order.index(g.family)))


# (guardrail, itself when it reviews the text pass, the hit kinds that can make it act when
# nothing but its detectors' hits can, whether its `check_async` is the base class's, which
# only calls `check`: then the pipeline calls `check` itself, without a coroutine); a
# reviewer's findings come only from the pass.
Step = tuple[Guardrail, TextGuardrail | None, frozenset[str] | None, bool]


def _steps(guardrails: Sequence[Guardrail], direction: Direction) -> tuple[Step, ...]:
    """Each guardrail with itself as a reviewer of the text pass when it reads one; text
    guardrails whose `direction` setting leaves this direction out are dropped (they allow)."""
    steps: list[Step] = []
    for guardrail in guardrails:
        if isinstance(guardrail, TextGuardrail) and guardrail.reviews_passes():
            if guardrail.applies_to(direction):
                kinds = None
                if (
                    isinstance(guardrail, DetectorGuardrail)
                    and type(guardrail).review is DetectorGuardrail.review
                ):
                    kinds = guardrail.hit_kinds()
                steps.append((guardrail, guardrail, kinds, False))
        else:
            steps.append((guardrail, None, None, type(guardrail).check_async is _BASE_CHECK))
    return tuple(steps)


_BASE_CHECK = Guardrail.check_async


# The reviewers that read a redacted pass again (each with its hit kinds when only those can
# make it act), and the hit kinds and detector groups of them all.
Settlers = tuple[
    tuple[tuple[DetectorGuardrail, frozenset[str] | None], ...], frozenset[str], tuple[str, ...]
]


def _settlers(steps: Sequence[Step]) -> Settlers:
    """The detector guardrails of the pass that redact or block, in pipeline order: what a
    redaction uncovers is theirs to act on (one that only logs has logged the texts already)."""
    chosen = tuple(
        (reviewer, kinds)
        for _, reviewer, kinds, _ in steps
        if isinstance(reviewer, DetectorGuardrail) and reviewer.action != "log_only"
    )
    kinds = frozenset(kind for reviewer, _ in chosen for kind in reviewer.hit_kinds())
    groups = tuple(dict.fromkeys(group for reviewer, _ in chosen for group in reviewer.detectors))
    return chosen, kinds, groups


def _merge(decision: Decision, guardrail: Guardrail, verdict: Verdict) -> None:
    """`_apply` for a guardrail that reads a pass again: a redaction it made before and one
    it makes now are one entry of the decision, with their findings together."""
    if verdict.outcome is _MODIFY:
        for entry in decision.triggered:
            if entry["guardrail"] == guardrail.type and entry["action"] == _MODIFY.value:
                known = tuple(
                    Finding(item["type"], item["count"], tuple(item["where"]))
                    for item in entry["findings"]
                )
                merged = merge_findings(known, verdict.findings)
                entry["findings"] = [finding.as_dict() for finding in merged]
                return
    _apply(decision, guardrail, verdict, reviewed=True)


def _asks(steps: Sequence[Step]) -> tuple[tuple[str, ...], ...]:
    """The detector groups of the steps that review the text pass, in their order."""
    return tuple(
        groups
        for _, reviewer, _, _ in steps
        if reviewer is not None and (groups := reviewer.detector_groups())
    )


def _union_scanner(asks: Sequence[tuple[str, ...]]) -> Scanner | None:
    groups = {group for groups in asks for group in groups}
    return scanner(groups) if groups else None


_UNCHANGED = (Outcome.ALLOW, Outcome.LOG_ONLY)


def _apply(decision: Decision, guardrail: Guardrail, verdict: Verdict, *, reviewed: bool) -> None:
    decision.triggered.append(
        {
            "guardrail": verdict.guardrail or guardrail.type,
            "action": verdict.outcome.value,
            "findings": [finding.as_dict() for finding in verdict.findings],
        }
    )
    if verdict.outcome is Outcome.MODIFY:
        if verdict.message is not None:
            decision.message = verdict.message
        # A reviewer's MODIFY carries no message: its redactions are in the text pass.
        if (verdict.message is not None or reviewed) and decision.outcome in _UNCHANGED:
            decision.outcome = Outcome.MODIFY
    elif verdict.outcome is Outcome.LOG_ONLY:
        if decision.outcome is Outcome.ALLOW:
            decision.outcome = Outcome.LOG_ONLY
    elif verdict.outcome in (Outcome.BLOCK, Outcome.THROTTLE):
        decision.outcome = verdict.outcome
        decision.reason = verdict.reason
        decision.retry_after_seconds = verdict.retry_after_seconds
