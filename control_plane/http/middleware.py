"""Pure ASGI middleware: request metrics and the request body size limit."""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_plane.observability.metrics import ControlPlaneMetrics


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ControlPlaneMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # Label by route template, never by raw path: raw paths hold ids and would
            # explode the number of series.
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_latency.labels(method, template).observe(
                time.perf_counter() - started
            )


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413 before the application sees them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._reject(send, 400, "invalid Content-Length")
                    return
                if declared > self.max_bytes:
                    await self._reject(send, 413, self._too_large())
                    return
        # Without a declared length (chunked uploads) count the bytes as they arrive.
        chunks: list[Message] = []
        total = 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            total += len(message.get("body", b""))
            if total > self.max_bytes:
                await self._reject(send, 413, self._too_large())
                return
            if not message.get("more_body", False):
                break
        replay = iter(chunks)

        async def replay_receive() -> Message:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        await self.app(scope, replay_receive, send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_bytes} bytes"

    @staticmethod
    async def _reject(send: Send, status: int, message: str) -> None:
        code = "payload_too_large" if status == 413 else "invalid_request"
        body = json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
