"""Fixed per-request costs outside the guardrails, each timed alone in process.

End-to-end CPU per request on a shared machine moves by tens of percent from run to run;
these pieces do not, so they say what each step of the proxy path costs: the access log
line, request and decision ids, the audit event, key hashing, header filtering, and
parsing and serialising a message. Best of 7 batches of 2,000.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from bench.payloads import ECHO_TEXT
from bench.stub_upstream import answer
from cerberus.agents.keys import generate_key, hash_key
from cerberus.audit.writer import AuditWriter
from cerberus.db import utcnow
from cerberus.ids import time_ordered_hex
from cerberus.logs import JsonFormatter, _log_access, configure_logging
from cerberus.proxy.headers import upstream_headers
from cerberus.settings import Settings

BATCH = 2000
BATCHES = 7


def best_us(step: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(BATCHES):
        started = time.perf_counter()
        for _ in range(BATCH):
            step()
        best = min(best, (time.perf_counter() - started) / BATCH)
    return round(best * 1e6, 2)


def measure() -> dict[str, float]:
    settings = Settings(DATA_DIR="/tmp/cerberus-bench-overheads")
    logger = logging.getLogger("bench.access")
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    extra = {"method": "POST", "path": "/mcp", "status": 200, "duration_ms": 1.234}

    def log_line() -> None:
        logger.info("request", extra={**extra, "request_id": uuid.uuid4().hex})
        handler.stream.seek(0)
        handler.stream.truncate()

    writer = AuditWriter(lambda: None, batch_size=10**9, flush_interval=3600)  # type: ignore[arg-type,return-value]

    def audit_event() -> None:
        writer.record(
            request_id="r",
            decision_id=uuid.uuid4().hex,
            organisation_id="o",
            workspace_id="w",
            agent_id="a",
            direction="request",
            method="tools/call",
            tool_name="echo",
            action="allow",
            guardrails_triggered=[],
            processing_ms=0.1,
            upstream_status=200,
            upstream_latency_ms=1.0,
        )
        writer._events.clear()

    key = generate_key("sk-").plain
    incoming = [
        ("host", "127.0.0.1:8000"),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("authorization", f"Bearer {key}"),
        ("mcp-protocol-version", "2025-11-25"),
        ("content-length", "200"),
    ]
    request = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "lookup", "arguments": {"customer_id": "c2"}},
    }
    raw_answer = answer(request) or b""
    return {
        "access log line, generic path (a LogRecord through JsonFormatter)": best_us(log_line),
        "access log line, the proxy's (written straight to the handler)": _proxy_access_line(),
        "uuid4().hex": best_us(lambda: uuid.uuid4().hex),
        "request / decision id (ids.time_ordered_hex)": best_us(time_ordered_hex),
        "utcnow()": best_us(utcnow),
        "audit event queued (AuditWriter.record)": best_us(audit_event),
        "agent key hash (sha256)": best_us(lambda: hash_key(key)),
        "upstream header filtering": best_us(
            lambda: upstream_headers(
                incoming, settings=settings, request_id="r" * 32, client_ip="127.0.0.1"
            )
        ),
        "parse lookup answer (orjson.loads)": best_us(lambda: orjson.loads(raw_answer)),
        "serialise lookup answer (orjson.dumps)": best_us(
            lambda: orjson.dumps(orjson.loads(raw_answer))
        ),
        "echo request parse": best_us(
            lambda: orjson.loads(orjson.dumps({"params": {"arguments": {"text": ECHO_TEXT}}}))
        ),
    }


def _proxy_access_line() -> float:
    """`logs._log_access` as the proxy calls it, with configure_logging's handler on a buffer."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("INFO", stream)

    def line() -> None:
        _log_access("POST", "/mcp", 200, 1.234, "r" * 32, False)
        stream.seek(0)
        stream.truncate()

    try:
        return best_us(line)
    finally:
        root.handlers, root.level = saved[0], saved[1]


def run_overheads() -> dict[str, float]:
    return measure()


if __name__ == "__main__":
    for name, micros in run_overheads().items():
        print(f"{micros:8.2f} µs  {name}")  # noqa: T201


async def audit_write_cost(spec: Any, events: int = 4000) -> float:
    """Process CPU microseconds per audit event written in batches of AUDIT_BATCH_SIZE (500),
    the aiosqlite / asyncpg work included; `spec` is a seeded bench.gateway.GatewaySpec."""
    from sqlalchemy import select

    from cerberus.agents.models import Agent
    from cerberus.db import create_engine, create_sessionmaker

    engine = create_engine(spec.settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session:
            agent = (await session.scalars(select(Agent).limit(1))).one()
        writer = AuditWriter(lambda: sessionmaker, batch_size=500, flush_interval=3600)
        started = time.process_time()
        for number in range(events):
            writer.record(
                request_id=f"r{number}",
                decision_id=uuid.uuid4().hex,
                organisation_id=agent.organisation_id,
                workspace_id=agent.workspace_id,
                agent_id=agent.id,
                direction="request",
                method="tools/call",
                tool_name="echo",
                action="allow",
                guardrails_triggered=[],
                processing_ms=0.1,
                upstream_status=200,
                upstream_latency_ms=1.0,
            )
            if writer.pending >= 500:
                await writer.flush()
        await writer.flush()
        return round((time.process_time() - started) / events * 1e6, 1)
    finally:
        await engine.dispose()
