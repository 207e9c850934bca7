"""The upstream's answer on its way back: JSON bodies and event streams, message by message.

Each server->client message passes the response side of the pipeline and is re-emitted at
once, in order; a stream is never buffered whole (mcp-proxy.md 1.6). What cannot be parsed
ends the stream: nothing goes to the client uninspected (mcp-proxy.md 5.1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.responses import Response, StreamingResponse

from cerberus import jsonrpc
from cerberus.guardrails import Direction
from cerberus.jsonrpc import AmbiguousJson, JsonRpcError, Message
from cerberus.proxy.exchange import Exchange, blocked_error
from cerberus.proxy.headers import downstream_headers, foreign_charset
from cerberus.proxy.http1 import Answer, AnswerTooLarge, ConnectionBroken
from cerberus.proxy.sse import Event, EventTooLarge, SseParser

logger = logging.getLogger("cerberus.proxy")


# How often a stream's events look again at its agent's key and pipeline (in memory but when
# their entries expired): a revocation or a policy change reaches every instance within
# about a second.
RECHECK_SECONDS = 1.0

Recheck = Callable[[], Awaitable[bool]]


class StreamRefused(Exception):
    """An event that may not pass uninspected: the stream ends here (fail closed)."""


class AgentRefused(StreamRefused):
    """The stream's agent key was revoked, expired or rotated out while it was open."""


def rpc_error(
    status: int,
    message_id: Any,
    code: int,
    text: str,
    headers: dict[str, str] | None = None,
    data: dict[str, Any] | None = None,
) -> Response:
    return Response(
        jsonrpc.error_bytes(message_id, code, text, data),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def decision_headers(exchange: Exchange, response_decision_id: str | None) -> dict[str, str]:
    headers = {}
    if exchange.request_decision_id:
        headers["x-request-decision-id"] = exchange.request_decision_id
    if response_decision_id:
        headers["x-response-decision-id"] = response_decision_id
    return headers


async def relay(
    exchange: Exchange,
    upstream: Answer,
    *,
    error_id: Any,
    deadline: float | None,
    verbatim: bool = False,
    recheck: Recheck | None = None,
) -> Response:
    """Turn the upstream's answer into the client's, deciding every message in it (a
    stream's events with the agent and pipeline `recheck` finds current)."""
    status = upstream.status
    if status >= 500:
        upstream.release()
        return _unavailable(exchange, error_id, f"Upstream MCP server failed (HTTP {status})")
    headers = dict(downstream_headers(upstream.headers.items()))
    content_type = upstream.headers.get("content-type", "")
    # Media types are case-insensitive: the SDKs read `Application/JSON` as JSON.
    media_type = content_type.partition(";")[0].strip().lower()
    streaming = media_type == "text/event-stream"
    is_json = media_type == "application/json"
    # Upstream refusals reach the client as they are: clients choose their era, recover
    # sessions and find auth from these bodies (mcp-proxy.md 3.2, 2.3, 3.6). So does the
    # answer to a DELETE, which carries no message. A refusal's JSON-RPC message still
    # passes the guardrails (`_refusal`): its text reaches the model as a result's would.
    as_is = status >= 300 or status in (202, 204) or (verbatim and not streaming)
    decided = not as_is or (status >= 300 and is_json)
    if streaming and not as_is:
        charset = foreign_charset(content_type)  # of events not read yet: any label but UTF-8
        if charset is not None:
            upstream.release()
            return _foreign(exchange, error_id, charset)
        await exchange.share_requests()
        # Named only for a stream that answers a request (a GET's answers none): the id is
        # the audit event of that answer, or of the refusal that ends the stream before it.
        answer_id = exchange.response_decision_id if exchange.awaits_answer else None
        headers.update(decision_headers(exchange, answer_id))
        headers["cache-control"] = "no-cache"
        headers["x-accel-buffering"] = "no"
        events = _events(exchange, upstream, deadline, error_id, recheck)
        return StreamingResponse(events, status_code=status, headers=headers)
    try:
        body = await _read(upstream)
    except AnswerTooLarge as exc:
        logger.warning("upstream answer refused: %s", exc, extra=_log(exchange))
        text = f"Upstream answer larger than {exc.limit // (1024 * 1024)} MiB"
        return answer_refusal(exchange, error_id, text, "answer_too_large")
    except ConnectionBroken as exc:
        logger.info("upstream answer broke: %s", exc, extra=_log(exchange))
        text = "Upstream closed the connection before its answer ended"
        return _unavailable(exchange, error_id, text)
    charset = foreign_charset(content_type, body) if decided else None
    if charset is not None:
        return _foreign(exchange, error_id, charset)
    if as_is:
        if status == 202:
            # Accepted: the answers come later, on the GET stream, which must know what
            # they answer (a tools/list's, to check its tools against their pins).
            await exchange.share_requests()
        decision_id = None
        if status >= 300 and body:
            try:
                body, decision_id, replaced = await _refusal(
                    exchange, body, content_type, is_json, error_id
                )
            except AmbiguousJson as exc:
                return _invalid_body(exchange, error_id, exc)
            if replaced:
                headers["content-type"] = "application/json"
        headers.update(decision_headers(exchange, decision_id))
        return Response(body, status_code=status, headers=headers)
    if not body:
        headers.update(decision_headers(exchange, None))
        return Response(b"", status_code=status, headers=headers)
    if not is_json:
        # Anything else could carry a message past the policies: refused (fail closed).
        text = "Upstream answered with an unknown type"
        return answer_refusal(exchange, error_id, text, "unknown_content_type")
    try:
        out, changed, first_id = await _decide_data(exchange, body)
    except (JsonRpcError, StreamRefused) as exc:
        return _invalid_body(exchange, error_id, exc)
    headers.update(decision_headers(exchange, first_id))
    return Response(out if changed else body, status_code=status, headers=headers)


def _foreign(exchange: Exchange, error_id: Any, charset: str) -> Response:
    """An answer to decide on as UTF-8 under a header that tells the client to read another
    text (an ASCII body reads alike in the charsets that extend ASCII, and passes)."""
    logger.warning("upstream answered in charset %s", charset[:32], extra=_log(exchange))
    text = "Upstream answered in a charset other than UTF-8"
    return answer_refusal(exchange, error_id, text, "foreign_charset")


def _unavailable(exchange: Exchange, error_id: Any, text: str) -> Response:
    """The 502 for an upstream that failed or broke off, with the exchange's decision ids."""
    return rpc_error(
        502, error_id, jsonrpc.UPSTREAM_UNAVAILABLE, text, decision_headers(exchange, None)
    )


def _invalid_body(exchange: Exchange, error_id: Any, exc: Exception) -> Response:
    """A 502 for an answer the gateway cannot decide on (fail closed)."""
    reason = exc.message if isinstance(exc, JsonRpcError) else str(exc)
    logger.warning("upstream sent a body that is not JSON-RPC: %s", reason, extra=_log(exchange))
    what = "an ambiguous JSON" if isinstance(exc, AmbiguousJson) else "an invalid JSON-RPC"
    return answer_refusal(exchange, error_id, f"Upstream sent {what} body", _finding(exc))


def protocol_refusal(
    exchange: Exchange,
    direction: Direction,
    status: int,
    error_id: Any,
    code: int,
    text: str,
    finding: str,
    message: Message | None = None,
) -> Response:
    """The error for a message refused before any policy could read it, with its audit event
    (the `protocol` check, docs/audit.md) and its decision id among the answer's headers."""
    decision_id = exchange.refuse(direction, finding, message)
    answer_id = decision_id if direction is Direction.RESPONSE else None
    return rpc_error(status, error_id, code, text, decision_headers(exchange, answer_id))


def answer_refusal(exchange: Exchange, error_id: Any, text: str, finding: str) -> Response:
    """`protocol_refusal` for an upstream answer: a 502."""
    return protocol_refusal(
        exchange, Direction.RESPONSE, 502, error_id, jsonrpc.UPSTREAM_UNAVAILABLE, text, finding
    )


def _finding(exc: Exception) -> str:
    """What an answer or event refused for this exception is, as its audit event names it."""
    if isinstance(exc, AmbiguousJson):
        return "ambiguous_json"
    if isinstance(exc, AgentRefused):
        return "agent_refused"
    return "event_too_large" if isinstance(exc, EventTooLarge) else "invalid_jsonrpc"


async def _refusal(
    exchange: Exchange, body: bytes, content_type: str, is_json: bool, error_id: Any
) -> tuple[bytes, str | None, bool]:
    """An upstream refusal's body as the guardrails leave it, its decision id, and whether
    it was replaced by the gateway's JSON-RPC error. A JSON-RPC message is decided as any
    answer. Any other body (an OAuth error, a framework's page, JSON no parser here reads
    alike) is checked as text: clients put it in the error the model reads (the TypeScript
    SDK quotes any non-2xx body). It passes unchanged, or not at all."""
    if is_json:
        try:
            out, changed, decision_id = await _decide_data(exchange, body)
        except AmbiguousJson:
            raise  # a message after all, to some parser: not relayed unchecked
        except (JsonRpcError, StreamRefused):
            pass
        else:
            return (out if changed else body), decision_id, False
    return await _decide_text(exchange, body, content_type, error_id)


async def _decide_text(
    exchange: Exchange, body: bytes, content_type: str, error_id: Any
) -> tuple[bytes, str | None, bool]:
    """A body that is no message, decided as the text of an error answering the request."""
    text = _utf8(body)
    if text is None or foreign_charset(content_type, body) is not None:
        # Read in another charset than the one checked, it could say anything.
        decision_id = exchange.refuse(Direction.RESPONSE, "foreign_charset")
        withheld = "Upstream refusal withheld: its body is not UTF-8"
        data = {"decision_id": decision_id}
        return jsonrpc.error_bytes(error_id, jsonrpc.BLOCKED, withheld, data), decision_id, True
    message = jsonrpc.error(error_id, jsonrpc.UPSTREAM_UNAVAILABLE, text)
    decision = await exchange.decide_server_message(message, jsonrpc.Kind.RESPONSE, len(body))
    if decision.blocked:
        blocked = jsonrpc.dumps(blocked_error(error_id, decision))
        return blocked, decision.decision_id, True
    if decision.message is not message:
        redacted = decision.message["error"]["message"]
        return str(redacted).encode(), decision.decision_id, False
    return body, decision.decision_id, False


def _utf8(body: bytes) -> str | None:
    try:
        return body.decode()
    except UnicodeDecodeError:
        return None


async def _read(upstream: Answer) -> bytes:
    try:
        return await upstream.read()
    finally:
        upstream.release()


async def _decide_data(exchange: Exchange, data: bytes | str) -> tuple[bytes, bool, str | None]:
    """Decide every message in one body or event; returns (new bytes, changed?, decision id)."""
    value = jsonrpc.loads(data)
    messages: list[Message] = value if isinstance(value, list) else [value]
    out: list[Message] = []
    changed = False
    first_id = None
    for message in messages:
        kind = jsonrpc.kind_of(message)
        # A batch's messages share its size: an upper bound is what the hint needs.
        decision = await exchange.decide_server_message(message, kind, len(data))
        first_id = first_id or decision.decision_id
        if decision.blocked:
            changed = True
            if kind is jsonrpc.Kind.NOTIFICATION:
                continue
            if kind is jsonrpc.Kind.REQUEST:
                # A server->client request the client may not see: the server gets the
                # error in the client's place, so it does not wait forever.
                await exchange.answer_server(blocked_error(message.get("id"), decision))
                continue
            # A blocked answer still answers its id, so the client does not wait forever.
            out.append(blocked_error(message.get("id"), decision))
        elif decision.message is not message:
            changed = True
            out.append(decision.message)
        else:
            out.append(message)
    if not changed:
        return b"", False, first_id
    if not out:
        return b"", True, first_id
    return jsonrpc.dumps(out if isinstance(value, list) else out[0]), True, first_id


async def _events(
    exchange: Exchange,
    upstream: Answer,
    deadline: float | None,
    error_id: Any,
    recheck: Recheck | None,
) -> AsyncIterator[bytes]:
    parser = SseParser()
    finished = False
    loop = asyncio.get_running_loop()
    checked = loop.time()
    # Whether the answer has yet to reach the client: updated once an event is sent, as an
    # event refused after its answer was decided (a batch with a bad member) sends nothing.
    awaited = exchange.awaits_answer
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await upstream.readany()
            except TimeoutError:
                # Ended cleanly before the platform's request limit; the client resumes
                # with Last-Event-ID (MCP_STREAM_MAX_SECONDS).
                return
            if not chunk:
                finished = True
                return
            for event in parser.feed(chunk):
                if recheck is not None and loop.time() - checked >= RECHECK_SECONDS:
                    checked = loop.time()
                    if not await recheck():
                        raise AgentRefused("the agent's key no longer opens this stream")
                encoded = await _relay_event(exchange, event)
                if encoded:
                    yield encoded
                awaited = exchange.awaits_answer
    except (StreamRefused, EventTooLarge, JsonRpcError) as exc:
        logger.warning("upstream event refused; stream ended: %s", exc, extra=_log(exchange))
        decision_id = exchange.refuse(Direction.RESPONSE, _finding(exc))
        if awaited:
            # The gateway ended the stream, so it answers the request the stream was for:
            # a client would otherwise wait for an answer that cannot come (mcp-proxy 5.6).
            if isinstance(exc, AgentRefused):
                text = "Agent key revoked or expired; the stream was ended"
            else:
                text = "Upstream sent an event the gateway cannot read; the stream was ended"
            data = {"decision_id": decision_id}
            error = jsonrpc.error_bytes(error_id, jsonrpc.UPSTREAM_UNAVAILABLE, text, data)
            yield Event(data=error.decode()).encode()
    except ConnectionBroken as exc:
        logger.info("upstream stream broke: %s", type(exc).__name__, extra=_log(exchange))
    finally:
        if finished:
            upstream.release()
        else:
            # Closing our side is the 2026-07-28 cancellation and ends the upstream work.
            upstream.close()


async def _relay_event(exchange: Exchange, event: Event) -> bytes | None:
    if not event.data:
        # Priming events (id + retry, empty data) and keep-alive comments carry no message.
        return event.encode()
    try:
        out, changed, _ = await _decide_data(exchange, event.data)
    except AmbiguousJson:
        raise
    except JsonRpcError as exc:
        raise StreamRefused(f"event data is not JSON-RPC: {exc.message}") from None
    if not changed:
        return event.encode()
    if not out:
        # Everything in it was dropped; keep the id so resumption stays consistent.
        if event.id is None and event.retry is None:
            return None
        return Event(id=event.id, retry=event.retry).encode()
    return event.encode(data=out.decode())


def _log(exchange: Exchange) -> dict[str, str]:
    return {"request_id": exchange.request_id, "agent_id": exchange.agent.agent_id}
