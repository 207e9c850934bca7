"""The pipelines the cache hands out: compiled guardrails, or a stand-in that fails closed.

`compile_guardrail` turns one stored policy row into a validated guardrail (the guardrail's
model compiles its patterns); a row that does not validate raises PipelineBuildError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cerberus.cache import Cache
from cerberus.guardrails import (
    CheckContext,
    Direction,
    Finding,
    Guardrail,
    Outcome,
    Verdict,
    get_guardrail_type,
)
from cerberus.policies.config_integers import CONFIG_INT_RANGE, integer_out_of_range
from cerberus.policies.pins import PIN_STORE_EXTRA, PinStore
from cerberus.proxy.pipeline import Decision, Pipeline, new_decision_id


class PipelineBuildError(Exception):
    """The stored policies could not be turned into guardrails (or could not be loaded)."""


@dataclass(frozen=True)
class PolicyRow:
    """What the pipeline needs of one effective policy; this is what the shared cache holds."""

    id: str
    name: str
    guardrail_type: str
    action: str
    config: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "guardrail_type": self.guardrail_type,
            "action": self.action,
            "config": dict(self.config),
        }


def compile_guardrail(row: PolicyRow) -> Guardrail:
    """One policy row as a validated guardrail; patterns are compiled by its model."""
    guardrail_type = get_guardrail_type(row.guardrail_type)
    if guardrail_type is None:
        raise PipelineBuildError(f"policy {row.id}: unknown guardrail type {row.guardrail_type!r}")
    if row.action not in guardrail_type.actions:
        raise PipelineBuildError(
            f"policy {row.id}: {row.guardrail_type} does not support action {row.action!r}"
        )
    # What the API refuses too (stored before it checked): no instance could share or cache it.
    out_of_range = integer_out_of_range(row.config)
    if out_of_range is not None:
        where = ".".join(str(part) for part in out_of_range)
        raise PipelineBuildError(
            f"policy {row.id} ({row.guardrail_type}): invalid config {where}: {CONFIG_INT_RANGE}"
        )
    try:
        return guardrail_type.model_validate({**row.config, "action": row.action})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "config"
        raise PipelineBuildError(
            f"policy {row.id} ({row.guardrail_type}): invalid config {where}: {error['msg']}"
        ) from None


class CompiledPipeline(Pipeline):
    """A Pipeline that also hands guardrails the pin store and remembers tool definitions."""

    def __init__(
        self, guardrails: Sequence[Guardrail], *, fail_mode: str, pins: PinStore, cache: Cache
    ) -> None:
        super().__init__(guardrails, fail_mode=fail_mode)
        self._pins = pins
        self._cache = cache

    async def decide(self, message: dict[str, Any], context: CheckContext) -> Decision:
        context.extras.setdefault(PIN_STORE_EXTRA, self._pins)
        if context.cache is None:
            context.cache = self._cache
        if context.direction is Direction.RESPONSE:
            method = context.method or (context.request or {}).get("method")
            if method == "tools/list":
                self._pins.catalogue.remember_tools(context.workspace_id, message)
            elif method == "tools/call" and context.output_schema is None:
                name = context.tool_name or _called_tool(context)
                if name:
                    context.output_schema = await self._pins.catalogue.output_schema(
                        context.workspace_id, name
                    )
        return await super().decide(message, context)


class UnavailablePipeline(Pipeline):
    """Stands in when the pipeline cannot be built and the workspace fails closed."""

    def __init__(self, reason: str) -> None:
        super().__init__((), fail_mode="closed")
        self.reason = reason

    async def decide(self, message: dict[str, Any], context: CheckContext) -> Decision:
        verdict = Verdict(
            Outcome.BLOCK,
            "policy_pipeline",
            (Finding("evaluation_error", 1),),
            "policy evaluation failed; blocked (fail_mode closed)",
        )
        return Decision(
            new_decision_id(),
            Outcome.BLOCK,
            message,
            triggered=[
                {
                    "guardrail": verdict.guardrail,
                    "action": verdict.outcome.value,
                    "findings": [finding.as_dict() for finding in verdict.findings],
                }
            ],
            reason=verdict.reason,
        )


def _called_tool(context: CheckContext) -> str | None:
    params = (context.request or {}).get("params")
    if isinstance(params, Mapping):
        name = params.get("name")
        return name if isinstance(name, str) else None
    return None
