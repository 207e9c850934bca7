"""A loopback forwarder that adds `Authorization: Bearer <agent key>` to every request, because
the conformance suite's CLI cannot send headers; everything else passes through untouched.

Responses stream chunk by chunk as they arrive (never buffered), so SSE streams, server-to-client
requests and long-lived `subscriptions/listen` streams behave as they would without it. The
client's `Host` and `Origin` are kept, so the gateway sees exactly what the suite sent.

Run: `CONFORMANCE_AGENT_KEY=sk-... python conformance/auth_forwarder.py --port 9400 \\
      --target http://127.0.0.1:8000` (the key comes from the environment, never argv).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys

from aiohttp import ClientSession, ClientTimeout, TCPConnector, hdrs, web
from multidict import CIMultiDict

KEY_ENV = "CONFORMANCE_AGENT_KEY"
# RFC 9110 §7.6.1 connection-specific headers, plus the framing headers aiohttp sets itself.
HOP_BY_HOP = frozenset(
    name.lower()
    for name in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Content-Length",
    )
)
# aiohttp would otherwise add these to the request on its own and change what the gateway sees.
NO_AUTO_HEADERS = (hdrs.ACCEPT_ENCODING, hdrs.USER_AGENT, hdrs.CONTENT_TYPE, hdrs.ACCEPT)


def forwarded_request_headers(request: web.Request, key: str) -> CIMultiDict[str]:
    headers = CIMultiDict(
        (name, value) for name, value in request.headers.items() if name.lower() not in HOP_BY_HOP
    )
    headers.popall(hdrs.AUTHORIZATION, None)
    headers[hdrs.AUTHORIZATION] = f"Bearer {key}"
    return headers


def build_app(targets: list[str], key: str) -> web.Application:
    """Several targets take requests in turn, as a load balancer in front of instances would."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    bases = itertools.cycle([target.rstrip("/") for target in targets])

    async def open_session(app: web.Application) -> None:
        app["client"] = ClientSession(
            connector=TCPConnector(limit=0),
            timeout=ClientTimeout(total=None, sock_read=None),
            auto_decompress=False,
        )

    async def close_session(app: web.Application) -> None:
        await app["client"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        client: ClientSession = request.app["client"]
        body = await request.read()
        async with client.request(
            request.method,
            next(bases) + request.rel_url.raw_path_qs,
            headers=forwarded_request_headers(request, key),
            data=body if body else None,
            skip_auto_headers=NO_AUTO_HEADERS,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers.add(name, value)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    return app


async def serve(host: str, port: int, targets: list[str], key: str) -> None:
    # handler_cancellation: a client that hangs up also ends the upstream request at once.
    runner = web.AppRunner(build_app(targets, key), handler_cancellation=True, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    sys.stdout.write(f"forwarding http://{host}:{port} -> {', '.join(targets)}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--target",
        required=True,
        action="append",
        help="base URL, e.g. http://127.0.0.1:8000; repeat it to spread requests in turn",
    )
    args = parser.parse_args()
    key = os.environ.get(KEY_ENV)
    if not key:
        parser.error(f"set {KEY_ENV} to the agent key")
    asyncio.run(serve(args.host, args.port, args.target, key))


if __name__ == "__main__":
    main()
