"""The in-process guardrail cost: the pipeline's steps, and how the report lays them out."""

from __future__ import annotations

import pytest

from bench import guardrail_cost, report
from cerberus.guardrails import Direction


async def test_pipeline_steps_name_every_guardrail_of_the_direction_then_the_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(guardrail_cost, "BATCH", 3)
    monkeypatch.setattr(guardrail_cost, "BATCHES", 2)
    pipeline = guardrail_cost.Pipeline(guardrail_cost.guardrails())
    request, response = guardrail_cost.calls()["lookup"]

    steps = await guardrail_cost.pipeline_steps(pipeline, Direction.RESPONSE, request, response)

    expected = [g.type for g in pipeline.guardrails(Direction.RESPONSE)]
    assert list(steps) == [*expected, report.COPY_STEP]
    assert all(us >= 0 for us in steps.values())


def test_the_steps_table_keeps_the_pipeline_order_puts_the_copy_last_and_sums() -> None:
    steps = {
        "lookup_request": {"rbac": 1.0, report.COPY_STEP: 0.5, "rate_limit": 2.0},
        "lookup_response": {"rbac": 1.5, "secrets": 10.0, report.COPY_STEP: 0.25},
    }

    lines = report._pipeline_steps_table(steps)

    rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    assert rows == [
        "| step | lookup_request | lookup_response |",
        "| rbac | 1.00 | 1.50 |",
        "| rate_limit | 2.00 | - |",
        "| secrets | - | 10.00 |",
        f"| {report.COPY_STEP} | 0.50 | 0.25 |",
        "| all steps | 3.50 | 11.75 |",
    ]
